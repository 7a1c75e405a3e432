// Package vspheresim serves govmomi's vCenter simulator (the VPX model)
// over HTTPS on loopback, with a login that checks the password and a
// master target VM set up as after a recovery: an LSI Logic controller, a
// boot disk, two recovered disks, disk.EnableUUID=TRUE, powered on. The
// tests of disks/vsphere and of the CLI use it in-process; scripts/vcsim
// serves it to a separate process.
package vspheresim

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/units"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Names in the scene.
const (
	MT          = "mt01"       // the master target
	MTHost      = "DC0_H0"     // its host (standalone)
	Datastore   = "LocalDS_0"  // every host mounts it
	Network     = "VM Network" // a standard port group on every host
	OffVM       = "DC0_H0_VM1" // a powered-off VM, disk.EnableUUID unset
	PVSCSIVM    = "DC0_H0_VM0" // a VM of the model: paravirtual controller
	Datacenter  = "DC0"
	MTMemoryMB  = 6144
	Recovered   = 2 // recovered disks on the master target
	RecoveredGB = 1
)

// Scene is a running simulator with the master target in it.
type Scene struct {
	URL        string // https://127.0.0.1:PORT/sdk, no user
	Thumbprint string // SHA-256 of the server's certificate
	User       string
	Password   string
	MTUUID     string // the master target's BIOS UUID as vSphere shows it
	// GuestUUID is the same UUID as an older SMBIOS guest shows it in
	// product_uuid: the first three fields byte-swapped.
	GuestUUID string
	// RecoveredFiles and RecoveredUUIDs are the recovered disks' VMDK files
	// and UUIDs, SCSI 0:1 and 0:2 on the master target.
	RecoveredFiles []string
	RecoveredUUIDs []string
	BootUUID       string

	Model  *simulator.Model
	Server *simulator.Server
}

// Start serves the model on 127.0.0.1 (an ephemeral port when listen is
// "") and sets up the scene. Close stops it.
func Start(ctx context.Context, listen, user, password string) (*Scene, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	m := simulator.VPX()
	if err := m.Create(); err != nil {
		return nil, err
	}
	m.Service.TLS = new(tls.Config)
	m.Service.Listen = &url.URL{Host: listen, User: url.UserPassword(user, password)}
	srv := m.Service.NewServer()
	s := &Scene{User: user, Password: password, Model: m, Server: srv}
	u := *srv.URL
	u.User = nil
	s.URL = u.String()
	s.Thumbprint = soap.ThumbprintSHA256(srv.Certificate())
	if err := s.setup(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("vspheresim: %w", err)
	}
	return s, nil
}

// Close stops the server and removes the model's files.
func (s *Scene) Close() {
	s.Server.Close()
	s.Model.Remove()
}

// Client is a govmomi client of the scene's own, logged in.
func (s *Scene) Client(ctx context.Context) (*govmomi.Client, error) {
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, err
	}
	u.User = url.UserPassword(s.User, s.Password)
	return govmomi.NewClient(ctx, u, true)
}

