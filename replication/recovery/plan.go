package recovery

import (
	"context"
	"errors"
	"fmt"
	"sort"

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
// after the point wins.
//
// It also takes the before-images past the applied position that a
// writer stopped in the middle of a batch left (a crash, a failed
// commit): their writes may be on the target already. Each is the
// target's content at the applied position, so it is right whether its
// write landed or not; without them an image would hold those writes.
func plan(ctx context.Context, st *journal.Store, after, upto uint64) ([]piece, int, error) {
	var cov coverage
	var pieces []piece
	records := 0
	err := st.UndoAt(after, upto, func(r *journal.Record, seg uint64, off int64) error {
		if records++; records%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		for _, g := range cov.gaps(r.Offset, r.Offset+int64(len(r.Data))) {
			pieces = append(pieces, piece{off: g.off, n: g.end - g.off, seg: seg, segOff: off + g.off - r.Offset, zero: r.Flags&journal.FlagZero != 0})
		}
		return nil
	})
	if err != nil {
		return nil, records, err
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
		for _, g := range cov.gaps(r.Offset, r.Offset+int64(len(r.Data))) {
			pieces = append(pieces, piece{off: g.off, n: g.end - g.off, mem: r.Data[g.off-r.Offset : g.end-r.Offset], zero: r.Flags&journal.FlagZero != 0})
		}
	}
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].off < pieces[j].off })
	return pieces, records, nil
}

// copier copies byte ranges between files: copy_file_range where both are
// real files (the data never enters user space), else through a buffer.
type copier struct {
	ctx  context.Context
	buf  []byte
	zero []byte
	done int64
	prog func(int64)
}

func (c *copier) copy(src vfs.File, srcOff int64, dst vfs.File, dstOff, n int64) error {
	if s, ok := src.(osFiler); ok {
		if d, ok := dst.(osFiler); ok {
			err := c.kernelCopy(s, srcOff, d, dstOff, n)
			if !errors.Is(err, errNoKernelCopy) {
				return err
			}
		}
	}
	if c.buf == nil {
		c.buf = make([]byte, 4<<20)
	}
	for n > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		k := min(int64(len(c.buf)), n)
		if err := vfs.ReadFull(src, c.buf[:k], srcOff); err != nil {
			return fmt.Errorf("read %s at offset %d: %w", src.Name(), srcOff, err)
		}
		if _, err := dst.WriteAt(c.buf[:k], dstOff); err != nil {
			return fmt.Errorf("write %s at offset %d: %w", dst.Name(), dstOff, err)
		}
		srcOff, dstOff, n = srcOff+k, dstOff+k, n-k
		c.advance(k)
	}
	return nil
}

// zeros writes n zero bytes to dst at off.
func (c *copier) zeros(dst vfs.File, off, n int64) error {
	if c.zero == nil {
		c.zero = make([]byte, min(n, 4<<20))
	}
	for n > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		k := min(int64(len(c.zero)), n)
		if _, err := dst.WriteAt(c.zero[:k], off); err != nil {
			return fmt.Errorf("write %s at offset %d: %w", dst.Name(), off, err)
		}
		off, n = off+k, n-k
		c.advance(k)
	}
	return nil
}

var errNoKernelCopy = errors.New("copy_file_range not supported here")

func (c *copier) kernelCopy(s osFiler, srcOff int64, d osFiler, dstOff, n int64) error {
	sfd, dfd := int(s.OSFile().Fd()), int(d.OSFile().Fd())
	first := true
	for n > 0 {
		if err := c.ctx.Err(); err != nil {
			return err
		}
		k, err := unix.CopyFileRange(sfd, &srcOff, dfd, &dstOff, int(min(n, 64<<20)), 0)
		if err != nil || k == 0 {
			if first && (err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP) {
				return errNoKernelCopy
			}
			if err == nil {
				err = fmt.Errorf("short copy at offset %d", srcOff)
			}
			return fmt.Errorf("copy %s at offset %d to %s at offset %d: %w", s.OSFile().Name(), srcOff, d.OSFile().Name(), dstOff, err)
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
// image at the point is then written exactly once.
func apply(ctx context.Context, st *journal.Store, pieces []piece, base vfs.File, size int64, dst vfs.File, prog func(int64)) (restored int64, err error) {
	c := &copier{ctx: ctx, prog: prog}
	segs := map[uint64]vfs.File{}
	defer func() {
		for _, f := range segs {
			f.Close()
		}
	}()
	var pos int64
	for _, p := range pieces {
		if base != nil && p.off > pos {
			if err := c.copy(base, pos, dst, pos, p.off-pos); err != nil {
				return restored, err
			}
		}
		if p.zero {
			if err := c.zeros(dst, p.off, p.n); err != nil {
				return restored, err
			}
			restored += p.n
			pos = p.off + p.n
			continue
		}
		if p.mem != nil {
			if _, err := dst.WriteAt(p.mem, p.off); err != nil {
				return restored, fmt.Errorf("write %s at offset %d: %w", dst.Name(), p.off, err)
			}
			c.advance(p.n)
			restored += p.n
			pos = p.off + p.n
			continue
		}
		f := segs[p.seg]
		if f == nil {
			if f, err = st.OpenSegment(p.seg); err != nil {
				return restored, fmt.Errorf("retention segment %d: %w", p.seg, err)
			}
			segs[p.seg] = f
		}
		if err := c.copy(f, p.segOff, dst, p.off, p.n); err != nil {
			return restored, err
		}
		restored += p.n
		pos = p.off + p.n
	}
	if base != nil && pos < size {
		if err := c.copy(base, pos, dst, pos, size-pos); err != nil {
			return restored, err
		}
	}
	return restored, nil
}
