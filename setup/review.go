package setup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mtconsole/mtconsole/disks"
)

// ExitCustomChanges is the original installer's exit status when
// ApplyCustomChanges.sh had not run; install keeps it.
const ExitCustomChanges = 175

// ExitPrerequisites is the original's "product prerequisites not met".
const ExitPrerequisites = 99

// Refusal is one reason a real install stops before its first change,
// with the installer's exit status.
type Refusal struct {
	Code int   // ExitCustomChanges or ExitPrerequisites
	Err  error // what is wrong and what to do, for a command line
	// Checks are the failed prerequisites (Code ExitPrerequisites).
	Checks []Check
}

func (r Refusal) Error() string { return r.Err.Error() }
func (r Refusal) Unwrap() error { return r.Err }

// InstallReview is the install decision: what an install would change,
// in the order it changes it, and whether a real run may. `mtconsole
// install` and the setup wizard render it; neither decides anything.
type InstallReview struct {
	Role Role
	Plan *Plan // the files, directories and commands; Plan.Upgrade: the install found
	// PM installs Missing, the packages the checks found missing, first,
	// when the answers say prerequisites.install_packages.
	PM      PackageManager
	Missing []string
	// Custom is the host's custom changes (a master target); CustomPlan
	// what applying them writes, when they are not applied and the
	// answers say custom_changes.apply. Applied before the plan.
	Custom     *Custom
	CustomPlan []string
	// Refusals are every reason a real run would stop, in the order the
	// installer meets them: the custom changes (175), then the
	// prerequisites (99). A run stops at the first and changes nothing.
	Refusals []Refusal
}

// Review works out the install o describes and everything that would
// stop it, reading but never writing: a dry run of the install changes
// nothing on the host. The checks are the OS and package groups, and the
// disks too for a master target (the retention volume must exist before
// its data directory); a failed package check is no refusal when the
// answers install the missing packages.
func Review(ctx context.Context, o InstallOptions) (*InstallReview, error) {
	a := o.Answers
	plan, err := PlanInstall(o)
	if err != nil {
		return nil, err
	}
	r := &InstallReview{Role: a.Role, Plan: plan}
	if a.Role == RoleMT {
		cu := o.Custom
		if cu == nil {
			if cu, err = HostCustom(o.Root); err != nil {
				return nil, err
			}
		}
		r.Custom = cu
		applied, err := cu.Applied()
		if err != nil {
			return nil, err
		}
		switch {
		case applied:
		case !a.CustomChanges.Apply:
			r.Refusals = append(r.Refusals, Refusal{Code: ExitCustomChanges,
				Err: fmt.Errorf("%w (%s is missing or a change was undone): run `mtconsole custom-changes apply`, reboot, then install again (or set custom_changes.apply: true in the answers)",
					ErrNotApplied, Marker)})
		default:
			if r.CustomPlan, err = cu.Plan(); err != nil {
				return nil, err
			}
		}
	}
	if o.SkipChecks {
		return r, nil
	}
	e := Env{Root: o.Root}
	if o.Env != nil {
		e = *o.Env
	}
	e.Role, e.Retention, e.Targets = a.Role, a.Disks.Retention, a.Disks.Targets
	e.RetentionBytes = uint64(a.Disks.RetentionSizeGB) * 1e9
	groups := []string{GroupOS, GroupPackages}
	if a.Role == RoleMT {
		groups = append(groups, GroupDisks)
	}
	cs, err := Run(ctx, &e, groups...)
	if err != nil {
		return nil, err
	}
	r.PM = e.PM
	var fails []Check
	for _, c := range cs {
		if c.Status != Fail {
			continue
		}
		if p, ok := strings.CutPrefix(c.ID, GroupPackages+"."); ok && a.Prerequisites.InstallPackages {
			r.Missing = append(r.Missing, p)
			continue
		}
		fails = append(fails, c)
	}
	if len(fails) > 0 {
		what := "1 prerequisite"
		if len(fails) != 1 {
			what = fmt.Sprintf("%d prerequisites", len(fails))
		}
		r.Refusals = append(r.Refusals, Refusal{Code: ExitPrerequisites, Checks: fails,
			Err: fmt.Errorf("%s not met: fix them (see above), or set prerequisites.install_packages: true for the packages", what)})
	}
	return r, nil
}

