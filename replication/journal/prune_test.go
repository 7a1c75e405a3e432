package journal

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// pruneFixture is a store of five full segments, sequences 1..15 applied
// three per batch, with tags a..e at 2, 5, 8, 11 and 14; c lives an hour.
func pruneFixture(t *testing.T) (*storeEnv, *Store) {
	t.Helper()
	e := newStoreEnv(t)
	s := e.open()
	names := []string{"a", "b", "c", "d", "e"}
	for k := uint64(0); k < 5; k++ {
		tag := tagAt(3*k+2, names[k])
		if tag.Name == "c" {
			tag.Lifetime = time.Hour
		}
		apply(t, s, 3*k+1, 3*k+3, Exact, tag)
	}
	if n := len(s.Segments()); n != 5 {
		t.Fatalf("fixture has %d segments", n)
	}
	return e, s
}

func tagNames(tags []Tag) string {
	var n []string
	for _, t := range tags {
		n = append(n, t.Name)
	}
	return strings.Join(n, ",")
}

func TestPrune(t *testing.T) {
	far := at(100000)
	for _, tc := range []struct {
		name     string
		p        PruneOptions
		lock     string
		pruned   int
		earliest uint64
		blocked  string
		tags     string
	}{
		{"nothing asked", PruneOptions{}, "", 0, 0, "", "a,b,c,d,e"},
		{"window", PruneOptions{Before: at(7)}, "", 2, 6, "", "c,d,e"},
		{"window on a segment's last write", PruneOptions{Before: at(6)}, "", 1, 3, "", "b,c,d,e"},
		{"size", PruneOptions{ToSize: 3 * undoSegSize}, "", 2, 6, "", "c,d,e"},
		{"size below one segment", PruneOptions{ToSize: 1}, "", 4, 12, "", "e"},
		{"max", PruneOptions{Max: 3}, "", 3, 9, "", "d,e"},
		{"max bounds window", PruneOptions{Before: far, Max: 1}, "", 1, 3, "", "b,c,d,e"},
		{"everything but the last", PruneOptions{Before: far}, "", 4, 12, "", "e"},
		{"window or size, whichever asks", PruneOptions{Before: at(4), ToSize: 2 * undoSegSize}, "", 3, 9, "", "d,e"},
		{"locked tag holds back", PruneOptions{Before: far}, "b", 1, 3, "b", "b,c,d,e"},
		{"locked tag in the first segment", PruneOptions{Before: far}, "a", 0, 0, "a", "a,b,c,d,e"},
		{"locked tag further on", PruneOptions{ToSize: 1}, "d", 3, 9, "d", "d,e"},
		{"locked tag not in the way", PruneOptions{Max: 1}, "e", 1, 3, "", "b,c,d,e"},
		{"tag expiry alone", PruneOptions{Now: at(8).Add(2 * time.Hour)}, "", 0, 0, "", "a,b,d,e"},
		{"tag not yet expired", PruneOptions{Now: at(8).Add(time.Hour)}, "", 0, 0, "", "a,b,c,d,e"},
		{"tag expiry with pruning", PruneOptions{Max: 1, Now: at(8).Add(2 * time.Hour)}, "", 1, 3, "", "b,d,e"},
		{"locked tag does not expire", PruneOptions{Now: at(8).Add(2 * time.Hour)}, "c", 0, 0, "", "a,b,c,d,e"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, s := pruneFixture(t)
			defer func() { s.Close() }()
			if tc.lock != "" {
				if tag, err := s.SetTagLock(tc.lock, true); err != nil || !tag.Locked {
					t.Fatalf("SetTagLock: %+v %v", tag, err)
				}
			}
			res, err := s.Prune(tc.p)
			if err != nil {
				t.Fatalf("Prune: %v", err)
			}
			// The state at the earliest point is after write `earliest`:
			// its time is that write's (the first write's when nothing
			// went).
			etime := at(max(tc.earliest, 1))
			if res.Segments != tc.pruned || res.Bytes != int64(tc.pruned)*undoSegSize ||
				res.Earliest != tc.earliest || !res.EarliestTime.Equal(etime) {
				t.Fatalf("Prune = %+v, want %d segments, earliest %d at %v", res, tc.pruned, tc.earliest, etime)
			}
			switch {
			case tc.blocked == "" && res.BlockedBy != nil:
				t.Fatalf("BlockedBy %+v, want none", *res.BlockedBy)
			case tc.blocked != "" && (res.BlockedBy == nil || res.BlockedBy.Name != tc.blocked || !res.BlockedBy.Locked):
				t.Fatalf("BlockedBy %+v, want locked tag %q", res.BlockedBy, tc.blocked)
			}
			check := func(s *Store) {
				t.Helper()
				if seq, tm := s.Earliest(); seq != tc.earliest || !tm.Equal(etime) {
					t.Fatalf("Earliest() = %d %v, want %d %v", seq, tm, tc.earliest, etime)
				}
				segs := s.Segments()
				if len(segs) != 5-tc.pruned || segs[0].Index != uint64(tc.pruned) {
					t.Fatalf("segments %+v after pruning %d", segs, tc.pruned)
				}
				if s.Used() != int64(5-tc.pruned)*undoSegSize {
					t.Fatalf("Used() = %d", s.Used())
				}
				var want []string
				for i := tc.pruned; i < 5; i++ {
					want = append(want, undoName(uint64(i)))
				}
				if got := undoFiles(t, e.fs); strings.Join(got, " ") != strings.Join(want, " ") {
					t.Fatalf("files %v, want %v", got, want)
				}
				if got := tagNames(s.Tags()); got != tc.tags {
					t.Fatalf("tags %s, want %s", got, tc.tags)
				}
				same(t, "ranges", s.Ranges(), []Range{{FirstSeq: tc.earliest, FirstTime: etime, LastSeq: 15, LastTime: at(15), Accuracy: Exact}})
				// Everything from the earliest point on is still there.
				checkUndo(t, undoAll(t, s, tc.earliest, 15), tc.earliest+1, 15, gen0)
				if tc.earliest > 0 {
					if _, _, err := s.SeqAt(etime.Add(-time.Second)); err == nil {
						t.Fatalf("SeqAt before the earliest point succeeded")
					}
				}
			}
			check(s)
			s.Close()
			s = e.open()
			check(s)
		})
	}
}

