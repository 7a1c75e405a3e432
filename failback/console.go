package failback

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/vmware/govmomi/object"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/setup"
)

// DefaultConf is the console's vSphere connection, when it has one.
const DefaultConf = "/etc/mtconsole/vsphere.conf"

// Settings name the console's vSphere connection: a vsphere.ConfigFile
// (TOML: url, user, password_file, thumbprint, trust_store), mode 0600,
// at Path, whose fields the others override when set.
type Settings struct {
	Path                                string
	URL, User, PasswordFile, Thumbprint string
	UUIDFile                            string // this VM's BIOS UUID; vsphere.DefaultUUIDFile if ""
	DevRoot                             string // the root of dev/disk/by-id, sys and proc; "/" if ""
	PlanDir                             string // the runs' plan files; vsphere.DefaultPlanDir if ""
	AgentSocket                         string // asked which pairs run; api.DefaultSocket if ""
}

// Load reads the file under the settings. No file and no URL: no
// vSphere (nil, nil). A file that is unsafe or wrong is an error.
func Load(c Settings) (*Console, error) {
	file, err := vsphere.LoadConfig(c.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && c.URL == "":
		return nil, nil
	case errors.Is(err, fs.ErrPermission) && c.URL == "":
		// Not root: a console that cannot read it only looks anyway.
		return nil, nil
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	}
	pick := func(flag, key string) string {
		if flag != "" {
			return flag
		}
		return key
	}
	cfg := vsphere.Config{URL: pick(c.URL, file.URL), User: pick(c.User, file.User), Thumbprint: pick(c.Thumbprint, file.Thumbprint),
		TrustStore: file.TrustStore}
	pw := pick(c.PasswordFile, file.PasswordFile)
	var missing []string
	for _, kv := range [][2]string{{"url", cfg.URL}, {"user", cfg.User}, {"password_file", pw}} {
		if kv[1] == "" {
			missing = append(missing, kv[0])
		}
	}
	if cfg.Thumbprint == "" && cfg.TrustStore == "" {
		missing = append(missing, "thumbprint")
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("vSphere for the console (%s or --vsphere-* flags): no %s", c.Path, strings.Join(missing, ", "))
	}
	if _, err := vsphere.ParseURL(cfg.URL); err != nil {
		return nil, fmt.Errorf("%s: %w", c.Path, err)
	}
	// Read at each login only: a cached session needs none.
	cfg.PasswordFunc = func() (string, error) { return vsphere.ReadPassword(pw, "", nil) }
	if cfg.SessionDir, err = vsphere.DefaultSessionDir(); err != nil {
		return nil, err
	}
	uuid, root := c.UUIDFile, c.DevRoot
	if uuid == "" {
		uuid = vsphere.DefaultUUIDFile
	}
	if root == "" {
		root = "/"
	}
	planDir, sock := c.PlanDir, c.AgentSocket
	if planDir == "" {
		planDir = vsphere.DefaultPlanDir
	}
	if sock == "" {
		sock = api.DefaultSocket
	}
	return &Console{cfg: cfg, uuidFile: uuid, devRoot: root, planDir: planDir, socket: sock}, nil
}

// Console is the console's failback-VM hook (tui.VSphere): the failback
// VM made by the same disks/vsphere functions as mtconsole vsphere
// create-vm, from a Form the console shows prefilled and the admin edits.
type Console struct {
	cfg               vsphere.Config
	uuidFile, devRoot string
	planDir, socket   string
}

