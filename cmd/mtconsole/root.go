package main

import (
	"github.com/spf13/cobra"
)

// groups are the headings of mtconsole --help, in order.
var groups = []*cobra.Group{
	{ID: "console", Title: "Console:"},
	{ID: "replication", Title: "Replication:"},
	{ID: "recovery", Title: "Recovery:"},
	{ID: "setup", Title: "Setup:"},
	{ID: "registration", Title: "Registration:"},
	{ID: "vsphere", Title: "vSphere:"},
	{ID: "servers", Title: "Servers:"},
}

// commandGroup puts each command under a heading of --help. A command
// not named here is listed under "Additional Commands".
var commandGroup = map[string]string{
	"console":        "console",
	"status":         "console",
	"demo":           "console",
	"agent":          "replication",
	"tag":            "replication",
	"pause":          "replication",
	"resume":         "replication",
	"protect":        "replication",
	"unprotect":      "replication",
	"protection":     "replication",
	"recover":        "recovery",
	"view":           "recovery",
	"retention":      "recovery",
	"setup":          "setup",
	"check":          "setup",
	"install":        "setup",
	"uninstall":      "setup",
	"custom-changes": "setup",
	"selftest":       "setup",
	"register":       "registration",
	"unregister":     "registration",
	"hostconfig":     "registration",
	"vsphere":        "vsphere",
	"ps":             "servers",
	"cs":             "servers",
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "mtconsole",
		Short:         "Console and replication engine of a disaster-recovery master target",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{err}
	})
	// Bare mtconsole opens the console.
	console := newConsoleCmd()
	root.RunE = console.RunE
	addLogFlags(root)
	root.Flags().AddFlagSet(console.Flags())
	root.AddCommand(console, newRetentionCmd(), newDemoCmd(), newSelftestCmd(), newStatusCmd(), newTagCmd(), newPauseCmd(true), newPauseCmd(false),
		newRecoverCmd(), newPSCmd(), newAgentCmd(), newCSCmd(), newRegisterCmd(), newUnregisterCmd(), newHostConfigCmd(),
		newViewCmd(), newCheckCmd(), newInstallCmd(), newUninstallCmd(), newCustomChangesCmd(), newVSphereCmd(), newSetupCmd(), newProtectCmd(), newUnprotectCmd(), newProtectionCmd())
	root.AddGroup(groups...)
	for _, c := range root.Commands() {
		if g, ok := commandGroup[c.Name()]; ok {
			c.GroupID = g
		}
	}
	completions(root)
	addBuildCommands(root)
	return root
}
