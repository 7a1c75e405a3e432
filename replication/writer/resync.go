package writer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// DirectCommitBytes is how much a direct resync writes to the target
// between two commits (target fdatasync, catalogue commit, ack). It stays
// well under what a process server keeps unacknowledged (64 MiB), so the
// copy never waits for an ack.
var DirectCommitBytes int64 = 16 << 20

// DirectIdle is how long direct writes wait for more before they are
// committed anyway: a process server that keeps less unacknowledged than
// DirectCommitBytes waits for the ack to send more.
var DirectIdle = 20 * time.Millisecond

// direct is a stretch of direct resync writes not yet committed.
type direct struct {
	first    time.Time // source time of the stretch's first write
	last     uint64    // sequence of the last write on the target
	lastTime time.Time
	bytes    int64 // written since the last commit
	// busy is the commit in flight, if any: it answers once on the
	// channel. One at a time; the writes go on meanwhile.
	busy  chan error
	timer *time.Timer // commits after DirectIdle without a write
}

var zeroBuf = make([]byte, 4<<20)

// WriteDirect writes a resync chunk (zero: a range of zeros of
// len(data), data unread) straight to the target: no before-image, no
// journal record. It reports false, doing nothing, when the pair cannot
// take it directly: the retention store holds points a write without a
// before-image would make wrong (journal.Store.DirectResyncOK); the
// caller journals it then. Sequences must follow each other; a sequence
// below Next is a duplicate and dropped, one at or below a direct write
// not yet committed is a resend after a reconnect and written again.
//
// The first direct write of a stretch waits until everything journaled
// is applied (writes land in sequence order) and marks the catalogue
// (journal.Store.MarkResync) before it reaches the target. Every
// DirectCommitBytes, and before anything is journaled again
// (EndDirect), the target is fdatasynced, the catalogue records the last
// direct write as applied, and the journal skips past it
// (journal.Log.Skip): that is the ack, and where a restarted pair
// resumes.
func (p *Pair) WriteDirect(ctx context.Context, seq uint64, off int64, t time.Time, data []byte, zero bool) (bool, error) {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	p.mu.Lock()
	paused := p.paused != ""
	p.mu.Unlock()
	if paused {
		// A paused pair applies nothing: journaled, it waits. What was
		// written directly before is committed first.
		if p.dir != nil {
			err := p.commitDirect(true)
			p.stopDirect()
			if err != nil {
				return true, err
			}
		}
		return false, nil
	}
	if p.dir != nil && p.store.Pinned() {
		// A view opened (journal.Pin): from now on every write keeps
		// its before-image, so what the view reads stays put. What was
		// written directly before is committed first.
		err := p.commitDirect(true)
		p.stopDirect()
		if err != nil {
			return true, err
		}
		return false, nil
	}
	if p.dir == nil && !p.store.DirectResyncOK() {
		return false, nil
	}
	if err := p.admit(seq); err != nil {
		return true, dropDup(err)
	}
	if off < 0 || off+int64(len(data)) > p.size {
		return true, fmt.Errorf("pair %s: %w: offset %d length %d, target %s is %d bytes", p.cfg.ID, ErrBeyondEnd, off, len(data), p.cfg.Target, p.size)
	}
	if zero && len(data) > len(zeroBuf) {
		return true, fmt.Errorf("pair %s: zero range of %d bytes: more than %d", p.cfg.ID, len(data), len(zeroBuf))
	}
	if p.dir == nil {
		ok, err := p.beginDirect(ctx, seq, t)
		if err != nil || !ok {
			return ok, err
		}
	} else if seq > p.dir.last+1 {
		return true, fmt.Errorf("pair %s: %w: direct resync write %d after %d", p.cfg.ID, journal.ErrOutOfOrder, seq, p.dir.last)
	}
	buf := data
	if zero {
		buf = zeroBuf[:len(data)]
	}
	err := p.Hold(func(target vfs.File, _ *journal.Store) error {
		if _, err := target.WriteAt(buf, off); err != nil {
			return &errTarget{"write", p.cfg.Target, off, err}
		}
		return nil
	})
	if err != nil {
		p.failDirect(err)
		return true, err
	}
	n := int64(len(data))
	p.dir.last, p.dir.lastTime = seq, t
	p.dir.bytes += n
	p.mu.Lock()
	p.appended += n
	p.mu.Unlock()
	if d := p.dir; d.busy != nil {
		select {
		case err := <-d.busy:
			d.busy = nil
			if err != nil {
				p.failDirect(err)
				return true, fmt.Errorf("pair %s: %w", p.cfg.ID, err)
			}
		default:
		}
	}
	// The next commit starts once the one in flight is done: the writes
	// never wait for a commit (the process server's unacknowledged
	// buffer bounds how far they run ahead), but the commit in flight
	// takes what was written before it started, so commits grow when
	// fdatasync is slow.
	if d := p.dir; d.busy == nil && d.bytes >= DirectCommitBytes {
		if err := p.commitDirect(false); err != nil {
			return true, err
		}
	}
	if d := p.dir; d != nil {
		if d.timer == nil {
			d.timer = time.AfterFunc(DirectIdle, func() { p.directIdle(d) })
		} else {
			d.timer.Reset(DirectIdle)
		}
	}
	return true, nil
}