func (c *Console) connect(ctx context.Context) (*vsphere.Client, *object.VirtualMachine, error) {
	cl, err := vsphere.Connect(ctx, c.cfg)
	if err != nil {
		return nil, nil, err
	}
	u, err := vsphere.ReadBIOSUUID(c.uuidFile)
	var obj *object.VirtualMachine
	if err == nil {
		obj, err = cl.FindVM(ctx, u)
	}
	if err != nil {
		cl.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return cl, obj, nil
}

// PlanForm plans the VM of the form: the plan with create-vm's readiness
// checks and the disks' (no running pair's target, not mounted, not
// held). It changes nothing; the caller closes the client.
func (c *Console) PlanForm(ctx context.Context, disks []string, f Form) (*vsphere.Client, *vsphere.Plan, error) {
	sp := f.Spec(disks)
	sp.DevRoot, sp.PlanDir = c.devRoot, c.planDir
	if err := sp.Validate(); err != nil {
		return nil, nil, err
	}
	cl, obj, err := c.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	p, err := cl.PlanFailback(ctx, obj, sp)
	if err != nil {
		cl.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	p.Checks = append(p.Checks, vsphere.InUseChecks(c.devRoot, p.Disks, PairTargets(ctx, c.socket))...)
	return cl, p, nil
}

// PairTargets asks the replication agent on socket which devices its
// running pairs write to.
func PairTargets(ctx context.Context, socket string) vsphere.PairTargets {
	pt := vsphere.PairTargets{Socket: socket, Targets: map[string]string{}}
	cl, err := api.Dial(socket)
	if errors.Is(err, api.ErrNoAgent) {
		return pt
	}
	if err != nil {
		pt.Err = err
		return pt
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		pt.Err = err
		return pt
	}
	pt.Known = true
	for _, p := range st.Pairs {
		if p.State != agent.StateEnded && p.Target != "" {
			pt.Targets[p.Target] = p.ID
		}
	}
	return pt
}

// Plan is create-vm --dry-run of the form: the steps as it prints them,
// and the checks. It changes nothing.
func (c *Console) Plan(ctx context.Context, disks []string, f Form) (string, []setup.Check, error) {
	cl, p, err := c.PlanForm(ctx, disks, f)
	if err != nil {
		return "", nil, err
	}
	defer cl.Close(context.WithoutCancel(ctx))
	return PlanSteps(p), Checks(p.Checks), nil
}

// Create is create-vm of the form: planned again, then run (CreateForm).
func (c *Console) Create(ctx context.Context, disks []string, f Form, progress func(string)) (string, error) {
	return c.CreateForm(ctx, disks, f, progress)
}

// CreateForm plans the form's VM again (the checks may have changed
// since the dry run) and runs the plan, recorded in its plan file:
// Execute refuses a plan whose checks fail, and on a failure or a cancel
// of ctx undoes every step begun; its error says which step failed and
// what was undone.
func (c *Console) CreateForm(ctx context.Context, disks []string, f Form, progress func(string)) (string, error) {
	cl, p, err := c.PlanForm(ctx, disks, f)
	if err != nil {
		return "", err
	}
	defer cl.Close(context.WithoutCancel(ctx))
	if err := cl.Execute(ctx, p, stepLine(progress)); err != nil {
		return "", err
	}
	return report(p, "run"), nil
}

func stepLine(progress func(string)) func(vsphere.Step) {
	return func(st vsphere.Step) { progress(fmt.Sprintf("%-11s %s", st.Status, st.Title)) }
}

func report(p *vsphere.Plan, how string) string {
	switch {
	case how == "undo":
		return fmt.Sprintf("Undone: the disks are back on %s, the failback VM %s is gone.", p.MT, p.Spec.Name)
	case p.Spec.NoPowerOn:
		return fmt.Sprintf("Failback VM %s created with %d disk(s) on %s, left powered off.", p.Spec.Name, len(p.Disks), p.VMPath)
	}
	return fmt.Sprintf("Failback VM %s created with %d disk(s) on %s and powered on.", p.Spec.Name, len(p.Disks), p.VMPath)
}

// Pending is an unfinished run as the console lists it.
type Pending struct {
	File   string // the plan file, as failback resume|undo take it
	Name   string // the failback VM
	MT     string // the master target the disks came from
	Status string // the plan's: planned, running, undo-failed
	Disks  int
	// Where it stopped: the last step that is neither planned nor done
	// ("create failed: …"), or the next step to run.
	Step string
}

// Unfinished are the plan files of runs that were killed or whose undo
// failed, oldest file name first: the console offers to resume or undo
// each.
func (c *Console) Unfinished() ([]Pending, error) {
	plans, err := vsphere.ListPlans(c.planDir)
	if err != nil {
		return nil, err
	}
	out := make([]Pending, 0, len(plans))
	for _, p := range plans {
		out = append(out, PendingOf(p))
	}
	return out, nil
}

// PendingOf is a plan as Unfinished lists it.
func PendingOf(p *vsphere.Plan) Pending {
	pd := Pending{File: p.File, Name: p.Spec.Name, MT: p.MT, Status: p.Status, Disks: len(p.Disks)}
	for _, st := range p.Steps {
		switch st.Status {
		case vsphere.StepPlanned:
			if pd.Step == "" {
				pd.Step = "next: " + st.Title
			}
		case vsphere.StepDone:
		default:
			pd.Step = st.Kind + " " + st.Status
			if st.Error != "" {
				pd.Step += ": " + st.Error
			}
		}
	}
	return pd
}

// Resume finishes a killed run from its plan file.
func (c *Console) Resume(ctx context.Context, planFile string, progress func(string)) (string, error) {
	return c.again(ctx, planFile, "resume", progress)
}

// Undo reverses a run from its plan file.
func (c *Console) Undo(ctx context.Context, planFile string, progress func(string)) (string, error) {
	return c.again(ctx, planFile, "undo", progress)
}

func (c *Console) again(ctx context.Context, planFile, how string, progress func(string)) (string, error) {
	p, err := vsphere.LoadPlan(planFile)
	if err != nil {
		return "", err
	}
	cl, err := vsphere.Connect(ctx, c.cfg)
	if err != nil {
		return "", err
	}
	defer cl.Close(context.WithoutCancel(ctx))
	if how == "undo" {
		err = cl.Undo(ctx, p, stepLine(progress))
	} else {
		err = cl.Resume(ctx, p, stepLine(progress))
	}
	if err != nil {
		return "", err
	}
	return report(p, how), nil
}

// PlanSteps are the plan's steps as create-vm --dry-run prints them.
func PlanSteps(p *vsphere.Plan) string {
	var b strings.Builder
	for i, st := range p.Steps {
		fmt.Fprintf(&b, "%d. %s\n", i+1, st.Title)
		if st.Undo != "" {
			fmt.Fprintf(&b, "   undo: %s\n", st.Undo)
		}
	}
	return b.String()
}

// Checks are vSphere checks as the setup package's, to be shown with
// them: the same fields and status words.
func Checks(cs []vsphere.Check) []setup.Check {
	out := make([]setup.Check, 0, len(cs))
	for _, c := range cs {
		out = append(out, setup.Check{ID: c.ID, Group: c.Group, Title: c.Title, Status: setup.Status(c.Status), Detail: c.Detail, Fix: c.Fix})
	}
	return out
}

// SourceForm is DefaultForm for these disks with what their partition
// tables say of the source (vsphere.ProbeBoot): an EFI system partition
// makes the firmware efi, Windows partitions a Windows guest id on LSI
// Logic SAS. The notes say which field came from where (none when the
// disks tell nothing): the form's defaults, as create-vm --dry-run lists
// them.
func (c *Console) SourceForm(name string, disks []string) (Form, []string) {
	f := DefaultForm(name, len(disks))
	sp := vsphere.FailbackSpec{Disks: disks}
	sp.SourceDefaults(vsphere.ProbeBoot(c.devRoot, disks), nil)
	if sp.Firmware != "" {
		f.Firmware = sp.Firmware
	}
	if sp.GuestID != "" {
		f.GuestID = sp.GuestID
	}
	if len(sp.Controllers) > 0 {
		f.Controller = sp.Controllers[0]
	}
	return f, sp.Defaults
}
