package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

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
directory on the retention volume with a drop-in that makes it writable
to the agent's unit (` + setup.DropInPath + `). Run from the .deb or .rpm's
` + setup.PackagedBinary + `, it uses the package's binary and unit as they are
(and removes an earlier bare install's, which would hide them). Run again, it finds the install and
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
			return runInstall(ctx, cmd.OutOrStdout(), a, answersFile, root, dryRun, skipChecks)
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

func runInstall(ctx context.Context, out io.Writer, a setup.Answers, from, root string, dryRun, skipChecks bool) error {
	onHost := root == "/" || root == ""
	if onHost && !dryRun && os.Geteuid() != 0 {
		return codeError{exitNotRoot, errors.New("install changes /etc, /var/lib and systemd (and /usr/local from a bare binary): run it as root (sudo mtconsole install ...)")}
	}
	r, err := setup.Review(ctx, setup.InstallOptions{Root: root, Answers: a, Version: version, SkipChecks: skipChecks})
	if err != nil {
		return err
	}
	roleName := map[setup.Role]string{setup.RoleMT: "master target", setup.RolePS: "process server"}[a.Role]
	what := "fresh install"
	if up := r.Plan.Upgrade; up != nil {
		what = fmt.Sprintf("upgrade of the %s install, version %s", up.Role, up.Version)
	}
	fmt.Fprintf(out, "Install mtconsole %s as a %s into %s (%s)\n", version, roleName, root, what)

	// A real run stops at the first refusal: the custom changes (175),
	// then the prerequisites (99).
	var refusal *setup.Refusal
	if len(r.Refusals) > 0 {
		refusal = &r.Refusals[0]
		if refusal.Code == setup.ExitPrerequisites {
			fmt.Fprintln(out, "\nPrerequisites not met:")
			printChecks(out, refusal.Checks)
		}
	}
	fmt.Fprintln(out, "\nPlan:")
	if len(r.Missing) > 0 {
		fmt.Fprintf(out, "  %-6s %s\n", "run", r.PM.InstallCommand(r.Missing))
	}
	for _, l := range r.CustomPlan {
		fmt.Fprintln(out, "  custom "+l)
	}
	r.Plan.Print(out)

	if refusal != nil {
		if dryRun {
			fmt.Fprintln(out, "\nDry run: nothing changed. A real run would stop here:")
		}
		return codeError{refusal.Code, refusal.Err}
	}
	fmt.Fprintln(out)
	// Every change goes through x: a dry run takes the real run's steps
	// and each one only says what it would do.
	x := &setup.Executor{}
	if dryRun {
		x = setup.DryRun(root)
		fmt.Fprintln(out, "Dry run: nothing is changed. A real run would:")
	}
	if err := r.Apply(ctx, x, func(l string) { fmt.Fprintln(out, l) }); err != nil {
		if errors.Is(err, setup.ErrPackages) {
			return codeError{exitPrereq, err}
		}
		return err
	}
	// Last, the machines the answers protect: a dry run shows the plan.
	if err := installProtect(ctx, out, a, from, root, dryRun); err != nil {
		return err
	}
	if dryRun {
		fmt.Fprintln(out, "\nDry run: nothing changed.")
		return nil
	}
	if len(a.Protect) > 0 {
		fmt.Fprintf(out, "\nInstalled and protected. Next: register with the configuration server.\n")
	} else {
		fmt.Fprintf(out, "\nInstalled. Next: register with the configuration server, then protect.\n")
	}
	if r.RebootRequired() {
		fmt.Fprintln(out, "REBOOT IS REQUIRED FOR CUSTOM CHANGES TO TAKE EFFECT")
	}
	return nil
}
