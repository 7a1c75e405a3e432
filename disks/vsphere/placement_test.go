package vsphere_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/disks/vsphere/vspheresim"
)

// With --cluster DRS picks the host: the capacity check asks that one
// host of the cluster hold the VM (it cannot span hosts).
func TestFailbackClusterCapacity(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	root := t.TempDir()
	s.WriteDevRoot(root)
	obj, _ := findMT(t, c, s)
	sp := vsphere.FailbackSpec{Name: "c01", Cluster: "DC0_C0", CPUs: 4, MemoryMB: 4096, Disks: slices.Clone(s.RecoveredFiles), DevRoot: root}
	p, err := c.PlanFailback(ctx, obj, sp)
	if err != nil {
		t.Fatal(err)
	}
	ch := byID(p.Checks)["vm.capacity"]
	if ch.Status != vsphere.Fail || !strings.Contains(ch.Detail, "no host of cluster DC0_C0 has 4 CPUs and 4096 MB") || !strings.Contains(ch.Detail, "DC0_C0_H0 2 CPUs") {
		t.Fatalf("4 CPUs, 4 GB on 2-CPU hosts: %+v", ch)
	}
	sp.CPUs, sp.MemoryMB = 2, 2048
	if p, err = c.PlanFailback(ctx, obj, sp); err != nil {
		t.Fatal(err)
	}
	if ch := byID(p.Checks)["vm.capacity"]; ch.Status != vsphere.Pass || !strings.Contains(ch.Detail, "DC0_C0_H") {
		t.Fatalf("2 CPUs, 2 GB: %+v", ch)
	}
}

