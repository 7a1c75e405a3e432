package writer

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

const smallTarget = 16 << 20

// smallVolume opens a pair whose journal and retention share a Mem volume
// of capacity bytes, with the segment sizes left to the volume and the
// production low-space defaults; the target is on a file system of its
// own.
func smallVolume(t *testing.T, capacity int64, onFull journal.FullAction, space SpaceOptions) (*Writer, *vfs.Mem, *events, PairConfig, Options) {
	t.Helper()
	fs, tfs := vfs.NewMem(), vfs.NewMem()
	for _, d := range []string{"/vol", "/tgt"} {
		fs.MkdirAll(d, 0o700)
		tfs.MkdirAll(d, 0o700)
	}
	f, err := tfs.OpenFile("/tgt/disk.img", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(smallTarget)
	f.Sync()
	f.Close()
	fs.SetCapacity(capacity)
	ev := &events{}
	o := Options{FS: fs, TargetFS: tfs, OnEvent: ev.add, Now: func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }}
	space.Interval = -1
	w := New(o, space)
	t.Cleanup(func() { w.Close() })
	// The catalogue (bbolt) is on the real file system.
	cfg := PairConfig{ID: "small", Target: "/tgt/disk.img", JournalDir: "/vol/journal/small", RetentionDir: "/vol/retention/small",
		CatalogueDir: t.TempDir(), Policy: journal.Policy{OnFull: onFull}}
	return w, fs, ev, cfg, o
}

func smallWorkload(seed int64) *testutil.Workload {
	wl := testutil.NewWorkload(seed, smallTarget, nil)
	wl.MaxWrite = 1 << 20
	wl.TagEvery = 40
	return wl
}

// checkRound feeds n writes, waits until they are applied (unless the
// pair is paused), runs the low-space monitor once and returns the free
// space it left.
func checkRound(t *testing.T, w *Writer, p *Pair, fs *vfs.Mem, wl *testutil.Workload, n int) uint64 {
	t.Helper()
	// A journal that cannot take a write (its segment does not fit the
	// volume) would leave the stream stuck: fail instead of hanging.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for range n {
		op := wl.Next()
		var err error
		if op.Tag != nil {
			err = p.TagContext(ctx, op.Seq, *op.Tag)
		} else {
			err = p.WriteContext(ctx, op.Seq, op.Offset, op.Time, op.Data, 0)
		}
		if err != nil {
			t.Fatalf("write %d: %v (health %s %q)", op.Seq, err, p.Status().Health, p.Status().Reason)
		}
	}
	if err := p.SyncContext(ctx); err != nil {
		t.Fatalf("sync: %v (health %s %q)", err, p.Status().Health, p.Status().Reason)
	}
	if p.Status().Health != HealthPaused {
		if err := p.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	w.CheckSpace()
	free, _, _ := fs.Free("/vol")
	return free
}

// TestSmallVolume256MiBPurges: on a 256 MiB volume the segments follow
// the volume, the monitor purges the oldest retention instead of pausing
// at once (the old 1 GiB floor was four times the volume), and the
// volume never fills.
func TestSmallVolume256MiBPurges(t *testing.T) {
	w, fs, ev, cfg, o := smallVolume(t, 256<<20, journal.Purge, SpaceOptions{})
	p, _, err := w.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.JournalSegmentSize != 16<<20 || p.cfg.UndoSegmentSize != 16<<20 || p.cfg.JournalMaxSegments != 4 {
		t.Fatalf("segments: redo %d ×%d, undo %d; want 16 MiB ×4, 16 MiB", p.cfg.JournalSegmentSize, p.cfg.JournalMaxSegments, p.cfg.UndoSegmentSize)
	}
	wl := smallWorkload(31)
	for round := range 25 { // about 250 MB of writes, the size of the volume
		free := checkRound(t, w, p, fs, wl, 20)
		if s := p.Status(); s.Health != HealthOK && s.Health != HealthRPO {
			t.Fatalf("round %d: %s %q, want replicating", round, s.Health, s.Reason)
		}
		if free < 256<<20/10 {
			t.Fatalf("round %d: %d bytes free after the monitor, below its trigger", round, free)
		}
	}
	if !ev.find(EventAlert, "retention volume low: purged") {
		t.Fatal("the monitor never purged: the test does not test")
	}
	for _, bad := range []string{"journal volume full", "retention volume full", "paused"} {
		if ev.find(EventAlert, bad) {
			t.Fatalf("alert %q: the volume filled", bad)
		}
	}
	if got, _ := o.TargetFS.(*vfs.Mem).ReadFile(cfg.Target); testutil.Diff(got, wl.Source) != "" {
		t.Fatalf("target: %s", testutil.Diff(got, wl.Source))
	}
}

