package writer

import (
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
)

// Every kind of file a pair makes durable is counted under its own name,
// in the pair's status and through OnFsync, and a quiet pair's counts
// age out of the window.
func TestFsyncLatencyByFile(t *testing.T) {
	m := newMemPair(t, nil)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	m.o.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	seen := map[string]int{}
	m.o.OnFsync = func(pair, file string, d time.Duration) {
		if pair != "p1" || d < 0 {
			t.Errorf("OnFsync(%q, %q, %v)", pair, file, d)
		}
		mu.Lock()
		seen[file]++
		mu.Unlock()
	}
	p, _ := m.open()
	defer p.Close()
	w := testutil.NewWorkload(7, diskSize, nil)
	for range 40 {
		if err := feed(t, p, w.Next()); err != nil {
			t.Fatal(err)
		}
	}
	syncDrain(t, p)
	// The applier commits (target and retention fdatasyncs) when it runs
	// out of work.
	waitFor(t, "a target fdatasync", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[FileTarget] > 0 && seen[FileRetention] > 0
	})
	got := map[string]FsyncLatency{}
	for _, l := range p.Status().Fsync {
		got[l.File] = l
	}
	mu.Lock()
	for _, f := range []string{FileJournal, FileRetention, FileTarget} {
		l, ok := got[f]
		if !ok || l.Count == 0 || seen[f] == 0 {
			t.Errorf("%s: status %+v, %d OnFsync calls: want both", f, l, seen[f])
			continue
		}
		if uint64(seen[f]) < l.Count {
			t.Errorf("%s: status counts %d, more than the %d OnFsync saw", f, l.Count, seen[f])
		}
		if !(l.P50Seconds > 0 && l.P50Seconds <= l.P99Seconds) {
			t.Errorf("%s: p50 %v, p99 %v", f, l.P50Seconds, l.P99Seconds)
		}
	}
	now = now.Add(2 * fsyncWindow)
	mu.Unlock()
	if l := p.Status().Fsync; len(l) != 0 {
		t.Fatalf("after %v without a sync: %+v, want none", 2*fsyncWindow, l)
	}
}

func TestFsyncQuantiles(t *testing.T) {
	s := &fsyncStats{now: func() time.Time { return time.Unix(0, 0) }}
	for range 98 {
		s.observe(0, 40*time.Microsecond) // first bucket, 50 µs
	}
	s.observe(0, 3*time.Millisecond)  // 3.2 ms bucket
	s.observe(0, 20*time.Millisecond) // 25.6 ms bucket
	l := s.latencies()
	if len(l) != 1 || l[0].File != FileJournal || l[0].Count != 100 {
		t.Fatalf("%+v", l)
	}
	if l[0].P50Seconds != 50e-6 || l[0].P99Seconds != 50e-6*64 {
		t.Fatalf("p50 %v p99 %v, want 5e-05 and 0.0032", l[0].P50Seconds, l[0].P99Seconds)
	}
	s.observe(1, time.Minute) // beyond the last bound
	if l := s.latencies(); l[1].P99Seconds != FsyncBuckets[len(FsyncBuckets)-1] {
		t.Fatalf("%+v", l)
	}
}
