package writer

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// errTarget wraps an I/O error on the target with its device and offset.
type errTarget struct {
	op  string
	dev string
	off int64
	err error
}

func (e *errTarget) Error() string {
	if e.off < 0 {
		return fmt.Sprintf("target %s: %s: %v", e.dev, e.op, e.err)
	}
	return fmt.Sprintf("target %s: %s at offset %d: %v", e.dev, e.op, e.off, e.err)
}
func (e *errTarget) Unwrap() error { return e.err }

// errRetention wraps an I/O error of the retention store.
type errRetention struct{ err error }

func (e *errRetention) Error() string { return "retention: " + e.err.Error() }
func (e *errRetention) Unwrap() error { return e.err }

// pending is the batches staged on the target since the last commit.
type pending struct {
	n        int
	c        journal.Commit
	bytes    int64
	retained int64 // before-image bytes written (not those kept as a zero length)
	since    time.Time
}

func (q *pending) due(now time.Time, bytes int64, interval time.Duration) bool {
	return q.n > 0 && (q.bytes >= bytes || now.Sub(q.since) >= interval)
}

// flight is a staged batch whose target writes run while the applier
// captures the next batch's before-images (stage, settle).
type flight struct {
	batch   []journal.Record
	writes  []int // indexes of batch's writes
	done    chan struct{}
	err     error  // set before done is closed
	release func() // lets the journal reuse the batch's buffers
}

func batchAccuracy(batch []journal.Record) journal.Accuracy {
	for i := range batch {
		if batch[i].Type == journal.TypeWrite {
			if batch[i].Flags&journal.FlagResync != 0 {
				return journal.NotGuaranteed
			}
			return journal.Exact
		}
	}
	return ""
}

