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
made durable first. The file's format (TOML):

  [agent]
  host_id = "mt01"                            # default: the host name
  journal_dir = "/var/lib/mtconsole/journal"
  retention_dir = "/var/lib/mtconsole/retention"
  socket = "/run/mtconsole/agent.sock"
  socket_group = ""                           # this group may read status (0660)
  metrics = ""                                # e.g. 127.0.0.1:9460 for Prometheus
  trust_store = "/etc/mtconsole/known_process_servers"
  trust_new_servers = true                    # pin a first-seen certificate
  hash_resync = true                          # targets hold an older copy

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
			return runAgent(ctx, cmd.ErrOrStderr(), path)
		},
	}
	c.Flags().StringVar(&path, "config", "/etc/mtconsole/agent.toml", "the configuration file")
	return c
}

func runAgent(ctx context.Context, logOut io.Writer, path string) error {
	fc, err := agent.LoadConfig(path)
	if err != nil {
		return err
	}
	pass, err := readPassphrase(fc.ProcessServer.PassphraseFile)
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
	logger := slog.New(slog.NewTextHandler(logOut, nil))
	hub := api.NewHub()
	cfg := fc.ClientConfig()
	cfg.Key, cfg.Trust, cfg.Logger = key, trust, logger
	if fc.TrustNew() {
		cfg.Confirm = func(addr string, fp wire.Fingerprint) bool {
			logger.Warn("pinning the process server's certificate on first use; check it on the process server", "address", addr, "fingerprint", fp.String())
			return true
		}
	}
	cfg.Writer = writer.Options{Logger: logger, OnEvent: hub.Publish}
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
	var pcs []writer.PairConfig
	for _, p := range cfg.Pairs {
		pcs = append(pcs, p.PairConfig)
	}
	backend = api.FromWriter(client.Writer(), api.HostInfo{Host: fc.Agent.HostID, Version: version}, hub, pcs...)
	backend.SetReplication(func() map[string]api.Replication {
		out := map[string]api.Replication{}
		for _, s := range client.Status() {
			out[s.ID] = api.Replication{State: s.State, Done: s.ResyncDone, Total: s.ResyncTotal}
		}
		return out
	})
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
	err = client.Run(ctx)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		logger.Info("agent stopping: journals and applied positions made durable")
		return nil
	}
	return err
}
