package recovery

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// piece is a stretch of a point's image that comes from a before-image:
// n bytes at image offset off, found in undo segment seg at segOff, or in
// mem (a before-image past the applied position), or zeros (a
// before-image kept as its length).
type piece struct {
	off, n int64
	seg    uint64
	segOff int64
	mem    []byte
	zero   bool
}

// plan reads the undo log forward from after to upto, the applied
// position, and returns, sorted by offset and disjoint, the pieces that
// differ from the current target: for every byte the oldest before-image
// after the point wins. Adjacent stretches of one before-image are one
// piece.
//
// It also takes the before-images past the applied position that a
// writer stopped in the middle of a batch left (a crash, a failed
// commit): their writes may be on the target already. Each is the
// target's content at the applied position, so it is right whether its
// write landed or not; without them an image would hold those writes.
func plan(ctx context.Context, st *journal.Store, after, upto uint64) ([]piece, int, error) {
	// The undo log is read in parts, side by side, split at segment
	// boundaries: reading and checking it is most of a plan, and a
	// part's reads go on while another's wait for the disk. The parts
	// are joined in order, so ages run as in one forward read.
	segs := st.Segments()
	bounds := planSplit(segs, after, upto, planParts)
	for i := range len(bounds) - 1 {
		prefetch(st, segs, bounds[i], bounds[i+1], planPrefetch)
	}
	parts := make([]planPart, len(bounds)-1)
	var wg sync.WaitGroup
	for i := range parts {
		wg.Go(func() { parts[i] = planRead(ctx, st, bounds[i], bounds[i+1]) })
	}
	wg.Wait()
	var ivs []interval
	records := 0
	for _, pt := range parts {
		records += pt.records
		if pt.err != nil {
			return nil, records, pt.err // the oldest damage first
		}
	}
	for _, pt := range parts {
		for _, iv := range pt.ivs {
			iv.age = len(ivs)
			ivs = append(ivs, iv)
		}
	}
	staged, err := st.Uncommitted()
	if err != nil {
		return nil, records, fmt.Errorf("before-images past the applied position %d: %w", upto, err)
	}
	for i := range staged {
		r := &staged[i]
		if r.Seq <= after {
			continue
		}
		records++
		if len(r.Data) > 0 {
			ivs = append(ivs, interval{off: r.Offset, end: r.Offset + int64(len(r.Data)), age: len(ivs), mem: r.Data, zero: r.Flags&journal.FlagZero != 0})
		}
	}
	return oldestWins(ivs), records, nil
}

// planParts is how many parts of the undo log a plan reads side by side.
var planParts = 2

// planMinBytes is the least a part of a plan reads: a small log is read
// in one part. A variable for the tests.
var planMinBytes int64 = 32 << 20

// planSplit cuts (after, upto] into at most n parts of about equal bytes
// of undo log, at segment boundaries: n+1 bounds at most, the first after
// and the last upto.
func planSplit(segs []journal.SegmentInfo, after, upto uint64, n int) []uint64 {
	var in []journal.SegmentInfo
	var total int64
	for _, g := range segs {
		if g.LastSeq <= after || g.FirstSeq > upto || g.FirstSeq == 0 {
			continue
		}
		in = append(in, g)
		total += g.Bytes
	}
	bounds := []uint64{after}
	if n > 1 && total >= 2*planMinBytes {
		per := total / int64(n)
		var acc int64
		for _, g := range in[:max(len(in)-1, 0)] {
			acc += g.Bytes
			if acc >= per*int64(len(bounds)) && len(bounds) < n && g.LastSeq > bounds[len(bounds)-1] && g.LastSeq < upto {
				bounds = append(bounds, g.LastSeq)
			}
		}
	}
	return append(bounds, upto)
}

// planPrefetch is how much of each part of a plan is asked for ahead.
const planPrefetch = 512 << 20

