package writer

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// crasher counts sync points (fdatasync, directory fsync, catalogue
// commit) and halts the file system at the chosen one.
type crasher struct {
	fs    *vfs.Mem
	at    int64 // 0: never
	count atomic.Int64
}

// point counts a sync point; at the chosen one it returns ErrCrashed,
// which halts the Mem when returned from its injector.
func (c *crasher) point() error {
	n := c.count.Add(1)
	if c.at > 0 && n >= c.at {
		return vfs.ErrCrashed
	}
	return nil
}

func (c *crasher) install(m *memPair) {
	c.fs = m.fs
	m.fs.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpSync || op == vfs.OpSyncDir {
			return c.point()
		}
		return nil
	})
	m.o.StoreHook = func() error {
		if m.fs.Crashed() {
			return vfs.ErrCrashed
		}
		if err := c.point(); err != nil {
			m.fs.Halt()
			return err
		}
		return nil
	}
}

// crashRun streams ops into a pair that crashes at sync point at, then
// reopens what survived, finishes the stream from where the pair says it
// resumes, and checks the oracle. It returns the number of sync points
// the run passed.
func crashRun(t *testing.T, seed int64, nops int, at int64, mode vfs.TearMode) int64 {
	t.Helper()
	m := newMemPair(t, nil)
	c := &crasher{at: at}
	c.install(m)
	w := testutil.NewWorkload(seed, diskSize, nil)
	w.MaxWrite = 4096
	ops := make([]testutil.Op, nops)
	images := map[uint64][]byte{0: make([]byte, diskSize)}
	for i := range ops {
		ops[i] = w.Next()
		images[ops[i].Seq] = append([]byte(nil), w.Source...)
	}
	p, err := m.tryOpen()
	if err != nil && !errors.Is(err, vfs.ErrCrashed) {
		t.Fatal(err)
	}
	if p != nil {
		for _, op := range ops {
			if err := feed(t, p, op); err != nil {
				break // the crash reached the write path
			}
		}
		if !m.fs.Crashed() {
			p.Sync()
			p.Drain(context.Background())
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

	rng := rand.New(rand.NewSource(seed*1000 + at))
	m.fs = m.fs.Crash(mode, rng)
	m.o.StoreHook = nil
	m.acked = 0
	p, _ = m.open()
	defer p.Close()
	// Invariant 1 and 3: everything acknowledged survived.
	if d := p.Durable(); d < acked {
		t.Fatalf("seed %d crash at %d (%v): acknowledged %d but only %d durable after restart", seed, at, mode, acked, d)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatalf("seed %d crash at %d: drain after restart: %v", seed, at, err)
	}
	// The target is exactly the source at the last durable sequence.
	if d := testutil.Diff(m.target(), images[p.Durable()]); d != "" {
		t.Fatalf("seed %d crash at %d (%v): after restart the target is not the source at seq %d: %s", seed, at, mode, p.Durable(), d)
	}
	// The process server resends from Next: duplicates are dropped.
	for _, op := range ops {
		if err := feed(t, p, op); err != nil {
			t.Fatalf("seed %d crash at %d: resend seq %d: %v", seed, at, op.Seq, err)
		}
	}
	syncDrain(t, p)
	if d := testutil.Diff(m.target(), w.Source); d != "" {
		t.Fatalf("seed %d crash at %d (%v): final target differs: %s", seed, at, mode, d)
	}
	// Invariant 7: every tag recovers bit-exact.
	checkTags(t, m, p, w, fmt.Sprintf("seed %d crash at %d (%v)", seed, at, mode))
	return passed
}

func checkTags(t *testing.T, m *memPair, p *Pair, w *testutil.Workload, what string) {
	t.Helper()
	// A hold is a barrier: the applier parks only between commits, so the
	// pruning of the last one is over and the tags listed stay.
	if err := p.Hold(func(vfs.File, *journal.Store) error { return nil }); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	for _, tg := range p.Store().Tags() {
		r, err := recovery.Resolve(p.Store(), recovery.Point{Kind: recovery.TagNamed, Name: tg.Name})
		if err != nil {
			t.Fatalf("%s: resolve %s: %v", what, tg.Name, err)
		}
		name := "/mt/export-" + tg.Name
		if _, err := p.Export(context.Background(), r, name, nil); err != nil {
			t.Fatalf("%s: export %s: %v", what, tg.Name, err)
		}
		got, _ := m.fs.ReadFile(name)
		m.fs.Remove(name)
		if d := testutil.Diff(got, w.Tags[tg.Name]); d != "" {
			t.Fatalf("%s: tag %s does not recover bit-exact: %s", what, tg.Name, d)
		}
	}
}

// TestCrashAtEverySyncPoint crashes a small workload at every sync point
// it passes, with unsynced writes dropped and torn.
func TestCrashAtEverySyncPoint(t *testing.T) {
	const seed, nops = 7, 40
	total := crashRun(t, seed, nops, 0, vfs.DropUnsynced)
	if total < 20 {
		t.Fatalf("only %d sync points: the workload does not exercise the engine", total)
	}
	t.Logf("%d sync points", total)
	for at := int64(1); at <= total+2; at++ {
		for _, mode := range []vfs.TearMode{vfs.DropUnsynced, vfs.TearUnsynced, vfs.KeepUnsynced} {
			crashRun(t, seed, nops, at, mode)
		}
	}
}

// TestCrashRandomPoints crashes larger workloads at seeded random points.
func TestCrashRandomPoints(t *testing.T) {
	n := 12
	if testing.Short() {
		n = 3
	}
	base := time.Now().UnixNano() % 100000
	for i := range n {
		seed := base + int64(i)
		total := crashRun(t, seed, 200, 0, vfs.DropUnsynced)
		at := 1 + rand.New(rand.NewSource(seed)).Int63n(total)
		t.Logf("seed %d: crash at sync point %d of %d", seed, at, total)
		crashRun(t, seed, 200, at, vfs.TearUnsynced)
	}
}

// TestCrashDuringRecovery crashes the pair, then crashes the restart at
// each of its own sync points, then restarts again.
func TestCrashDuringRecovery(t *testing.T) {
	const seed = 11
	m := newMemPair(t, nil)
	w := testutil.NewWorkload(seed, diskSize, nil)
	w.MaxWrite = 4096
	var ops []testutil.Op
	for range 60 {
		ops = append(ops, w.Next())
	}
	// A pair whose target holds a half-applied batch: the crash falls
	// after the before-images are durable, during the target writes.
	c := &crasher{}
	c.install(m)
	var targetWrites atomic.Int64
	m.fs.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpWrite && name == m.cfg.Target && targetWrites.Add(1) == 30 {
			return vfs.ErrCrashed
		}
		if op == vfs.OpSync || op == vfs.OpSyncDir {
			return c.point()
		}
		return nil
	})
	p, _ := m.open()
	for _, op := range ops {
		if feed(t, p, op) != nil {
			break
		}
	}
	p.Sync()
	p.Drain(context.Background())
	if !m.fs.Crashed() {
		t.Fatal("the target write injector never fired")
	}
	p.Close()
	crashed := m.fs.Crash(vfs.KeepUnsynced, nil) // the half-applied writes reached the disk
	catPath := filepath.Join(m.catDir, "catalogue.db")
	cat, err := os.ReadFile(catPath)
	if err != nil {
		t.Fatal(err)
	}
	// snapshot restores the crashed state: the Mem and the catalogue.
	snapshot := func(f *vfs.Mem) *vfs.Mem {
		if err := os.WriteFile(catPath, cat, 0o600); err != nil {
			t.Fatal(err)
		}
		return f.Crash(vfs.KeepUnsynced, nil)
	}
	m.o.StoreHook = nil
	for at := int64(1); ; at++ {
		m.fs = snapshot(crashed)
		c := &crasher{at: at}
		c.install(m)
		o := m.o
		o.FS = m.fs
		rp, rec, err := OpenPair(m.cfg, o)
		if err == nil {
			rp.Close()
			if at == 1 || rec.RolledBack == 0 {
				t.Fatalf("recovery passed no sync point or rolled nothing back (%+v): the test does not test", rec)
			}
			break // recovery got past every sync point
		}
		if !errors.Is(err, vfs.ErrCrashed) {
			t.Fatalf("recovery crashed at %d: %v", at, err)
		}
		// What the interrupted recovery left must recover too.
		m.fs = m.fs.Crash(vfs.TearUnsynced, rand.New(rand.NewSource(at)))
		m.o.StoreHook = nil
		p, rec := m.open()
		if err := p.Drain(context.Background()); err != nil {
			t.Fatal(err)
		}
		img := replay(ops, p.Durable())
		if d := testutil.Diff(m.target(), img); d != "" {
			t.Fatalf("crash at %d during recovery (%+v): target not at seq %d: %s", at, rec, p.Durable(), d)
		}
		p.Close()
		m.fs = snapshot(crashed)
	}
}

// replay is the source image after every op through seq.
func replay(ops []testutil.Op, seq uint64) []byte {
	img := make([]byte, diskSize)
	for _, op := range ops {
		if op.Seq > seq {
			break
		}
		copy(img[op.Offset:], op.Data)
	}
	return img
}
