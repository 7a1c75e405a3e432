package recovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// View is the disk as it was at a point, read in place: every byte that
// a before-image after the point covers comes from the oldest such
// before-image in the retention store, every other byte from the live
// target. Nothing is copied when it opens; it plans the undo log once
// (as an export does), pins the segments it reads (journal.Pin) and
// watches the before-images the applier appends from then on
// (journal.Store.WatchAppends): a block the applier overwrites after the
// view opened is told to the view, with the place of its before-image,
// before the target is written, and from then on read from there. So
// the view stays exact while the pair keeps applying.
//
// A read takes the target first and the before-images appended since the
// open after it: a target read that met a new write finds that write's
// before-image registered already (it was registered before the write),
// and a read that did not meet it finds the same bytes either way.
type View struct {
	st     *journal.Store
	target io.ReaderAt
	size   int64
	point  Resolved
	pieces []piece // planned at open: sorted, disjoint, never changed
	pin    *journal.Pin
	stop   func()

	mu     sync.Mutex
	cov    coverage // what pieces, late and recent cover
	late   []piece  // appended after the open: sorted, disjoint
	recent []piece  // appended after the open, not yet merged into late
	closed bool

	segMu sync.Mutex
	segs  map[uint64]vfs.File

	// advised is where the read-ahead of the planned pieces has been
	// asked up to (raMu): a reader going forward has the before-images
	// of the next stretch asked of the kernel ahead of it.
	raMu    sync.Mutex
	advised int64

	Records int // before-images planned at open
}

// ErrViewClosed is a read of a closed view.
var ErrViewClosed = errors.New("view closed")

// OpenView opens the view of point r of st over target (size bytes).
// It must run while nothing is staged on the target past the applied
// position (inside writer.Pair.Hold, or with no applier): the plan reads
// the undo log up to the applied position. why names the view in the
// pin (where pruning is held back).
func OpenView(ctx context.Context, st *journal.Store, target io.ReaderAt, size int64, r Resolved, why string) (*View, error) {
	if e, _ := st.Earliest(); r.Seq < e {
		return nil, fmt.Errorf("%w: sequence %d is before the retention window, which begins at sequence %d", ErrNoPoint, r.Seq, e)
	}
	applied := st.State().Applied
	if r.Seq > applied {
		return nil, fmt.Errorf("%w: sequence %d is past the applied position %d", ErrNoPoint, r.Seq, applied)
	}
	// A point sparse retention compacted away has lost the before-images
	// between it and the kept point after it: refused, as an export is.
	if err := st.Reachable(r.Seq); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoPoint, err)
	}
	v := &View{st: st, target: target, size: size, point: r, segs: map[uint64]vfs.File{}}
	v.pin = st.Pin(r.Seq, why)
	pieces, records, err := plan(ctx, st, r.Seq, applied)
	if err != nil {
		v.pin.Release()
		return nil, err
	}
	v.Records = records
	for _, p := range pieces {
		if p.off+p.n > size {
			v.pin.Release()
			return nil, fmt.Errorf("a before-image at offset %d (%d bytes) lies past the end of the target (%d bytes)", p.off, p.n, size)
		}
	}
	v.pieces = pieces
	for _, p := range pieces {
		v.cov.gaps(p.off, p.off+p.n) // ascending: each appends at the end
	}
	v.stop = st.WatchAppends(v.appended)
	return v, nil
}

// Point is the point the view shows.
func (v *View) Point() Resolved { return v.point }

// Size is the disk's size.
func (v *View) Size() int64 { return v.size }

// Late is how many stretches the view has taken from before-images
// appended since it opened.
func (v *View) Late() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.late) + len(v.recent)
}

// appended registers a before-image the applier appended (the store's
// lock is held): the parts no earlier before-image covers are read from
// it from now on.
func (v *View) appended(r *journal.Record, seg uint64, off int64) {
	if r.Seq <= v.point.Seq || len(r.Data) == 0 {
		return
	}
	zero := r.Flags&journal.FlagZero != 0
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, g := range v.cov.gaps(r.Offset, r.Offset+int64(len(r.Data))) {
		v.recent = append(v.recent, piece{off: g.off, n: g.end - g.off, seg: seg, segOff: off + g.off - r.Offset, zero: zero})
	}
	if len(v.recent) >= 512 {
		v.mergeLocked()
	}
}

