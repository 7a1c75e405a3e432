package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/setup"
)

func newUninstallCmd() *cobra.Command {
	var root string
	var purge, dryRun bool
	c := &cobra.Command{
		Use:   "uninstall [--purge-data] [--dry-run] [--root DIR]",
		Short: "Remove the install: binary, agent unit, configuration and state",
		Long: `Stop and disable the agent, then remove its unit, the binary, ` + setup.ConfigDir + `
and ` + setup.StateRoot + `. The retention data stays unless --purge-data is
given. The custom changes stay too: mtconsole custom-changes revert.

Exit codes: 0 removed, 1 failed (or not installed), 2 usage, 119 not root.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (root == "/" || root == "") && !dryRun && os.Geteuid() != 0 {
				return codeError{exitNotRoot, errors.New("uninstall changes /usr/local, /etc and systemd: run it as root")}
			}
			p, err := setup.PlanUninstall(root, purge)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "Uninstall the %s install, version %s, from %s:\n", p.Upgrade.Role, p.Upgrade.Version, root)
			p.Print(out)
			// A dry run takes the real run's steps through a dry-run
			// Executor: each says what it would do, none changes anything.
			x := &setup.Executor{}
			if dryRun {
				x = setup.DryRun(root)
				fmt.Fprintln(out, "\nDry run: nothing is changed. A real run would:")
			}
			ctx, cancel := signalContext()
			defer cancel()
			if err := p.Execute(ctx, x, out); err != nil {
				return err
			}
			if dryRun {
				fmt.Fprintln(out, "\nDry run: nothing changed.")
				return nil
			}
			fmt.Fprintln(out, "\nUninstalled.")
			return nil
		},
	}
	c.Flags().BoolVar(&purge, "purge-data", false, "also remove the retention data (every recovery point is lost)")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print what would be removed; remove nothing")
	c.Flags().StringVar(&root, "root", "/", "uninstall from the tree under DIR")
	return c
}
