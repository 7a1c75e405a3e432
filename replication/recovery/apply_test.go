package recovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// oldApply is the restore as it was before the streamed copier: every
// piece read and written on its own, through a buffer, in plan order. It
// is the oracle the streamed apply is compared with byte for byte.
func oldApply(st *journal.Store, pieces []piece, base vfs.File, size int64, dst vfs.File) error {
	copyRange := func(src vfs.File, srcOff, dstOff, n int64) error {
		b := make([]byte, n)
		if err := vfs.ReadFull(src, b, srcOff); err != nil {
			return err
		}
		_, err := dst.WriteAt(b, dstOff)
		return err
	}
	var pos int64
	for _, p := range pieces {
		if base != nil && p.off > pos {
			if err := copyRange(base, pos, pos, p.off-pos); err != nil {
				return err
			}
		}
		switch {
		case p.zero:
			if _, err := dst.WriteAt(make([]byte, p.n), p.off); err != nil {
				return err
			}
		case p.mem != nil:
			if _, err := dst.WriteAt(p.mem, p.off); err != nil {
				return err
			}
		default:
			f, err := st.OpenSegment(p.seg)
			if err != nil {
				return err
			}
			err = copyRange(f, p.segOff, p.off, p.n)
			f.Close()
			if err != nil {
				return err
			}
		}
		pos = p.off + p.n
	}
	if base != nil && pos < size {
		return copyRange(base, pos, pos, size-pos)
	}
	return nil
}