func (v *View) mergeLocked() {
	slices.SortFunc(v.recent, func(a, b piece) int { return int(a.off - b.off) })
	merged := make([]piece, 0, len(v.late)+len(v.recent))
	i, j := 0, 0
	for i < len(v.late) || j < len(v.recent) {
		if j == len(v.recent) || i < len(v.late) && v.late[i].off < v.recent[j].off {
			merged = append(merged, v.late[i])
			i++
		} else {
			merged = append(merged, v.recent[j])
			j++
		}
	}
	v.late, v.recent = merged, v.recent[:0]
}

// ReadAt reads the disk as it was at the point.
func (v *View) ReadAt(b []byte, off int64) (int, error) {
	end := off + int64(len(b))
	if off < 0 || end > v.size {
		return 0, fmt.Errorf("read of %d bytes at offset %d: the disk has %d bytes", len(b), off, v.size)
	}
	v.mu.Lock()
	closed := v.closed
	v.mu.Unlock()
	if closed {
		return 0, ErrViewClosed
	}
	// 1. the target between the planned pieces, the pieces from the
	// store: before-images of a churned disk lie all over the undo
	// segments, so the reads of one request run side by side.
	var tasks []func() error
	pos := off
	i := sort.Search(len(v.pieces), func(i int) bool { return v.pieces[i].off+v.pieces[i].n > off })
	for ; i < len(v.pieces) && v.pieces[i].off < end; i++ {
		p := &v.pieces[i]
		if p.off > pos {
			dst, at := b[pos-off:p.off-off], pos
			tasks = append(tasks, func() error { return v.readTarget(dst, at) })
		}
		s, e := max(p.off, off), min(p.off+p.n, end)
		dst := b[s-off : e-off]
		tasks = append(tasks, func() error { return v.fill(p, dst, s) })
		pos = e
	}
	if pos < end {
		dst, at := b[pos-off:], pos
		tasks = append(tasks, func() error { return v.readTarget(dst, at) })
	}
	v.readAhead(off, end)
	if err := runAll(tasks, viewReaders); err != nil {
		return 0, err
	}
	// 2. the before-images appended since the open, over the target
	var late []piece
	v.mu.Lock()
	k := sort.Search(len(v.late), func(i int) bool { return v.late[i].off+v.late[i].n > off })
	for ; k < len(v.late) && v.late[k].off < end; k++ {
		late = append(late, v.late[k])
	}
	for _, p := range v.recent {
		if p.off < end && p.off+p.n > off {
			late = append(late, p)
		}
	}
	v.mu.Unlock()
	for i := range late {
		p := &late[i]
		s, e := max(p.off, off), min(p.off+p.n, end)
		if err := v.fill(p, b[s-off:e-off], s); err != nil {
			return 0, err
		}
	}
	return len(b), nil
}

// viewReadAhead is how far past a forward read the before-images it will
// need, and the stretches of the target between them, are asked of the
// kernel (fadvise WILLNEED): the before-images lie scattered over the
// undo log, and the target's stretches have holes that defeat the
// kernel's own read-ahead (each read starts past where the last ended,
// so it reads each one alone, when asked, and waits). Asked early they
// are read in the background, in the order the disk likes, while the
// client works through the stretch before them: a forward reader's reads
// find their pages in the page cache. Nothing is held by the process:
// at most viewReadAhead of image (32 MiB) is asked ahead per view, and
// the page cache holds it as the kernel likes.
var viewReadAhead = int64(32 << 20)

