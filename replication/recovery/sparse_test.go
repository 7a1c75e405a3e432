package recovery

import (
	"context"
	"errors"
	"math/rand"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// TestSparseKeptTagsExport compacts a store and exports every tag it
// keeps, by name, through Resolve and Export, bit-exact against the source
// as it was at the tag; the earliest point is a kept tag; a tag and a time
// compacted away are refused naming the nearest kept points; and a
// rollback to the oldest kept tag puts the target back to it.
func TestSparseKeptTagsExport(t *testing.T) {
	f := newFixture(t, 5, 600, true)
	now := f.st.State().AppliedTime
	span := now.Sub(f.images0Time(t))
	all := span / 5
	pol := journal.Policy{Window: span + time.Second, OnFull: journal.Purge, Tiers: []journal.Tier{
		{Duration: all},
		{Start: all, Duration: span + time.Second - all, Granularity: span / 8, Count: 1},
	}}
	if err := f.st.SetPolicy(pol); err != nil {
		t.Fatal(err)
	}
	before := f.st.Tags()
	res, err := f.st.Compact(journal.CompactOptions{Now: now})
	if err != nil || res.Segments == 0 || len(res.Dropped) == 0 {
		t.Fatalf("Compact: %+v %v", res, err)
	}
	kept := f.st.Tags()
	if len(kept) >= len(before) {
		t.Fatalf("%d tags kept of %d", len(kept), len(before))
	}
	for _, tg := range kept {
		r, err := Resolve(f.st, Point{Kind: TagID, Name: tg.ID})
		if err != nil {
			t.Fatalf("kept tag %s: %v", tg.Name, err)
		}
		if d := testutil.Diff(f.export(t, r), f.images[tg.Seq]); d != "" {
			t.Fatalf("export of kept tag %s (sequence %d): %s", tg.Name, tg.Seq, d)
		}
	}
	r, err := Resolve(f.st, Point{Kind: Earliest})
	if err != nil || r.Seq != kept[0].Seq {
		t.Fatalf("earliest: %+v %v, want the oldest kept tag %d", r, err, kept[0].Seq)
	}
	gone := res.Dropped[len(res.Dropped)/2]
	_, err = Resolve(f.st, Point{Kind: TagNamed, Name: gone.Name})
	if !errors.Is(err, ErrNoPoint) || !errors.Is(err, journal.ErrCompacted) || !strings.Contains(err.Error(), "nearest kept points") {
		t.Fatalf("a compacted tag: %v", err)
	}
	_, err = Resolve(f.st, Point{Kind: AtTime, Time: gone.Time})
	if !errors.Is(err, ErrNoPoint) || !errors.Is(err, journal.ErrCompacted) {
		t.Fatalf("a time in the compacted stretch: %v", err)
	}
	// a point compacted away is refused by the export itself, too
	dst, _ := f.fs.OpenFile("/r/x", os.O_RDWR|os.O_CREATE, 0o600)
	if _, err := Export(context.Background(), f.st, f.target, dst, Resolved{Pair: "p", Seq: gone.Seq}, nil); !errors.Is(err, journal.ErrCompacted) {
		t.Fatalf("export of a compacted point: %v", err)
	}
	// and by a view: a point compacted away is refused naming the kept
	// points around it; a view of every kept tag reads its image
	if _, err := OpenView(context.Background(), f.st, f.target, int64(len(f.images[0])), Resolved{Pair: "p", Seq: gone.Seq}, "view"); !errors.Is(err, ErrNoPoint) || !errors.Is(err, journal.ErrCompacted) || !strings.Contains(err.Error(), "kept") {
		t.Fatalf("view of a compacted point: %v", err)
	}
	for _, tg := range kept {
		v, err := OpenView(context.Background(), f.st, f.target, int64(len(f.images[0])), Resolved{Pair: "p", Seq: tg.Seq}, "view")
		if err != nil {
			t.Fatalf("view of kept tag %s: %v", tg.Name, err)
		}
		if d := testutil.Diff(readView(t, v, rand.New(rand.NewSource(int64(tg.Seq)))), f.images[tg.Seq]); d != "" {
			t.Fatalf("view of kept tag %s (sequence %d): %s", tg.Name, tg.Seq, d)
		}
		v.Close()
	}
	if _, err := Rollback(context.Background(), f.st, f.target, Resolved{Pair: "p", Seq: kept[0].Seq, Tag: &kept[0]}, nil); err != nil {
		t.Fatalf("rollback to %d: %v", kept[0].Seq, err)
	}
	got := make([]byte, len(f.images[0]))
	if err := vfs.ReadFull(f.target, got, 0); err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(got, f.images[kept[0].Seq]); d != "" {
		t.Fatalf("rollback to the oldest kept tag: %s", d)
	}
}

// images0Time is the source time of the first write.
func (f *fixture) images0Time(t *testing.T) time.Time {
	t.Helper()
	var first time.Time
	f.st.Undo(0, 1<<62, func(r *journal.Record) error {
		if first.IsZero() {
			first = r.Time
		}
		return nil
	})
	return first
}