// prefetch asks the kernel to read ahead (posix_fadvise WILLNEED) the
// first limit bytes of the undo segments of (after, upto]: the undo log
// is written past the page cache, and the kernel's read-ahead of a
// stretch at once keeps the disk busier than the plan's reads one after
// another. The limit keeps a long log from pushing its own start out of
// the cache before the plan reads it. Only a hint: files without a
// descriptor, and failures, are passed over.
func prefetch(st *journal.Store, segs []journal.SegmentInfo, after, upto uint64, limit int64) {
	for _, g := range segs {
		if g.LastSeq <= after || g.FirstSeq > upto || g.FirstSeq == 0 {
			continue
		}
		if limit <= 0 {
			return
		}
		f, err := st.OpenSegment(g.Index)
		if err != nil {
			continue // the plan reports it
		}
		n := min(g.Bytes, limit)
		if o, ok := f.(osFiler); ok {
			_ = unix.Fadvise(int(o.OSFile().Fd()), 0, n, unix.FADV_WILLNEED)
		}
		f.Close()
		limit -= n
	}
}

// planPart is what one part of a plan read: its before-images in order
// (ages not yet set), the records read, and the damage or error that
// stopped it.
type planPart struct {
	ivs     []interval
	records int
	err     error
}

// planRead reads the before-images of (after, upto].
func planRead(ctx context.Context, st *journal.Store, after, upto uint64) planPart {
	var pt planPart
	pt.err = st.UndoSpans(after, upto, func(r *journal.Record, seg uint64, off int64) error {
		if pt.records++; pt.records%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if len(r.Data) > 0 {
			pt.ivs = append(pt.ivs, interval{off: r.Offset, end: r.Offset + int64(len(r.Data)), seg: seg, segOff: off, zero: r.Flags&journal.FlagZero != 0})
		}
		return nil
	})
	return pt
}

// interval is one before-image: [off, end) of the image, its age (the
// order read: lower is older), where its data lies (undo segment seg at
// file offset segOff, or mem), or zero.
type interval struct {
	off, end int64
	age      int
	seg      uint64
	segOff   int64
	mem      []byte
	zero     bool
}

// piece of [x, y) of iv.
func (iv *interval) piece(x, y int64) piece {
	p := piece{off: x, n: y - x, seg: iv.seg, zero: iv.zero}
	if iv.mem != nil {
		p.mem = iv.mem[x-iv.off : y-iv.off]
	} else {
		p.segOff = iv.segOff + x - iv.off
	}
	return p
}

// oldestWins sweeps the intervals by offset, the active ones in a heap by
// age: between two consecutive boundaries the oldest active one wins.
// O(n log n) in the number of before-images.
func oldestWins(ivs []interval) []piece {
	byOff := make([]*interval, len(ivs))
	pts := make([]int64, 0, 2*len(ivs))
	for i := range ivs {
		byOff[i] = &ivs[i]
		pts = append(pts, ivs[i].off, ivs[i].end)
	}
	sort.Slice(byOff, func(i, j int) bool { return byOff[i].off < byOff[j].off })
	sort.Slice(pts, func(i, j int) bool { return pts[i] < pts[j] })
	pts = slices.Compact(pts)
	var (
		h      ageHeap
		pieces []piece
		last   *interval // the interval the last piece came from
		k      int
	)
	for i := 0; i+1 < len(pts); i++ {
		x, y := pts[i], pts[i+1]
		for ; k < len(byOff) && byOff[k].off <= x; k++ {
			heap.Push(&h, byOff[k])
		}
		for h.Len() > 0 && h[0].end <= x {
			heap.Pop(&h)
		}
		if h.Len() == 0 {
			last = nil
			continue
		}
		w := h[0]
		if n := len(pieces); n > 0 && last == w && pieces[n-1].off+pieces[n-1].n == x {
			pieces[n-1] = w.piece(pieces[n-1].off, y)
			continue
		}
		pieces = append(pieces, w.piece(x, y))
		last = w
	}
	return pieces
}

type ageHeap []*interval

