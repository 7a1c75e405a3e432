package vsphere_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/disks/vsphere/vspheresim"
)

// inventory describes every VM of the scene, object by object, as the
// scene's own govmomi client (not the package under test) reads it:
// name, power state, CPUs, memory, and each disk's file, controller bus,
// unit and UUID; plus the files on the datastore's recovered folder.
func inventory(t *testing.T, s *vspheresim.Scene) map[string]string {
	t.Helper()
	ctx := context.Background()
	gc, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Logout(ctx)
	v, err := view.NewManager(gc.Client).CreateContainerView(ctx, gc.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Destroy(ctx)
	var vms []mo.VirtualMachine
	if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "config", "runtime.powerState"}, &vms); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, vm := range vms {
		devs := object.VirtualDeviceList(vm.Config.Hardware.Device)
		bus := map[int32]int32{}
		var ctls []string
		for _, d := range devs {
			if sc, ok := d.(types.BaseVirtualSCSIController); ok {
				c := sc.GetVirtualSCSIController()
				bus[c.Key] = c.BusNumber
				ctls = append(ctls, fmt.Sprintf("%s@%d", devs.Type(d), c.BusNumber))
			}
		}
		sort.Strings(ctls)
		var disks []string
		for _, d := range devs.SelectByType((*types.VirtualDisk)(nil)) {
			vd := d.(*types.VirtualDisk)
			b := vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			disks = append(disks, fmt.Sprintf("%s@%d:%d/%s", b.FileName, bus[vd.ControllerKey], *vd.UnitNumber, b.Uuid))
		}
		sort.Strings(disks)
		nics := len(devs.SelectByType((*types.VirtualEthernetCard)(nil)))
		out[vm.Name] = fmt.Sprintf("%s cpu=%d mem=%d fw=%s ctl=%v nics=%d disks=%v", vm.Runtime.PowerState, vm.Config.Hardware.NumCPU,
			vm.Config.Hardware.MemoryMB, vm.Config.Firmware, ctls, nics, disks)
	}
	// The recovered disks' files are still there.
	dc, err := find.NewFinder(gc.Client).Datacenter(ctx, vspheresim.Datacenter)
	if err != nil {
		t.Fatal(err)
	}
	f := find.NewFinder(gc.Client).SetDatacenter(dc)
	ds, err := f.Datastore(ctx, vspheresim.Datastore)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, rf := range s.RecoveredFiles {
		if _, err := ds.Stat(ctx, strings.TrimPrefix(rf, "["+vspheresim.Datastore+"] ")); err == nil {
			files = append(files, rf)
		}
	}
	out["(files)"] = strings.Join(files, ",")
	return out
}

func diffInventory(t *testing.T, what string, want, got map[string]string) {
	t.Helper()
	var keys []string
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		if want[k] != got[k] {
			t.Errorf("%s: %s:\n  want %q\n  got  %q", what, k, want[k], got[k])
		}
	}
}

// slowTasks makes the simulator's tasks take a while, so a cancel lands
// while one runs; the property collector stays readable meanwhile.
func slowTasks(t *testing.T, ms int) {
	old := simulator.TaskDelay
	simulator.TaskDelay = simulator.DelayConfig{MethodDelay: map[string]int{
		"CreateVm": ms, "PowerOn": ms, "ReconfigVm": ms, "Destroy": ms / 2, "PowerOff": ms / 2, "LockHandoff": 0}}
	t.Cleanup(func() { simulator.TaskDelay = old })
}

// runSpec plans the failback VM the interruption tests make.
func runPlan(t *testing.T, s *vspheresim.Scene, c *vsphere.Client, planDir string) *vsphere.Plan {
	t.Helper()
	root := t.TempDir()
	if err := s.WriteDevRoot(root); err != nil {
		t.Fatal(err)
	}
	obj, _ := findMT(t, c, s)
	sp := failbackSpec(s, root)
	sp.PlanDir = planDir
	p, err := c.PlanFailback(context.Background(), obj, sp)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func planFileMode(t *testing.T, p *vsphere.Plan) {
	t.Helper()
	st, err := os.Stat(p.File)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("plan file %s is %v, want 0600", p.File, st.Mode().Perm())
	}
}

