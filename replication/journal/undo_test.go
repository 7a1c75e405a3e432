package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

const retDir = "/ret/p1"

// Undo records of 100 bytes take 144 bytes each: a segment of undoSegSize
// holds exactly three.
const (
	undoRecLen  = HeaderSize + 120
	undoSegSize = segHeaderSize + 3*undoRecLen
)

// at is the source time of sequence seq in the store tests: a minute apart.
func at(seq uint64) time.Time { return t0.Add(time.Duration(seq) * time.Minute) }

func undoRecord(seq uint64, gen byte) Record {
	data := make([]byte, 100)
	for i := range data {
		data[i] = byte(seq) + byte(i) ^ gen<<5
	}
	return Record{Type: TypeUndo, Seq: seq, Offset: int64(seq%16) * 512, Time: at(seq), Data: data}
}

func undoRecords(from, to uint64, gen byte) []Record {
	var out []Record
	for seq := from; seq <= to; seq++ {
		out = append(out, undoRecord(seq, gen))
	}
	return out
}

type storeEnv struct {
	t      *testing.T
	fs     *vfs.Mem
	catDir string
	hook   atomic.Pointer[error]
	// segSize, when set, replaces undoSegSize
	segSize int64
}

func newStoreEnv(t *testing.T) *storeEnv {
	return &storeEnv{t: t, fs: vfs.NewMem(), catDir: t.TempDir()}
}

func (e *storeEnv) opts() StoreOptions {
	size := int64(undoSegSize)
	if e.segSize != 0 {
		size = e.segSize
	}
	return StoreOptions{FS: e.fs, Dir: retDir, Pair: "p1", CatalogueDir: e.catDir, SegmentSize: size,
		Hook: func() error {
			if p := e.hook.Load(); p != nil {
				return *p
			}
			return nil
		}}
}

func (e *storeEnv) open() *Store {
	e.t.Helper()
	s, err := OpenStore(e.opts())
	if err != nil {
		e.t.Fatalf("OpenStore: %v", err)
	}
	return s
}

// apply is one applied batch: before-images of from..to appended and
// synced, then the commit.
func apply(t *testing.T, s *Store, from, to uint64, acc Accuracy, tags ...Tag) {
	t.Helper()
	if err := s.Append(undoRecords(from, to, 0)); err != nil {
		t.Fatalf("Append %d..%d: %v", from, to, err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := s.Commit(Commit{Applied: to, AppliedTime: at(to), Accuracy: acc, Tags: tags, FirstTime: at(from)}); err != nil {
		t.Fatalf("Commit %d: %v", to, err)
	}
}

func tagAt(seq uint64, name string) Tag {
	return Tag{Seq: seq, Time: at(seq), Name: name, App: AppFS, ID: "id-" + name, Accuracy: Exact}
}

// undoAll reads the committed undo records after..upto.
func undoAll(t *testing.T, s *Store, after, upto uint64) []Record {
	t.Helper()
	var out []Record
	err := s.Undo(after, upto, func(r *Record) error {
		c := *r
		c.Data = append([]byte(nil), r.Data...)
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Undo(%d, %d): %v", after, upto, err)
	}
	return out
}

func checkUndo(t *testing.T, recs []Record, from, to uint64, gen func(uint64) byte) {
	t.Helper()
	if len(recs) != int(to-from+1) {
		var seqs []uint64
		for _, r := range recs {
			seqs = append(seqs, r.Seq)
		}
		t.Fatalf("%d undo records %v, want %d..%d", len(recs), seqs, from, to)
	}
	for i, r := range recs {
		seq := from + uint64(i)
		if d := diffRecord(r, undoRecord(seq, gen(seq))); d != "" {
			t.Fatalf("undo record %d: %s", seq, d)
		}
	}
}

// same compares catalogue values through their JSON, which is how the
// catalogue keeps them.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("%s:\n got %s\nwant %s", what, g, w)
	}
}

func undoFiles(t *testing.T, m *vfs.Mem) []string {
	t.Helper()
	names, err := m.List(retDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, ".undo") {
			out = append(out, n)
		}
	}
	return out
}

