package recovery

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// span is a half-open byte range [off, end).
type span struct{ off, end int64 }

// coverage is a set of byte ranges, kept sorted and merged.
type coverage struct{ s []span }

// gaps returns the parts of [off, end) not yet covered, then covers it.
func (c *coverage) gaps(off, end int64) []span {
	var out []span
	i := sort.Search(len(c.s), func(i int) bool { return c.s[i].end > off })
	pos := off
	j := i
	for ; j < len(c.s) && c.s[j].off < end; j++ {
		if c.s[j].off > pos {
			out = append(out, span{pos, c.s[j].off})
		}
		pos = max(pos, c.s[j].end)
	}
	if pos < end {
		out = append(out, span{pos, end})
	}
	// merge [off,end) with s[i:j] and touching neighbours
	lo, hi := off, end
	if i < j {
		lo, hi = min(lo, c.s[i].off), max(hi, c.s[j-1].end)
	}
	if i > 0 && c.s[i-1].end == lo {
		i--
		lo = c.s[i].off
	}
	if j < len(c.s) && c.s[j].off == hi {
		hi = c.s[j].end
		j++
	}
	c.s = slices.Replace(c.s, i, j, span{lo, hi}) // in place: no copy of the tail allocated
	return out
}

// Overlay writes before-images onto a file so that it ends at the state
// before the first record given: fed records in ascending sequence, the
// oldest before-image of every byte wins, and every byte is written once.
// Writes run Parallel at a time. Close flushes and reports the first error.
type Overlay struct {
	dst     vfs.File
	cov     coverage
	work    chan job
	wg      sync.WaitGroup
	mu      sync.Mutex
	err     error
	Written int64 // bytes written
	ctx     context.Context
}

type job struct {
	off  int64
	data []byte
}

// NewOverlay starts an overlay onto dst with n writers.
func NewOverlay(ctx context.Context, dst vfs.File, n int) *Overlay {
	o := &Overlay{dst: dst, work: make(chan job, 2*n), ctx: ctx}
	for range n {
		o.wg.Add(1)
		go func() {
			defer o.wg.Done()
			for j := range o.work {
				if o.failed() {
					continue
				}
				if _, err := dst.WriteAt(j.data, j.off); err != nil {
					o.fail(fmt.Errorf("write %s at offset %d: %w", dst.Name(), j.off, err))
				}
			}
		}()
	}
	return o
}

func (o *Overlay) failed() bool { o.mu.Lock(); defer o.mu.Unlock(); return o.err != nil }

func (o *Overlay) fail(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.mu.Unlock()
}

// Add overlays one before-image. r.Data must stay unchanged until Close
// (the store's and the journal's readers never reuse their buffers).
func (o *Overlay) Add(r *journal.Record) error {
	if err := o.ctx.Err(); err != nil {
		o.fail(err)
	}
	if o.failed() {
		return o.Err()
	}
	for _, g := range o.cov.gaps(r.Offset, r.Offset+int64(len(r.Data))) {
		b := r.Data[g.off-r.Offset : g.end-r.Offset]
		o.work <- job{off: g.off, data: b}
		o.Written += int64(len(b))
	}
	return nil
}

// Err is the first error seen.
func (o *Overlay) Err() error { o.mu.Lock(); defer o.mu.Unlock(); return o.err }

// Close waits for the writes and returns the first error.
func (o *Overlay) Close() error {
	close(o.work)
	o.wg.Wait()
	return o.Err()
}
