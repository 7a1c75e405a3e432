package vsphere_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/mtconsole/mtconsole/disks/vsphere"
)

// taskMethod is the simulator's name of each step's task.
var taskMethod = map[string]string{"detach": "ReconfigVm", "create": "CreateVm", "attach": "ReconfigVm", "power-on": "PowerOn"}

// waitTaskEnd waits, through the scene's own client, until the task has
// ended, and returns its info.
func waitTaskEnd(t *testing.T, vc *vim25.Client, id string) types.TaskInfo {
	t.Helper()
	var info types.TaskInfo
	ref := types.ManagedObjectReference{Type: "Task", Value: id}
	err := property.Wait(context.Background(), property.DefaultCollector(vc), ref, []string{"info"}, func(pc []types.PropertyChange) bool {
		for _, ch := range pc {
			if ti, ok := ch.Val.(types.TaskInfo); ok {
				info = ti
			}
		}
		return info.State == types.TaskInfoStateSuccess || info.State == types.TaskInfoStateError
	})
	if err != nil {
		t.Fatalf("task %s: %v", id, err)
	}
	return info
}

// An interrupted run whose task outlives the grace: nothing is undone
// beside a task that still runs; the error says so and what to do; the
// plan file records the step as running with its task. An undo or resume
// while the task runs (short grace) refuses and changes nothing; once the
// task ended, undo restores the inventory as before, object by object,
// and resume makes what an uninterrupted run makes.
func TestInterruptedTaskOutlivesGrace(t *testing.T) {
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
	}
	old := simulator.TaskDelay
	t.Cleanup(func() { simulator.TaskDelay = old })
	for _, kind := range []string{"detach", "create", "attach", "power-on"} {
		for _, then := range []string{"undo", "resume"} {
			t.Run(kind+"-"+then, func(t *testing.T) {
				// The task takes far longer than the grace. On a machine so
				// busy that it ended within the grace all the same, the run
				// is tried again with a longer task.
				for delay := 2000; ; delay *= 4 {
					if outlivesGrace(t, kind, then, delay, want) {
						return
					}
					if delay > 30000 {
						t.Fatalf("the %s task ended within the grace even when it took %d ms", kind, delay)
					}
				}
			})
		}
	}
}

