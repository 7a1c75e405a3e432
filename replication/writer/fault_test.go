package writer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// events collects a pair's events.
type events struct {
	mu sync.Mutex
	ev []Event
}

func (e *events) add(ev Event) { e.mu.Lock(); e.ev = append(e.ev, ev); e.mu.Unlock() }

func (e *events) find(kind, substr string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, ev := range e.ev {
		if ev.Kind == kind && strings.Contains(ev.Message, substr) {
			return true
		}
	}
	return false
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestTargetFaultsStopThePair(t *testing.T) {
	cases := []struct {
		name   string
		op     vfs.Op
		reason string
	}{
		{"read", vfs.OpRead, "target /mt/target.img: read at offset"},
		{"write", vfs.OpWrite, "target /mt/target.img: write at offset"},
		{"fsync", vfs.OpSync, "target /mt/target.img: fdatasync"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMemPair(t, nil)
			var ev events
			m.o.OnEvent = ev.add
			var armed atomic.Bool
			m.fs.SetInjector(func(op vfs.Op, name string) error {
				if armed.Load() && op == tc.op && name == m.cfg.Target {
					return syscall.EIO
				}
				return nil
			})
			p, _ := m.open()
			w := testutil.NewWorkload(3, diskSize, nil)
			for range 20 {
				if err := feed(t, p, w.Next()); err != nil {
					t.Fatal(err)
				}
			}
			p.Sync()
			if err := p.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			good := p.Store().State().Applied
			armed.Store(true)
			firstWrite := uint64(0) // tags before it need no target I/O and may apply
			for range 20 {
				op := w.Next()
				if op.Tag == nil && firstWrite == 0 {
					firstWrite = op.Seq
				}
				feed(t, p, op)
			}
			waitFor(t, "the pair to stop", func() bool { return p.Err() != nil })
			st := p.Status()
			if st.Health != HealthError || !strings.Contains(st.Reason, tc.reason) || !strings.Contains(st.Reason, "input/output error") {
				t.Fatalf("status %q %q, want Error naming %q", st.Health, st.Reason, tc.reason)
			}
			if !ev.find(EventAlert, "acknowledgements stopped") {
				t.Fatal("no alert event for the error")
			}
			// Invariant 5: nothing more is acknowledged or accepted. An
			// acknowledgement decided before the error may still be on its
			// way, but none beyond what was durable when the error showed.
			acked := p.Durable()
			if err := feed(t, p, w.Next()); !errors.Is(err, ErrPairError) {
				t.Fatalf("write to a pair in error: %v, want ErrPairError", err)
			}
			time.Sleep(20 * time.Millisecond)
			m.mu.Lock()
			if m.acked > acked {
				t.Fatalf("acknowledged %d after the error (%d was durable)", m.acked, acked)
			}
			m.mu.Unlock()
			if a := p.Store().State().Applied; a >= firstWrite {
				t.Fatalf("applied moved to %d, past the failed write %d (was %d)", a, firstWrite, good)
			}
			p.Close()

			// The pair restarts from the journals once the fault is gone.
			armed.Store(false)
			p, _ = m.open()
			defer p.Close()
			if err := p.Drain(context.Background()); err != nil {
				t.Fatal(err)
			}
			img := replayWorkload(4, 3, p.Durable())
			if d := testutil.Diff(m.target(), img); d != "" {
				t.Fatalf("after restart: %s", d)
			}
		})
	}
}

// replayWorkload is the image of workload seed after seq (tags included).
func replayWorkload(_ int, seed int64, seq uint64) []byte {
	w := testutil.NewWorkload(seed, diskSize, nil)
	for w.Seq < seq {
		w.Next()
	}
	return w.Source
}

