package vsphere

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// DefaultUUIDFile is where Linux shows the BIOS UUID (root-only).
const DefaultUUIDFile = "/sys/class/dmi/id/product_uuid"

// ErrVMNotFound: no VM has the UUID or name asked for.
var ErrVMNotFound = errors.New("VM not found")

// SCSI addressing: 16 units on a controller, unit 7 is the controller's
// own; at most 4 SCSI controllers, so at most 60 disks on SCSI.
const (
	SlotsPerController = 15
	MaxControllers     = 4
	MaxDisks           = SlotsPerController * MaxControllers
)

// VM is what the master target needs to know of a VM.
type VM struct {
	Name       string `json:"name"`
	Path       string `json:"path"`
	Datacenter string `json:"datacenter"`
	Host       string `json:"host"`
	BIOSUUID   string `json:"biosUuid"`
	PowerState string `json:"powerState"`
	CPUs       int32  `json:"cpus"`
	MemoryMB   int32  `json:"memoryMB"`
	EnableUUID string `json:"enableUuid"` // "TRUE", "FALSE", or "" when not set
	// EnableUUIDKeys are the spellings of the key the VM has (more than
	// one when something wrote it in another case).
	EnableUUIDKeys []string     `json:"enableUuidKeys,omitempty"`
	Snapshots      int          `json:"snapshots"`
	Datastores     []string     `json:"datastores"`
	Controllers    []Controller `json:"controllers"`
	Disks          []Disk       `json:"disks"`

	Ref  types.ManagedObjectReference `json:"-"`
	host types.ManagedObjectReference
	dc   types.ManagedObjectReference
}

// EnableUUIDOn reports whether disk.EnableUUID is TRUE (vSphere reads the
// value case-insensitively).
func (v *VM) EnableUUIDOn() bool { return strings.EqualFold(v.EnableUUID, "true") }

// PoweredOff reports whether the VM is powered off.
func (v *VM) PoweredOff() bool {
	return v.PowerState == string(types.VirtualMachinePowerStatePoweredOff)
}

// Controller is a SCSI controller of the VM.
type Controller struct {
	Key       int32  `json:"key"`
	Bus       int32  `json:"bus"`
	Type      string `json:"type"` // lsilogic, lsilogic-sas, pvscsi, buslogic
	Label     string `json:"label"`
	Disks     int    `json:"disks"`
	FreeSlots int    `json:"freeSlots"`
}

// Disk is a virtual disk of the VM, with the guest's block device when
// the by-id directory names it.
type Disk struct {
	Key           int32  `json:"key"`
	Label         string `json:"label"`
	File          string `json:"file"`
	Datastore     string `json:"datastore"`
	CapacityBytes int64  `json:"capacityBytes"`
	UUID          string `json:"uuid"`
	Controller    string `json:"controller"` // e.g. "SCSI 0:1"
	ControllerKey int32  `json:"controllerKey"`
	Unit          int32  `json:"unit"`
	Device        string `json:"device,omitempty"` // /dev/sdb, when mapped
}

// ReadBIOSUUID reads the BIOS UUID as the guest shows it.
func ReadBIOSUUID(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return "", fmt.Errorf("BIOS UUID: %w (run as root, or give --uuid-file with a copy)", err)
		}
		return "", fmt.Errorf("BIOS UUID: %w", err)
	}
	u := strings.ToLower(strings.TrimSpace(string(b)))
	if _, err := uuidBytes(u); err != nil {
		return "", fmt.Errorf("BIOS UUID in %s: %w", path, err)
	}
	return u, nil
}

