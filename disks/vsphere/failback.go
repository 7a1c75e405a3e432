package vsphere

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// ErrNotReady: a readiness check of the plan failed; nothing was changed.
var ErrNotReady = errors.New("not ready")

// NIC is a network adapter of the failback VM.
type NIC struct {
	Network string `json:"network"`
	Adapter string `json:"adapter"` // vmxnet3 (default), e1000, e1000e
}

// FailbackSpec is the failback VM to create from recovered disks that are
// attached to the master target.
type FailbackSpec struct {
	// Name is the display name; the source's hostname when empty.
	Name           string `json:"name"`
	SourceHostname string `json:"sourceHostname,omitempty"`
	// Host is the ESXi host (the master target's when empty).
	Host string `json:"host,omitempty"`
	// Datastore holds the VM's files (the first disk's when empty).
	Datastore string `json:"datastore,omitempty"`
	// Folder is the inventory folder (the datacenter's VM folder when empty).
	Folder   string `json:"folder,omitempty"`
	CPUs     int32  `json:"cpus"`
	MemoryMB int64  `json:"memoryMB"`
	GuestID  string `json:"guestId,omitempty"` // otherLinux64Guest when empty
	NICs     []NIC  `json:"nics"`
	// Disks are the recovered disks on the master target, each named by
	// its block device (/dev/sdc, mapped through DevRoot), VMDK file
	// ("[ds] dir/x.vmdk"), VMDK UUID, or label ("Hard disk 3").
	Disks   []string `json:"disks"`
	DevRoot string   `json:"-"`
}

// Step states.
const (
	StepPlanned    = "planned"
	StepDone       = "done"
	StepFailed     = "failed"
	StepUndone     = "undone"
	StepUndoFailed = "undo-failed"
)

