package writer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

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
	// batch is the writes taken but not yet on the target; flight the
	// batch being written, if any.
	batch  []directWrite
	bbytes int64
	flight *directFlight
}

// directFlight is a batch of direct writes being written: err is set once done
// is closed. Both the next batch and a commit covering it wait for it.
type directFlight struct {
	done chan struct{}
	err  error
}

// wait waits for the batch to land and says how it went.
func (f *directFlight) wait() error {
	<-f.done
	return f.err
}

// directWrite is one direct resync write waiting in a batch: buf (an
// aligned copy of the data, the caller's own aligned memory, or nil for
// zeros) at off, n bytes.
type directWrite struct {
	off, n int64
	buf    *[]byte
	pooled bool   // buf goes back to directBufs
	free   func() // buf is the caller's: free gives it back (WriteDirectBuf)
}

// DirectBatchBytes is how much a direct resync gathers before writing it
// to the target as one batch, its writes at once (several in flight, as
// the page cache would, but past it), while the next batch gathers. The
// writes of a batch are disjoint; at most one batch is in flight.
var DirectBatchBytes int64 = 8 << 20

// directBatchMax is the most writes one batch holds.
const directBatchMax = 16

// directMin is the smallest direct resync write that goes past the page
// cache; smaller ones (the scattered blocks of a hash resync) go through
// it, and the commit's fdatasync writes them out together.
var directMin int64 = 64 << 10

// directBufSize is the size of the pooled aligned copies; larger writes
// get their own.
const directBufSize = 1 << 20

var directBufs = sync.Pool{New: func() any { return alignedBuf(directBufSize) }}

// alignedBuf is n bytes at an address aligned for direct I/O.
func alignedBuf(n int) *[]byte {
	b := make([]byte, n+vfs.DirectBlock)
	k := int(uintptr(unsafe.Pointer(&b[0])) & (vfs.DirectBlock - 1))
	if k != 0 {
		b = b[vfs.DirectBlock-k:]
	}
	b = b[:n]
	return &b
}

var zeroBuf = make([]byte, 4<<20)

// directDrainHook, when set (tests), runs as a stretch of direct writes
// starts, before it waits for the journal to drain.
var directDrainHook func()

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
	return p.writeDirect(ctx, seq, off, t, data, zero, nil)
}

// WriteDirectBuf is WriteDirect for data (never zeros) in memory the
// caller hands over: when it reports true the pair owns data and calls
// free exactly once when done with it (after its write landed, or when
// the write was dropped or failed); data aligned for direct I/O
// (vfs.DirectBlock) is written from that memory, without the copy
// WriteDirect makes. When it reports false, data and free stay the
// caller's.
func (p *Pair) WriteDirectBuf(ctx context.Context, seq uint64, off int64, t time.Time, data []byte, free func()) (bool, error) {
	if free == nil {
		return p.WriteDirect(ctx, seq, off, t, data, false)
	}
	taken := false
	ok, err := p.writeDirect(ctx, seq, off, t, data, false, func() func() {
		taken = true
		return free
	})
	if ok && !taken {
		free() // copied, dropped or refused: the memory is free now
	}
	return ok, err
}