func uuidBytes(u string) ([]byte, error) {
	h := strings.ReplaceAll(u, "-", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 16 || len(u) != 36 {
		return nil, fmt.Errorf("%q is not a UUID", u)
	}
	return b, nil
}

func formatUUID(b []byte) string {
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// SwapUUID swaps the byte order of the first three fields. SMBIOS before
// 2.6 (older VM hardware versions) stores them little-endian and Linux
// prints them as stored, so the guest's product_uuid can be the byte-swapped
// form of the BIOS UUID vSphere reports (config.uuid).
func SwapUUID(u string) (string, error) {
	b, err := uuidBytes(strings.ToLower(u))
	if err != nil {
		return "", err
	}
	s := make([]byte, 16)
	copy(s, b)
	s[0], s[1], s[2], s[3] = b[3], b[2], b[1], b[0]
	s[4], s[5] = b[5], b[4]
	s[6], s[7] = b[7], b[6]
	return formatUUID(s), nil
}

// FindVM finds a VM by the BIOS UUID the guest shows, in both byte orders.
func (c *Client) FindVM(ctx context.Context, biosUUID string) (*object.VirtualMachine, error) {
	u := strings.ToLower(strings.TrimSpace(biosUUID))
	swapped, err := SwapUUID(u)
	if err != nil {
		return nil, fmt.Errorf("BIOS UUID: %w", err)
	}
	si := object.NewSearchIndex(c.Vim())
	for _, cand := range []string{u, swapped} {
		ref, err := si.FindByUuid(ctx, nil, cand, true, nil)
		if err != nil {
			return nil, vimErr(err)
		}
		if ref != nil {
			return object.NewVirtualMachine(c.Vim(), ref.Reference()), nil
		}
	}
	return nil, fmt.Errorf("%w: no VM on %s has BIOS UUID %s (nor %s, its byte-swapped form): is this the master target's vCenter or ESXi host?",
		ErrVMNotFound, c.Host, u, swapped)
}

// FindVMByName finds a VM by inventory path (/DC/vm/name) or by its
// exact name in any datacenter: no pattern (a * or ? is a character of
// the name); a name in more than one place is refused with the paths.
func (c *Client) FindVMByName(ctx context.Context, name string) (*object.VirtualMachine, error) {
	return c.findVMs(ctx, name, false)
}

// FindVMGlob finds the one VM whose name matches a shell pattern
// (path.Match); no match, or more than one, is refused with the names.
func (c *Client) FindVMGlob(ctx context.Context, pattern string) (*object.VirtualMachine, error) {
	if _, err := path.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("--vm-glob %q: %w", pattern, err)
	}
	return c.findVMs(ctx, pattern, true)
}

func (c *Client) findVMs(ctx context.Context, name string, glob bool) (*object.VirtualMachine, error) {
	if strings.HasPrefix(name, "/") && !glob {
		var m mo.ManagedEntity
		ref, err := object.NewSearchIndex(c.Vim()).FindByInventoryPath(ctx, name)
		if err != nil {
			return nil, vimErr(err)
		}
		if ref == nil || ref.Reference().Type != "VirtualMachine" {
			return nil, fmt.Errorf("%w: nothing at %s is a VM", ErrVMNotFound, name)
		}
		if err := property.DefaultCollector(c.Vim()).RetrieveOne(ctx, ref.Reference(), []string{"name"}, &m); err != nil {
			return nil, vimErr(err)
		}
		vm := object.NewVirtualMachine(c.Vim(), ref.Reference())
		vm.InventoryPath = name
		return vm, nil
	}
	var vms []mo.VirtualMachine
	if err := c.retrieveAll(ctx, c.Vim().ServiceContent.RootFolder, "VirtualMachine", []string{"name"}, &vms); err != nil {
		return nil, err
	}
	var found []*object.VirtualMachine
	for _, v := range vms {
		ok := v.Name == name
		if glob {
			ok, _ = path.Match(name, v.Name)
		}
		if ok {
			vm := object.NewVirtualMachine(c.Vim(), v.Self)
			vm.InventoryPath = c.inventoryPath(ctx, v.Self, v.Name)
			found = append(found, vm)
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].InventoryPath < found[j].InventoryPath })
	switch len(found) {
	case 0:
		if glob {
			return nil, fmt.Errorf("%w: no VM name matches %q", ErrVMNotFound, name)
		}
		return nil, fmt.Errorf("%w: no VM named %q (the name must be exact; --vm-glob takes a pattern)", ErrVMNotFound, name)
	case 1:
		return found[0], nil
	}
	paths := make([]string, len(found))
	for i, vm := range found {
		paths[i] = vm.InventoryPath
	}
	if glob {
		return nil, fmt.Errorf("%d VMs match %q (%s): give one name with --vm", len(found), name, strings.Join(paths, ", "))
	}
	return nil, fmt.Errorf("%d VMs are named %q (%s): give the inventory path", len(found), name, strings.Join(paths, ", "))
}

