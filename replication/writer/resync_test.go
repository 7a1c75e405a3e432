package writer

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

const directChunk = 4096

// directSource is a random source disk, copied by a full resync in
// directChunk chunks numbered 1.. (one chunk in eight zero: a ZeroRange).
func directSource(seed int64) []byte {
	rng := rand.New(rand.NewSource(seed))
	src := make([]byte, diskSize)
	rng.Read(src)
	for c := 0; c < diskSize/directChunk; c += 8 {
		clear(src[c*directChunk : (c+1)*directChunk])
	}
	return src
}

var resyncStart = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// feedDirect sends the full resync's chunks from seq on, as the agent
// does in step I.
func feedDirect(p *Pair, src []byte, from uint64) error {
	n := uint64(len(src) / directChunk)
	for seq := max(from, 1); seq <= n; seq++ {
		off := int64(seq-1) * directChunk
		data := src[off : off+directChunk]
		ok, err := p.WriteDirect(context.Background(), seq, off, resyncStart.Add(time.Duration(seq)*time.Millisecond), data, journal.IsZero(data))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("seq %d: not taken directly", seq)
		}
	}
	return p.EndDirect()
}

func withDirectCommit(t *testing.T, n int64) {
	old := DirectCommitBytes
	DirectCommitBytes = n
	t.Cleanup(func() { DirectCommitBytes = old })
}

