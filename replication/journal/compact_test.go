package journal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// sparseDisk is a source disk an applier replicates into a Store: every
// write's before-image is journaled, a tag every tagEvery writes, and the
// disk's image at every point is kept to compare with.
type sparseDisk struct {
	t      *testing.T
	rng    *rand.Rand
	disk   []byte
	seq    uint64
	clock  time.Time
	images map[uint64][]byte // the image after each sequence
	tags   []Tag
}

func newSparseDisk(t *testing.T, size int, seed int64, start time.Time) *sparseDisk {
	d := &sparseDisk{t: t, rng: rand.New(rand.NewSource(seed)), disk: make([]byte, size), clock: start, images: map[uint64][]byte{}}
	d.images[0] = bytes.Clone(d.disk)
	return d
}

// run applies n random writes a step apart, a tag after every tagEvery,
// committing each tag's batch.
func (d *sparseDisk) run(s *Store, n, tagEvery int, step time.Duration) {
	d.t.Helper()
	var batch []Record
	first := time.Time{}
	for i := 1; i <= n; i++ {
		d.clock = d.clock.Add(step)
		d.seq++
		off := d.rng.Intn(len(d.disk) - 1)
		ln := 1 + d.rng.Intn(min(4096, len(d.disk)-off))
		before := bytes.Clone(d.disk[off : off+ln])
		u := Record{Type: TypeUndo, Seq: d.seq, Offset: int64(off), Time: d.clock, Data: before}
		if IsZero(before) {
			u.Flags = FlagZero
		}
		if d.rng.Intn(8) == 0 {
			clear(d.disk[off : off+ln])
		} else {
			d.rng.Read(d.disk[off : off+ln])
		}
		if first.IsZero() {
			first = d.clock
		}
		batch = append(batch, u)
		d.images[d.seq] = bytes.Clone(d.disk)
		if i%tagEvery != 0 {
			continue
		}
		d.seq++
		app := AppFS
		if d.rng.Intn(4) == 0 {
			app = AppCrash
		}
		tag := Tag{Seq: d.seq, Time: d.clock, Name: fmt.Sprintf("t%d", d.seq), App: app, ID: fmt.Sprintf("id%d", d.seq), Accuracy: Exact}
		d.tags = append(d.tags, tag)
		d.images[d.seq] = bytes.Clone(d.disk)
		if err := s.Append(batch); err != nil {
			d.t.Fatalf("Append: %v", err)
		}
		if err := s.Sync(); err != nil {
			d.t.Fatalf("Sync: %v", err)
		}
		if err := s.Commit(Commit{Applied: d.seq, AppliedTime: d.clock, Accuracy: Exact, Tags: []Tag{tag}, FirstTime: first}); err != nil {
			d.t.Fatalf("Commit: %v", err)
		}
		batch = batch[:0]
	}
	if len(batch) > 0 {
		d.t.Fatal("run: n must be a multiple of tagEvery")
	}
}

