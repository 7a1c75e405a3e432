package writer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

const diskSize = 256 << 10

// memPair is a pair on a Mem file system, the shape every engine test uses.
type memPair struct {
	t      *testing.T
	fs     *vfs.Mem
	catDir string
	cfg    PairConfig
	o      Options
	mu     sync.Mutex
	acked  uint64
}

func newMemPair(t *testing.T, initial []byte) *memPair {
	t.Helper()
	fs := vfs.NewMem()
	if err := fs.MkdirAll("/mt", 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := fs.OpenFile("/mt/target.img", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	img := make([]byte, diskSize)
	copy(img, initial)
	f.WriteAt(img, 0)
	f.Sync()
	fs.SyncDir("/mt")
	m := &memPair{t: t, fs: fs, catDir: t.TempDir()}
	m.cfg = PairConfig{ID: "p1", Target: "/mt/target.img", JournalDir: "/mt/journal/p1", RetentionDir: "/mt/retention/p1",
		CatalogueDir: m.catDir, JournalSegmentSize: 64 << 10, MaxPending: 16 << 10, MaxRecord: 16 << 10, UndoSegmentSize: 32 << 10,
		Policy: journal.Policy{OnFull: journal.Purge}}
	m.o = Options{FS: fs, BatchRecords: 8, Parallel: 4, Now: func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }}
	return m
}

func (m *memPair) open() (*Pair, Recovered) {
	m.t.Helper()
	p, rec, err := m.openRec()
	if err != nil {
		m.t.Fatal(err)
	}
	return p, rec
}

func (m *memPair) tryOpen() (*Pair, error) {
	p, _, err := m.openRec()
	return p, err
}

func (m *memPair) openRec() (*Pair, Recovered, error) {
	o := m.o
	o.FS = m.fs
	o.OnAck = func(_ string, seq uint64) {
		m.mu.Lock()
		if seq > m.acked {
			m.acked = seq
		}
		m.mu.Unlock()
	}
	return OpenPair(m.cfg, o)
}

func (m *memPair) target() []byte {
	b, err := m.fs.ReadFile(m.cfg.Target)
	if err != nil {
		m.t.Fatal(err)
	}
	return b
}

func feed(t *testing.T, p *Pair, op testutil.Op) error {
	t.Helper()
	if op.Tag != nil {
		return p.Tag(op.Seq, *op.Tag)
	}
	return p.Write(op.Seq, op.Offset, op.Time, op.Data, 0)
}

// syncDrain makes what p journaled durable and waits until it is all
// applied.
func syncDrain(t *testing.T, p *Pair) {
	t.Helper()
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReplicateAndRecoverEveryTag(t *testing.T) {
	m := newMemPair(t, nil)
	p, _ := m.open()
	w := testutil.NewWorkload(1, diskSize, nil)
	for range 300 {
		if err := feed(t, p, w.Next()); err != nil {
			t.Fatal(err)
		}
	}
	syncDrain(t, p)
	if d := testutil.Diff(m.target(), w.Source); d != "" {
		t.Fatalf("target differs from source: %s", d)
	}
	// the last group's acknowledgement may be delivered after Sync returns
	waitFor(t, "every write acknowledged", func() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.acked == w.Seq })
	tags := p.Store().Tags()
	if len(tags) != len(w.Tags) {
		t.Fatalf("store has %d tags, workload made %d", len(tags), len(w.Tags))
	}
	for _, tg := range tags {
		err := p.Hold(func(target vfs.File, st *journal.Store) error {
			r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: tg.Name})
			if err != nil {
				return err
			}
			dst, err := m.fs.OpenFile("/mt/export-"+tg.Name, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return err
			}
			_, err = recovery.Export(context.Background(), st, target, dst, r, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := m.fs.ReadFile("/mt/export-" + tg.Name)
		if d := testutil.Diff(got, w.Tags[tg.Name]); d != "" {
			t.Fatalf("export of %s: %s", tg.Name, d)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_ = filepath.Join
}

// A pair ended (before a rollback) stops taking writes, leaves Pair and
// Pairs, and stays in Status as Ended with its reason; a writer that opens
// a pair whose store has ended keeps it the same way.
func TestEndKeepsPairEnded(t *testing.T) {
	m := newMemPair(t, nil)
	var ev events
	o := m.o
	o.FS, o.OnEvent = m.fs, ev.add
	w := New(o, SpaceOptions{Interval: -1})
	defer w.Close()
	p, _, err := w.Open(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	wl := testutil.NewWorkload(2, diskSize, nil)
	for range 50 {
		if err := feed(t, p, wl.Next()); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.End("p1", "rolling back to tag x"); err != nil {
		t.Fatal(err)
	}
	if w.Pair("p1") != nil || len(w.Pairs()) != 0 {
		t.Fatal("an ended pair is still open")
	}
	if err := feed(t, p, wl.Next()); !errors.Is(err, ErrEnded) {
		t.Fatalf("write to an ended pair: %v, want ErrEnded", err)
	}
	if err := w.End("p1", "rolled back to tag x"); err != nil {
		t.Fatal(err)
	}
	st := w.Status()
	if len(st) != 1 || st[0].ID != "p1" || st[0].Health != HealthEnded || st[0].Reason != "rolled back to tag x" || st[0].TargetBytes != diskSize {
		t.Fatalf("status of the ended pair: %+v", st)
	}
	if !ev.find(EventState, "ended: rolled back to tag x") {
		t.Error("no event for the end")
	}
	if err := w.End("p9", "x"); err == nil {
		t.Error("ending an unknown pair: no error")
	}

	// The store says the pair ended (as a finished rollback leaves it).
	s, err := journal.OpenStore(journal.StoreOptions{FS: m.fs, Dir: m.cfg.RetentionDir, CatalogueDir: m.cfg.CatalogueDir, Pair: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetState(journal.StateEnded, "rolled back to tag y", 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	w2 := New(o, SpaceOptions{Interval: -1})
	defer w2.Close()
	var ee *EndedError
	if _, _, err := w2.Open(m.cfg); !errors.As(err, &ee) || !errors.Is(err, ErrEnded) || ee.Reason != "rolled back to tag y" {
		t.Fatalf("open of an ended pair: %v", err)
	}
	if reason, ok := w2.Ended("p1"); !ok || reason != "rolled back to tag y" {
		t.Fatalf("Ended: %q %v", reason, ok)
	}
	if st := w2.Status(); len(st) != 1 || st[0].Health != HealthEnded || st[0].TargetBytes != diskSize {
		t.Fatalf("status after opening an ended pair: %+v", st)
	}
}
