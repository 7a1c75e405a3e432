package writer

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// SpaceOptions tune the low-space trigger of DESIGN §4: free space below
// Percent of the retention volume, raised to Min (but by that floor to no
// more than a tenth of the volume) and capped at Max, plus Reserved.
type SpaceOptions struct {
	Min, Max uint64 // default 1 GiB, 20 GiB
	// Percent is the original's cdp_alert_threshold (default 5).
	Percent float64
	// Reserved is kept free on top of the trigger, and a volume must hold
	// it beside a pair's first segments (cdp_minreservedspace; default 0).
	Reserved uint64
	Interval time.Duration // how often to look (default 5 s; <0: never)
}

// trigger is the free space below which a volume of total bytes is low,
// and the free space at which purging stops and a pair paused for space
// resumes.
func (s SpaceOptions) trigger(total uint64) (low, enough uint64) {
	t := journal.LowSpaceTrigger(total, s.Min, s.Max, s.Percent)
	return t + s.Reserved, 2*t + s.Reserved
}

// Writer is the set of pairs of a master target, with the monitor that
// keeps their retention volumes from filling.
type Writer struct {
	o     Options
	space SpaceOptions
	mu    sync.Mutex
	pairs map[string]*Pair
	ended map[string]*ended // by id; never in pairs
	stop  chan struct{}
	done  chan struct{}
	// compactDone is closed when the compactor has stopped
	compactDone chan struct{}
}

// New returns a Writer; Open adds pairs to it.
func New(o Options, space SpaceOptions) *Writer {
	o.defaults()
	if space.Min == 0 {
		space.Min = 1 << 30
	}
	if space.Max == 0 {
		space.Max = 20 << 30
	}
	if space.Percent == 0 {
		space.Percent = 5
	}
	if space.Interval == 0 {
		space.Interval = 5 * time.Second
	}
	o.reserved = space.Reserved
	w := &Writer{o: o, space: space, pairs: map[string]*Pair{}, ended: map[string]*ended{}, stop: make(chan struct{}), done: make(chan struct{}), compactDone: make(chan struct{})}
	go w.monitor()
	go w.compactor()
	return w
}

// ended is a pair that has ended: Status reports it, nothing opens it.
type ended struct {
	cfg    PairConfig
	size   int64
	reason string
}

// Open opens a pair and adds it to the writer. A pair that has ended
// (an *EndedError) is kept as ended: Status reports it with its reason.
func (w *Writer) Open(cfg PairConfig) (*Pair, Recovered, error) {
	w.mu.Lock()
	if _, ok := w.pairs[cfg.ID]; ok {
		w.mu.Unlock()
		return nil, Recovered{}, fmt.Errorf("pair %s is already open", cfg.ID)
	}
	w.mu.Unlock()
	p, rec, err := OpenPair(cfg, w.o)
	if e := (*EndedError)(nil); errors.As(err, &e) {
		var size int64
		if f, ferr := w.o.TargetFS.OpenFile(cfg.Target, os.O_RDONLY, 0); ferr == nil {
			size, _ = f.Size()
			f.Close()
		}
		w.mu.Lock()
		w.ended[cfg.ID] = &ended{cfg: cfg, size: size, reason: e.Reason}
		w.mu.Unlock()
	}
	if err != nil {
		return nil, rec, err
	}
	w.mu.Lock()
	delete(w.ended, cfg.ID)
	w.pairs[cfg.ID] = p
	w.mu.Unlock()
	return p, rec, nil
}

// End ends pair id: an open pair stops taking writes, is closed and
// forgotten as Remove does, and is kept as ended with reason, which
// Status reports (HealthEnded); ending an ended pair changes its reason.
// A rollback ends its pair: the retention store is then the rollback's.
func (w *Writer) End(id, reason string) error {
	w.mu.Lock()
	p := w.pairs[id]
	e := w.ended[id]
	switch {
	case p != nil:
		delete(w.pairs, id)
		e = &ended{cfg: p.cfg, size: p.size}
		w.ended[id] = e
	case e == nil:
		w.mu.Unlock()
		return fmt.Errorf("no pair %s", id)
	}
	e.reason = reason
	w.mu.Unlock()
	if w.o.OnEvent != nil {
		w.o.OnEvent(Event{Time: w.o.Now().UTC(), Pair: id, Kind: EventState, Level: slog.LevelWarn, Message: "ended: " + reason})
	}
	if p == nil {
		return nil
	}
	p.mu.Lock()
	p.ended = true // writes racing the close fail with ErrEnded
	p.mu.Unlock()
	return p.Close()
}

// Ended reports whether pair id has ended, and why.
func (w *Writer) Ended(id string) (reason string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if e := w.ended[id]; e != nil {
		return e.reason, true
	}
	return "", false
}