// stage moves one batch from the journal to the target:
//
//	read before-images → append them to retention → fdatasync retention →
//	wait for the batch before's target writes → start the target writes
//
// and commit, every CommitBytes or CommitInterval or when the applier is
// idle, makes the staged batches the applied position:
//
//	wait for the target writes → fdatasync the target → commit the
//	catalogue → trim the journal
//
// (on a goroutine of its own beside the next batch's stage, but for the
// trim: commitAsync).
//
// The batch's target writes run in the background (p.fly) while the
// applier reads the next batch and captures its before-images: where
// the next batch overlaps a write still in flight, its before-image is
// taken from that write's data (what the target holds once it lands),
// elsewhere from the target, which no write in flight touches. At most
// one batch is in flight. release is called once the batch's writes are
// done with its data.
//
// Invariant 2: a before-image is durable before its write reaches the
// target, and the applied position is persisted only after both. A crash
// between the two leaves before-images past the applied position, from
// which OpenPair puts the target back (the earliest before-image of each
// byte: the one of the first write past the applied position).
func (p *Pair) stage(batch []journal.Record, release func()) error {
	acc := batchAccuracy(batch)
	if acc != "" && p.pend.n > 0 && p.pend.c.Accuracy != acc {
		// a range of other accuracy begins: close the current one
		if err := p.commit(); err != nil {
			return err
		}
	}
	if p.pend.n == 0 {
		at := p.store.State().AppliedTime
		if p.cm != nil {
			at = p.cm.c.AppliedTime // the commit running is the state before
		}
		p.pend = pending{since: p.o.Now(), c: journal.Commit{AppliedTime: at, Accuracy: journal.Exact}}
	}
	if acc != "" {
		p.pend.c.Accuracy = acc
	}
	var writes []int
	total := 0
	for i := range batch {
		if batch[i].Type == journal.TypeWrite {
			writes = append(writes, i)
			total += len(batch[i].Data)
		}
	}
	if len(writes) > 0 {
		if cap(p.undoBuf) < total {
			p.undoBuf = make([]byte, total)
		}
		block := p.undoBuf[:total]
		undo := make([]journal.Record, len(writes))
		pos := 0
		for k, i := range writes {
			w := &batch[i]
			undo[k] = journal.Record{Type: journal.TypeUndo, Seq: w.Seq, Offset: w.Offset, Time: w.Time, Data: block[pos : pos+len(w.Data)]}
			pos += len(w.Data)
		}
		err := p.parallel(len(writes), p.o.Parallel, func(k int) error {
			u := &undo[k]
			if _, err := p.target.ReadAt(u.Data, u.Offset); err != nil {
				return &errTarget{"read", p.cfg.Target, u.Offset, err}
			}
			return nil
		})
		if err != nil {
			return err
		}
		// A before-image is the target as the write found it: the writes
		// of the batch in flight, and earlier writes of the same batch,
		// that overlap it are part of that.
		if f := p.fly; f != nil {
			for k := range undo {
				u := &undo[k]
				for _, j := range f.writes {
					w := &f.batch[j]
					lo, hi := max(u.Offset, w.Offset), min(u.Offset+int64(len(u.Data)), w.Offset+int64(len(w.Data)))
					if lo < hi {
						copy(u.Data[lo-u.Offset:hi-u.Offset], w.Data[lo-w.Offset:hi-w.Offset])
					}
				}
			}
		}
		overlap := false
		for k := 1; k < len(writes); k++ {
			u := &undo[k]
			for j := 0; j < k; j++ {
				w := &batch[writes[j]]
				lo, hi := max(u.Offset, w.Offset), min(u.Offset+int64(len(u.Data)), w.Offset+int64(len(w.Data)))
				if lo < hi {
					copy(u.Data[lo-u.Offset:hi-u.Offset], w.Data[lo-w.Offset:hi-w.Offset])
					overlap = true
				}
			}
		}
		// A before-image of zeros (a hole, a target never written) is
		// kept as its length.
		for k := range undo {
			if journal.IsZero(undo[k].Data) {
				undo[k].Flags |= journal.FlagZero
			} else {
				p.pend.retained += int64(len(undo[k].Data))
			}
		}
		if err := p.store.Append(undo); err != nil {
			return &errRetention{err}
		}
		if err := p.store.Sync(); err != nil {
			return &errRetention{err}
		}
		// The batch before lands first: the writes of both may overlap.
		if err := p.settle(); err != nil {
			return err
		}
		write := func(k int) error {
			w := &batch[writes[k]]
			if _, err := p.target.WriteAt(w.Data, w.Offset); err != nil {
				return &errTarget{"write", p.cfg.Target, w.Offset, err}
			}
			return nil
		}
		writers := max(p.o.Parallel/4, 1)
		if overlap {
			writers = 1 // overlapping writes land in order
		}
		f := &flight{batch: batch, writes: writes, done: make(chan struct{}), release: release}
		p.fly = f
		go func() {
			f.err = p.parallel(len(writes), writers, write)
			close(f.done)
		}()
		if p.pend.c.FirstTime.IsZero() {
			p.pend.c.FirstTime = batch[writes[0]].Time
		}
		for _, k := range writes {
			p.pend.bytes += int64(len(batch[k].Data))
			p.pend.c.AppliedTime = batch[k].Time
		}
	}
	for i := range batch {
		if t := batch[i].Tag; t != nil {
			p.pend.c.Tags = append(p.pend.c.Tags, journal.Tag{Seq: batch[i].Seq, Time: t.Time, Name: t.Name, App: t.App, ID: t.ID, Accuracy: p.pend.c.Accuracy})
		}
	}
	if len(writes) == 0 && release != nil {
		if p.fly != nil {
			p.fly.release = chain(p.fly.release, release)
		} else {
			release()
		}
	}
	p.pend.c.Applied = batch[len(batch)-1].Seq
	p.pend.n++
	return nil
}

// chain is a then b.
func chain(a, b func()) func() {
	if a == nil {
		return b
	}
	return func() { a(); b() }
}

// settle waits for the target writes in flight and returns their error.
// The batch's journal buffers are released only after writes that
// succeeded: after an error the applier reads the journal again anyway.
func (p *Pair) settle() error {
	f := p.fly
	if f == nil {
		return nil
	}
	<-f.done
	p.fly = nil
	if f.err != nil {
		return f.err
	}
	if f.release != nil {
		f.release()
	}
	return nil
}

