package vsphere

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// DefaultPlanDir is where Execute keeps the plan file of each run.
const DefaultPlanDir = "/var/lib/mtconsole/failback"

// PlanMarkerKey is the ExtraConfig key Execute sets on the VM it creates,
// with the plan's ID as value: a run killed before it could record the
// new VM's reference finds the VM again by it (resume adopts it, undo
// destroys it), and never takes another VM of the same name for its own.
const PlanMarkerKey = "mtconsole.failback.plan"

// DefaultTaskGrace is how long an interrupted run waits for the vSphere
// task under way to finish before it undoes what was done.
const DefaultTaskGrace = 5 * time.Minute

// ErrInterrupted: the run was interrupted (Ctrl-C, SIGTERM); the task
// under way was waited for and what was done was undone (or the plan
// file says what is left).
var ErrInterrupted = errors.New("interrupted")

// ErrTaskRunning: a vSphere task was still running when the grace (and,
// for a task vSphere lets cancel, the cancel's quarter grace) was over.
// Nothing is undone while it may still change the inventory; the plan
// file records the task, and undo or resume waits for it first.
var ErrTaskRunning = errors.New("a vSphere task is still running")

// More step states: a step under way (a killed run leaves it so), and one
// being undone.
const (
	StepRunning = "running"
	StepUndoing = "undoing"
)

// Plan states, as the plan file records them.
const (
	PlanNew      = "planned"
	PlanRunning  = "running"
	PlanDone     = "done"
	PlanUndone   = "undone"
	PlanUndoFail = "undo-failed"
)

// planFile is the part of a Plan that Resume and Undo need: the plan
// plus the references and device specs that the run works from.
type planState struct {
	MTRef     types.ManagedObjectReference  `json:"mtRef"`
	HostRef   types.ManagedObjectReference  `json:"hostRef"`
	PoolRef   types.ManagedObjectReference  `json:"poolRef"`
	FolderRef types.ManagedObjectReference  `json:"folderRef"`
	VMRef     *types.ManagedObjectReference `json:"vmRef,omitempty"`
	// DiskDevices are the recovered disks' devices as the master target
	// has them (VMOMI JSON), to attach them again on undo, at the same
	// controller and unit, with the same backing.
	DiskDevices []json.RawMessage `json:"diskDevices"`
	// CreateSpec is the new VM's configuration (VMOMI JSON), without the
	// recovered disks.
	CreateSpec json.RawMessage `json:"createSpec,omitempty"`
}

func newPlanID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func vmomiJSON(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	if err := types.NewJSONEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimSpace(b.Bytes())), nil
}

func fromVMOMIJSON(raw json.RawMessage, v any) error {
	return types.NewJSONDecoder(bytes.NewReader(raw)).Decode(v)
}

// save writes the plan file: a temporary file renamed over the old one,
// so a kill leaves the previous state or the new one, never half of it.
func (p *Plan) save() error {
	if p.File == "" {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p.File), 0o700); err != nil {
		return fmt.Errorf("plan file: %w", err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return fmt.Errorf("plan file %s: %w", p.File, err)
	}
	tmp := p.File + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("plan file: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p.File)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("plan file %s: %w", p.File, err)
	}
	return nil
}

// LoadPlan reads a plan file that Execute wrote.
func LoadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan file: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("plan file %s: %w (not a failback plan written by mtconsole?)", path, err)
	}
	if p.ID == "" || len(p.Steps) == 0 || p.State.MTRef.Value == "" {
		return nil, fmt.Errorf("plan file %s: no plan ID, steps or master target: not a failback plan written by mtconsole", path)
	}
	p.File = path
	return &p, nil
}

// ListPlans returns the plan files in dir that are neither done nor
// undone: runs that were killed, or whose undo failed.
func ListPlans(dir string) ([]*Plan, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plan directory: %w", err)
	}
	var out []*Plan
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p, err := LoadPlan(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if p.Status != PlanDone && p.Status != PlanUndone {
			out = append(out, p)
		}
	}
	return out, nil
}

