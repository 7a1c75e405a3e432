package vsphere

import (
	"context"
	"errors"
	"fmt"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// ErrPoweredOn: the change needs the VM powered off, and it is powered on
// or suspended (the message says which); nothing was changed.
var ErrPoweredOn = errors.New("VM is not powered off")

// EnableUUIDFix says what to do when disk.EnableUUID must be set on a
// running VM. A reboot from inside the guest keeps the VM's process and
// so its old configuration: only a power cycle applies it.
func EnableUUIDFix(vm string) string {
	return fmt.Sprintf("power off the VM %q (shut down the guest, then check vSphere shows it powered off), run `mtconsole vsphere enable-uuid --vm %q` from any host that reaches vSphere, then power it on; a reboot from inside the guest is not enough",
		vm, vm)
}

// EnableUUID sets disk.EnableUUID=TRUE on a powered-off VM. It returns
// false when it was TRUE already (nothing changed), and ErrPoweredOn, with
// what to do, when the VM is not powered off: vSphere would accept the
// change on a running VM, but the guest would not see the ids until the
// next power cycle, and the master target must not find that out later.
func (c *Client) EnableUUID(ctx context.Context, obj *object.VirtualMachine) (changed bool, err error) {
	vm, err := c.Describe(ctx, obj)
	if err != nil {
		return false, err
	}
	if vm.EnableUUIDOn() && len(vm.EnableUUIDKeys) == 1 && vm.EnableUUIDKeys[0] == "disk.EnableUUID" {
		return false, nil
	}
	if !vm.PoweredOff() {
		fix := EnableUUIDFix(vm.Name)
		if vm.PowerState == string(types.VirtualMachinePowerStateSuspended) {
			fix = fmt.Sprintf("the VM %q is suspended: resume it and shut the guest down (or power it off, losing its suspended state), then run `mtconsole vsphere enable-uuid --vm %q` and power it on",
				vm.Name, vm.Name)
		}
		return false, fmt.Errorf("%w: %s is %s, disk.EnableUUID is %s: %s", ErrPoweredOn, vm.Name, vm.PowerState,
			orText(vm.EnableUUID, "not set"), fix)
	}
	// One key, spelt as VMware documents it: the other spellings are
	// removed (an empty value removes a key).
	ec := []types.BaseOptionValue{&types.OptionValue{Key: "disk.EnableUUID", Value: "TRUE"}}
	for _, k := range vm.EnableUUIDKeys {
		if k != "disk.EnableUUID" {
			ec = append(ec, &types.OptionValue{Key: k, Value: ""})
		}
	}
	task, err := obj.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: ec})
	if err != nil {
		return false, vimErr(err)
	}
	if _, err := task.WaitForResult(ctx, nil); err != nil {
		return false, fmt.Errorf("set disk.EnableUUID on %s: %w", vm.Name, vimErr(err))
	}
	if err := ctx.Err(); err != nil {
		// Wait returns nil when ctx ends first: the change may or may not be made.
		return false, fmt.Errorf("set disk.EnableUUID on %s: interrupted; run enable-uuid again to see: %w", vm.Name, err)
	}
	return true, nil
}
