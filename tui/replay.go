package tui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/internal/backoff"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// Entry is one line of a recording (JSON lines): what a collector said,
// and when. Exactly one of Status, Event, Tags and Error is set.
type Entry struct {
	At     time.Time     `json:"at"`
	Status *api.Status   `json:"status,omitempty"`
	Event  *writer.Event `json:"event,omitempty"`
	Job    *api.JobEvent `json:"job,omitempty"` // with Event: a job's step
	Tags   *PairTags     `json:"tags,omitempty"`
	Error  string        `json:"error,omitempty"`
}

// PairTags is a recorded tag list.
type PairTags struct {
	Pair string        `json:"pair"`
	Tags []journal.Tag `json:"tags"`
}

// Msg is the message the entry stands for.
func (e Entry) Msg() tea.Msg {
	switch {
	case e.Status != nil:
		return StatusMsg{Status: *e.Status, At: e.At}
	case e.Event != nil:
		return EventMsg{Event: *e.Event, Job: e.Job}
	case e.Tags != nil:
		return TagsMsg{Pair: e.Tags.Pair, Tags: e.Tags.Tags}
	}
	return AgentErrorMsg{Err: errors.New(e.Error), At: e.At}
}

// entryOf is the entry for a collector's message; ok is false for others.
func entryOf(msg tea.Msg) (Entry, bool) {
	switch m := msg.(type) {
	case StatusMsg:
		return Entry{At: m.At, Status: &m.Status}, true
	case EventMsg:
		return Entry{At: m.Event.Time, Event: &m.Event, Job: m.Job}, true
	case TagsMsg:
		if m.Err == nil {
			return Entry{At: time.Now().UTC(), Tags: &PairTags{Pair: m.Pair, Tags: m.Tags}}, true
		}
	case AgentErrorMsg:
		return Entry{At: m.At, Error: m.Err.Error()}, true
	}
	return Entry{}, false
}

// Replay plays a recording back as a Collector.
type Replay struct {
	Entries []Entry
	// Speed scales the recorded pauses between entries: 1 is real time,
	// 0 sends everything at once.
	Speed float64
	// MaxPause caps one pause, so a recording's quiet hour does not stall
	// a replay (default 2 s).
	MaxPause time.Duration
}

// ReadReplay reads a recording; an error names the line at fault.
func ReadReplay(r io.Reader) (*Replay, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	rp := &Replay{Speed: 1}
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			return nil, fmt.Errorf("replay line %d: %w", n, err)
		}
		if e.Status == nil && e.Event == nil && e.Tags == nil && e.Error == "" {
			return nil, fmt.Errorf("replay line %d: want one of status, event, tags or error", n)
		}
		rp.Entries = append(rp.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	return rp, nil
}

// OpenReplay reads the recording in file.
func OpenReplay(file string) (*Replay, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	rp, err := ReadReplay(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return rp, nil
}

// Msgs is every entry's message, in order.
func (r *Replay) Msgs() []tea.Msg {
	out := make([]tea.Msg, len(r.Entries))
	for i, e := range r.Entries {
		out[i] = e.Msg()
	}
	return out
}

// Run implements Collector: it sends every entry, then returns.
func (r *Replay) Run(ctx context.Context, send func(tea.Msg)) error {
	var prev time.Time
	for i, e := range r.Entries {
		if r.Speed > 0 && i > 0 && e.At.After(prev) {
			limit := r.MaxPause
			if limit <= 0 {
				limit = 2 * time.Second
			}
			if !backoff.Sleep(ctx, min(time.Duration(float64(e.At.Sub(prev))/r.Speed), limit)) {
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		if !e.At.IsZero() {
			prev = e.At
		}
		send(e.Msg())
	}
	return nil
}

// Recorder writes a collector's messages as a recording Replay reads.
type Recorder struct {
	mu  sync.Mutex
	enc *json.Encoder
	err error
}

// NewRecorder records to w.
func NewRecorder(w io.Writer) *Recorder { return &Recorder{enc: json.NewEncoder(w)} }

// Write records msg if it is one a collector sends; the first write
// error sticks and is returned by Err.
func (r *Recorder) Write(msg tea.Msg) {
	e, ok := entryOf(msg)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = r.enc.Encode(e)
	}
}

// Err is the first write error.
func (r *Recorder) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Record wraps c so that everything it sends is also written to w.
func Record(c Collector, w io.Writer) Collector {
	return recording{c: c, r: NewRecorder(w)}
}

type recording struct {
	c Collector
	r *Recorder
}

func (rc recording) Run(ctx context.Context, send func(tea.Msg)) error {
	return rc.c.Run(ctx, func(m tea.Msg) {
		rc.r.Write(m)
		send(m)
	})
}