// bind makes the plan's object handles from its references (after
// LoadPlan, or after PlanFailback).
func (c *Client) bind(p *Plan) {
	p.mt = object.NewVirtualMachine(c.Vim(), p.State.MTRef)
	p.host = object.NewHostSystem(c.Vim(), p.State.HostRef)
	p.pool = object.NewResourcePool(c.Vim(), p.State.PoolRef)
	p.folder = object.NewFolder(c.Vim(), p.State.FolderRef)
	if p.State.VMRef != nil {
		p.created = object.NewVirtualMachine(c.Vim(), *p.State.VMRef)
	}
}

// crashAt, set by tests only, ends a run on the spot as a kill would: at
// a step's "before" (recorded as running, not started), "sent" (its task
// taken by vSphere, not recorded) or "after" (done in vSphere, not yet
// recorded).
var crashAt func(kind, phase string) bool

var errCrash = errors.New("simulated crash")

// onTask, set by tests only, is called once a step's task is under way.
var onTask func(kind string)

// Execute carries out a plan: detach the disks from the master target,
// create the VM (or take the existing one), attach the disks, power it
// on. Every step is recorded in the plan file (Plan.File) before it is
// done and again after; progress is called on every step's change.
//
// On a failure or an interruption (ctx cancelled) the task under way is
// waited for (up to Client.TaskGrace), then every step begun is undone in
// reverse order (the disks back on the master target at their old
// addresses, the new VM destroyed without its disks); the disks' files
// are never deleted. A run killed outright leaves the plan file, from
// which Resume finishes it and Undo reverses it.
func (c *Client) Execute(ctx context.Context, p *Plan, progress func(Step)) error {
	if Failed(p.Checks) {
		var ids []string
		for _, ch := range p.Checks {
			if ch.Status == Fail {
				ids = append(ids, ch.ID+": "+ch.Detail)
			}
		}
		return fmt.Errorf("%w: %s", ErrNotReady, strings.Join(ids, "; "))
	}
	if p.Status != PlanNew && p.Status != "" {
		return fmt.Errorf("plan %s is %s: use resume or undo", p.ID, p.Status)
	}
	return c.run(ctx, p, progress)
}

// Resume finishes a run that was killed: the steps not recorded as done
// are done (each looks first at what vSphere has, so a step that was done
// but not recorded is not done twice). A plan that was undone, or is
// done, is refused.
func (c *Client) Resume(ctx context.Context, p *Plan, progress func(Step)) error {
	switch p.Status {
	case PlanDone:
		return fmt.Errorf("plan %s is done already: nothing to resume", p.ID)
	case PlanUndone:
		return fmt.Errorf("plan %s was undone: make a new plan", p.ID)
	case PlanUndoFail:
		return fmt.Errorf("plan %s was being undone and the undo failed: run undo again", p.ID)
	}
	c.bind(p)
	if err := c.settle(ctx, p); err != nil {
		return err
	}
	return c.run(ctx, p, progress)
}

// Undo reverses a run: every step begun is undone, last first.
func (c *Client) Undo(ctx context.Context, p *Plan, progress func(Step)) error {
	if p.Status == PlanUndone {
		return fmt.Errorf("plan %s is undone already", p.ID)
	}
	if progress == nil {
		progress = func(Step) {}
	}
	c.bind(p)
	if err := c.settle(ctx, p); err != nil {
		return err
	}
	return c.undoAll(context.WithoutCancel(ctx), p, progress)
}