// Step is one change the plan makes, in order.
type Step struct {
	Kind   string `json:"kind"` // detach, create, attach, power-on
	Title  string `json:"title"`
	Undo   string `json:"undo"` // what undoes it; "" for power-on
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Plan is a failback VM creation worked out against the inventory,
// without changing anything: printing it is the dry run.
type Plan struct {
	Spec   FailbackSpec `json:"spec"`
	VMPath string       `json:"vmPath"` // the .vmx's datastore path
	MT     string       `json:"masterTarget"`
	Disks  []Disk       `json:"disks"` // the master target's disks to move
	Checks []Check      `json:"checks"`
	Steps  []Step       `json:"steps"`
	// RolledBack is set when Execute failed and undid its steps.
	RolledBack bool `json:"rolledBack,omitempty"`

	mt      *object.VirtualMachine
	mtDisks []*types.VirtualDisk // the devices as they are on the MT
	host    *object.HostSystem
	pool    *object.ResourcePool
	folder  *object.Folder
	nics    []types.BaseVirtualDevice
	created *object.VirtualMachine
}

// PlanFailback resolves spec against the master target and the
// inventory and runs the readiness checks the creation depends on. It
// changes nothing. An error is a spec that cannot be resolved; failed
// checks are in Plan.Checks, and Execute refuses such a plan.
func (c *Client) PlanFailback(ctx context.Context, mtObj *object.VirtualMachine, spec FailbackSpec) (*Plan, error) {
	mt, err := c.Describe(ctx, mtObj)
	if err != nil {
		return nil, err
	}
	if spec.Name == "" {
		spec.Name = spec.SourceHostname
	}
	if spec.Name == "" {
		return nil, errors.New("failback VM: no name and no source hostname")
	}
	if spec.CPUs <= 0 {
		return nil, fmt.Errorf("failback VM %s: CPUs must be at least 1", spec.Name)
	}
	if spec.GuestID == "" {
		spec.GuestID = string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest)
	}
	if len(spec.Disks) == 0 {
		return nil, fmt.Errorf("failback VM %s: no recovered disks given", spec.Name)
	}
	if len(spec.Disks) > SlotsPerController {
		return nil, fmt.Errorf("failback VM %s: %d disks, at most %d fit on its SCSI controller", spec.Name, len(spec.Disks), SlotsPerController)
	}
	p := &Plan{Spec: spec, MT: mt.Name, mt: mtObj}

	// The disks, as the master target has them.
	if err := MapDevices(mt.Disks, spec.DevRoot); err != nil {
		return nil, err
	}
	devices, err := mtObj.Device(ctx)
	if err != nil {
		return nil, vimErr(err)
	}
	seen := map[int32]bool{}
	for _, want := range spec.Disks {
		d, err := pickDisk(mt, want)
		if err != nil {
			return nil, err
		}
		if seen[d.Key] {
			return nil, fmt.Errorf("disk %s: given twice", want)
		}
		seen[d.Key] = true
		p.Disks = append(p.Disks, *d)
		p.mtDisks = append(p.mtDisks, devices.FindByKey(d.Key).(*types.VirtualDisk))
	}
	if p.Spec.Datastore == "" {
		p.Spec.Datastore = p.Disks[0].Datastore
	}
	p.VMPath = VMPathName(p.Spec.Datastore, p.Spec.Name)

	// Where it goes.
	f := find.NewFinder(c.Vim(), false)
	dc := object.NewDatacenter(c.Vim(), mt.dc)
	f.SetDatacenter(dc)
	inv, err := c.Inventory(ctx, mt)
	if err != nil {
		return nil, err
	}
	var hostInfo *Host
	if p.Spec.Host == "" {
		p.Spec.Host = mt.Host
	}
	for i := range inv.Hosts {
		if inv.Hosts[i].Name == p.Spec.Host {
			hostInfo = &inv.Hosts[i]
		}
	}
	if hostInfo == nil {
		return nil, fmt.Errorf("no ESXi host %q in datacenter %s: see `mtconsole vsphere datastores`", p.Spec.Host, mt.Datacenter)
	}
	if p.host, err = f.HostSystem(ctx, p.Spec.Host); err != nil {
		return nil, vimErr(err)
	}
	if p.pool, err = p.host.ResourcePool(ctx); err != nil {
		return nil, vimErr(err)
	}
	if p.Spec.Folder == "" {
		folders, err := dc.Folders(ctx)
		if err != nil {
			return nil, vimErr(err)
		}
		p.folder = folders.VmFolder
		p.Spec.Folder = folders.VmFolder.InventoryPath
	} else if p.folder, err = f.Folder(ctx, p.Spec.Folder); err != nil {
		return nil, fmt.Errorf("folder %s: %w", p.Spec.Folder, vimErr(err))
	}
	for _, d := range append([]string{p.Spec.Datastore}, datastoresOf(p.Disks)...) {
		if !slices.Contains(hostInfo.Datastores, d) {
			return nil, fmt.Errorf("datastore %s is not mounted on host %s: pick another host or datastore", d, p.Spec.Host)
		}
	}
	var nics object.VirtualDeviceList
	for i, n := range p.Spec.NICs {
		if n.Adapter == "" {
			p.Spec.NICs[i].Adapter, n.Adapter = "vmxnet3", "vmxnet3"
		}
		if !slices.Contains(hostInfo.Networks, n.Network) {
			return nil, fmt.Errorf("network %q is not on host %s (it has: %s)", n.Network, p.Spec.Host, strings.Join(hostInfo.Networks, ", "))
		}
		net, err := f.Network(ctx, n.Network)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Network, vimErr(err))
		}
		backing, err := net.EthernetCardBackingInfo(ctx)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w", n.Network, vimErr(err))
		}
		card, err := nics.CreateEthernetCard(n.Adapter, backing)
		if err != nil {
			return nil, fmt.Errorf("NIC %d: %w", i+1, err)
		}
		nics = append(nics, card)
	}
	p.nics = nics

	// Readiness: the name, the path, the memory, the room for the VM's
	// swap file (as large as its memory) on its datastore.
	vms, err := c.datacenterVMs(ctx, mt)
	if err != nil {
		return nil, err
	}
	all := readiness(mt, inv, vms, ReadinessSpec{VMName: p.Spec.Name, VMDatastore: p.Spec.Datastore, VMMemoryMB: p.Spec.MemoryMB,
		Needs: []Need{{Datastore: p.Spec.Datastore, Bytes: p.Spec.MemoryMB << 20}}})
	for _, ch := range all {
		if strings.HasPrefix(ch.ID, "vm.") || ch.ID == "mt.snapshots" || strings.HasSuffix(ch.ID, ".space") {
			p.Checks = append(p.Checks, ch)
		}
	}
	if p.Spec.MemoryMB <= 0 {
		p.Checks = append(p.Checks, Check{ID: "vm.memory", Group: GroupVSphere, Title: "Failback VM memory", Status: Fail, Detail: "no memory given",
			Fix: fmt.Sprintf("give at least %d MB", MinMemoryMB)})
	}

	// The steps.
	for _, d := range p.Disks {
		dev := ""
		if d.Device != "" {
			dev = " (" + d.Device + ")"
		}
		p.Steps = append(p.Steps, Step{Kind: "detach", Title: fmt.Sprintf("detach %s%s from %s, keeping its file", d.File, dev, mt.Name),
			Undo: fmt.Sprintf("attach it to %s at %s again", mt.Name, d.Controller)})
	}
	var nicText []string
	for _, n := range p.Spec.NICs {
		nicText = append(nicText, n.Adapter+" on "+n.Network)
	}
	p.Steps = append(p.Steps,
		Step{Kind: "create", Title: fmt.Sprintf("create VM %s in %s on %s at %s: %d CPU, %d MB, %s, NICs: %s", p.Spec.Name, p.Spec.Folder,
			p.Spec.Host, p.VMPath, p.Spec.CPUs, p.Spec.MemoryMB, p.Spec.GuestID, orText(strings.Join(nicText, ", "), "none")),
			Undo: "destroy the new VM (its disks detached first, so their files stay)"},
		Step{Kind: "attach", Title: fmt.Sprintf("attach the %d recovered disk(s) to %s on an LSI Logic controller", len(p.Disks), p.Spec.Name),
			Undo: "detach them from the new VM, keeping their files"},
		Step{Kind: "power-on", Title: "power on " + p.Spec.Name})
	for i := range p.Steps {
		p.Steps[i].Status = StepPlanned
	}
	return p, nil
}

