package main

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// csHeartbeats is the agent's side of this host's registration with the
// configuration server: the heartbeat loop of the host config, and what
// the status API shows of it.
type csHeartbeats struct {
	logger *slog.Logger
	wg     sync.WaitGroup

	mu       sync.Mutex
	st       api.CSStatus
	loggedAt time.Time // the last failure logged
	beats    int
}

// startCSHeartbeats runs the heartbeats of the host config fc names (see
// agent.FileConfig.HostConfig) until ctx ends. It returns nil when the
// host is not registered: no host config, or one that names no server.
// A host config that names a server but cannot be used (unreadable
// passphrase, bad file) is logged and shown as failing.
func startCSHeartbeats(ctx context.Context, fc *agent.FileConfig, logger *slog.Logger, interval time.Duration) *csHeartbeats {
	path, named := fc.HostConfig()
	if path == "" {
		logger.Info("configuration server heartbeats off: [agent] host_config is empty")
		return nil
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		if named {
			logger.Warn("not registered with a configuration server: the host config [agent] host_config names does not exist; "+
				"register with mtconsole hostconfig or mtconsole register --config, then restart the agent", "host_config", path)
		} else {
			logger.Info("not registered with a configuration server (no host config); heartbeats off", "host_config", path)
		}
		return nil
	}
	paths := hostconfig.PathsFor(path)
	cfg, cl, err := hostconfig.Stored(paths)
	if errors.Is(err, hostconfig.ErrNotRegistered) {
		logger.Info("not registered with a configuration server; heartbeats off", "host_config", path, "err", err)
		return nil
	}
	h := &csHeartbeats{logger: logger, st: api.CSStatus{Server: cfg.CSAddr(), HostID: cfg.HostID}}
	if err != nil {
		logger.Error("configuration server heartbeats off: the host config cannot be used; fix it, then restart the agent",
			"host_config", path, "err", err)
		now := time.Now()
		h.st.Problem, h.st.Error, h.st.FailingSince, h.st.LastAttempt = "host config error", err.Error(), now, now
		return h
	}
	info := hostconfig.CollectHostInfo(cfg, version, "/")
	logger.Info("sending heartbeats to the configuration server", "cs", cfg.CSAddr(), "host_id", cfg.HostID,
		"every", interval.String(), "host_config", path)
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		cl.RunHeartbeats(ctx, interval, info, h.record)
	}()
	return h
}

// record keeps a heartbeat's outcome and logs what changed: the first
// success, each failure whose kind changed (else one every
// HeartbeatInterval), and the recovery.
func (h *csHeartbeats) record(b hostconfig.Beat) {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := h.st
	h.st.LastAttempt = b.At
	h.beats++
	if b.Err == nil {
		h.st.OK, h.st.LastHeartbeat, h.st.Problem, h.st.Error, h.st.FailingSince = true, b.At, "", "", time.Time{}
		switch {
		case b.ReRegistered:
			h.logger.Warn("the configuration server did not know this host: registered it again", "cs", h.st.Server, "host_id", h.st.HostID)
		case !prev.FailingSince.IsZero():
			h.logger.Info("configuration server heartbeat accepted again", "cs", h.st.Server,
				"failing_for", b.At.Sub(prev.FailingSince).Round(time.Second).String())
		case h.beats == 1:
			h.logger.Info("configuration server heartbeat accepted", "cs", h.st.Server, "state", b.Host.State)
		}
		return
	}
	problem := hostconfig.Problem(b.Err)
	h.st.OK, h.st.Problem, h.st.Error = false, problem, b.Err.Error()
	if prev.FailingSince.IsZero() {
		h.st.FailingSince = b.At
	}
	if problem != prev.Problem || b.At.Sub(h.loggedAt) >= hostconfig.HeartbeatInterval {
		h.loggedAt = b.At
		h.logger.Error("configuration server heartbeat failed", "cs", h.st.Server, "problem", problem, "err", b.Err)
	}
}

// Status is the registration as the status API shows it; nil for an
// agent that sends no heartbeats.
func (h *csHeartbeats) Status() *api.CSStatus {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.st
	return &st
}

// Wait waits for the loop to end (after its context).
func (h *csHeartbeats) Wait() {
	if h != nil {
		h.wg.Wait()
	}
}
