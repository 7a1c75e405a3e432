package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// TestExportWhileBatchesStaged is the race behind wrong live exports: the
// applier has batches on the target whose applied position is not yet
// committed when an export asks it to hold. Hold must not hand the target
// over until those batches are committed; before the fix the export read
// the old applied position while the applier was still committing, left
// out the staged writes' before-images, and wrote their new data into an
// image reported exact. The test reads the applied position inside a hold
// (it fails without the fix), then exports the tag and compares the image.
func TestExportWhileBatchesStaged(t *testing.T) {
	m, tfs := newStagingPair(t)
	slow := newTargetGate(tfs, m.cfg.Target) // stalls a target write, slows its fdatasync
	m.o.TargetFS = slow

	p, _ := m.open()
	defer p.Close()

	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	block := func(seq uint64) []byte { return bytes.Repeat([]byte{byte(seq)}, 4096) }
	write := func(seq uint64) {
		t.Helper()
		if err := p.Write(seq, int64(seq%8)*4096, t0.Add(time.Duration(seq)*time.Millisecond), block(seq), 0); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]byte, diskSize) // the target at the tag
	for seq := uint64(1); seq < 10; seq++ {
		write(seq)
		copy(want[int64(seq%8)*4096:], block(seq))
	}
	if err := p.Tag(10, journal.TagInfo{Name: "t10", App: journal.AppCrash, Time: t0.Add(10 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	syncDrain(t, p)
	r, err := recovery.Resolve(p.Store(), recovery.Point{Kind: recovery.TagNamed, Name: "t10"})
	if err != nil {
		t.Fatal(err)
	}

	// Writes 11-20, all durable while the applier stalls writing 11 to the
	// target; the export's hold waits behind it. Released, the applier
	// has 11 staged when it meets the hold, and the target fdatasync that
	// begins its commit is slow.
	slow.stallWrite(0)
	for seq := uint64(11); seq <= 20; seq++ {
		write(seq)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	// The applier is inside write 11 before the hold is asked for (on a
	// busy machine it may not have woken yet).
	<-slow.stalled
	// Hold's promise, read inside it: every batch on the target is
	// committed, so the applied position covers write 11. (The export
	// would come out right even without it: a plan also takes the
	// before-images past the applied position.)
	res := make(chan error, 1)
	var applied uint64
	var onTarget byte
	go func() {
		err := p.Hold(func(tf vfs.File, st *journal.Store) error {
			applied = st.State().Applied
			b := make([]byte, 1)
			_, err := tf.ReadAt(b, (11%8)*4096)
			onTarget = b[0]
			return err
		})
		slow.syncDone()
		if err == nil {
			_, err = p.Export(context.Background(), r, "/mt/export.img", nil)
		}
		res <- err
	}()
	time.Sleep(50 * time.Millisecond) // the hold waits behind the stalled write (if not, it still finds 11 staged)
	slow.slowSync()
	close(slow.release)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if onTarget != 11 {
		t.Fatalf("write 11 is not on the target inside the hold (%d): the test does not test", onTarget)
	}
	if applied < 11 {
		t.Fatalf("inside Hold the applied position was %d while write 11 was on the target: Hold handed the target over before the commit", applied)
	}
	got, err := tfs.ReadFile("/mt/export.img")
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff(got, want); d != "" {
		t.Fatalf("export of tag t10 while batches were staged: %s", d)
	}
}

// newStagingPair is a pair whose target is on a file system of its own
// (stalling it stalls nothing else), applying one write a batch and
// committing only when idle or held: batches stay staged.
func newStagingPair(t *testing.T) (*memPair, *vfs.Mem) {
	m := newMemPair(t, nil)
	tfs := vfs.NewMem()
	tfs.MkdirAll("/mt", 0o700)
	tf, _ := tfs.OpenFile(m.cfg.Target, os.O_RDWR|os.O_CREATE, 0o600)
	tf.WriteAt(make([]byte, diskSize), 0)
	tf.Sync()
	tf.Close()
	m.o.TargetFS = tfs
	m.o.BatchRecords = 1
	m.o.CommitInterval = time.Hour
	m.o.CommitBytes = 1 << 40
	return m, tfs
}

func firstDiff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("image is %d bytes, want %d", len(got), len(want))
	}
	for i := 0; i < len(got); i += 4096 {
		if !bytes.Equal(got[i:i+4096], want[i:i+4096]) {
			return fmt.Sprintf("block at offset %d holds %d, want %d", i, got[i], want[i])
		}
	}
	return ""
}

// targetGate wraps the file system of a pair's target. Once told, it
// stalls the target write after n more have passed until release, and
// makes the target's fdatasync wait up to a second or until syncDone;
// both outside the file system's lock, so others read meanwhile.
type targetGate struct {
	vfs.FS
	target   string
	mu       sync.Mutex
	stallAt  int // -1: no stall
	release  chan struct{}
	stalled  chan struct{}
	slow     bool
	slowDone chan struct{}
}

func newTargetGate(fs vfs.FS, target string) *targetGate {
	return &targetGate{FS: fs, target: target, stallAt: -1, release: make(chan struct{}), stalled: make(chan struct{})}
}

func (g *targetGate) stallWrite(n int) { g.mu.Lock(); g.stallAt = n; g.mu.Unlock() }

func (g *targetGate) slowSync() {
	g.mu.Lock()
	g.slow, g.slowDone = true, make(chan struct{})
	g.mu.Unlock()
}

func (g *targetGate) syncDone() {
	g.mu.Lock()
	if g.slow {
		close(g.slowDone)
		g.slow = false
	}
	g.mu.Unlock()
}

func (g *targetGate) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := g.FS.OpenFile(name, flag, perm)
	if err != nil || name != g.target {
		return f, err
	}
	return gateFile{f, g}, nil
}

