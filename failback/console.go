package failback

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/vmware/govmomi/object"

	"github.com/mtconsole/mtconsole/disks/vsphere"
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
	DevRoot                             string // the root of dev/disk/by-id; "/" if ""
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
	return &Console{cfg: cfg, uuidFile: uuid, devRoot: root}, nil
}

// Console is the console's failback-VM hook (tui.VSphere): the failback
// VM made by the same disks/vsphere functions as mtconsole vsphere
// create-vm, with its defaults (2 CPUs, 2048 MB, no NIC, this master
// target's host).
type Console struct {
	cfg               vsphere.Config
	uuidFile, devRoot string
}

func (c *Console) plan(ctx context.Context, disks []string, name string) (*vsphere.Client, *vsphere.Plan, error) {
	cl, err := vsphere.Connect(ctx, c.cfg)
	if err != nil {
		return nil, nil, err
	}
	var obj *object.VirtualMachine
	u, err := vsphere.ReadBIOSUUID(c.uuidFile)
	if err == nil {
		obj, err = cl.FindVM(ctx, u)
	}
	var p *vsphere.Plan
	if err == nil {
		p, err = cl.PlanFailback(ctx, obj, vsphere.FailbackSpec{Name: name, Disks: disks, CPUs: 2, MemoryMB: 2048, DevRoot: c.devRoot})
	}
	if err != nil {
		cl.Close(context.WithoutCancel(ctx))
		return nil, nil, err
	}
	return cl, p, nil
}

// Plan is create-vm --dry-run: the steps as it prints them, and the
// checks. It changes nothing.
func (c *Console) Plan(ctx context.Context, disks []string, name string) (string, []setup.Check, error) {
	cl, p, err := c.plan(ctx, disks, name)
	if err != nil {
		return "", nil, err
	}
	defer cl.Close(context.WithoutCancel(ctx))
	return PlanSteps(p), Checks(p.Checks), nil
}

// Create is create-vm: planned again, then run.
func (c *Console) Create(ctx context.Context, disks []string, name string, progress func(string)) (string, error) {
	cl, p, err := c.plan(ctx, disks, name)
	if err != nil {
		return "", err
	}
	defer cl.Close(context.WithoutCancel(ctx))
	// Execute refuses a plan whose checks fail (they may have changed
	// since the dry run) and undoes its steps on a failure; its error
	// says which step failed and what was undone.
	if err := cl.Execute(ctx, p, func(st vsphere.Step) { progress(fmt.Sprintf("%-11s %s", st.Status, st.Title)) }); err != nil {
		return "", err
	}
	return fmt.Sprintf("Failback VM %s created with %d disk(s) on %s and powered on.", p.Spec.Name, len(p.Disks), p.VMPath), nil
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