// settle waits for the tasks still running on the objects a killed run
// touched (the master target, the folder, the new VM): a run killed
// after vSphere took a task and before the plan file recorded it left
// one, and what it does must be known before the run goes on or back.
func (c *Client) settle(ctx context.Context, p *Plan) error {
	refs := []types.ManagedObjectReference{p.State.MTRef, p.State.FolderRef}
	if p.State.VMRef != nil {
		refs = append(refs, *p.State.VMRef)
	}
	pc := property.DefaultCollector(c.Vim())
	for _, ref := range refs {
		var e mo.ManagedEntity
		if err := pc.RetrieveOne(ctx, ref, []string{"recentTask"}, &e); err != nil {
			continue // gone: nothing runs on it
		}
		if len(e.RecentTask) == 0 {
			continue
		}
		var tasks []mo.Task
		if err := pc.Retrieve(ctx, e.RecentTask, []string{"info"}, &tasks); err != nil {
			return vimErr(err)
		}
		for _, t := range tasks {
			if t.Info.State == types.TaskInfoStateQueued || t.Info.State == types.TaskInfoStateRunning {
				if _, err := c.finishTask(ctx, object.NewTask(c.Vim(), t.Self), false); errors.Is(err, ErrTaskRunning) {
					return fmt.Errorf("%w; nothing was changed: run it again once vSphere shows the task ended (or with a longer --task-grace)", err)
				} else if err != nil {
					return fmt.Errorf("%s on %s: %w", t.Info.Name, ref.Value, err)
				}
			}
		}
	}
	return nil
}

func (c *Client) run(ctx context.Context, p *Plan, progress func(Step)) error {
	if progress == nil {
		progress = func(Step) {}
	}
	if p.mt == nil {
		c.bind(p)
	}
	p.Status = PlanRunning
	if err := p.save(); err != nil {
		return err // nothing done yet
	}
	for i := range p.Steps {
		s := &p.Steps[i]
		if s.Status == StepDone {
			continue
		}
		if ctx.Err() != nil {
			return c.fail(ctx, p, i, fmt.Errorf("%w before it began", ErrInterrupted), progress)
		}
		s.Status, s.Error = StepRunning, ""
		if err := p.save(); err != nil {
			s.Status = StepPlanned
			return c.fail(ctx, p, i, err, progress)
		}
		progress(*s)
		if crashAt != nil && crashAt(s.Kind, "before") {
			return errCrash
		}
		err := c.do(ctx, p, s)
		if errors.Is(err, errCrash) || (crashAt != nil && crashAt(s.Kind, "after")) {
			return errCrash
		}
		if err == nil && ctx.Err() != nil {
			err = fmt.Errorf("%w after it finished", ErrInterrupted)
		}
		if err != nil {
			return c.fail(ctx, p, i, err, progress)
		}
		s.Status, s.Task = StepDone, ""
		if err := p.save(); err != nil {
			return c.fail(ctx, p, i, err, progress)
		}
		progress(*s)
	}
	p.Status = PlanDone
	return p.save()
}

// fail records step i as failed and undoes every step begun, last first.
// A step whose task is still running (ErrTaskRunning) is left recorded as
// running, with its task, and nothing is undone: undoing beside a task
// that may still change the same objects could leave anything; undo or
// resume of the plan file waits for the task first.
func (c *Client) fail(ctx context.Context, p *Plan, i int, err error, progress func(Step)) error {
	s := &p.Steps[i]
	if errors.Is(err, ErrTaskRunning) {
		s.Error = err.Error()
		progress(*s)
		if p.File == "" {
			return fmt.Errorf("%s: %w; nothing was undone and no plan file was kept: check the inventory in vSphere once the task ended", s.Title, err)
		}
		if serr := p.save(); serr != nil {
			return fmt.Errorf("%s: %w; nothing was undone, and the plan file %s could not record it: %w", s.Title, err, p.File, serr)
		}
		return fmt.Errorf("%s: %w; nothing was undone while it runs. The plan file %s records the task: once vSphere shows it ended, run `mtconsole vsphere failback undo %s` to reverse the run (or `resume` to finish it); either waits for the task first",
			s.Title, err, p.File, p.File)
	}
	if s.Status == StepRunning {
		s.Status, s.Error = StepFailed, err.Error()
		progress(*s)
	}
	p.save()
	uerr := c.undoAll(context.WithoutCancel(ctx), p, progress)
	if uerr != nil {
		return fmt.Errorf("%s: %w; rollback incomplete (plan file %s): %w", s.Title, err, orText(p.File, "none"), uerr)
	}
	return fmt.Errorf("%s: %w (every step begun was undone)", s.Title, err)
}

