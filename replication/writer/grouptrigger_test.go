package writer

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// purgedFor says whether pair id had a low-space purge alert.
func (e *events) purgedFor(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.ev {
		if ev.Pair == id && ev.Kind == EventAlert && strings.Contains(ev.Message, "retention volume low") {
			return true
		}
	}
	return false
}

// TestCheckSpacePerGroupThreshold: two pairs of groups with different
// alert thresholds (10 % and 30 %) share one retention volume. With 20 %
// free, only the 30 % pair gives space back; the 10 % pair never purges
// for the other's threshold. Raised live to 40 %, the first one purges at
// the next look.
func TestCheckSpacePerGroupThreshold(t *testing.T) {
	const capacity = 256 << 20
	fs, tfs := vfs.NewMem(), vfs.NewMem()
	fs.MkdirAll("/vol", 0o700)
	tfs.MkdirAll("/tgt", 0o700)
	fs.SetCapacity(capacity)
	ev := &events{}
	o := Options{FS: fs, TargetFS: tfs, OnEvent: ev.add, Now: func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }}
	// Min 1 byte: the trigger is the percentage itself.
	w := New(o, SpaceOptions{Min: 1, Interval: -1})
	t.Cleanup(func() { w.Close() })
	open := func(id string, pct float64) *Pair {
		f, err := tfs.OpenFile("/tgt/"+id, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.Truncate(smallTarget)
		f.Close()
		p, _, err := w.Open(PairConfig{ID: id, Target: "/tgt/" + id, JournalDir: "/vol/journal/" + id, RetentionDir: "/vol/retention/" + id,
			CatalogueDir: t.TempDir(), Policy: journal.Policy{OnFull: journal.Purge}, AlertPercent: pct,
			JournalSegmentSize: 8 << 20, JournalMaxSegments: 2, UndoSegmentSize: 2 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	low, high := open("low", 10), open("high", 30)
	for i, p := range []*Pair{low, high} {
		checkRound(t, w, p, fs, smallWorkload(int64(41+i)), 20)
	}
	if ev.purgedFor("low") || ev.purgedFor("high") {
		t.Fatal("purged before the volume was low: the test does not test")
	}
	// Something else fills the volume to 20 % free.
	free, _, _ := fs.Free("/vol")
	ballast, err := fs.OpenFile("/vol/ballast", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer ballast.Close()
	if err := ballast.Truncate(int64(free) - capacity/5); err != nil {
		t.Fatal(err)
	}
	w.CheckSpace()
	if !ev.purgedFor("high") {
		t.Fatal("the 30 % pair did not give space back with 20 % free")
	}
	if ev.purgedFor("low") {
		t.Fatal("the 10 % pair purged with 20 % free: it followed another group's threshold")
	}
	for _, p := range []*Pair{low, high} {
		if s := p.Status(); s.Health == HealthPaused {
			t.Fatalf("%s paused: %q", s.ID, s.Reason)
		}
	}
	// The ballast takes the freed space again; the first group's
	// threshold is raised live.
	free, _, _ = fs.Free("/vol")
	if err := ballast.Truncate(int64(free) - capacity/5 + mustSize(t, ballast)); err != nil {
		t.Fatal(err)
	}
	low.SetAlertPercent(40)
	w.CheckSpace()
	if !ev.purgedFor("low") {
		t.Fatal("the pair raised to 40 % did not purge with 20 % free")
	}
}

func mustSize(t *testing.T, f vfs.File) int64 {
	t.Helper()
	n, err := f.Size()
	if err != nil {
		t.Fatal(err)
	}
	return n
}