// committing is a commit running beside the applier (commitAsync): the
// target's fdatasync, then the catalogue commit of what was staged up to
// its start.
type committing struct {
	c               journal.Commit
	bytes, retained int64
	done            chan struct{}
	err             error // set before done is closed
}

// commit makes the staged batches durable on the target and records the
// new applied position, and returns once it has.
func (p *Pair) commit() error {
	if err := p.settle(); err != nil {
		return err
	}
	if err := p.commitAsync(); err != nil {
		return err
	}
	return p.finishCommit()
}

// commitAsync starts the commit of the staged batches: once their target
// writes have landed, the target's fdatasync and the catalogue commit run
// on a goroutine of their own while the applier stages the next batch
// (finishCommit waits for it). What the next batch appends to the
// retention store meanwhile is not part of this commit (Store.Staged),
// and its target writes start only once its before-images are durable,
// as ever: a crash before the catalogue commit leaves both batches'
// before-images past the applied position, and OpenPair puts the target
// back from them. At most one commit runs at a time.
func (p *Pair) commitAsync() error {
	if err := p.finishCommit(); err != nil {
		return err
	}
	if p.pend.n == 0 {
		return nil
	}
	cm := &committing{c: p.pend.c, bytes: p.pend.bytes, retained: p.pend.retained, done: make(chan struct{})}
	at := p.store.Staged()
	p.pend = pending{}
	p.cm = cm
	f := p.fly // the last staged batch's writes, maybe still running
	go func() {
		defer close(cm.done)
		if f != nil {
			<-f.done
			if f.err != nil {
				cm.err = f.err
				return
			}
		}
		if err := p.target.Sync(); err != nil {
			cm.err = &errTarget{"fdatasync", p.cfg.Target, -1, err}
			return
		}
		if err := p.store.CommitStaged(cm.c, at); err != nil {
			cm.err = &errRetention{err}
		}
	}()
	return nil
}

// committed reports whether no commit is running (finishCommit would not
// wait).
func (p *Pair) committed() bool {
	if p.cm == nil {
		return true
	}
	select {
	case <-p.cm.done:
		return true
	default:
		return false
	}
}

// finishCommit waits for the commit running, if any, and does what
// follows it in the applier: the counters, the journal's trim, the tag
// events and the retention policy. Nothing may read the journal
// meanwhile (the trim).
func (p *Pair) finishCommit() error {
	cm := p.cm
	if cm == nil {
		return nil
	}
	<-cm.done
	p.cm = nil
	if cm.err != nil {
		return cm.err
	}
	c, bytes, retained := cm.c, cm.bytes, cm.retained
	now := p.o.Now()
	p.mu.Lock()
	p.applied += bytes
	p.retained += retained
	p.rate.add(now, bytes)
	p.mu.Unlock()
	if err := p.log.Trim(c.Applied); err != nil {
		p.o.Logger.Warn("journal trim failed", "pair", p.cfg.ID, "err", err)
	}
	for _, t := range c.Tags {
		p.event(EventTag, slog.LevelInfo, fmt.Sprintf("tag %s (%s) applied at sequence %d", t.Name, t.App, t.Seq))
	}
	p.enforcePolicy(now)
	p.checkRPO()
	return nil
}

