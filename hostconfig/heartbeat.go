package hostconfig

import (
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"
)

// HeartbeatStatus is a daemon's view of this host's registration with the
// configuration server, from its heartbeats (the agent's status API shows
// it as api.CSStatus, the same fields).
type HeartbeatStatus struct {
	Server string // host:port of the configuration server
	HostID string // the host's id there
	// OK tells whether the last heartbeat was accepted.
	OK bool
	// LastHeartbeat is the last heartbeat the server accepted.
	LastHeartbeat time.Time
	// LastAttempt is the last heartbeat sent, accepted or not.
	LastAttempt time.Time
	// Problem names what failed in a few words (see Problem) and Error
	// says it in full; FailingSince is the first failure of the current
	// run of them.
	Problem      string
	Error        string
	FailingSince time.Time
}

// Heartbeats keeps a registered host's registration alive: the heartbeat
// loop of a host config, and what a status shows of it. A nil *Heartbeats
// is a host that sends none (Status nil, Wait returns at once).
type Heartbeats struct {
	logger *slog.Logger
	wg     sync.WaitGroup

	mu       sync.Mutex
	st       HeartbeatStatus
	loggedAt time.Time // the last failure logged
	beats    int
}

// StartHeartbeats runs the heartbeats of the host config at path until
// ctx ends, reporting version, and logs what it does. named says the
// daemon's configuration named path (a missing file is then a warning,
// not a plain "not registered"); path "" turns heartbeats off. It returns
// nil when the host is not registered: no host config, or one that names
// no server. A host config that names a server but cannot be used
// (unreadable passphrase, bad file) is logged and shown as failing.
func StartHeartbeats(ctx context.Context, path string, named bool, version string, logger *slog.Logger, interval time.Duration) *Heartbeats {
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
	cfg, cl, err := Stored(PathsFor(path))
	if errors.Is(err, ErrNotRegistered) {
		logger.Info("not registered with a configuration server; heartbeats off", "host_config", path, "err", err)
		return nil
	}
	h := &Heartbeats{logger: logger, st: HeartbeatStatus{Server: cfg.CSAddr(), HostID: cfg.HostID}}
	if err != nil {
		logger.Error("configuration server heartbeats off: the host config cannot be used; fix it, then restart the agent",
			"host_config", path, "err", err)
		now := time.Now()
		h.st.Problem, h.st.Error, h.st.FailingSince, h.st.LastAttempt = "host config error", err.Error(), now, now
		return h
	}
	info := CollectHostInfo(cfg, version, "/")
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
func (h *Heartbeats) record(b Beat) {
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
	problem := Problem(b.Err)
	h.st.OK, h.st.Problem, h.st.Error = false, problem, b.Err.Error()
	if prev.FailingSince.IsZero() {
		h.st.FailingSince = b.At
	}
	if problem != prev.Problem || b.At.Sub(h.loggedAt) >= HeartbeatInterval {
		h.loggedAt = b.At
		h.logger.Error("configuration server heartbeat failed", "cs", h.st.Server, "problem", problem, "err", b.Err)
	}
}

// Status is the registration as a status shows it; nil for a host that
// sends no heartbeats.
func (h *Heartbeats) Status() *HeartbeatStatus {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.st
	return &st
}

// Wait waits for the loop to end (after its context).
func (h *Heartbeats) Wait() {
	if h != nil {
		h.wg.Wait()
	}
}
