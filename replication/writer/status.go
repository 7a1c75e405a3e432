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
}

// PairStatus is a snapshot of one pair: what the status API serves and
// the console shows.
type PairStatus struct {
	ID             string          `json:"id"`
	Target         string          `json:"target"`
	TargetBytes    int64           `json:"target_bytes"`
	Health         string          `json:"health"`
	Reason         string          `json:"reason,omitempty"`
	AppliedSeq     uint64          `json:"applied_seq"`
	DurableSeq     uint64          `json:"durable_seq"`
	BacklogBytes   int64           `json:"backlog_bytes"`
	BacklogSeconds float64         `json:"backlog_seconds"`
	RPOSeconds     float64         `json:"rpo_seconds"`
	RPOThreshold   float64         `json:"rpo_threshold_seconds"`
	ThroughputBps  float64         `json:"throughput_bytes_per_second"`
	Duplicates     int64           `json:"duplicates_dropped"`
	LastAck        time.Time       `json:"last_ack"`
	Retention      RetentionStatus `json:"retention"`
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
		BacklogBytes:  max(p.appended-p.applied, 0),
		RPOThreshold:  p.cfg.RPOThreshold.Seconds(),
		ThroughputBps: p.rate.get(now),
		Duplicates:    p.dups,
		LastAck:       p.lastAck,
	}
	durTime := p.durTime
	s.Health, s.Reason = p.healthLocked(now)
	p.mu.Unlock()
	if !durTime.IsZero() {
		s.RPOSeconds = max(now.Sub(durTime).Seconds(), 0)
		if s.DurableSeq > s.AppliedSeq && !st.AppliedTime.IsZero() {
			s.BacklogSeconds = max(durTime.Sub(st.AppliedTime).Seconds(), 0)
		}
	}
	s.Retention = RetentionStatus{
		UsedBytes: p.store.Used(), CapBytes: pol.SizeCap, Window: pol.Window, OnFull: string(pol.OnFull),
		From: eTime, To: st.AppliedTime, FromSeq: eSeq, ToSeq: st.Applied,
		Segments: len(p.store.Segments()), Tags: len(tags), Ranges: p.store.Ranges(),
	}
	if n := len(tags); n > 0 {
		t := tags[n-1]
		s.Retention.LatestTag = &t
	}
	return s
}

func (p *Pair) healthLocked(now time.Time) (string, string) {
	switch {
	case p.err != nil:
		return HealthError, p.err.Error()
	case p.ended:
		return HealthEnded, "pair has ended"
	case p.paused != "":
		return HealthPaused, p.paused
	case !p.durTime.IsZero() && now.Sub(p.durTime) > p.cfg.RPOThreshold:
		return HealthRPO, fmt.Sprintf("RPO %s exceeds the threshold of %s", now.Sub(p.durTime).Round(time.Second), p.cfg.RPOThreshold)
	}
	return HealthOK, ""
}

// checkRPO raises an alert when the RPO crosses its threshold, and says
// so again when it is back under.
func (p *Pair) checkRPO() {
	now := p.o.Now()
	p.mu.Lock()
	breach := !p.durTime.IsZero() && now.Sub(p.durTime) > p.cfg.RPOThreshold
	changed := breach != p.rpoAlert
	p.rpoAlert = breach
	rpo := now.Sub(p.durTime).Round(time.Second)
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
