package journal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// damage flips a byte inside the data of the n-th record (from 0) of
// undo segment index.
func damage(t *testing.T, e *storeEnv, index uint64, n int) {
	t.Helper()
	f, err := e.fs.OpenFile(filepath.Join(retDir, undoName(index)), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt([]byte{0xff}, int64(segHeaderSize+n*undoRecLen+HeaderSize+20))
}

// TestStoreVerifyAndRepair: Verify reports every segment whole or
// damaged with the sequences lost and changes nothing; Repair removes the
// oldest segments through the newest damaged one, whole, with the tags
// before it (locked ones too), and the points after the damage stay
// recoverable.
func TestStoreVerifyAndRepair(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	defer s.Close()
	for i := uint64(0); i < 8; i++ {
		apply(t, s, i*4+1, i*4+4, Exact, tagAt(i*4+4, fmt.Sprintf("t%d", i)))
	}
	segs := s.Segments()
	if len(segs) < 5 {
		t.Fatalf("%d segments, want 5 or more", len(segs))
	}
	if _, err := s.SetTagLock("t0", true); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify()
	if err != nil || rep.Damaged != 0 || len(rep.Segments) != len(segs) {
		t.Fatalf("Verify of a whole store: %+v, %v", rep, err)
	}
	// Damage the second record of segment 1 and the first of segment 2.
	damage(t, e, segs[1].Index, 1)
	damage(t, e, segs[2].Index, 0)
	rep, err = s.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if rep.Damaged != 2 || rep.Segments[0].Damage != nil || rep.Segments[3].Damage != nil {
		t.Fatalf("Verify: %+v, want segments 1 and 2 damaged", rep)
	}
	d1, d2 := rep.Segments[1].Damage, rep.Segments[2].Damage
	if d1 == nil || d1.LostFrom != segs[1].FirstSeq+1 || d1.LostTo != segs[1].LastSeq || d1.Offset != int64(segHeaderSize+undoRecLen) {
		t.Fatalf("segment 1 damage: %+v", d1)
	}
	if d2 == nil || d2.LostFrom != segs[2].FirstSeq || d2.LostTo != segs[2].LastSeq || d2.Offset != segHeaderSize {
		t.Fatalf("segment 2 damage: %+v", d2)
	}
	if rep.Earliest != segs[2].LastSeq {
		t.Fatalf("earliest recoverable %d, want %d: past the newest damage", rep.Earliest, segs[2].LastSeq)
	}
	// Verify is a dry run.
	if n := len(s.Segments()); n != len(segs) {
		t.Fatalf("Verify removed segments: %d left of %d", n, len(segs))
	}
	// Repair refuses while a rollback that wrote is unfinished.
	if err := s.SetState(StateRollingBack, "test", 2); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRollbackWritten(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Repair(); err == nil || !strings.Contains(err.Error(), "partly rolled back") {
		t.Fatalf("Repair during a rollback that wrote: %v", err)
	}
	if err := s.AbandonRollback(); !errors.Is(err, ErrRollbackWritten) {
		t.Fatalf("abandon: %v", err)
	}
	if err := s.SetState(StateActive, "", 0); err != nil {
		t.Fatal(err)
	}
	res, err := s.Repair()
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != 3 || res.Earliest != segs[2].LastSeq {
		t.Fatalf("Repair removed %d segments, earliest %d; want 3, %d", res.Segments, res.Earliest, segs[2].LastSeq)
	}
	if e, _ := s.Earliest(); e != segs[2].LastSeq {
		t.Fatalf("store's earliest point %d, want %d", e, segs[2].LastSeq)
	}
	for _, tg := range s.Tags() {
		if tg.Seq < segs[2].LastSeq {
			t.Fatalf("tag %s at %d kept, before the earliest point", tg.Name, tg.Seq)
		}
	}
	gone := 0
	for _, tg := range res.Tags {
		if tg.Name == "t0" {
			gone++
		}
	}
	if gone != 1 {
		t.Fatalf("the locked tag before the damage was not reported removed: %+v", res.Tags)
	}
	checkUndo(t, undoAll(t, s, segs[2].LastSeq, 32), segs[2].LastSeq+1, 32, func(uint64) byte { return 0 })
	if rep, err := s.Verify(); err != nil || rep.Damaged != 0 {
		t.Fatalf("Verify after Repair: %+v %v", rep, err)
	}
	// Reopened, the repair holds and applying goes on.
	s.Close()
	s = e.open()
	if e, _ := s.Earliest(); e != segs[2].LastSeq {
		t.Fatalf("reopened: earliest %d", e)
	}
	apply(t, s, 33, 36, Exact)
	checkUndo(t, undoAll(t, s, segs[2].LastSeq, 36), segs[2].LastSeq+1, 36, func(uint64) byte { return 0 })
}

// TestStoreRepairNewestSegment: damage in the newest segment leaves no
// point before the applied position; the store goes on from there.
func TestStoreRepairNewestSegment(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	defer s.Close()
	apply(t, s, 1, 4, Exact)
	apply(t, s, 5, 8, Exact)
	segs := s.Segments()
	damage(t, e, segs[len(segs)-1].Index, 0)
	res, err := s.Repair()
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments != len(segs) || res.Earliest != 8 || len(s.Segments()) != 0 {
		t.Fatalf("Repair: %+v, %d segments left; want all gone, earliest 8", res, len(s.Segments()))
	}
	apply(t, s, 9, 12, Exact)
	checkUndo(t, undoAll(t, s, 8, 12), 9, 12, func(uint64) byte { return 0 })
	s.Close()
	s = e.open()
	checkUndo(t, undoAll(t, s, 8, 12), 9, 12, func(uint64) byte { return 0 })
}
