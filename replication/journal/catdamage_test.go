package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// storeView is everything a store reports, for comparing a damaged
// catalogue's answers with the good one's.
type storeView struct {
	State    PairState
	Policy   Policy
	Tags     []Tag
	Ranges   []Range
	Segments []SegmentInfo
	Undo     []Record
}

func viewOf(t *testing.T, s *Store) storeView {
	t.Helper()
	st := s.State()
	v := storeView{State: st, Policy: s.Policy(), Tags: s.Tags(), Ranges: s.Ranges(), Segments: s.Segments()}
	err := s.Undo(0, st.Applied, func(r *Record) error {
		c := *r
		c.Data = append([]byte(nil), r.Data...)
		v.Undo = append(v.Undo, c)
		return nil
	})
	if err != nil {
		t.Fatalf("Undo: %v", err)
	}
	return v
}

// damageFixture is a store of pair p1 with pruned and kept segments, tags,
// ranges, a policy and a target, and a batch a crash cut short.
func damageFixture(t *testing.T) (*storeEnv, storeView) {
	e := newStoreEnv(t)
	s := e.open()
	if err := s.SetTarget("/dev/tgt"); err != nil {
		t.Fatal(err)
	}
	for i := uint64(0); i < 12; i++ {
		from := 1 + i*4
		var tags []Tag
		for seq := from; seq < from+4; seq += 2 {
			tags = append(tags, tagAt(seq, fmt.Sprintf("t%d", seq)))
		}
		acc := Exact
		if i%3 == 2 {
			acc = NotGuaranteed
		}
		apply(t, s, from, from+3, acc, tags...)
	}
	if _, err := s.SetTagLock("t25", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(PruneOptions{Max: 3}); err != nil {
		t.Fatal(err)
	}
	// A batch cut short: before-images past the applied position.
	if err := s.Append(undoRecords(49, 50, 0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	// The last transaction writes what the one before wrote, so a damaged
	// newest meta page, from which bbolt falls back to the other, still
	// gives the same answers.
	p := Policy{Window: 48 * time.Hour, OnFull: Purge}
	for range 2 {
		if err := s.SetPolicy(p); err != nil {
			t.Fatal(err)
		}
	}
	want := viewOf(t, s)
	s.Close()
	if len(want.Segments) < 3 || want.Segments[0].Index == 0 || len(want.Tags) < 10 {
		t.Fatalf("fixture: %d segments from %d, %d tags", len(want.Segments), want.Segments[0].Index, len(want.Tags))
	}
	return e, want
}

func segmentListing(t *testing.T, m *vfs.Mem) string {
	t.Helper()
	var b strings.Builder
	fs := files(t, m, retDir)
	for _, n := range undoFiles(t, m) {
		data := fs[filepath.Join(retDir, n)]
		fmt.Fprintf(&b, "%s %d %x\n", n, len(data), crc(data))
	}
	return b.String()
}

func crc(b []byte) uint32 {
	var h uint32 = 2166136261
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// boltPageSize reads the page size from a good catalogue's first meta page.
func boltPageSize(t *testing.T, db []byte) int {
	m, ok := parseBoltMeta(db[:4096])
	if !ok {
		t.Fatal("fixture catalogue: no valid meta page 0")
	}
	return int(m.pageSize)
}

// TestCatalogueDamage damages the catalogue every way an operator or a
// disk does and opens the store read-write and read-only: the answers are
// the good catalogue's or an error that names the file and wraps
// ErrCatalogueMissing or ErrCatalogueCorrupt; never a panic, never a
// segment removed or cut.
func TestCatalogueDamage(t *testing.T) {
	e, want := damageFixture(t)
	catPath := filepath.Join(e.catDir, "catalogue.db")
	good, err := os.ReadFile(catPath)
	if err != nil {
		t.Fatal(err)
	}
	ps := boltPageSize(t, good)
	segs := segmentListing(t, e.fs)

	// Another pair's catalogue, of another history.
	e2 := newStoreEnv(t)
	o2 := e2.opts()
	o2.Pair = "p2"
	s2, err := OpenStore(o2)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s2, 1, 5, Exact, tagAt(2, "other"))
	apply(t, s2, 6, 6, Exact)
	s2.Close()
	other, err := os.ReadFile(filepath.Join(e2.catDir, "catalogue.db"))
	if err != nil {
		t.Fatal(err)
	}

	type damage struct {
		name string
		data []byte // nil: no file
		// missing: ErrCatalogueMissing is the only right answer; corrupt:
		// ErrCatalogueCorrupt is; else the good answers or either error.
		missing, corrupt bool
	}
	var cases []damage
	cases = append(cases, damage{name: "missing", missing: true}, damage{name: "zero length", data: []byte{}, missing: true},
		damage{name: "another pair's", data: other, corrupt: true})
	sizes := []int{1, 100, 40000, len(good) - 1}
	for p := 1; p*ps <= len(good); p++ {
		sizes = append(sizes, p*ps-1, p*ps, p*ps+ps/2)
	}
	for _, n := range sizes {
		if n < len(good) {
			cases = append(cases, damage{name: fmt.Sprintf("truncated to %d", n), data: good[:n]})
		}
	}
	offs := []int{8292}
	for p := 0; p*ps < len(good); p++ {
		for _, o := range []int{0, 8, 16, 48, 100, ps / 2, ps - 64} {
			offs = append(offs, p*ps+o)
		}
	}
	for _, off := range offs {
		d := bytes.Clone(good)
		for i := off; i < off+64 && i < len(d); i++ {
			d[i] ^= 0xFF
		}
		cases = append(cases, damage{name: fmt.Sprintf("64 bytes flipped at %d (page %d)", off, off/ps), data: d})
	}

	place := func(c damage) {
		t.Helper()
		os.Remove(catPath)
		if c.data != nil {
			if err := os.WriteFile(catPath, c.data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	refused := 0
	for _, c := range cases {
		for _, ro := range []bool{true, false} {
			place(c)
			o := e.opts()
			o.ReadOnly = ro
			if ro {
				o.Pair = "" // as `mtconsole retention` opens it
			}
			what := fmt.Sprintf("%s, read-only %v", c.name, ro)
			s, err := openNoPanic(o)
			if err != nil {
				refused++
				if !errors.Is(err, ErrCatalogueMissing) && !errors.Is(err, ErrCatalogueCorrupt) {
					t.Errorf("%s: %v: not a named catalogue error", what, err)
				} else if !strings.Contains(err.Error(), catPath) {
					t.Errorf("%s: %v: does not name %s", what, err, catPath)
				} else if c.missing && !errors.Is(err, ErrCatalogueMissing) || c.corrupt && !errors.Is(err, ErrCatalogueCorrupt) {
					t.Errorf("%s: %v: wrong error", what, err)
				}
			} else {
				if c.missing || c.corrupt {
					t.Errorf("%s: opened, want it refused", what)
				}
				got := viewOf(t, s)
				same(t, what+": answers", got, want)
				if !ro {
					un, err := s.Uncommitted()
					if err != nil || len(un) != 2 {
						t.Errorf("%s: Uncommitted: %d records, %v", what, len(un), err)
					}
					if err := s.SetPolicy(want.Policy); err != nil && !errors.Is(err, ErrCatalogueCorrupt) {
						t.Errorf("%s: SetPolicy: %v", what, err)
					}
				}
				s.Close()
			}
			if got := segmentListing(t, e.fs); got != segs {
				t.Fatalf("%s: segments changed:\n%s\nwant\n%s", what, got, segs)
			}
		}
	}
	t.Logf("%d cases, %d opens refused", len(cases), refused)
	if refused == 0 {
		t.Fatal("no damage was refused")
	}

	// The good catalogue back: everything as it was.
	place(damage{data: good})
	s := e.open()
	same(t, "restored", viewOf(t, s), want)
	s.Close()
}

func openNoPanic(o StoreOptions) (s *Store, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return OpenStore(o)
}

// TestCatalogueMissingBesideSegments is the report of issue 12: the
// catalogue removed while undo segments remain must not read as a fresh
// pair (nothing applied), whose recovery would undo every before-image
// onto the target and delete the segments.
func TestCatalogueMissingBesideSegments(t *testing.T) {
	e, _ := damageFixture(t)
	segs := segmentListing(t, e.fs)
	catPath := filepath.Join(e.catDir, "catalogue.db")
	if err := os.Remove(catPath); err != nil {
		t.Fatal(err)
	}
	_, err := OpenStore(e.opts())
	if !errors.Is(err, ErrCatalogueMissing) || !strings.Contains(err.Error(), catPath) || !strings.Contains(err.Error(), "but 14 undo segments") {
		t.Fatalf("OpenStore: %v, want ErrCatalogueMissing naming %s and the 14 segments", err, catPath)
	}
	if _, err := os.Stat(catPath); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused open left a catalogue behind: %v", err)
	}
	if got := segmentListing(t, e.fs); got != segs {
		t.Fatalf("segments changed:\n%s\nwant\n%s", got, segs)
	}

	// A catalogue bbolt created but the store never initialised (a crash
	// between the two) is no better.
	if err := os.WriteFile(catPath, emptyBolt(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenStore(e.opts()); !errors.Is(err, ErrCatalogueMissing) {
		t.Fatalf("OpenStore beside an uninitialised catalogue: %v", err)
	}
	if got := segmentListing(t, e.fs); got != segs {
		t.Fatalf("segments changed:\n%s\nwant\n%s", got, segs)
	}
}

// emptyBolt is a bbolt file with no buckets.
func emptyBolt(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bare.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCatalogueOfAnotherPairSameShape copies in the catalogue of another
// pair with the very same history: the segments cannot tell it apart, so
// the directory's pair.id does, for a reader that knows no pair id.
func TestCatalogueOfAnotherPairSameShape(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	apply(t, s, 1, 5, Exact, tagAt(3, "mine"))
	s.Close()
	e2 := newStoreEnv(t)
	o2 := e2.opts()
	o2.Pair = "p2"
	s2, err := OpenStore(o2)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s2, 1, 5, Exact, tagAt(3, "theirs"))
	s2.Close()
	other, err := os.ReadFile(filepath.Join(e2.catDir, "catalogue.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.catDir, "catalogue.db"), other, 0o600); err != nil {
		t.Fatal(err)
	}
	segs := segmentListing(t, e.fs)
	o := e.opts()
	o.Pair, o.ReadOnly = "", true
	_, err = OpenStore(o)
	if !errors.Is(err, ErrCatalogueCorrupt) || !strings.Contains(err.Error(), `belongs to pair "p2"`) || !strings.Contains(err.Error(), pairFile) {
		t.Fatalf("read-only OpenStore of another pair's catalogue: %v", err)
	}
	if _, err := OpenStore(e.opts()); !errors.Is(err, ErrCatalogueCorrupt) || !strings.Contains(err.Error(), `belongs to pair "p2", not "p1"`) {
		t.Fatalf("OpenStore of another pair's catalogue: %v", err)
	}
	if got := segmentListing(t, e.fs); got != segs {
		t.Fatalf("segments changed:\n%s\nwant\n%s", got, segs)
	}
}

// TestCatalogueMetaPageDamage: with one bbolt meta page damaged, bbolt
// falls back to the other, a transaction older. A reader refuses (its
// report would miss the last batch the target has); the writer opens, as
// after a crash.
func TestCatalogueMetaPageDamage(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	apply(t, s, 1, 3, Exact)
	apply(t, s, 4, 6, Exact)
	s.Close()
	path := filepath.Join(e.catDir, "catalogue.db")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := boltPageSize(t, good)
	for page := range 2 {
		d := bytes.Clone(good)
		for i := page*ps + 16; i < page*ps+80; i++ {
			d[i] ^= 0xFF
		}
		if err := os.WriteFile(path, d, 0o600); err != nil {
			t.Fatal(err)
		}
		o := e.opts()
		o.ReadOnly = true
		if _, err := OpenStore(o); !errors.Is(err, ErrCatalogueCorrupt) || !strings.Contains(err.Error(), "meta pages is damaged") {
			t.Fatalf("meta page %d damaged, read-only OpenStore: %v", page, err)
		}
		s, err := OpenStore(e.opts())
		if err != nil {
			t.Fatalf("meta page %d damaged, OpenStore: %v", page, err)
		}
		s.Close()
	}
}