// writeDirect is WriteDirect; own, if not nil, offers the data's memory:
// queueDirect calls it when it keeps data itself rather than a copy, and
// gets the function that gives the memory back.
func (p *Pair) writeDirect(ctx context.Context, seq uint64, off int64, t time.Time, data []byte, zero bool, own func() func()) (bool, error) {
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
	if err := p.queueDirect(off, data, zero, own); err != nil {
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

// queueDirect adds a write to the stretch's batch, as a copy (the
// caller's buffer is free on return), or, when own is offered and data
// is aligned for direct I/O, as data itself (own hands it over): the
// batch gathered so far is
// written out first when the write does not come after all of it (a
// resend after a reconnect may cover a chunk again: writes to one range
// land in order), and the batch starts when full. p.dmu is held. An
// error is a failed target write: the stretch must stop.
func (p *Pair) queueDirect(off int64, data []byte, zero bool, own func() func()) error {
	d := p.dir
	if k := len(d.batch); k > 0 && off < d.batch[k-1].off+d.batch[k-1].n {
		if err := p.flushDirect(true); err != nil {
			return err
		}
	}
	w := directWrite{off: off, n: int64(len(data))}
	switch {
	case zero:
	case own != nil && len(data) > 0 && len(data)%vfs.DirectBlock == 0 &&
		uintptr(unsafe.Pointer(&data[0]))%vfs.DirectBlock == 0:
		w.buf, w.free = &data, own()
	default:
		if len(data) <= directBufSize {
			w.buf, w.pooled = directBufs.Get().(*[]byte), true
		} else {
			w.buf = alignedBuf(len(data))
		}
		copy(*w.buf, data)
	}
	d.batch = append(d.batch, w)
	d.bbytes += w.n
	if d.bbytes >= DirectBatchBytes || len(d.batch) >= directBatchMax {
		return p.flushDirect(false)
	}
	return nil
}

// flushDirect waits for the batch in flight, then starts writing the
// gathered one; with wait it waits for that one too. p.dmu is held.
func (p *Pair) flushDirect(wait bool) error {
	d := p.dir
	if err := d.land(); err != nil {
		return err
	}
	if len(d.batch) > 0 {
		batch := d.batch
		d.batch, d.bbytes = nil, 0
		f := &directFlight{done: make(chan struct{})}
		go func() {
			f.err = p.writeBatch(batch)
			close(f.done)
		}()
		d.flight = f
	}
	if wait {
		return d.land()
	}
	return nil
}

// land waits for the batch in flight, if any, and says how it went.
func (d *direct) land() error {
	if d.flight == nil {
		return nil
	}
	err := d.flight.wait()
	d.flight = nil
	return err
}

// writeBatch writes a batch's disjoint writes to the target all at once,
// the applier held, and gives their buffers back.
func (p *Pair) writeBatch(batch []directWrite) error {
	defer releaseDirect(batch)
	return p.Hold(func(target vfs.File, _ *journal.Store) error {
		errs := make([]error, len(batch))
		var wg sync.WaitGroup
		for i, w := range batch {
			wg.Go(func() { errs[i] = p.writeOne(target, w) })
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// writeOne writes one direct resync write to the target. Zeros are a
// hole where the target can punch one (or the device zeroes the blocks
// itself), else written. Data of directMin or more goes past the page
// cache (O_DIRECT) where the target and the alignment allow: a full copy
// is written once and never read back, and its write-back through the
// page cache would cost a copy and stall the target's other writers.
// Smaller writes go through it: each O_DIRECT write of a block is a
// device round trip of its own (a hash resync's 2621 scattered 4 KiB
// blocks of a GiB took 1.1-1.8 s on a busy machine, against 0.3-1.0 s
// through the page cache and the commit's one fdatasync).
func (p *Pair) writeOne(target vfs.File, w directWrite) error {
	if w.buf == nil {
		if err := vfs.Zero(target, w.off, w.n, zeroBuf); err != nil {
			return &errTarget{"zero", p.cfg.Target, w.off, err}
		}
		return nil
	}
	b := (*w.buf)[:w.n]
	if dw, ok := target.(vfs.DirectWriter); ok && w.n >= directMin && w.off%vfs.DirectBlock == 0 && w.n%vfs.DirectBlock == 0 {
		_, err := dw.WriteDirect(b, w.off)
		if err == nil {
			return nil
		}
		if !errors.Is(err, vfs.ErrNoDirect) {
			return &errTarget{"write", p.cfg.Target, w.off, err}
		}
	}
	if _, err := target.WriteAt(b, w.off); err != nil {
		return &errTarget{"write", p.cfg.Target, w.off, err}
	}
	return nil
}

func releaseDirect(batch []directWrite) {
	for _, w := range batch {
		if w.pooled {
			directBufs.Put(w.buf)
		}
		if w.free != nil {
			w.free()
		}
	}
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
	if directDrainHook != nil {
		directDrainHook()
	}
	if err := p.Drain(ctx); err != nil {
		if p.pausedNow() && !p.failed() {
			// Paused since WriteDirect looked: not an error of the
			// pair, the write is journaled and waits like any other.
			return false, nil
		}
		return true, err
	}
	ok := true
	err := p.Hold(func(_ vfs.File, st *journal.Store) error {
		if p.pausedNow() {
			ok = false // paused after the drain: journaled, it waits
			return nil
		}
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

// pausedNow says whether the pair is paused.
func (p *Pair) pausedNow() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.paused != ""
}

// failed says whether the pair stopped on an error.
func (p *Pair) failed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err != nil
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
	if d := p.dir; d != nil {
		if d.timer != nil {
			d.timer.Stop()
		}
		// No write of the stretch lands after it ends; what was only
		// gathered is dropped (never acknowledged, it is sent again).
		d.land()
		releaseDirect(d.batch)
		d.batch = nil
	}
	p.dir = nil
}

// commitDirect makes the stretch's writes durable and applied: target
// fdatasync, catalogue commit, journal skip (the ack). p.dmu is held. It
// first waits for the commit in flight; then, unless wait, it starts the
// gathered writes and the next commit, which waits for them to land
// before its fdatasync, and returns: the writes that follow are taken
// meanwhile. With wait, it returns once the commit is done.
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
	// What the commit covers is on the target first: with wait, here;
	// else in the commit, which waits for the batch it starts here (the
	// batches before it have landed: one is in flight at a time).
	if err := p.flushDirect(wait); err != nil {
		p.failDirect(err)
		return fmt.Errorf("pair %s: %w", p.cfg.ID, err)
	}
	if d.last < p.log.Next() {
		return nil // nothing written since the last commit
	}
	c := journal.Commit{Applied: d.last, AppliedTime: d.lastTime, Accuracy: journal.NotGuaranteed, FirstTime: d.first}
	n := d.bytes
	d.bytes = 0
	landed := d.flight
	busy := make(chan error, 1)
	go func() {
		if landed != nil {
			if err := landed.wait(); err != nil {
				busy <- err
				return
			}
		}
		busy <- p.commitDirectRun(c, n)
	}()
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
