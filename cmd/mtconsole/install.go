package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/setup"
)

// The installer's exit codes, the original's where it had one.
const (
	exitPrereq   = setup.ExitPrerequisites // 99: prerequisites not met
	exitNotRoot  = 119                     // not root
	exitNoCustom = setup.ExitCustomChanges // 175: custom changes not applied
)

const installExitHelp = `
Exit codes (the original installer's where it had one): 0 installed (or,
with --dry-run, would install), 1 failed, 2 usage or a bad answers file,
99 prerequisites not met, 119 not root, 175 a master target without the
custom changes. A dry run exits as the real run would.`

func newInstallCmd() *cobra.Command {
	var role, answersFile, root string
	var dryRun, skipChecks bool
	c := &cobra.Command{
		Use:   "install [--role mt|ps] [--answers FILE] [--dry-run] [--root DIR]",
		Short: "Install or upgrade this host as a master target or process server",
		Long: `Install mtconsole as a master target (mt, the default) or a process
server (ps): the binary in <install_dir>/bin, the agent's systemd unit,
` + setup.ConfigDir + ` and ` + setup.StateRoot + `, and (mt) the retention data
directory on the retention volume. Run again, it finds the install and
upgrades it, changing only what differs. --answers FILE runs unattended
(see scripts/examples/mt.yaml); the answers used are kept in
` + setup.UsedPath + ` to repeat the install.

A master target needs the custom changes applied first (mtconsole
custom-changes apply; or custom_changes.apply: true in the answers). The
prerequisites (OS and packages) are checked first; missing packages are
installed when prerequisites.install_packages is true. A master target's
disks are checked too (retention volume, / not on LVM, two disks). --dry-run prints
exactly what would change and changes nothing.
` + installExitHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := loadAnswers(cmd, answersFile, role)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return runInstall(ctx, cmd.OutOrStdout(), a, root, dryRun, skipChecks)
		},
	}
	c.Flags().StringVar(&role, "role", "mt", "mt (master target) or ps (process server); overrides the answers")
	c.Flags().StringVar(&answersFile, "answers", "", "answers file (YAML, version 1)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change; change nothing")
	c.Flags().StringVar(&root, "root", "/", "install into the tree under DIR (systemctl is not run)")
	c.Flags().BoolVar(&skipChecks, "skip-checks", false, "do not check OS and packages first")
	return c
}

// printWould prints what a dry run's x would have done since mark, and
// says whether x is a dry run's.
func printWould(out io.Writer, x *setup.Executor, mark int) bool {
	for _, l := range x.Would(mark) {
		fmt.Fprintln(out, "  "+l)
	}
	return x.Dry()
}