// A cancel (Ctrl-C) while each step's task runs: the task is waited for,
// every step begun is undone, and the inventory is as before, object by
// object; the plan file says undone.
func TestExecuteInterruptedAtEachStep(t *testing.T) {
	slowTasks(t, 300)
	for _, kind := range []string{"detach", "create", "attach", "power-on"} {
		t.Run(kind, func(t *testing.T) {
			s := scene(t)
			c := connect(t, s)
			before := inventory(t, s)
			p := runPlan(t, s, c, t.TempDir())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hit := false
			vsphere.SetOnTask(func(k string) {
				if k == kind {
					hit = true
					cancel()
				}
			})
			defer vsphere.SetOnTask(nil)
			err := c.Execute(ctx, p, nil)
			if !hit {
				t.Fatalf("no %s task ran: %v", kind, err)
			}
			if !errors.Is(err, vsphere.ErrInterrupted) || !strings.Contains(err.Error(), "undone") {
				t.Fatalf("err %v", err)
			}
			diffInventory(t, "after the interrupted "+kind, before, inventory(t, s))
			got, lerr := vsphere.LoadPlan(p.File)
			if lerr != nil {
				t.Fatal(lerr)
			}
			if got.Status != vsphere.PlanUndone {
				t.Fatalf("plan file status %s", got.Status)
			}
			for _, st := range got.Steps {
				if st.Status != vsphere.StepUndone && st.Status != vsphere.StepPlanned {
					t.Errorf("step %s: %s", st.Kind, st.Status)
				}
			}
			planFileMode(t, p)
			// An undone plan is not resumed.
			if err := c.Resume(context.Background(), got, nil); err == nil {
				t.Fatal("resumed an undone plan")
			}
		})
	}
}

// A kill (-9) at each step, before its change and after it (but before
// the plan file says so): resume finishes the run, to exactly what an
// uninterrupted run makes; undo reverses it to the inventory before.
func TestKilledRunResumeAndUndo(t *testing.T) {
	// What an uninterrupted run makes.
	var want map[string]string
	{
		s := scene(t)
		c := connect(t, s)
		p := runPlan(t, s, c, "")
		if err := c.Execute(context.Background(), p, nil); err != nil {
			t.Fatal(err)
		}
		want = inventory(t, s)
		if !strings.HasPrefix(want["src01"], "poweredOn cpu=2 mem=2048") {
			t.Fatalf("uninterrupted run made %q", want["src01"])
		}
	}
	for _, kind := range []string{"detach", "create", "attach", "power-on"} {
		for _, phase := range []string{"before", "after"} {
			for _, then := range []string{"resume", "undo"} {
				t.Run(kind+"-"+phase+"-"+then, func(t *testing.T) {
					s := scene(t)
					c := connect(t, s)
					before := inventory(t, s)
					dir := t.TempDir()
					p := runPlan(t, s, c, dir)
					vsphere.SetCrashAt(func(k, ph string) bool { return k == kind && ph == phase })
					err := c.Execute(context.Background(), p, nil)
					vsphere.SetCrashAt(nil)
					if !errors.Is(err, vsphere.ErrCrash) {
						t.Fatalf("err %v", err)
					}
					left, err := vsphere.ListPlans(dir)
					if err != nil || len(left) != 1 {
						t.Fatalf("unfinished plans %d, %v", len(left), err)
					}
					lp := left[0]
					if lp.Status != vsphere.PlanRunning {
						t.Fatalf("killed plan is %s", lp.Status)
					}
					// A new client, as a new process would have.
					c2 := connect(t, s)
					if then == "resume" {
						if err := c2.Resume(context.Background(), lp, nil); err != nil {
							t.Fatal(err)
						}
						got := inventory(t, s)
						diffInventory(t, "after resume", want, got)
						if lp.Status != vsphere.PlanDone {
							t.Fatalf("plan %s", lp.Status)
						}
					} else {
						if err := c2.Undo(context.Background(), lp, nil); err != nil {
							t.Fatal(err)
						}
						diffInventory(t, "after undo", before, inventory(t, s))
						if lp.Status != vsphere.PlanUndone {
							t.Fatalf("plan %s", lp.Status)
						}
					}
					if left, _ := vsphere.ListPlans(dir); len(left) != 0 {
						t.Fatalf("%d plans left unfinished", len(left))
					}
					// Undo after resume takes it all back too.
					if then == "resume" {
						if err := c2.Undo(context.Background(), lp, nil); err != nil {
							t.Fatal(err)
						}
						diffInventory(t, "after resume and undo", before, inventory(t, s))
					}
				})
			}
		}
	}
}

// The plan file is written before the first change: a plan directory
// that cannot be written refuses the run with nothing changed.
func TestPlanFileUnwritable(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	before := inventory(t, s)
	dir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(dir, nil, 0o600)
	p := runPlan(t, s, c, filepath.Join(dir, "sub"))
	if err := c.Execute(context.Background(), p, nil); err == nil || !strings.Contains(err.Error(), "plan file") {
		t.Fatalf("err %v", err)
	}
	diffInventory(t, "after a refused run", before, inventory(t, s))
}
