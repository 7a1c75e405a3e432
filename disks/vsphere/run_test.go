package vsphere_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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

// inventory is every VM of the scene, object by object, as the scene's
// own govmomi client (not the package under test) reads it.
func inventory(t *testing.T, s *vspheresim.Scene) map[string]string {
	t.Helper()
	ctx := context.Background()
	gc, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Logout(ctx)
	inv, err := vspheresim.Inventory(ctx, gc.Client, s.RecoveredFiles)
	if err != nil {
		t.Fatal(err)
	}
	return inv
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
		if !strings.HasPrefix(want["src01"], "poweredOn cpu=2/1 mem=2048") {
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

// A 20-disk EFI (secure boot) VM on two PVSCSI controllers with two NICs
// of given MACs, left powered off; then undone to the inventory before.
func TestFailbackFullSpec(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	if err := s.AddRecovered(ctx, 18); err != nil {
		t.Fatal(err)
	}
	before := inventory(t, s)
	obj, _ := findMT(t, c, s)
	sp := vsphere.FailbackSpec{Name: "big01", CPUs: 4, CoresPerSocket: 2, MemoryMB: 4096, GuestID: "rhel9_64Guest",
		Firmware: "efi", SecureBoot: true, HWVersion: 19, Controllers: []string{"pvscsi", "pvscsi"}, NoPowerOn: true,
		NICs:  []vsphere.NIC{{Network: vspheresim.Network, MAC: "00:50:56:01:02:03"}, {Network: "DC0_DVPG0", Adapter: "e1000e", MAC: "00:50:56:01:02:04", Disconnected: true}},
		Disks: slices.Clone(s.RecoveredFiles), PlanDir: t.TempDir()}
	// The host (2 logical CPUs, 4095 MB) cannot hold 4 CPUs and 4 GB.
	p, err := c.PlanFailback(ctx, obj, sp)
	if err != nil {
		t.Fatal(err)
	}
	if ch := byID(p.Checks)["vm.capacity"]; ch.Status != vsphere.Fail || !strings.Contains(ch.Detail, "wants 4 CPUs, 4096 MB") {
		t.Fatalf("capacity check %+v", ch)
	}
	if err := c.Execute(ctx, p, nil); !errors.Is(err, vsphere.ErrNotReady) {
		t.Fatalf("executed a plan the host cannot hold: %v", err)
	}
	sp.CPUs, sp.MemoryMB = 2, 2048
	if p, err = c.PlanFailback(ctx, obj, sp); err != nil {
		t.Fatal(err)
	}
	if kinds := fmt.Sprint(len(p.Steps), " ", p.Steps[len(p.Steps)-1].Kind); kinds != "3 attach" {
		t.Fatalf("steps %s", kinds)
	}
	if err := c.Execute(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	gc, _ := s.Client(ctx)
	defer gc.Logout(ctx)
	vmo, err := find.NewFinder(gc.Client, true).VirtualMachine(ctx, "/DC0/vm/big01")
	if err != nil {
		t.Fatal(err)
	}
	var m mo.VirtualMachine
	if err := vmo.Properties(ctx, vmo.Reference(), []string{"config", "runtime"}, &m); err != nil {
		t.Fatal(err)
	}
	hw := m.Config.Hardware
	if m.Runtime.PowerState != "poweredOff" || m.Config.Firmware != "efi" || m.Config.BootOptions == nil ||
		m.Config.BootOptions.EfiSecureBootEnabled == nil || !*m.Config.BootOptions.EfiSecureBootEnabled ||
		m.Config.Version != "vmx-19" || hw.NumCPU != 2 || hw.NumCoresPerSocket == nil || *hw.NumCoresPerSocket != 2 || hw.MemoryMB != 2048 || m.Config.GuestId != "rhel9_64Guest" {
		t.Fatalf("VM: power %s fw %s boot %+v version %s cpu %d/%d guest %s", m.Runtime.PowerState, m.Config.Firmware,
			m.Config.BootOptions, m.Config.Version, hw.NumCPU, hw.NumCoresPerSocket, m.Config.GuestId)
	}
	devs := object.VirtualDeviceList(hw.Device)
	perCtl := map[int32]int{}
	pv := map[int32]int32{}
	for _, d := range devs.SelectByType((*types.ParaVirtualSCSIController)(nil)) {
		c := d.(types.BaseVirtualSCSIController).GetVirtualSCSIController()
		pv[c.Key] = c.BusNumber
	}
	for _, d := range devs.SelectByType((*types.VirtualDisk)(nil)) {
		vd := d.(*types.VirtualDisk)
		if _, ok := pv[vd.ControllerKey]; !ok {
			t.Fatalf("disk %s on no PVSCSI controller", vd.Backing.(*types.VirtualDiskFlatVer2BackingInfo).FileName)
		}
		if *vd.UnitNumber == 7 {
			t.Fatal("a disk on unit 7")
		}
		perCtl[pv[vd.ControllerKey]]++
	}
	if len(pv) != 2 || perCtl[0] != 15 || perCtl[1] != 5 {
		t.Fatalf("controllers %v, disks per bus %v", pv, perCtl)
	}
	var macs []string
	for _, d := range devs.SelectByType((*types.VirtualEthernetCard)(nil)) {
		e := d.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
		macs = append(macs, fmt.Sprintf("%T %s %v", d, e.MacAddress, e.Connectable.StartConnected))
	}
	if got := strings.Join(macs, ","); got != "*types.VirtualVmxnet3 00:50:56:01:02:03 true,*types.VirtualE1000e 00:50:56:01:02:04 false" {
		t.Fatalf("NICs %s", got)
	}
	if err := c.Undo(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	diffInventory(t, "after undo", before, inventory(t, s))
}

// Bad specs are refused before vSphere is asked, naming the flag.
func TestFailbackSpecValidate(t *testing.T) {
	good := func() vsphere.FailbackSpec {
		return vsphere.FailbackSpec{Name: "x", CPUs: 2, MemoryMB: 2048, Disks: []string{"/dev/sdb"}}
	}
	cases := []struct {
		want string
		mod  func(*vsphere.FailbackSpec)
	}{
		{"--name", func(s *vsphere.FailbackSpec) { s.Name = strings.Repeat("n", 81) }},
		{"--name", func(s *vsphere.FailbackSpec) { s.Name = "a/b" }},
		{"--cpus", func(s *vsphere.FailbackSpec) { s.CPUs = 0 }},
		{"--cores-per-socket", func(s *vsphere.FailbackSpec) { s.CoresPerSocket = 3 }},
		{"--memory-mb", func(s *vsphere.FailbackSpec) { s.MemoryMB = 100 }},
		{"--memory-mb", func(s *vsphere.FailbackSpec) { s.MemoryMB = 1025 }},
		{"--firmware", func(s *vsphere.FailbackSpec) { s.Firmware = "uefi" }},
		{"--secure-boot", func(s *vsphere.FailbackSpec) { s.SecureBoot = true }},
		{"--hw-version", func(s *vsphere.FailbackSpec) { s.HWVersion = 3 }},
		{"--guest-id", func(s *vsphere.FailbackSpec) { s.GuestID = "linux" }},
		{"--controller", func(s *vsphere.FailbackSpec) { s.Controllers = []string{"buslogic"} }},
		{"--controller", func(s *vsphere.FailbackSpec) {
			s.Controllers = []string{"pvscsi"}
			s.Disks = make([]string, 16)
		}},
		{"--disk", func(s *vsphere.FailbackSpec) { s.Disks = make([]string, 61) }},
		{"--disk", func(s *vsphere.FailbackSpec) { s.DiskBus = []int{4} }},
		{"--nic", func(s *vsphere.FailbackSpec) { s.NICs = []vsphere.NIC{{Network: "n", Adapter: "rtl8139"}} }},
		{"--nic", func(s *vsphere.FailbackSpec) { s.NICs = []vsphere.NIC{{Network: "n", MAC: "00:50:56"}} }},
		{"--nic", func(s *vsphere.FailbackSpec) { s.NICs = []vsphere.NIC{{Network: "n", MAC: "01:00:5e:00:00:01"}} }},
		{"--pool", func(s *vsphere.FailbackSpec) { s.Pool, s.Cluster = "p", "c" }},
		{"--onto-vm", func(s *vsphere.FailbackSpec) { s.OntoVM, s.Firmware = "old", "efi" }},
	}
	for _, tc := range cases {
		sp := good()
		tc.mod(&sp)
		err := sp.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), tc.want+":") {
			t.Errorf("%+v: %v, want an error naming %s", sp, err, tc.want)
		}
	}
	sp := good()
	sp.Disks = make([]string, 31)
	if err := sp.Validate(); err != nil || fmt.Sprint(sp.Controllers) != "[lsilogic lsilogic lsilogic]" || sp.Firmware != "bios" {
		t.Fatalf("%v %v %s", err, sp.Controllers, sp.Firmware)
	}
}

// Recovery onto an existing, powered-off VM: the disks go to its free
// slots, it is powered on; undo takes them off again and leaves the VM.
func TestFailbackOntoExistingVM(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	before := inventory(t, s)
	root := t.TempDir()
	s.WriteDevRoot(root)
	obj, _ := findMT(t, c, s)
	sp := vsphere.FailbackSpec{Name: vspheresim.OffVM, OntoVM: vspheresim.OffVM, CPUs: 1, MemoryMB: 512, Disks: s.RecoveredFiles, DevRoot: root, PlanDir: t.TempDir()}
	p, err := c.PlanFailback(ctx, obj, sp)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, st := range p.Steps {
		kinds = append(kinds, st.Kind)
	}
	if strings.Join(kinds, ",") != "detach,use,attach,power-on" {
		t.Fatalf("steps %v", kinds)
	}
	if err := c.Execute(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	after := inventory(t, s)
	for _, f := range s.RecoveredFiles {
		if !strings.Contains(after[vspheresim.OffVM], f) || strings.Contains(after[vspheresim.MT], f) {
			t.Fatalf("%s not moved: %s", f, after[vspheresim.OffVM])
		}
	}
	if !strings.HasPrefix(after[vspheresim.OffVM], "poweredOn") {
		t.Fatalf("not powered on: %s", after[vspheresim.OffVM])
	}
	if err := c.Undo(ctx, p, nil); err != nil {
		t.Fatal(err)
	}
	diffInventory(t, "after undo", before, inventory(t, s))

	// A powered-on VM is refused by the readiness check.
	sp.OntoVM, sp.Name = vspheresim.PVSCSIVM, vspheresim.PVSCSIVM
	p, err = c.PlanFailback(ctx, obj, sp)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Execute(ctx, p, nil); !errors.Is(err, vsphere.ErrNotReady) {
		t.Fatalf("onto a running VM: %v", err)
	}
}

// Killed just after vSphere took a slow task and before the plan file
// recorded it: resume and undo first wait for the task (it still runs),
// then find what it did (the new VM by its marker).
func TestKilledWithTaskUnrecorded(t *testing.T) {
	slowTasks(t, 400)
	for _, kind := range []string{"detach", "create", "attach", "power-on"} {
		for _, then := range []string{"resume", "undo"} {
			t.Run(kind+"-"+then, func(t *testing.T) {
				s := scene(t)
				c := connect(t, s)
				before := inventory(t, s)
				dir := t.TempDir()
				p := runPlan(t, s, c, dir)
				vsphere.SetCrashAt(func(k, ph string) bool { return k == kind && ph == "sent" })
				err := c.Execute(context.Background(), p, nil)
				vsphere.SetCrashAt(nil)
				if !errors.Is(err, vsphere.ErrCrash) {
					t.Fatalf("err %v", err)
				}
				lp, err := vsphere.LoadPlan(p.File)
				if err != nil {
					t.Fatal(err)
				}
				c2 := connect(t, s)
				if then == "undo" {
					if err := c2.Undo(context.Background(), lp, nil); err != nil {
						t.Fatal(err)
					}
					diffInventory(t, "after undo", before, inventory(t, s))
					return
				}
				if err := c2.Resume(context.Background(), lp, nil); err != nil {
					t.Fatal(err)
				}
				got := inventory(t, s)
				if !strings.HasPrefix(got["src01"], "poweredOn cpu=2/1 mem=2048") || strings.Contains(got[vspheresim.MT], "recovered/") {
					t.Fatalf("after resume: src01 %q, mt01 %q", got["src01"], got[vspheresim.MT])
				}
				n := 0
				for name := range got {
					if strings.HasPrefix(name, "src01") {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("%d VMs named src01*", n)
				}
			})
		}
	}
}
