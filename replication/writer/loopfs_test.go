package writer

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// loopFS makes a small ext4 file system on a loop device for the test and
// returns where it is mounted; it is unmounted and detached at cleanup.
func loopFS(t *testing.T, mib int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for losetup and mount")
	}
	for _, tool := range []string{"losetup", "mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, int64(mib)<<20); err != nil {
		t.Fatal(err)
	}
	run := func(name string, args ...string) string {
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("mkfs.ext4", "-q", "-F", "-m", "0", img)
	dev := run("losetup", "--find", "--show", img)
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o700)
	run("mount", dev, mnt)
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	return mnt
}

func loopPair(t *testing.T, mnt string, onFull journal.FullAction) (*Writer, *Pair, *events, string) {
	t.Helper()
	dir := t.TempDir()
	tgt := filepath.Join(dir, "target.img")
	if err := os.WriteFile(tgt, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	w := New(Options{OnEvent: ev.add}, SpaceOptions{Min: 2 << 20, Max: 4 << 20, Interval: -1})
	t.Cleanup(func() { w.Close() })
	p, _, err := w.Open(PairConfig{ID: "loop", Target: tgt, JournalDir: filepath.Join(dir, "journal"),
		RetentionDir: filepath.Join(mnt, "retention"), UndoSegmentSize: 1 << 20, JournalSegmentSize: 4 << 20,
		Policy: journal.Policy{OnFull: onFull}})
	if err != nil {
		t.Fatal(err)
	}
	return w, p, ev, tgt
}

// TestENOSPCOnLoopFS fills a real 16 MiB retention file system: policy
// purge drops the oldest segments and goes on, and the low-space monitor
// keeps twice its trigger free.
func TestENOSPCOnLoopFS(t *testing.T) {
	mnt := loopFS(t, 16)
	w, p, ev, tgt := loopPair(t, mnt, journal.Purge)
	wl := testutil.NewWorkload(17, 4<<20, nil)
	wl.MaxWrite = 64 << 10
	wl.TagEvery = 50
	for range 1500 { // about 50 MB of before-images
		if err := feed(t, p, wl.Next()); err != nil {
			t.Fatal(err)
		}
	}
	p.Sync()
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !ev.find(EventAlert, "retention volume full: purged") {
		t.Fatal("the file system never filled: the test does not test")
	}
	got, _ := os.ReadFile(tgt)
	if d := testutil.Diff(got, wl.Source); d != "" {
		t.Fatalf("target: %s", d)
	}
	w.CheckSpace()
	free, total, _ := p.o.FS.Free(filepath.Join(mnt, "retention"))
	trigger := journal.LowSpaceTrigger(total, 2<<20, 4<<20, 5)
	if free < trigger {
		t.Fatalf("after CheckSpace %d bytes free, trigger %d", free, trigger)
	}
	if e, _ := p.Store().Earliest(); e == 0 {
		t.Fatal("nothing was purged")
	}
}

// TestENOSPCPauseThenResumeOnLoopFS: policy pause stops the pair when the
// real file system fills and resumes once space is freed.
func TestENOSPCPauseThenResumeOnLoopFS(t *testing.T) {
	mnt := loopFS(t, 16)
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	w, p, ev, tgt := loopPair(t, mnt, journal.Pause)
	wl := testutil.NewWorkload(19, 4<<20, nil)
	wl.MaxWrite = 64 << 10
	for range 300 { // about 10 MB of before-images: more than fits beside the filler
		if err := feed(t, p, wl.Next()); err != nil {
			t.Fatal(err)
		}
	}
	p.Sync()
	deadline := time.Now().Add(20 * time.Second)
	for p.Status().Health != HealthPaused && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s := p.Status(); s.Health != HealthPaused || !strings.Contains(s.Reason, "retention volume") {
		t.Fatalf("status %s %q, want paused for the retention volume", s.Health, s.Reason)
	}
	if !ev.find(EventAlert, "paused") {
		t.Fatal("no alert for the pause")
	}
	if e, _ := p.Store().Earliest(); e != 0 {
		t.Fatalf("policy pause pruned: earliest %d", e)
	}
	os.Remove(filler)
	exec.Command("sync").Run() // ext4 frees the blocks at its next commit
	w.CheckSpace()
	if err := p.Drain(context.Background()); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}
	got, _ := os.ReadFile(tgt)
	if d := testutil.Diff(got, wl.Source); d != "" {
		t.Fatalf("target: %s", d)
	}
}

// TestSmallVolumeOnLoopFS: a pair whose journal and retention share a
// real 64 MiB file system, with the segment sizes and the low-space
// trigger left to the volume, replicates; the monitor purges instead of
// pausing and the volume never fills. A 16 MiB one is refused at open.
func TestSmallVolumeOnLoopFS(t *testing.T) {
	mnt := loopFS(t, 64)
	dir := t.TempDir()
	tgt := filepath.Join(dir, "target.img")
	if err := os.WriteFile(tgt, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	w := New(Options{OnEvent: ev.add}, SpaceOptions{Interval: -1})
	t.Cleanup(func() { w.Close() })
	p, _, err := w.Open(PairConfig{ID: "loop", Target: tgt, JournalDir: filepath.Join(mnt, "journal"),
		RetentionDir: filepath.Join(mnt, "retention")})
	if err != nil {
		t.Fatal(err)
	}
	if p.cfg.JournalSegmentSize != 8<<20 || p.cfg.JournalMaxSegments != 2 || p.cfg.UndoSegmentSize > 4<<20 {
		t.Fatalf("segments: redo %d ×%d, undo %d", p.cfg.JournalSegmentSize, p.cfg.JournalMaxSegments, p.cfg.UndoSegmentSize)
	}
	wl := testutil.NewWorkload(41, 8<<20, nil)
	wl.MaxWrite = 256 << 10
	wl.TagEvery = 40
	minFree := uint64(1 << 62)
	for range 40 { // about 50 MB of before-images
		for range 10 {
			if err := feed(t, p, wl.Next()); err != nil {
				t.Fatal(err)
			}
		}
		syncDrain(t, p)
		w.CheckSpace()
		free, _, _ := p.o.FS.Free(mnt)
		minFree = min(minFree, free)
		if s := p.Status(); s.Health == HealthPaused || s.Health == HealthError {
			t.Fatalf("%s %q, want replicating", s.Health, s.Reason)
		}
	}
	if !ev.find(EventAlert, "retention volume low: purged") {
		t.Fatal("the monitor never purged: the test does not test")
	}
	if minFree < 4<<20 || ev.find(EventAlert, "volume full") {
		t.Fatalf("the volume filled: %d bytes free at the least", minFree)
	}
	got, _ := os.ReadFile(tgt)
	if d := testutil.Diff(got, wl.Source); d != "" {
		t.Fatalf("target: %s", d)
	}

	small := loopFS(t, 16)
	_, _, err = w.Open(PairConfig{ID: "tiny", Target: tgt, JournalDir: filepath.Join(small, "journal"),
		RetentionDir: filepath.Join(small, "retention")})
	if !errors.Is(err, ErrVolumeTooSmall) {
		t.Fatalf("16 MiB volume: %v, want ErrVolumeTooSmall", err)
	}
	t.Log(err)
}
