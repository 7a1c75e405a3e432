package journal

import (
	"fmt"
	"sort"
	"time"
)

// Pin keeps the before-images of every sequence after Seq in the store:
// a reader that serves the disk as it was at Seq (a point-in-time view)
// holds one while it is open. Prune removes no segment that holds a
// record after Seq, and says so (PruneResult.HeldBy); a direct resync,
// which writes the target without before-images, is refused while a pin
// is held (DirectResyncOK). Anything else that removes or rewrites
// segments (a compactor) must keep, byte for byte and at the same file
// offsets, every segment whose LastSeq is above PinnedFrom: a reader
// holds (segment, offset) references into them.
type Pin struct {
	s     *Store
	id    uint64
	Seq   uint64    // before-images after this sequence are kept
	Why   string    // who holds it, for the log and status ("view v3")
	Since time.Time // when it was taken
}

// PinInfo describes a pin held, for reports.
type PinInfo struct {
	Seq   uint64    `json:"seq"`
	Why   string    `json:"why"`
	Since time.Time `json:"since"`
}

// Pin keeps the before-images after seq until Release. why names the
// holder (it appears where pruning is held back).
func (s *Store) Pin(seq uint64, why string) *Pin {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextPin++
	p := &Pin{s: s, id: s.nextPin, Seq: seq, Why: why, Since: time.Now().UTC()}
	if s.pins == nil {
		s.pins = map[uint64]*Pin{}
	}
	s.pins[p.id] = p
	s.npins.Store(int32(len(s.pins)))
	return p
}

// Release lets pruning take what p kept. Releasing twice does nothing.
func (p *Pin) Release() {
	if p == nil {
		return
	}
	p.s.mu.Lock()
	delete(p.s.pins, p.id)
	p.s.npins.Store(int32(len(p.s.pins)))
	p.s.mu.Unlock()
}

// Pins lists the pins held, lowest sequence first.
func (s *Store) Pins() []PinInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]PinInfo, 0, len(s.pins))
	for _, p := range s.pins {
		out = append(out, PinInfo{Seq: p.Seq, Why: p.Why, Since: p.Since})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Seq < out[j].Seq || out[i].Seq == out[j].Seq && out[i].Why < out[j].Why
	})
	return out
}

// PinnedFrom is the lowest pinned sequence: every segment holding a
// record after it must stay as it is. ok is false when nothing is pinned.
func (s *Store) PinnedFrom() (seq uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.lowestPinLocked()
	if p == nil {
		return 0, false
	}
	return p.Seq, true
}

// Pinned reports whether any pin is held. It does not wait for the
// store's lock (a commit holds it over its fsync): the direct resync asks
// before every write.
func (s *Store) Pinned() bool { return s.npins.Load() > 0 }

func (s *Store) lowestPinLocked() *Pin {
	var low *Pin
	for _, p := range s.pins {
		if low == nil || p.Seq < low.Seq || p.Seq == low.Seq && p.id < low.id {
			low = p
		}
	}
	return low
}

// AppendWatcher is told of every before-image Append writes, once its
// bytes are in the segment file and before Append returns, so before the
// applier writes the target: r (valid only during the call; Data is the
// before-image, or, with FlagZero, its length in zeros) lies in segment
// seg with its data at file offset off. It runs under the store's lock:
// it must be quick and must not call the store.
type AppendWatcher func(r *Record, seg uint64, off int64)

// WatchAppends calls fn for every before-image appended from now on,
// until the returned stop is called.
func (s *Store) WatchAppends(fn AppendWatcher) (stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextPin++
	id := s.nextPin
	if s.watchers == nil {
		s.watchers = map[uint64]AppendWatcher{}
	}
	s.watchers[id] = fn
	return func() {
		s.mu.Lock()
		delete(s.watchers, id)
		s.mu.Unlock()
	}
}

// heldBy describes the pin that keeps segment g, or "".
func (s *Store) heldByLocked(g SegmentInfo) string {
	p := s.lowestPinLocked()
	if p == nil || g.LastSeq <= p.Seq {
		return ""
	}
	return fmt.Sprintf("%s (pinned from sequence %d since %s)", p.Why, p.Seq, p.Since.Format(time.RFC3339))
}
