package writer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// TestOfflineRecoveryAfterCrashMidBatch: the agent dies (kill -9) while a
// batch is on the target but not committed: before-images durable, some
// writes landed, the catalogue still at the older applied position. An
// export or a rollback made then from the stores alone (`mtconsole
// retention recover|rollback` on a stopped agent) must still give the
// image at the point: it takes the before-images past the applied
// position too. Before, the landed writes leaked into the image.
func TestOfflineRecoveryAfterCrashMidBatch(t *testing.T) {
	m, tfs := newStagingPair(t)
	gate := newTargetGate(tfs, m.cfg.Target)
	m.o.TargetFS = gate
	p, _ := m.open()

	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	block := func(seq uint64) []byte { return bytes.Repeat([]byte{byte(seq)}, 4096) }
	write := func(seq uint64) {
		t.Helper()
		if err := p.Write(seq, int64(seq%8)*4096, t0.Add(time.Duration(seq)*time.Millisecond), block(seq), 0); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]byte, diskSize)
	for seq := uint64(1); seq < 10; seq++ {
		write(seq)
		copy(want[int64(seq%8)*4096:], block(seq))
	}
	if err := p.Tag(10, journal.TagInfo{Name: "t10", App: journal.AppCrash, Time: t0.Add(10 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	p.Sync()
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 11 and 12 reach the target, 13 stalls: then the power goes.
	gate.stallWrite(2)
	// Journaled while the applier is held, so that it finds 11 to 18 in
	// one batch: fed one by one, a busy machine lets it stage and commit
	// 11 alone first.
	if err := p.Hold(func(vfs.File, *journal.Store) error {
		for seq := uint64(11); seq <= 20; seq++ {
			write(seq)
		}
		return p.Sync()
	}); err != nil {
		t.Fatal(err)
	}
	<-gate.stalled
	catCopy := t.TempDir()
	cat, err := os.ReadFile(filepath.Join(m.catDir, "catalogue.db"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(catCopy, "catalogue.db"), cat, 0o600)
	fs := m.fs.Crash(vfs.KeepUnsynced, nil)
	tfs2 := tfs.Crash(vfs.KeepUnsynced, nil)
	close(gate.release)
	p.Close()
	if got, _ := tfs2.ReadFile(m.cfg.Target); got[3*4096] != 11 || got[4*4096] != 12 {
		t.Fatalf("the crash left blocks 3 and 4 at %d and %d: the test does not reach a half-applied batch", got[3*4096], got[4*4096])
	}

	open := func(ro bool) *journal.Store {
		st, err := journal.OpenStore(journal.StoreOptions{FS: fs, Dir: m.cfg.RetentionDir, CatalogueDir: catCopy, Pair: m.cfg.ID, ReadOnly: ro})
		if err != nil {
			t.Fatal(err)
		}
		if st.State().Applied != 10 {
			t.Fatalf("applied %d after the crash, want 10", st.State().Applied)
		}
		return st
	}
	st := open(true)
	r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: "t10"})
	if err != nil {
		t.Fatal(err)
	}
	target, _ := tfs2.OpenFile(m.cfg.Target, os.O_RDWR, 0)
	dst, _ := tfs2.OpenFile("/mt/export.img", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if _, err := recovery.Export(context.Background(), st, target, dst, r, nil); err != nil {
		t.Fatal(err)
	}
	st.Close()
	got, _ := tfs2.ReadFile("/mt/export.img")
	if d := firstDiff(got, want); d != "" {
		t.Fatalf("offline export of t10 after a crash mid-batch: %s", d)
	}

	st = open(false)
	defer st.Close()
	if _, err := recovery.Rollback(context.Background(), st, target, r, nil); err != nil {
		t.Fatal(err)
	}
	target.Close()
	got, _ = tfs2.ReadFile(m.cfg.Target)
	if d := firstDiff(got, want); d != "" {
		t.Fatalf("offline rollback to t10 after a crash mid-batch: %s", d)
	}
}
