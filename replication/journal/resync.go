package journal

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A direct resync writes a full copy straight to the target, without
// before-images and without a round trip through the redo log. That is
// sound only while the retention store holds nothing a write without a
// before-image could make wrong: no before-image (so the earliest
// recoverable point is the applied position itself) and no tag. The
// store then stays that way for the whole copy: its only recovery range
// is one "Not guaranteed" range, opened by MarkResync before the first
// direct write and extended by Commit as the copy becomes durable, and
// the only point it resolves is the applied position, labelled "Not
// guaranteed"; never a point inside or before the copy.

// ErrNotDirect is a direct resync refused because the retention store
// holds points it would make unrecoverable.
var ErrNotDirect = errors.New("retention store holds recoverable points: resync through the journal")

// DirectResyncOK reports whether a direct resync may write the target:
// no before-image kept or staged, no tag, no pin (an open view reads the
// target through the before-images), and no recovery range but "Not
// guaranteed" ones.
func (s *Store) DirectResyncOK() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.directOKLocked()
}

func (s *Store) directOKLocked() bool {
	if len(s.segs) > 0 || len(s.tags) > 0 || len(s.uncommit) > 0 || s.act != nil || len(s.pins) > 0 {
		return false
	}
	for _, r := range s.ranges {
		if r.Accuracy != NotGuaranteed {
			return false
		}
	}
	return true
}

// MarkResync makes durable, before the first direct write reaches the
// target, that the target past the applied position is a resync in
// progress: a "Not guaranteed" recovery range ending at the applied
// position (kept if the last range is one already). A crash after a
// direct write therefore never leaves the applied position looking like
// an exact point while the target holds more. It refuses, changing
// nothing, with ErrNotDirect when DirectResyncOK does not hold.
func (s *Store) MarkResync(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.directOKLocked() {
		return fmt.Errorf("%s: %w", s.o.Dir, ErrNotDirect)
	}
	st := s.state
	if n := len(s.ranges); n > 0 && s.ranges[n-1].LastSeq == st.Applied {
		return nil // already "Not guaranteed" up to here
	}
	if !st.AppliedTime.IsZero() {
		t = st.AppliedTime
	}
	r := Range{FirstSeq: st.Applied, LastSeq: st.Applied, FirstTime: t, LastTime: t, Accuracy: NotGuaranteed}
	err := s.guardedUpdate(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bRanges), key(r.FirstSeq), r); err != nil {
			return err
		}
		return s.hook()
	})
	if err != nil {
		return s.wrap(err)
	}
	s.ranges = append(s.ranges, r)
	return nil
}

// Skip moves the log past sequences through seq that were made durable
// elsewhere (a direct resync wrote them to the target and the retention
// store committed them as applied): Next becomes seq+1 and Durable seq,
// and OnDurable is called with seq. Every record the log holds must be
// durable and at or below seq, which the caller has made the applied
// position already; the live segments are retired as spares, so the
// next record starts a new segment and no scan meets a gap. Readers
// positioned before seq+1 must be made anew.
func (l *Log) Skip(seq uint64) error {
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	if len(l.pending) > 0 || l.durable != l.next-1 || seq < l.next-1 {
		err := fmt.Errorf("journal %s: skip to %d: records not yet durable or past it (next %d, durable %d)", l.o.Dir, seq, l.next, l.durable)
		l.mu.Unlock()
		return err
	}
	if len(l.segs) > 0 {
		for len(l.segs) > 0 {
			s := l.segs[0]
			s.f.Close()
			spare := filepath.Join(l.o.Dir, fmt.Sprintf("spare-%016x", s.index))
			if err := l.o.FS.Rename(s.path, spare); err != nil {
				// A segment closed and not renamed: the log can no longer
				// be appended to safely. Invariant 5: stop.
				l.err = fmt.Errorf("journal %s: %w", l.o.Dir, err)
				l.cond.Broadcast()
				l.mu.Unlock()
				return l.err
			}
			l.spares = append(l.spares, spare)
			l.segs = l.segs[1:]
		}
		if err := l.o.FS.SyncDir(l.o.Dir); err != nil {
			l.err = fmt.Errorf("journal %s: %w", l.o.Dir, err)
			l.cond.Broadcast()
			l.mu.Unlock()
			return l.err
		}
	}
	// Segment numbers start again at 0: nothing kept is of them.
	l.dropAllKept()
	l.tailSeg, l.tailOff, l.tailCount = 0, 0, 0
	l.lastSeg, l.lastOff = 0, 0
	l.next, l.durable = seq+1, seq
	l.cond.Broadcast()
	l.mu.Unlock()
	if l.o.OnDurable != nil {
		l.o.OnDurable(seq)
	}
	return nil
}
