package vsphere

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// ErrNotReady: a readiness check of the plan failed; nothing was changed.
var ErrNotReady = errors.New("not ready")

// NIC is a network adapter of the failback VM.
type NIC struct {
	Network string `json:"network"`
	Adapter string `json:"adapter"`       // vmxnet3 (default), e1000, e1000e
	MAC     string `json:"mac,omitempty"` // kept as given (the source's MAC); generated when empty
	// Disconnected leaves the NIC unconnected at power-on (a failback
	// VM beside a still-running source must not take its address).
	Disconnected bool `json:"disconnected,omitempty"`
}

// SCSI controller types the failback VM can have.
var SCSITypes = []string{"lsilogic", "lsilogic-sas", "pvscsi"}

// FailbackSpec is the failback VM to create from recovered disks that are
// attached to the master target.
type FailbackSpec struct {
	// Name is the display name; the source's hostname when empty.
	Name           string `json:"name"`
	SourceHostname string `json:"sourceHostname,omitempty"`
	// Host is the ESXi host (the master target's when empty, unless a
	// cluster is given: then DRS places it).
	Host string `json:"host,omitempty"`
	// Cluster and Pool place the VM: a cluster's root pool, or a
	// resource pool by inventory path (the host's pool when both empty).
	Cluster string `json:"cluster,omitempty"`
	Pool    string `json:"pool,omitempty"`
	// Datastore holds the VM's files (the first disk's when empty).
	Datastore string `json:"datastore,omitempty"`
	// Folder is the inventory folder (the datacenter's VM folder when empty).
	Folder         string `json:"folder,omitempty"`
	CPUs           int32  `json:"cpus"`
	CoresPerSocket int32  `json:"coresPerSocket,omitempty"`
	MemoryMB       int64  `json:"memoryMB"`
	GuestID        string `json:"guestId,omitempty"`    // otherLinux64Guest when empty
	Firmware       string `json:"firmware,omitempty"`   // bios (default) or efi
	SecureBoot     bool   `json:"secureBoot,omitempty"` // efi only
	HWVersion      int    `json:"hwVersion,omitempty"`  // vmx-NN; the host's default when 0
	NICs           []NIC  `json:"nics"`
	// Controllers are the SCSI controllers' types, bus 0 first
	// (lsilogic, lsilogic-sas, pvscsi); as many lsilogic as the disks
	// need when empty.
	Controllers []string `json:"controllers,omitempty"`
	// Disks are the recovered disks on the master target, each named by
	// its block device (/dev/sdc, mapped through DevRoot), VMDK file
	// ("[ds] dir/x.vmdk"), VMDK UUID, or label ("Hard disk 3").
	Disks []string `json:"disks"`
	// DiskBus is the controller bus of each disk (same order as Disks);
	// when empty, 15 disks per controller in order.
	DiskBus []int `json:"diskBus,omitempty"`
	// NoPowerOn leaves the VM powered off.
	NoPowerOn bool `json:"noPowerOn,omitempty"`
	// OntoVM attaches the disks to this existing, powered-off VM instead
	// of creating one (a recovery onto an existing VM).
	OntoVM string `json:"ontoVm,omitempty"`
	// Group is the protection group (the protected machine, as the
	// replication agent names it) whose pairs' targets are the disks
	// when Disks is empty, and whose name is the VM's when no name is
	// given. The caller resolves it (create-vm asks the agent).
	Group string `json:"group,omitempty"`
	// Defaults say which fields were filled from what is known of the
	// source, and from where (create-vm --dry-run prints them).
	Defaults []string `json:"defaults,omitempty"`
	DevRoot  string   `json:"-"`
	// PlanDir is where Execute keeps the plan file (no file when empty).
	PlanDir string `json:"-"`
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
	Kind   string `json:"kind"` // detach, create (or use), attach, power-on
	Title  string `json:"title"`
	Undo   string `json:"undo"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Task is the vSphere task under way, while the step runs.
	Task string `json:"task,omitempty"`
}

// Plan is a failback VM creation worked out against the inventory,
// without changing anything: printing it is the dry run. Execute records
// it, with the state of every step, in its plan file.
type Plan struct {
	ID     string       `json:"id"`
	Status string       `json:"status"` // planned, running, done, undone, undo-failed
	Spec   FailbackSpec `json:"spec"`
	VMPath string       `json:"vmPath"` // the .vmx's datastore path
	MT     string       `json:"masterTarget"`
	Disks  []Disk       `json:"disks"` // the master target's disks to move
	Checks []Check      `json:"checks"`
	Steps  []Step       `json:"steps"`
	// RolledBack is set when Execute failed and undid its steps.
	RolledBack bool      `json:"rolledBack,omitempty"`
	State      planState `json:"state"`
	// File is the plan file ("" when not kept).
	File string `json:"-"`

	mt      *object.VirtualMachine
	host    *object.HostSystem
	pool    *object.ResourcePool
	folder  *object.Folder
	created *object.VirtualMachine
}

// MaxNameLen is the longest VM name vSphere takes.
const MaxNameLen = 80

// Validate checks the spec alone, before anything is asked of vSphere.
// Each error names the create-vm flag (and the plan file field) at fault.
func (spec *FailbackSpec) Validate() error {
	if spec.Name == "" {
		spec.Name = spec.SourceHostname
	}
	if spec.OntoVM != "" {
		spec.Name = spec.OntoVM
	}
	bad := func(flag, format string, a ...any) error {
		return fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, a...))
	}
	switch {
	case spec.Name == "":
		return bad("name", "no name and no --source-hostname")
	case len(spec.Name) > MaxNameLen:
		return bad("name", "%q is %d characters, vSphere takes at most %d", spec.Name, len(spec.Name), MaxNameLen)
	case strings.ContainsAny(spec.Name, "/\\%"):
		return bad("name", "%q has a / \\ or %%: vSphere escapes them in the VM's path; pick another name", spec.Name)
	case spec.CPUs <= 0:
		return bad("cpus", "%d: at least 1", spec.CPUs)
	case spec.CPUs > 768:
		return bad("cpus", "%d: vSphere allows at most 768", spec.CPUs)
	case spec.CoresPerSocket < 0 || (spec.CoresPerSocket > 0 && spec.CPUs%spec.CoresPerSocket != 0):
		return bad("cores-per-socket", "%d does not divide --cpus %d", spec.CoresPerSocket, spec.CPUs)
	case spec.MemoryMB < MinMemoryMB:
		return bad("memory-mb", "%d: at least %d", spec.MemoryMB, MinMemoryMB)
	case spec.MemoryMB%4 != 0:
		return bad("memory-mb", "%d: vSphere wants a multiple of 4 MB", spec.MemoryMB)
	}
	switch spec.Firmware {
	case "":
		spec.Firmware = "bios"
	case "bios", "efi":
	default:
		return bad("firmware", "%q: bios or efi", spec.Firmware)
	}
	if spec.SecureBoot && spec.Firmware != "efi" {
		return bad("secure-boot", "needs --firmware efi")
	}
	if spec.HWVersion != 0 && (spec.HWVersion < 7 || spec.HWVersion > 22) {
		return bad("hw-version", "%d: give 7 to 22 (vmx-07 … vmx-22), or 0 for the host's default", spec.HWVersion)
	}
	if spec.SecureBoot && spec.HWVersion != 0 && spec.HWVersion < 13 {
		return bad("secure-boot", "needs --hw-version 13 or later")
	}
	if spec.GuestID == "" {
		spec.GuestID = string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest)
	} else if !slices.Contains(types.VirtualMachineGuestOsIdentifier("").Strings(), spec.GuestID) {
		return bad("guest-id", "%q is no vSphere guest OS id (e.g. rhel9_64Guest, ubuntu64Guest, otherLinux64Guest)", spec.GuestID)
	}
	if spec.Cluster != "" && spec.Pool != "" {
		return bad("pool", "give --pool or --cluster, not both")
	}
	n := len(spec.Disks)
	switch {
	case n == 0:
		return bad("disk", "no recovered disks given")
	case n > MaxDisks:
		return bad("disk", "%d disks: at most %d (%d controllers of %d)", n, MaxDisks, MaxControllers, SlotsPerController)
	}
	if len(spec.DiskBus) > 0 && len(spec.DiskBus) != n {
		return bad("disk", "a bus for %d of %d disks: give DISK@BUS for every disk or for none", len(spec.DiskBus), n)
	}
	need := (n + SlotsPerController - 1) / SlotsPerController
	perBus := map[int]int{}
	for i, b := range spec.DiskBus {
		if b < 0 || b >= MaxControllers {
			return bad("disk", "%s@%d: the bus is 0 to %d", spec.Disks[i], b, MaxControllers-1)
		}
		if perBus[b]++; perBus[b] > SlotsPerController {
			return bad("disk", "more than %d disks on bus %d", SlotsPerController, b)
		}
		need = max(need, b+1)
	}
	if len(spec.Controllers) > MaxControllers {
		return bad("controller", "%d controllers: at most %d", len(spec.Controllers), MaxControllers)
	}
	for i, t := range spec.Controllers {
		if !slices.Contains(SCSITypes, t) {
			return bad("controller", "%q (bus %d): one of %s", t, i, strings.Join(SCSITypes, ", "))
		}
	}
	if spec.OntoVM == "" {
		if len(spec.Controllers) > 0 && len(spec.Controllers) < need {
			return bad("controller", "%d controller(s) for disks on %d buses: give one --controller per bus", len(spec.Controllers), need)
		}
		for len(spec.Controllers) < need {
			t := "lsilogic"
			if len(spec.Controllers) > 0 {
				t = spec.Controllers[0]
			}
			spec.Controllers = append(spec.Controllers, t)
		}
	} else if len(spec.Controllers) > 0 || spec.HWVersion != 0 || spec.Firmware != "bios" || spec.SecureBoot || len(spec.NICs) > 0 {
		return bad("onto-vm", "the existing VM keeps its own hardware: --controller, --hw-version, --firmware, --secure-boot and --nic do not go with it")
	}
	for i := range spec.NICs {
		nc := &spec.NICs[i]
		if nc.Adapter == "" {
			nc.Adapter = "vmxnet3"
		}
		if !slices.Contains([]string{"vmxnet3", "e1000e", "e1000"}, nc.Adapter) {
			return bad("nic", "NIC %d: adapter %q: vmxnet3, e1000e or e1000", i+1, nc.Adapter)
		}
		if nc.Network == "" {
			return bad("nic", "NIC %d: no network", i+1)
		}
		if nc.MAC != "" {
			hw, err := net.ParseMAC(nc.MAC)
			if err != nil || len(hw) != 6 {
				return bad("nic", "NIC %d: mac %q is not a MAC address like 00:50:56:aa:bb:cc", i+1, nc.MAC)
			}
			nc.MAC = hw.String()
			if hw[0]&1 == 1 {
				return bad("nic", "NIC %d: mac %s is a multicast address", i+1, nc.MAC)
			}
		}
	}
	return nil
}

// PlanFailback resolves spec against the master target and the
// inventory and runs the readiness checks the creation depends on. It
// changes nothing. An error is a spec that cannot be resolved; failed
// checks are in Plan.Checks, and Execute refuses such a plan.
func (c *Client) PlanFailback(ctx context.Context, mtObj *object.VirtualMachine, spec FailbackSpec) (*Plan, error) {
	spec.NICs = slices.Clone(spec.NICs)
	spec.Controllers = slices.Clone(spec.Controllers)
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("failback VM: %w", err)
	}
	mt, err := c.Describe(ctx, mtObj)
	if err != nil {
		return nil, err
	}
	p := &Plan{ID: newPlanID(), Status: PlanNew, Spec: spec, MT: mt.Name, mt: mtObj}
	p.State.MTRef = mtObj.Reference()
	if spec.PlanDir != "" {
		p.File = filepath.Join(spec.PlanDir, spec.Name+"-"+p.ID+".json")
	}

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
			return nil, fmt.Errorf("--disk %s: given twice", want)
		}
		seen[d.Key] = true
		p.Disks = append(p.Disks, *d)
		raw, err := vmomiJSON(devices.FindByKey(d.Key))
		if err != nil {
			return nil, fmt.Errorf("disk %s: %w", d.File, err)
		}
		p.State.DiskDevices = append(p.State.DiskDevices, raw)
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
	var clusterHosts []types.ManagedObjectReference
	clusterName := p.Spec.Cluster
	if p.Spec.Host == "" && p.Spec.Cluster == "" && p.Spec.Pool == "" {
		p.Spec.Host = mt.Host
	}
	if p.Spec.Host != "" {
		for i := range inv.Hosts {
			if inv.Hosts[i].Name == p.Spec.Host {
				hostInfo = &inv.Hosts[i]
			}
		}
		if hostInfo == nil {
			return nil, fmt.Errorf("--host %q: no such ESXi host in datacenter %s: see `mtconsole vsphere datastores`", p.Spec.Host, mt.Datacenter)
		}
		if p.host, err = f.HostSystem(ctx, p.Spec.Host); err != nil {
			return nil, vimErr(err)
		}
		p.State.HostRef = p.host.Reference()
	}
	switch {
	case p.Spec.Pool != "":
		if p.pool, err = f.ResourcePool(ctx, p.Spec.Pool); err != nil {
			return nil, fmt.Errorf("--pool %s: %w", p.Spec.Pool, vimErr(err))
		}
		// The pool's hosts: its standalone host, or its cluster's.
		var rp mo.ResourcePool
		if err := p.pool.Properties(ctx, p.pool.Reference(), []string{"owner"}, &rp); err != nil {
			return nil, vimErr(err)
		}
		var owner mo.ComputeResource
		if err := property.DefaultCollector(c.Vim()).RetrieveOne(ctx, rp.Owner, []string{"name", "host"}, &owner); err != nil {
			return nil, vimErr(err)
		}
		switch {
		case p.host != nil:
			if !slices.Contains(owner.Host, p.host.Reference()) {
				return nil, fmt.Errorf("--host %s is not a host of --pool %s (its hosts are %s's)", p.Spec.Host, p.Spec.Pool, owner.Name)
			}
		case rp.Owner.Type == "ComputeResource" && len(owner.Host) == 1:
			// A standalone host's pool: that host.
			var h mo.HostSystem
			if err := property.DefaultCollector(c.Vim()).RetrieveOne(ctx, owner.Host[0], []string{"name"}, &h); err != nil {
				return nil, vimErr(err)
			}
			p.Spec.Host = h.Name
			p.host = object.NewHostSystem(c.Vim(), owner.Host[0])
			p.State.HostRef = owner.Host[0]
			for i := range inv.Hosts {
				if inv.Hosts[i].Name == h.Name {
					hostInfo = &inv.Hosts[i]
				}
			}
		default:
			// A cluster's pool: DRS picks the host.
			clusterHosts, clusterName = owner.Host, owner.Name
		}
	case p.Spec.Cluster != "":
		cl, err := f.ClusterComputeResource(ctx, p.Spec.Cluster)
		if err != nil {
			return nil, fmt.Errorf("--cluster %s: %w", p.Spec.Cluster, vimErr(err))
		}
		var cm mo.ClusterComputeResource
		if err := cl.Properties(ctx, cl.Reference(), []string{"host"}, &cm); err != nil {
			return nil, vimErr(err)
		}
		clusterHosts = cm.Host
		if p.pool, err = cl.ResourcePool(ctx); err != nil {
			return nil, vimErr(err)
		}
		if p.host != nil {
			hosts, err := cl.Hosts(ctx)
			if err != nil {
				return nil, vimErr(err)
			}
			if !slices.ContainsFunc(hosts, func(h *object.HostSystem) bool { return h.Reference() == p.host.Reference() }) {
				return nil, fmt.Errorf("--host %s is not in --cluster %s", p.Spec.Host, p.Spec.Cluster)
			}
		}
	default:
		if p.pool, err = p.host.ResourcePool(ctx); err != nil {
			return nil, vimErr(err)
		}
	}
	p.State.PoolRef = p.pool.Reference()
	if p.Spec.Folder == "" {
		folders, err := dc.Folders(ctx)
		if err != nil {
			return nil, vimErr(err)
		}
		p.folder = folders.VmFolder
		p.Spec.Folder = folders.VmFolder.InventoryPath
	} else if p.folder, err = f.Folder(ctx, p.Spec.Folder); err != nil {
		return nil, fmt.Errorf("--folder %s: %w", p.Spec.Folder, vimErr(err))
	}
	p.State.FolderRef = p.folder.Reference()
	if hostInfo != nil {
		for _, d := range append([]string{p.Spec.Datastore}, datastoresOf(p.Disks)...) {
			if !slices.Contains(hostInfo.Datastores, d) {
				return nil, fmt.Errorf("datastore %s is not mounted on host %s: pick another --host or --datastore", d, p.Spec.Host)
			}
		}
	}
	var devs object.VirtualDeviceList
	for i, n := range p.Spec.NICs {
		if hostInfo != nil && !slices.Contains(hostInfo.Networks, n.Network) {
			return nil, fmt.Errorf("--nic %d: network %q is not on host %s (it has: %s)", i+1, n.Network, p.Spec.Host, strings.Join(hostInfo.Networks, ", "))
		}
		netw, err := f.Network(ctx, n.Network)
		if err != nil {
			return nil, fmt.Errorf("--nic %d: network %s: %w", i+1, n.Network, vimErr(err))
		}
		backing, err := netw.EthernetCardBackingInfo(ctx)
		if err != nil {
			return nil, fmt.Errorf("--nic %d: network %s: %w", i+1, n.Network, vimErr(err))
		}
		card, err := devs.CreateEthernetCard(n.Adapter, backing)
		if err != nil {
			return nil, fmt.Errorf("--nic %d: %w", i+1, err)
		}
		eth := card.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		eth.Key = int32(-300 - i)
		if n.MAC != "" {
			eth.AddressType, eth.MacAddress = string(types.VirtualEthernetCardMacTypeManual), n.MAC
		}
		eth.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: !n.Disconnected, AllowGuestControl: true, Connected: !n.Disconnected}
		devs = append(devs, card)
	}
	for bus, t := range p.Spec.Controllers {
		ctl, err := object.VirtualDeviceList(nil).CreateSCSIController(t)
		if err != nil {
			return nil, fmt.Errorf("--controller %s: %w", t, err)
		}
		sc := ctl.(types.BaseVirtualSCSIController).GetVirtualSCSIController()
		sc.Key, sc.BusNumber = int32(-200-bus), int32(bus)
		devs = append(devs, ctl)
	}

	// Readiness: the name, the path, the memory, the room for the VM's
	// swap file (as large as its memory) on its datastore, the host's
	// CPUs and memory.
	vms, err := c.datacenterVMs(ctx, mt)
	if err != nil {
		return nil, err
	}
	rs := ReadinessSpec{VMName: p.Spec.Name, VMDatastore: p.Spec.Datastore, VMMemoryMB: p.Spec.MemoryMB,
		Needs: []Need{{Datastore: p.Spec.Datastore, Bytes: p.Spec.MemoryMB << 20}}}
	if p.Spec.OntoVM != "" {
		rs = ReadinessSpec{TargetVM: p.Spec.OntoVM}
	}
	all := readiness(mt, inv, vms, rs)
	for _, ch := range all {
		if strings.HasPrefix(ch.ID, "vm.") || ch.ID == "mt.snapshots" || strings.HasSuffix(ch.ID, ".space") {
			p.Checks = append(p.Checks, ch)
		}
	}
	switch {
	case p.Spec.OntoVM != "":
		// The existing VM keeps its own CPUs and memory.
	case hostInfo == nil && clusterName != "":
		ch, err := c.clusterCapacity(ctx, inv, p.Spec, clusterName, clusterHosts)
		if err != nil {
			return nil, err
		}
		p.Checks = append(p.Checks, ch)
	case hostInfo != nil:
		ch := Check{ID: "vm.capacity", Group: GroupVSphere, Title: "Host has the CPUs and memory", Status: Pass,
			Detail: fmt.Sprintf("%s: %d logical CPUs, %d MB; the VM wants %d CPUs, %d MB", hostInfo.Name, hostInfo.CPUs, hostInfo.MemoryMB, p.Spec.CPUs, p.Spec.MemoryMB)}
		if int64(hostInfo.CPUs) < int64(p.Spec.CPUs) || hostInfo.MemoryMB < p.Spec.MemoryMB {
			ch.Status, ch.Fix = Fail, "give fewer --cpus or less --memory-mb, or another --host"
		}
		p.Checks = append(p.Checks, ch)
	}
	if p.Spec.OntoVM != "" {
		vm, err := c.findVMIn(ctx, f, p.Spec.OntoVM)
		if err != nil {
			return nil, fmt.Errorf("--onto-vm: %w", err)
		}
		p.created = vm
		ref := vm.Reference()
		p.State.VMRef = &ref
		have, vdevs, _, err := c.vmDisks(ctx, ref)
		if err != nil {
			return nil, err
		}
		ch, err := c.targetDatastores(ctx, inv, ref, p)
		if err != nil {
			return nil, err
		}
		p.Checks = append(p.Checks, ch)
		if _, err := p.attachSpec(have, vdevs); err != nil {
			return nil, fmt.Errorf("--onto-vm %s: %w", p.Spec.OntoVM, err)
		}
	} else {
		changes, err := devs.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
		if err != nil {
			return nil, err
		}
		cs := types.VirtualMachineConfigSpec{
			Name: p.Spec.Name, GuestId: p.Spec.GuestID, NumCPUs: p.Spec.CPUs, MemoryMB: p.Spec.MemoryMB,
			Firmware:     p.Spec.Firmware,
			Files:        &types.VirtualMachineFileInfo{VmPathName: "[" + p.Spec.Datastore + "]"},
			DeviceChange: changes,
			// The recovered disks keep their UUIDs, so the failback VM's
			// guest finds them by the same ids; the marker finds the VM
			// again after a kill.
			ExtraConfig: []types.BaseOptionValue{&types.OptionValue{Key: "disk.EnableUUID", Value: "TRUE"},
				&types.OptionValue{Key: PlanMarkerKey, Value: p.ID}},
		}
		if p.Spec.CoresPerSocket > 0 {
			cs.NumCoresPerSocket = &p.Spec.CoresPerSocket
		}
		if p.Spec.HWVersion != 0 {
			cs.Version = fmt.Sprintf("vmx-%02d", p.Spec.HWVersion)
		}
		if p.Spec.SecureBoot {
			cs.BootOptions = &types.VirtualMachineBootOptions{EfiSecureBootEnabled: types.NewBool(true)}
		}
		if p.State.CreateSpec, err = vmomiJSON(cs); err != nil {
			return nil, err
		}
	}

	// The steps.
	var files []string
	for _, d := range p.Disks {
		files = append(files, d.File)
	}
	p.Steps = append(p.Steps, Step{Kind: "detach", Title: fmt.Sprintf("detach %d disk(s) from %s, keeping their files: %s", len(p.Disks), mt.Name, strings.Join(files, ", ")),
		Undo: fmt.Sprintf("attach them to %s at their old addresses again", mt.Name)})
	if p.Spec.OntoVM != "" {
		p.Steps = append(p.Steps, Step{Kind: "use", Title: fmt.Sprintf("check the existing VM %s is powered off", p.Spec.OntoVM), Undo: "nothing"})
	} else {
		var nicText []string
		for _, n := range p.Spec.NICs {
			t := n.Adapter + " on " + n.Network
			if n.MAC != "" {
				t += " mac " + n.MAC
			}
			if n.Disconnected {
				t += " (disconnected)"
			}
			nicText = append(nicText, t)
		}
		fw := p.Spec.Firmware
		if p.Spec.SecureBoot {
			fw += "+secure boot"
		}
		where := "host " + orText(p.Spec.Host, "picked by DRS")
		if p.Spec.Cluster != "" {
			where += ", cluster " + p.Spec.Cluster
		}
		if p.Spec.Pool != "" {
			where += ", pool " + p.Spec.Pool
		}
		cps := ""
		if p.Spec.CoresPerSocket > 0 {
			cps = fmt.Sprintf(" (%d per socket)", p.Spec.CoresPerSocket)
		}
		p.Steps = append(p.Steps, Step{Kind: "create", Title: fmt.Sprintf("create VM %s in %s, %s, at %s: %d CPU%s, %d MB, %s, %s, hw %s, SCSI %s, NICs: %s",
			p.Spec.Name, p.Spec.Folder, where, p.VMPath, p.Spec.CPUs, cps, p.Spec.MemoryMB, p.Spec.GuestID, fw,
			orText(hwText(p.Spec.HWVersion), "host default"), strings.Join(p.Spec.Controllers, ","), orText(strings.Join(nicText, ", "), "none")),
			Undo: "destroy the new VM (its disks detached first, so their files stay)"})
	}
	p.Steps = append(p.Steps, Step{Kind: "attach", Title: fmt.Sprintf("attach the %d recovered disk(s) to %s", len(p.Disks), p.Spec.Name),
		Undo: "detach them from it, keeping their files"})
	if !p.Spec.NoPowerOn {
		p.Steps = append(p.Steps, Step{Kind: "power-on", Title: "power on " + p.Spec.Name, Undo: "power it off"})
	}
	for i := range p.Steps {
		p.Steps[i].Status = StepPlanned
	}
	return p, nil
}

func hwText(v int) string {
	if v == 0 {
		return ""
	}
	return fmt.Sprintf("vmx-%02d", v)
}

// findVMIn finds a VM by its exact name (or inventory path) in the
// finder's datacenter; several of that name are refused.
func (c *Client) findVMIn(ctx context.Context, f *find.Finder, name string) (*object.VirtualMachine, error) {
	vm, err := c.FindVMByName(ctx, name)
	if err != nil {
		return nil, err
	}
	return vm, nil
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

func reconfigure(ctx context.Context, vm *object.VirtualMachine, spec types.VirtualMachineConfigSpec) error {
	task, err := vm.Reconfigure(ctx, spec)
	if err != nil {
		return vimErr(err)
	}
	if _, err := task.WaitForResult(ctx, nil); err != nil {
		return vimErr(err)
	}
	// Wait returns nil when ctx ends first: that is no success.
	return ctx.Err()
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

// clusterCapacity judges whether some host of the cluster (connected,
// not in maintenance, seeing the VM's datastores) has the CPUs and
// memory the VM wants: DRS places it on one host, it cannot span them.
func (c *Client) clusterCapacity(ctx context.Context, inv *Inventory, spec FailbackSpec, cluster string, refs []types.ManagedObjectReference) (Check, error) {
	ch := Check{ID: "vm.capacity", Group: GroupVSphere, Title: "A host of the cluster has the CPUs and memory", Status: Pass}
	var hs []mo.HostSystem
	if len(refs) > 0 {
		if err := property.DefaultCollector(c.Vim()).Retrieve(ctx, refs, []string{"name"}, &hs); err != nil {
			return ch, vimErr(err)
		}
	}
	var fit *Host
	var seen []string
	usable := 0
	for _, h := range hs {
		for i := range inv.Hosts {
			hi := &inv.Hosts[i]
			if hi.Name != h.Name {
				continue
			}
			note := ""
			if hi.State != string(types.HostSystemConnectionStateConnected) || hi.Maintenance || !slices.Contains(hi.Datastores, spec.Datastore) {
				note = " (not usable: disconnected, in maintenance or without " + spec.Datastore + ")"
			} else {
				usable++
				if fit == nil && int64(hi.CPUs) >= int64(spec.CPUs) && hi.MemoryMB >= spec.MemoryMB {
					fit = hi
				}
			}
			seen = append(seen, fmt.Sprintf("%s %d CPUs %d MB%s", hi.Name, hi.CPUs, hi.MemoryMB, note))
		}
	}
	switch {
	case usable == 0:
		ch.Status, ch.Detail = Fail, fmt.Sprintf("cluster %s has no usable host (%s)", cluster, orText(strings.Join(seen, "; "), "none"))
		ch.Fix = "bring a host of the cluster out of maintenance, connect it, or mount the datastore on it; or give --host"
	case fit == nil:
		ch.Status, ch.Detail = Fail, fmt.Sprintf("no host of cluster %s has %d CPUs and %d MB (hosts: %s)", cluster, spec.CPUs, spec.MemoryMB, strings.Join(seen, "; "))
		ch.Fix = "give fewer --cpus or less --memory-mb, or another --cluster or --host"
	default:
		ch.Detail = fmt.Sprintf("%s: %d logical CPUs, %d MB; the VM wants %d CPUs, %d MB", fit.Name, fit.CPUs, fit.MemoryMB, spec.CPUs, spec.MemoryMB)
	}
	return ch, nil
}

// targetDatastores judges whether the existing VM's host sees every
// datastore the disks are on: they keep their files where they are.
func (c *Client) targetDatastores(ctx context.Context, inv *Inventory, ref types.ManagedObjectReference, p *Plan) (Check, error) {
	ch := Check{ID: "vm.target.datastores", Group: GroupVSphere, Title: "The target VM's host sees the disks' datastores", Status: Pass}
	var m mo.VirtualMachine
	if err := property.DefaultCollector(c.Vim()).RetrieveOne(ctx, ref, []string{"runtime.host"}, &m); err != nil {
		return ch, vimErr(err)
	}
	if m.Runtime.Host == nil {
		ch.Status, ch.Detail, ch.Fix = Fail, p.Spec.OntoVM+" has no host", "register the VM on a host"
		return ch, nil
	}
	var h mo.HostSystem
	if err := property.DefaultCollector(c.Vim()).RetrieveOne(ctx, *m.Runtime.Host, []string{"name"}, &h); err != nil {
		return ch, vimErr(err)
	}
	var have []string
	for _, hi := range inv.Hosts {
		if hi.Name == h.Name {
			have = hi.Datastores
		}
	}
	var missing []string
	for _, d := range datastoresOf(p.Disks) {
		if !slices.Contains(have, d) {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		ch.Status = Fail
		ch.Detail = fmt.Sprintf("%s runs on %s, which does not mount %s", p.Spec.OntoVM, h.Name, strings.Join(missing, ", "))
		ch.Fix = "mount the datastore on that host, or move the VM (vMotion) to a host that has it"
		return ch, nil
	}
	ch.Detail = fmt.Sprintf("%s on %s mounts %s", p.Spec.OntoVM, h.Name, strings.Join(datastoresOf(p.Disks), ", "))
	return ch, nil
}