// Pair returns the open pair id, or nil.
func (w *Writer) Pair(id string) *Pair {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pairs[id]
}

// Pairs returns the open pairs sorted by id.
func (w *Writer) Pairs() []*Pair {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*Pair, 0, len(w.pairs))
	for _, p := range w.pairs {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].cfg.ID < out[j].cfg.ID })
	return out
}

// Remove closes pair id and forgets it; an ended pair is forgotten.
func (w *Writer) Remove(id string) error {
	w.mu.Lock()
	p := w.pairs[id]
	_, ended := w.ended[id]
	delete(w.pairs, id)
	delete(w.ended, id)
	w.mu.Unlock()
	if p == nil {
		if ended {
			return nil
		}
		return fmt.Errorf("no pair %s", id)
	}
	return p.Close()
}

// Status returns every pair's snapshot, the ended ones too, sorted by id.
func (w *Writer) Status() []PairStatus {
	ps := w.Pairs()
	out := make([]PairStatus, len(ps))
	for i, p := range ps {
		out[i] = p.Status()
	}
	w.mu.Lock()
	for _, e := range w.ended {
		out = append(out, PairStatus{ID: e.cfg.ID, Target: e.cfg.Target, TargetBytes: e.size, Health: HealthEnded, Reason: e.reason,
			RPOThreshold: e.cfg.RPOThreshold.Seconds()})
	}
	w.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Close closes every pair.
func (w *Writer) Close() error {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
	<-w.compactDone
	var errs []error
	for _, p := range w.Pairs() {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}

func (w *Writer) monitor() {
	defer close(w.done)
	w.every(w.space.Interval, w.CheckSpace)
}

// every runs f each interval until the Writer stops; a negative interval
// never runs it.
func (w *Writer) every(interval time.Duration, f func()) {
	if interval < 0 {
		<-w.stop
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			f()
		}
	}
}

// CheckSpace applies the low-space rule once: on a retention volume with
// less free space than the trigger, purge pairs lose their oldest
// segments until twice the trigger is free, pause pairs stop; pairs
// paused for space resume once twice the trigger is free again (the
// reserve is counted once in both). Each pair measures its volume's free
// space against its own trigger (PairConfig.AlertPercent, its group's),
// so on a volume shared by groups the one with the highest threshold
// gives space back first and no pair purges for another's threshold.
func (w *Writer) CheckSpace() {
	for _, p := range w.Pairs() {
		free, total, err := w.o.FS.Free(p.cfg.RetentionDir)
		if err != nil {
			continue
		}
		space := w.space
		p.mu.Lock()
		if pct := p.cfg.AlertPercent; pct > 0 {
			space.Percent = pct
		}
		p.mu.Unlock()
		trigger, enough := space.trigger(total)
		// What a paused pair's journal may still take must stay free.
		h := p.journalHeadroom()
		trigger, enough = trigger+h, enough+h
		p.mu.Lock()
		spacePaused := p.spacePause
		p.mu.Unlock()
		if free >= enough && spacePaused {
			if err := p.Resume(); err == nil {
				p.event(EventState, slog.LevelInfo, fmt.Sprintf("resumed: %s free on the retention volume", mb(int64(free))))
			}
			continue
		}
		if free >= trigger {
			continue
		}
		if p.store.Policy().OnFull == journal.Pause {
			if !spacePaused {
				p.pauseForSpace(fmt.Sprintf("retention volume low: %s free, trigger %s (policy: pause)", mb(int64(free)), mb(int64(trigger))))
			}
			continue
		}
		purged := 0
		var res journal.PruneResult
		for free < enough {
			r, err := p.store.Prune(journal.PruneOptions{Max: 1})
			if err != nil || r.Segments == 0 {
				break
			}
			res = r
			purged += r.Segments
			free, _, _ = w.o.FS.Free(p.cfg.RetentionDir)
		}
		if purged > 0 {
			p.event(EventAlert, slog.LevelWarn, fmt.Sprintf("retention volume low: purged %d oldest segment(s); recoverable from %s",
				purged, res.EarliestTime.UTC().Format(time.RFC3339)))
		} else if free < trigger && !spacePaused {
			p.pauseForSpace(fmt.Sprintf("retention volume low: %s free and nothing left to purge", mb(int64(free))))
		}
	}
}

// Stalled lists the open pairs whose applier has been inside one batch
// for longer than limit (Pair.Stalled), with how long, by pair id.
func (w *Writer) Stalled(limit time.Duration) map[string]time.Duration {
	now := w.o.Now()
	out := map[string]time.Duration{}
	for _, p := range w.Pairs() {
		if d, stuck := p.Stalled(now, limit); stuck {
			out[p.cfg.ID] = d
		}
	}
	return out
}