// outlivesGrace runs one case; false when the task ended within the
// grace after all (nothing is checked then: the caller tries again).
func outlivesGrace(t *testing.T, kind, then string, delay int, want map[string]string) bool {
	t.Helper()
	simulator.TaskDelay = simulator.DelayConfig{}
	s := scene(t)
	gc, err := s.Client(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Logout(context.Background())
	c := connect(t, s)
	c.TaskGrace = 50 * time.Millisecond
	before := inventory(t, s)
	dir := t.TempDir()
	p := runPlan(t, s, c, dir)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Only this step's task is slow: the delay is set just before the
	// step begins (every earlier task has ended).
	vsphere.SetCrashAt(func(k, ph string) bool {
		if k == kind && ph == "before" {
			simulator.TaskDelay = simulator.DelayConfig{MethodDelay: map[string]int{taskMethod[kind]: delay, "LockHandoff": 0}}
		}
		return false
	})
	defer vsphere.SetCrashAt(nil)
	vsphere.SetOnTask(func(k string) {
		if k == kind {
			cancel()
		}
	})
	defer vsphere.SetOnTask(nil)
	err = c.Execute(ctx, p, nil)
	vsphere.SetOnTask(nil)
	vsphere.SetCrashAt(nil)
	if !errors.Is(err, vsphere.ErrTaskRunning) {
		if errors.Is(err, vsphere.ErrInterrupted) && strings.Contains(err.Error(), "undone") {
			// Undone: right only if the task had ended, so that nothing
			// changes once the undo is over.
			for _, ti := range allTasksEnded(t, gc.Client) {
				if ti.Cancelled && !ti.Cancelable {
					// vSphere refuses it; the simulator takes it, and its
					// task goes on changing the inventory after "the end".
					t.Fatalf("the run asked to cancel task %s (%s), which vSphere does not let cancel, and said %v", ti.Key, ti.DescriptionId, err)
				}
			}
			simulator.TaskDelay = simulator.DelayConfig{}
			diffInventory(t, "the run said "+err.Error()+"; once every task ended", before, inventory(t, s))
			if t.Failed() {
				t.FailNow()
			}
			return false // the task ended within the grace after all
		}
		t.Fatalf("err %v, want %v", err, vsphere.ErrTaskRunning)
	}
	if !errors.Is(err, vsphere.ErrInterrupted) {
		t.Errorf("err %v does not say the run was interrupted", err)
	}
	for _, w := range []string{"nothing was undone", p.File, "failback undo " + p.File, "does not let it be cancelled"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("err %q does not say %q", err, w)
		}
	}
	lp, lerr := vsphere.LoadPlan(p.File)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if lp.Status != vsphere.PlanRunning {
		t.Fatalf("plan file status %s, want %s", lp.Status, vsphere.PlanRunning)
	}
	var st vsphere.Step
	for _, x := range lp.Steps {
		if x.Kind == kind {
			st = x
		} else if x.Status == vsphere.StepUndone || x.Status == vsphere.StepUndoing {
			t.Errorf("step %s %s: undone beside a running task", x.Kind, x.Status)
		}
	}
	if st.Status != vsphere.StepRunning || st.Task == "" || !strings.Contains(st.Error, st.Task) {
		t.Fatalf("plan file step %s: status %s task %q error %q", kind, st.Status, st.Task, st.Error)
	}
	// The task was not cancelled (the simulator's tasks are not
	// cancelable, as vSphere's reconfigure and power-on are not), and it
	// is the one the plan file names.
	if then == "undo" {
		// An undo while the task runs (a short grace) waits for it, then
		// refuses, naming it, with nothing changed; on a machine so busy
		// that the task ended meanwhile, it undoes.
		c1 := connect(t, s)
		c1.TaskGrace = 50 * time.Millisecond
		err := c1.Undo(context.Background(), lp, nil)
		if err == nil {
			diffInventory(t, "after undo", before, inventory(t, s))
			return true
		}
		if !errors.Is(err, vsphere.ErrTaskRunning) || !strings.Contains(err.Error(), st.Task) || !strings.Contains(err.Error(), "once vSphere shows the task ended") {
			t.Fatalf("undo while the task runs: %v", err)
		}
		again, lerr := vsphere.LoadPlan(p.File)
		if lerr != nil {
			t.Fatal(lerr)
		}
		for i, x := range again.Steps {
			if x.Status != lp.Steps[i].Status {
				t.Errorf("a refused undo changed step %s: %s -> %s", x.Kind, lp.Steps[i].Status, x.Status)
			}
		}
		if again.Status != vsphere.PlanRunning {
			t.Errorf("a refused undo left the plan %s", again.Status)
		}
	}
	ti := waitTaskEnd(t, gc.Client, st.Task)
	if ti.Cancelled || ti.State != types.TaskInfoStateSuccess || !strings.EqualFold(ti.Name, taskMethod[kind]+"_Task") && !strings.Contains(strings.ToLower(ti.DescriptionId), strings.ToLower(taskMethod[kind])) {
		t.Fatalf("the recorded task %s: %s %s state %s cancelled %v", st.Task, ti.Name, ti.DescriptionId, ti.State, ti.Cancelled)
	}
	simulator.TaskDelay = simulator.DelayConfig{}
	c2 := connect(t, s)
	if then == "undo" {
		if err := c2.Undo(context.Background(), lp, nil); err != nil {
			t.Fatal(err)
		}
		diffInventory(t, "after undo", before, inventory(t, s))
		if lp.Status != vsphere.PlanUndone {
			t.Fatalf("plan %s", lp.Status)
		}
	} else {
		if err := c2.Resume(context.Background(), lp, nil); err != nil {
			t.Fatal(err)
		}
		diffInventory(t, "after resume", want, inventory(t, s))
		if lp.Status != vsphere.PlanDone {
			t.Fatalf("plan %s", lp.Status)
		}
		if err := c2.Undo(context.Background(), lp, nil); err != nil {
			t.Fatal(err)
		}
		diffInventory(t, "after resume and undo", before, inventory(t, s))
	}
	return true
}

// allTasksEnded waits until every task vSphere lists has ended.
func allTasksEnded(t *testing.T, vc *vim25.Client) []types.TaskInfo {
	t.Helper()
	var tm mo.TaskManager
	if err := property.DefaultCollector(vc).RetrieveOne(context.Background(), *vc.ServiceContent.TaskManager, []string{"recentTask"}, &tm); err != nil {
		t.Fatal(err)
	}
	var out []types.TaskInfo
	for _, ref := range tm.RecentTask {
		out = append(out, waitTaskEnd(t, vc, ref.Value))
	}
	return out
}