// Onto an existing VM: too few free SCSI slots is refused before any
// change; a VM whose host does not mount the disks' datastore fails the
// readiness check; the existing VM's CPUs and memory are not judged.
func TestFailbackOntoVMRefusals(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	if err := s.AddRecovered(ctx, 14); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s.WriteDevRoot(root)
	before := inventory(t, s)
	obj, _ := findMT(t, c, s)
	sp := vsphere.FailbackSpec{OntoVM: vspheresim.OffVM, CPUs: 64, MemoryMB: 1 << 20, Disks: slices.Clone(s.RecoveredFiles), DevRoot: root}
	if _, err := c.PlanFailback(ctx, obj, sp); err == nil || !strings.Contains(err.Error(), "no free SCSI slot") || !strings.Contains(err.Error(), "--onto-vm "+vspheresim.OffVM) {
		t.Fatalf("16 disks onto a VM with one controller: %v", err)
	}
	diffInventory(t, "after a refused plan", before, inventory(t, s))

	sp.Disks = sp.Disks[:2]
	p, err := c.PlanFailback(ctx, obj, sp)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := byID(p.Checks)["vm.capacity"]; ok {
		t.Fatalf("the existing VM's hardware was judged: %+v", byID(p.Checks)["vm.capacity"])
	}
	if ch := byID(p.Checks)["vm.target.datastores"]; ch.Status != vsphere.Pass {
		t.Fatalf("datastores: %+v", ch)
	}

	// A VM on a host that no longer mounts the datastore.
	gc, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Logout(ctx)
	f := find.NewFinder(gc.Client, true)
	dc, _ := f.Datacenter(ctx, vspheresim.Datacenter)
	f.SetDatacenter(dc)
	// A suspended VM is refused, and called suspended.
	sus, err := f.VirtualMachine(ctx, vspheresim.PVSCSIVM)
	if err != nil {
		t.Fatal(err)
	}
	if task, err := sus.Suspend(ctx); err != nil {
		t.Fatal(err)
	} else if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	sp.OntoVM = vspheresim.PVSCSIVM
	if p, err = c.PlanFailback(ctx, obj, sp); err != nil {
		t.Fatal(err)
	}
	if ch := byID(p.Checks)["vm.target.power"]; ch.Status != vsphere.Fail || ch.Detail != vspheresim.PVSCSIVM+" is suspended" || !strings.Contains(ch.Fix, "is suspended: power it on and shut the guest down") {
		t.Fatalf("suspended: %+v", ch)
	}

	vm, err := f.VirtualMachine(ctx, "DC0_C0_RP0_VM0")
	if err != nil {
		t.Fatal(err)
	}
	if task, err := vm.PowerOff(ctx); err == nil {
		task.Wait(ctx)
	}
	host, err := vm.HostSystem(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The simulator cannot unmount a datastore (RemoveDatastore): its
	// host's datastore list is edited in the model, as an unmount leaves
	// it.
	ds, err := f.Datastore(ctx, vspheresim.Datastore)
	if err != nil {
		t.Fatal(err)
	}
	reg := s.Model.Map()
	hs := reg.Get(host.Reference()).(*simulator.HostSystem)
	reg.WithLock(&simulator.Context{}, hs, func() {
		keep := slices.DeleteFunc(slices.Clone(hs.Datastore), func(r types.ManagedObjectReference) bool { return r == ds.Reference() })
		reg.Update(&simulator.Context{Map: reg}, hs, []types.PropertyChange{{Name: "datastore", Val: keep}})
	})
	hn, _ := host.ObjectName(ctx)
	sp.OntoVM = "DC0_C0_RP0_VM0"
	if p, err = c.PlanFailback(ctx, obj, sp); err != nil {
		t.Fatal(err)
	}
	ch := byID(p.Checks)["vm.target.datastores"]
	if ch.Status != vsphere.Fail || !strings.Contains(ch.Detail, "runs on "+hn+", which does not mount "+vspheresim.Datastore) {
		t.Fatalf("datastore not mounted: %+v", ch)
	}
	if err := c.Execute(ctx, p, nil); err == nil {
		t.Fatal("executed onto a VM that cannot see the disks")
	}
}

// Placement: a host of a cluster, a folder, a resource pool; the VM is
// made where asked (read back through the scene's own client), and undo
// leaves the inventory as before.
func TestFailbackPlacement(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	gc, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Logout(ctx)
	f := find.NewFinder(gc.Client, true)
	dc, err := f.Datacenter(ctx, vspheresim.Datacenter)
	if err != nil {
		t.Fatal(err)
	}
	f.SetDatacenter(dc)
	folders, err := dc.Folders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fb, err := folders.VmFolder.CreateFolder(ctx, "failback")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	s.WriteDevRoot(root)
	obj, _ := findMT(t, c, s)
	for _, tc := range []struct {
		name string
		mod  func(*vsphere.FailbackSpec)
		host string // "" for any host of the cluster
		pool string
	}{
		{"on-host", func(sp *vsphere.FailbackSpec) {
			sp.Cluster, sp.Host, sp.Folder = "DC0_C0", "DC0_C0_H1", "/DC0/vm/failback"
		}, "DC0_C0_H1", "/DC0/host/DC0_C0/Resources"},
		{"in-pool", func(sp *vsphere.FailbackSpec) { sp.Pool = "/DC0/host/DC0_C0/Resources" }, "", "/DC0/host/DC0_C0/Resources"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := inventory(t, s)
			sp := vsphere.FailbackSpec{Name: "pl-" + tc.name, CPUs: 1, MemoryMB: 1024, NoPowerOn: true, Disks: slices.Clone(s.RecoveredFiles), DevRoot: root, PlanDir: t.TempDir()}
			tc.mod(&sp)
			p, err := c.PlanFailback(ctx, obj, sp)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Execute(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
			vm, err := f.VirtualMachine(ctx, sp.Name)
			if err != nil {
				t.Fatal(err)
			}
			var m mo.VirtualMachine
			if err := vm.Properties(ctx, vm.Reference(), []string{"runtime.host", "resourcePool", "parent"}, &m); err != nil {
				t.Fatal(err)
			}
			host, err := vm.HostSystem(ctx)
			if err != nil {
				t.Fatal(err)
			}
			hn, _ := host.ObjectName(ctx)
			pool, err := f.ResourcePool(ctx, tc.pool)
			if err != nil {
				t.Fatal(err)
			}
			if tc.host != "" && hn != tc.host || !strings.HasPrefix(hn, "DC0_C0_H") {
				t.Errorf("on host %s, want %s", hn, orAny(tc.host))
			}
			if m.ResourcePool == nil || *m.ResourcePool != pool.Reference() {
				t.Errorf("in pool %v, want %s", m.ResourcePool, tc.pool)
			}
			wantFolder := folders.VmFolder.Reference()
			if sp.Folder != "" {
				wantFolder = fb.Reference()
			}
			if m.Parent == nil || *m.Parent != wantFolder {
				t.Errorf("in folder %v, want %v", m.Parent, wantFolder)
			}
			if err := c.Undo(ctx, p, nil); err != nil {
				t.Fatal(err)
			}
			diffInventory(t, "after undo", before, inventory(t, s))
		})
	}
}

// A host outside the pool's cluster is refused before any change.
func TestFailbackPoolHostMismatch(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	root := t.TempDir()
	s.WriteDevRoot(root)
	obj, _ := findMT(t, c, s)
	sp := vsphere.FailbackSpec{Name: "x", CPUs: 1, MemoryMB: 1024, Pool: "/DC0/host/DC0_C0/Resources", Host: vspheresim.MTHost,
		Disks: slices.Clone(s.RecoveredFiles), DevRoot: root}
	if _, err := c.PlanFailback(context.Background(), obj, sp); err == nil || !strings.Contains(err.Error(), "--host "+vspheresim.MTHost+" is not a host of --pool") {
		t.Fatalf("host outside the pool: %v", err)
	}
}

func orAny(s string) string {
	if s == "" {
		return "a host of DC0_C0"
	}
	return s
}