func runInstall(ctx context.Context, out io.Writer, a setup.Answers, root string, dryRun, skipChecks bool) error {
	onHost := root == "/" || root == ""
	if onHost && !dryRun && os.Geteuid() != 0 {
		return codeError{exitNotRoot, errors.New("install changes /usr/local, /etc and systemd: run it as root (sudo mtconsole install ...)")}
	}
	// Every change goes through x: a dry run takes the real run's steps
	// and each one only says what it would do.
	x := &setup.Executor{}
	if dryRun {
		x = setup.DryRun(root)
	}
	plan, err := setup.PlanInstall(setup.InstallOptions{Root: root, Answers: a, Version: version})
	if err != nil {
		return err
	}
	roleName := map[setup.Role]string{setup.RoleMT: "master target", setup.RolePS: "process server"}[a.Role]
	what := "fresh install"
	if plan.Upgrade != nil {
		what = fmt.Sprintf("upgrade of the %s install, version %s", plan.Upgrade.Role, plan.Upgrade.Version)
	}
	fmt.Fprintf(out, "Install mtconsole %s as a %s into %s (%s)\n", version, roleName, root, what)

	// Refusals come in the original's order: custom changes (175), then
	// prerequisites (99).
	var refusal error
	var customPlan []string
	var cu *setup.Custom
	if a.Role == setup.RoleMT {
		if cu, err = customFor(root); err != nil {
			return err
		}
		cu.Exec = x
		applied, err := cu.Applied()
		if err != nil {
			return err
		}
		if !applied {
			if !a.CustomChanges.Apply {
				refusal = codeError{exitNoCustom, fmt.Errorf("%w (%s is missing or a change was undone): run `mtconsole custom-changes apply`, reboot, then install again (or set custom_changes.apply: true in the answers)",
					setup.ErrNotApplied, setup.Marker)}
			} else if customPlan, err = cu.Plan(); err != nil {
				return err
			}
		}
	}
	var missing []string
	var pm setup.PackageManager
	if refusal == nil && !skipChecks {
		env := &setup.Env{Root: root, Role: a.Role, Retention: a.Disks.Retention, Targets: a.Disks.Targets,
			RetentionBytes: uint64(a.Disks.RetentionSizeGB) * 1e9}
		groups := []string{setup.GroupOS, setup.GroupPackages}
		if a.Role == setup.RoleMT {
			groups = append(groups, setup.GroupDisks) // the retention volume must exist before its data directory
		}
		cs, err := setup.Run(ctx, env, groups...)
		if err != nil {
			return err
		}
		pm = env.PM
		var fails []setup.Check
		for _, c := range cs {
			if c.Status != setup.Fail {
				continue
			}
			if strings.HasPrefix(c.ID, "packages.") && a.Prerequisites.InstallPackages {
				missing = append(missing, strings.TrimPrefix(c.ID, "packages."))
				continue
			}
			fails = append(fails, c)
		}
		if len(fails) > 0 {
			fmt.Fprintln(out, "\nPrerequisites not met:")
			printChecks(out, fails)
			refusal = codeError{exitPrereq, fmt.Errorf("%s not met: fix them (see above), or set prerequisites.install_packages: true for the packages", plural(int64(len(fails)), "prerequisite"))}
		}
	}

	fmt.Fprintln(out, "\nPlan:")
	if len(missing) > 0 {
		fmt.Fprintf(out, "  %-6s %s\n", "run", pm.InstallCommand(missing))
	}
	for _, l := range customPlan {
		fmt.Fprintln(out, "  custom "+l)
	}
	plan.Print(out)

	if refusal != nil {
		if dryRun {
			fmt.Fprintln(out, "\nDry run: nothing changed. A real run would stop here:")
		}
		return refusal
	}
	fmt.Fprintln(out)
	if dryRun {
		fmt.Fprintln(out, "Dry run: nothing is changed. A real run would:")
	}
	if len(missing) > 0 {
		if !dryRun {
			fmt.Fprintln(out, "Installing packages: "+pm.InstallCommand(missing))
		}
		mark := x.Mark()
		err := x.Install(ctx, pm, missing, func(l string) { fmt.Fprintln(out, "    "+l) })
		printWould(out, x, mark)
		if err != nil {
			return codeError{exitPrereq, fmt.Errorf("install the packages: %w", err)}
		}
	}
	if len(customPlan) > 0 {
		mark := x.Mark()
		changed, err := cu.Apply()
		if !printWould(out, x, mark) {
			for _, f := range changed {
				fmt.Fprintln(out, "  done  custom change "+f)
			}
		}
		if err != nil {
			return err
		}
	}
	if err := plan.Execute(ctx, x, out); err != nil {
		return err
	}
	if dryRun {
		fmt.Fprintln(out, "\nDry run: nothing changed.")
		return nil
	}
	fmt.Fprintf(out, "\nInstalled. Next: register with the configuration server, then protect.\n")
	if cu != nil && cu.RebootRequired() {
		fmt.Fprintln(out, "REBOOT IS REQUIRED FOR CUSTOM CHANGES TO TAKE EFFECT")
	}
	return nil
}
