package recovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// Progress is told the bytes done out of total as work proceeds.
type Progress func(done, total int64)

// Result says what a rollback or export did.
type Result struct {
	Point    Resolved      `json:"point"`
	Copied   int64         `json:"copied_bytes"`   // export: bytes copied from the target
	Restored int64         `json:"restored_bytes"` // bytes of before-images written
	Records  int           `json:"undo_records"`
	Duration time.Duration `json:"duration_ns"`
}

// ErrBusy is a rollback asked for a different point than the unfinished
// one in progress.
var ErrBusy = errors.New("another rollback is unfinished")

// parallelism of target writes during restore
const writers = 8

// undoBytes is the size of the undo data between a point and the applied
// position: the total a restore's progress counts to.
func undoBytes(st *journal.Store, after uint64) int64 {
	var n int64
	for _, g := range st.Segments() {
		if g.LastSeq > after {
			n += g.Bytes
		}
	}
	return n
}

// restore overlays the before-images after r.Seq onto dst.
func restore(ctx context.Context, st *journal.Store, dst vfs.File, r Resolved, base int64, total int64, progress Progress, res *Result) error {
	applied := st.State().Applied
	if r.Seq > applied {
		return fmt.Errorf("%w: sequence %d is past the applied position %d", ErrNoPoint, r.Seq, applied)
	}
	if e, _ := st.Earliest(); r.Seq < e {
		return fmt.Errorf("%w: sequence %d was pruned (earliest is %d)", ErrNoPoint, r.Seq, e)
	}
	ov := NewOverlay(ctx, dst, writers)
	var read int64
	err := st.Undo(r.Seq, applied, func(rec *journal.Record) error {
		res.Records++
		read += int64(rec.Len())
		if progress != nil && res.Records%64 == 0 {
			progress(base+read, total)
		}
		return ov.Add(rec)
	})
	cerr := ov.Close()
	res.Restored = ov.Written
	if err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := dst.Sync(); err != nil {
		return fmt.Errorf("fdatasync %s: %w", dst.Name(), err)
	}
	if progress != nil {
		progress(total, total)
	}
	return nil
}

// Rollback puts the target itself back to point r, in place; the pair
// ends. The pair must not be applying. A rollback cut short (crash,
// cancel) leaves the pair RollingBack and is finished by running it again
// with the same point.
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
	if err := st.SetState(journal.StateRollingBack, "rolling back to "+r.String(), r.Seq); err != nil {
		return res, err
	}
	total := undoBytes(st, r.Seq)
	if err := restore(ctx, st, target, r, 0, total, progress, &res); err != nil {
		return res, fmt.Errorf("rollback of pair %s to %s stopped; the target is partly rolled back, run the rollback again to finish: %w", s.Pair, r, err)
	}
	if err := st.SetState(journal.StateEnded, "rolled back to "+r.String(), 0); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
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
	total := size + undoBytes(st, r.Seq)
	if err := copyImage(ctx, src, dst, size, func(n int64) {
		if progress != nil {
			progress(n, total)
		}
	}); err != nil {
		return res, fmt.Errorf("export to %s: %w", dst.Name(), err)
	}
	res.Copied = size
	if err := restore(ctx, st, dst, r, size, total, progress, &res); err != nil {
		return res, fmt.Errorf("export to %s: %w", dst.Name(), err)
	}
	res.Duration = time.Since(start)
	return res, nil
}

type osFiler interface{ OSFile() *os.File }

// copyImage copies size bytes from src to dst: in the kernel with
// copy_file_range where both are real files, else through a buffer.
func copyImage(ctx context.Context, src, dst vfs.File, size int64, done func(int64)) error {
	const chunk = 64 << 20
	if s, ok := src.(osFiler); ok {
		if d, ok := dst.(osFiler); ok {
			var off int64
			for off < size {
				if err := ctx.Err(); err != nil {
					return err
				}
				roff, woff := off, off
				n, err := unix.CopyFileRange(int(s.OSFile().Fd()), &roff, int(d.OSFile().Fd()), &woff, int(min(chunk, size-off)), 0)
				if err != nil || n == 0 {
					if off == 0 && (err == unix.EXDEV || err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP) {
						break // fall back to the buffered copy
					}
					if err == nil {
						err = io.ErrUnexpectedEOF
					}
					return fmt.Errorf("copy_file_range at offset %d: %w", off, err)
				}
				off += int64(n)
				done(off)
			}
			if off >= size {
				return nil
			}
		}
	}
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(int64(len(buf)), size-off))
		if err := vfs.ReadFull(src, buf[:n], off); err != nil {
			return fmt.Errorf("read %s at offset %d: %w", src.Name(), off, err)
		}
		if _, err := dst.WriteAt(buf[:n], off); err != nil {
			return fmt.Errorf("write %s at offset %d: %w", dst.Name(), off, err)
		}
		off += int64(n)
		done(off)
	}
	return nil
}