// TestPruneKeepsActive: the segment being appended to, committed or not,
// is never pruned.
func TestPruneKeepsActive(t *testing.T) {
	_, s := pruneFixture(t)
	defer s.Close()
	if err := s.Append(undoRecords(16, 17, 0)); err != nil { // a new segment, uncommitted
		t.Fatal(err)
	}
	res, err := s.Prune(PruneOptions{Before: at(100000), ToSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 4 || res.Earliest != 12 {
		t.Fatalf("Prune = %+v, want the 4 oldest gone", res)
	}
	if err := s.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(Commit{Applied: 17, AppliedTime: at(17), Accuracy: Exact}); err != nil {
		t.Fatal(err)
	}
	if res, err := s.Prune(PruneOptions{Max: 5}); err != nil || res.Segments != 1 || res.Earliest != 15 || !res.EarliestTime.Equal(at(15)) {
		t.Fatalf("Prune after the commit = %+v %v, want segment 4 gone, earliest 15", res, err)
	}
	if res, err := s.Prune(PruneOptions{Max: 5}); err != nil || res.Segments != 0 || res.Earliest != 15 {
		t.Fatalf("Prune of the last segment = %+v %v, want nothing gone", res, err)
	}
	checkUndo(t, undoAll(t, s, 15, 17), 16, 17, gen0)
}

func TestTagLock(t *testing.T) {
	e, s := pruneFixture(t)
	if _, err := s.SetTagLock("nope", true); !errors.Is(err, ErrNoTag) || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("SetTagLock of a missing tag: %v", err)
	}
	if _, err := s.SetTagLock("id-b", true); err != nil { // by id
		t.Fatal(err)
	}
	if res, _ := s.Prune(PruneOptions{Max: 5}); res.Segments != 1 || res.BlockedBy == nil {
		t.Fatalf("Prune with b locked = %+v", res)
	}
	s.Close()
	s = e.open()
	defer s.Close()
	if res, _ := s.Prune(PruneOptions{Max: 5}); res.Segments != 0 || res.BlockedBy == nil || res.BlockedBy.Name != "b" {
		t.Fatalf("the lock did not survive a reopen: %+v", res)
	}
	if tag, err := s.SetTagLock("b", false); err != nil || tag.Locked {
		t.Fatalf("unlock: %+v %v", tag, err)
	}
	res, err := s.Prune(PruneOptions{Max: 5})
	if err != nil || res.Segments != 3 || res.BlockedBy != nil || res.Earliest != 12 {
		t.Fatalf("Prune after unlocking = %+v %v", res, err)
	}
	if got := tagNames(s.Tags()); got != "e" {
		t.Fatalf("tags %s", got)
	}
}