// imageAt rebuilds the image of point seq from the disk as it is now and
// the store's undo records after seq, the way an export does: for every
// byte the oldest before-image after the point wins (laid newest first,
// so older ones overwrite).
func imageAt(s *Store, disk []byte, seq, applied uint64) ([]byte, error) {
	img := bytes.Clone(disk)
	var recs []Record
	err := s.Undo(seq, applied, func(r *Record) error {
		c := *r
		c.Data = bytes.Clone(r.Data)
		recs = append(recs, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := len(recs) - 1; i >= 0; i-- {
		copy(img[recs[i].Offset:], recs[i].Data)
	}
	return img, nil
}

// checkPoints exports every tag the store keeps and every point from
// Upto on, and compares each with the disk as it was then.
func (d *sparseDisk) checkPoints(what string, s *Store) {
	d.t.Helper()
	applied := s.State().Applied
	check := func(seq uint64) {
		d.t.Helper()
		if err := s.Reachable(seq); err != nil {
			d.t.Fatalf("%s: kept point %d: %v", what, seq, err)
		}
		img, err := imageAt(s, d.disk, seq, applied)
		if err != nil {
			d.t.Fatalf("%s: image of %d: %v", what, seq, err)
		}
		if !bytes.Equal(img, d.images[seq]) {
			d.t.Fatalf("%s: the image of point %d differs from the disk as it was", what, seq)
		}
	}
	e, _ := s.Earliest()
	for _, tg := range s.Tags() {
		if tg.Seq >= e {
			check(tg.Seq)
		}
	}
	from := max(s.Sparse().Upto, e)
	for seq := from; seq <= applied; seq++ {
		check(seq)
	}
}

var sparseT0 = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

func sparsePolicy(t *testing.T, spec string, window time.Duration) Policy {
	t.Helper()
	tiers, err := ParseTiers(spec)
	if err != nil {
		t.Fatal(err)
	}
	return Policy{Window: window, OnFull: Purge, Tiers: tiers}
}

// TestCompactKeepsTaggedPoints: six hours of writes, a tag every ten
// minutes; tiers keep all writes for an hour, then one FS tag per hour.
// After compaction every kept tag and every point of the first tier
// exports bit-exact, the dropped tags are refused naming the nearest kept
// points, the bytes shrink, and all of it holds after a reopen and a
// second compaction two hours later (a coarser tier).
func TestCompactKeepsTaggedPoints(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	if err := s.SetPolicy(sparsePolicy(t, "all 1h; 1 FS per 1h for 3h; 1 FS per 3h for 6h", 10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	d := newSparseDisk(t, 32<<10, 1, sparseT0)
	d.run(s, 360, 10, time.Minute)
	before := s.Used()
	now := d.clock
	res, err := s.Compact(CompactOptions{Now: now})
	if err != nil {
		t.Fatalf("Compact: %v", err)
	}
	if res.Segments == 0 || res.Reclaimed <= 0 || s.Used() != before-res.Reclaimed {
		t.Fatalf("compaction rewrote %d segments, reclaimed %d bytes (used %d → %d)", res.Segments, res.Reclaimed, before, s.Used())
	}
	t.Logf("compacted %d segments into %d: %d → %d bytes, %d tags kept, %d dropped", res.Segments, res.Written, res.BytesBefore, res.BytesAfter, res.Kept, len(res.Dropped))
	// Which tags remain: those of the last hour, and in the 1-3 h tier
	// the first FS tag of each hour; in 3-9 h the first FS of each 3 h.
	kept := map[uint64]bool{}
	for _, tg := range s.Tags() {
		kept[tg.Seq] = true
	}
	count := map[string]int{}
	for _, tg := range d.tags {
		age := now.Sub(tg.Time)
		if tg.Seq > res.Sparse.Upto {
			if !kept[tg.Seq] {
				t.Fatalf("tag %s of the all-writes tier was dropped", tg.Name)
			}
			continue
		}
		if !kept[tg.Seq] {
			continue
		}
		if tg.App != AppFS && age >= time.Hour {
			t.Fatalf("tag %s (%s, age %s) kept by an FS tier", tg.Name, tg.App, age)
		}
		g := time.Hour
		if age >= 4*time.Hour {
			g = 3 * time.Hour
		}
		if age >= time.Hour {
			k := fmt.Sprint(g, tg.Time.Truncate(g))
			if count[k]++; count[k] > 1 {
				t.Fatalf("two tags kept in the stretch %s", k)
			}
		}
	}
	if len(res.Dropped) == 0 || len(s.Tags())+len(res.Dropped) != len(d.tags) {
		t.Fatalf("%d tags kept, %d dropped, of %d", len(s.Tags()), len(res.Dropped), len(d.tags))
	}
	d.checkPoints("after compaction", s)

	// A dropped tag and a dropped point are refused with the kept points
	// around them named.
	gone := res.Dropped[len(res.Dropped)/2]
	err = s.Reachable(gone.Seq)
	if !errors.Is(err, ErrCompacted) || !strings.Contains(err.Error(), "nearest kept points") {
		t.Fatalf("Reachable(dropped tag %d) = %v", gone.Seq, err)
	}
	if tg, near, ok := s.CompactedTag(gone.Name); !ok || tg.Seq != gone.Seq || !strings.Contains(near, "tag t") {
		t.Fatalf("CompactedTag(%s) = %v %q %v", gone.Name, tg, near, ok)
	}
	if _, _, err := s.SeqAt(gone.Time.Add(time.Second)); !errors.Is(err, ErrCompacted) {
		t.Fatalf("SeqAt in the compacted stretch: %v", err)
	}
	first := s.Tags()[0]
	if seq, _, err := s.SeqAt(first.Time); err != nil || seq != first.Seq {
		t.Fatalf("SeqAt(the time of kept tag %d) = %d, %v", first.Seq, seq, err)
	}
	if rep, err := s.Verify(); err != nil || rep.Damaged != 0 {
		t.Fatalf("Verify after compaction: %+v %v", rep, err)
	}
	// compacting again at once finds nothing to do
	if r2, err := s.Compact(CompactOptions{Now: now}); err != nil || r2.Segments != 0 {
		t.Fatalf("second compaction at once: %+v %v", r2, err)
	}
	s.Close()

	s = e.open()
	d.checkPoints("after a reopen", s)
	if err := s.Reachable(gone.Seq); !errors.Is(err, ErrCompacted) {
		t.Fatalf("after a reopen, Reachable(dropped %d) = %v", gone.Seq, err)
	}
	// Two more hours: the compacted stretch moves into the coarser tier
	// and is compacted again (a second generation).
	d.run(s, 120, 10, time.Minute)
	r3, err := s.Compact(CompactOptions{Now: d.clock})
	if err != nil || r3.Segments == 0 {
		t.Fatalf("third compaction: %+v %v", r3, err)
	}
	d.checkPoints("after a second compaction", s)
	gen2 := false
	for _, g := range s.Segments() {
		gen2 = gen2 || g.Gen >= 2
	}
	if !gen2 {
		t.Fatal("no segment of the second generation")
	}
	files := undoFiles(t, e.fs)
	if len(files) != len(s.Segments()) {
		t.Fatalf("%d undo files for %d segments: %v", len(files), len(s.Segments()), files)
	}
	s.Close()
}

// TestCompactHold: a hold pins the segments after its sequence against
// compaction and pruning; once released, both go ahead.
func TestCompactHold(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	if err := s.SetPolicy(sparsePolicy(t, "all 1h; 1 per 1h for 5h", 6*time.Hour)); err != nil {
		t.Fatal(err)
	}
	d := newSparseDisk(t, 16<<10, 2, sparseT0)
	d.run(s, 300, 10, time.Minute)
	release := s.Hold(0)
	res, err := s.Compact(CompactOptions{Now: d.clock})
	if err != nil || res.Segments != 0 || !res.Held {
		t.Fatalf("Compact under a hold: %+v %v", res, err)
	}
	pr, err := s.Prune(PruneOptions{Max: 1})
	if err != nil || pr.Segments != 0 || !pr.Held {
		t.Fatalf("Prune under a hold: %+v %v", pr, err)
	}
	release()
	release()
	res, err = s.Compact(CompactOptions{Now: d.clock})
	if err != nil || res.Segments == 0 || res.Held {
		t.Fatalf("Compact after the release: %+v %v", res, err)
	}
	d.checkPoints("after compaction", s)
	// A hold of a later point leaves what is before it free.
	d.run(s, 60, 10, time.Minute)
	release = s.Hold(s.Segments()[len(s.Segments())-1].FirstSeq)
	if res, err = s.Compact(CompactOptions{Now: d.clock}); err != nil || res.Segments == 0 {
		t.Fatalf("Compact under a hold of the newest segment: %+v %v", res, err)
	}
	release()
	d.checkPoints("after compaction under a late hold", s)
	s.Close()
}

// TestCompactCrash crashes the segment file system at every operation of
// a compaction, in every tear mode, and aborts its catalogue transaction:
// after a reopen the store is either as before or as after, every tag it
// lists exports bit-exact, no kept point is lost, and no file is left
// that the catalogue does not name; a compaction after it completes.
func TestCompactCrash(t *testing.T) {
	pol := sparsePolicy(t, "all 1h; 1 per 1h for 4h", 5*time.Hour)
	build := func() (*storeEnv, *sparseDisk) {
		e := newStoreEnv(t)
		e.segSize = 16 << 10
		s := e.open()
		if err := s.SetPolicy(pol); err != nil {
			t.Fatal(err)
		}
		d := newSparseDisk(t, 8<<10, 3, sparseT0)
		d.run(s, 200, 10, time.Minute)
		s.Close()
		return e, d
	}
	tmpl, d := build()
	template := tmpl.fs.Crash(vfs.KeepUnsynced, nil)
	catalogue, err := os.ReadFile(filepath.Join(tmpl.catDir, "catalogue.db"))
	if err != nil {
		t.Fatal(err)
	}
	fresh := func() *storeEnv {
		e := newStoreEnv(t)
		e.segSize = 16 << 10
		e.fs = template.Crash(vfs.KeepUnsynced, nil)
		if err := os.WriteFile(filepath.Join(e.catDir, "catalogue.db"), catalogue, 0o600); err != nil {
			t.Fatal(err)
		}
		return e
	}
	// what a whole compaction keeps, and its operations
	inj, count := crashAt(0)
	e := fresh()
	s := e.open()
	tagsBefore := s.Tags()
	e.fs.SetInjector(inj)
	count.Store(0)
	full, err := s.Compact(CompactOptions{Now: d.clock})
	if err != nil || full.Segments == 0 {
		t.Fatalf("Compact: %+v %v", full, err)
	}
	keptAfter := s.Tags()
	total := count.Load()
	s.Close()
	keptSet := func(tags []Tag) map[uint64]bool {
		m := map[uint64]bool{}
		for _, tg := range tags {
			m[tg.Seq] = true
		}
		return m
	}
	after := keptSet(keptAfter)
	check := func(what string, e *storeEnv) {
		s := e.open()
		defer s.Close()
		got := keptSet(s.Tags())
		for seq := range after {
			if !got[seq] {
				t.Fatalf("%s: kept tag at %d lost", what, seq)
			}
		}
		if len(got) != len(after) && len(got) != len(tagsBefore) {
			t.Fatalf("%s: %d tags, want %d (before) or %d (after)", what, len(got), len(tagsBefore), len(after))
		}
		d.checkPoints(what, s)
		if files := undoFiles(t, e.fs); len(files) != len(s.Segments()) {
			t.Fatalf("%s: %d undo files for %d segments: %v", what, len(files), len(s.Segments()), files)
		}
		if _, err := s.Compact(CompactOptions{Now: d.clock}); err != nil {
			t.Fatalf("%s: compaction after the crash: %v", what, err)
		}
		if got := keptSet(s.Tags()); len(got) != len(after) {
			t.Fatalf("%s: after compacting again %d tags, want %d", what, len(got), len(after))
		}
		d.checkPoints(what+", compacted again", s)
	}
	for _, tm := range tearModes {
		rng := rand.New(rand.NewSource(total))
		for n := int64(1); n <= total; n++ {
			what := fmt.Sprintf("crash at operation %d of %d of the compaction, %s", n, total, tm.name)
			e := fresh()
			s := e.open()
			inj, _ := crashAt(n)
			e.fs.SetInjector(inj)
			if _, err := s.Compact(CompactOptions{Now: d.clock}); err == nil {
				t.Fatalf("%s: Compact did not fail", what)
			}
			s.Close()
			e.fs = e.fs.Crash(tm.mode, rng)
			check(what, e)
		}
	}
	// the catalogue transaction itself fails: nothing changes
	e = fresh()
	s = e.open()
	boom := errors.New("cut")
	e.hook.Store(&boom)
	if _, err := s.Compact(CompactOptions{Now: d.clock}); !errors.Is(err, boom) {
		t.Fatalf("Compact with its transaction cut: %v", err)
	}
	e.hook.Store(nil)
	if len(s.Tags()) != len(tagsBefore) {
		t.Fatalf("a cut transaction changed the tags: %d, want %d", len(s.Tags()), len(tagsBefore))
	}
	s.Close()
	check("catalogue transaction cut", e)
}

// TestCompactBesideApplier runs the compactor and pruning over and over
// while batches are appended and committed: every point the store still
// lists afterwards exports bit-exact.
func TestCompactBesideApplier(t *testing.T) {
	e := newStoreEnv(t)
	e.segSize = 8 << 10
	s := e.open()
	defer s.Close()
	if err := s.SetPolicy(sparsePolicy(t, "all 1h; 1 per 1h for 9h", 10*time.Hour)); err != nil {
		t.Fatal(err)
	}
	d := newSparseDisk(t, 16<<10, 4, sparseT0)
	done := make(chan struct{})
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		now := sparseT0
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if now.Before(sparseT0.Add(8 * time.Hour)) {
				now = now.Add(time.Minute) // about the data's pace, never past its end
			}
			if _, err := s.Compact(CompactOptions{Now: now}); err != nil {
				errs <- err
				return
			}
			if i%7 == 0 {
				if _, err := s.Prune(PruneOptions{Before: now.Add(-10 * time.Hour)}); err != nil {
					errs <- err
					return
				}
			}
		}
	}()
	for range 8 {
		d.run(s, 60, 10, time.Minute)
	}
	close(done)
	if err := <-errs; err != nil {
		t.Fatalf("compactor: %v", err)
	}
	if _, err := s.Compact(CompactOptions{Now: d.clock}); err != nil {
		t.Fatal(err)
	}
	if s.Sparse().Upto == 0 || len(s.Tags()) >= len(d.tags) {
		t.Fatalf("nothing was compacted: %+v, %d tags of %d", s.Sparse(), len(s.Tags()), len(d.tags))
	}
	d.checkPoints("after compacting beside the applier", s)
	if rep, err := s.Verify(); err != nil || rep.Damaged != 0 {
		t.Fatalf("Verify: %+v %v", rep, err)
	}
}
