package journal

import (
	"errors"
	"fmt"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// PruneResult says what a prune removed and where the window now starts.
type PruneResult struct {
	Segments     int
	Bytes        int64
	Earliest     uint64
	EarliestTime time.Time
	// BlockedBy is a locked tag that kept older data from going.
	BlockedBy *Tag
	// HeldBy names the pin (a point-in-time view) that kept older data
	// from going, or is empty.
	HeldBy string
	// Held: a reader's hold (Store.Hold) kept older data from going.
	Held bool
}

// PruneOptions choose what to prune: oldest first, a segment goes when any
// condition given asks for it, and pruning stops at the first that none does.
type PruneOptions struct {
	// Before prunes segments whose newest write is older than this.
	Before time.Time
	// ToSize prunes while the store holds more than this many bytes.
	ToSize int64
	// Max bounds how many segments go (0: no bound).
	Max int
	// Now expires unlocked tags past their lifetime.
	Now time.Time
}

// Prune removes whole oldest segments (invariant 6) and the tags and
// ranges they carried; the segment being appended to is never removed,
// nor any segment a locked tag still needs.
func (s *Store) Prune(p PruneOptions) (PruneResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res PruneResult
	locked, lockedIdx := ^uint64(0), -1
	for i := range s.tags {
		if s.tags[i].Locked && s.tags[i].Seq < locked {
			locked, lockedIdx = s.tags[i].Seq, i
		}
	}
	pending := map[uint64]bool{}
	for _, a := range s.uncommit {
		pending[a.info.Index] = true
	}
	used := s.usedLocked()
	held, anyHold := s.heldFromLocked()
	n := 0
	for n < len(s.segs)-1 {
		g := s.segs[n]
		if pending[g.Index] || (p.Max > 0 && n >= p.Max) {
			break
		}
		want := (!p.Before.IsZero() && g.LastTime.Before(p.Before)) ||
			(p.ToSize > 0 && used > p.ToSize) ||
			(p.Before.IsZero() && p.ToSize == 0 && p.Max > 0)
		if !want {
			break
		}
		if why := s.heldByLocked(g); why != "" {
			// An open view reads this segment's before-images.
			res.HeldBy = why
			break
		}
		if anyHold && g.LastSeq > held {
			res.Held = true
			break
		}
		if g.LastSeq > locked {
			// The locked tag needs this segment's before-images.
			t := s.tags[lockedIdx]
			res.BlockedBy = &t
			break
		}
		used -= g.Bytes
		res.Bytes += g.Bytes
		n++
	}
	if n == 0 {
		res.Earliest, res.EarliestTime = s.earliestLocked()
		if !p.Now.IsZero() {
			return res, s.expireTagsLocked(p.Now)
		}
		return res, nil
	}
	r, _, err := s.removeOldestLocked(n, p.Now, false)
	r.BlockedBy, r.HeldBy, r.Held = res.BlockedBy, res.HeldBy, res.Held
	return r, err
}

// removeOldestLocked removes the n oldest segments and the tags and
// ranges before the new earliest point (locked tags only when force: a
// repair, where they cannot be recovered any more). It returns the tags
// removed.
func (s *Store) removeOldestLocked(n int, now time.Time, force bool) (PruneResult, []Tag, error) {
	var res PruneResult
	gone := s.segs[:n]
	keep := s.segs[n:]
	for _, g := range gone {
		res.Bytes += g.Bytes
	}
	earliest, etime := s.state.Applied, s.state.AppliedTime
	if len(keep) > 0 && keep[0].FirstSeq != 0 {
		earliest, etime = keep[0].FirstSeq-1, keep[0].PrevTime
	}
	var tags, dropped []Tag
	var dropTags []uint64
	for _, t := range s.tags {
		if t.Seq < earliest && (!t.Locked || force) || expired(t, now) {
			dropTags = append(dropTags, t.Seq)
			dropped = append(dropped, t)
			continue
		}
		tags = append(tags, t)
	}
	var goneTags []Tag
	var dropGone []uint64
	for _, t := range s.gone {
		if t.Seq < earliest {
			dropGone = append(dropGone, t.Seq)
		} else {
			goneTags = append(goneTags, t)
		}
	}
	var ranges []Range
	var dropRanges []uint64
	var moved *Range
	for _, r := range s.ranges {
		if r.LastSeq < earliest {
			dropRanges = append(dropRanges, r.FirstSeq)
			continue
		}
		if r.FirstSeq < earliest {
			dropRanges = append(dropRanges, r.FirstSeq)
			// etime is the time of the last before-image pruned, which a
			// stepped-back source clock can put after the range's end
			r.FirstSeq, r.FirstTime = earliest, etime
			if r.FirstTime.After(r.LastTime) {
				r.FirstTime = r.LastTime
			}
			m := r
			moved = &m
		}
		ranges = append(ranges, r)
	}
	err := s.update(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bSegments)
		for _, g := range gone {
			if err := sb.Delete(key(g.Index)); err != nil {
				return err
			}
		}
		tb := tx.Bucket(bTags)
		for _, k := range dropTags {
			if err := tb.Delete(key(k)); err != nil {
				return err
			}
		}
		if gb := tx.Bucket(bGone); gb != nil {
			for _, k := range dropGone {
				if err := gb.Delete(key(k)); err != nil {
					return err
				}
			}
		}
		rb := tx.Bucket(bRanges)
		for _, k := range dropRanges {
			if err := rb.Delete(key(k)); err != nil {
				return err
			}
		}
		if moved != nil {
			return putJSON(rb, key(moved.FirstSeq), *moved)
		}
		return nil
	})
	if err != nil {
		return PruneResult{}, nil, err
	}
	s.segs = append([]SegmentInfo(nil), keep...)
	s.tags, s.ranges, s.gone = tags, ranges, goneTags
	res.Segments = n
	res.Earliest, res.EarliestTime = earliest, etime
	// The catalogue no longer names these files; a crash before the
	// unlinks leaves orphans that OpenStore removes.
	for _, g := range gone {
		if err := s.o.FS.Remove(s.segFile(g)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, dropped, fmt.Errorf("retention: remove pruned segment: %w", err)
		}
	}
	if n > 0 {
		if err := s.o.FS.SyncDir(s.o.Dir); err != nil {
			return res, dropped, err
		}
	}
	return res, dropped, nil
}

func expired(t Tag, now time.Time) bool {
	return !t.Locked && t.Lifetime > 0 && !now.IsZero() && now.After(t.Time.Add(t.Lifetime))
}

func (s *Store) expireTagsLocked(now time.Time) error {
	var keep []Tag
	var drop []uint64
	for _, t := range s.tags {
		if expired(t, now) {
			drop = append(drop, t.Seq)
		} else {
			keep = append(keep, t)
		}
	}
	if len(drop) == 0 {
		return nil
	}
	err := s.update(func(tx *bolt.Tx) error {
		for _, k := range drop {
			if err := tx.Bucket(bTags).Delete(key(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		s.tags = keep
	}
	return err
}