func (c *Client) undoAll(ctx context.Context, p *Plan, progress func(Step)) error {
	var errs []error
	for j := len(p.Steps) - 1; j >= 0; j-- {
		s := &p.Steps[j]
		switch s.Status {
		case StepPlanned, StepUndone, "":
			continue
		}
		s.Status = StepUndoing
		p.save()
		if err := c.undo(ctx, p, s); errors.Is(err, ErrTaskRunning) {
			// Not undone, and the earlier steps neither: a task still
			// changes the objects they would touch.
			s.Status, s.Error = StepRunning, err.Error()
			p.Status = PlanUndoFail
			p.save()
			progress(*s)
			return fmt.Errorf("undo %q: %w; run undo again once vSphere shows it ended", s.Title, err)
		} else if err != nil {
			s.Status, s.Error = StepUndoFailed, err.Error()
			errs = append(errs, fmt.Errorf("undo %q: %w", s.Title, err))
		} else {
			s.Status, s.Task = StepUndone, ""
		}
		p.save()
		progress(*s)
	}
	p.RolledBack = true
	if len(errs) > 0 {
		p.Status = PlanUndoFail
		p.save()
		return errors.Join(errs...)
	}
	p.Status = PlanUndone
	return p.save()
}

// waitTask waits for a task and checks its final state. When ctx is
// cancelled while the task runs, it waits on (up to c.TaskGrace) for the
// task to end, so the caller knows what vSphere did, and returns
// ErrInterrupted; a task still running then is asked to cancel.
func (c *Client) waitTask(ctx context.Context, p *Plan, s *Step, task *object.Task) error {
	if crashAt != nil && s != nil && crashAt(s.Kind, "sent") {
		return errCrash // killed after vSphere took the task, before it was recorded
	}
	if s != nil {
		s.Task = task.Reference().Value
		p.save()
		if onTask != nil {
			onTask(s.Kind)
		}
	}
	info, err := task.WaitForResult(ctx, nil)
	if ctx.Err() == nil {
		if err != nil {
			return vimErr(err)
		}
		if info == nil || info.State != types.TaskInfoStateSuccess {
			return fmt.Errorf("task %s ended %s", task.Reference().Value, stateOf(info))
		}
		return nil
	}
	// Interrupted: learn how the task ends.
	info, werr := c.finishTask(context.WithoutCancel(ctx), task, true)
	if werr != nil {
		return fmt.Errorf("%w; %w", ErrInterrupted, werr)
	}
	if info.State == types.TaskInfoStateError && info.Cancelled {
		return fmt.Errorf("%w; the task was cancelled", ErrInterrupted)
	}
	if info.State == types.TaskInfoStateError && info.Error != nil {
		return fmt.Errorf("%w; the task failed: %s", ErrInterrupted, info.Error.LocalizedMessage)
	}
	return fmt.Errorf("%w while the task ran (it finished)", ErrInterrupted)
}

func stateOf(info *types.TaskInfo) string {
	if info == nil {
		return "unknown"
	}
	if info.Error != nil {
		return string(info.State) + ": " + info.Error.LocalizedMessage
	}
	return string(info.State)
}

