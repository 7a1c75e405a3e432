package recovery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

func TestCoverageGaps(t *testing.T) {
	var c coverage
	rng := rand.New(rand.NewSource(1))
	covered := make([]bool, 4096)
	for range 2000 {
		off := int64(rng.Intn(4000))
		end := off + int64(1+rng.Intn(96))
		var want []span
		for i := off; i < end; i++ {
			if !covered[i] {
				if n := len(want); n > 0 && want[n-1].end == i {
					want[n-1].end++
				} else {
					want = append(want, span{i, i + 1})
				}
			}
			covered[i] = true
		}
		got := c.gaps(off, end)
		if len(got) != len(want) {
			t.Fatalf("gaps(%d,%d) = %v, want %v", off, end, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("gaps(%d,%d) = %v, want %v", off, end, got, want)
			}
		}
		for i := 1; i < len(c.s); i++ {
			if c.s[i-1].end >= c.s[i].off {
				t.Fatalf("coverage not merged: %v", c.s)
			}
		}
	}
}

func TestParsePoint(t *testing.T) {
	good := map[string]Point{
		"latest-tag":                {Kind: LatestTag},
		"latest-time":               {Kind: LatestTime},
		"latest-app-consistent":     {Kind: LatestApp},
		"earliest":                  {Kind: Earliest},
		"tag:FS_1":                  {Kind: TagNamed, Name: "FS_1"},
		"tagid:5f0c6a8e":            {Kind: TagID, Name: "5f0c6a8e"},
		"time:2026-11-26T10:30:00Z": {Kind: AtTime, Time: time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)},
	}
	for s, want := range good {
		p, err := ParsePoint(s)
		if err != nil || p != want {
			t.Errorf("ParsePoint(%q) = %+v, %v; want %+v", s, p, err, want)
		}
		if s != "latest-tag" && p.String() != s {
			t.Errorf("%q prints as %q", s, p.String())
		}
	}
	for _, s := range []string{"latest", "tag:", "tagid:", "time:yesterday", "time:2026-11-26 10:30"} {
		if _, err := ParsePoint(s); err == nil || !strings.Contains(err.Error(), s) {
			t.Errorf("ParsePoint(%q) = %v, want an error naming it", s, err)
		}
	}
}

// fixture builds a retention store by hand: target at the source's final
// state, undo records for every write, tags as the workload made them.
type fixture struct {
	cat    string // catalogue directory
	fs     *vfs.Mem
	st     *journal.Store
	w      *testutil.Workload
	images map[uint64][]byte
	target vfs.File
}

