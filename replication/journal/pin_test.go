package journal

import (
	"bytes"
	"strings"
	"testing"
)

// A pin keeps every segment holding a record after its sequence, says so
// in the prune result, refuses a direct resync, and lets go on Release.
func TestPinHoldsPruning(t *testing.T) {
	_, s := pruneFixture(t) // segments of 1-3, 4-6, 7-9, 10-12, 13-15
	pin := s.Pin(5, "view v1")
	if got, ok := s.PinnedFrom(); !ok || got != 5 {
		t.Fatalf("PinnedFrom = %d, %v; want 5, true", got, ok)
	}
	res, err := s.Prune(PruneOptions{Before: at(100000)})
	if err != nil {
		t.Fatal(err)
	}
	// 1-3 holds nothing after 5 and goes; 4-6 holds 6 and stays.
	if res.Segments != 1 || res.Earliest != 3 {
		t.Fatalf("pruned %d segments, earliest %d; want 1 and 3", res.Segments, res.Earliest)
	}
	if !strings.Contains(res.HeldBy, "view v1") || !strings.Contains(res.HeldBy, "sequence 5") {
		t.Fatalf("HeldBy = %q; want the view and its sequence named", res.HeldBy)
	}
	if s.DirectResyncOK() {
		t.Fatal("a direct resync is allowed while a view is pinned")
	}
	if p := s.Pins(); len(p) != 1 || p[0].Why != "view v1" || p[0].Seq != 5 {
		t.Fatalf("Pins = %+v", p)
	}
	pin.Release()
	pin.Release() // twice is harmless
	if _, ok := s.PinnedFrom(); ok {
		t.Fatal("a released pin is still reported")
	}
	res, err = s.Prune(PruneOptions{Before: at(100000)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 3 || res.HeldBy != "" {
		t.Fatalf("after release pruned %d segments (held by %q); want 3, none", res.Segments, res.HeldBy)
	}
}

// A watcher learns of every before-image appended, with the segment and
// file offset where its data lies, before Append returns.
func TestWatchAppends(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	type seen struct {
		seq, seg uint64
		off      int64
		n        int
		zero     bool
	}
	var got []seen
	stop := s.WatchAppends(func(r *Record, seg uint64, off int64) {
		got = append(got, seen{r.Seq, seg, off, len(r.Data), r.Flags&FlagZero != 0})
	})
	recs := undoRecords(1, 9, 0) // spans more than one segment
	recs[3].Data = make([]byte, len(recs[3].Data))
	recs[3].Flags |= FlagZero
	if err := s.Append(recs); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("watcher saw %d records; want %d", len(got), len(recs))
	}
	segs := map[uint64]bool{}
	for i, g := range got {
		if g.seq != recs[i].Seq || g.n != len(recs[i].Data) {
			t.Fatalf("record %d: watcher saw seq %d len %d", i, g.seq, g.n)
		}
		segs[g.seg] = true
		if g.zero {
			continue
		}
		f, err := s.OpenSegment(g.seg)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, g.n)
		if _, err := f.ReadAt(b, g.off); err != nil {
			t.Fatalf("segment %d offset %d: %v", g.seg, g.off, err)
		}
		f.Close()
		if !bytes.Equal(b, recs[i].Data) {
			t.Fatalf("record %d: segment %d offset %d holds other bytes than the before-image", i, g.seg, g.off)
		}
	}
	if !got[3].zero {
		t.Fatal("the zero before-image was not reported as zero")
	}
	if len(segs) < 2 {
		t.Fatalf("fixture spans %d segment(s); want a roll inside the append", len(segs))
	}
	stop()
	if err := s.Append(undoRecords(10, 10, 0)); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatal("a stopped watcher was called")
	}
}
