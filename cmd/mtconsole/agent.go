package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/internal/secret"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
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
made durable first. SIGHUP reloads the file: retention policies and RPO
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
  trust_store = "/etc/mtconsole/known_process_servers"
  trust_new_servers = true                    # pin a first-seen certificate
  hash_resync = true                          # targets hold an older copy
  host_config = "/etc/mtconsole/host.conf"    # heartbeats to the configuration server
  alert_threshold_percent = 5                 # retention volume low below this % free (at most 10 % of it by the 1 GiB floor)
  min_reserved_space_mb = 0                   # kept free on top; a pair's volume must hold it to start

  [process_server]
  address = "ps.example.com:9443"
  passphrase_file = "/etc/mtconsole/passphrase"   # mode 0600, first line

  [defaults]
  rpo_threshold = "15m"
  retention = "24h"
  size_cap_mb = 0
  on_full = "purge"                           # or "pause"

  [[pair]]
  disk = "sda"                                # name on the process server
  target = "/dev/sdb"`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runAgent(ctx, cmd.ErrOrStderr(), path, true)
		},
	}
	c.Flags().StringVar(&path, "config", "/etc/mtconsole/agent.toml", "the configuration file")
	return c
}

// runAgent runs the agent of the configuration file at path until ctx
// ends. reloadOnHUP makes SIGHUP reload the file (the daemon); an agent
// inside another command (the demo) leaves SIGHUP, a hangup, to it.
func runAgent(ctx context.Context, logOut io.Writer, path string, reloadOnHUP bool) error {
	fc, err := agent.LoadConfig(path)
	if err != nil {
		return err
	}
	pass, err := secret.Read(fc.ProcessServer.PassphraseFile, secret.Passphrase)
	if err != nil {
		return err
	}
	key, err := wire.DeriveKey(pass)
	if err != nil {
		return err
	}
	trust, err := wire.OpenTrustStore(fc.Agent.TrustStore)
	if err != nil {
		return err
	}
	hub := api.NewHub()
	// Log lines go to logOut and, as "log" events, to the status API;
	// the writer's alert and state events go to both too (EventSink).
	text := slog.NewTextHandler(logOut, nil)
	logger := slog.New(api.LogHandler(hub, text))
	cfg := fc.ClientConfig()
	cfg.Key, cfg.Trust, cfg.Logger = key, trust, logger
	if fc.TrustNew() {
		cfg.Confirm = func(addr string, fp wire.Fingerprint) bool {
			logger.Warn("pinning the process server's certificate on first use; check it on the process server", "address", addr, "fingerprint", fp.String())
			return true
		}
	}
	cfg.Writer = writer.Options{Logger: logger, OnEvent: api.EventSink(hub, text)}
	var metrics *api.Metrics
	var backend *api.WriterBackend
	if fc.Agent.Metrics != "" {
		cfg.Writer.OnAck = func(pair string, seq uint64) {
			if metrics != nil {
				metrics.Ack(pair, seq)
			}
		}
	}
	client, err := agent.New(cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	backend = client.Backend(api.HostInfo{Host: fc.Agent.HostID, Version: version}, hub)
	// The host's registration with the configuration server, kept alive.
	csCtx, stopCS := context.WithCancel(ctx)
	cs := startCSHeartbeats(csCtx, fc, logger, hostconfig.HeartbeatInterval)
	defer cs.Wait()
	defer stopCS()
	if cs != nil {
		backend.SetCS(cs.Status)
	}
	// Jobs a killed agent left running are reported interrupted, their
	// partial images removed, before anyone can ask.
	if err := backend.OpenJobs(fc.Agent.JobsDir); err != nil {
		return fmt.Errorf("[agent] jobs_dir %s: %w", fc.Agent.JobsDir, err)
	}
	srv, err := api.Listen(api.Config{Socket: fc.Agent.Socket, Group: fc.Agent.SocketGroup, Logger: logger}, backend)
	if err != nil {
		return err
	}
	defer srv.Close()
	if fc.Agent.Metrics != "" {
		metrics = api.NewMetrics(backend)
		if err := metrics.Serve(fc.Agent.Metrics, logger); err != nil {
			return fmt.Errorf("[agent] metrics %s: %w", fc.Agent.Metrics, err)
		}
		defer metrics.Close()
	}
	logger.Info("agent started", "config", path, "process_server", cfg.Addr, "pairs", len(cfg.Pairs))
	hostConfig, _ := fc.HostConfig()
	hup := make(chan os.Signal, 1)
	if reloadOnHUP {
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloadAgent(path, cfg, hostConfig, client.Writer(), logger)
			}
		}
	}()
	err = client.Run(ctx)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		logger.Info("agent stopping: journals and applied positions made durable")
		return nil
	}
	return err
}

// reloadAgent applies what a reload can change of the file at path to the
// running pairs, and logs what needs a restart. A file with an error
// changes nothing.
func reloadAgent(path string, running agent.Config, hostConfig string, w *writer.Writer, logger *slog.Logger) {
	fc, err := agent.LoadConfig(path)
	if err != nil {
		logger.Error("reload refused, the running configuration stays", "err", err)
		return
	}
	next := fc.ClientConfig()
	var restart []string
	if next.Addr != running.Addr {
		restart = append(restart, "process_server.address")
	}
	if next.HostID != running.HostID {
		restart = append(restart, "agent.host_id")
	}
	if next.Space != running.Space {
		restart = append(restart, "agent.alert_threshold_percent or agent.min_reserved_space_mb")
	}
	if p, _ := fc.HostConfig(); p != hostConfig {
		restart = append(restart, "agent.host_config")
	}
	old := map[string]agent.PairConfig{}
	for _, p := range running.Pairs {
		old[p.ID] = p
	}
	changed := 0
	for _, p := range next.Pairs {
		o, ok := old[p.ID]
		delete(old, p.ID)
		if !ok {
			restart = append(restart, "new pair "+p.ID)
			continue
		}
		if o.Disk != p.Disk || o.Target != p.Target || o.JournalDir != p.JournalDir || o.RetentionDir != p.RetentionDir {
			restart = append(restart, "pair "+p.ID+" disk, target or directories")
			continue
		}
		if o.Policy == p.Policy && o.RPOThreshold == p.RPOThreshold {
			continue
		}
		if wp := w.Pair(p.ID); wp != nil {
			if err := wp.SetPolicy(p.Policy, p.RPOThreshold); err != nil {
				logger.Error("reload: policy not applied", "pair", p.ID, "err", err)
				continue
			}
			changed++
		}
	}
	for id := range old {
		restart = append(restart, "removed pair "+id)
	}
	logger.Info("configuration reloaded", "path", path, "policies_changed", changed)
	if len(restart) > 0 {
		logger.Warn("reload: these changes take effect when the agent restarts", "changes", fmt.Sprint(restart))
	}
}
