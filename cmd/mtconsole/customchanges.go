package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/setup"
)

func newCustomChangesCmd() *cobra.Command {
	var root string
	var dryRun bool
	c := &cobra.Command{
		Use:   "custom-changes status|apply|revert [--root DIR] [--dry-run]",
		Short: "Show, apply or revert the master target's custom changes (ApplyCustomChanges.sh)",
		Long: `The custom changes keep multipath and LVM away from replicated target
disks, as the original ApplyCustomChanges.sh did:

  multipath   /etc/multipath.conf: find_multipaths no, the OS disk's WWID blacklisted
  lvm-filter  /etc/lvm/lvm.conf: global_filter accepts only the OS disks' PVs
  lvmetad     lvm2-lvmetad masked, use_lvmetad = 0 (where the host has lvmetad)
  marker      ` + setup.Marker + `, which the installer looks for

apply backs up every file before its first change (in ` + setup.StateDir + `),
writes atomically and changes nothing when run twice; revert puts every file
back byte for byte. Both need a reboot to take effect; status says so until
the host has rebooted. With --dry-run, apply and revert print each file they
would write, link or remove, and change nothing.

Exit codes: 0 ok (status: all applied), 1 failed or (status) not all
applied, 2 usage.`,
		Args: usageArgs(cobra.NoArgs),
	}
	c.PersistentFlags().StringVar(&root, "root", "/", "change the files under DIR instead of this host's")
	sub := func(use, short string, run func(out io.Writer, cu *setup.Custom) error) *cobra.Command {
		s := &cobra.Command{Use: use, Short: short, Args: usageArgs(cobra.NoArgs),
			RunE: func(cmd *cobra.Command, _ []string) error {
				if use != "status" && root == "/" && !dryRun && os.Geteuid() != 0 {
					return errors.New("custom changes edit /etc: run as root (sudo mtconsole custom-changes " + use + ")")
				}
				cu, err := setup.HostCustom(root)
				if err != nil {
					return err
				}
				if dryRun {
					cu.Exec = setup.DryRun(root) // every write, link and removal only recorded
				}
				return run(cmd.OutOrStdout(), cu)
			}}
		if use != "status" {
			s.Flags().BoolVar(&dryRun, "dry-run", false, "print what would change; change nothing")
		}
		return s
	}
	c.AddCommand(
		sub("status", "Show each change: applied or not, and whether a reboot is pending", func(out io.Writer, cu *setup.Custom) error {
			cs, err := cu.Status()
			if err != nil {
				return err
			}
			all := true
			for _, ch := range cs {
				word := "no"
				switch {
				case !ch.Applicable:
					word = "n/a"
				case ch.Applied:
					word = "yes"
				default:
					all = false
				}
				fmt.Fprintf(out, "  %-4s %-11s %s\n", word, ch.ID, ch.Title)
			}
			if cu.RebootRequired() {
				fmt.Fprintln(out, "\nREBOOT IS REQUIRED FOR CUSTOM CHANGES TO TAKE EFFECT")
			}
			if !all {
				return fmt.Errorf("not all custom changes are applied: mtconsole custom-changes apply")
			}
			fmt.Fprintln(out, "\nAll custom changes are applied.")
			return nil
		}),
		sub("apply", "Apply the changes (backs up every file it touches)", func(out io.Writer, cu *setup.Custom) error {
			changed, err := cu.Apply()
			if !printWould(out, cu.Exec, 0) {
				for _, f := range changed {
					fmt.Fprintln(out, "  changed "+f)
				}
			}
			if err != nil {
				return err
			}
			switch {
			case len(changed) == 0:
				fmt.Fprintln(out, "All custom changes were already applied: nothing changed.")
			case cu.Exec.Dry():
				fmt.Fprintln(out, "Dry run: nothing changed.")
				return nil
			default:
				fmt.Fprintf(out, "Backups in %s.\n", setup.StateDir)
			}
			if cu.RebootRequired() {
				fmt.Fprintln(out, "REBOOT IS REQUIRED FOR CUSTOM CHANGES TO TAKE EFFECT")
			}
			return nil
		}),
		sub("revert", "Put back every file as it was before the first apply", func(out io.Writer, cu *setup.Custom) error {
			changed, err := cu.Revert()
			if !printWould(out, cu.Exec, 0) {
				for _, f := range changed {
					fmt.Fprintln(out, "  restored "+f)
				}
			}
			if err != nil {
				return err
			}
			if len(changed) == 0 {
				fmt.Fprintln(out, "No custom changes to revert: there are no backups.")
				return nil
			}
			if cu.Exec.Dry() {
				fmt.Fprintln(out, "Dry run: nothing changed.")
				return nil
			}
			fmt.Fprintln(out, "REBOOT IS REQUIRED FOR THE REVERT TO TAKE EFFECT")
			return nil
		}),
	)
	return c
}
