package writer

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// Event kinds.
const (
	EventState = "state" // a pair's health or state changed
	EventAlert = "alert" // something an admin must know
	EventTag   = "tag"   // a tag reached the retention store
	EventLog   = "log"   // an informational line
)

// Event is something that happened to a pair, for the status API's
// event stream and the console's log screen.
type Event struct {
	Time    time.Time  `json:"time"`
	Pair    string     `json:"pair"`
	Kind    string     `json:"kind"`
	Level   slog.Level `json:"level"`
	Message string     `json:"message"`
}

func (p *Pair) event(kind string, level slog.Level, msg string) {
	if p.o.OnEvent != nil {
		p.o.OnEvent(Event{Time: p.o.Now().UTC(), Pair: p.cfg.ID, Kind: kind, Level: level, Message: msg})
	}
}

// RetentionStatus is the retention side of a pair's status.
type RetentionStatus struct {
	UsedBytes int64           `json:"used_bytes"`
	CapBytes  int64           `json:"cap_bytes"`
	Window    time.Duration   `json:"window_ns"`
	OnFull    string          `json:"on_full"`
	From      time.Time       `json:"from"` // earliest recoverable point
	To        time.Time       `json:"to"`   // latest recoverable point
	FromSeq   uint64          `json:"from_seq"`
	ToSeq     uint64          `json:"to_seq"`
	Segments  int             `json:"segments"`
	Tags      int             `json:"tags"`
	LatestTag *journal.Tag    `json:"latest_tag,omitempty"`
	Ranges    []journal.Range `json:"ranges"`
	// Tiers is the sparse-retention policy (none: every write for the
	// window); SparseUpto, when not zero, is the sequence at or before
	// which only the kept tags are points (SparseUptoTime its time).
	Tiers          []journal.Tier `json:"tiers,omitempty"`
	SparseUpto     uint64         `json:"sparse_upto,omitempty"`
	SparseUptoTime time.Time      `json:"sparse_upto_time,omitzero"`
	// Reclaimed is the bytes compaction gave back since the pair opened,
	// LastCompaction when it last rewrote segments.
	Reclaimed      int64     `json:"compaction_reclaimed_bytes,omitempty"`
	LastCompaction time.Time `json:"last_compaction,omitzero"`
}

// PairStatus is a snapshot of one pair: what the status API serves and
// the console shows.
type PairStatus struct {
	ID             string  `json:"id"`
	Target         string  `json:"target"`
	TargetBytes    int64   `json:"target_bytes"`
	Health         string  `json:"health"`
	Reason         string  `json:"reason,omitempty"`
	AppliedSeq     uint64  `json:"applied_seq"`
	DurableSeq     uint64  `json:"durable_seq"`
	BacklogBytes   int64   `json:"backlog_bytes"`
	BacklogSeconds float64 `json:"backlog_seconds"`
	RPOSeconds     float64 `json:"rpo_seconds"`
	// RPOUnknown: the pair has not heard from its source since it was
	// opened (for at most RPOThreshold); RPOSeconds is 0.
	RPOUnknown    bool            `json:"rpo_unknown,omitempty"`
	RPOThreshold  float64         `json:"rpo_threshold_seconds"`
	ThroughputBps float64         `json:"throughput_bytes_per_second"`
	Duplicates    int64           `json:"duplicates_dropped"`
	LastAck       time.Time       `json:"last_ack"`
	Retention     RetentionStatus `json:"retention"`
	// Fsync is how long the pair's fdatasyncs took lately, by file.
	Fsync []FsyncLatency `json:"fsync,omitempty"`
	// Bytes journaled, applied to the target and written to retention as
	// before-images since the pair was opened: counters for the agent's
	// metrics (…_bytes_total), not part of the status API's JSON.
	JournaledBytes int64 `json:"-"`
	AppliedBytes   int64 `json:"-"`
	RetainedBytes  int64 `json:"-"`
}