// finishTask waits, up to the grace, for a task to reach success or
// error, reading info.state with the property collector. A task still
// running then is asked to cancel when it is the run's own (mayCancel)
// and vSphere says it can be (info.cancelable; vSphere refuses to cancel
// the others, and a cancel it refuses would stop nothing), and waited for
// a quarter grace more. A task that has not ended by then is
// ErrTaskRunning, naming it. settle passes mayCancel false: the tasks it
// finds on the objects may be someone else's.
func (c *Client) finishTask(ctx context.Context, task *object.Task, mayCancel bool) (*types.TaskInfo, error) {
	grace := c.TaskGrace
	if grace <= 0 {
		grace = DefaultTaskGrace
	}
	var info *types.TaskInfo // the last seen
	wait := func(d time.Duration) (bool, error) {
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		err := property.Wait(wctx, property.DefaultCollector(c.Vim()), task.Reference(), []string{"info"}, func(pc []types.PropertyChange) bool {
			for _, ch := range pc {
				if ti, ok := ch.Val.(types.TaskInfo); ok {
					info = &ti
				}
			}
			return info != nil && (info.State == types.TaskInfoStateSuccess || info.State == types.TaskInfoStateError)
		})
		switch {
		case ctx.Err() != nil:
			return false, fmt.Errorf("%w while waiting for task %s", ErrInterrupted, task.Reference().Value)
		case wctx.Err() != nil:
			return false, nil // the wait is over, the task is not
		case err != nil:
			return false, vimErr(err)
		case info == nil:
			return false, fmt.Errorf("task %s: no task info", task.Reference().Value)
		}
		return true, nil
	}
	ended, err := wait(grace)
	if err != nil || ended {
		return info, err
	}
	what := "task " + task.Reference().Value
	if info != nil {
		what = fmt.Sprintf("task %s (%s on %s)", task.Reference().Value, info.DescriptionId, orText(info.EntityName, "?"))
	}
	if !mayCancel {
		return info, fmt.Errorf("%w: %s has not ended after %s", ErrTaskRunning, what, grace)
	}
	if info == nil || !info.Cancelable {
		return info, fmt.Errorf("%w: %s has not ended after %s, and vSphere does not let it be cancelled", ErrTaskRunning, what, grace)
	}
	if cerr := task.Cancel(ctx); cerr != nil {
		return info, fmt.Errorf("%w: %s has not ended after %s, and cancelling it failed: %v", ErrTaskRunning, what, grace, vimErr(cerr))
	}
	if ended, err = wait(grace / 4); err != nil || ended {
		return info, err
	}
	return info, fmt.Errorf("%w: %s has not ended after %s, nor within %s of being cancelled", ErrTaskRunning, what, grace, grace/4)
}

// waitRecorded waits for a task that a killed run recorded as under way.
func (c *Client) waitRecorded(ctx context.Context, s *Step) error {
	if s.Task == "" {
		return nil
	}
	t := object.NewTask(c.Vim(), types.ManagedObjectReference{Type: "Task", Value: s.Task})
	_, err := c.finishTask(ctx, t, true)
	if err != nil && strings.Contains(err.Error(), "ManagedObjectNotFound") {
		return nil // gone: vCenter forgot it, so it ended long ago
	}
	return err
}

// vmDisks returns a VM's disks by file name, and its power state.
func (c *Client) vmDisks(ctx context.Context, ref types.ManagedObjectReference) (map[string]*types.VirtualDisk, object.VirtualDeviceList, string, error) {
	var m mo.VirtualMachine
	if err := property.DefaultCollector(c.Vim()).RetrieveOne(ctx, ref, []string{"config.hardware.device", "runtime.powerState"}, &m); err != nil {
		return nil, nil, "", vimErr(err)
	}
	out := map[string]*types.VirtualDisk{}
	var devs object.VirtualDeviceList
	if m.Config != nil {
		devs = m.Config.Hardware.Device
	}
	for _, d := range devs.SelectByType((*types.VirtualDisk)(nil)) {
		vd := d.(*types.VirtualDisk)
		if fb, ok := vd.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			out[fb.GetVirtualDeviceFileBackingInfo().FileName] = vd
		}
	}
	return out, devs, string(m.Runtime.PowerState), nil
}

// The calls that start a task are sent without the run's cancel
// (context.WithoutCancel): one cut off by a Ctrl-C may have started the
// task in vSphere all the same, and its reference would be lost; the
// call returns at once, and the wait on the task honours the cancel.