// finder logs in and finds in the scene's datacenter; the caller logs
// out.
func (s *Scene) finder(ctx context.Context) (*govmomi.Client, *find.Finder, *object.Datacenter, error) {
	c, err := s.Client(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	f := find.NewFinder(c.Client, true)
	dc, err := f.Datacenter(ctx, Datacenter)
	if err != nil {
		c.Logout(ctx)
		return nil, nil, nil, err
	}
	f.SetDatacenter(dc)
	return c, f, dc, nil
}

func (s *Scene) setup(ctx context.Context) error {
	c, f, dc, err := s.finder(ctx)
	if err != nil {
		return err
	}
	defer c.Logout(ctx)
	host, err := f.HostSystem(ctx, MTHost)
	if err != nil {
		return err
	}
	pool, err := host.ResourcePool(ctx)
	if err != nil {
		return err
	}
	ds, err := f.Datastore(ctx, Datastore)
	if err != nil {
		return err
	}
	netw, err := f.Network(ctx, Network)
	if err != nil {
		return err
	}
	folders, err := dc.Folders(ctx)
	if err != nil {
		return err
	}

	// The recovered disks live in a folder of their own, as a recovery
	// onto new VMDKs leaves them.
	if err := object.NewFileManager(c.Client).MakeDirectory(ctx, "["+Datastore+"] recovered", dc, true); err != nil {
		return err
	}
	var devs object.VirtualDeviceList
	scsi, _ := devs.CreateSCSIController("lsilogic")
	devs = append(devs, scsi)
	sizes := []int64{10}
	for range Recovered {
		sizes = append(sizes, RecoveredGB)
	}
	for i, gb := range sizes {
		name := fmt.Sprintf("[%s] %s/%s.vmdk", Datastore, MT, MT)
		if i > 0 {
			name = fmt.Sprintf("[%s] recovered/src01_%d.vmdk", Datastore, i)
		}
		d := devs.CreateDisk(scsi.(types.BaseVirtualController), ds.Reference(), name)
		d.CapacityInKB = gb * int64(units.GB) / 1024
		devs = append(devs, d)
	}
	backing, err := netw.EthernetCardBackingInfo(ctx)
	if err != nil {
		return err
	}
	nic, _ := devs.CreateEthernetCard("vmxnet3", backing)
	devs = append(devs, nic)
	changes, _ := devs.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	spec := types.VirtualMachineConfigSpec{
		Name: MT, GuestId: string(types.VirtualMachineGuestOsIdentifierUbuntu64Guest), NumCPUs: 4, MemoryMB: MTMemoryMB,
		Files:        &types.VirtualMachineFileInfo{VmPathName: "[" + Datastore + "]"},
		DeviceChange: changes,
		ExtraConfig:  []types.BaseOptionValue{&types.OptionValue{Key: "disk.EnableUUID", Value: "TRUE"}},
	}
	task, err := folders.VmFolder.CreateVM(ctx, spec, pool, host)
	if err != nil {
		return err
	}
	res, err := task.WaitForResult(ctx, nil)
	if err != nil {
		return fmt.Errorf("create %s: %w", MT, err)
	}
	vm := object.NewVirtualMachine(c.Client, res.Result.(types.ManagedObjectReference))
	if task, err = vm.PowerOn(ctx); err != nil {
		return err
	}
	if err := task.Wait(ctx); err != nil {
		return err
	}
	var mvm mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config"}, &mvm); err != nil {
		return err
	}
	s.MTUUID = mvm.Config.Uuid
	s.GuestUUID = swap(s.MTUUID)
	for _, d := range object.VirtualDeviceList(mvm.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		b := d.(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if strings.Contains(b.FileName, "recovered/") {
			s.RecoveredFiles = append(s.RecoveredFiles, b.FileName)
			s.RecoveredUUIDs = append(s.RecoveredUUIDs, b.Uuid)
		} else {
			s.BootUUID = b.Uuid
		}
	}
	if len(s.RecoveredFiles) != Recovered || s.BootUUID == "" {
		return errors.New("the master target's disks did not come out as asked")
	}

	off, err := f.VirtualMachine(ctx, OffVM)
	if err != nil {
		return err
	}
	if task, err = off.PowerOff(ctx); err != nil {
		return err
	}
	return task.Wait(ctx)
}

// WriteDevRoot lays out DIR/dev/disk/by-id as the master target's guest
// shows it with disk.EnableUUID=TRUE: wwn-0x… and scsi-3… links to sda
// (boot), sdb and sdc (the recovered disks), plus a partition link that
// must be ignored; DIR/sys/class/block/sdX (dev numbers, no holders) and
// DIR/proc/self/mountinfo (the root on sda1).
func (s *Scene) WriteDevRoot(dir string) error {
	byID := filepath.Join(dir, "dev", "disk", "by-id")
	if err := os.MkdirAll(byID, 0o755); err != nil {
		return err
	}
	uuids := append([]string{s.BootUUID}, s.RecoveredUUIDs...)
	for i, u := range uuids {
		dev := "sd" + string(rune('a'+i))
		if i >= 26 {
			dev = "sd" + string(rune('a'+i/26-1)) + string(rune('a'+i%26))
		}
		naa := strings.ToLower(strings.ReplaceAll(u, "-", ""))
		if err := os.WriteFile(filepath.Join(dir, "dev", dev), nil, 0o600); err != nil {
			return err
		}
		for _, l := range []string{"wwn-0x" + naa, "scsi-3" + naa} {
			if err := os.Symlink("../../"+dev, filepath.Join(byID, l)); err != nil {
				return err
			}
		}
		if i == 0 {
			if err := os.Symlink("../../"+dev+"1", filepath.Join(byID, "wwn-0x"+naa+"-part1")); err != nil {
				return err
			}
		}
		blk := filepath.Join(dir, "sys", "class", "block", dev)
		if err := os.MkdirAll(filepath.Join(blk, "holders"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(blk, "dev"), fmt.Appendf(nil, "8:%d\n", 16*i), 0o644); err != nil {
			return err
		}
	}
	// The guest's mounts: its root on sda1, nothing on the recovered disks.
	if err := os.MkdirAll(filepath.Join(dir, "proc", "self"), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "proc", "self", "mountinfo"),
		[]byte("22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n25 22 0:21 / /proc rw - proc proc rw\n"), 0o644)
}

// swap byte-swaps the first three fields of a UUID.
func swap(u string) string {
	p := strings.Split(u, "-")
	rev := func(h string) string {
		var b strings.Builder
		for i := len(h) - 2; i >= 0; i -= 2 {
			b.WriteString(h[i : i+2])
		}
		return b.String()
	}
	return strings.Join([]string{rev(p[0]), rev(p[1]), rev(p[2]), p[3], p[4]}, "-")
}