// inventoryPath is a VM's path from the root folder (/DC0/vm/name).
func (c *Client) inventoryPath(ctx context.Context, ref types.ManagedObjectReference, name string) string {
	ents, err := mo.Ancestors(ctx, c.Vim(), c.Vim().ServiceContent.PropertyCollector, ref)
	if err != nil {
		return name
	}
	var parts []string
	for _, e := range ents {
		if e.Parent != nil {
			parts = append(parts, e.Name)
		}
	}
	return "/" + strings.Join(parts, "/")
}

var vmProps = []string{"name", "config", "runtime", "snapshot", "datastore"}

// Describe reads the VM's configuration, host, datastores, controllers
// and disks.
func (c *Client) Describe(ctx context.Context, obj *object.VirtualMachine) (*VM, error) {
	pc := property.DefaultCollector(c.Vim())
	var m mo.VirtualMachine
	if err := pc.RetrieveOne(ctx, obj.Reference(), vmProps, &m); err != nil {
		return nil, vimErr(err)
	}
	if m.Config == nil {
		return nil, fmt.Errorf("VM %s: no configuration (inaccessible VM?)", m.Name)
	}
	v := &VM{Name: m.Name, Ref: m.Self, BIOSUUID: m.Config.Uuid, PowerState: string(m.Runtime.PowerState),
		CPUs: m.Config.Hardware.NumCPU, MemoryMB: m.Config.Hardware.MemoryMB}
	// vSphere reads keys case-insensitively: with several spellings of
	// the key, any one not TRUE may be the one it takes.
	for _, o := range m.Config.ExtraConfig {
		if ov := o.GetOptionValue(); strings.EqualFold(ov.Key, "disk.EnableUUID") {
			v.EnableUUIDKeys = append(v.EnableUUIDKeys, ov.Key)
			if val := fmt.Sprint(ov.Value); v.EnableUUID == "" || strings.EqualFold(v.EnableUUID, "true") {
				v.EnableUUID = val
			}
		}
	}
	if m.Snapshot != nil {
		v.Snapshots = countSnapshots(m.Snapshot.RootSnapshotList)
	}
	if ents, err := mo.Ancestors(ctx, c.Vim(), c.Vim().ServiceContent.PropertyCollector, m.Self); err == nil {
		var parts []string
		for _, e := range ents {
			if e.Self.Type == "Datacenter" {
				v.Datacenter = e.Name
				v.dc = e.Self
			}
			if e.Self.Type != "Folder" || e.Parent != nil {
				parts = append(parts, e.Name)
			}
		}
		v.Path = "/" + strings.Join(parts, "/")
	} else {
		return nil, vimErr(err)
	}
	if m.Runtime.Host != nil {
		v.host = *m.Runtime.Host
		var h mo.HostSystem
		if err := pc.RetrieveOne(ctx, v.host, []string{"name"}, &h); err != nil {
			return nil, vimErr(err)
		}
		v.Host = h.Name
	}
	dsNames := map[types.ManagedObjectReference]string{}
	if len(m.Datastore) > 0 {
		var dss []mo.Datastore
		if err := pc.Retrieve(ctx, m.Datastore, []string{"name"}, &dss); err != nil {
			return nil, vimErr(err)
		}
		for _, ds := range dss {
			dsNames[ds.Self] = ds.Name
			v.Datastores = append(v.Datastores, ds.Name)
		}
		sort.Strings(v.Datastores)
	}
	devices := object.VirtualDeviceList(m.Config.Hardware.Device)
	ctrl := map[int32]*Controller{}
	for _, d := range devices {
		sc, ok := d.(types.BaseVirtualSCSIController)
		if !ok {
			continue
		}
		s := sc.GetVirtualSCSIController()
		v.Controllers = append(v.Controllers, Controller{Key: s.Key, Bus: s.BusNumber, Type: devices.Type(d),
			Label: label(d), FreeSlots: SlotsPerController})
	}
	sort.Slice(v.Controllers, func(i, j int) bool { return v.Controllers[i].Bus < v.Controllers[j].Bus })
	for i := range v.Controllers {
		ctrl[v.Controllers[i].Key] = &v.Controllers[i]
	}
	for _, d := range devices.SelectByType((*types.VirtualDisk)(nil)) {
		disk := d.(*types.VirtualDisk)
		vd := Disk{Key: disk.Key, Label: label(d), CapacityBytes: disk.CapacityInBytes, ControllerKey: disk.ControllerKey}
		if vd.CapacityBytes == 0 {
			vd.CapacityBytes = disk.CapacityInKB * 1024
		}
		if disk.UnitNumber != nil {
			vd.Unit = *disk.UnitNumber
		}
		if fb, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			info := fb.GetVirtualDeviceFileBackingInfo()
			vd.File = info.FileName
			if info.Datastore != nil {
				vd.Datastore = dsNames[*info.Datastore]
			}
		}
		vd.UUID = diskUUID(disk.Backing)
		if c, ok := ctrl[disk.ControllerKey]; ok {
			c.Disks++
			c.FreeSlots--
			vd.Controller = fmt.Sprintf("SCSI %d:%d", c.Bus, vd.Unit)
		} else if cd := devices.FindByKey(disk.ControllerKey); cd != nil {
			vd.Controller = fmt.Sprintf("%s:%d", label(cd), vd.Unit)
		}
		v.Disks = append(v.Disks, vd)
	}
	sort.Slice(v.Disks, func(i, j int) bool { return v.Disks[i].Controller < v.Disks[j].Controller })
	return v, nil
}