// holdTask makes a task on obj that runs until the test ends it (as a
// long clone or backup someone else started would), cancelable or not.
func holdTask(t *testing.T, vc *vim25.Client, obj types.ManagedObjectReference, cancelable bool) types.ManagedObjectReference {
	t.Helper()
	ctx := context.Background()
	const id = "com.mtconsole.test.hold"
	em := object.NewExtensionManager(vc)
	if ext, err := em.Find(ctx, "com.mtconsole.test"); err != nil {
		t.Fatal(err)
	} else if ext == nil {
		if err := em.Register(ctx, types.Extension{Key: "com.mtconsole.test", Version: "1", LastHeartbeatTime: time.Unix(0, 0),
			Description: &types.Description{Label: "test", Summary: "test"},
			TaskList:    []types.ExtensionTaskTypeInfo{{TaskID: id}}}); err != nil {
			t.Fatal(err)
		}
	}
	res, err := methods.CreateTask(ctx, vc, &types.CreateTask{This: *vc.ServiceContent.TaskManager, Obj: obj, TaskTypeId: id, InitiatedBy: "test", Cancelable: cancelable})
	if err != nil {
		t.Fatal(err)
	}
	ref := res.Returnval.Task
	// The simulator files the task in a goroutine: wait until it shows,
	// then start it.
	for {
		_, err := methods.SetTaskState(ctx, vc, &types.SetTaskState{This: ref, State: types.TaskInfoStateRunning})
		if err == nil {
			return ref
		}
		if !strings.Contains(err.Error(), "ManagedObjectNotFound") && !strings.Contains(err.Error(), "not found") {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
}

func taskInfo(t *testing.T, vc *vim25.Client, ref types.ManagedObjectReference) types.TaskInfo {
	t.Helper()
	var m mo.Task
	if err := property.DefaultCollector(vc).RetrieveOne(context.Background(), ref, []string{"info"}, &m); err != nil {
		t.Fatal(err)
	}
	return m.Info
}

// A task that outlives the grace is cancelled only when it is the run's
// own and vSphere lets it be cancelled; otherwise it is reported, left
// running. One that ends in time is waited for.
func TestFinishTaskGrace(t *testing.T) {
	s := scene(t)
	ctx := context.Background()
	gc, err := s.Client(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer gc.Logout(ctx)
	c := connect(t, s)
	c.TaskGrace = 30 * time.Millisecond
	mt, _ := findMT(t, c, s)
	vc := gc.Client

	ref := holdTask(t, vc, mt.Reference(), true)
	info, err := c.FinishTask(ctx, ref, true)
	if err != nil || info == nil || !info.Cancelled || info.State != types.TaskInfoStateError {
		t.Fatalf("a cancelable own task: %+v, %v", info, err)
	}
	if ti := taskInfo(t, vc, ref); !ti.Cancelled || ti.State != types.TaskInfoStateError {
		t.Fatalf("vSphere has the task %s, cancelled %v", ti.State, ti.Cancelled)
	}

	for _, tc := range []struct {
		cancelable, mayCancel bool
		want                  string
	}{
		{false, true, "does not let it be cancelled"},
		{true, false, "has not ended after 30ms"},
	} {
		ref := holdTask(t, vc, mt.Reference(), tc.cancelable)
		_, err := c.FinishTask(ctx, ref, tc.mayCancel)
		if !errors.Is(err, vsphere.ErrTaskRunning) || !strings.Contains(err.Error(), ref.Value) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("cancelable %v, may cancel %v: %v", tc.cancelable, tc.mayCancel, err)
		}
		if ti := taskInfo(t, vc, ref); ti.Cancelled || ti.State != types.TaskInfoStateRunning {
			t.Fatalf("cancelable %v, may cancel %v: vSphere has the task %s, cancelled %v", tc.cancelable, tc.mayCancel, ti.State, ti.Cancelled)
		}
		methods.SetTaskState(ctx, vc, &types.SetTaskState{This: ref, State: types.TaskInfoStateSuccess})
		info, err := c.FinishTask(ctx, ref, tc.mayCancel)
		if err != nil || info.State != types.TaskInfoStateSuccess {
			t.Fatalf("an ended task: %+v, %v", info, err)
		}
	}
}

// Resume and undo of a killed run wait for the tasks running on the
// master target first, and never cancel them (they may be someone
// else's): past the grace they refuse, changing nothing, and go on once
// the task ended.
func TestSettleWaitsForForeignTask(t *testing.T) {
	for _, then := range []string{"undo", "resume"} {
		t.Run(then, func(t *testing.T) {
			s := scene(t)
			ctx := context.Background()
			gc, err := s.Client(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer gc.Logout(ctx)
			c := connect(t, s)
			before := inventory(t, s)
			dir := t.TempDir()
			p := runPlan(t, s, c, dir)
			vsphere.SetCrashAt(func(k, ph string) bool { return k == "attach" && ph == "before" })
			err = c.Execute(ctx, p, nil)
			vsphere.SetCrashAt(nil)
			if !errors.Is(err, vsphere.ErrCrash) {
				t.Fatal(err)
			}
			killed := inventory(t, s)
			mt, _ := findMT(t, c, s)
			ref := holdTask(t, gc.Client, mt.Reference(), true)
			c2 := connect(t, s)
			c2.TaskGrace = 30 * time.Millisecond
			lp, err := vsphere.LoadPlan(p.File)
			if err != nil {
				t.Fatal(err)
			}
			do := c2.Undo
			if then == "resume" {
				do = c2.Resume
			}
			err = do(ctx, lp, nil)
			if !errors.Is(err, vsphere.ErrTaskRunning) || !strings.Contains(err.Error(), ref.Value) || !strings.Contains(err.Error(), "nothing was changed") {
				t.Fatalf("%s beside a running task: %v", then, err)
			}
			diffInventory(t, "after a refused "+then, killed, inventory(t, s))
			if ti := taskInfo(t, gc.Client, ref); ti.Cancelled || ti.State != types.TaskInfoStateRunning {
				t.Fatalf("%s touched the foreign task: %s, cancelled %v", then, ti.State, ti.Cancelled)
			}
			methods.SetTaskState(ctx, gc.Client, &types.SetTaskState{This: ref, State: types.TaskInfoStateSuccess})
			if lp, err = vsphere.LoadPlan(p.File); err != nil {
				t.Fatal(err)
			}
			if err := do(ctx, lp, nil); err != nil {
				t.Fatal(err)
			}
			if then == "undo" {
				diffInventory(t, "after undo", before, inventory(t, s))
			} else if lp.Status != vsphere.PlanDone {
				t.Fatalf("resumed plan %s", lp.Status)
			}
		})
	}
}

// A Ctrl-C that lands while the call that starts a step's task is on
// the wire: vSphere starts the task all the same, so the call is not cut
// off; the run learns the task, waits for it, and undoes every step. The
// inventory, once every task ended, is as before.
func TestInterruptedDuringTheCall(t *testing.T) {
	slowTasks(t, 300)
	call := map[string]string{"detach": "ReconfigVM_Task", "create": "CreateVM_Task", "attach": "ReconfigVM_Task", "power-on": "PowerOnVM_Task"}
	for _, kind := range []string{"detach", "create", "attach", "power-on"} {
		t.Run(kind, func(t *testing.T) {
			s := scene(t)
			gc, err := s.Client(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			defer gc.Logout(context.Background())
			c := connect(t, s)
			before := inventory(t, s)
			p := runPlan(t, s, c, t.TempDir())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var armed, hit atomic.Bool
			vsphere.SetCrashAt(func(k, ph string) bool {
				armed.Store(k == kind && ph == "before")
				return false
			})
			defer vsphere.SetCrashAt(nil)
			// The server cancels the client's context while it handles
			// the call, before it starts the task.
			s.Model.Service.AddFaultRule(&simulator.FaultInjectionRule{MethodName: call[kind], ObjectType: "*", ObjectName: "*", Enabled: true, Probability: 1,
				InclusionPropertyFilter: func(mo.Reference) bool {
					if armed.Load() && !hit.Swap(true) {
						cancel()
					}
					return false
				}})
			err = c.Execute(ctx, p, nil)
			if !hit.Load() {
				t.Fatalf("no %s call was cut: %v", call[kind], err)
			}
			if !errors.Is(err, vsphere.ErrInterrupted) || !strings.Contains(err.Error(), "every step begun was undone") {
				t.Fatalf("err %v", err)
			}
			allTasksEnded(t, gc.Client)
			diffInventory(t, "after the interrupted "+kind+", once every task ended", before, inventory(t, s))
		})
	}
}
