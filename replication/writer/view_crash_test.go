package writer

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// viewCrashRun opens a view of the point reached after the first half of
// a workload, keeps reading it (two readers beside the applier, and a
// whole read after every write fed) while the second half is applied,
// and crashes the pair at the at-th sync point after the view opened (0:
// never). Every read the view
// answered before the crash must be the point's image. After the crash
// the pair is reopened (the writer recovers: what it staged and did not
// commit is settled), a view of the same point is opened again and must
// read the point's image, as its export does. It returns the sync points
// passed before the view opened and after it, and what the crash
// interrupted ("retention": the before-images were appended and synced,
// not committed; "target": the target was written, not committed;
// "catalogue": the commit itself).
func viewCrashRun(t *testing.T, seed int64, nops int, at int64, mode vfs.TearMode) (base, total int64, where string) {
	t.Helper()
	what := fmt.Sprintf("seed %d crash at %d (%v)", seed, at, mode)
	m := newMemPair(t, nil)
	// The sync points are counted from the view's opening: how many the
	// pair passes before depends on how the applier batched.
	var count, crashAt atomic.Int64
	var crashedAt atomic.Value
	point := func(where string) error {
		n := count.Add(1)
		if a := crashAt.Load(); a > 0 && n >= a {
			crashedAt.CompareAndSwap(nil, where)
			return vfs.ErrCrashed
		}
		return nil
	}
	m.fs.SetInjector(func(op vfs.Op, name string) error {
		switch {
		case op == vfs.OpSync && strings.HasPrefix(name, m.cfg.RetentionDir):
			return point("retention")
		case op == vfs.OpSync && name == m.cfg.Target:
			return point("target")
		case op == vfs.OpSync || op == vfs.OpSyncDir:
			return point("other")
		}
		return nil
	})
	m.o.StoreHook = func() error {
		if m.fs.Crashed() {
			return vfs.ErrCrashed
		}
		if err := point("catalogue"); err != nil {
			m.fs.Halt()
			return err
		}
		return nil
	}
	w := testutil.NewWorkload(seed, diskSize, nil)
	w.MaxWrite = 4096
	ops := make([]testutil.Op, nops)
	images := map[uint64][]byte{0: make([]byte, diskSize)}
	for i := range ops {
		ops[i] = w.Next()
		images[ops[i].Seq] = append([]byte(nil), w.Source...)
	}
	p, err := m.tryOpen()
	if err != nil {
		t.Fatalf("%s: open: %v", what, err)
	}
	half := nops / 2
	for _, op := range ops[:half] {
		if err := feed(t, p, op); err != nil {
			t.Fatalf("%s: feed: %v", what, err)
		}
	}
	if err := p.Sync(); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var pt recovery.Resolved
	var v *recovery.View
	err = p.Hold(func(target vfs.File, st *journal.Store) error {
		pt = recovery.Resolved{Pair: m.cfg.ID, Seq: st.State().Applied}
		var err error
		v, err = recovery.OpenView(context.Background(), st, target, diskSize, pt, "view crash test")
		return err
	})
	if err != nil {
		t.Fatalf("%s: open the view: %v", what, err)
	}
	base = count.Load()
	if at > 0 {
		crashAt.Store(base + at)
	}
	want := images[pt.Seq]
	if want == nil {
		t.Fatalf("%s: no image of sequence %d", what, pt.Seq)
	}

	// Readers beside the applier: a read that succeeds must be exact;
	// once the file system is halted reads fail, and that is all.
	var served, wrong atomic.Int64
	check := func(b []byte, off int64) {
		if _, err := v.ReadAt(b, off); err != nil {
			if !m.fs.Crashed() {
				t.Errorf("%s: view read at %d before the crash: %v", what, off, err)
			}
			return
		}
		served.Add(1)
		if !bytes.Equal(b, want[off:off+int64(len(b))]) {
			wrong.Add(1)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewSource(seed*10 + int64(g)))
			b := make([]byte, 8192)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := 1 + rng.Intn(len(b))
				check(b[:n], rng.Int63n(diskSize-int64(n)+1))
			}
		})
	}
	whole := make([]byte, diskSize)
	for _, op := range ops[half:] {
		if err := feed(t, p, op); err != nil {
			break // the crash reached the write path
		}
		check(whole, 0)
	}
	if !m.fs.Crashed() {
		p.Sync()
		p.Drain(context.Background())
		check(whole, 0)
	}
	close(stop)
	wg.Wait()
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%s: the open view served %d reads that differ from the image at sequence %d", what, n, pt.Seq)
	}
	if served.Load() == 0 {
		t.Fatalf("%s: the view served no read before the crash: the test checked nothing", what)
	}
	total = count.Load() - base
	if s, ok := crashedAt.Load().(string); ok {
		where = s
	}
	if !m.fs.Crashed() {
		m.fs.Halt()
	}
	v.Close() // the process died: nothing of the old view survives
	p.Close()

	// The restart: what the power cut left, the writer recovering it.
	m.fs = m.fs.Crash(mode, rand.New(rand.NewSource(seed*1000+at)))
	m.o.StoreHook = nil
	p, _ = m.open()
	defer p.Close()
	if err := p.Drain(context.Background()); err != nil {
		t.Fatalf("%s: drain after restart: %v", what, err)
	}
	// the view opened again, while the rest of the stream is resent
	err = p.Hold(func(target vfs.File, st *journal.Store) error {
		var err error
		v, err = recovery.OpenView(context.Background(), st, target, diskSize, pt, "view after crash")
		return err
	})
	if err != nil {
		t.Fatalf("%s: reopen the view of sequence %d: %v", what, pt.Seq, err)
	}
	defer v.Close()
	for _, op := range ops {
		if err := feed(t, p, op); err != nil {
			t.Fatalf("%s: resend seq %d: %v", what, op.Seq, err)
		}
	}
	syncDrain(t, p)
	if _, err := v.ReadAt(whole, 0); err != nil {
		t.Fatalf("%s: the reopened view: %v", what, err)
	}
	if d := testutil.Diff(whole, want); d != "" {
		t.Fatalf("%s: after the restart the view of sequence %d is not the image at that point: %s", what, pt.Seq, d)
	}
	if _, err := p.Export(context.Background(), pt, "/mt/export-view", nil); err != nil {
		t.Fatalf("%s: export: %v", what, err)
	}
	exp, _ := m.fs.ReadFile("/mt/export-view")
	if !bytes.Equal(whole, exp) {
		t.Fatalf("%s: the reopened view differs from the export of sequence %d", what, pt.Seq)
	}
	return base, total, where
}

// TestViewCrashAtEverySyncPoint crashes the applier at every sync point
// after a view opened, with unsynced writes dropped, torn and kept: among
// them after the before-images were appended and synced but not
// committed, and after the target was written but not committed. The
// open view never serves a wrong byte; after the restart a view of the
// same point reads its image.
func TestViewCrashAtEverySyncPoint(t *testing.T) {
	const seed, nops = 5, 60
	_, total, _ := viewCrashRun(t, seed, nops, 0, vfs.DropUnsynced)
	if total < 10 {
		t.Fatalf("only %d sync points after the view opened: the workload does not exercise the applier", total)
	}
	t.Logf("%d sync points after the view opened", total)
	seen := map[string]bool{}
	for at := int64(1); at <= total+1; at++ {
		for _, mode := range []vfs.TearMode{vfs.DropUnsynced, vfs.TearUnsynced, vfs.KeepUnsynced} {
			_, _, where := viewCrashRun(t, seed, nops, at, mode)
			seen[where] = true
		}
	}
	for _, w := range []string{"retention", "target", "catalogue"} {
		if !seen[w] {
			t.Errorf("no crash fell after the %s sync (crashes fell at %v): the test misses that window", w, seen)
		}
	}
}
