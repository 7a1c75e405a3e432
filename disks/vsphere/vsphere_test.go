package vsphere_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/disks/vsphere/vspheresim"
)

const (
	testUser = "administrator@vsphere.local"
	testPass = "s3cret-Pa55word!"
)

func scene(t *testing.T) *vspheresim.Scene {
	t.Helper()
	s, err := vspheresim.Start(context.Background(), "", testUser, testPass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func connect(t *testing.T, s *vspheresim.Scene) *vsphere.Client {
	t.Helper()
	c, err := vsphere.Connect(context.Background(), vsphere.Config{URL: s.URL, User: s.User, Password: s.Password, Thumbprint: s.Thumbprint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Logout(context.Background()) })
	return c
}

func findMT(t *testing.T, c *vsphere.Client, s *vspheresim.Scene) (*object.VirtualMachine, *vsphere.VM) {
	t.Helper()
	ctx := context.Background()
	obj, err := c.FindVM(ctx, s.GuestUUID)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := c.Describe(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	return obj, vm
}

func TestFindByBIOSUUID(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	dir := t.TempDir()
	// Both byte orders the guest may show, in either case.
	for _, u := range []string{s.MTUUID, s.GuestUUID, strings.ToUpper(s.GuestUUID)} {
		f := filepath.Join(dir, "product_uuid")
		os.WriteFile(f, []byte(u+"\n"), 0o400)
		got, err := vsphere.ReadBIOSUUID(f)
		if err != nil {
			t.Fatal(err)
		}
		obj, err := c.FindVM(ctx, got)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		vm, err := c.Describe(ctx, obj)
		if err != nil {
			t.Fatal(err)
		}
		if vm.Name != vspheresim.MT || vm.Host != vspheresim.MTHost || vm.Datacenter != vspheresim.Datacenter {
			t.Fatalf("found %s on %s in %s", vm.Name, vm.Host, vm.Datacenter)
		}
	}
	_, vm := findMT(t, c, s)
	if vm.BIOSUUID != s.MTUUID || !vm.EnableUUIDOn() || vm.PowerState != "poweredOn" || vm.MemoryMB != vspheresim.MTMemoryMB {
		t.Fatalf("described %+v", vm)
	}
	if len(vm.Controllers) != 1 || vm.Controllers[0].Type != "lsilogic" || vm.Controllers[0].FreeSlots != 12 {
		t.Fatalf("controllers %+v", vm.Controllers)
	}
	if len(vm.Disks) != 3 || vm.Disks[0].Controller != "SCSI 0:0" || vm.Disks[1].File != s.RecoveredFiles[0] {
		t.Fatalf("disks %+v", vm.Disks)
	}
	if len(vm.Datastores) != 1 || vm.Datastores[0] != vspheresim.Datastore {
		t.Fatalf("datastores %v", vm.Datastores)
	}

	// The join with the guest's block devices.
	root := t.TempDir()
	if err := s.WriteDevRoot(root); err != nil {
		t.Fatal(err)
	}
	if err := vsphere.MapDevices(vm.Disks, root); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"/dev/sda", "/dev/sdb", "/dev/sdc"} {
		if vm.Disks[i].Device != want {
			t.Errorf("disk %d (%s) maps to %q, want %s", i, vm.Disks[i].UUID, vm.Disks[i].Device, want)
		}
	}

	// An unknown UUID is a named error.
	_, err := c.FindVM(ctx, "00000000-1111-2222-3333-444444444444")
	if !errors.Is(err, vsphere.ErrVMNotFound) {
		t.Fatalf("unknown UUID: %v", err)
	}
	if _, err := c.FindVM(ctx, "not-a-uuid"); err == nil {
		t.Fatal("a malformed UUID was accepted")
	}
}

func TestSwapUUID(t *testing.T) {
	got, err := vsphere.SwapUUID("4237d4c4-1b6f-7e28-a1b2-0123456789ab")
	if err != nil || got != "c4d43742-6f1b-287e-a1b2-0123456789ab" {
		t.Fatalf("%s %v", got, err)
	}
	back, _ := vsphere.SwapUUID(got)
	if back != "4237d4c4-1b6f-7e28-a1b2-0123456789ab" {
		t.Fatal(back)
	}
}

func TestByIDIgnoresPartitionsAndFiles(t *testing.T) {
	root := t.TempDir()
	byID := filepath.Join(root, "dev", "disk", "by-id")
	os.MkdirAll(byID, 0o755)
	os.Symlink("../../sdd", filepath.Join(byID, "wwn-0x6000C2985E7D03E92BC6E63E4DE6C8ED"))
	os.Symlink("../../sdd1", filepath.Join(byID, "wwn-0x6000c2985e7d03e92bc6e63e4de6c8ed-part1"))
	os.Symlink("../../sde", filepath.Join(byID, "ata-QEMU_HARDDISK_QM00001"))
	os.WriteFile(filepath.Join(byID, "scsi-3deadbeef"), nil, 0o600)
	ids, err := vsphere.ByID(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 1 || ids["6000c2985e7d03e92bc6e63e4de6c8ed"] != "/dev/sdd" {
		t.Fatalf("%v", ids)
	}
	if vsphere.NAA("6000C298-5e7d-03e9-2bc6-e63e4de6c8ed") != "6000c2985e7d03e92bc6e63e4de6c8ed" {
		t.Fatal("NAA")
	}
	// No by-id directory: nothing mapped, no error.
	if ids, err := vsphere.ByID(t.TempDir()); err != nil || len(ids) != 0 {
		t.Fatal(ids, err)
	}
}

func extraConfig(t *testing.T, c *vsphere.Client, name string) (string, string) {
	t.Helper()
	vm, err := c.FindVMByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.Describe(context.Background(), vm)
	if err != nil {
		t.Fatal(err)
	}
	return d.EnableUUID, d.PowerState
}

func TestEnableUUID(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()

	// Powered off: set.
	off, err := c.FindVMByName(ctx, vspheresim.OffVM)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := extraConfig(t, c, vspheresim.OffVM); v != "" {
		t.Fatalf("EnableUUID was %q before", v)
	}
	changed, err := c.EnableUUID(ctx, off)
	if err != nil || !changed {
		t.Fatalf("changed %v, %v", changed, err)
	}
	if v, _ := extraConfig(t, c, vspheresim.OffVM); v != "TRUE" {
		t.Fatalf("EnableUUID is %q after", v)
	}
	// Twice: nothing to do.
	if changed, err := c.EnableUUID(ctx, off); err != nil || changed {
		t.Fatalf("second time: changed %v, %v", changed, err)
	}

	// A key of another case saying FALSE: vSphere may read either, so the
	// VM is not taken as TRUE, and enable-uuid leaves one key, TRUE.
	task, err := off.Reconfigure(ctx, types.VirtualMachineConfigSpec{ExtraConfig: []types.BaseOptionValue{
		&types.OptionValue{Key: "DISK.enableuuid", Value: "FALSE"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.WaitForResult(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := extraConfig(t, c, vspheresim.OffVM); v != "FALSE" {
		t.Fatalf("EnableUUID with a FALSE key of other case reads %q", v)
	}
	if changed, err := c.EnableUUID(ctx, off); err != nil || !changed {
		t.Fatalf("other case: changed %v, %v", changed, err)
	}
	var keys []string
	var mvm mo.VirtualMachine
	if err := off.Properties(ctx, off.Reference(), []string{"config.extraConfig"}, &mvm); err != nil {
		t.Fatal(err)
	}
	for _, o := range mvm.Config.ExtraConfig {
		if ov := o.GetOptionValue(); strings.EqualFold(ov.Key, "disk.enableuuid") {
			keys = append(keys, fmt.Sprintf("%s=%v", ov.Key, ov.Value))
		}
	}
	if strings.Join(keys, ",") != "disk.EnableUUID=TRUE" {
		t.Fatalf("keys after enable-uuid: %v", keys)
	}

	// Powered on and not set: refused, with what to do, and unchanged.
	on, err := c.FindVMByName(ctx, "DC0_H0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.EnableUUID(ctx, on)
	if !errors.Is(err, vsphere.ErrPoweredOn) {
		t.Fatalf("powered on: %v", err)
	}
	for _, want := range []string{"power off", "mtconsole vsphere enable-uuid --vm", "power it on", "reboot from inside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not say %q", err, want)
		}
	}
	if v, p := extraConfig(t, c, "DC0_H0_VM0"); v != "" || p != "poweredOn" {
		t.Fatalf("a refused VM changed: EnableUUID %q, %s", v, p)
	}
	// Suspended: refused, and called suspended, not powered on.
	task, err = on.Suspend(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := task.WaitForResult(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.EnableUUID(ctx, on)
	if !errors.Is(err, vsphere.ErrPoweredOn) || !strings.Contains(err.Error(), "DC0_H0_VM0 is suspended") ||
		!strings.Contains(err.Error(), "resume it and shut the guest down") || strings.Contains(err.Error(), "powered on:") {
		t.Fatalf("suspended: %v", err)
	}
}

func TestInventory(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	_, vm := findMT(t, c, s)
	inv, err := c.Inventory(context.Background(), vm)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Datastores) != 1 {
		t.Fatalf("%+v", inv.Datastores)
	}
	ds := inv.Datastores[0]
	if ds.Name != vspheresim.Datastore || !ds.Accessible || !ds.FromHost || ds.FreeBytes <= 0 || ds.CapacityBytes < ds.FreeBytes || ds.Type == "" {
		t.Fatalf("%+v", ds)
	}
	if len(inv.Hosts) != 4 {
		t.Fatalf("hosts %+v", inv.Hosts)
	}
	var mtHost *vsphere.Host
	for i := range inv.Hosts {
		if inv.Hosts[i].Name == vspheresim.MTHost {
			mtHost = &inv.Hosts[i]
		}
	}
	if mtHost == nil || mtHost.State != "connected" || len(mtHost.Datastores) != 1 || len(mtHost.Networks) == 0 {
		t.Fatalf("%+v", mtHost)
	}
	names := map[string]bool{}
	for _, n := range inv.Networks {
		names[n.Name] = true
	}
	if !names[vspheresim.Network] || !names["DC0_DVPG0"] {
		t.Fatalf("networks %+v", inv.Networks)
	}
}

func byID(checks []vsphere.Check) map[string]vsphere.Check {
	m := map[string]vsphere.Check{}
	for _, c := range checks {
		m[c.ID] = c
	}
	return m
}

func TestReadiness(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	obj, mt := findMT(t, c, s)
	inv, _ := c.Inventory(ctx, mt)
	free := inv.Datastores[0].FreeBytes

	// All good.
	spec := vsphere.ReadinessSpec{DisksToAttach: 2, Needs: []vsphere.Need{{Datastore: vspheresim.Datastore, Bytes: 1 << 30}},
		VMName: "src01", VMDatastore: vspheresim.Datastore, VMMemoryMB: 2048}
	checks, err := c.Readiness(ctx, mt, spec)
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range checks {
		if ch.Status != vsphere.Pass {
			t.Errorf("%s: %s: %s", ch.ID, ch.Status, ch.Detail)
		}
	}
	if len(checks) < 12 {
		t.Fatalf("only %d checks", len(checks))
	}

	// Name taken, no space, too little memory, a running target VM.
	bad := vsphere.ReadinessSpec{DisksToAttach: 1, Needs: []vsphere.Need{{Datastore: vspheresim.Datastore, Bytes: free + 1}},
		VMName: vspheresim.OffVM, VMDatastore: vspheresim.Datastore, VMMemoryMB: 256, TargetVM: "DC0_H0_VM0"}
	checks, _ = c.Readiness(ctx, mt, bad)
	m := byID(checks)
	for _, id := range []string{"vm.name", "datastore.LocalDS_0.space", "vm.memory", "vm.target.power"} {
		if m[id].Status != vsphere.Fail || m[id].Fix == "" {
			t.Errorf("%s: %+v", id, m[id])
		}
	}
	if !vsphere.Failed(checks) {
		t.Fatal("Failed says no failure")
	}
	// A datastore that is not there.
	checks, _ = c.Readiness(ctx, mt, vsphere.ReadinessSpec{Needs: []vsphere.Need{{Datastore: "nope", Bytes: 1}}})
	if m := byID(checks); m["datastore.nope.access"].Status != vsphere.Fail {
		t.Fatalf("%+v", m["datastore.nope.access"])
	}

	// Full slots: fill the controller (12 free) and ask for one more.
	var devs object.VirtualDeviceList
	devices, _ := obj.Device(ctx)
	ctrl := devices.PickController((*types.VirtualLsiLogicController)(nil))
	ds, _ := find.NewFinder(c.Vim()).Datastore(ctx, "/DC0/datastore/"+vspheresim.Datastore)
	for i := range 12 {
		d := devices.CreateDisk(ctrl, ds.Reference(), fmt.Sprintf("[LocalDS_0] mt01/fill_%d.vmdk", i))
		d.CapacityInKB = 1024
		unit := int32(3 + i)
		if unit >= 7 {
			unit++
		}
		d.UnitNumber = &unit
		d.Key = int32(-10 - i)
		devs = append(devs, d)
	}
	if err := obj.AddDevice(ctx, devs...); err != nil {
		t.Fatal(err)
	}
	_, mt = findMT(t, c, s)
	if mt.Controllers[0].FreeSlots != 0 {
		t.Fatalf("free slots %d", mt.Controllers[0].FreeSlots)
	}
	checks, _ = c.Readiness(ctx, mt, vsphere.ReadinessSpec{DisksToAttach: 1})
	if m := byID(checks); m["mt.scsi.slots"].Status != vsphere.Fail || !strings.Contains(m["mt.scsi.slots"].Detail, "0 free") {
		t.Fatalf("%+v", m["mt.scsi.slots"])
	}
	checks, _ = c.Readiness(ctx, mt, vsphere.ReadinessSpec{DisksToAttach: 46})
	if m := byID(checks); m["mt.disks.max"].Status != vsphere.Fail {
		t.Fatalf("%+v", m["mt.disks.max"])
	}

	// A snapshot on the master target.
	task, _ := obj.CreateSnapshot(ctx, "before", "", false, false)
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	_, mt = findMT(t, c, s)
	checks, _ = c.Readiness(ctx, mt, vsphere.ReadinessSpec{})
	if m := byID(checks); m["mt.snapshots"].Status != vsphere.Fail {
		t.Fatalf("%+v", m["mt.snapshots"])
	}
}

func TestReadinessParavirtual(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	obj, err := c.FindVMByName(ctx, vspheresim.PVSCSIVM)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := c.Describe(ctx, obj)
	if err != nil {
		t.Fatal(err)
	}
	checks, _ := c.Readiness(ctx, vm, vsphere.ReadinessSpec{})
	m := byID(checks)
	if ch := m["mt.controller.type"]; ch.Status != vsphere.Fail || !strings.Contains(ch.Detail, "pvscsi") || !strings.Contains(ch.Fix, "LSI Logic") {
		t.Fatalf("%+v", ch)
	}
	if m["mt.controller.same"].Status != vsphere.Pass || m["mt.enableuuid"].Status != vsphere.Fail {
		t.Fatalf("%+v", checks)
	}
	// Add an LSI Logic controller: now two types.
	devices, _ := obj.Device(ctx)
	lsi, _ := devices.CreateSCSIController("lsilogic")
	if err := obj.AddDevice(ctx, lsi); err != nil {
		t.Fatal(err)
	}
	vm, _ = c.Describe(ctx, obj)
	checks, _ = c.Readiness(ctx, vm, vsphere.ReadinessSpec{})
	if ch := byID(checks)["mt.controller.same"]; ch.Status != vsphere.Fail || !strings.Contains(ch.Detail, "1 lsilogic, 1 pvscsi") {
		t.Fatalf("%+v", ch)
	}
}

func vmState(t *testing.T, c *vsphere.Client, name string) *mo.VirtualMachine {
	t.Helper()
	ctx := context.Background()
	vm, err := c.FindVMByName(ctx, name)
	if errors.Is(err, vsphere.ErrVMNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config", "runtime"}, &m); err != nil {
		t.Fatal(err)
	}
	return &m
}

func diskFiles(m *mo.VirtualMachine) []string {
	var out []string
	for _, d := range object.VirtualDeviceList(m.Config.Hardware.Device).SelectByType((*types.VirtualDisk)(nil)) {
		out = append(out, d.(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName)
	}
	return out
}

func failbackSpec(s *vspheresim.Scene, root string) vsphere.FailbackSpec {
	return vsphere.FailbackSpec{SourceHostname: "src01", CPUs: 2, MemoryMB: 2048,
		NICs:  []vsphere.NIC{{Network: vspheresim.Network}, {Network: "DC0_DVPG0", Adapter: "e1000e"}},
		Disks: []string{"/dev/sdb", s.RecoveredFiles[1]}, DevRoot: root}
}

func TestCreateFailbackVM(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	root := t.TempDir()
	s.WriteDevRoot(root)
	obj, _ := findMT(t, c, s)

	p, err := c.PlanFailback(ctx, obj, failbackSpec(s, root))
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.Name != "src01" || p.Spec.Datastore != vspheresim.Datastore || p.Spec.Host != vspheresim.MTHost ||
		p.Disks[0].Device != "/dev/sdb" || p.VMPath != "[LocalDS_0] src01/src01.vmx" || len(p.Steps) != 4 {
		t.Fatalf("plan %+v", p)
	}
	if vsphere.Failed(p.Checks) {
		t.Fatalf("checks %+v", p.Checks)
	}
	// The plan changed nothing.
	if vmState(t, c, "src01") != nil || len(diskFiles(vmState(t, c, vspheresim.MT))) != 3 {
		t.Fatal("planning changed the inventory")
	}

	var progress []string
	if err := c.Execute(ctx, p, func(st vsphere.Step) { progress = append(progress, st.Kind+" "+st.Status) }); err != nil {
		t.Fatal(err)
	}
	want := "detach running,detach done,create running,create done,attach running,attach done,power-on running,power-on done"
	if strings.Join(progress, ",") != want {
		t.Fatalf("progress %v", progress)
	}
	vm := vmState(t, c, "src01")
	if vm == nil || vm.Runtime.PowerState != "poweredOn" || vm.Config.Hardware.NumCPU != 2 || vm.Config.Hardware.MemoryMB != 2048 {
		t.Fatalf("new VM %+v", vm)
	}
	if got := strings.Join(diskFiles(vm), ","); got != strings.Join(s.RecoveredFiles, ",") {
		t.Fatalf("new VM's disks %s", got)
	}
	devs := object.VirtualDeviceList(vm.Config.Hardware.Device)
	if n := len(devs.SelectByType((*types.VirtualEthernetCard)(nil))); n != 2 {
		t.Fatalf("%d NICs", n)
	}
	if len(devs.SelectByType((*types.VirtualLsiLogicController)(nil))) != 1 {
		t.Fatal("no LSI Logic controller")
	}
	// Same UUIDs: the failback guest sees the same disk ids.
	for i, d := range devs.SelectByType((*types.VirtualDisk)(nil)) {
		if u := d.(*types.VirtualDisk).Backing.(*types.VirtualDiskFlatVer2BackingInfo).Uuid; u != s.RecoveredUUIDs[i] {
			t.Fatalf("disk %d UUID %s, want %s", i, u, s.RecoveredUUIDs[i])
		}
	}
	if files := diskFiles(vmState(t, c, vspheresim.MT)); len(files) != 1 {
		t.Fatalf("master target still has %v", files)
	}

	// Again: the name is taken now, and the disks are gone from the MT.
	if _, err := c.PlanFailback(ctx, obj, failbackSpec(s, root)); err == nil {
		t.Fatal("planned with disks the master target no longer has")
	}
	sp := failbackSpec(s, root)
	sp.Disks = []string{"/dev/sda"}
	if _, err := c.PlanFailback(ctx, obj, sp); err == nil || !strings.Contains(err.Error(), "boot disk") {
		t.Fatalf("boot disk: %v", err)
	}
}

func TestCreateFailbackVMRollback(t *testing.T) {
	for _, method := range []string{"PowerOnVM_Task", "ReconfigVM_Task"} {
		t.Run(method, func(t *testing.T) {
			s := scene(t)
			c := connect(t, s)
			ctx := context.Background()
			root := t.TempDir()
			s.WriteDevRoot(root)
			obj, before := findMT(t, c, s)
			p, err := c.PlanFailback(ctx, obj, failbackSpec(s, root))
			if err != nil {
				t.Fatal(err)
			}
			// Fail the power-on, or the attach (a reconfigure of the new VM).
			s.Model.Service.AddFaultRule(&simulator.FaultInjectionRule{MethodName: method, ObjectType: "VirtualMachine",
				ObjectName: "src01", Probability: 1, FaultType: simulator.FaultTypeInsufficientResourcesFault,
				Message: "injected", Enabled: true})
			err = c.Execute(ctx, p, nil)
			if err == nil || !p.RolledBack || !strings.Contains(err.Error(), "undone") {
				t.Fatalf("err %v, rolled back %v", err, p.RolledBack)
			}
			s.Model.Service.ClearFaultRules()
			if vm := vmState(t, c, "src01"); vm != nil {
				t.Fatalf("the new VM is still there: %s", vm.Runtime.PowerState)
			}
			_, after := findMT(t, c, s)
			if len(after.Disks) != 3 {
				t.Fatalf("master target disks after rollback: %+v", after.Disks)
			}
			for i := range before.Disks {
				b, a := before.Disks[i], after.Disks[i]
				if a.File != b.File || a.Controller != b.Controller || a.UUID != b.UUID {
					t.Errorf("disk %d: was %s %s %s, is %s %s %s", i, b.File, b.Controller, b.UUID, a.File, a.Controller, a.UUID)
				}
			}
			// The files are still on the datastore.
			ds, _ := find.NewFinder(c.Vim()).Datastore(ctx, "/DC0/datastore/"+vspheresim.Datastore)
			for _, f := range s.RecoveredFiles {
				if _, err := ds.Stat(ctx, strings.TrimPrefix(f, "[LocalDS_0] ")); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			for _, st := range p.Steps {
				if st.Status != vsphere.StepUndone && st.Status != vsphere.StepFailed && st.Status != vsphere.StepPlanned {
					t.Errorf("step %s: %s", st.Kind, st.Status)
				}
			}
		})
	}
}

func TestCreateRefusedWhenNotReady(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	obj, _ := findMT(t, c, s)
	sp := failbackSpec(s, t.TempDir())
	sp.Name = vspheresim.OffVM // taken
	sp.Disks = s.RecoveredFiles
	p, err := c.PlanFailback(ctx, obj, sp)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Execute(ctx, p, nil); !errors.Is(err, vsphere.ErrNotReady) {
		t.Fatalf("%v", err)
	}
	if files := diskFiles(vmState(t, c, vspheresim.MT)); len(files) != 3 {
		t.Fatalf("master target changed: %v", files)
	}
}

func TestConnectFailures(t *testing.T) {
	s := scene(t)
	ctx := context.Background()
	good := vsphere.Config{URL: s.URL, User: s.User, Password: s.Password, Thumbprint: s.Thumbprint}

	cfg := good
	cfg.Password = "wrong-" + testPass
	_, err := vsphere.Connect(ctx, cfg)
	if !errors.Is(err, vsphere.ErrLogin) || strings.Contains(err.Error(), cfg.Password) || strings.Contains(err.Error(), testPass) {
		t.Fatalf("wrong password: %v", err)
	}

	// A pin of another certificate: refused before the password is sent.
	cfg = good
	cfg.Thumbprint = strings.Repeat("AB:", 31) + "AB"
	_, err = vsphere.Connect(ctx, cfg)
	var ce *vsphere.CertificateError
	if !errors.Is(err, vsphere.ErrCertificate) || !errors.As(err, &ce) || ce.Got != s.Thumbprint || !strings.Contains(err.Error(), s.Thumbprint) {
		t.Fatalf("mismatch: %v", err)
	}
	// Nothing pinned, not insecure: refused, showing the thumbprint.
	cfg = good
	cfg.Thumbprint = ""
	_, err = vsphere.Connect(ctx, cfg)
	if !errors.Is(err, vsphere.ErrCertificate) || !strings.Contains(err.Error(), s.Thumbprint) {
		t.Fatalf("unpinned: %v", err)
	}
	// Insecure: accepted.
	cfg.Insecure = true
	cl, err := vsphere.Connect(ctx, cfg)
	if err != nil || !cl.Insecure || !cl.IsVC {
		t.Fatalf("insecure: %v", err)
	}
	cl.Logout(ctx)

	// The trust store pins on first use and refuses a change; read-only
	// (a dry run), a first use trusts for the connection and writes
	// nothing.
	store := filepath.Join(t.TempDir(), "sub", "thumbprints")
	cfg = good
	cfg.Thumbprint, cfg.TrustStore, cfg.ReadOnly = "", store, true
	cl, err = vsphere.Connect(ctx, cfg)
	if err != nil || !cl.FirstUse {
		t.Fatalf("read-only first use: %v", err)
	}
	cl.Logout(ctx)
	if _, err := os.Stat(filepath.Dir(store)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a read-only first use wrote the trust store: %v", err)
	}
	cfg.ReadOnly = false
	cl, err = vsphere.Connect(ctx, cfg)
	if err != nil || !cl.FirstUse {
		t.Fatalf("first use: %v", err)
	}
	cl.Logout(ctx)
	cl, err = vsphere.Connect(ctx, cfg)
	if err != nil || cl.FirstUse {
		t.Fatalf("second use: %v", err)
	}
	cl.Logout(ctx)
	b, _ := os.ReadFile(store)
	old := strings.Repeat("12:", 31) + "12"
	os.WriteFile(store, bytes.ReplaceAll(b, []byte(s.Thumbprint), []byte(old)), 0o600)
	_, err = vsphere.Connect(ctx, cfg)
	if !errors.As(err, &ce) || ce.Pinned != old || ce.Got != s.Thumbprint || !strings.Contains(err.Error(), old) || !strings.Contains(err.Error(), store) {
		t.Fatalf("changed: %v", err)
	}
	if b, _ := os.ReadFile(store); !strings.Contains(string(b), old) {
		t.Fatal("a refused connection rewrote the trust store")
	}

	// Unreachable: a port nobody listens on.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	cfg = good
	cfg.URL = "https://" + addr + "/sdk"
	if _, err := vsphere.Connect(ctx, cfg); !errors.Is(err, vsphere.ErrUnreachable) {
		t.Fatalf("unreachable: %v", err)
	}
	// A password in the URL is refused.
	cfg.URL = "https://u:p@" + addr
	if _, err := vsphere.Connect(ctx, cfg); err == nil || strings.Contains(err.Error(), ":p@") {
		t.Fatalf("user info: %v", err)
	}
}

func TestPermissionNamesPrivilege(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	off, _ := c.FindVMByName(ctx, vspheresim.OffVM)
	s.Model.Service.AddFaultRule(&simulator.FaultInjectionRule{MethodName: "ReconfigVM_Task", ObjectType: "*", ObjectName: "*",
		Probability: 1, FaultType: simulator.FaultTypeNoPermission, Enabled: true})
	_, err := c.EnableUUID(ctx, off)
	if !errors.Is(err, vsphere.ErrPermission) || !strings.Contains(err.Error(), "System.Modify") {
		t.Fatalf("%v", err)
	}
}

func TestReadPassword(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "pw")
	os.WriteFile(f, []byte("from-file\nignored\n"), 0o600)
	if pw, err := vsphere.ReadPassword(f, "", nil); err != nil || pw != "from-file" {
		t.Fatal(pw, err)
	}
	t.Setenv("MT_TEST_PW", "from-env")
	if pw, err := vsphere.ReadPassword("", "MT_TEST_PW", nil); err != nil || pw != "from-env" {
		t.Fatal(pw, err)
	}
	if pw, err := vsphere.ReadPassword("", "", bufio.NewReader(strings.NewReader("from-stdin\r\n"))); err != nil || pw != "from-stdin" {
		t.Fatal(pw, err)
	}
	if _, err := vsphere.ReadPassword("", "", bufio.NewReader(strings.NewReader(""))); err == nil {
		t.Fatal("empty stdin accepted")
	}
	if _, err := vsphere.ReadPassword("", "MT_TEST_UNSET_PW", nil); err == nil {
		t.Fatal("unset variable accepted")
	}
	if _, err := vsphere.ReadPassword(f, "MT_TEST_PW", nil); err == nil {
		t.Fatal("two sources accepted")
	}
	// a password file others may read is refused, with what to do
	open := filepath.Join(dir, "pw-open")
	os.WriteFile(open, []byte("from-file\n"), 0o600)
	os.Chmod(open, 0o644)
	if pw, err := vsphere.ReadPassword(open, "", nil); err == nil || !strings.Contains(err.Error(), "chmod 600 "+open) || strings.Contains(err.Error(), "from-file") {
		t.Fatalf("0644 password file: %q, %v", pw, err)
	}
}

func TestNormalizeThumbprint(t *testing.T) {
	got, err := vsphere.NormalizeThumbprint("ab" + strings.Repeat("cd", 19))
	if err != nil || got != "AB:"+strings.TrimSuffix(strings.Repeat("CD:", 19), ":") {
		t.Fatal(got, err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("zz", 20)} {
		if _, err := vsphere.NormalizeThumbprint(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