// directIdle commits stretch d's writes when none came for DirectIdle,
// and looks again while a commit is in flight or writes wait.
func (p *Pair) directIdle(d *direct) {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	if p.dir != d {
		return // ended
	}
	if d.busy != nil {
		select {
		case err := <-d.busy:
			d.busy = nil
			if err != nil {
				p.failDirect(err)
				return
			}
		default:
			d.timer.Reset(DirectIdle)
			return
		}
	}
	if d.bytes > 0 {
		if p.commitDirect(false) == nil {
			d.timer.Reset(DirectIdle)
		}
	}
}

// beginDirect starts a stretch at seq: the journal drained, the
// catalogue marked. False: the store may not take direct writes.
func (p *Pair) beginDirect(ctx context.Context, seq uint64, t time.Time) (bool, error) {
	if err := p.synced(ctx, p.log.SyncContext(ctx)); err != nil {
		return true, err
	}
	if err := p.Drain(ctx); err != nil {
		return true, err
	}
	ok := true
	err := p.Hold(func(_ vfs.File, st *journal.Store) error {
		if next := p.log.Next(); seq != next || st.State().Applied != next-1 || p.log.Durable() != next-1 {
			return fmt.Errorf("%w: direct resync write %d: journal next %d, durable %d, applied %d",
				journal.ErrOutOfOrder, seq, next, p.log.Durable(), st.State().Applied)
		}
		if err := st.MarkResync(t); err != nil {
			if errors.Is(err, journal.ErrNotDirect) {
				ok = false
				return nil
			}
			return &errRetention{err}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, journal.ErrOutOfOrder) {
			p.setError(err)
		}
		return true, fmt.Errorf("pair %s: %w", p.cfg.ID, err)
	}
	if ok {
		p.dir = &direct{first: t, last: seq - 1}
	}
	return ok, nil
}

// EndDirect commits the direct resync writes not yet committed, if any:
// the next write is journaled. WriteContext and TagContext call it.
func (p *Pair) EndDirect() error {
	p.dmu.Lock()
	defer p.dmu.Unlock()
	if p.dir == nil {
		return nil
	}
	err := p.commitDirect(true)
	p.stopDirect()
	return err
}

// stopDirect ends the stretch; p.dmu is held.
func (p *Pair) stopDirect() {
	if p.dir != nil && p.dir.timer != nil {
		p.dir.timer.Stop()
	}
	p.dir = nil
}

// commitDirect makes the stretch's writes durable and applied: target
// fdatasync, catalogue commit, journal skip (the ack). p.dmu is held. It
// first waits for the commit in flight; then, unless wait, it starts the
// next one and returns while the target syncs.
func (p *Pair) commitDirect(wait bool) error {
	d := p.dir
	if d.busy != nil {
		err := <-d.busy
		d.busy = nil
		if err != nil {
			p.failDirect(err)
			return fmt.Errorf("pair %s: %w", p.cfg.ID, err)
		}
	}
	if d.last < p.log.Next() {
		return nil // nothing written since the last commit
	}
	c := journal.Commit{Applied: d.last, AppliedTime: d.lastTime, Accuracy: journal.NotGuaranteed, FirstTime: d.first}
	n := d.bytes
	d.bytes = 0
	busy := make(chan error, 1)
	go func() { busy <- p.commitDirectRun(c, n) }()
	if !wait {
		d.busy = busy
		return nil
	}
	if err := <-busy; err != nil {
		p.failDirect(err)
		return fmt.Errorf("pair %s: %w", p.cfg.ID, err)
	}
	return nil
}

// commitDirectRun commits direct writes through c.Applied, n bytes of
// them. The target's fdatasync runs beside the writes that follow; the
// catalogue commit and the journal skip run while the applier is held,
// so it never reads from a journal skipped under it.
func (p *Pair) commitDirectRun(c journal.Commit, n int64) error {
	if err := p.target.Sync(); err != nil {
		return &errTarget{"fdatasync", p.cfg.Target, -1, err}
	}
	err := p.Hold(func(_ vfs.File, st *journal.Store) error {
		// Before-images: none; the range stays "Not guaranteed".
		if err := st.Commit(c); err != nil {
			return &errRetention{err}
		}
		p.mu.Lock()
		if c.AppliedTime.After(p.durTime) {
			p.durTime = c.AppliedTime
		}
		p.heard = true
		p.mu.Unlock()
		// The applier reads on from the new applied position.
		p.reread.Store(true)
		return p.log.Skip(c.Applied)
	})
	if err != nil {
		return err
	}
	now := p.o.Now()
	p.mu.Lock()
	p.applied += n
	p.rate.add(now, n)
	p.mu.Unlock()
	return nil
}

// failDirect stops the pair after a failed direct write or commit
// (invariant 5): it restarts from the catalogue, the resync from its
// last commit.
func (p *Pair) failDirect(err error) {
	if errors.Is(err, journal.ErrClosed) {
		return
	}
	p.setError(err)
	p.stopDirect()
}
