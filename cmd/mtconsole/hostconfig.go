package main

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/setup"
	"github.com/mtconsole/mtconsole/tui"
)

func newHostConfigCmd() *cobra.Command {
	var config string
	var readOnly bool
	c := &cobra.Command{
		Use:   "hostconfig [--config PATH] [--readonly]",
		Short: "The host config screen (hostconfigcli): configuration server, agent, NAT, logging",
		Long: `hostconfig opens the screen that replaces the original's hostconfigcli, with
its five parts: Global (configuration server, port, HTTPS, passphrase),
Agent (cache directory), NAT (fixed host name / IP to advertise), Logging,
Quit; ? explains each. Saving Global tests the connection, shows the
server's certificate fingerprint for you to confirm on first use, registers
this host and verifies it; when --config is the host config the agent uses
(its [agent] host_config), it then restarts a running agent so that it sends
heartbeats with the new registration (systemctl try-restart mtconsole-agent,
as root on systemd; else it says what to run). On a host that names no
configuration server yet, an original agent's /usr/local/ASR/Vx/etc/drscout.conf
is offered for import (with its connection.passphrase), until one is saved. The binary invoked as hostconfigcli opens it too.

--readonly, or a user other than root (who does not own the directory of
--config), gets a screen that only looks: saving, registering and editing
a field are refused with the reason, and the ? help lists them as disabled.

It needs a terminal: for scripts use "mtconsole register".

Exit codes: 0 ok, 1 failed, 2 usage (bad flags, or stdout is not a terminal).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !term.IsTerminal(int(os.Stdout.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
				return usageError{errors.New("hostconfig needs a terminal: for scripts use `mtconsole register`")}
			}
			host, _ := os.Hostname()
			o := tui.HostConfigOptions{Paths: hostconfig.PathsFor(config),
				Version: version, SysRoot: "/", Host: host, NoColor: os.Getenv("NO_COLOR") != "",
				ReadOnlyReason: hostConfigReadOnly(readOnly, os.Geteuid(), config)}
			o.ReadOnly = o.ReadOnlyReason != ""
			if _, err := os.Stat(hostconfig.DefaultDrscoutPath); err == nil {
				o.Drscout, o.OldPassphrase = hostconfig.DefaultDrscoutPath, hostconfig.DefaultOldPassphrase
			}
			if agentHostConfig(defaultAgentConfig) == absPath(config) {
				o.RestartAgent = setup.AgentRestarter{EUID: os.Geteuid(), Systemd: "/run/systemd/system"}.Restart
			}
			return tui.RunHostConfig(cmd.Context(), o)
		},
	}
	c.Flags().BoolVar(&readOnly, "readonly", false, "only look: no save, registration or edit")
	c.Flags().StringVar(&config, "config", hostconfig.DefaultConfigPath, "the host config file (passphrase and pinned certificate beside it)")
	return c
}

// hostConfigReadOnly is why the host config screen only looks, or "":
// --readonly, or a user other than root who does not own the config's
// directory (the console's rule, as for the wizard).
func hostConfigReadOnly(flag bool, euid int, config string) string {
	switch {
	case flag:
		return "--readonly"
	case euid != 0 && !ownsSocket(filepath.Dir(absPath(config)), euid):
		return "not root"
	}
	return ""
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

// defaultAgentConfig is the agent's configuration file unless told.
const defaultAgentConfig = "/etc/mtconsole/agent.toml"

// agentHostConfig is the host config the agent of agentConfig heartbeats
// for (its [agent] host_config; the default one when the agent's file is
// missing or does not say), as an absolute path.
func agentHostConfig(agentConfig string) string {
	fc, err := agent.LoadConfig(agentConfig)
	if err != nil {
		return absPath(agent.DefaultHostConfig)
	}
	p, _ := fc.HostConfig()
	if p == "" {
		return ""
	}
	return absPath(p)
}

func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return p
}
