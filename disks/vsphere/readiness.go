package vsphere

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// MinMemoryMB is the least memory vContinuum's readiness check allowed.
const MinMemoryMB = 512

// RecommendedMTMemoryMB is the master target's recommended memory (6 GB).
const RecommendedMTMemoryMB = 6 * 1024

// Need is the space recovered disks or the failback VM need on a datastore.
type Need struct {
	Datastore string `json:"datastore"`
	Bytes     int64  `json:"bytes"`
}

// ReadinessSpec is what the plan is about to do.
type ReadinessSpec struct {
	// DisksToAttach is how many disks the plan attaches to the master target.
	DisksToAttach int `json:"disksToAttach"`
	// Needs is the space needed on each target datastore.
	Needs []Need `json:"needs"`
	// VMName is the failback VM's display name, which must be free in the
	// datacenter; VMDatastore is where its files would go.
	VMName      string `json:"vmName,omitempty"`
	VMDatastore string `json:"vmDatastore,omitempty"`
	// VMMemoryMB is the failback VM's memory.
	VMMemoryMB int64 `json:"vmMemoryMB,omitempty"`
	// TargetVM is an existing VM the recovery writes to: it must be
	// powered off.
	TargetVM string `json:"targetVM,omitempty"`
}

// vmRow is a VM of the datacenter, for the name, path and power checks.
type vmRow struct {
	name, path, power string
}

func (c *Client) datacenterVMs(ctx context.Context, vm *VM) ([]vmRow, error) {
	var vms []mo.VirtualMachine
	if err := c.retrieveAll(ctx, vm.dc, "VirtualMachine", []string{"name", "summary.config.vmPathName", "runtime.powerState"}, &vms); err != nil {
		return nil, err
	}
	rows := make([]vmRow, len(vms))
	for i, v := range vms {
		rows[i] = vmRow{name: v.Name, path: v.Summary.Config.VmPathName, power: string(v.Runtime.PowerState)}
	}
	return rows, nil
}

// VMPathName is where vSphere puts a new VM's configuration file.
func VMPathName(datastore, name string) string {
	return fmt.Sprintf("[%s] %s/%s.vmx", datastore, name, name)
}

// Readiness runs vContinuum's checks against the master target mt and the
// plan in spec. It changes nothing.
func (c *Client) Readiness(ctx context.Context, mt *VM, spec ReadinessSpec) ([]Check, error) {
	inv, err := c.Inventory(ctx, mt)
	if err != nil {
		return nil, err
	}
	vms, err := c.datacenterVMs(ctx, mt)
	if err != nil {
		return nil, err
	}
	return readiness(mt, inv, vms, spec), nil
}