// readAhead asks the kernel for the before-images planned in the stretch
// after [off, end), and for the target between them, when the read goes
// on from where the last one asked.
func (v *View) readAhead(off, end int64) {
	if viewReadAhead <= 0 {
		return
	}
	v.raMu.Lock()
	from := max(v.advised, end)
	if off > v.advised || from >= end+viewReadAhead {
		// a jump (not a forward reader), or asked far enough already
		if off > v.advised {
			v.advised = end
		}
		v.raMu.Unlock()
		return
	}
	to := min(end+viewReadAhead, v.size)
	v.advised = to
	v.raMu.Unlock()
	tfd := -1
	if o, ok := v.target.(osFiler); ok {
		tfd = int(o.OSFile().Fd())
	}
	// the target between the pieces, in runs: a covered stretch shorter
	// than viewTargetMerge is read through (one larger read beats two)
	var runOff, runEnd int64 = from, from
	target := func(off, end int64) {
		if tfd < 0 || end <= off {
			return
		}
		if off-runEnd > viewTargetMerge {
			if runEnd > runOff {
				unix.Fadvise(tfd, runOff, runEnd-runOff, unix.FADV_WILLNEED)
			}
			runOff = off
		}
		runEnd = end
	}
	pos := from
	i := sort.Search(len(v.pieces), func(i int) bool { return v.pieces[i].off+v.pieces[i].n > from })
	for ; i < len(v.pieces) && v.pieces[i].off < to; i++ {
		p := &v.pieces[i]
		target(pos, p.off)
		pos = p.off + p.n
		if p.zero || p.mem != nil {
			continue
		}
		f, err := v.segment(p.seg)
		if err != nil {
			return
		}
		if o, ok := f.(osFiler); ok {
			unix.Fadvise(int(o.OSFile().Fd()), p.segOff, p.n, unix.FADV_WILLNEED)
		}
	}
	target(pos, to)
	if tfd >= 0 && runEnd > runOff {
		unix.Fadvise(tfd, runOff, runEnd-runOff, unix.FADV_WILLNEED)
	}
}

// viewTargetMerge is the longest stretch of the target covered by
// before-images that the read-ahead of the target reads through.
var viewTargetMerge = int64(128 << 10)

// viewReaders bounds the reads one view request runs side by side.
var viewReaders = 16

// runAll runs tasks, up to n at a time, and returns the first error.
func runAll(tasks []func() error, n int) error {
	if len(tasks) <= 1 || n <= 1 {
		for _, t := range tasks {
			if err := t(); err != nil {
				return err
			}
		}
		return nil
	}
	n = min(n, len(tasks))
	next := make(chan func() error)
	errs := make(chan error, n)
	for range n {
		go func() {
			var first error
			for t := range next {
				if first == nil {
					first = t()
				}
			}
			errs <- first
		}()
	}
	for _, t := range tasks {
		next <- t
	}
	close(next)
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (v *View) readTarget(b []byte, off int64) error {
	if err := vfs.ReadFull(v.target, b, off); err != nil {
		return fmt.Errorf("target at offset %d: %w", off, err)
	}
	return nil
}

// fill reads into b the part of piece p that begins at image offset at.
func (v *View) fill(p *piece, b []byte, at int64) error {
	switch {
	case p.zero:
		clear(b)
		return nil
	case p.mem != nil:
		copy(b, p.mem[at-p.off:])
		return nil
	}
	f, err := v.segment(p.seg)
	if err != nil {
		return err
	}
	if err := vfs.ReadFull(f, b, p.segOff+at-p.off); err != nil {
		return fmt.Errorf("retention segment %d at offset %d: %w", p.seg, p.segOff+at-p.off, err)
	}
	return nil
}

func (v *View) segment(idx uint64) (vfs.File, error) {
	v.segMu.Lock()
	defer v.segMu.Unlock()
	if v.segs == nil {
		return nil, ErrViewClosed // a read that raced Close
	}
	if f := v.segs[idx]; f != nil {
		return f, nil
	}
	f, err := v.st.OpenSegment(idx)
	if err != nil {
		return nil, fmt.Errorf("retention segment %d: %w", idx, err)
	}
	v.segs[idx] = f
	return f, nil
}

// Close stops watching, releases the pin and closes the segments. The
// target is not closed: it belongs to the pair.
func (v *View) Close() error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.mu.Unlock()
	v.stop()
	v.pin.Release()
	v.segMu.Lock()
	defer v.segMu.Unlock()
	var errs []error
	for _, f := range v.segs {
		errs = append(errs, f.Close())
	}
	v.segs = nil
	return errors.Join(errs...)
}
