package vspheresim

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// AddRecovered gives the master target n more recovered disks: new
// 1 MB VMDKs in [LocalDS_0] recovered/, on LSI Logic controllers of
// their own (bus 1, 2, 3), as a recovery of a machine with many disks
// leaves them. RecoveredFiles and RecoveredUUIDs grow by them, and
// WriteDevRoot maps them (sdd, sde, ...).
func (s *Scene) AddRecovered(ctx context.Context, n int) error {
	c, f, _, err := s.finder(ctx)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)
	vm, err := f.VirtualMachine(ctx, MT)
	if err != nil {
		return err
	}
	ds, err := f.Datastore(ctx, Datastore)
	if err != nil {
		return err
	}
	for bus := int32(1); n > 0; bus++ {
		if bus > 3 {
			return fmt.Errorf("vspheresim: no room for %d more disks on the master target", n)
		}
		devs, err := vm.Device(ctx)
		if err != nil {
			return err
		}
		ctl, _ := devs.CreateSCSIController("lsilogic")
		ctl.(types.BaseVirtualSCSIController).GetVirtualSCSIController().BusNumber = bus
		if err := vm.AddDevice(ctx, ctl); err != nil {
			return err
		}
		if devs, err = vm.Device(ctx); err != nil {
			return err
		}
		var ctrl types.BaseVirtualController
		for _, d := range devs.SelectByType((*types.VirtualLsiLogicController)(nil)) {
			if d.(types.BaseVirtualSCSIController).GetVirtualSCSIController().BusNumber == bus {
				ctrl = d.(types.BaseVirtualController)
			}
		}
		for u := int32(0); u < 16 && n > 0; u++ {
			if u == 7 {
				continue
			}
			name := fmt.Sprintf("[%s] recovered/src01_b%d_u%d.vmdk", Datastore, bus, u)
			d := devs.CreateDisk(ctrl, ds.Reference(), name)
			d.CapacityInKB = 1024
			unit := u
			d.UnitNumber = &unit
			if err := vm.AddDevice(ctx, d); err != nil {
				return err
			}
			n--
		}
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config.hardware.device"}, &m); err != nil {
		return err
	}
	for _, d := range object.VirtualDeviceList(m.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		b := d.(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if strings.Contains(b.FileName, "recovered/") && !slices.Contains(s.RecoveredFiles, b.FileName) {
			s.RecoveredFiles = append(s.RecoveredFiles, b.FileName)
			s.RecoveredUUIDs = append(s.RecoveredUUIDs, b.Uuid)
		}
	}
	return nil
}

// Inventory describes every VM of the server, object by object, through
// the client given (never through the package under test): name, power
// state, CPUs and cores per socket, memory, firmware, hardware version,
// the SCSI controllers by type and bus, the NICs by type, MAC and
// connection at power-on, and each disk's file, bus, unit and UUID; and,
// under "(files)", which of files are on the datastore still.
func Inventory(ctx context.Context, c *vim25.Client, files []string) (map[string]string, error) {
	v, err := view.NewManager(c).CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		return nil, err
	}
	defer v.Destroy(ctx)
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config", "runtime.powerState"}, &vms); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, vm := range vms {
		devs := object.VirtualDeviceList(vm.Config.Hardware.Device)
		bus := map[int32]int32{}
		var ctls, nics, disks []string
		for _, d := range devs {
			if sc, ok := d.(types.BaseVirtualSCSIController); ok {
				c := sc.GetVirtualSCSIController()
				bus[c.Key] = c.BusNumber
				ctls = append(ctls, fmt.Sprintf("%s@%d", devs.Type(d), c.BusNumber))
			}
		}
		for _, d := range devs.SelectByType((*types.VirtualEthernetCard)(nil)) {
			e := d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
			conn := true
			if e.Connectable != nil {
				conn = e.Connectable.StartConnected
			}
			nics = append(nics, fmt.Sprintf("%s/%s/%v", strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", d), "*types.Virtual")), e.MacAddress, conn))
		}
		for _, d := range devs.SelectByType((*types.VirtualDisk)(nil)) {
			vd := d.(*types.VirtualDisk)
			file, uuid := "", ""
			if b, ok := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo); ok {
				file, uuid = b.FileName, b.Uuid
			}
			unit := int32(-1)
			if vd.UnitNumber != nil {
				unit = *vd.UnitNumber
			}
			disks = append(disks, fmt.Sprintf("%s@%d:%d/%s", file, bus[vd.ControllerKey], unit, uuid))
		}
		sort.Strings(ctls)
		sort.Strings(disks)
		cps := int32(0)
		if vm.Config.Hardware.NumCoresPerSocket != nil {
			cps = *vm.Config.Hardware.NumCoresPerSocket
		}
		secure := false
		if vm.Config.BootOptions != nil && vm.Config.BootOptions.EfiSecureBootEnabled != nil {
			secure = *vm.Config.BootOptions.EfiSecureBootEnabled
		}
		out[vm.Name] = fmt.Sprintf("%s cpu=%d/%d mem=%d fw=%s secure=%v hw=%s ctl=%v nics=%v disks=%v", vm.Runtime.PowerState,
			vm.Config.Hardware.NumCPU, cps, vm.Config.Hardware.MemoryMB, vm.Config.Firmware, secure, vm.Config.Version, ctls, nics, disks)
	}
	f := find.NewFinder(c)
	dc, err := f.Datacenter(ctx, Datacenter)
	if err != nil {
		return nil, err
	}
	f.SetDatacenter(dc)
	ds, err := f.Datastore(ctx, Datastore)
	if err != nil {
		return nil, err
	}
	var have []string
	for _, rf := range files {
		if _, err := ds.Stat(ctx, strings.TrimPrefix(rf, "["+Datastore+"] ")); err == nil {
			have = append(have, rf)
		}
	}
	out["(files)"] = strings.Join(have, ",")
	return out, nil
}