func datastoresOf(disks []Disk) []string {
	var out []string
	for _, d := range disks {
		if d.Datastore != "" && !slices.Contains(out, d.Datastore) {
			out = append(out, d.Datastore)
		}
	}
	return out
}

// pickDisk finds the master target's disk named by want. The boot disk
// (SCSI 0:0) is never picked: it is the master target's own system.
func pickDisk(mt *VM, want string) (*Disk, error) {
	var hit []*Disk
	for i := range mt.Disks {
		d := &mt.Disks[i]
		switch {
		case strings.HasPrefix(want, "/dev/"):
			if d.Device == want {
				hit = append(hit, d)
			}
		case strings.HasPrefix(want, "["):
			if d.File == want {
				hit = append(hit, d)
			}
		case d.UUID != "" && NAA(d.UUID) == NAA(want):
			hit = append(hit, d)
		case d.Label == want:
			hit = append(hit, d)
		}
	}
	if len(hit) != 1 {
		var have []string
		for _, d := range mt.Disks {
			have = append(have, fmt.Sprintf("%s %s %s", d.Label, orText(d.Device, "-"), d.File))
		}
		return nil, fmt.Errorf("disk %q: %d of the master target's disks match (it has: %s)", want, len(hit), strings.Join(have, "; "))
	}
	if hit[0].Controller == "SCSI 0:0" {
		return nil, fmt.Errorf("disk %q is the master target's boot disk (SCSI 0:0): refusing to move it", want)
	}
	return hit[0], nil
}