func readiness(mt *VM, inv *Inventory, vms []vmRow, spec ReadinessSpec) []Check {
	var out []Check
	add := func(id, title string, status Status, detail, fix string) {
		out = append(out, Check{ID: id, Group: GroupVSphere, Title: title, Status: status, Detail: detail, Fix: fix})
	}

	// Memory.
	switch {
	case mt.MemoryMB < MinMemoryMB:
		add("mt.memory", "Master target memory", Fail, fmt.Sprintf("%s has %d MB", mt.Name, mt.MemoryMB),
			fmt.Sprintf("give the master target at least %d MB (%d MB recommended), with the VM powered off", MinMemoryMB, RecommendedMTMemoryMB))
	case mt.MemoryMB < RecommendedMTMemoryMB:
		add("mt.memory", "Master target memory", Warn, fmt.Sprintf("%s has %d MB, %d MB recommended", mt.Name, mt.MemoryMB, RecommendedMTMemoryMB),
			"add memory to the master target when it can be powered off")
	default:
		add("mt.memory", "Master target memory", Pass, fmt.Sprintf("%d MB", mt.MemoryMB), "")
	}
	if spec.VMMemoryMB > 0 {
		if spec.VMMemoryMB < MinMemoryMB {
			add("vm.memory", "Failback VM memory", Fail, fmt.Sprintf("%d MB asked for", spec.VMMemoryMB),
				fmt.Sprintf("give the failback VM at least %d MB", MinMemoryMB))
		} else {
			add("vm.memory", "Failback VM memory", Pass, fmt.Sprintf("%d MB", spec.VMMemoryMB), "")
		}
	}

	// disk.EnableUUID: without it the guest sees no disk ids.
	if mt.EnableUUIDOn() {
		add("mt.enableuuid", "disk.EnableUUID on the master target", Pass, "TRUE", "")
	} else {
		add("mt.enableuuid", "disk.EnableUUID on the master target", Fail,
			fmt.Sprintf("disk.EnableUUID is %s: the guest sees no stable SCSI ids", orText(mt.EnableUUID, "not set")), EnableUUIDFix(mt.Name))
	}

	// Snapshots.
	if mt.Snapshots > 0 {
		add("mt.snapshots", "No snapshots on the master target", Fail, fmt.Sprintf("%s has %d snapshot(s)", mt.Name, mt.Snapshots),
			"delete all snapshots of the master target (Snapshots > Delete All): disks cannot be attached to a VM with snapshots")
	} else {
		add("mt.snapshots", "No snapshots on the master target", Pass, "none", "")
	}

	// Controllers.
	kinds := map[string]int{}
	var pv []string
	for _, c := range mt.Controllers {
		kinds[c.Type]++
		if c.Type == "pvscsi" {
			pv = append(pv, c.Label)
		}
	}
	switch {
	case len(mt.Controllers) == 0:
		add("mt.controller.type", "Master target SCSI controller is LSI Logic", Fail, "no SCSI controller",
			"add an LSI Logic Parallel SCSI controller to the master target (powered off)")
	case len(pv) > 0:
		add("mt.controller.type", "Master target SCSI controller is LSI Logic", Fail,
			fmt.Sprintf("%s paravirtual (pvscsi): reprotect fails with it", strings.Join(pv, ", ")),
			"power off the master target and change the controller type to LSI Logic Parallel (Edit Settings > SCSI controller > Change Type)")
	case kinds["lsilogic"] == len(mt.Controllers):
		add("mt.controller.type", "Master target SCSI controller is LSI Logic", Pass, "LSI Logic Parallel", "")
	default:
		add("mt.controller.type", "Master target SCSI controller is LSI Logic", Warn, "controllers: "+typeList(kinds),
			"LSI Logic Parallel is the one recommended for a Linux master target")
	}
	if len(kinds) > 1 {
		add("mt.controller.same", "All SCSI controllers of one type", Fail, "controllers: "+typeList(kinds),
			"power off the master target and change every SCSI controller to LSI Logic Parallel")
	} else {
		add("mt.controller.same", "All SCSI controllers of one type", Pass, typeList(kinds), "")
	}

	// Slots and the 60-disk limit.
	free := 0
	for _, c := range mt.Controllers {
		free += c.FreeSlots
	}
	if spec.DisksToAttach > free {
		add("mt.scsi.slots", "Free SCSI slots for the disks to attach", Fail,
			fmt.Sprintf("%d disk(s) to attach, %d free slot(s) on %d controller(s)", spec.DisksToAttach, free, len(mt.Controllers)),
			fmt.Sprintf("add an LSI Logic Parallel SCSI controller (up to %d; %d disks each), or attach fewer disks", MaxControllers, SlotsPerController))
	} else {
		add("mt.scsi.slots", "Free SCSI slots for the disks to attach", Pass,
			fmt.Sprintf("%d disk(s) to attach, %d free slot(s)", spec.DisksToAttach, free), "")
	}
	if total := len(mt.Disks) + spec.DisksToAttach; total > MaxDisks {
		add("mt.disks.max", fmt.Sprintf("At most %d disks on the master target", MaxDisks), Fail,
			fmt.Sprintf("%d attached + %d to attach = %d", len(mt.Disks), spec.DisksToAttach, total),
			"split the plan over two master targets, or recover fewer disks at once")
	} else {
		add("mt.disks.max", fmt.Sprintf("At most %d disks on the master target", MaxDisks), Pass,
			fmt.Sprintf("%d attached + %d to attach = %d", len(mt.Disks), spec.DisksToAttach, total), "")
	}

	// Datastores: accessible from the master target's host, with room.
	needs := map[string]int64{}
	for _, n := range spec.Needs {
		needs[n.Datastore] += n.Bytes
	}
	if spec.VMDatastore != "" {
		if _, ok := needs[spec.VMDatastore]; !ok {
			needs[spec.VMDatastore] = 0
		}
	}
	names := make([]string, 0, len(needs))
	for n := range needs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		id := "datastore." + name
		ds, err := inv.datastore(name)
		if err != nil {
			add(id+".access", "Datastore "+name+" accessible from the master target's host", Fail, err.Error(),
				"pick a datastore from `mtconsole vsphere datastores`")
			continue
		}
		if ds.FromHost {
			add(id+".access", "Datastore "+name+" accessible from the master target's host", Pass, fmt.Sprintf("%s, mounted on %s", ds.Type, mt.Host), "")
		} else {
			add(id+".access", "Datastore "+name+" accessible from the master target's host", Fail,
				fmt.Sprintf("%s is not mounted and accessible on %s", name, mt.Host),
				"mount the datastore on the master target's ESXi host, or pick another (vContinuum error 8061)")
		}
		need := needs[name]
		if need > ds.FreeBytes {
			add(id+".space", "Free space on "+name, Fail,
				fmt.Sprintf("needs %s, %s free of %s", GiB(need), GiB(ds.FreeBytes), GiB(ds.CapacityBytes)),
				"free space on the datastore, or put some disks on another datastore")
		} else {
			add(id+".space", "Free space on "+name, Pass, fmt.Sprintf("needs %s, %s free", GiB(need), GiB(ds.FreeBytes)), "")
		}
	}

	// The failback VM's name and path.
	if spec.VMName != "" {
		var taken []string
		for _, v := range vms {
			if v.name == spec.VMName {
				taken = append(taken, v.name)
			}
		}
		if len(taken) > 0 {
			add("vm.name", "Failback VM name free in "+inv.Datacenter, Fail,
				fmt.Sprintf("a VM named %q exists in %s", spec.VMName, inv.Datacenter),
				"give the failback VM another name (--name), or rename or remove the existing VM (vContinuum error 78052)")
		} else {
			add("vm.name", "Failback VM name free in "+inv.Datacenter, Pass, spec.VMName, "")
		}
		if spec.VMDatastore != "" {
			p := VMPathName(spec.VMDatastore, spec.VMName)
			var at string
			for _, v := range vms {
				if v.path == p {
					at = v.name
				}
			}
			if at != "" {
				add("vm.path", "No VM at the failback VM's path", Fail, fmt.Sprintf("%s is the VM %q's", p, at),
					"give the failback VM another name, or pick another datastore")
			} else {
				add("vm.path", "No VM at the failback VM's path", Pass, p, "")
			}
		}
	}
	if spec.TargetVM != "" {
		var found *vmRow
		for i := range vms {
			if vms[i].name == spec.TargetVM {
				found = &vms[i]
			}
		}
		switch {
		case found == nil:
			add("vm.target.power", "Target VM powered off", Fail, fmt.Sprintf("no VM named %q in %s", spec.TargetVM, inv.Datacenter),
				"check the target VM's name")
		case found.power != string(types.VirtualMachinePowerStatePoweredOff):
			fix := fmt.Sprintf("%s is up and running: shut it down before recovering onto it", spec.TargetVM)
			if found.power == string(types.VirtualMachinePowerStateSuspended) {
				fix = fmt.Sprintf("%s is suspended: power it on and shut the guest down, or power it off (its suspended state is lost), before recovering onto it", spec.TargetVM)
			}
			add("vm.target.power", "Target VM powered off", Fail, fmt.Sprintf("%s is %s", spec.TargetVM, found.power), fix)
		default:
			add("vm.target.power", "Target VM powered off", Pass, spec.TargetVM+" is poweredOff", "")
		}
	}
	return out
}

func typeList(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for t, n := range m {
		parts = append(parts, fmt.Sprintf("%d %s", n, t))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// GiB formats bytes for people.
func GiB(b int64) string {
	return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
}
