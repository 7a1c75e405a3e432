package journal

import (
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SegmentError is a committed undo segment that cannot be read whole: a
// record at Offset fails its checks (or the file is missing, Offset 0).
// The records from LostFrom to LostTo are beyond reach; every point
// before LostTo needs them.
type SegmentError struct {
	Index    uint64
	Path     string
	Offset   int64
	Why      string
	LostFrom uint64 // first sequence not readable (the one after the last good record)
	LostTo   uint64 // the segment's last sequence, as catalogued
}

func (e *SegmentError) Error() string {
	return fmt.Sprintf("%v: retention segment %d is damaged: %s offset %d: %s (before-images of sequences %d-%d lost)",
		ErrCorrupt, e.Index, e.Path, e.Offset, e.Why, e.LostFrom, e.LostTo)
}

// Unwrap makes a SegmentError an ErrCorrupt.
func (e *SegmentError) Unwrap() error { return ErrCorrupt }

// SegmentCheck is what Verify found in one segment.
type SegmentCheck struct {
	Index    uint64        `json:"index"`
	FirstSeq uint64        `json:"first_seq"`
	LastSeq  uint64        `json:"last_seq"`
	Records  int           `json:"records"`
	Damage   *SegmentError `json:"damage,omitempty"`
}

// VerifyReport is every committed segment, oldest first, checked record
// by record.
type VerifyReport struct {
	Segments []SegmentCheck `json:"segments"`
	// Damaged counts the damaged segments.
	Damaged int `json:"damaged"`
	// Earliest is the oldest point recoverable now: the catalogue's, or,
	// with damage, the state after the last record of the newest damaged
	// segment.
	Earliest     uint64    `json:"earliest_seq"`
	EarliestTime time.Time `json:"earliest_time"`
}

// Verify reads every committed undo record and reports, per segment,
// whether it is whole or where it is damaged. It changes nothing.
func (s *Store) Verify() (VerifyReport, error) {
	var rep VerifyReport
	segs := s.Segments()
	rep.Earliest, rep.EarliestTime = s.Earliest()
	for _, g := range segs {
		c := SegmentCheck{Index: g.Index, FirstSeq: g.FirstSeq, LastSeq: g.LastSeq}
		prev := uint64(0)
		var at int64 = segHeaderSize
		err := s.undoSegment(g, 0, ^uint64(0), func(r *Record, dataOff int64) error {
			if off := dataOff - HeaderSize - writeFixed; r.Type != TypeUndo || prev != 0 && (r.Seq < prev || r.Seq == prev && g.Gen == 0) || r.Seq < g.FirstSeq || r.Seq > g.LastSeq {
				return &SegmentError{Index: g.Index, Path: s.segFile(g), Offset: off,
					Why: fmt.Sprintf("record of type %v, sequence %d out of place (the segment holds %d-%d)", r.Type, r.Seq, g.FirstSeq, g.LastSeq)}
			}
			at = dataOff + int64(len(r.Data))
			prev = r.Seq
			c.Records++
			return nil
		})
		if err == nil && g.FirstSeq != 0 && g.Gen == 0 && prev != g.LastSeq {
			err = &SegmentError{Index: g.Index, Path: s.segFile(g), Offset: at,
				Why: fmt.Sprintf("ends at sequence %d, the catalogue says %d", prev, g.LastSeq)}
		}
		if err != nil {
			var se *SegmentError
			if !errors.As(err, &se) {
				return rep, err // an I/O error says nothing of the data
			}
			se.LostFrom, se.LostTo = g.FirstSeq, g.LastSeq
			if prev != 0 {
				se.LostFrom = prev + 1
			}
			c.Damage = se
			rep.Damaged++
			rep.Earliest, rep.EarliestTime = g.LastSeq, g.LastTime
		}
		rep.Segments = append(rep.Segments, c)
	}
	return rep, nil
}

// RepairResult says what Repair removed.
type RepairResult struct {
	Report   VerifyReport
	Segments int    // segments removed
	Bytes    int64  // their bytes
	Tags     []Tag  // tags that went with them (locked ones too)
	Earliest uint64 // the earliest recoverable point after the repair
	// EarliestTime is its source time.
	EarliestTime time.Time
}

// Repair verifies the store and, when a segment is damaged, moves the
// earliest recoverable point past the newest damage: the segments up to
// and including the newest damaged one go, whole and oldest first, with
// the tags and ranges before it (locked tags too: a point before the
// damage cannot be recovered). The target is never touched. A store in
// the middle of a rollback is refused.
func (s *Store) Repair() (RepairResult, error) {
	var res RepairResult
	if st := s.State(); st.State == StateRollingBack {
		if st.RollbackWritten || !st.RollbackTracked {
			return res, fmt.Errorf("pair %s is being rolled back to sequence %d and the target is partly rolled back: finish the rollback (`mtconsole retention rollback`) before repairing", st.Pair, st.RollbackTo)
		}
		return res, fmt.Errorf("pair %s has an unfinished rollback to sequence %d that wrote nothing yet: abandon it first (`mtconsole retention rollback --abandon`)", st.Pair, st.RollbackTo)
	}
	rep, err := s.Verify()
	res.Report = rep
	if err != nil {
		return res, err
	}
	res.Earliest, res.EarliestTime = rep.Earliest, rep.EarliestTime
	last := -1
	for i, c := range rep.Segments {
		if c.Damage != nil {
			last = i
		}
	}
	if last < 0 {
		return res, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.uncommit {
		if a.off > a.info.Bytes {
			return res, fmt.Errorf("retention %s: before-images are being appended: repair only a store no pair runs on", s.o.Dir)
		}
	}
	// The segment appended to last may go: the next Append opens one anew.
	for _, a := range s.uncommit {
		a.f.Close()
	}
	s.act, s.uncommit, s.unsynced = nil, nil, nil
	// The store may have changed since Verify: remove by index.
	upto := rep.Segments[last].Index
	n := 0
	for n < len(s.segs) && s.segs[n].Index <= upto {
		n++
	}
	pr, tags, err := s.removeOldestLocked(n, time.Time{}, true)
	if err != nil {
		return res, err
	}
	res.Segments, res.Bytes, res.Tags = pr.Segments, pr.Bytes, tags
	res.Earliest, res.EarliestTime = pr.Earliest, pr.EarliestTime
	return res, nil
}

// MarkRollbackWritten records, before a rollback's first write to the
// target, that the target is no longer as the pair left it: from then on
// the rollback can only be finished, not abandoned.
func (s *Store) MarkRollbackWritten() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.RollbackWritten {
		return nil
	}
	st := s.state
	st.RollbackWritten = true
	if err := s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bState), []byte("pair"), st) }); err != nil {
		return err
	}
	s.state = st
	return nil
}