func newFixture(t *testing.T, seed int64, n int, tagIDs bool) *fixture {
	t.Helper()
	fs := vfs.NewMem()
	fs.MkdirAll("/r", 0o700)
	cat := t.TempDir()
	st, err := journal.OpenStore(journal.StoreOptions{FS: fs, Dir: "/r/p", Pair: "p", CatalogueDir: cat, SegmentSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := testutil.NewWorkload(seed, 64<<10, nil)
	w.MaxWrite = 2048
	f := &fixture{cat: cat, fs: fs, st: st, w: w, images: map[uint64][]byte{0: make([]byte, 64<<10)}}
	for range n {
		prev := append([]byte(nil), w.Source...)
		op := w.Next()
		c := journal.Commit{Applied: op.Seq, AppliedTime: op.Time, Accuracy: journal.Exact, FirstTime: op.Time}
		if op.Tag != nil {
			id := op.Tag.ID
			if !tagIDs {
				id = ""
			}
			c.Tags = []journal.Tag{{Seq: op.Seq, Time: op.Time, Name: op.Tag.Name, App: op.Tag.App, ID: id, Accuracy: journal.Exact}}
			c.AppliedTime = st.State().AppliedTime
		} else {
			before := prev[op.Offset : op.Offset+int64(len(op.Data))]
			if err := st.Append([]journal.Record{{Type: journal.TypeUndo, Seq: op.Seq, Offset: op.Offset, Time: op.Time, Data: before}}); err != nil {
				t.Fatal(err)
			}
			if err := st.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Commit(c); err != nil {
			t.Fatal(err)
		}
		f.images[op.Seq] = append([]byte(nil), w.Source...)
	}
	tf, err := fs.OpenFile("/r/target", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	tf.WriteAt(w.Source, 0)
	f.target = tf
	return f
}

func (f *fixture) export(t *testing.T, r Resolved) []byte {
	t.Helper()
	dst, err := f.fs.OpenFile("/r/export", os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Export(context.Background(), f.st, f.target, dst, r, nil); err != nil {
		t.Fatal(err)
	}
	b, _ := f.fs.ReadFile("/r/export")
	return b
}

func TestResolveAndExportEveryKind(t *testing.T) {
	f := newFixture(t, 3, 120, true)
	tags := f.st.Tags()
	lastApp := journal.Tag{}
	for _, tg := range tags {
		if tg.AppConsistent() {
			lastApp = tg
		}
	}
	cases := []struct {
		p    Point
		want uint64
	}{
		{Point{Kind: LatestTag}, tags[len(tags)-1].Seq},
		{Point{Kind: LatestApp}, lastApp.Seq},
		{Point{Kind: TagNamed, Name: tags[2].Name}, tags[2].Seq},
		{Point{Kind: TagNamed, Name: tags[3].ID}, tags[3].Seq},
		{Point{Kind: LatestTime}, 120},
		{Point{Kind: Earliest}, 0},
	}
	for _, tc := range cases {
		r, err := Resolve(f.st, tc.p)
		if err != nil {
			t.Fatalf("%s: %v", tc.p, err)
		}
		if r.Seq != tc.want {
			t.Fatalf("%s resolved to %d, want %d", tc.p, r.Seq, tc.want)
		}
		if d := testutil.Diff(f.export(t, r), f.images[r.Seq]); d != "" {
			t.Fatalf("export of %s: %s", tc.p, d)
		}
	}
	// A time between two writes resolves to the earlier one.
	var at time.Time
	var seq uint64
	f.st.Undo(50, 60, func(r *journal.Record) error {
		if seq == 0 {
			at, seq = r.Time, r.Seq
		}
		return nil
	})
	r, err := Resolve(f.st, Point{Kind: AtTime, Time: at.Add(time.Microsecond)})
	if err != nil || r.Seq < seq || r.Seq > seq+1 {
		t.Fatalf("time point: %+v %v, want seq %d", r, err, seq)
	}
	if d := testutil.Diff(f.export(t, r), f.images[r.Seq]); d != "" {
		t.Fatalf("export of a time point: %s", d)
	}
	if _, err := Resolve(f.st, Point{Kind: AtTime, Time: at.Add(-24 * time.Hour)}); !errors.Is(err, ErrNoPoint) {
		t.Fatalf("a time before the window: %v, want ErrNoPoint", err)
	}
	if _, err := Resolve(f.st, Point{Kind: TagNamed, Name: "nope"}); !errors.Is(err, ErrNoPoint) || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("unknown tag: %v", err)
	}
}

func TestResolveGroupCommonTag(t *testing.T) {
	a := newFixture(t, 5, 100, true)
	b := newFixture(t, 5, 100, true)
	// b misses the newest tag: the group point is the one before.
	tags := a.st.Tags()
	newest := tags[len(tags)-1]
	b2 := newFixture(t, 5, int(newest.Seq)-1, true)
	got, err := ResolveGroup(map[string]*journal.Store{"a": a.st, "b": b2.st}, Point{Kind: LatestTag})
	if err != nil {
		t.Fatal(err)
	}
	if got["a"].Tag.ID != tags[len(tags)-2].ID || got["b"].Tag.ID != got["a"].Tag.ID {
		t.Fatalf("group resolved to %s/%s, want the common %s", got["a"].Tag.Name, got["b"].Tag.Name, tags[len(tags)-2].Name)
	}
	got, err = ResolveGroup(map[string]*journal.Store{"a": a.st, "b": b.st}, Point{Kind: LatestTag})
	if err != nil || got["a"].Tag.ID != newest.ID {
		t.Fatalf("all pairs hold the newest tag: %+v %v", got, err)
	}
	// No tag in common.
	c := newFixture(t, 6, 5, true)
	if _, err := ResolveGroup(map[string]*journal.Store{"a": a.st, "c": c.st}, Point{Kind: LatestTag}); !errors.Is(err, ErrNoPoint) {
		t.Fatalf("no common tag: %v", err)
	}
}

func TestRollbackCancelledThenFinished(t *testing.T) {
	f := newFixture(t, 9, 200, true)
	tags := f.st.Tags()
	r, err := Resolve(f.st, Point{Kind: TagNamed, Name: tags[1].Name})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	_, err = Rollback(ctx, f.st, f.target, r, func(done, total int64) {
		calls++
		if calls == 1 {
			cancel()
		}
	})
	if err == nil || !strings.Contains(err.Error(), "run the rollback again") {
		t.Fatalf("cancelled rollback: %v", err)
	}
	if s := f.st.State(); s.State != journal.StateRollingBack || s.RollbackTo != r.Seq {
		t.Fatalf("state after a cut rollback: %+v", s)
	}
	// Another point is refused until this one finishes.
	other, _ := Resolve(f.st, Point{Kind: Earliest})
	if _, err := Rollback(context.Background(), f.st, f.target, other, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("rollback to another point: %v, want ErrBusy", err)
	}
	var last, total int64
	res, err := Rollback(context.Background(), f.st, f.target, r, func(d, t int64) { last, total = d, t })
	if err != nil {
		t.Fatal(err)
	}
	if last != total || total == 0 {
		t.Fatalf("progress ended at %d of %d", last, total)
	}
	got, _ := f.fs.ReadFile("/r/target")
	if d := testutil.Diff(got, f.images[r.Seq]); d != "" {
		t.Fatalf("rolled-back target: %s", d)
	}
	if res.Restored == 0 || res.Restored > int64(len(got)) {
		t.Fatalf("restored %d bytes: each byte is written at most once", res.Restored)
	}
	if s := f.st.State(); s.State != journal.StateEnded {
		t.Fatalf("state after rollback: %+v", s)
	}
	if _, err := Rollback(context.Background(), f.st, f.target, r, nil); err == nil {
		t.Fatal("a second rollback of an ended pair was accepted")
	}
}

func TestExportFaults(t *testing.T) {
	f := newFixture(t, 4, 60, true)
	r, _ := Resolve(f.st, Point{Kind: Earliest})
	before := append([]byte(nil), f.w.Source...)
	f.fs.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && name == "/r/export" {
			return errors.New("input/output error")
		}
		return nil
	})
	dst, _ := f.fs.OpenFile("/r/export", os.O_RDWR|os.O_CREATE, 0o600)
	_, err := Export(context.Background(), f.st, f.target, dst, r, nil)
	if err == nil || !strings.Contains(err.Error(), "/r/export") {
		t.Fatalf("export onto a failing file: %v", err)
	}
	f.fs.SetInjector(nil)
	got, _ := f.fs.ReadFile("/r/target")
	if !bytes.Equal(got, before) {
		t.Fatal("a failed export changed the target")
	}
	// A point past the applied position does not exist.
	if _, err := Export(context.Background(), f.st, f.target, dst, Resolved{Seq: 1000}, nil); !errors.Is(err, ErrNoPoint) {
		t.Fatalf("export past the applied position: %v", err)
	}
}

// corrupt flips a byte in the middle of undo segment g.
func (f *fixture) corrupt(t *testing.T, g journal.SegmentInfo) {
	t.Helper()
	path := fmt.Sprintf("/r/p/%016x.undo", g.Index)
	file, err := f.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	b := make([]byte, 1)
	file.ReadAt(b, g.Bytes/2)
	b[0] ^= 0x5a
	file.WriteAt(b, g.Bytes/2)
}

// TestRollbackPlansBeforeWriting: a rollback that meets a damaged undo
// segment is refused before anything is written: the target is unchanged,
// the pair stays Active (it was left RollingBack, "partly rolled back",
// and locked), and the error names the segment and offset and says which
// points can still be recovered; those can.
func TestRollbackPlansBeforeWriting(t *testing.T) {
	f := newFixture(t, 11, 300, true)
	segs := f.st.Segments()
	if len(segs) < 4 {
		t.Fatalf("%d segments, want at least 4", len(segs))
	}
	bad := segs[1]
	f.corrupt(t, bad)
	before, _ := f.fs.ReadFile("/r/target")
	r, _ := Resolve(f.st, Point{Kind: Earliest})
	_, err := Rollback(context.Background(), f.st, f.target, r, nil)
	if err == nil {
		t.Fatal("rollback across a damaged segment succeeded")
	}
	for _, want := range []string{"refused", "target is unchanged", "stays Active", fmt.Sprintf("segment %d", bad.Index), "offset",
		fmt.Sprintf("earliest point still recoverable is sequence %d", bad.LastSeq)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "partly rolled back") {
		t.Errorf("error says the target is partly rolled back, though nothing was written: %v", err)
	}
	var se *journal.SegmentError
	if !errors.As(err, &se) || se.Index != bad.Index || !errors.Is(err, journal.ErrCorrupt) {
		t.Fatalf("error %v: want a *journal.SegmentError of segment %d", err, bad.Index)
	}
	if s := f.st.State(); s.State != journal.StateActive {
		t.Fatalf("state after a refused rollback: %+v, want Active", s)
	}
	if got, _ := f.fs.ReadFile("/r/target"); !bytes.Equal(got, before) {
		t.Fatal("a refused rollback changed the target")
	}
	// A point after the damage can still be rolled back to.
	newer := Resolved{Pair: "p", Seq: bad.LastSeq}
	if _, err := Rollback(context.Background(), f.st, f.target, newer, nil); err != nil {
		t.Fatalf("rollback to sequence %d, after the damage: %v", bad.LastSeq, err)
	}
	got, _ := f.fs.ReadFile("/r/target")
	if d := testutil.Diff(got, f.images[bad.LastSeq]); d != "" {
		t.Fatalf("target rolled back to %d: %s", bad.LastSeq, d)
	}
}

// TestRollbackAbandon: a rollback stopped before its first write can be
// abandoned (the pair is Active again, the target as it was); one that
// wrote cannot, and says the target is partly rolled back.
func TestRollbackAbandon(t *testing.T) {
	f := newFixture(t, 12, 200, true)
	before, _ := f.fs.ReadFile("/r/target")
	r, _ := Resolve(f.st, Point{Kind: Earliest})
	f.st.Close()
	// The catalogue fails at the second transaction: the one that marks
	// the target written, right before the first write.
	n := 0
	st, err := journal.OpenStore(journal.StoreOptions{FS: f.fs, Dir: "/r/p", Pair: "p", CatalogueDir: f.cat, SegmentSize: 16 << 10,
		Hook: func() error {
			if n++; n == 2 {
				return errors.New("injected catalogue failure")
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.st = st
	_, err = Rollback(context.Background(), st, f.target, r, nil)
	if err == nil || !strings.Contains(err.Error(), "unchanged") || strings.Contains(err.Error(), "partly") {
		t.Fatalf("rollback stopped before writing: %v; want it to say the target is unchanged", err)
	}
	if s := st.State(); s.State != journal.StateRollingBack || s.RollbackWritten {
		t.Fatalf("state: %+v, want RollingBack, nothing written", s)
	}
	if err := st.AbandonRollback(); err != nil {
		t.Fatalf("abandon a rollback that wrote nothing: %v", err)
	}
	if s := st.State(); s.State != journal.StateActive || s.RollbackTo != 0 {
		t.Fatalf("state after abandon: %+v, want Active", s)
	}
	if got, _ := f.fs.ReadFile("/r/target"); !bytes.Equal(got, before) {
		t.Fatal("the target changed")
	}
	// Cut short after writing began: it can only be finished.
	ctx, cancel := context.WithCancel(context.Background())
	_, err = Rollback(ctx, st, f.target, r, func(done, total int64) { cancel() })
	if err == nil || !strings.Contains(err.Error(), "partly rolled back") {
		t.Fatalf("rollback cut short while writing: %v", err)
	}
	if err := st.AbandonRollback(); !errors.Is(err, journal.ErrRollbackWritten) {
		t.Fatalf("abandon a rollback that wrote: %v, want ErrRollbackWritten", err)
	}
	if s := st.State(); s.State != journal.StateRollingBack {
		t.Fatalf("state after a refused abandon: %+v", s)
	}
	if err := st.AbandonRollback(); err == nil {
		t.Fatal("second abandon accepted")
	}
	if _, err := Rollback(context.Background(), st, f.target, r, nil); err != nil {
		t.Fatalf("finishing the rollback: %v", err)
	}
	got, _ := f.fs.ReadFile("/r/target")
	if d := testutil.Diff(got, f.images[r.Seq]); d != "" {
		t.Fatalf("finished rollback: %s", d)
	}
}

// smallRuns makes apply write in runs of 4 KiB and start write-back every
// 8 KiB, so the small fixtures cross run and window boundaries.
func smallRuns(t *testing.T) {
	r, k := runSize, kickWindow
	runSize, kickWindow = 4<<10, 8<<10
	t.Cleanup(func() { runSize, kickWindow = r, k })
}