func undoName(index uint64) string { return fmt.Sprintf("%016x.undo", index) }

func TestStoreCommitPersists(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	if st := s.State(); st.Pair != "p1" || st.State != StateActive || st.Applied != 0 {
		t.Fatalf("new store state %+v", st)
	}
	if seq, tm := s.Earliest(); seq != 0 || !tm.IsZero() {
		t.Fatalf("new store Earliest = %d %v", seq, tm)
	}
	apply(t, s, 1, 4, Exact)
	apply(t, s, 5, 9, Exact, tagAt(7, "seven"))
	apply(t, s, 10, 12, Approximate, tagAt(12, "twelve"))

	wantSegs := []SegmentInfo{
		{Index: 0, FirstSeq: 1, LastSeq: 3, FirstTime: at(1), LastTime: at(3), PrevTime: at(1), Bytes: undoSegSize},
		{Index: 1, FirstSeq: 4, LastSeq: 6, FirstTime: at(4), LastTime: at(6), PrevTime: at(3), Bytes: undoSegSize},
		{Index: 2, FirstSeq: 7, LastSeq: 9, FirstTime: at(7), LastTime: at(9), PrevTime: at(6), Bytes: undoSegSize},
		{Index: 3, FirstSeq: 10, LastSeq: 12, FirstTime: at(10), LastTime: at(12), PrevTime: at(9), Bytes: undoSegSize},
	}
	wantRanges := []Range{
		{FirstSeq: 0, FirstTime: at(1), LastSeq: 9, LastTime: at(9), Accuracy: Exact},
		{FirstSeq: 9, FirstTime: at(9), LastSeq: 12, LastTime: at(12), Accuracy: Approximate},
	}
	wantTags := []Tag{tagAt(7, "seven"), tagAt(12, "twelve")}
	wantState := PairState{Pair: "p1", Applied: 12, AppliedTime: at(12), State: StateActive}
	check := func(s *Store) {
		t.Helper()
		same(t, "segments", s.Segments(), wantSegs)
		same(t, "ranges", s.Ranges(), wantRanges)
		same(t, "tags", s.Tags(), wantTags)
		same(t, "state", s.State(), wantState)
		if s.Used() != 4*undoSegSize {
			t.Fatalf("Used() = %d, want %d", s.Used(), 4*undoSegSize)
		}
		if seq, tm := s.Earliest(); seq != 0 || !tm.Equal(at(1)) {
			t.Fatalf("Earliest() = %d %v, want 0 %v", seq, tm, at(1))
		}
		checkUndo(t, undoAll(t, s, 0, 12), 1, 12, gen0)
		checkUndo(t, undoAll(t, s, 4, 8), 5, 8, gen0)
		checkUndo(t, undoAll(t, s, 11, 100), 12, 12, gen0)
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = e.open()
	defer s.Close()
	check(s)
	if got := undoFiles(t, e.fs); len(got) != 4 {
		t.Fatalf("segment files %v", got)
	}
	// Appending goes on in a new segment after the full last one.
	apply(t, s, 13, 13, Approximate)
	if segs := s.Segments(); len(segs) != 5 || segs[4].FirstSeq != 13 || !segs[4].PrevTime.Equal(at(12)) {
		t.Fatalf("segment after reopen: %+v", segs[len(segs)-1])
	}
	checkUndo(t, undoAll(t, s, 0, 13), 1, 13, gen0)
}

// TestStoreUncommitted: before-images written after the last Commit are
// a batch a crash cut short; after a reopen Uncommitted returns them (only
// the ones past the applied position) and DiscardUncommitted cuts them.
func TestStoreUncommitted(t *testing.T) {
	for _, tc := range []struct {
		name      string
		committed uint64 // 1..committed applied
		pending   [2]uint64
		want      [2]uint64
	}{
		{"first batch", 0, [2]uint64{1, 5}, [2]uint64{1, 5}},
		{"into a new segment", 3, [2]uint64{4, 8}, [2]uint64{4, 8}},
		{"after the last segment's records", 4, [2]uint64{5, 9}, [2]uint64{5, 9}},
		{"at or below applied dropped", 4, [2]uint64{3, 7}, [2]uint64{5, 7}},
		{"all below applied", 6, [2]uint64{5, 6}, [2]uint64{1, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newStoreEnv(t)
			s := e.open()
			if tc.committed > 0 {
				apply(t, s, 1, tc.committed, Exact)
			}
			segsBefore := s.Segments()
			if err := s.Append(undoRecords(tc.pending[0], tc.pending[1], 1)); err != nil {
				t.Fatal(err)
			}
			if err := s.Sync(); err != nil {
				t.Fatal(err)
			}
			s.Close() // a crash before Commit
			s = e.open()
			defer s.Close()
			same(t, "segments", s.Segments(), segsBefore)
			got, err := s.Uncommitted()
			if err != nil {
				t.Fatalf("Uncommitted: %v", err)
			}
			checkUndo(t, got, tc.want[0], tc.want[1], func(uint64) byte { return 1 })
			if err := s.DiscardUncommitted(); err != nil {
				t.Fatalf("DiscardUncommitted: %v", err)
			}
			if got, err := s.Uncommitted(); err != nil || len(got) != 0 {
				t.Fatalf("Uncommitted after the discard: %d records, %v", len(got), err)
			}
			// Only the committed segments are left, at their committed length.
			if files := undoFiles(t, e.fs); len(files) != len(segsBefore) {
				t.Fatalf("files %v after the discard, want %d", files, len(segsBefore))
			}
			if n := len(segsBefore); n > 0 {
				last := segsBefore[n-1]
				if b, _ := e.fs.ReadFile(filepath.Join(retDir, undoName(last.Index))); int64(len(b)) != last.Bytes {
					t.Fatalf("last segment %d bytes, committed %d", len(b), last.Bytes)
				}
			}
			// The batch is applied again from the redo journal.
			apply(t, s, tc.committed+1, tc.committed+5, Exact)
			s.Close()
			s = e.open()
			checkUndo(t, undoAll(t, s, 0, 100), 1, tc.committed+5, gen0)
			if got, _ := s.Uncommitted(); len(got) != 0 {
				t.Fatalf("Uncommitted after the retry: %d records", len(got))
			}
		})
	}
}

// TestStoreHookAbortsCommit: a catalogue transaction that fails leaves the
// catalogue, and the store's view of it, as before.
func TestStoreHookAbortsCommit(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	apply(t, s, 1, 4, Exact, tagAt(2, "two"))
	before := []any{s.Segments(), s.Ranges(), s.Tags(), s.State()}
	boom := errors.New("power cut")
	e.hook.Store(&boom)
	if err := s.Append(undoRecords(5, 8, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	err := s.Commit(Commit{Applied: 8, AppliedTime: at(8), Accuracy: Approximate, Tags: []Tag{tagAt(6, "six")}})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), e.catDir) {
		t.Fatalf("Commit: %v, want the hook's error naming the catalogue", err)
	}
	check := func(s *Store) {
		t.Helper()
		same(t, "after the failed commit", []any{s.Segments(), s.Ranges(), s.Tags(), s.State()}, before)
	}
	check(s)
	if _, err := s.SetTagLock("two", true); !errors.Is(err, boom) {
		t.Fatalf("SetTagLock under the hook: %v", err)
	}
	if err := s.SetState(StatePaused, "test", 0); !errors.Is(err, boom) {
		t.Fatalf("SetState under the hook: %v", err)
	}
	if _, err := s.Prune(PruneOptions{Max: 1}); !errors.Is(err, boom) {
		t.Fatalf("Prune under the hook: %v", err)
	}
	check(s)
	if files := undoFiles(t, e.fs); len(files) != 3 {
		t.Fatalf("files %v: a failed prune removed segments", files)
	}
	s.Close()
	e.hook.Store(nil)
	s = e.open()
	check(s)
	got, err := s.Uncommitted()
	if err != nil {
		t.Fatal(err)
	}
	checkUndo(t, got, 5, 8, gen0)

	// The same batch, committed again once the catalogue works.
	if err := s.DiscardUncommitted(); err != nil {
		t.Fatal(err)
	}
	e.hook.Store(&boom)
	apply := func() error {
		if err := s.Append(undoRecords(5, 8, 0)); err != nil {
			return err
		}
		if err := s.Sync(); err != nil {
			return err
		}
		return s.Commit(Commit{Applied: 8, AppliedTime: at(8), Accuracy: Approximate, Tags: []Tag{tagAt(6, "six")}})
	}
	if err := apply(); !errors.Is(err, boom) {
		t.Fatalf("Commit: %v", err)
	}
	e.hook.Store(nil)
	// A retry in the same session commits what the failed one did not.
	if err := s.Commit(Commit{Applied: 8, AppliedTime: at(8), Accuracy: Approximate, Tags: []Tag{tagAt(6, "six")}}); err != nil {
		t.Fatalf("retried Commit: %v", err)
	}
	s.Close()
	s = e.open()
	defer s.Close()
	if st := s.State(); st.Applied != 8 {
		t.Fatalf("applied %d after the retried commit", st.Applied)
	}
	if tags := s.Tags(); len(tags) != 2 || tags[1].Name != "six" {
		t.Fatalf("tags %+v", tags)
	}
	checkUndo(t, undoAll(t, s, 0, 8), 1, 8, gen0)
}

func TestStoreENOSPC(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reopen bool // the failed batch extends the reopened last segment
		room   int64
	}{
		{"new segment", false, 100},
		{"new segment header", false, 10},
		{"last segment", true, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newStoreEnv(t)
			s := e.open()
			if tc.reopen {
				apply(t, s, 1, 4, Exact)
				s.Close()
				s = e.open()
			} else {
				apply(t, s, 1, 6, Exact)
			}
			committed := s.Segments()
			var used int64
			for _, f := range undoFiles(t, e.fs) {
				b, _ := e.fs.ReadFile(filepath.Join(retDir, f))
				used += int64(len(b))
			}
			e.fs.SetCapacity(used + tc.room)
			next := committed[len(committed)-1].LastSeq + 1
			err := s.Append(undoRecords(next, next+2, 1))
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("Append on a full volume: %v, want ENOSPC", err)
			}
			if err := s.DropPending(); err != nil {
				t.Fatalf("DropPending: %v", err)
			}
			same(t, "segments after DropPending", s.Segments(), committed)
			if files := undoFiles(t, e.fs); len(files) != len(committed) {
				t.Fatalf("files %v after DropPending", files)
			}
			if got, err := s.Uncommitted(); err != nil || len(got) != 0 {
				t.Fatalf("Uncommitted after DropPending: %d records, %v", len(got), err)
			}
			// Space comes back (pruning or the operator): the batch goes in.
			e.fs.SetCapacity(0)
			apply(t, s, next, next+2, Exact)
			s.Close()
			s = e.open()
			defer s.Close()
			checkUndo(t, undoAll(t, s, 0, next+2), 1, next+2, gen0)
			if st := s.State(); st.Applied != next+2 {
				t.Fatalf("applied %d, want %d", st.Applied, next+2)
			}
		})
	}
}

