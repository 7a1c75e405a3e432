package recovery

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// Progress is told the bytes done out of total as work proceeds.
type Progress func(done, total int64)

// Result says what a rollback or export did.
type Result struct {
	Point    Resolved      `json:"point"`
	Copied   int64         `json:"copied_bytes"`   // export: bytes copied from the target unchanged
	Restored int64         `json:"restored_bytes"` // bytes written from before-images
	Records  int           `json:"undo_records"`
	Duration time.Duration `json:"duration_ns"`
}

// ErrBusy is a rollback asked for a different point than the unfinished
// one in progress.
var ErrBusy = errors.New("another rollback is unfinished")

// check says whether r can be restored from st.
func check(st *journal.Store, r Resolved) error {
	applied := st.State().Applied
	if r.Seq > applied {
		return fmt.Errorf("%w: sequence %d is past the applied position %d", ErrNoPoint, r.Seq, applied)
	}
	if e, _ := st.Earliest(); r.Seq < e {
		return fmt.Errorf("%w: sequence %d was pruned (earliest is %d)", ErrNoPoint, r.Seq, e)
	}
	if err := st.Reachable(r.Seq); err != nil {
		return fmt.Errorf("%w: %w", ErrNoPoint, err)
	}
	return nil
}

// Rollback puts the target itself back to point r, in place; the pair
// ends. The pair must not be applying. It plans first, reading every
// before-image it needs: damage found then changes nothing (the pair
// stays as it was, the target untouched). Only then is the pair marked
// RollingBack, and the catalogue records that the target is being written
// before the first write. A rollback cut short (crash, cancel) leaves the
// pair RollingBack and is finished by running it again with the same
// point, or, if it wrote nothing yet, abandoned (Store.AbandonRollback).
func Rollback(ctx context.Context, st *journal.Store, target vfs.File, r Resolved, progress Progress) (Result, error) {
	start := time.Now()
	res := Result{Point: r}
	s := st.State()
	switch s.State {
	case journal.StateEnded:
		return res, fmt.Errorf("pair %s has ended: %s", s.Pair, s.Reason)
	case journal.StateRollingBack:
		if s.RollbackTo != r.Seq {
			return res, fmt.Errorf("%w: pair %s was being rolled back to sequence %d; finish that point first", ErrBusy, s.Pair, s.RollbackTo)
		}
	}
	if err := check(st, r); err != nil {
		return res, err
	}
	pieces, n, err := plan(ctx, st, r.Seq, s.Applied)
	if err != nil {
		return res, planError(st, s, r, err)
	}
	res.Records = n
	if err := st.SetState(journal.StateRollingBack, "rolling back to "+r.String(), r.Seq); err != nil {
		return res, err
	}
	fail := func(err error) (Result, error) {
		if !st.State().RollbackWritten {
			return res, fmt.Errorf("rollback of pair %s to %s stopped before writing to the target, which is unchanged; run it again, or abandon it with `mtconsole retention rollback --abandon`: %w", s.Pair, r, err)
		}
		return res, fmt.Errorf("rollback of pair %s to %s stopped; the target is partly rolled back, run the rollback again to finish: %w", s.Pair, r, err)
	}
	var total int64
	for _, p := range pieces {
		total += p.n
	}
	if len(pieces) > 0 {
		if err := st.MarkRollbackWritten(); err != nil {
			return fail(err)
		}
	}
	res.Restored, err = apply(ctx, st, pieces, nil, 0, target, progressOf(progress, total))
	if err == nil {
		if err = target.Sync(); err != nil {
			err = fmt.Errorf("fdatasync %s: %w", target.Name(), err)
		}
	}
	if err != nil {
		return fail(err)
	}
	if progress != nil {
		progress(total, total)
	}
	if err := st.SetState(journal.StateEnded, "rolled back to "+r.String(), 0); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// planError explains a rollback refused by its plan: nothing was written.
// Damage to the before-images says which points are lost and which can
// still be recovered.
func planError(st *journal.Store, s journal.PairState, r Resolved, err error) error {
	unchanged := "the target is unchanged"
	if s.State == journal.StateRollingBack {
		if s.RollbackWritten {
			unchanged = "the target is partly rolled back by the earlier attempt"
		} else {
			unchanged = "the target is unchanged (abandon the rollback with `mtconsole retention rollback --abandon`)"
		}
	} else {
		unchanged += " and the pair stays " + s.State
	}
	var se *journal.SegmentError
	if !errors.As(err, &se) {
		return fmt.Errorf("rollback of pair %s to %s refused, %s: %w", s.Pair, r, unchanged, err)
	}
	earliest := se.LostTo
	if rep, verr := st.Verify(); verr == nil && rep.Damaged > 0 {
		earliest = rep.Earliest // the newest damage, wherever it is
	}
	return fmt.Errorf("rollback of pair %s to %s refused, %s: %w; points before sequence %d cannot be recovered, newer ones still can: "+
		"the earliest point still recoverable is sequence %d (after the damaged records); `mtconsole retention repair` reports the damage and moves the window past it",
		s.Pair, r, unchanged, err, earliest, earliest)
}

// Export writes the image of point r to dst (a new file or a device at
// least as large as the target), leaving the target untouched. The pair
// must not be applying while it runs (writer.Pair.Hold).
func Export(ctx context.Context, st *journal.Store, src, dst vfs.File, r Resolved, progress Progress) (Result, error) {
	start := time.Now()
	res := Result{Point: r}
	size, err := src.Size()
	if err != nil {
		return res, err
	}
	dsize, err := dst.Size()
	if err != nil {
		return res, err
	}
	if dsize < size {
		if err := dst.Truncate(size); err != nil {
			return res, fmt.Errorf("export to %s: needs %d bytes, has %d: %w", dst.Name(), size, dsize, err)
		}
	}
	if err := check(st, r); err != nil {
		return res, err
	}
	// Each byte of the image is written once: from its before-image where
	// one exists after the point, else from the target.
	pieces, n, err := plan(ctx, st, r.Seq, st.State().Applied)
	if err != nil {
		return res, fmt.Errorf("export to %s: %w", dst.Name(), err)
	}
	res.Records = n
	res.Restored, err = apply(ctx, st, pieces, src, size, dst, progressOf(progress, size))
	if err == nil {
		if err = dst.Sync(); err != nil {
			err = fmt.Errorf("fdatasync: %w", err)
		}
	}
	if err != nil {
		return res, fmt.Errorf("export to %s: %w", dst.Name(), err)
	}
	res.Copied = size - res.Restored
	if progress != nil {
		progress(size, size)
	}
	res.Duration = time.Since(start)
	return res, nil
}

type osFiler interface{ OSFile() *os.File }

func progressOf(p Progress, total int64) func(int64) {
	if p == nil {
		return nil
	}
	return func(done int64) { p(min(done, total), total) }
}
