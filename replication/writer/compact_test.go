package writer

import (
	"context"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// TestWriterCompacts: the Writer's compactor, at an injected time, leaves
// a pair held by an export alone, then compacts it: the status reports the
// bytes reclaimed and where every write is kept from, and every kept tag
// exports bit-exact.
func TestWriterCompacts(t *testing.T) {
	m := newMemPair(t, nil)
	var now atomic.Pointer[time.Time]
	m.o.Now = func() time.Time { return *now.Load() }
	m.o.CompactInterval = -1
	w0 := testutil.NewWorkload(7, diskSize, nil)
	start := w0.Clock
	now.Store(&start)
	wr := New(m.o, SpaceOptions{Interval: -1})
	defer wr.Close()
	m.cfg.Policy = journal.Policy{OnFull: journal.Purge, Window: 20 * time.Second, Tiers: []journal.Tier{
		{Duration: 2 * time.Second},
		{Start: 2 * time.Second, Duration: 18 * time.Second, Granularity: time.Second, Count: 1},
	}}
	p, _, err := wr.Open(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for range 600 {
		if err := feed(t, p, w0.Next()); err != nil {
			t.Fatal(err)
		}
	}
	syncDrain(t, p)
	end := w0.Clock
	now.Store(&end)
	before := p.Store().Used()
	err = p.Hold(func(vfs.File, *journal.Store) error {
		wr.Compact()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.Store().Used() != before || p.Status().Retention.Reclaimed != 0 {
		t.Fatal("the compactor rewrote segments an export held")
	}
	wr.Compact()
	st := p.Status().Retention
	if st.Reclaimed <= 0 || p.Store().Used() != before-st.Reclaimed || st.SparseUpto == 0 || !st.LastCompaction.Equal(end) {
		t.Fatalf("after compaction: %+v (used %d → %d)", st, before, p.Store().Used())
	}
	t.Logf("reclaimed %d of %d bytes; %d tags kept of %d", st.Reclaimed, before, st.Tags, len(w0.Tags))
	if st.Tags >= len(w0.Tags) {
		t.Fatalf("%d tags kept of %d", st.Tags, len(w0.Tags))
	}
	for _, tg := range p.Store().Tags() {
		err := p.Hold(func(target vfs.File, s *journal.Store) error {
			r, err := recovery.Resolve(s, recovery.Point{Kind: recovery.TagID, Name: tg.ID})
			if err != nil {
				return err
			}
			dst, err := m.fs.OpenFile("/mt/export-"+tg.Name, os.O_RDWR|os.O_CREATE, 0o600)
			if err != nil {
				return err
			}
			_, err = recovery.Export(context.Background(), s, target, dst, r, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := m.fs.ReadFile("/mt/export-" + tg.Name)
		if d := testutil.Diff(got, w0.Tags[tg.Name]); d != "" {
			t.Fatalf("export of kept tag %s: %s", tg.Name, d)
		}
	}
}
