package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/internal/secret"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// Options are how a daemon runs, beside its configuration file.
type Options struct {
	// Log receives the log's text lines (default os.Stderr); they also go
	// to the status API as "log" events.
	Log io.Writer
	// ReloadOnHUP makes SIGHUP reload the configuration file (the
	// daemon); an agent inside another command (the demo) leaves SIGHUP,
	// a hangup, to that command.
	ReloadOnHUP bool
	// Version is reported by the status API and to the configuration
	// server.
	Version string
	// HeartbeatInterval is how often the configuration server hears from
	// the host (default hostconfig.HeartbeatInterval).
	HeartbeatInterval time.Duration
}

// Run is the master-target daemon of the configuration file fc: it reads
// the passphrase (secret.Passphrase rules) and the trust store, opens the
// pairs, dials the process server, serves the status API on the socket
// (and metrics when asked), keeps the host's registration with the
// configuration server alive with heartbeats, and reloads the file on
// POST /v1/reload and, when o.ReloadOnHUP, on SIGHUP (see Reloader),
// until ctx ends. It returns
// nil when ctx ended it, with the journals and applied positions durable.
func Run(ctx context.Context, fc *FileConfig, o Options) error {
	if o.Log == nil {
		o.Log = os.Stderr
	}
	if o.HeartbeatInterval <= 0 {
		o.HeartbeatInterval = hostconfig.HeartbeatInterval
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
	// Log lines go to o.Log and, as "log" events, to the status API;
	// the writer's alert and state events go to both too (EventSink).
	text := slog.NewTextHandler(o.Log, nil)
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
	// The metrics server starts after the pairs: until then their acks
	// and fsyncs are not counted.
	var metrics atomic.Pointer[api.Metrics]
	if fc.Agent.Metrics != "" {
		cfg.Writer.OnAck = func(pair string, seq uint64) {
			if m := metrics.Load(); m != nil {
				m.Ack(pair, seq)
			}
		}
		cfg.Writer.OnFsync = func(pair, file string, d time.Duration) {
			if m := metrics.Load(); m != nil {
				m.Fsync(pair, file, d)
			}
		}
	}
	client, err := New(cfg)
	if err != nil {
		return err
	}
	defer client.Close()
	backend := client.Backend(api.HostInfo{Host: fc.Agent.HostID, Version: o.Version}, hub)
	// Views are served from the agent's runtime directory, and closed
	// (their overlays removed, said in the log) before the pairs close.
	sock := fc.Agent.Socket
	if sock == "" {
		sock = api.DefaultSocket
	}
	backend.SetViewDir(filepath.Join(filepath.Dir(sock), "views"))
	defer backend.CloseViews("", "closed: the agent stops")
	// The host's registration with the configuration server, kept alive.
	csCtx, stopCS := context.WithCancel(ctx)
	hcPath, named := fc.HostConfig()
	cs := hostconfig.StartHeartbeats(csCtx, hcPath, named, o.Version, logger, o.HeartbeatInterval)
	defer cs.Wait()
	defer stopCS()
	if cs != nil {
		backend.SetCS(func() *api.CSStatus {
			st := api.CSStatus(*cs.Status())
			return &st
		})
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
		m := api.NewMetrics(backend)
		if err := m.Serve(fc.Agent.Metrics, logger); err != nil {
			return fmt.Errorf("[agent] metrics %s: %w", fc.Agent.Metrics, err)
		}
		defer m.Close()
		metrics.Store(m)
	}
	logger.Info("agent started", "config", fc.Path(), "process_server", cfg.Addr, "pairs", len(cfg.Pairs))
	// The file is reloaded on POST /v1/reload, and on SIGHUP for the
	// daemon: the same Reloader, the same result, logged.
	reloader := NewReloader(fc, client, logger)
	// Before the pairs close (defers run last first): a reload at
	// shutdown waits or is refused.
	defer reloader.Stop()
	backend.SetReloader(func(req api.ReloadRequest) api.ReloadResult {
		return reloader.ReloadWith(ReloadOptions{Purge: req.Purge})
	})
	if o.ReloadOnHUP {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-hup:
					reloader.Reload()
				}
			}
		}()
	}
	err = client.Run(ctx)
	if ctx.Err() != nil && (err == nil || errors.Is(err, context.Canceled)) {
		logger.Info("agent stopping: journals and applied positions made durable")
		return nil
	}
	return err
}