func (c *Client) reconfigureStep(ctx context.Context, p *Plan, s *Step, vm *object.VirtualMachine, spec types.VirtualMachineConfigSpec) error {
	task, err := vm.Reconfigure(context.WithoutCancel(ctx), spec)
	if err != nil {
		return vimErr(err)
	}
	return c.waitTask(ctx, p, s, task)
}

func (p *Plan) diskFiles() []string {
	out := make([]string, len(p.Disks))
	for i, d := range p.Disks {
		out[i] = d.File
	}
	return out
}

// findCreated finds the VM this plan created: by its recorded reference,
// else by name and the plan marker in its ExtraConfig.
func (c *Client) findCreated(ctx context.Context, p *Plan) (*object.VirtualMachine, error) {
	if p.State.VMRef != nil {
		var m mo.VirtualMachine
		err := property.DefaultCollector(c.Vim()).RetrieveOne(ctx, *p.State.VMRef, []string{"name"}, &m)
		if err == nil {
			return object.NewVirtualMachine(c.Vim(), *p.State.VMRef), nil
		}
		if !strings.Contains(err.Error(), "ManagedObjectNotFound") && !strings.Contains(err.Error(), "has already been deleted") {
			return nil, vimErr(err)
		}
	}
	var vms []mo.VirtualMachine
	if err := c.retrieveAll(ctx, p.State.FolderRef, "VirtualMachine", []string{"name", "config.extraConfig"}, &vms); err != nil {
		return nil, err
	}
	for _, v := range vms {
		if v.Name != p.Spec.Name || v.Config == nil {
			continue
		}
		for _, o := range v.Config.ExtraConfig {
			if ov := o.GetOptionValue(); ov.Key == PlanMarkerKey && fmt.Sprint(ov.Value) == p.ID {
				return object.NewVirtualMachine(c.Vim(), v.Self), nil
			}
		}
	}
	return nil, nil
}

func (c *Client) do(ctx context.Context, p *Plan, s *Step) error {
	if err := c.waitRecorded(context.WithoutCancel(ctx), s); err != nil {
		return err
	}
	switch s.Kind {
	case "detach":
		have, _, _, err := c.vmDisks(ctx, p.State.MTRef)
		if err != nil {
			return err
		}
		var spec types.VirtualMachineConfigSpec
		for _, f := range p.diskFiles() {
			if d, ok := have[f]; ok {
				spec.DeviceChange = append(spec.DeviceChange, removeDisk(d).DeviceChange...)
			}
		}
		if len(spec.DeviceChange) == 0 {
			return nil
		}
		return c.reconfigureStep(ctx, p, s, p.mt, spec)
	case "create":
		vm, err := c.findCreated(ctx, p)
		if err != nil {
			return err
		}
		if vm == nil {
			var cs types.VirtualMachineConfigSpec
			if err := fromVMOMIJSON(p.State.CreateSpec, &cs); err != nil {
				return fmt.Errorf("plan file: create spec: %w", err)
			}
			task, err := p.folder.CreateVM(context.WithoutCancel(ctx), cs, p.pool, p.host)
			if err != nil {
				return vimErr(err)
			}
			werr := c.waitTask(ctx, p, s, task)
			// Whether it finished or was interrupted, the VM may exist.
			if vm, err = c.findCreated(context.WithoutCancel(ctx), p); err != nil {
				return errors.Join(werr, err)
			}
			if werr != nil {
				if vm != nil {
					ref := vm.Reference()
					p.State.VMRef = &ref
					p.created = vm
				}
				return werr
			}
			if vm == nil {
				return errors.New("the create task succeeded but no VM carries this plan's marker")
			}
		}
		ref := vm.Reference()
		p.State.VMRef, p.created = &ref, vm
		return nil
	case "use":
		if p.created == nil {
			return errors.New("plan has no existing VM to recover onto")
		}
		_, _, power, err := c.vmDisks(ctx, p.created.Reference())
		if err != nil {
			return err
		}
		if power != string(types.VirtualMachinePowerStatePoweredOff) {
			return fmt.Errorf("%w: %s is %s", ErrPoweredOn, p.Spec.OntoVM, power)
		}
		return nil
	case "attach":
		if p.created == nil {
			return errors.New("no failback VM to attach to (the create step did not record it)")
		}
		have, devs, _, err := c.vmDisks(ctx, p.created.Reference())
		if err != nil {
			return err
		}
		spec, err := p.attachSpec(have, devs)
		if err != nil || len(spec.DeviceChange) == 0 {
			return err
		}
		return c.reconfigureStep(ctx, p, s, p.created, spec)
	case "power-on":
		_, _, power, err := c.vmDisks(ctx, p.created.Reference())
		if err != nil {
			return err
		}
		if power == string(types.VirtualMachinePowerStatePoweredOn) {
			return nil
		}
		task, err := p.created.PowerOn(context.WithoutCancel(ctx))
		if err != nil {
			return vimErr(err)
		}
		return c.waitTask(ctx, p, s, task)
	}
	return fmt.Errorf("plan file: unknown step %q", s.Kind)
}

