package writer

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"
)

// TestStalled: an applier stuck writing the target is reported stalled
// once it has been inside the batch for longer than the limit; one
// waiting for work is not, however long it waits; released, it is not
// stalled any more. The clock is the pair's injected one.
func TestStalled(t *testing.T) {
	m, tfs := newStagingPair(t)
	gate := newTargetGate(tfs, m.cfg.Target)
	m.o.TargetFS = gate
	var now atomic.Int64
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	now.Store(t0.UnixNano())
	m.o.Now = func() time.Time { return time.Unix(0, now.Load()) }
	advance := func(d time.Duration) { now.Add(int64(d)) }

	p, _ := m.open()
	defer p.Close()
	const limit = time.Minute

	// Idle: waiting for work is never stalled.
	waitFor(t, "the idle applier waiting", func() bool { return p.waiting.Load() })
	advance(10 * time.Minute)
	if d, stuck := p.Stalled(m.o.Now(), limit); stuck {
		t.Fatalf("an idle applier is reported stalled for %v", d)
	}

	gate.stallWrite(0) // the next target write hangs
	if err := p.Write(1, 0, t0, bytes.Repeat([]byte{1}, 4096), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	<-gate.stalled
	if d, stuck := p.Stalled(m.o.Now(), limit); stuck {
		t.Fatalf("an applier inside its batch for no time is reported stalled for %v", d)
	}
	advance(2 * time.Minute)
	d, stuck := p.Stalled(m.o.Now(), limit)
	if !stuck || d != 2*time.Minute {
		t.Fatalf("an applier hung for 2m on its target: Stalled = %v, %v; want 2m0s, true", d, stuck)
	}

	close(gate.release)
	waitFor(t, "the released applier to go back to waiting", func() bool {
		_, stuck := p.Stalled(m.o.Now(), limit)
		return !stuck && p.waiting.Load()
	})
	if img, err := tfs.ReadFile(m.cfg.Target); err != nil || img[0] != 1 {
		t.Fatalf("the released write is not on the target (%v)", err)
	}
	p.Close()
	if _, stuck := p.Stalled(m.o.Now().Add(time.Hour), limit); stuck {
		t.Fatal("a closed pair is reported stalled")
	}
}