func (h ageHeap) Len() int           { return len(h) }
func (h ageHeap) Less(i, j int) bool { return h[i].age < h[j].age }
func (h ageHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *ageHeap) Push(x any)        { *h = append(*h, x.(*interval)) }
func (h *ageHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// copier writes an image onto dst in ascending offset order. Ranges of
// real files are copied in the kernel (copy_file_range: the data never
// enters user space; a reflink where the file system shares extents);
// everything else (before-images in memory, zeros, files without a
// descriptor) is gathered into one large buffer, adjacent ranges merged,
// and written in runs of up to its size. Each time a window of bytes has
// been written, the write-back of dst up to there is started
// (sync_file_range, beside the copy), so the one fdatasync at the end
// waits for the tail only.
type copier struct {
	ctx    context.Context
	dst    vfs.File
	dfd    int               // dst's descriptor, or -1
	noCopy map[vfs.File]bool // sources copy_file_range refused
	wb     *writeback        // starts write-back, or nil
	dirty  int64             // bytes written since write-back was last started
	buf    []byte
	runOff int64 // dst offset of buf[0]
	runLen int   // bytes pending in buf
	kicked int64 // write-back started below this offset
	done   int64
	prog   func(int64)
}

// runSize is the buffer of merged runs; kickWindow how many bytes are
// written between two starts of write-back. Variables for the tests.
var (
	runSize    = 4 << 20
	kickWindow = int64(16 << 20)
)

func newCopier(ctx context.Context, dst vfs.File, prog func(int64)) *copier {
	c := &copier{ctx: ctx, dst: dst, dfd: -1, prog: prog, noCopy: map[vfs.File]bool{}}
	if d, ok := dst.(osFiler); ok {
		c.dfd = int(d.OSFile().Fd())
		c.wb = startWriteback(c.dfd, dst.Name())
	}
	return c
}

// room makes the pending run end at off with space after it: a run not
// adjacent to off, or full, is written first.
func (c *copier) room(off int64) error {
	if c.runLen > 0 && (c.runOff+int64(c.runLen) != off || c.runLen == len(c.buf)) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if c.buf == nil {
		c.buf = make([]byte, runSize)
	}
	if c.runLen == 0 {
		c.runOff = off
	}
	return nil
}

// flush writes the pending run.
func (c *copier) flush() error {
	if c.runLen == 0 {
		return nil
	}
	if _, err := c.dst.WriteAt(c.buf[:c.runLen], c.runOff); err != nil {
		return fmt.Errorf("write %s at offset %d: %w", c.dst.Name(), c.runOff, err)
	}
	end, n := c.runOff+int64(c.runLen), int64(c.runLen)
	c.runLen = 0
	c.dirty += n
	c.advance(n)
	c.kick(end, false)
	return nil
}

// copy copies n bytes of src at srcOff to dst at dstOff.
func (c *copier) copy(src vfs.File, srcOff int64, dstOff, n int64) error {
	if s, ok := src.(osFiler); ok && c.dfd >= 0 && !c.noCopy[src] {
		if err := c.flush(); err != nil {
			return err
		}
		err := c.kernelCopy(src, s, srcOff, dstOff, n)
		if !errors.Is(err, errNoKernelCopy) {
			if err == nil {
				c.dirty += n
				c.kick(dstOff+n, false)
			}
			return err
		}
		c.noCopy[src] = true
	}
	for n > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.room(dstOff); err != nil {
			return err
		}
		k := min(int64(len(c.buf)-c.runLen), n)
		if err := vfs.ReadFull(src, c.buf[c.runLen:int64(c.runLen)+k], srcOff); err != nil {
			return fmt.Errorf("read %s at offset %d: %w", src.Name(), srcOff, err)
		}
		c.runLen += int(k)
		srcOff, dstOff, n = srcOff+k, dstOff+k, n-k
	}
	return nil
}

// mem writes b to dst at off.
func (c *copier) mem(b []byte, off int64) error {
	for len(b) > 0 {
		if err := c.room(off); err != nil {
			return err
		}
		k := copy(c.buf[c.runLen:], b)
		c.runLen += k
		b, off = b[k:], off+int64(k)
	}
	return nil
}

// zeros writes n zero bytes to dst at off.
func (c *copier) zeros(off, n int64) error {
	for n > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		if err := c.room(off); err != nil {
			return err
		}
		k := min(int64(len(c.buf)-c.runLen), n)
		clear(c.buf[c.runLen : int64(c.runLen)+k])
		c.runLen += int(k)
		off, n = off+k, n-k
	}
	return nil
}

// kick starts the write-back of dst below end once a window of bytes
// was written since the last start (or at all when final).
func (c *copier) kick(end int64, final bool) {
	if c.wb == nil || end <= c.kicked || (!final && c.dirty < kickWindow) {
		return
	}
	c.wb.ranges <- [2]int64{c.kicked, end}
	c.kicked, c.dirty = end, 0
}

