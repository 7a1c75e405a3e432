package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/internal/logging"
	"github.com/mtconsole/mtconsole/internal/sdnotify"
	"github.com/mtconsole/mtconsole/internal/secret"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// Options are how a daemon runs, beside its configuration file.
type Options struct {
	// Log receives the log's text lines (default os.Stderr) when Handler
	// is nil.
	Log io.Writer
	// Handler is where the log goes (internal/logging.New builds the
	// commands' one); records also go to the status API as "log" events.
	// Either way secrets are redacted (logging.Redact) before both.
	Handler slog.Handler
	// OnReload runs before each reload of the file, on SIGHUP (when
	// ReloadOnHUP) or POST /v1/reload: the command re-reads host.conf's
	// logging.level.
	OnReload func()
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
	// Notify tells systemd (Type=notify) when the agent is ready, what
	// its pairs do (STATUS=) and, when Watchdog > 0, that its appliers
	// are alive (WATCHDOG=1, see Watchdog); nil: no service manager.
	Notify *sdnotify.Notifier
	// Watchdog is the unit's WatchdogSec (sdnotify.WatchdogInterval); 0:
	// no watchdog. Keep-alives go out every third of it while no pair's
	// applier has been inside one batch for half of it.
	Watchdog time.Duration
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
	hub := api.NewHub()
	// Log lines go to o.Log and, as "log" events, to the status API;
	// the writer's alert and state events go to both too (EventSink).
	text := o.Handler
	if text == nil {
		text = slog.NewTextHandler(o.Log, nil)
	}
	text = logging.Redact(text)
	logger := slog.New(logging.Redact(api.LogHandler(hub, text)))
	trustPath, migrated, err := fc.TrustStorePath(LegacyTrustStore)
	if err != nil {
		return err
	}
	if migrated {
		logger.Warn("took over the pinned process-server certificates of an older install; the old file is no longer read",
			"from", LegacyTrustStore, "to", trustPath)
	}
	trust, err := wire.OpenTrustStore(trustPath)
	if err != nil {
		return err
	}
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
	// Ready: the pairs are open and the status API listens.
	if err := o.Notify.Ready(StatusLine(client.Status())); err != nil {
		logger.Warn("telling systemd the agent is ready", "err", err)
	}
	defer o.Notify.Stopping()
	if o.Notify != nil {
		wctx, stopWatchdog := context.WithCancel(ctx)
		defer stopWatchdog()
		go feedWatchdog(wctx, o, client, logger)
	}
	// The file is reloaded on POST /v1/reload, and on SIGHUP for the
	// daemon: the same Reloader, the same result, logged.
	reloader := NewReloader(fc, client, logger)
	// Before the pairs close (defers run last first): a reload at
	// shutdown waits or is refused.
	defer reloader.Stop()
	backend.SetReloader(func(req api.ReloadRequest) api.ReloadResult {
		if o.OnReload != nil {
			o.OnReload()
		}
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
					if o.OnReload != nil {
						o.OnReload()
					}
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

// feedWatchdog keeps systemd's status line current (every 10 s) and,
// when the unit has a watchdog, sends keep-alives every third of it
// while no applier has been inside one batch for half of it: a hung
// target or retention volume stops them, and systemd restarts the agent
// (which resumes from the journal, invariant 1) instead of leaving it
// acknowledging writes it never applies.
func feedWatchdog(ctx context.Context, o Options, client *Client, logger *slog.Logger) {
	every := 10 * time.Second
	if o.Watchdog > 0 {
		every = min(every, o.Watchdog/3)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	healthy := func() error { return nil }
	if o.Watchdog > 0 {
		var was error
		healthy = func() error {
			err := stalledError(client.Writer().Stalled(o.Watchdog / 2))
			if err != nil && (was == nil || err.Error() != was.Error()) {
				logger.Error("not feeding systemd's watchdog: it restarts the agent", "err", err)
			} else if err == nil && was != nil {
				logger.Info("the appliers move again: feeding systemd's watchdog")
			}
			was = err
			return err
		}
	}
	o.Notify.Watchdog(ctx, t.C, healthy, func() string { return StatusLine(client.Status()) }, func(err error) {
		logger.Warn("notifying systemd", "err", err)
	})
}

// stalledError names the stalled appliers (writer.Writer.Stalled), or
// is nil.
func stalledError(stalled map[string]time.Duration) error {
	if len(stalled) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(stalled))
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("%s for %s", id, stalled[id].Round(time.Second))
	}
	return fmt.Errorf("applier stuck in one batch: %s", strings.Join(parts, ", "))
}

// StatusLine sums the pairs up for systemctl status: "3 pairs, 2 in
// Differential Sync, 1 in Resync Step I" (the most common state first).
func StatusLine(ps []PairStatus) string {
	if len(ps) == 0 {
		return "no pairs"
	}
	n := map[string]int{}
	for _, p := range ps {
		n[p.State]++
	}
	states := slices.Collect(maps.Keys(n))
	slices.SortFunc(states, func(a, b string) int {
		if n[a] != n[b] {
			return n[b] - n[a]
		}
		return strings.Compare(a, b)
	})
	s := fmt.Sprintf("%d pairs", len(ps))
	if len(ps) == 1 {
		s = "1 pair"
	}
	for _, st := range states {
		s += fmt.Sprintf(", %d in %s", n[st], st)
	}
	return s
}