type gateFile struct {
	vfs.File
	g *targetGate
}

func (f gateFile) WriteAt(b []byte, off int64) (int, error) {
	g := f.g
	g.mu.Lock()
	stall := g.stallAt == 0
	if g.stallAt >= 0 {
		g.stallAt--
	}
	g.mu.Unlock()
	if stall {
		close(g.stalled)
		<-g.release
	}
	return f.File.WriteAt(b, off)
}

func (f gateFile) Sync() error {
	f.g.mu.Lock()
	slow, done := f.g.slow, f.g.slowDone
	f.g.mu.Unlock()
	if slow {
		select {
		case <-done:
		case <-time.After(time.Second):
		}
	}
	return f.File.Sync()
}

// ReadTarget reads what the applier put on the target without waiting
// for a hold (the agent's chunk hashes read beside the direct writes,
// which hold the pair to land), and is refused once the pair is closed.
func TestReadTargetBesideHold(t *testing.T) {
	initial := bytes.Repeat([]byte{0xa5}, 8192)
	m := newMemPair(t, initial)
	p, _ := m.open()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	if err := p.Write(1, 4096, t0, bytes.Repeat([]byte{7}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	syncDrain(t, p)
	release := holdOpen(p)
	got := make([]byte, 8192)
	n, err := p.ReadTarget(got, 0)
	holdErr := release()
	if err != nil || n != len(got) {
		t.Fatalf("ReadTarget during a hold: %d bytes, %v", n, err)
	}
	want := append(bytes.Repeat([]byte{0xa5}, 4096), bytes.Repeat([]byte{7}, 4096)...)
	if !bytes.Equal(got, want) {
		t.Error("ReadTarget does not read what the applier wrote")
	}
	if holdErr != nil {
		t.Fatal(holdErr)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReadTarget(got, 0); !errors.Is(err, journal.ErrClosed) {
		t.Errorf("ReadTarget after Close: %v, want %v", err, journal.ErrClosed)
	}
}

// A direct resync write is gathered, not yet on the target, when
// WriteDirect returns; EndDirect lands it, and ReadTarget sees it then.
// The agent ends the stretch so before it hashes a range written since
// its last drain.
func TestReadTargetSeesDirectWritesAfterEndDirect(t *testing.T) {
	idle := DirectIdle
	DirectIdle = time.Hour // no idle commit lands the write meanwhile
	t.Cleanup(func() { DirectIdle = idle })
	m := newMemPair(t, nil)
	p, _ := m.open()
	defer p.Close()
	data := bytes.Repeat([]byte{9}, 4096)
	ok, err := p.WriteDirect(context.Background(), 1, 8192, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), data, false)
	if err != nil || !ok {
		t.Fatalf("direct write: %v, %v", ok, err)
	}
	got := make([]byte, 4096)
	if _, err := p.ReadTarget(got, 8192); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, data) {
		t.Fatal("the direct write is on the target before it is landed: the test shows nothing")
	}
	if err := p.EndDirect(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReadTarget(got, 8192); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Error("ReadTarget after EndDirect does not see the direct write")
	}
}

// holdOpen holds p until the returned release is called; release
// returns the hold's error.
func holdOpen(p *Pair) (release func() error) {
	held, done := make(chan struct{}), make(chan struct{})
	holdErr := make(chan error, 1)
	go func() {
		holdErr <- p.Hold(func(vfs.File, *journal.Store) error {
			close(held)
			<-done
			return nil
		})
	}()
	<-held
	return func() error {
		close(done)
		return <-holdErr
	}
}
