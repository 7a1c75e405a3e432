package writer

import (
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// The kinds of file a pair makes durable, as the fsync latencies and the
// agent's mtconsole_fsync_duration_seconds{file} name them.
const (
	FileJournal   = "journal"
	FileRetention = "retention"
	FileTarget    = "target"
)

// FsyncBuckets are the upper bounds, in seconds, of the fsync latency
// histograms: 50 µs doubling to about 6.5 s (the agent's Prometheus
// histogram uses the same).
var FsyncBuckets = func() []float64 {
	b := make([]float64, 18)
	for i := range b {
		b[i] = 50e-6 * float64(uint64(1)<<i)
	}
	return b
}()

// FsyncLatency is how long a pair's fdatasyncs of one kind of file took
// over the last five to ten minutes: the median and the 99th percentile,
// each the upper bound of its histogram bucket (so "at most").
type FsyncLatency struct {
	File       string  `json:"file"` // journal, retention or target
	Count      uint64  `json:"count"`
	P50Seconds float64 `json:"p50_seconds"`
	P99Seconds float64 `json:"p99_seconds"`
}

// fsyncWindow is how long a generation of counts lives: quantiles come
// from the current generation and the one before it.
const fsyncWindow = 5 * time.Minute

var fsyncFiles = [...]string{FileJournal, FileRetention, FileTarget}

// fsyncStats counts a pair's fdatasyncs by kind of file into two
// generations of histogram buckets.
type fsyncStats struct {
	now     func() time.Time
	mu      sync.Mutex
	started time.Time // of the current generation
	gen     [2][len(fsyncFiles)][19]uint64
}

func (s *fsyncStats) observe(file int, d time.Duration) {
	sec := d.Seconds()
	b := len(FsyncBuckets) // +Inf
	for i, ub := range FsyncBuckets {
		if sec <= ub {
			b = i
			break
		}
	}
	now := s.now()
	s.mu.Lock()
	s.rotate(now)
	s.gen[0][file][b]++
	s.mu.Unlock()
}

func (s *fsyncStats) rotate(now time.Time) {
	switch age := now.Sub(s.started); {
	case s.started.IsZero():
		s.started = now
	case age >= 2*fsyncWindow:
		s.gen = [2][len(fsyncFiles)][19]uint64{}
		s.started = now
	case age >= fsyncWindow:
		s.gen[1], s.gen[0] = s.gen[0], [len(fsyncFiles)][19]uint64{}
		s.started = now
	}
}

// latencies is what the pair's status shows: one entry per kind of file
// synced in the window.
func (s *fsyncStats) latencies() []FsyncLatency {
	s.mu.Lock()
	s.rotate(s.now())
	var out []FsyncLatency
	for f, name := range fsyncFiles {
		var h [19]uint64
		var n uint64
		for g := range s.gen {
			for i, c := range s.gen[g][f] {
				h[i] += c
				n += c
			}
		}
		if n == 0 {
			continue
		}
		out = append(out, FsyncLatency{File: name, Count: n, P50Seconds: quantile(h[:], n, 0.50), P99Seconds: quantile(h[:], n, 0.99)})
	}
	s.mu.Unlock()
	return out
}

// quantile is the upper bound of the bucket holding the q-th of n
// observations (the last finite bound for the +Inf bucket).
func quantile(h []uint64, n uint64, q float64) float64 {
	rank := uint64(q*float64(n) + 0.999999)
	var cum uint64
	for i, c := range h {
		cum += c
		if cum >= rank {
			return FsyncBuckets[min(i, len(FsyncBuckets)-1)]
		}
	}
	return FsyncBuckets[len(FsyncBuckets)-1]
}

// observeFS wraps o's file systems so that every fdatasync of pair id is
// counted for its kind of file and passed to Options.OnFsync. Journal
// and retention share Options.FS: a file under journalDir is the
// journal's, any other (undo segments, the catalogue) retention's.
func observeFS(o *Options, id, journalDir string) *fsyncStats {
	st := &fsyncStats{now: o.Now}
	on := o.OnFsync
	journalDir = filepath.Clean(journalDir) + string(filepath.Separator)
	note := func(file int) func(string, time.Duration) {
		return func(name string, d time.Duration) {
			f := file
			if f == 1 && strings.HasPrefix(filepath.Clean(name), journalDir) {
				f = 0
			}
			st.observe(f, d)
			if on != nil {
				on(id, fsyncFiles[f], d)
			}
		}
	}
	o.FS = vfs.Observed(o.FS, note(1))
	o.TargetFS = vfs.Observed(o.TargetFS, note(2))
	return st
}