// attachSpec adds the plan's disks the VM does not have yet, spread over
// its SCSI controllers by bus: disk k goes to bus k/15, unit k%15 (7
// skipped).
func (p *Plan) attachSpec(have map[string]*types.VirtualDisk, devs object.VirtualDeviceList) (types.VirtualMachineConfigSpec, error) {
	var spec types.VirtualMachineConfigSpec
	bus := map[int32]int32{}
	for _, d := range devs {
		if sc, ok := d.(types.BaseVirtualSCSIController); ok {
			c := sc.GetVirtualSCSIController()
			bus[c.BusNumber] = c.Key
		}
	}
	used := map[[2]int32]bool{}
	for _, d := range have {
		if d.UnitNumber != nil {
			used[[2]int32{d.ControllerKey, *d.UnitNumber}] = true
		}
	}
	for k, raw := range p.State.DiskDevices {
		f := p.Disks[k].File
		if _, ok := have[f]; ok {
			continue
		}
		var nd types.VirtualDisk
		if err := fromVMOMIJSON(raw, &nd); err != nil {
			return spec, fmt.Errorf("plan file: disk %s: %w", f, err)
		}
		b, unit := p.slot(k)
		key, ok := bus[b]
		if p.Spec.OntoVM != "" && len(p.Spec.DiskBus) == 0 {
			// An existing VM: the first free slot, bus by bus.
			ok = false
			for nb := int32(0); nb < MaxControllers && !ok; nb++ {
				kk, has := bus[nb]
				for u := int32(0); has && u < 16 && !ok; u++ {
					if u != 7 && !used[[2]int32{kk, u}] {
						b, unit, key, ok = nb, u, kk, true
					}
				}
			}
			if !ok {
				return spec, fmt.Errorf("%s has no free SCSI slot for disk %s: add a SCSI controller to it", p.Spec.OntoVM, f)
			}
		}
		if !ok {
			return spec, fmt.Errorf("the failback VM has no SCSI controller on bus %d for disk %s", b, f)
		}
		if used[[2]int32{key, unit}] {
			return spec, fmt.Errorf("the failback VM's SCSI %d:%d is taken: disk %s cannot go there", b, unit, f)
		}
		used[[2]int32{key, unit}] = true
		nd.Key = -100 - int32(k)
		nd.ControllerKey = key
		nd.UnitNumber = &unit
		nd.Connectable = nil
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: &nd})
	}
	return spec, nil
}

// slot is where disk k goes on the failback VM: its controller's bus
// (disk groups of 15 per controller unless the spec says otherwise) and
// unit.
func (p *Plan) slot(k int) (int32, int32) {
	b, u := int32(k/SlotsPerController), int32(k%SlotsPerController)
	if len(p.Spec.DiskBus) == len(p.Disks) {
		b = int32(p.Spec.DiskBus[k])
		u = 0
		for j := range k {
			if p.Spec.DiskBus[j] == p.Spec.DiskBus[k] {
				u++
			}
		}
	}
	if u >= 7 {
		u++ // 7 is the controller's own
	}
	return b, u
}

