package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// pipelineOps are two batches of eight records (memPair's BatchRecords):
// batch 1 writes 512 bytes at each of eight places; batch 2 opens with a
// tag, then overwrites the first place and the middle of the second.
// Small enough that no commit falls between the batches.
func pipelineOps() []testutil.Op {
	t := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	var ops []testutil.Op
	add := func(off int64, fill byte, n int) {
		seq := uint64(len(ops) + 1)
		ops = append(ops, testutil.Op{Seq: seq, Offset: off, Data: bytes.Repeat([]byte{fill}, n), Time: t.Add(time.Duration(seq) * time.Millisecond)})
	}
	for i := range 8 {
		add(int64(i)*4096, byte(0x10+i), 512)
	}
	ops = append(ops, testutil.Op{Seq: 9, Time: t.Add(9 * time.Millisecond),
		Tag: &journal.TagInfo{Name: "after-batch-1", App: journal.AppUser, Time: t.Add(9 * time.Millisecond)}})
	add(0, 0xa0, 512)
	add(4096+256, 0xa1, 512)
	for i := range 5 {
		add(int64(16+i)*4096, byte(0xb0+i), 512)
	}
	return ops
}

// heldFS opens files whose first WriteAt waits until release is closed
// (outside the Mem's lock, which its injector runs under), and counts
// their reads.
type heldFS struct {
	vfs.FS
	first   atomic.Bool
	reads   atomic.Int64
	started chan struct{}
	release chan struct{}
}

type heldFile struct {
	vfs.File
	fs *heldFS
}

func (h *heldFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := h.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &heldFile{f, h}, nil
}

func (f *heldFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.reads.Add(1)
	return f.File.ReadAt(p, off)
}

func (f *heldFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.first.CompareAndSwap(false, true) {
		close(f.fs.started)
		select {
		case <-f.fs.release:
		case <-time.After(30 * time.Second): // never released: the test fails below
		}
	}
	return f.File.WriteAt(p, off)
}

// holdFirstBatch makes batch 1's first target write wait until a
// retention fdatasync comes after it started (batch 2's before-images
// made durable while batch 1 is in flight), and calls atSync there: its
// error is the fdatasync's. It reports whether that happened. The
// fdatasync of batch 2 is the first after its capture (pipelineOps: 15
// target reads): it waits for batch 1's first write to start, which the
// applier started before that capture but a busy machine may not have
// run yet.
func holdFirstBatch(m *memPair, atSync func() error) *atomic.Bool {
	h := &heldFS{FS: m.fs, started: make(chan struct{}), release: make(chan struct{})}
	m.o.TargetFS = h
	var (
		once sync.Once
		seen atomic.Bool
	)
	m.fs.SetInjector(func(op vfs.Op, name string) error {
		if op != vfs.OpSync || !strings.HasPrefix(name, m.cfg.RetentionDir+"/") || h.reads.Load() < 15 {
			return nil
		}
		// Waiting under the Mem's lock is safe: the held write signals
		// started before it reaches the Mem.
		select {
		case <-h.started:
		case <-time.After(30 * time.Second):
			return nil // never started: the caller fails on seen
		}
		var err error
		once.Do(func() {
			seen.Store(true)
			err = atSync()
			close(h.release)
		})
		return err
	})
	return &seen
}

// feedAll journals ops with the applier paused, so that the batches are
// cut as pipelineOps says, then resumes it.
func feedAll(t *testing.T, p *Pair, ops []testutil.Op) {
	t.Helper()
	if err := p.Pause("test: journal first"); err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		if err := feed(t, p, op); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
}

