package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/setup"
)

func newCheckCmd() *cobra.Command {
	var asJSON bool
	var only, role, retention, root string
	var targets []string
	c := &cobra.Command{
		Use:   "check [--json] [--only os,packages,disks,custom]",
		Short: "Check this host for its role: OS, packages, disks, custom changes",
		Long: `Check whether this host can be a master target (or, with --role ps, a
process server): OS and kernel, root, hostname in /etc/hosts, locale, free
space, time synchronisation, the packages and kernel modules, the disks
(at least two, / and retention not on LVM, stable SCSI ids, the
retention volume, free target disks, sizing) and the custom changes.
Every failed check says how to fix it.

--targets checks the disks by the rules protect applies: refused (fail)
are the OS and retention disks, a mounted disk, an LVM PV (its label
alone is enough), a disk with holders (multipath, md, device mapper);
a warning is a disk without a stable SCSI id or one holding a file
system or partition table (protect asks to type its name). With --json
the check carries each disk's verdict: {path, device, ok, code, reason}.

Exit codes: 0 nothing failed (warnings allowed), 1 a check failed,
2 usage.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			groups := splitList(only)
			for _, g := range groups {
				if !contains(setup.Groups, g) {
					return usageError{fmt.Errorf("--only %s: no such group (groups: %s)", g, strings.Join(setup.Groups, ", "))}
				}
			}
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			env := &setup.Env{Root: root, Role: r, Retention: retention, Targets: targets}
			ctx, cancel := signalContext()
			defer cancel()
			cs, err := setup.Run(ctx, env, groups...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				if err := writeJSON(out, cs); err != nil {
					return err
				}
			} else {
				printChecks(out, cs)
			}
			if n := setup.Count(cs)[setup.Fail]; n > 0 {
				return codeError{exitError, fmt.Errorf("%s failed: each says how to fix it", plural(int64(n), "check"))}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print the checks as JSON: [{id, group, title, status, detail, fix}]")
	c.Flags().StringVar(&only, "only", "", "comma-separated groups to check: "+strings.Join(setup.Groups, ", "))
	c.Flags().StringVar(&role, "role", "mt", "the role to check for: mt (master target) or ps (process server)")
	c.Flags().StringVar(&retention, "retention", setup.DefaultRetention, "the retention directory")
	c.Flags().StringSliceVar(&targets, "targets", nil, "disks that will be targets (sdc, /dev/sdc or /dev/disk/by-id/…), checked by protect's rules: not the OS or retention disk, unmounted, no LVM PV label, no holders")
	c.Flags().StringVar(&root, "root", "/", "check the tree under DIR instead of this host (tests)")
	c.Flags().MarkHidden("root")
	return c
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// loadAnswers reads the answers file (the defaults without one) and lets
// a --role given on the command line win over it.
func loadAnswers(cmd *cobra.Command, file, role string) (setup.Answers, error) {
	a := setup.DefaultAnswers()
	if file != "" {
		var err error
		if a, err = setup.LoadAnswers(file); err != nil {
			return a, usageError{err}
		}
	}
	if cmd.Flags().Changed("role") {
		r, err := parseRole(role)
		if err != nil {
			return a, err
		}
		a.Role = r
	}
	return a, nil
}

func parseRole(s string) (setup.Role, error) {
	switch strings.ToLower(s) {
	case "mt", "mastertarget", "master-target":
		return setup.RoleMT, nil
	case "ps", "processserver", "process-server":
		return setup.RolePS, nil
	}
	return "", usageError{fmt.Errorf("--role %s: want mt (master target) or ps (process server)", s)}
}

var groupTitle = map[string]string{setup.GroupOS: "Operating system", setup.GroupPackages: "Packages",
	setup.GroupDisks: "Disks", setup.GroupCustom: "Custom changes", vsphere.GroupVSphere: "vSphere"}

var statusWord = map[setup.Status]string{setup.Pass: "ok", setup.Warn: "WARN", setup.Fail: "FAIL", setup.Skip: "skip"}

// printChecks prints the checks by group; fixes on their own lines so
// that the table fits 80 columns.
func printChecks(out io.Writer, cs []setup.Check) {
	group := ""
	for _, c := range cs {
		if c.Group != group {
			if group != "" {
				fmt.Fprintln(out)
			}
			group = c.Group
			fmt.Fprintln(out, groupTitle[group])
		}
		fmt.Fprintf(out, "  %-4s  %s: %s\n", statusWord[c.Status], c.Title, c.Detail)
		if c.Fix != "" && c.Status != setup.Pass {
			fmt.Fprintf(out, "        fix: %s\n", c.Fix)
		}
	}
	n := setup.Count(cs)
	fmt.Fprintf(out, "\n%d ok, %d warnings, %d failed, %d skipped\n", n[setup.Pass], n[setup.Warn], n[setup.Fail], n[setup.Skip])
}