// Status returns a snapshot of the pair.
func (p *Pair) Status() PairStatus {
	now := p.o.Now()
	st := p.store.State()
	pol := p.store.Policy()
	eSeq, eTime := p.store.Earliest()
	tags := p.store.Tags()
	p.mu.Lock()
	s := PairStatus{
		ID: p.cfg.ID, Target: p.cfg.Target, TargetBytes: p.size,
		AppliedSeq: st.Applied, DurableSeq: p.log.Durable(),
		BacklogBytes:   max(p.appended-p.applied, 0),
		RPOThreshold:   p.cfg.RPOThreshold.Seconds(),
		ThroughputBps:  p.rate.get(now),
		Duplicates:     p.dups,
		LastAck:        p.lastAck,
		JournaledBytes: p.appended, AppliedBytes: p.applied, RetainedBytes: p.retained,
	}
	durTime := p.durTime
	rpo, known := p.rpoLocked(now)
	s.Health, s.Reason = p.healthLocked(now)
	p.mu.Unlock()
	s.RPOUnknown = !known
	if known {
		s.RPOSeconds = max(rpo.Seconds(), 0)
	}
	if !durTime.IsZero() && s.DurableSeq > s.AppliedSeq && !st.AppliedTime.IsZero() {
		s.BacklogSeconds = max(durTime.Sub(st.AppliedTime).Seconds(), 0)
	}
	s.Retention = RetentionStatus{
		UsedBytes: p.store.Used(), CapBytes: pol.SizeCap, Window: pol.Window, OnFull: string(pol.OnFull),
		From: eTime, To: st.AppliedTime, FromSeq: eSeq, ToSeq: st.Applied,
		Segments: len(p.store.Segments()), Tags: len(tags), Ranges: p.store.Ranges(),
		Tiers: pol.Tiers,
	}
	sp := p.store.Sparse()
	s.Retention.SparseUpto, s.Retention.SparseUptoTime = sp.Upto, sp.UptoTime
	p.mu.Lock()
	s.Retention.Reclaimed, s.Retention.LastCompaction = p.reclaimed, p.lastCompaction
	p.mu.Unlock()
	if n := len(tags); n > 0 {
		t := tags[n-1]
		s.Retention.LatestTag = &t
	}
	s.Fsync = p.fsync.latencies()
	return s
}

// rpoLocked is how long ago the source was last known to be on the
// target, and whether that is known. A pair with nothing applied has an
// RPO of 0. After a restart the newest time known is the applied time,
// old if the source was idle: until the source is heard from, the RPO
// is unknown, not a breach. A source still unheard of after RPOThreshold
// may be that far ahead, and the RPO runs from the applied time again.
func (p *Pair) rpoLocked(now time.Time) (time.Duration, bool) {
	switch {
	case p.durTime.IsZero():
		return 0, true
	case !p.heard && now.Sub(p.opened) <= p.cfg.RPOThreshold:
		return 0, false
	}
	return now.Sub(p.durTime), true
}

func (p *Pair) healthLocked(now time.Time) (string, string) {
	rpo, _ := p.rpoLocked(now)
	switch {
	case p.err != nil:
		return HealthError, p.err.Error()
	case p.ended:
		return HealthEnded, "pair has ended"
	case p.paused != "":
		return HealthPaused, p.paused
	case rpo > p.cfg.RPOThreshold:
		return HealthRPO, fmt.Sprintf("RPO %s exceeds the threshold of %s", rpo.Round(time.Second), p.cfg.RPOThreshold)
	}
	return HealthOK, ""
}

// checkRPO raises an alert when the RPO crosses its threshold, and says
// so again when it is back under.
func (p *Pair) checkRPO() {
	now := p.o.Now()
	p.mu.Lock()
	d, _ := p.rpoLocked(now)
	breach := d > p.cfg.RPOThreshold
	changed := breach != p.rpoAlert
	p.rpoAlert = breach
	rpo := d.Round(time.Second)
	threshold := p.cfg.RPOThreshold
	p.mu.Unlock()
	if !changed {
		return
	}
	if breach {
		p.event(EventAlert, slog.LevelWarn, fmt.Sprintf("RPO %s exceeds the threshold of %s", rpo, threshold))
	} else {
		p.event(EventState, slog.LevelInfo, fmt.Sprintf("RPO back under the threshold (%s)", rpo))
	}
}