// TestPipelineBeforeImageFromWriteInFlight: batch 2's before-images are
// captured while batch 1's target writes are still running; where they
// overlap, the before-image is what batch 1 writes, so the tag between
// the batches recovers bit-exact.
func TestPipelineBeforeImageFromWriteInFlight(t *testing.T) {
	m := newMemPair(t, nil)
	seen := holdFirstBatch(m, func() error { return nil })
	p, _ := m.open()
	defer p.Close()
	ops := pipelineOps()
	feedAll(t, p, ops)
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !seen.Load() {
		t.Fatal("batch 2's before-images were not made durable while batch 1 was in flight: the test does not test")
	}
	if d := testutil.Diff(m.target(), replay(ops, uint64(len(ops)))); d != "" {
		t.Fatalf("target after both batches: %s", d)
	}
	r, err := recovery.Resolve(p.Store(), recovery.Point{Kind: recovery.TagNamed, Name: "after-batch-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Export(context.Background(), r, "/mt/export", nil); err != nil {
		t.Fatal(err)
	}
	got, _ := m.fs.ReadFile("/mt/export")
	if d := testutil.Diff(got, replay(ops, 9)); d != "" {
		t.Fatalf("the tag between the batches does not recover bit-exact: %s", d)
	}
}

// TestCrashBetweenCaptureAndCommit crashes at the fdatasync that makes
// batch 2's before-images durable while batch 1's target writes are in
// flight (captured, not committed), with unsynced writes dropped, torn
// and kept: the restart puts the target back to the applied position and
// re-applies, and the tag between the batches recovers bit-exact.
func TestCrashBetweenCaptureAndCommit(t *testing.T) {
	for _, mode := range []vfs.TearMode{vfs.DropUnsynced, vfs.TearUnsynced, vfs.KeepUnsynced} {
		m := newMemPair(t, nil)
		seen := holdFirstBatch(m, func() error { return vfs.ErrCrashed })
		p, _ := m.open()
		ops := pipelineOps()
		feedAll(t, p, ops)
		deadline := time.Now().Add(30 * time.Second)
		for !m.fs.Crashed() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if !seen.Load() || !m.fs.Crashed() {
			t.Fatalf("%v: no crash at batch 2's before-image fdatasync: the test does not test", mode)
		}
		p.Close()
		m.fs = m.fs.Crash(mode, rand.New(rand.NewSource(int64(mode)+1)))
		m.o.TargetFS = nil
		p, rec := m.open()
		if rec.RolledBack == 0 && mode != vfs.DropUnsynced {
			t.Logf("%v: nothing rolled back (%+v)", mode, rec)
		}
		if err := p.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		if p.Durable() != uint64(len(ops)) {
			t.Fatalf("%v: durable %d after restart, want %d (all acknowledged)", mode, p.Durable(), len(ops))
		}
		if d := testutil.Diff(m.target(), replay(ops, uint64(len(ops)))); d != "" {
			t.Fatalf("%v: target after restart: %s", mode, d)
		}
		r, err := recovery.Resolve(p.Store(), recovery.Point{Kind: recovery.TagNamed, Name: "after-batch-1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Export(context.Background(), r, "/mt/export", nil); err != nil {
			t.Fatal(err)
		}
		got, _ := m.fs.ReadFile("/mt/export")
		if d := testutil.Diff(got, replay(ops, 9)); d != "" {
			t.Fatalf("%v: the tag between the batches does not recover bit-exact: %s", mode, d)
		}
		p.Close()
	}
}

// slowSyncFS opens files whose Sync waits until n target writes have
// been made (or the file system crashed): the commit of batch 1 (the
// target's fdatasync, then the catalogue) then runs beside batch 2,
// whose before-images are appended to the same undo segment and whose
// target writes land before batch 1's catalogue commit.
type slowSyncFS struct {
	vfs.FS
	mem    *vfs.Mem
	n      int64
	writes atomic.Int64
	syncs  atomic.Int64
	// waited: the first target fdatasync (batch 1's commit) returned
	// only after batch 2's n writes landed, whether it found them
	// landed or waited for them. An applier that commits batch 1
	// before writing batch 2 leaves it false (after the deadline).
	waited  atomic.Bool
	reached chan struct{}
	once    sync.Once
}

type slowSyncFile struct {
	vfs.File
	fs *slowSyncFS
}

func (s *slowSyncFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &slowSyncFile{f, s}, nil
}

func (f *slowSyncFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	if err == nil && f.fs.writes.Add(1) >= f.fs.n {
		f.fs.once.Do(func() { close(f.fs.reached) })
	}
	return n, err
}

func (f *slowSyncFile) Sync() error {
	if f.fs.syncs.Add(1) != 1 {
		return f.File.Sync()
	}
	if f.fs.writes.Load() >= f.fs.n {
		f.fs.waited.Store(true)
	} else {
		deadline := time.Now().Add(30 * time.Second)
	wait:
		for time.Now().Before(deadline) && !f.fs.mem.Crashed() {
			select {
			case <-f.fs.reached:
				f.fs.waited.Store(true)
				break wait
			case <-time.After(time.Millisecond):
			}
		}
	}
	return f.File.Sync()
}

// TestCrashCommitBesideNextBatch crashes at every sync point of two
// batches whose commits run beside the applier (a commit after each
// batch): batch 1's target fdatasync and catalogue commit wait until
// batch 2's before-images are durable in the same undo segment and its
// target writes have landed, so the catalogue commit of batch 1 must
// record only batch 1's before-images as committed. Unsynced writes are
// dropped, torn or kept; after the restart the target is the source at
// the last acknowledged sequence and the tag between the batches
// recovers bit-exact.
func TestCrashCommitBesideNextBatch(t *testing.T) {
	ops := pipelineOps()
	writes := int64(len(ops) - 1) // every op but the tag
	run := func(at int64, mode vfs.TearMode) int64 {
		m := newMemPair(t, nil)
		m.o.CommitBytes = 1 // a commit after every batch
		c := &crasher{at: at}
		c.install(m)
		slow := &slowSyncFS{FS: m.fs, mem: m.fs, n: writes, reached: make(chan struct{})}
		m.o.TargetFS = slow
		what := fmt.Sprintf("crash at %d (%v)", at, mode)
		// The sync points of the open and of the journaling before the
		// applier starts are other tests' (crashRun): a crash there ends
		// the run.
		p, err := m.tryOpen()
		if err != nil {
			if errors.Is(err, vfs.ErrCrashed) && at > 0 {
				return 0
			}
			t.Fatalf("%s: open: %v", what, err)
		}
		err = p.Pause("test: journal first")
		for _, op := range ops {
			if err == nil {
				err = feed(t, p, op)
			}
		}
		if err == nil {
			err = p.Sync()
		}
		if err == nil {
			err = p.Resume()
		}
		if err != nil {
			if m.fs.Crashed() && at > 0 {
				p.Close()
				return 0
			}
			t.Fatalf("%s: journaling: %v", what, err)
		}
		p.Drain(context.Background()) // returns with the pair in error after a crash
		passed := c.count.Load()
		if at == 0 {
			if !slow.waited.Load() {
				t.Fatal("batch 1's commit did not run beside batch 2's capture and writes: the test does not test")
			}
			if d := testutil.Diff(m.target(), replay(ops, uint64(len(ops)))); d != "" {
				t.Fatalf("target without a crash: %s", d)
			}
			if st := p.Store().State(); st.Applied != uint64(len(ops)) {
				t.Fatalf("applied %d without a crash, want %d", st.Applied, len(ops))
			}
		}
		if !m.fs.Crashed() {
			m.fs.Halt()
		}
		p.Close()
		m.fs = m.fs.Crash(mode, rand.New(rand.NewSource(at*10+int64(mode))))
		m.o.TargetFS, m.o.StoreHook = nil, nil
		p, _ = m.open()
		defer p.Close()
		if p.Durable() != uint64(len(ops)) {
			t.Fatalf("%s: durable %d after restart, want %d (all acknowledged)", what, p.Durable(), len(ops))
		}
		if err := p.Drain(context.Background()); err != nil {
			t.Fatalf("%s: drain after restart: %v", what, err)
		}
		if d := testutil.Diff(m.target(), replay(ops, uint64(len(ops)))); d != "" {
			t.Fatalf("%s: target after restart: %s", what, d)
		}
		r, err := recovery.Resolve(p.Store(), recovery.Point{Kind: recovery.TagNamed, Name: "after-batch-1"})
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if _, err := p.Export(context.Background(), r, "/mt/export", nil); err != nil {
			t.Fatalf("%s: export: %v", what, err)
		}
		got, _ := m.fs.ReadFile("/mt/export")
		if d := testutil.Diff(got, replay(ops, 9)); d != "" {
			t.Fatalf("%s: the tag between the batches does not recover bit-exact: %s", what, d)
		}
		return passed
	}
	total := run(0, vfs.DropUnsynced)
	if total < 4 {
		t.Fatalf("only %d sync points in two batches", total)
	}
	for at := int64(1); at <= total; at++ {
		for _, mode := range []vfs.TearMode{vfs.DropUnsynced, vfs.TearUnsynced, vfs.KeepUnsynced} {
			run(at, mode)
		}
	}
}