// TestSmallVolume64MiBPauseAndResume: on a 64 MiB volume the first redo
// segment fits (the old 64 MiB one did not); policy pause stops applying
// with an alert while the journal, bounded by what the volume can spare,
// goes on acknowledging and never fills it; once space is freed the
// monitor resumes the pair.
func TestSmallVolume64MiBPauseAndResume(t *testing.T) {
	w, fs, ev, cfg, o := smallVolume(t, 64<<20, journal.Pause, SpaceOptions{})
	// Something else on the volume, freed later.
	ballast, err := fs.OpenFile("/vol/ballast", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ballast.Truncate(28 << 20)
	p, _, err := w.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.JournalSegmentSize != 8<<20 || p.cfg.UndoSegmentSize != 4<<20 || p.cfg.JournalMaxSegments != 2 {
		t.Fatalf("segments: redo %d ×%d, undo %d; want 8 MiB ×2, 4 MiB", p.cfg.JournalSegmentSize, p.cfg.JournalMaxSegments, p.cfg.UndoSegmentSize)
	}
	wl := smallWorkload(37)
	wl.MaxWrite = 256 << 10
	for round := 0; p.Status().Health != HealthPaused; round++ {
		if round == 100 {
			t.Fatal("the pair never paused: the test does not test")
		}
		checkRound(t, w, p, fs, wl, 10)
	}
	if s := p.Status(); !strings.Contains(s.Reason, "retention volume low") {
		t.Fatalf("paused for %q, want the retention volume", s.Reason)
	}
	if !ev.find(EventAlert, "paused: retention volume low") {
		t.Fatal("no alert for the pause")
	}
	// Paused: writes are journaled until the journal's bound, and then
	// wait; the volume keeps room.
	fed := make(chan error, 1)
	go func() {
		for range 200 {
			if err := feed(t, p, wl.Next()); err != nil {
				fed <- err
				return
			}
		}
		fed <- p.Sync()
	}()
	waitFor(t, "the paused pair's journal to fill", func() bool { return p.JournalWaiting() > 0 })
	if free, _, _ := fs.Free("/vol"); free == 0 {
		t.Fatal("the paused pair's journal filled the volume")
	}
	if ev.find(EventAlert, "journal volume full") || p.Err() != nil {
		t.Fatalf("journal ran out of space: %v", p.Err())
	}
	w.CheckSpace()
	if p.Status().Health != HealthPaused {
		t.Fatal("resumed without space")
	}
	ballast.Truncate(0)
	ballast.Close()
	fs.Remove("/vol/ballast")
	w.CheckSpace()
	if s := p.Status(); s.Health == HealthPaused {
		t.Fatalf("not resumed after space was freed: %q", s.Reason)
	}
	if !ev.find(EventState, "resumed") {
		t.Fatal("no event for the resume")
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := o.TargetFS.(*vfs.Mem).ReadFile(cfg.Target); testutil.Diff(got, wl.Source) != "" {
		t.Fatalf("target: %s", testutil.Diff(got, wl.Source))
	}
}

// TestSmallVolumeRefused: a volume that cannot hold two redo segments and
// one undo segment beside the reserve is refused at open, by name, and
// nothing is left behind.
func TestSmallVolumeRefused(t *testing.T) {
	w, fs, _, cfg, _ := smallVolume(t, 16<<20, journal.Purge, SpaceOptions{})
	_, _, err := w.Open(cfg)
	if !errors.Is(err, ErrVolumeTooSmall) {
		t.Fatalf("16 MiB volume: %v, want ErrVolumeTooSmall", err)
	}
	for _, want := range []string{"/vol/journal/small", "17 MiB", "two 8 MiB redo segments, one 1 MiB undo segment", "16 MiB free", "larger volume"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if names, _ := fs.List("/vol/retention/small"); len(names) != 0 {
		t.Fatalf("refused open left %v", names)
	}

	// The reserve counts: 64 MiB holds the segments but not 60 MiB more.
	w, _, _, cfg, _ = smallVolume(t, 64<<20, journal.Purge, SpaceOptions{Reserved: 60 << 20})
	if _, _, err := w.Open(cfg); !errors.Is(err, ErrVolumeTooSmall) || !strings.Contains(err.Error(), "60 MiB reserve") {
		t.Fatalf("64 MiB volume with a 60 MiB reserve: %v", err)
	}

	// A pair reopened on a volume its own files fill is not refused.
	w, fs, _, cfg, o := smallVolume(t, 64<<20, journal.Purge, SpaceOptions{})
	p, _, err := w.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkRound(t, w, p, fs, smallWorkload(5), 30)
	w.Close()
	free, _, _ := fs.Free("/vol")
	used := 64<<20 - int64(free)
	if used < 16<<20 {
		t.Fatalf("the pair's files take only %d bytes: the test does not test", used)
	}
	fs.SetCapacity(used + 2<<20) // 2 MiB free, under the 17 MiB needed
	w2 := New(o, SpaceOptions{Interval: -1})
	defer w2.Close()
	if _, _, err := w2.Open(cfg); err != nil {
		t.Fatalf("reopen with the pair's own files on the volume: %v", err)
	}
}