// Execute carries out a plan: detach the disks from the master target,
// create the VM, attach the disks, power it on. progress is called on
// every step's change. On a failure the steps done are undone in reverse
// order (the disks back on the master target at their old addresses, the
// new VM destroyed without its disks) and the error says what failed and
// what, if anything, could not be undone.
func (c *Client) Execute(ctx context.Context, p *Plan, progress func(Step)) error {
	if Failed(p.Checks) {
		var ids []string
		for _, ch := range p.Checks {
			if ch.Status == Fail {
				ids = append(ids, ch.ID+": "+ch.Detail)
			}
		}
		return fmt.Errorf("%w: %s", ErrNotReady, strings.Join(ids, "; "))
	}
	if progress == nil {
		progress = func(Step) {}
	}
	var undo []func(context.Context) error
	var undoStep []int
	fail := func(i int, err error) error {
		p.Steps[i].Status, p.Steps[i].Error = StepFailed, err.Error()
		progress(p.Steps[i])
		// Undo with a context of its own: a cancelled ctx (Ctrl-C) must
		// not leave the disks half moved.
		uctx := context.WithoutCancel(ctx)
		var undoErrs []error
		for j := len(undo) - 1; j >= 0; j-- {
			s := &p.Steps[undoStep[j]]
			if uerr := undo[j](uctx); uerr != nil {
				s.Status, s.Error = StepUndoFailed, uerr.Error()
				undoErrs = append(undoErrs, fmt.Errorf("undo %q: %w", s.Title, uerr))
			} else {
				s.Status = StepUndone
			}
			progress(*s)
		}
		p.RolledBack = true
		if len(undoErrs) > 0 {
			return fmt.Errorf("%s: %w; rollback incomplete, fix by hand: %w", p.Steps[i].Title, err, errors.Join(undoErrs...))
		}
		return fmt.Errorf("%s: %w (every step before it was undone)", p.Steps[i].Title, err)
	}
	done := func(i int, u func(context.Context) error) {
		p.Steps[i].Status = StepDone
		progress(p.Steps[i])
		if u != nil {
			undo = append(undo, u)
			undoStep = append(undoStep, i)
		}
	}

	i := 0
	for _, disk := range p.mtDisks {
		if err := reconfigure(ctx, p.mt, removeDisk(disk)); err != nil {
			return fail(i, err)
		}
		done(i, func(ctx context.Context) error { return reconfigure(ctx, p.mt, addDisk(disk)) })
		i++
	}

	// Create.
	var devs object.VirtualDeviceList
	scsi, err := devs.CreateSCSIController("lsilogic")
	if err != nil {
		return fail(i, err)
	}
	devs = append(devs, scsi)
	devs = append(devs, p.nics...)
	changes, err := devs.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return fail(i, err)
	}
	cs := types.VirtualMachineConfigSpec{
		Name: p.Spec.Name, GuestId: p.Spec.GuestID, NumCPUs: p.Spec.CPUs, MemoryMB: p.Spec.MemoryMB,
		Files:        &types.VirtualMachineFileInfo{VmPathName: "[" + p.Spec.Datastore + "]"},
		DeviceChange: changes,
		// The recovered disks keep their UUIDs, so the failback VM's guest
		// finds them by the same ids.
		ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "disk.EnableUUID", Value: "TRUE"}},
	}
	task, err := p.folder.CreateVM(ctx, cs, p.pool, p.host)
	if err != nil {
		return fail(i, vimErr(err))
	}
	res, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return fail(i, vimErr(err))
	}
	vm := object.NewVirtualMachine(c.Vim(), res.Result.(types.ManagedObjectReference))
	p.created = vm
	done(i, func(ctx context.Context) error { return destroyKeepingDisks(ctx, vm) })
	i++

	// Attach.
	vdevs, err := vm.Device(ctx)
	if err != nil {
		return fail(i, vimErr(err))
	}
	ctrl := vdevs.PickController((*types.VirtualLsiLogicController)(nil))
	if ctrl == nil {
		return fail(i, errors.New("the new VM has no LSI Logic controller"))
	}
	var spec types.VirtualMachineConfigSpec
	for k, d := range p.mtDisks {
		nd := *d
		nd.Key = -100 - int32(k)
		nd.ControllerKey = ctrl.GetVirtualController().Key
		unit := int32(k)
		if unit >= 7 {
			unit++ // 7 is the controller's own
		}
		nd.UnitNumber = &unit
		nd.Connectable = nil
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: &nd})
	}
	if err := reconfigure(ctx, vm, spec); err != nil {
		return fail(i, err)
	}
	done(i, func(ctx context.Context) error { return detachAllDisks(ctx, vm) })
	i++

	// Power on: the last step, and the one that is not undone: once the
	// guest runs, its disks are its own.
	task, err = vm.PowerOn(ctx)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		return fail(i, vimErr(err))
	}
	done(i, nil)
	return nil
}

func reconfigure(ctx context.Context, vm *object.VirtualMachine, spec types.VirtualMachineConfigSpec) error {
	task, err := vm.Reconfigure(ctx, spec)
	if err != nil {
		return vimErr(err)
	}
	return vimErr(task.Wait(ctx))
}

// removeDisk detaches a disk and keeps its file: no FileOperation.
func removeDisk(d *types.VirtualDisk) types.VirtualMachineConfigSpec {
	return types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: d}}}
}

// addDisk attaches an existing disk file as it was: same controller and
// unit, same backing (and so the same UUID).
func addDisk(d *types.VirtualDisk) types.VirtualMachineConfigSpec {
	nd := *d
	nd.Key = -1
	return types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: &nd}}}
}

func detachAllDisks(ctx context.Context, vm *object.VirtualMachine) error {
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.hardware.device"}, &m); err != nil {
		return vimErr(err)
	}
	var spec types.VirtualMachineConfigSpec
	for _, d := range object.VirtualDeviceList(m.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		spec.DeviceChange = append(spec.DeviceChange, removeDisk(d.(*types.VirtualDisk)).DeviceChange...)
	}
	if len(spec.DeviceChange) == 0 {
		return nil
	}
	return reconfigure(ctx, vm, spec)
}

// destroyKeepingDisks destroys a VM that Execute created, after taking
// its disks off it: Destroy deletes the files of the disks it has.
func destroyKeepingDisks(ctx context.Context, vm *object.VirtualMachine) error {
	if err := detachAllDisks(ctx, vm); err != nil {
		return err
	}
	task, err := vm.Destroy(ctx)
	if err != nil {
		return vimErr(err)
	}
	return vimErr(task.Wait(ctx))
}