// ErrRollbackWritten is an unfinished rollback that cannot be abandoned:
// it has written to the target.
var ErrRollbackWritten = errors.New("the target is partly rolled back")

// AbandonRollback puts a pair whose rollback wrote nothing to the target
// back to Active. A rollback that wrote is refused with
// ErrRollbackWritten: the target is partly rolled back and the rollback
// must be finished.
func (s *Store) AbandonRollback() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if st.State != StateRollingBack {
		return fmt.Errorf("pair %s is %s, not being rolled back: nothing to abandon", st.Pair, st.State)
	}
	if st.RollbackWritten {
		return fmt.Errorf("pair %s: %w to sequence %d: abandoning would leave it in a state it never had; run the rollback to that point again to finish it", st.Pair, ErrRollbackWritten, st.RollbackTo)
	}
	if !st.RollbackTracked {
		return fmt.Errorf("pair %s: the rollback to sequence %d was begun by an older mtconsole that did not record whether it wrote to the target: %w as far as anyone can tell; run the rollback to that point again to finish it", st.Pair, st.RollbackTo, ErrRollbackWritten)
	}
	st.State, st.Reason, st.RollbackTo = StateActive, "", 0
	if err := s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bState), []byte("pair"), st) }); err != nil {
		return err
	}
	s.state = st
	return nil
}