func TestStoreSeqAt(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	defer s.Close()
	if seq, tm, err := s.SeqAt(at(5)); err != nil || seq != 0 || !tm.IsZero() {
		t.Fatalf("SeqAt on an empty store: %d %v %v", seq, tm, err)
	}
	apply(t, s, 1, 15, Exact)
	for _, tc := range []struct {
		t    time.Time
		seq  uint64
		err  string
		when time.Time
	}{
		{at(1), 1, "", at(1)},
		{at(7), 7, "", at(7)},
		{at(7).Add(59 * time.Second), 7, "", at(7)},
		{at(8).Add(-time.Nanosecond), 7, "", at(7)},
		{at(15), 15, "", at(15)},
		{at(100), 15, "", at(15)},
		{at(1).Add(-time.Second), 0, "before the earliest recoverable point", time.Time{}},
	} {
		seq, when, err := s.SeqAt(tc.t)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("SeqAt(%v) = %d, %v; want an error saying %q", tc.t, seq, err, tc.err)
			}
			continue
		}
		if err != nil || seq != tc.seq || !when.Equal(tc.when) {
			t.Errorf("SeqAt(%v) = %d %v %v, want %d %v", tc.t, seq, when, err, tc.seq, tc.when)
		}
	}
	// After pruning the first two segments the earliest point is after 6.
	if _, err := s.Prune(PruneOptions{Max: 2}); err != nil {
		t.Fatal(err)
	}
	if seq, when, err := s.SeqAt(at(6)); err != nil || seq != 6 || !when.Equal(at(6)) {
		t.Fatalf("SeqAt(earliest) = %d %v %v, want 6", seq, when, err)
	}
	if _, _, err := s.SeqAt(at(6).Add(-time.Second)); err == nil || !strings.Contains(err.Error(), "before the earliest recoverable point") {
		t.Fatalf("SeqAt before the earliest point: %v", err)
	}
}