func (c *Client) undo(ctx context.Context, p *Plan, s *Step) error {
	if err := c.waitRecorded(ctx, s); err != nil {
		return err
	}
	switch s.Kind {
	case "power-on":
		vm, err := c.findCreated(ctx, p)
		if err != nil || vm == nil {
			return err
		}
		return c.powerOff(ctx, vm)
	case "attach":
		vm, err := c.findCreated(ctx, p)
		if err != nil || vm == nil {
			return err
		}
		if err := c.powerOff(ctx, vm); err != nil {
			return err
		}
		return c.detachFiles(ctx, vm, p.diskFiles())
	case "create":
		vm, err := c.findCreated(ctx, p)
		if err != nil || vm == nil {
			return err
		}
		if err := c.powerOff(ctx, vm); err != nil {
			return err
		}
		// Destroy deletes the files of the disks it has: take them off first.
		if err := c.detachFiles(ctx, vm, nil); err != nil {
			return err
		}
		task, err := vm.Destroy(ctx)
		if err != nil {
			return vimErr(err)
		}
		if err := c.waitTask(ctx, p, nil, task); err != nil {
			return err
		}
		p.State.VMRef, p.created = nil, nil
		return nil
	case "use":
		return nil
	case "detach":
		// A disk still on the failback VM (an attach undo that failed) is
		// taken off first: a disk is on one VM at a time.
		if vm, err := c.findCreated(ctx, p); err != nil {
			return err
		} else if vm != nil {
			if err := c.powerOff(ctx, vm); err != nil {
				return err
			}
			if err := c.detachFiles(ctx, vm, p.diskFiles()); err != nil {
				return err
			}
		}
		have, _, _, err := c.vmDisks(ctx, p.State.MTRef)
		if err != nil {
			return err
		}
		var spec types.VirtualMachineConfigSpec
		for k, raw := range p.State.DiskDevices {
			if _, ok := have[p.Disks[k].File]; ok {
				continue
			}
			var nd types.VirtualDisk
			if err := fromVMOMIJSON(raw, &nd); err != nil {
				return fmt.Errorf("plan file: disk %s: %w", p.Disks[k].File, err)
			}
			nd.Key = -100 - int32(k)
			spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
				Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: &nd})
		}
		if len(spec.DeviceChange) == 0 {
			return nil
		}
		return c.reconfigureStep(ctx, p, nil, p.mt, spec)
	}
	return fmt.Errorf("plan file: unknown step %q", s.Kind)
}

// detachFiles takes the disks of these files (all disks when files is
// nil) off the VM, keeping the files.
func (c *Client) detachFiles(ctx context.Context, vm *object.VirtualMachine, files []string) error {
	have, _, _, err := c.vmDisks(ctx, vm.Reference())
	if err != nil {
		return err
	}
	var spec types.VirtualMachineConfigSpec
	for f, d := range have {
		if files == nil || slices.Contains(files, f) {
			spec.DeviceChange = append(spec.DeviceChange, removeDisk(d).DeviceChange...)
		}
	}
	if len(spec.DeviceChange) == 0 {
		return nil
	}
	return reconfigure(ctx, vm, spec)
}

// powerOff powers off a VM that is not off (hard: the failback VM is
// being undone, its guest had no time to be anything yet).
func (c *Client) powerOff(ctx context.Context, vm *object.VirtualMachine) error {
	_, _, power, err := c.vmDisks(ctx, vm.Reference())
	if err != nil {
		return err
	}
	if power == string(types.VirtualMachinePowerStatePoweredOff) {
		return nil
	}
	task, err := vm.PowerOff(ctx)
	if err != nil {
		return vimErr(err)
	}
	_, err = task.WaitForResult(ctx, nil)
	return vimErr(err)
}
