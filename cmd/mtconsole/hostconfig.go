package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/tui"
)

func newHostConfigCmd() *cobra.Command {
	var config string
	c := &cobra.Command{
		Use:   "hostconfig [--config PATH]",
		Short: "The host config screen (hostconfigcli): configuration server, agent, NAT, logging",
		Long: `hostconfig opens the screen that replaces the original's hostconfigcli, with
its five parts: Global (configuration server, port, HTTPS, passphrase),
Agent (cache directory), NAT (fixed host name / IP to advertise), Logging,
Quit; ? explains each. Saving Global tests the connection, shows the
server's certificate fingerprint for you to confirm on first use, registers
this host and verifies it. The binary invoked as hostconfigcli opens it too.

It needs a terminal: for scripts use "mtconsole register".

Exit codes: 0 ok, 1 failed, 2 usage (bad flags, or stdout is not a terminal).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !term.IsTerminal(int(os.Stdout.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
				return usageError{errors.New("hostconfig needs a terminal: for scripts use `mtconsole register`")}
			}
			host, _ := os.Hostname()
			return tui.RunHostConfig(cmd.Context(), tui.HostConfigOptions{Paths: hostconfig.PathsFor(config),
				Version: version, SysRoot: "/", Host: host, NoColor: os.Getenv("NO_COLOR") != ""})
		},
	}
	c.Flags().StringVar(&config, "config", hostconfig.DefaultConfigPath, "the host config file (passphrase and pinned certificate beside it)")
	return c
}

// argsFor is the command line main runs: invoked as hostconfigcli (a
// symlink, as the original's /usr/local/ASR/Vx/bin/hostconfigcli), the
// binary opens the host config screen.
func argsFor(argv []string) []string {
	if len(argv) > 0 && filepath.Base(argv[0]) == "hostconfigcli" {
		return append([]string{"hostconfig"}, argv[1:]...)
	}
	return argv[1:]
}