func TestStoreOpenRefuses(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	apply(t, s, 1, 2, Exact)

	// A second opener waits for the lock, then says who holds it.
	o := e.opts()
	if _, err := OpenStore(o); !errors.Is(err, ErrInUse) {
		t.Fatalf("second OpenStore: %v, want ErrInUse", err)
	}
	s.Close()

	o.Pair = "p2"
	if _, err := OpenStore(o); err == nil || !strings.Contains(err.Error(), `belongs to pair "p1"`) {
		t.Fatalf("OpenStore for another pair: %v", err)
	}
	o.Pair = ""
	s, err := OpenStore(o)
	if err != nil {
		t.Fatalf("OpenStore without a pair id: %v", err)
	}
	if s.State().Applied != 2 {
		t.Fatalf("state %+v", s.State())
	}
	s.Close()

	o.Pair = "p1"
	o.ReadOnly = true
	s, err = OpenStore(o)
	if err != nil {
		t.Fatalf("read-only OpenStore: %v", err)
	}
	defer s.Close()
	checkUndo(t, undoAll(t, s, 0, 2), 1, 2, gen0)
}

func TestStorePolicyAndState(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	same(t, "default policy", s.Policy(), DefaultPolicy)
	for _, bad := range []Policy{{Window: -time.Hour}, {SizeCap: -1}} {
		if err := s.SetPolicy(bad); err == nil || !strings.Contains(err.Error(), "must not be negative") {
			t.Fatalf("SetPolicy(%+v): %v", bad, err)
		}
	}
	if err := s.SetPolicy(Policy{Window: 72 * time.Hour, SizeCap: 1 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(StatePaused, "volume full", 0); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTarget("/dev/sdb"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = e.open()
	defer s.Close()
	same(t, "policy", s.Policy(), Policy{Window: 72 * time.Hour, SizeCap: 1 << 30, OnFull: Purge})
	same(t, "state", s.State(), PairState{Pair: "p1", Target: "/dev/sdb", State: StatePaused, Reason: "volume full"})
}

// TestStoreOrphans: segment files below the first catalogued one (a prune
// whose unlinks a crash cut short) are removed on open; newer ones stay
// for Uncommitted.
func TestStoreOrphans(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	apply(t, s, 1, 12, Exact)
	if res, err := s.Prune(PruneOptions{Max: 2}); err != nil || res.Segments != 2 {
		t.Fatalf("Prune: %+v %v", res, err)
	}
	s.Close()
	for _, name := range []string{undoName(0), undoName(1), "notes.txt"} {
		if err := vfs.WriteFile(e.fs, filepath.Join(retDir, name), []byte("left over"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s = e.open()
	defer s.Close()
	if got := undoFiles(t, e.fs); strings.Join(got, " ") != undoName(2)+" "+undoName(3) {
		t.Fatalf("segment files after open: %v", got)
	}
	if _, err := e.fs.ReadFile(filepath.Join(retDir, "notes.txt")); err != nil {
		t.Fatalf("a file that is not a segment was removed: %v", err)
	}
	checkUndo(t, undoAll(t, s, 6, 12), 7, 12, gen0)
}

func TestStoreUndoCorrupt(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	defer s.Close()
	apply(t, s, 1, 6, Exact)
	path := filepath.Join(retDir, undoName(1))
	f, err := e.fs.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	off := int64(segHeaderSize + undoRecLen) // record 5
	f.WriteAt([]byte{0xff}, off+HeaderSize+20)
	f.Close()
	var seen []uint64
	err = s.Undo(0, 6, func(r *Record) error { seen = append(seen, r.Seq); return nil })
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("%s offset %d", path, off)) {
		t.Fatalf("Undo over a damaged record: %v", err)
	}
	if fmt.Sprint(seen) != "[1 2 3 4]" {
		t.Fatalf("records before the damage: %v", seen)
	}
	stop := errors.New("stop")
	if err := s.Undo(0, 6, func(*Record) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("Undo did not return the callback's error: %v", err)
	}
}

// storeWorkload applies batches of four before-images, pruning now and
// then, until the file system fails. It returns the applied position.
func storeWorkload(s *Store) uint64 {
	var applied uint64
	for b := uint64(0); b < 8; b++ {
		from, to := 4*b+1, 4*b+4
		if s.Append(undoRecords(from, to, 0)) != nil || s.Sync() != nil {
			return applied
		}
		if s.Commit(Commit{Applied: to, AppliedTime: at(to), Accuracy: Exact, FirstTime: at(from)}) != nil {
			return applied
		}
		applied = to
		if b%3 == 2 {
			if _, err := s.Prune(PruneOptions{Max: 2}); err != nil {
				return applied
			}
		}
	}
	return applied
}

// TestStoreCrash crashes the segment file system at every operation of a
// workload: what was committed reads back intact from the earliest point,
// an interrupted batch shows in Uncommitted as a prefix of itself, and the
// store goes on (invariant 2 on the store's side).
func TestStoreCrash(t *testing.T) {
	inj, count := crashAt(0)
	e := newStoreEnv(t)
	e.fs.SetInjector(inj)
	s := e.open()
	if storeWorkload(s) != 32 {
		t.Fatal("the workload failed without a crash")
	}
	s.Close()
	total := count.Load()
	for _, tm := range tearModes {
		t.Run(tm.name, func(t *testing.T) {
			t.Parallel()
			crashStore(t, tm.mode, tm.name, total)
		})
	}
}

// crashStore runs the workload with a crash at each of its total
// operations in one tear mode and checks the store after each.
func crashStore(t *testing.T, mode vfs.TearMode, modeName string, total int64) {
	rng := rand.New(rand.NewSource(total))
	for n := int64(1); n <= total; n++ {
		what := fmt.Sprintf("crash at operation %d of %d, %s (seed %d)", n, total, modeName, total)
		e := newStoreEnv(t)
		inj, _ := crashAt(n)
		e.fs.SetInjector(inj)
		s := e.open()
		applied := storeWorkload(s)
		s.Close()
		e.fs = e.fs.Crash(mode, rng)
		s, err := OpenStore(e.opts())
		if err != nil {
			t.Fatalf("%s: OpenStore: %v", what, err)
		}
		if st := s.State(); st.Applied != applied {
			t.Fatalf("%s: applied %d, the workload saw %d committed", what, st.Applied, applied)
		}
		earliest, _ := s.Earliest()
		var recs []Record
		err = s.Undo(earliest, applied, func(r *Record) error {
			recs = append(recs, *r)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: Undo: %v", what, err)
		}
		if applied > 0 {
			checkUndo(t, recs, earliest+1, applied, gen0)
		}
		pending, err := s.Uncommitted()
		if err != nil {
			t.Fatalf("%s: Uncommitted: %v", what, err)
		}
		for i, r := range pending {
			if d := diffRecord(r, undoRecord(applied+1+uint64(i), 0)); d != "" {
				t.Fatalf("%s: uncommitted record %d: %s", what, i, d)
			}
		}
		if len(pending) > 4 {
			t.Fatalf("%s: %d uncommitted records from a batch of 4", what, len(pending))
		}
		if err := s.DiscardUncommitted(); err != nil {
			t.Fatalf("%s: DiscardUncommitted: %v", what, err)
		}
		apply(t, s, applied+1, applied+4, Exact)
		s.Close()
		s = e.open()
		checkUndo(t, undoAll(t, s, earliest, applied+4), earliest+1, applied+4, gen0)
		s.Close()
	}
}

// Source times can step back in sequence order: a resync's data is
// stamped when it arrives here, the writes streamed beside it when the
// source made them, and a source clock can be stepped. No range may end
// before it starts, neither when committed nor when pruning moves its
// start, nor when such a range was recorded by an older version.
func TestStoreRangesNeverInverted(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	commit := func(from, to uint64, times []time.Time, applied time.Time, acc Accuracy) {
		t.Helper()
		recs := undoRecords(from, to, 0)
		for i := range recs {
			recs[i].Time = times[i]
		}
		if err := s.Append(recs); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := s.Commit(Commit{Applied: to, AppliedTime: applied, Accuracy: acc, FirstTime: times[0]}); err != nil {
			t.Fatal(err)
		}
	}
	// seq 1..3: a resync stamped on arrival (this clock runs 20 min
	// ahead of the source's); its last write, seq 3, arrives last.
	commit(1, 3, []time.Time{at(21), at(22), at(23)}, at(23), NotGuaranteed)
	// seq 4..6 stream in source time: before the resync's stamps.
	commit(4, 6, []time.Time{at(4), at(5), at(6)}, at(6), Exact)
	// seq 7..12 in one batch whose write 9, the last of its segment, is
	// stamped late.
	commit(7, 12, []time.Time{at(7), at(8), at(40), at(10), at(11), at(12)}, at(12), Exact)
	check := func(what string) {
		t.Helper()
		for _, r := range s.Ranges() {
			if r.LastTime.Before(r.FirstTime) {
				t.Fatalf("%s: range %d-%d ends at %s, before its start %s", what, r.FirstSeq, r.LastSeq, r.LastTime, r.FirstTime)
			}
		}
		if st := s.State(); st.AppliedTime.Before(at(23)) {
			t.Fatalf("%s: applied time %s stepped back from %s", what, st.AppliedTime, at(23))
		}
	}
	check("committed")
	same(t, "ranges", s.Ranges(), []Range{
		{FirstSeq: 0, FirstTime: at(21), LastSeq: 3, LastTime: at(23), Accuracy: NotGuaranteed},
		{FirstSeq: 3, FirstTime: at(23), LastSeq: 12, LastTime: at(23), Accuracy: Exact},
	})
	// Pruning three segments starts the window after seq 9, at the time
	// of the last before-image before it, at(40): later than the range's
	// end.
	if _, err := s.Prune(PruneOptions{Max: 3}); err != nil {
		t.Fatal(err)
	}
	check("pruned")
	// A range recorded inverted by an older version is shown in order.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := openCatalogue(e.catDir, "p1", false, 0)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bRanges), key(9), Range{FirstSeq: 9, FirstTime: at(40), LastSeq: 12, LastTime: at(12), Accuracy: Exact})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s = e.open()
	defer s.Close()
	check("reopened")
}

// TestStoreCommitStaged: a commit of the before-images appended up to a
// Staged point, while more were appended after it (into the same segment
// and into new ones), records only those: after a crash Uncommitted
// returns exactly the later ones, and a later commit takes them in.
func TestStoreCommitStaged(t *testing.T) {
	for _, crash := range []bool{true, false} {
		e := newStoreEnv(t)
		s := e.open()
		apply(t, s, 1, 2, Exact)
		if err := s.Append(undoRecords(3, 4, 0)); err != nil {
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		at4 := s.Staged()
		if err := s.Append(undoRecords(5, 11, 1)); err != nil { // past the segment's end
			t.Fatal(err)
		}
		if err := s.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := s.CommitStaged(Commit{Applied: 4, AppliedTime: at(4), Accuracy: Exact, FirstTime: at(3)}, at4); err != nil {
			t.Fatal(err)
		}
		if st := s.State(); st.Applied != 4 {
			t.Fatalf("applied %d after the staged commit, want 4", st.Applied)
		}
		segs := s.Segments()
		if n := len(segs); n == 0 || segs[n-1].LastSeq != 4 {
			t.Fatalf("committed segments %+v: want the last to end at sequence 4", segs)
		}
		if !crash {
			if err := s.Commit(Commit{Applied: 11, AppliedTime: at(11), Accuracy: Exact}); err != nil {
				t.Fatal(err)
			}
		}
		s.Close() // with crash, before 5..11 are committed
		s = e.open()
		got, err := s.Uncommitted()
		if err != nil {
			t.Fatal(err)
		}
		committed := undoAll(t, s, 0, 100)
		if crash {
			checkUndo(t, got, 5, 11, func(uint64) byte { return 1 })
			checkUndo(t, committed, 1, 4, gen0)
		} else {
			if len(got) != 0 {
				t.Fatalf("Uncommitted after both commits: %d records", len(got))
			}
			checkUndo(t, committed, 1, 11, func(seq uint64) byte {
				if seq >= 5 {
					return 1
				}
				return 0
			})
		}
		if len(s.Segments()) < 2 {
			t.Fatalf("segments %+v: the test wants 5..11 to cross into a new segment", s.Segments())
		}
		s.Close()
	}
}

// TestStoreCommitStagedAcrossRoll: the applier's commit runs beside the
// next batch, so a CommitStaged can come between an Append that seals a
// segment and the Sync of that batch. The sealed segment, committed to
// its end, is closed by the commit: the next Sync must not touch it
// (the damage matrix met "fdatasync ...undo: bad file descriptor").
func TestStoreCommitStagedAcrossRoll(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	defer func() { s.Close() }()
	const last = 40 // one record a batch: every roll is at a batch's first record
	for seq := uint64(1); seq <= last; seq++ {
		staged := s.Staged()
		if err := s.Append(undoRecords(seq, seq, 2)); err != nil {
			t.Fatalf("append %d: %v", seq, err)
		}
		if seq > 1 {
			if err := s.CommitStaged(Commit{Applied: seq - 1, AppliedTime: at(seq - 1), Accuracy: Exact}, staged); err != nil {
				t.Fatalf("commit of %d: %v", seq-1, err)
			}
		}
		if err := s.Sync(); err != nil {
			t.Fatalf("sync of %d: %v", seq, err)
		}
	}
	if err := s.Commit(Commit{Applied: last, AppliedTime: at(last), Accuracy: Exact}); err != nil {
		t.Fatal(err)
	}
	if n := len(s.Segments()); n < 3 {
		t.Fatalf("%d segments: the test wants the records to cross segments", n)
	}
	s.Close()
	s = e.open()
	checkUndo(t, undoAll(t, s, 0, last), 1, last, func(uint64) byte { return 2 })
}