// parallel runs fn(0..n-1) on up to workers goroutines and returns the
// first error.
func (p *Pair) parallel(n, workers int, fn func(int) error) error {
	workers = min(workers, n)
	if workers <= 1 {
		for i := range n {
			if err := fn(i); err != nil {
				return err
			}
		}
		return nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return first
}

// handleApplyError decides what a failed batch does to the pair, and
// reports whether the batch should be tried again.
func (p *Pair) handleApplyError(err error) bool {
	// Nothing may still be writing the target while it is put back or
	// left to a restart, nor committing: the commit running may fail
	// too, or move the applied position the target is put back to.
	p.settle()
	if cerr := p.finishCommit(); cerr != nil {
		var re *errRetention
		if !errors.As(cerr, &re) || !errors.Is(cerr, syscall.ENOSPC) {
			err = cerr
		}
	}
	var re *errRetention
	if errors.As(err, &re) && errors.Is(err, syscall.ENOSPC) {
		// Put the target back to the applied position and forget what
		// was staged, as OpenPair does after a crash; then retry.
		if _, _, _, derr := p.undoStaged(); derr != nil {
			p.setError(fmt.Errorf("%w (and undoing the staged batches: %v)", err, derr))
			return false
		}
		if p.store.Policy().OnFull == journal.Purge {
			res, perr := p.store.Prune(journal.PruneOptions{Max: 1})
			if perr == nil && res.Segments > 0 {
				p.event(EventAlert, slog.LevelWarn, fmt.Sprintf("retention volume full: purged %d oldest segment(s), %s; recoverable from %s",
					res.Segments, mb(res.Bytes), res.EarliestTime.UTC().Format(time.RFC3339)))
				return true
			}
			p.pauseForSpace("retention volume full and nothing left to purge")
			return true
		}
		p.pauseForSpace("retention volume full (policy: pause)")
		return true
	}
	p.pend = pending{}
	// Invariant 5: no retry after an I/O or fsync error on the journal,
	// the retention store or the target; the pair restarts from disk.
	p.setError(err)
	return false
}

func (p *Pair) pauseForSpace(reason string) {
	p.mu.Lock()
	p.paused, p.spacePause = reason, true
	p.mu.Unlock()
	p.event(EventAlert, slog.LevelWarn, "paused: "+reason)
	if err := p.store.SetState(journal.StatePaused, reason, 0); err != nil {
		p.o.Logger.Warn("cannot record pause", "pair", p.cfg.ID, "err", err)
	}
}

// enforcePolicy prunes by window and size cap after a commit.
func (p *Pair) enforcePolicy(now time.Time) {
	pol := p.store.Policy()
	po := journal.PruneOptions{Now: now}
	if pol.Window > 0 {
		po.Before = now.Add(-pol.Window)
	}
	over := pol.SizeCap > 0 && p.store.Used() > pol.SizeCap
	if over && pol.OnFull == journal.Purge {
		po.ToSize = pol.SizeCap
	}
	res, err := p.store.Prune(po)
	if err != nil {
		p.setError(&errRetention{err})
		return
	}
	if res.Segments > 0 && po.ToSize > 0 {
		p.event(EventAlert, slog.LevelWarn, fmt.Sprintf("retention size cap %s reached: purged %d oldest segment(s); recoverable from %s",
			mb(pol.SizeCap), res.Segments, res.EarliestTime.UTC().Format(time.RFC3339)))
	}
	if res.HeldBy != p.heldBy {
		if res.HeldBy != "" {
			p.event(EventAlert, slog.LevelWarn, "pruning held back by "+res.HeldBy+": its before-images stay until it is closed")
		}
		p.heldBy = res.HeldBy
	}
	if res.BlockedBy != nil {
		p.event(EventAlert, slog.LevelWarn, fmt.Sprintf("pruning held back by locked tag %s", res.BlockedBy.Name))
	}
	if over && pol.OnFull == journal.Pause && p.store.Used() > pol.SizeCap {
		p.pauseForSpace(fmt.Sprintf("retention size cap %s reached (policy: pause)", mb(pol.SizeCap)))
	}
}

func mb(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}

// rate is a throughput estimate over the last few seconds.
type rate struct {
	start time.Time
	bytes int64
	bps   float64
}

func (r *rate) add(now time.Time, n int64) {
	if r.start.IsZero() {
		r.start = now
	}
	r.bytes += n
	if d := now.Sub(r.start); d >= time.Second {
		r.bps = float64(r.bytes) / d.Seconds()
		r.start, r.bytes = now, 0
	}
}

func (r *rate) get(now time.Time) float64 {
	if !r.start.IsZero() && now.Sub(r.start) > 5*time.Second {
		return 0
	}
	return r.bps
}