// finish writes what is pending, starts the write-back of the rest and
// reports a failed start.
func (c *copier) finish(end int64) error {
	if err := c.flush(); err != nil {
		return err
	}
	if err := c.ctx.Err(); err != nil {
		return err // cancelled while the last run was written
	}
	c.kick(end, true)
	return c.close()
}

// close stops the write-back starter; apply calls it on every path, so
// dst's descriptor is not used once apply returns.
func (c *copier) close() error {
	if c.wb == nil {
		return nil
	}
	err := c.wb.stop()
	c.wb = nil
	return err
}

// writeback starts the write-back of ranges of a file
// (sync_file_range SYNC_FILE_RANGE_WRITE) beside the copy, which goes on
// while the kernel queues the pages: the one fdatasync at the end then
// waits for the tail only.
type writeback struct {
	fd     int
	name   string
	ranges chan [2]int64
	done   chan struct{}
	err    error // the first failed start, read after done
}

func startWriteback(fd int, name string) *writeback {
	w := &writeback{fd: fd, name: name, ranges: make(chan [2]int64, 8), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		off := false
		for r := range w.ranges {
			if off || w.err != nil {
				continue
			}
			err := unix.SyncFileRange(w.fd, r[0], r[1]-r[0], unix.SYNC_FILE_RANGE_WRITE)
			switch {
			case err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP || err == unix.ESPIPE:
				off = true // not here: the final fdatasync does it all
			case err != nil:
				w.err = fmt.Errorf("start write-back of %s at offsets %d-%d: %w", w.name, r[0], r[1], err)
			}
		}
	}()
	return w
}

func (w *writeback) stop() error {
	close(w.ranges)
	<-w.done
	return w.err
}

var errNoKernelCopy = errors.New("copy_file_range not supported here")

func (c *copier) kernelCopy(src vfs.File, s osFiler, srcOff int64, dstOff, n int64) error {
	sfd := int(s.OSFile().Fd())
	first := true
	for n > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		t := time.Now()
		k, err := unix.CopyFileRange(sfd, &srcOff, c.dfd, &dstOff, int(min(n, 64<<20)), 0)
		if err == unix.EINTR {
			continue
		}
		if k > 0 {
			vfs.ObserveCopy(src, c.dst, int64(k), t, time.Since(t))
		}
		if err != nil || k == 0 {
			if first && (err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP) {
				return errNoKernelCopy
			}
			if err == nil {
				err = fmt.Errorf("short copy at offset %d", srcOff)
			}
			return fmt.Errorf("copy %s at offset %d to %s at offset %d: %w", s.OSFile().Name(), srcOff, c.dst.Name(), dstOff, err)
		}
		first = false
		n -= int64(k)
		c.advance(int64(k))
	}
	return nil
}

func (c *copier) advance(n int64) {
	c.done += n
	if c.prog != nil {
		c.prog(c.done)
	}
}

// apply writes the pieces onto dst from their undo segments and, when
// base is not nil, copies every range between them from base: the whole
// image at the point is then written exactly once, in ascending offset
// order, adjacent ranges merged.
func apply(ctx context.Context, st *journal.Store, pieces []piece, base vfs.File, size int64, dst vfs.File, prog func(int64)) (restored int64, err error) {
	c := newCopier(ctx, dst, prog)
	segs := map[uint64]vfs.File{}
	defer func() {
		c.close()
		for _, f := range segs {
			f.Close()
		}
	}()
	var pos int64
	for _, p := range pieces {
		if base != nil && p.off > pos {
			if err := c.copy(base, pos, pos, p.off-pos); err != nil {
				return restored, err
			}
		}
		switch {
		case p.zero:
			err = c.zeros(p.off, p.n)
		case p.mem != nil:
			err = c.mem(p.mem, p.off)
		default:
			f := segs[p.seg]
			if f == nil {
				if f, err = st.OpenSegment(p.seg); err != nil {
					return restored, fmt.Errorf("retention segment %d: %w", p.seg, err)
				}
				segs[p.seg] = f
			}
			err = c.copy(f, p.segOff, p.off, p.n)
		}
		if err != nil {
			return restored, err
		}
		restored += p.n
		pos = p.off + p.n
	}
	if base != nil && pos < size {
		if err := c.copy(base, pos, pos, size-pos); err != nil {
			return restored, err
		}
		pos = size
	}
	return restored, c.finish(pos)
}