func label(d types.BaseVirtualDevice) string {
	if info := d.GetVirtualDevice().DeviceInfo; info != nil {
		return info.GetDescription().Label
	}
	return ""
}

func diskUUID(b types.BaseVirtualDeviceBackingInfo) string {
	switch b := b.(type) {
	case *types.VirtualDiskFlatVer2BackingInfo:
		return b.Uuid
	case *types.VirtualDiskSeSparseBackingInfo:
		return b.Uuid
	case *types.VirtualDiskSparseVer2BackingInfo:
		return b.Uuid
	case *types.VirtualDiskRawDiskMappingVer1BackingInfo:
		return b.Uuid
	}
	return ""
}

func countSnapshots(l []types.VirtualMachineSnapshotTree) int {
	n := 0
	for _, s := range l {
		n += 1 + countSnapshots(s.ChildSnapshotList)
	}
	return n
}

// NAA is the id the guest sees for a disk of this VMDK UUID when
// disk.EnableUUID is TRUE: the UUID's hex digits, lower case
// (6000c29…, as in /dev/disk/by-id/wwn-0x6000c29…).
func NAA(diskUUID string) string {
	return strings.ToLower(strings.NewReplacer("-", "", " ", "").Replace(diskUUID))
}

// ByID reads root/dev/disk/by-id and returns the block device (/dev/sdX)
// of each NAA id named there by a wwn-0x… or scsi-3… link. Partitions are
// left out.
func ByID(root string) (map[string]string, error) {
	dir := filepath.Join(root, "dev", "disk", "by-id")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("by-id: %w", err)
	}
	out := map[string]string{}
	for _, e := range ents {
		name := e.Name()
		if strings.Contains(name, "-part") {
			continue
		}
		var id string
		switch {
		case strings.HasPrefix(name, "wwn-0x"):
			id = name[len("wwn-0x"):]
		case strings.HasPrefix(name, "scsi-3"):
			id = name[len("scsi-3"):]
		default:
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, name))
		if err != nil {
			continue // not a link: not a device name
		}
		out[strings.ToLower(id)] = "/dev/" + filepath.Base(target)
	}
	return out, nil
}

// MapDevices fills each disk's Device from the by-id directory under root.
// A disk stays unmapped when disk.EnableUUID was off at the VM's last power
// on (the guest then sees no id) or the by-id link is missing.
func MapDevices(disks []Disk, root string) error {
	ids, err := ByID(root)
	if err != nil {
		return err
	}
	for i := range disks {
		if disks[i].UUID != "" {
			disks[i].Device = ids[NAA(disks[i].UUID)]
		}
	}
	return nil
}
