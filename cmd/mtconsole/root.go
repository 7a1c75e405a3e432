package main

import (
	"github.com/spf13/cobra"
)

var version = "0.1.0-dev"

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "mtconsole",
		Short:         "Console and replication engine of a disaster-recovery master target",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err}
	})
	// Bare mtconsole opens the console.
	console := newConsoleCmd()
	root.RunE = console.RunE
	root.Flags().AddFlagSet(console.Flags())
	root.AddCommand(console, newRetentionCmd(), newDemoCmd(), newSelftestCmd(), newStatusCmd(), newTagCmd(), newPauseCmd(true), newPauseCmd(false),
		newRecoverCmd(), newPSCmd(), newAgentCmd(), newCSCmd(), newRegisterCmd(), newUnregisterCmd(), newHostConfigCmd(),
		newViewCmd(), newCheckCmd(), newInstallCmd(), newUninstallCmd(), newCustomChangesCmd(), newVSphereCmd(), newSetupCmd(), newProtectCmd(), newUnprotectCmd(), newProtectionCmd())
	return root
}
