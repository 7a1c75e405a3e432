package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/internal/sdnotify"
	"github.com/mtconsole/mtconsole/replication/agent"
)

func newAgentCmd() *cobra.Command {
	var path string
	c := &cobra.Command{
		Use:   "agent [--config FILE]",
		Short: "Run the master-target agent: receive a process server's disks, journal, apply and retain them",
		Long: `agent is the master-target daemon. It dials out to the process server named
in its configuration file, pairs the source disks listed there with their
targets, acknowledges writes once they are durable in the journal, applies them
while keeping before-images for recovery, and serves its status API on a unix
socket (mtconsole status, tag, pause, resume and recover talk to it).

SIGTERM and SIGINT stop it cleanly: the journal and the applied position are
made durable first. SIGHUP re-reads host.conf's logging.level (unless
--log-level is given) and reloads the file: retention policies and RPO
thresholds change at once; a changed process server, host id, pair list,
target or directory is named in the log as needing a restart, and nothing of
a file with an error is applied.

When the host is registered with a configuration server (mtconsole register
or mtconsole hostconfig wrote host_config, by default /etc/mtconsole/host.conf
if it exists; host_config = "" turns this off), the agent sends it a
heartbeat at start and every 180 s, registers the host again if the server
forgot it, logs failures, and shows the registration in its status
(mtconsole status --json: "cs"; the console's header). A changed host config
takes effect when the agent restarts. The file's format (TOML):

  [agent]
  host_id = "mt01"                            # default: the host name
  journal_dir = "/var/lib/mtconsole/journal"
  retention_dir = "/var/lib/mtconsole/retention"
  socket = "/run/mtconsole/agent.sock"
  jobs_dir = "/var/lib/mtconsole/jobs"        # recovery jobs' records (default: next to retention_dir)
  socket_group = ""                           # this group may read status (0660)
  metrics = ""                                # e.g. 127.0.0.1:9460 for Prometheus
  trust_store = "/var/lib/mtconsole/known_process_servers"  # an older install's
                                              # /etc/mtconsole one is copied here once
  trust_new_servers = true                    # pin a first-seen certificate
  hash_resync = true                          # targets hold an older copy
  host_config = "/etc/mtconsole/host.conf"    # heartbeats to the configuration server
  alert_threshold_percent = 5                 # retention volume low below this % free (at most 10 % of it by the 1 GiB floor)
  min_reserved_space_mb = 0                   # kept free on top; a pair's volume must hold it to start

  [process_server]
  address = "ps.example.com:9443"
  passphrase_file = "/etc/mtconsole/passphrase"   # mode 0600, first line, at least 16 characters

  [defaults]
  rpo_threshold = "15m"
  retention = "24h"
  size_cap_mb = 0
  on_full = "purge"                           # or "pause"
  # sparse = "all 1d; 1 per 1h for 6d"        # sparse tiers, ending at retention (7d here)

  [[group]]                                   # a protected machine (optional)
  name = "web01"
  consistency_interval = "15m"                # a tag across its disks this often
  # rpo_threshold, retention, size_cap_mb, on_full, sparse for its pairs

  [[pair]]
  disk = "sda"                                # name on the process server
  target = "/dev/sdb"
  group = "web01"                             # default: a group of its own`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fc, err := agent.LoadConfig(path)
			if err != nil {
				return err
			}
			hc, _ := fc.HostConfig()
			l, err := newCmdLog(cmd, "mtconsole-agent", cmd.ErrOrStderr(), hc)
			if err != nil {
				return err
			}
			// Under systemd (Type=notify, WatchdogSec) it says when it is
			// ready, what its pairs do, and that its appliers move.
			wd, _ := sdnotify.WatchdogInterval()
			return agent.Run(ctx, fc, agent.Options{Handler: l.Handler, OnReload: l.Reload, ReloadOnHUP: true, Version: version,
				Notify: sdnotify.FromEnv(), Watchdog: wd})
		},
	}
	c.Flags().StringVar(&path, "config", "/etc/mtconsole/agent.toml", "the configuration file")
	return c
}