func TestJournalFsyncErrorStopsAcks(t *testing.T) {
	m := newMemPair(t, nil)
	var armed atomic.Bool
	m.fs.SetInjector(func(op vfs.Op, name string) error {
		if armed.Load() && op == vfs.OpSync && strings.HasPrefix(name, m.cfg.JournalDir) {
			return syscall.EIO
		}
		return nil
	})
	p, _ := m.open()
	defer p.Close()
	w := testutil.NewWorkload(5, diskSize, nil)
	for range 10 {
		feed(t, p, w.Next())
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	// OnAck for the synced group may run after Sync returns: the mark is
	// what was durable before the fault, and no acknowledgement may pass it.
	before := p.Durable()
	armed.Store(true)
	var err error
	for range 10 {
		if err = feed(t, p, w.Next()); err != nil {
			break
		}
	}
	if err == nil {
		err = p.Sync()
	}
	if err == nil || !strings.Contains(err.Error(), "input/output error") {
		t.Fatalf("writes after a failed journal fsync: %v, want the EIO", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.acked > before {
		t.Fatalf("acknowledged through %d after the failed fsync (%d was durable before it)", m.acked, before)
	}
	if p.Status().Health != HealthError {
		t.Fatalf("health %s, want Error", p.Status().Health)
	}
}

func TestBadWritesChangeNothing(t *testing.T) {
	m := newMemPair(t, nil)
	p, _ := m.open()
	defer p.Close()
	if err := p.Write(1, diskSize-512, time.Now(), make([]byte, 1024), 0); !errors.Is(err, ErrBeyondEnd) {
		t.Fatalf("write past the end: %v, want ErrBeyondEnd", err)
	}
	if err := p.Write(1, -512, time.Now(), make([]byte, 512), 0); !errors.Is(err, ErrBeyondEnd) {
		t.Fatalf("negative offset: %v, want ErrBeyondEnd", err)
	}
	if err := p.Write(5, 0, time.Now(), make([]byte, 512), 0); !errors.Is(err, journal.ErrOutOfOrder) {
		t.Fatalf("sequence gap: %v, want ErrOutOfOrder", err)
	}
	if err := p.Tag(1, journal.TagInfo{}); err == nil {
		t.Fatal("a tag without a name was accepted")
	}
	if p.Next() != 1 {
		t.Fatalf("a refused write moved the sequence to %d", p.Next())
	}
	data := []byte(strings.Repeat("x", 512))
	if err := p.Write(1, 0, time.Now(), data, 0); err != nil {
		t.Fatal(err)
	}
	// A resend of sequence 1 with other data is a duplicate: dropped.
	if err := p.Write(1, 0, time.Now(), make([]byte, 512), 0); err != nil {
		t.Fatal(err)
	}
	p.Sync()
	p.Drain(context.Background())
	if got := m.target()[:512]; string(got) != string(data) {
		t.Fatal("the duplicate overwrote the write")
	}
	if s := p.Status(); s.Duplicates != 1 || s.AppliedSeq != 1 {
		t.Fatalf("status %+v, want 1 duplicate and applied 1", s)
	}
}

// fill runs n writes of workload seed through p and drains.
func fill(t *testing.T, p *Pair, w *testutil.Workload, n int) {
	t.Helper()
	for range n {
		if err := feed(t, p, w.Next()); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestRetentionFullPurge(t *testing.T) {
	m := newMemPair(t, nil)
	var ev events
	m.o.OnEvent = ev.add
	// Room for the target and a bounded journal, and only part of the
	// undo data.
	m.cfg.JournalMaxSegments = 4
	m.fs.SetCapacity(diskSize + 1<<20)
	p, _ := m.open()
	defer p.Close()
	w := testutil.NewWorkload(9, diskSize, nil)
	w.MaxWrite = 4096
	fill(t, p, w, 1500)
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !ev.find(EventAlert, "retention volume full: purged") {
		t.Fatalf("no purge alert; events: %+v", ev.ev)
	}
	if d := testutil.Diff(m.target(), w.Source); d != "" {
		t.Fatalf("target after purges: %s", d)
	}
	eSeq, _ := p.Store().Earliest()
	if eSeq == 0 {
		t.Fatal("earliest point still 0 after purging")
	}
	for _, tg := range p.Store().Tags() {
		if tg.Seq < eSeq {
			t.Fatalf("tag %s at %d is below the earliest point %d", tg.Name, tg.Seq, eSeq)
		}
	}
	// What is left still recovers bit-exact.
	m.fs.SetCapacity(0)
	checkTags(t, m, p, w, "after purge")
}

func TestRetentionFullPause(t *testing.T) {
	m := newMemPair(t, nil)
	var ev events
	m.o.OnEvent = ev.add
	m.cfg.Policy.OnFull = journal.Pause
	m.cfg.JournalMaxSegments = 4
	m.fs.SetCapacity(diskSize + 6*64<<10 + 300<<10)
	p, _ := m.open()
	defer p.Close()
	w := testutil.NewWorkload(9, diskSize, nil)
	w.MaxWrite = 4096
	// The feeder blocks once the paused pair's journal is full: the
	// backpressure a process server sees.
	fed := make(chan error, 1)
	go func() {
		for range 400 {
			if err := feed(t, p, w.Next()); err != nil {
				fed <- err
				return
			}
		}
		fed <- p.Sync()
	}()
	waitFor(t, "the pair to pause", func() bool { return p.Status().Health == HealthPaused })
	if !ev.find(EventAlert, "retention volume full (policy: pause)") {
		t.Fatalf("no pause alert; events: %+v", ev.ev)
	}
	time.Sleep(20 * time.Millisecond)
	applied := p.Store().State().Applied
	if applied >= p.Durable() {
		t.Fatalf("applied %d, durable %d: the pair did not stop applying", applied, p.Durable())
	}
	// Nothing was pruned: the window is kept whole.
	if e, _ := p.Store().Earliest(); e != 0 {
		t.Fatalf("earliest point moved to %d under policy pause", e)
	}
	// Room again: resume and catch up.
	m.fs.SetCapacity(0)
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := <-fed; err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(m.target(), w.Source); d != "" {
		t.Fatalf("target after resume: %s", d)
	}
	checkTags(t, m, p, w, "after pause and resume")
}

func TestSizeCapPurgesAndWindowPrunes(t *testing.T) {
	m := newMemPair(t, nil)
	var ev events
	m.o.OnEvent = ev.add
	m.cfg.Policy = journal.Policy{SizeCap: 200 << 10, OnFull: journal.Purge}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	m.o.Now = func() time.Time { return now }
	p, _ := m.open()
	w := testutil.NewWorkload(13, diskSize, nil)
	w.MaxWrite = 4096
	fill(t, p, w, 500)
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the size cap to prune", func() bool { return p.Store().Used() <= 200<<10+int64(m.cfg.UndoSegmentSize)+64<<10 })
	if !ev.find(EventAlert, "size cap") {
		t.Fatal("no alert for the size cap")
	}
	checkTags(t, m, p, w, "after size-cap purge")
	p.Close()

	// A one-hour window with the clock two hours past the writes: all but
	// the active segment go.
	m.cfg.Policy = journal.Policy{Window: time.Hour, OnFull: journal.Purge}
	now = w.Clock.Add(2 * time.Hour)
	p, _ = m.open()
	defer p.Close()
	fill(t, p, w, 1)
	p.Drain(context.Background())
	waitFor(t, "the window to prune", func() bool { return len(p.Store().Segments()) <= 2 })
	_, et := p.Store().Earliest()
	if et.Before(w.Clock.Add(-time.Minute)) {
		t.Fatalf("earliest time %s, want close to the last write %s", et, w.Clock)
	}
}

func TestPauseResumePersists(t *testing.T) {
	m := newMemPair(t, nil)
	p, _ := m.open()
	if err := p.Pause("maintenance"); err != nil {
		t.Fatal(err)
	}
	w := testutil.NewWorkload(21, diskSize, nil)
	fill(t, p, w, 30)
	time.Sleep(20 * time.Millisecond)
	if a := p.Store().State().Applied; a != 0 {
		t.Fatalf("a paused pair applied through %d", a)
	}
	// journaling goes on: every write is acknowledged (the last group's
	// acknowledgement may come after Sync returns)
	waitFor(t, "a paused pair to acknowledge every write", func() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.acked == w.Seq })
	p.Close()
	p, _ = m.open()
	defer p.Close()
	if s := p.Status(); s.Health != HealthPaused || s.Reason != "maintenance" {
		t.Fatalf("after restart %s %q, want Paused maintenance", s.Health, s.Reason)
	}
	if err := p.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(m.target(), w.Source); d != "" {
		t.Fatal(d)
	}
}

func TestRPOAlert(t *testing.T) {
	m := newMemPair(t, nil)
	var ev events
	m.o.OnEvent = ev.add
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	m.o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, _ := m.open()
	defer p.Close()
	w := testutil.NewWorkload(1, diskSize, nil)
	fill(t, p, w, 5)
	p.Drain(context.Background())
	mu.Lock()
	now = w.Clock.Add(20 * time.Minute)
	mu.Unlock()
	p.checkRPO()
	s := p.Status()
	if s.Health != HealthRPO || s.RPOSeconds < 1199 {
		t.Fatalf("status %s RPO %.0fs, want RPO breach at 20 min", s.Health, s.RPOSeconds)
	}
	if !ev.find(EventAlert, "exceeds the threshold of 15m0s") {
		t.Fatal("no RPO alert")
	}
	// A heartbeat from the source brings it back.
	p.Heartbeat(p.Durable(), now)
	p.checkRPO()
	if s := p.Status(); s.Health != HealthOK {
		t.Fatalf("after a heartbeat: %s %s", s.Health, s.Reason)
	}
}

func TestSetPolicyWhileRunning(t *testing.T) {
	m := newMemPair(t, nil)
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	m.o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, _ := m.open()
	defer p.Close()
	w := testutil.NewWorkload(31, diskSize, nil)
	w.MaxWrite = 4096
	fill(t, p, w, 300)
	p.Drain(context.Background())
	before := len(p.Store().Segments())
	if err := p.SetPolicy(journal.Policy{SizeCap: 64 << 10, OnFull: journal.Purge}, time.Minute); err != nil {
		t.Fatal(err)
	}
	fill(t, p, w, 5)
	p.Drain(context.Background())
	if got := p.Store().Policy(); got.SizeCap != 64<<10 {
		t.Fatalf("policy %+v", got)
	}
	// Pruning follows the commit that Drain waits for: give it a moment.
	waitFor(t, "the new cap to prune", func() bool {
		return len(p.Store().Segments()) < before && p.Store().Used() <= 64<<10+2*int64(m.cfg.UndoSegmentSize)
	})
	mu.Lock()
	now = w.Clock.Add(2 * time.Minute)
	mu.Unlock()
	if s := p.Status(); s.Health != HealthRPO || s.RPOThreshold != 60 {
		t.Fatalf("health %s threshold %.0fs after lowering the RPO threshold to 1m", s.Health, s.RPOThreshold)
	}
}

// After a restart the pair knows only its applied time, old when the
// source was idle: until the source is heard from, the RPO is unknown,
// not a breach. A heartbeat makes it known; a source that stays
// unheard of for the threshold, or is heard to be ahead, is a breach.
func TestRPOAfterRestart(t *testing.T) {
	m := newMemPair(t, nil)
	var ev events
	m.o.OnEvent = ev.add
	var mu sync.Mutex
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	m.o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	p, _ := m.open()
	w := testutil.NewWorkload(1, diskSize, nil)
	fill(t, p, w, 5)
	p.Drain(context.Background())
	p.Close()

	// Restarted 35 minutes after the source's last write; it was idle.
	restart := w.Clock.Add(35 * time.Minute)
	set(restart)
	p, _ = m.open()
	p.checkRPO()
	if s := p.Status(); s.Health != HealthOK || !s.RPOUnknown || s.RPOSeconds != 0 {
		t.Fatalf("just restarted: %s %q, RPO %.0fs unknown %v; want OK with the RPO unknown", s.Health, s.Reason, s.RPOSeconds, s.RPOUnknown)
	}
	if ev.find(EventAlert, "RPO") {
		t.Fatal("an RPO alert before the source was heard from")
	}
	// The process server's first heartbeat: the source is current.
	set(restart.Add(3 * time.Second))
	p.Heartbeat(p.Durable(), restart.Add(3*time.Second))
	p.checkRPO()
	if s := p.Status(); s.Health != HealthOK || s.RPOUnknown || s.RPOSeconds != 0 {
		t.Fatalf("after a heartbeat: %s %q, RPO %.0fs unknown %v", s.Health, s.Reason, s.RPOSeconds, s.RPOUnknown)
	}
	p.Close()

	// Restarted again, and the source stays unheard of past the
	// threshold: the RPO runs from the applied time, a breach.
	set(restart.Add(time.Hour))
	p, _ = m.open()
	set(restart.Add(time.Hour + 16*time.Minute))
	p.checkRPO()
	if s := p.Status(); s.Health != HealthRPO || s.RPOUnknown || s.RPOSeconds < (76+35)*60 {
		t.Fatalf("unheard of for 16 min: %s %q, RPO %.0fs unknown %v; want a breach", s.Health, s.Reason, s.RPOSeconds, s.RPOUnknown)
	}
	if !ev.find(EventAlert, "exceeds the threshold of 15m0s") {
		t.Fatal("no RPO alert for a source unheard of")
	}
	p.Close()

	// Restarted again and heard from at once, but the source is ahead
	// (it wrote while this side was down): a breach at once.
	set(restart.Add(2 * time.Hour))
	p, _ = m.open()
	defer p.Close()
	p.Heartbeat(p.Durable()+10, restart.Add(2*time.Hour))
	if s := p.Status(); s.Health != HealthRPO || s.RPOUnknown {
		t.Fatalf("source ahead: %s %q, RPO %.0fs unknown %v; want a breach", s.Health, s.Reason, s.RPOSeconds, s.RPOUnknown)
	}
}