// oldPlan is the plan as it was before the sweep: records fed in age
// order to a coverage set whose gaps are the bytes no older record took.
// It is the oracle of plan.
func oldPlan(st *journal.Store, after, upto uint64) ([]piece, error) {
	var cov coverage
	var pieces []piece
	err := st.UndoAt(after, upto, func(r *journal.Record, seg uint64, off int64) error {
		for _, g := range cov.gaps(r.Offset, r.Offset+int64(len(r.Data))) {
			pieces = append(pieces, piece{off: g.off, n: g.end - g.off, seg: seg, segOff: off + g.off - r.Offset, zero: r.Flags&journal.FlagZero != 0})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	staged, err := st.Uncommitted()
	if err != nil {
		return nil, err
	}
	for i := range staged {
		r := &staged[i]
		if r.Seq <= after {
			continue
		}
		for _, g := range cov.gaps(r.Offset, r.Offset+int64(len(r.Data))) {
			pieces = append(pieces, piece{off: g.off, n: g.end - g.off, mem: r.Data[g.off-r.Offset : g.end-r.Offset], zero: r.Flags&journal.FlagZero != 0})
		}
	}
	sort.Slice(pieces, func(i, j int) bool { return pieces[i].off < pieces[j].off })
	return pieces, nil
}

// randomStore is a retention store built by hand on fsys under dir: a
// target of size bytes (not a multiple of anything), then writes at byte
// offsets that are random, adjacent to the one before, overlapping it, at
// the disk's end, or of zeros over zeros (before-images kept as their
// length); the last few are staged past the applied position (a writer
// stopped mid-batch), their writes on the target. images[seq] is the
// target after seq.
type randomStore struct {
	fs     vfs.FS
	dir    string
	st     *journal.Store
	target vfs.File
	images map[uint64][]byte
	size   int64
}

func newRandomStore(t *testing.T, fsys vfs.FS, dir string, seed int64, writes, staged int) *randomStore {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	size := int64(96<<10 + rng.Intn(4096))
	fsys.MkdirAll(dir, 0o700)
	st, err := journal.OpenStore(journal.StoreOptions{FS: fsys, Dir: filepath.Join(dir, "p"), Pair: "p", CatalogueDir: t.TempDir(), SegmentSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	src := make([]byte, size)
	rng.Read(src[:size/2]) // the second half starts as zeros
	rs := &randomStore{fs: fsys, dir: dir, st: st, images: map[uint64][]byte{0: bytes.Clone(src)}, size: size}
	clock := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var prevOff, prevN int64
	for seq := uint64(1); seq <= uint64(writes+staged); seq++ {
		n := int64(1 + rng.Intn(3000))
		var off int64
		zeros := false
		kind := rng.Intn(6)
		if prevN == 0 && kind < 2 {
			kind = 5
		}
		switch kind {
		case 0: // adjacent after the one before
			off = prevOff + prevN
		case 1: // overlapping the one before
			off = prevOff + rng.Int63n(prevN)
		case 2: // at the disk's end
			off = size - n
		case 3: // zeros over the zero half
			off = size/2 + rng.Int63n(size/2-n)
			zeros = true
		default:
			off = rng.Int63n(size - n)
		}
		if off+n > size {
			off = size - n
		}
		data := make([]byte, n)
		if !zeros {
			rng.Read(data)
		}
		before := bytes.Clone(src[off : off+n])
		r := journal.Record{Type: journal.TypeUndo, Seq: seq, Offset: off, Time: clock, Data: before}
		if journal.IsZero(before) {
			r.Flags |= journal.FlagZero
		}
		if err := st.Append([]journal.Record{r}); err != nil {
			t.Fatal(err)
		}
		if err := st.Sync(); err != nil {
			t.Fatal(err)
		}
		if seq <= uint64(writes) {
			if err := st.Commit(journal.Commit{Applied: seq, AppliedTime: clock, Accuracy: journal.Exact, FirstTime: clock}); err != nil {
				t.Fatal(err)
			}
		}
		copy(src[off:], data)
		rs.images[seq] = bytes.Clone(src)
		prevOff, prevN = off, n
		clock = clock.Add(time.Millisecond)
	}
	tf, err := fsys.OpenFile(filepath.Join(dir, "target"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tf.Close() })
	if _, err := tf.WriteAt(src, 0); err != nil {
		t.Fatal(err)
	}
	rs.target = tf
	return rs
}

func (rs *randomStore) read(t *testing.T, name string) []byte {
	t.Helper()
	f, err := rs.fs.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, _ := f.Size()
	b := make([]byte, n)
	if err := vfs.ReadFull(f, b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

func (rs *randomStore) create(t *testing.T, name string, content []byte) vfs.File {
	t.Helper()
	f, err := rs.fs.OpenFile(filepath.Join(rs.dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if content != nil {
		if _, err := f.WriteAt(content, 0); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestApplyMatchesOldPlan: for random workloads (overlapping, adjacent,
// disk-end and zero ranges, before-images staged past the applied
// position), on the real file system (copy_file_range, sync_file_range)
// and on vfs.Mem (merged runs through the buffer), with runs and
// write-back windows small enough to be crossed many times and with one
// processor, the streamed export and in-place restore are byte for byte
// what the old piece-by-piece apply writes, and both are the image at
// the point.
func TestApplyMatchesOldPlan(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, kind := range []string{"os", "mem"} {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s/seed=%d", kind, seed), func(t *testing.T) {
				if seed%2 == 0 {
					smallRuns(t)
				}
				if seed > 2 {
					splitPlans(t)
				}
				var fsys vfs.FS = vfs.NewMem()
				dir := "/r"
				if kind == "os" {
					fsys, dir = vfs.OS, t.TempDir()
				}
				rs := newRandomStore(t, fsys, dir, seed, 150, 5)
				applied := rs.st.State().Applied
				if b := planSplit(rs.st.Segments(), 0, applied, planParts); seed > 2 && len(b) < 3 {
					t.Fatalf("the undo log of %d segments is read in one part (%v): the split is not tested", len(rs.st.Segments()), b)
				}
				cur := rs.read(t, filepath.Join(dir, "target"))
				for _, seq := range []uint64{0, 1, 37, applied - 20, applied - 1, applied} {
					pieces, _, err := plan(context.Background(), rs.st, seq, applied)
					if err != nil {
						t.Fatal(err)
					}
					oldPieces, err := oldPlan(rs.st, seq, applied)
					if err != nil {
						t.Fatal(err)
					}
					if covered(pieces) != covered(oldPieces) {
						t.Fatalf("plan to %d covers %d bytes, the old plan %d", seq, covered(pieces), covered(oldPieces))
					}
					want := rs.images[seq]
					// Export: a new file.
					oldDst, newDst := rs.create(t, "old", nil), rs.create(t, "new", nil)
					oldDst.Truncate(rs.size)
					newDst.Truncate(rs.size)
					if err := oldApply(rs.st, oldPieces, rs.target, rs.size, oldDst); err != nil {
						t.Fatal(err)
					}
					var last int64
					restored, err := apply(context.Background(), rs.st, pieces, rs.target, rs.size, newDst, func(d int64) { last = d })
					if err != nil {
						t.Fatalf("export to %d: %v", seq, err)
					}
					old, got := rs.read(t, oldDst.Name()), rs.read(t, newDst.Name())
					if d := testutil.Diff(got, old); d != "" {
						t.Fatalf("export to %d differs from the old apply: %s", seq, d)
					}
					if d := testutil.Diff(got, want); d != "" {
						t.Fatalf("export to %d is not the image: %s", seq, d)
					}
					if last != rs.size {
						t.Fatalf("export to %d: progress ended at %d of %d", seq, last, rs.size)
					}
					if planned := covered(pieces); restored != planned {
						t.Fatalf("export to %d: restored %d, planned %d", seq, restored, planned)
					}
					// Restore in place: onto a copy of the current target.
					oldDst, newDst = rs.create(t, "old", cur), rs.create(t, "new", cur)
					if err := oldApply(rs.st, oldPieces, nil, 0, oldDst); err != nil {
						t.Fatal(err)
					}
					if _, err := apply(context.Background(), rs.st, pieces, nil, 0, newDst, nil); err != nil {
						t.Fatalf("restore to %d: %v", seq, err)
					}
					old, got = rs.read(t, oldDst.Name()), rs.read(t, newDst.Name())
					if d := testutil.Diff(got, old); d != "" {
						t.Fatalf("restore to %d differs from the old apply: %s", seq, d)
					}
					if d := testutil.Diff(got, want); d != "" {
						t.Fatalf("restore to %d is not the image: %s", seq, d)
					}
				}
				// And through the public calls, the target itself last.
				r := Resolved{Pair: "p", Seq: 37}
				if _, err := ExportTo(context.Background(), rs.st, rs.target, fsys, filepath.Join(dir, "img"), r, ExportOptions{}, nil); err != nil {
					t.Fatal(err)
				}
				if d := testutil.Diff(rs.read(t, filepath.Join(dir, "img")), rs.images[37]); d != "" {
					t.Fatalf("ExportTo: %s", d)
				}
				if _, err := Rollback(context.Background(), rs.st, rs.target, r, nil); err != nil {
					t.Fatal(err)
				}
				if d := testutil.Diff(rs.read(t, filepath.Join(dir, "target")), rs.images[37]); d != "" {
					t.Fatalf("Rollback: %s", d)
				}
			})
		}
	}
}

// TestRollbackIOErrors: an EIO writing the target, or reading an undo
// segment, once the rollback has begun writing, stops it with an error
// that names the file and offset and says the target is partly rolled
// back; the pair stays RollingBack (no success is claimed, the catalogue
// does not say Ended), and running it again finishes the image.
func TestRollbackIOErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   vfs.Op
		file string
	}{
		{"write target", vfs.OpWrite, "/r/target"},
		{"read undo", vfs.OpRead, ".undo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			smallRuns(t)
			mem := vfs.NewMem()
			rs := newRandomStore(t, mem, "/r", 7, 200, 0)
			r := Resolved{Pair: "p", Seq: 3}
			armed := false
			mem.SetInjector(func(op vfs.Op, name string) error {
				if armed && op == tc.op && strings.Contains(name, tc.file) {
					return fmt.Errorf("%s %s: input/output error", op, name)
				}
				return nil
			})
			res, err := Rollback(context.Background(), rs.st, rs.target, r, func(done, total int64) { armed = true })
			mem.SetInjector(nil)
			if err == nil {
				t.Fatalf("rollback with a failing %s succeeded: %+v", tc.name, res)
			}
			for _, want := range []string{"partly rolled back", "run the rollback again", tc.file, "at offset", "input/output error"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if s := rs.st.State(); s.State != journal.StateRollingBack || !s.RollbackWritten {
				t.Fatalf("state after a failed rollback: %+v, want RollingBack, written", s)
			}
			if _, err := Rollback(context.Background(), rs.st, rs.target, r, nil); err != nil {
				t.Fatalf("finishing the rollback: %v", err)
			}
			if d := testutil.Diff(rs.read(t, "/r/target"), rs.images[r.Seq]); d != "" {
				t.Fatalf("finished rollback: %s", d)
			}
		})
	}
}

// TestExportIOErrors: an EIO reading the target or an undo segment, or
// writing the image, fails the export with an error naming the file; the
// partial image is removed and the target is unchanged.
func TestExportIOErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   vfs.Op
		file string
	}{
		{"write image", vfs.OpWrite, "/r/img.partial"},
		{"read target", vfs.OpRead, "/r/target"},
		{"read undo", vfs.OpRead, ".undo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
			smallRuns(t)
			mem := vfs.NewMem()
			rs := newRandomStore(t, mem, "/r", 8, 200, 0)
			before := rs.read(t, "/r/target")
			armed := false
			mem.SetInjector(func(op vfs.Op, name string) error {
				if armed && op == tc.op && strings.Contains(name, tc.file) {
					return fmt.Errorf("%s %s: input/output error", op, name)
				}
				return nil
			})
			_, err := ExportTo(context.Background(), rs.st, rs.target, mem, "/r/img", Resolved{Pair: "p", Seq: 3}, ExportOptions{},
				func(done, total int64) { armed = true })
			mem.SetInjector(nil)
			if err == nil {
				t.Fatalf("export with a failing %s succeeded", tc.name)
			}
			for _, want := range []string{"/r/img", tc.file, "input/output error", "partial image /r/img.partial was removed"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			for _, n := range []string{"/r/img", "/r/img" + PartialSuffix} {
				if memExists(mem, n) {
					t.Errorf("%s left after a failed export", n)
				}
			}
			if !bytes.Equal(rs.read(t, "/r/target"), before) {
				t.Fatal("a failed export changed the target")
			}
			if errors.Is(err, context.Canceled) {
				t.Fatalf("error is a cancel: %v", err)
			}
		})
	}
}

// covered is the bytes of the pieces, checking they are sorted and
// disjoint.
func covered(pieces []piece) int64 {
	var n, pos int64
	for _, p := range pieces {
		if p.off < pos || p.n <= 0 {
			return -1
		}
		n, pos = n+p.n, p.off+p.n
	}
	return n
}

// TestOldestWins: for random intervals (many overlapping, adjacent, equal,
// nested), every byte's piece points into the oldest interval covering
// it, the pieces are sorted and disjoint, and bytes no interval covers
// have none.
func TestOldestWins(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for round := range 200 {
		const space = 512
		var ivs []interval
		owner := make([]int, space)
		for i := range owner {
			owner[i] = -1
		}
		for age := range 1 + rng.Intn(60) {
			off := int64(rng.Intn(space - 1))
			end := off + 1 + int64(rng.Intn(min(64, space-int(off))))
			if age > 0 && rng.Intn(4) == 0 { // adjacent to, or the same as, the one before
				p := ivs[len(ivs)-1]
				if rng.Intn(2) == 0 && p.end < space {
					off, end = p.end, min(p.end+int64(1+rng.Intn(32)), space)
				} else {
					off, end = p.off, p.end
				}
			}
			ivs = append(ivs, interval{off: off, end: end, age: age, seg: uint64(age), segOff: int64(age) << 20})
			for b := off; b < end; b++ {
				if owner[b] < 0 {
					owner[b] = age
				}
			}
		}
		pieces := oldestWins(ivs)
		if covered(pieces) < 0 {
			t.Fatalf("round %d: pieces not sorted and disjoint: %+v", round, pieces)
		}
		got := make([]int, space)
		for i := range got {
			got[i] = -1
		}
		for _, p := range pieces {
			for b := p.off; b < p.off+p.n; b++ {
				iv := ivs[p.seg]
				if p.segOff+(b-p.off) != iv.segOff+(b-iv.off) {
					t.Fatalf("round %d: byte %d of piece %+v points to the wrong place of interval %d", round, b, p, p.seg)
				}
				got[b] = int(p.seg)
			}
		}
		for b := range owner {
			if got[b] != owner[b] {
				t.Fatalf("round %d: byte %d from interval %d, want %d", round, b, got[b], owner[b])
			}
		}
	}
}

// splitPlans makes every plan read its undo log in three parts side by
// side, however small.
func splitPlans(t *testing.T) {
	oldParts, oldMin := planParts, planMinBytes
	planParts, planMinBytes = 3, 1
	t.Cleanup(func() { planParts, planMinBytes = oldParts, oldMin })
}

// TestPlanSplit: the undo log a plan reads is cut at segment boundaries
// into parts of about equal bytes, covering (after, upto] exactly once;
// a small log, or one segment, is one part.
func TestPlanSplit(t *testing.T) {
	seg := func(first, last uint64, n int64) journal.SegmentInfo {
		return journal.SegmentInfo{Index: first, FirstSeq: first, LastSeq: last, Bytes: n}
	}
	segs := []journal.SegmentInfo{seg(1, 10, 64<<20), seg(11, 20, 64<<20), seg(21, 30, 64<<20), seg(31, 40, 64<<20)}
	for _, c := range []struct {
		after, upto uint64
		n           int
		want        []uint64
	}{
		{0, 40, 2, []uint64{0, 20, 40}},
		{0, 40, 4, []uint64{0, 10, 20, 30, 40}},
		{5, 40, 2, []uint64{5, 20, 40}},
		{0, 35, 2, []uint64{0, 20, 35}},
		{0, 40, 1, []uint64{0, 40}},
		{12, 18, 2, []uint64{12, 18}}, // one segment
		{0, 10, 2, []uint64{0, 10}},
	} {
		if got := planSplit(segs, c.after, c.upto, c.n); !slices.Equal(got, c.want) {
			t.Errorf("planSplit(%d, %d, %d parts) = %v, want %v", c.after, c.upto, c.n, got, c.want)
		}
	}
	small := []journal.SegmentInfo{seg(1, 10, 1<<20), seg(11, 20, 1<<20)}
	if got := planSplit(small, 0, 20, 2); !slices.Equal(got, []uint64{0, 20}) {
		t.Errorf("a 2 MiB log split into %v, want one part", got)
	}
}