// Lines are the changes, in the order they are made, as `mtconsole
// install` lists them: the package install, the custom changes, the plan.
func (r *InstallReview) Lines() []string {
	var out []string
	if len(r.Missing) > 0 {
		out = append(out, fmt.Sprintf("%-6s %s", "run", r.PM.InstallCommand(r.Missing)))
	}
	for _, l := range r.CustomPlan {
		out = append(out, "custom "+l)
	}
	if r.Plan != nil {
		for _, a := range r.Plan.Actions {
			out = append(out, a.String())
		}
	}
	return out
}

// ErrPackages marks a failed install of the missing packages: the
// installer exits ExitPrerequisites.
var ErrPackages = errors.New("install the packages")

// Apply makes the reviewed changes through x, in order: the missing
// packages, the custom changes, the plan. It refuses a review with
// refusals. Each line of output goes to line: a dry-run x's records of
// what it would do ("  would …"), the output of what runs, and "  done …"
// for each change made.
func (r *InstallReview) Apply(ctx context.Context, x *Executor, line func(string)) error {
	if len(r.Refusals) > 0 {
		return r.Refusals[0]
	}
	would := func(mark int) bool {
		for _, l := range x.Would(mark) {
			line("  " + l)
		}
		return x.Dry()
	}
	if len(r.Missing) > 0 {
		if !x.Dry() {
			line("Installing packages: " + r.PM.InstallCommand(r.Missing))
		}
		mark := x.Mark()
		err := x.Install(ctx, r.PM, r.Missing, func(l string) { line("    " + l) })
		would(mark)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrPackages, err)
		}
	}
	if len(r.CustomPlan) > 0 {
		mark := x.Mark()
		cu := *r.Custom
		cu.Exec = x
		changed, err := cu.Apply()
		if !would(mark) {
			for _, f := range changed {
				line("  done  custom change " + f)
			}
		}
		if err != nil {
			return err
		}
	}
	return r.Plan.Execute(ctx, x, lineWriter(line))
}

// RebootRequired says whether the custom changes applied need a reboot.
func (r *InstallReview) RebootRequired() bool {
	return r.Custom != nil && r.Custom.RebootRequired()
}

// lineWriter hands each line written to line (a write is whole lines).
type lineWriter func(string)

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if l != "" {
			w(strings.TrimSuffix(l, "\n"))
		}
	}
	return len(p), nil
}

// HostCustom is the custom changes of the tree under root, judged on the
// facts of its disks (this host's, when the tree has no sysfs) and this
// boot's id (the host's, when the tree has none: a tree of files reboots
// with this host).
func HostCustom(root string) (*Custom, error) {
	inv, err := disks.Read(disks.Host{Root: root})
	if errors.Is(err, disks.ErrNoSysfs) && root != "/" {
		inv, err = disks.Read(disks.Host{Root: "/"})
	}
	if err != nil {
		return nil, err
	}
	cu := &Custom{Root: root, Inv: inv}
	if cu.BootID = readTrim(rootPath(root, "/proc/sys/kernel/random/boot_id")); cu.BootID == "" {
		cu.BootID = readTrim("/proc/sys/kernel/random/boot_id")
	}
	return cu, nil
}

// EnvCustom is the custom changes of the tree under root, judged on the
// disk facts of e: its Inventory, or the disks under e.Root read now
// (with e.Statfs) and kept in e for the next call.
func EnvCustom(root string, e *Env) (*Custom, error) {
	if e.Inventory == nil {
		inv, err := disks.Read(disks.Host{Root: e.Root, Statfs: e.Statfs})
		if err != nil {
			return nil, err
		}
		e.Inventory = inv
	}
	return &Custom{Root: root, Inv: e.Inventory, BootID: e.BootID}, nil
}