// TestDirectResync: a full copy goes straight to the target, acknowledged
// by commits as it goes; no before-image is kept; the writes after it are
// journaled and applied as ever; the only points are at or after the
// copy's end, and every tag after it recovers bit-exact.
func TestDirectResync(t *testing.T) {
	withDirectCommit(t, 5*directChunk)
	m := newMemPair(t, nil)
	p, _ := m.open()
	defer func() { p.Close() }()
	src := directSource(1)
	n := uint64(diskSize / directChunk)
	if err := feedDirect(p, src, 1); err != nil {
		t.Fatal(err)
	}
	if p.Next() != n+1 || p.Durable() != n || m.acked != n {
		t.Fatalf("after the copy: next %d durable %d acked %d, want %d, %d, %d", p.Next(), p.Durable(), m.acked, n+1, n, n)
	}
	if d := testutil.Diff(m.target(), src); d != "" {
		t.Fatalf("target after the copy: %s", d)
	}
	if segs := p.Store().Segments(); len(segs) != 0 {
		t.Fatalf("a direct resync kept before-images: %v", segs)
	}
	// Then the changes, journaled and applied with before-images.
	w := testutil.NewWorkload(2, diskSize, src)
	w.Seq = n
	w.MaxWrite = 4096
	for range 60 {
		if err := feed(t, p, w.Next()); err != nil {
			t.Fatal(err)
		}
	}
	syncDrain(t, p)
	if d := testutil.Diff(m.target(), w.Source); d != "" {
		t.Fatalf("target after the changes: %s", d)
	}
	if e, _ := p.Store().Earliest(); e != n {
		t.Fatalf("earliest point %d: want the end of the resync, %d", e, n)
	}
	for _, pt := range []recovery.Point{{Kind: recovery.Earliest}, {Kind: recovery.AtTime, Time: resyncStart.Add(10 * time.Millisecond)}} {
		r, err := recovery.Resolve(p.Store(), pt)
		if errors.Is(err, recovery.ErrNoPoint) {
			continue // refused: a point inside the resync
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.Seq < n {
			t.Fatalf("%v resolved to %d, inside the resync (1-%d)", pt, r.Seq, n)
		}
	}
	checkTags(t, m, p, w, "after a direct resync")
	// A WriteDirect with recoverable points kept is refused: journaled.
	ok, err := p.WriteDirect(context.Background(), w.Seq+1, 0, w.Clock, src[:directChunk], false)
	if ok || err != nil {
		t.Fatalf("direct write with before-images kept: taken %v, err %v", ok, err)
	}
}

// TestDirectResyncResumesAfterClose: a pair closed mid-copy resumes
// after its last commit, not from zero, and ends equal to the source.
func TestDirectResyncResumesAfterClose(t *testing.T) {
	withDirectCommit(t, 4*directChunk)
	m := newMemPair(t, nil)
	p, _ := m.open()
	src := directSource(3)
	half := uint64(diskSize / directChunk / 2)
	for seq := uint64(1); seq <= half; seq++ {
		off := int64(seq-1) * directChunk
		if _, err := p.WriteDirect(context.Background(), seq, off, resyncStart, src[off:off+directChunk], false); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p, _ = m.open()
	defer p.Close()
	if p.Next() != half+1 {
		t.Fatalf("reopened mid-resync: resumes at %d, want %d (after what was written before Close)", p.Next(), half+1)
	}
	if err := feedDirect(p, src, p.Next()); err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(m.target(), src); d != "" {
		t.Fatalf("target after the resumed copy: %s", d)
	}
}

// directCrashRun runs a full direct resync, then journaled changes, on a
// file system that crashes at sync point at; reopens, checks what the
// pair acknowledged survived, that no recovery point inside or before
// the unfinished copy is handed back as exact, resumes from where the
// pair says, and checks the target ends equal to the source.
func directCrashRun(t *testing.T, at int64, mode vfs.TearMode) int64 {
	t.Helper()
	m := newMemPair(t, nil)
	c := &crasher{at: at}
	c.install(m)
	src := directSource(5)
	n := uint64(diskSize / directChunk)
	w := testutil.NewWorkload(6, diskSize, src)
	w.Seq, w.MaxWrite = n, 4096
	ops := make([]testutil.Op, 30)
	for i := range ops {
		ops[i] = w.Next()
	}
	what := fmt.Sprintf("crash at %d (%v)", at, mode)
	p, err := m.tryOpen()
	if err != nil && !errors.Is(err, vfs.ErrCrashed) {
		t.Fatal(err)
	}
	if p != nil {
		if feedDirect(p, src, 1) == nil {
			for _, op := range ops {
				if err := feed(t, p, op); err != nil {
					break
				}
			}
			if !m.fs.Crashed() {
				p.Sync()
				p.Drain(context.Background())
			}
		}
	}
	passed := c.count.Load()
	if !m.fs.Crashed() {
		m.fs.Halt()
	}
	if p != nil {
		p.Close()
	}
	m.mu.Lock()
	acked := m.acked
	m.mu.Unlock()
	m.fs = m.fs.Crash(mode, rand.New(rand.NewSource(at)))
	m.o.StoreHook = nil
	m.acked = 0
	p, _ = m.open()
	defer p.Close()
	if d := p.Durable(); d < acked {
		t.Fatalf("%s: acknowledged %d but only %d durable after restart", what, acked, d)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatalf("%s: drain: %v", what, err)
	}
	applied := p.Store().State().Applied
	tgt := m.target()
	if applied < n {
		// Every chunk through the applied position is on the target.
		if d := testutil.Diff(tgt[:applied*directChunk], src[:applied*directChunk]); d != "" {
			t.Fatalf("%s: chunks 1-%d acknowledged but not on the target: %s", what, applied, d)
		}
		// No point inside or before the copy is handed back wrongly:
		// each resolves to the applied position, and is exact only
		// where the target is exactly that image (nothing copied yet).
		for _, pt := range []recovery.Point{{Kind: recovery.Earliest}, {Kind: recovery.LatestTime},
			{Kind: recovery.AtTime, Time: resyncStart.Add(-time.Hour)}, {Kind: recovery.AtTime, Time: resyncStart.Add(3 * time.Millisecond)}} {
			r, err := recovery.Resolve(p.Store(), pt)
			if err != nil {
				continue // refused: fine
			}
			if r.Seq != applied {
				t.Fatalf("%s: %v resolved to sequence %d, not the applied position %d: there is no before-image for it", what, pt, r.Seq, applied)
			}
			want := append(append([]byte(nil), src[:applied*directChunk]...), make([]byte, diskSize-int(applied)*directChunk)...)
			if r.Accuracy == journal.Exact && testutil.Diff(tgt, want) != "" {
				t.Fatalf("%s: %v resolved to sequence %d as exact while the target holds more of the resync", what, pt, r.Seq)
			}
		}
		if err := feedDirect(p, src, p.Next()); err != nil {
			t.Fatalf("%s: resume the copy from %d: %v", what, p.Next(), err)
		}
	}
	for _, op := range ops {
		if err := feed(t, p, op); err != nil {
			t.Fatalf("%s: resend seq %d: %v", what, op.Seq, err)
		}
	}
	syncDrain(t, p)
	if d := testutil.Diff(m.target(), w.Source); d != "" {
		t.Fatalf("%s: final target differs: %s", what, d)
	}
	checkTags(t, m, p, w, what)
	return passed
}

// TestDirectResyncCrashAtEverySyncPoint crashes a direct resync and the
// changes after it at every sync point, unsynced writes dropped, torn or
// kept.
func TestDirectResyncCrashAtEverySyncPoint(t *testing.T) {
	withDirectCommit(t, 6*directChunk)
	total := directCrashRun(t, 0, vfs.DropUnsynced)
	if total < 15 {
		t.Fatalf("only %d sync points", total)
	}
	t.Logf("%d sync points", total)
	for at := int64(1); at <= total+1; at++ {
		for _, mode := range []vfs.TearMode{vfs.DropUnsynced, vfs.TearUnsynced, vfs.KeepUnsynced} {
			directCrashRun(t, at, mode)
		}
	}
}

// A pin (an open view) ends a direct resync stretch: what was written
// directly is committed, and the next write is refused for the journal,
// where it keeps its before-image.
func TestDirectResyncStopsForPin(t *testing.T) {
	withDirectCommit(t, 100*directChunk)
	m := newMemPair(t, nil)
	p, _ := m.open()
	defer func() { p.Close() }()
	src := directSource(3)
	for seq := uint64(1); seq <= 3; seq++ {
		off := int64(seq-1) * directChunk
		ok, err := p.WriteDirect(context.Background(), seq, off, resyncStart, src[off:off+directChunk], false)
		if err != nil || !ok {
			t.Fatalf("direct write %d: %v %v", seq, ok, err)
		}
	}
	pin := p.Store().Pin(3, "view v1")
	defer pin.Release()
	ok, err := p.WriteDirect(context.Background(), 4, 3*directChunk, resyncStart, src[3*directChunk:4*directChunk], false)
	if err != nil || ok {
		t.Fatalf("direct write with a pin held: %v %v; want refused (false), no error", ok, err)
	}
	if a := p.Store().State().Applied; a != 3 {
		t.Fatalf("applied %d after the stretch ended: want the 3 direct writes committed", a)
	}
}

// failAtFS fails the target write at offset at with EIO.
type failAtFS struct {
	vfs.FS
	name string
	at   int64
}

func (f failAtFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil || name != f.name {
		return file, err
	}
	return failAtFile{file, f.at}, nil
}

type failAtFile struct {
	vfs.File
	at int64
}

func (f failAtFile) WriteAt(b []byte, off int64) (int, error) {
	if off <= f.at && f.at < off+int64(len(b)) {
		return 0, syscall.EIO
	}
	return f.File.WriteAt(b, off)
}

// A commit that does not wait (every DirectCommitBytes) starts the
// gathered batch and commits it once it lands: when a write of that
// batch fails, the commit records nothing past the last good commit, the
// pair stops on the error (invariant 5), nothing after it is
// acknowledged, and the reopened pair resumes from its last commit and
// ends equal to the source.
func TestDirectResyncFailedBatchIsNeverCommitted(t *testing.T) {
	withDirectCommit(t, 6*directChunk)
	m := newMemPair(t, nil)
	const bad = 40 // its batch is the one the commit at chunk 42 starts
	m.o.TargetFS = failAtFS{FS: m.fs, name: m.cfg.Target, at: (bad-1)*directChunk + 100}
	p, _ := m.open()
	src := directSource(9)
	err := feedDirect(p, src, 1)
	if err == nil || !errors.Is(err, syscall.EIO) {
		t.Fatalf("a direct resync over a failing target write: %v, want EIO", err)
	}
	m.mu.Lock()
	acked := m.acked
	m.mu.Unlock()
	if acked >= bad || p.Durable() >= bad {
		t.Fatalf("acknowledged %d, durable %d: past the failed write %d", acked, p.Durable(), bad)
	}
	if err := p.Err(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("pair error after a failed target write: %v, want EIO", err)
	}
	p.Close()
	m.o.TargetFS = nil
	p, _ = m.open()
	defer p.Close()
	if next := p.Next(); next > bad || next < 2 {
		t.Fatalf("reopened after the failed write: resumes at %d, want after a commit and at most %d", next, bad)
	}
	if err := feedDirect(p, src, p.Next()); err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(m.target(), src); d != "" {
		t.Fatalf("target after the resumed copy: %s", d)
	}
}
