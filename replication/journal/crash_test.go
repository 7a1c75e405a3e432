package journal

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

var crashSeed = flag.Int64("journal.seed", 0, "seed of the random crash tests (0: from the clock)")

var tearModes = []struct {
	name string
	mode vfs.TearMode
}{{"drop", vfs.DropUnsynced}, {"keep", vfs.KeepUnsynced}, {"tear", vfs.TearUnsynced}}

// crashAt returns an Injector that crashes the file system at its nth
// write, sync, create, rename, remove or truncate (0: never), and the
// count of those operations.
func crashAt(nth int64) (vfs.Injector, *atomic.Int64) {
	var ops atomic.Int64
	return func(op vfs.Op, name string) error {
		if op == vfs.OpRead {
			return nil
		}
		if n := ops.Add(1); n == nth {
			return vfs.ErrCrashed
		}
		return nil
	}, &ops
}

// crashWorkload appends 1..n to a log on m, syncing every syncEvery
// records (0: never) and trimming as an applier would, until the file
// system fails. It returns the highest acknowledgement and the highest
// applied position passed to Trim.
func crashWorkload(m vfs.FS, n uint64, syncEvery uint64) (acked, trimmed uint64) {
	var a acks
	o := logOpts(m)
	o.SegmentSize = 8 << 10
	o.MaxPending = 1 << 10
	o.MaxSegments = 8
	o.OnDurable = a.add
	l, _, err := OpenLog(o)
	if err != nil {
		return 0, 0
	}
	for seq := uint64(1); seq <= n; seq++ {
		r := testRecord(seq, 0)
		if l.Append(&r) != nil {
			break
		}
		if syncEvery > 0 && seq%syncEvery == 0 && l.Sync() != nil {
			break
		}
		if d := l.Durable(); seq%25 == 0 && d > 10 {
			if l.Trim(d-10) != nil {
				break
			}
			trimmed = d - 10
		}
	}
	l.Close()
	return a.max(), trimmed
}

// checkAfterCrash reopens the crashed log: every acknowledged record is
// there, intact, in order; then the log goes on from where it ended.
func checkAfterCrash(t *testing.T, what string, m *vfs.Mem, acked, trimmed uint64) {
	t.Helper()
	o := logOpts(m)
	o.SegmentSize = 8 << 10
	o.MaxPending = 1 << 10
	l, rep, err := OpenLog(o)
	if err != nil {
		t.Fatalf("%s: OpenLog after the crash: %v", what, err)
	}
	if rep.LastSeq < acked {
		l.Close()
		t.Fatalf("%s: report %+v: acknowledged %d lost", what, rep, acked)
	}
	first := rep.FirstSeq
	if first == 0 {
		first = 1
	}
	if first > trimmed+1 {
		l.Close()
		t.Fatalf("%s: log starts at %d, only %d was applied", what, first, trimmed)
	}
	recs, err := readAllErr(l, first)
	if err != nil {
		l.Close()
		t.Fatalf("%s: reading from %d: %v", what, first, err)
	}
	checkSeqs(t, recs, first, rep.LastSeq, gen0)

	// The log goes on after the crash, trimming as it goes.
	last := rep.LastSeq
	if l.Next() != last+1 {
		t.Fatalf("%s: Next %d, want %d", what, l.Next(), last+1)
	}
	for seq := last + 1; seq <= last+60; seq++ {
		r := testRecord(seq, 1)
		if err := l.Append(&r); err != nil {
			t.Fatalf("%s: Append %d after the crash: %v", what, seq, err)
		}
		if seq%20 == 0 {
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := l.Trim(last); err != nil {
				t.Fatalf("%s: Trim: %v", what, err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("%s: Close: %v", what, err)
	}
	l, rep2, err := OpenLog(o)
	if err != nil {
		t.Fatalf("%s: second OpenLog: %v", what, err)
	}
	defer l.Close()
	if rep2.LastSeq != last+60 || rep2.FirstSeq > last+1 {
		t.Fatalf("%s: second report %+v, want up to %d from at most %d", what, rep2, last+60, last+1)
	}
	recs, err = readAllErr(l, rep2.FirstSeq)
	if err != nil {
		t.Fatalf("%s: second read: %v", what, err)
	}
	checkSeqs(t, recs, rep2.FirstSeq, last+60, func(seq uint64) byte {
		if seq > last {
			return 1
		}
		return 0
	})
}

// TestLogCrashEveryPoint crashes a small workload at every file-system
// operation, in every tear mode: nothing acknowledged is lost, nothing read
// is garbage, and the log goes on.
func TestLogCrashEveryPoint(t *testing.T) {
	const n = 150
	inj, count := crashAt(0)
	m := vfs.NewMem()
	m.SetInjector(inj)
	crashWorkload(m, n, 5)
	total := count.Load()
	if total < 50 {
		t.Fatalf("only %d operations in the workload", total)
	}
	seed := *crashSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	for _, tm := range tearModes {
		t.Run(tm.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			// A few past the dry run's count: the grouping varies.
			for at := int64(1); at <= total+5; at++ {
				m := vfs.NewMem()
				inj, _ := crashAt(at)
				m.SetInjector(inj)
				acked, trimmed := crashWorkload(m, n, 5)
				what := fmt.Sprintf("crash at operation %d of %d, %s (seed %d)", at, total, tm.name, seed)
				checkAfterCrash(t, what, m.Crash(tm.mode, rng), acked, trimmed)
			}
		})
	}
}

// TestLogCrashRandom crashes larger workloads of unsynced appends (many
// records per group) at random instants.
func TestLogCrashRandom(t *testing.T) {
	seed := *crashSeed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	rng := rand.New(rand.NewSource(seed))
	for _, tm := range tearModes {
		for i := 0; i < 8; i++ {
			m := vfs.NewMem()
			at := 1 + rng.Int63n(400)
			inj, count := crashAt(at)
			m.SetInjector(inj)
			acked, trimmed := crashWorkload(m, 1500, 0)
			what := fmt.Sprintf("crash at operation %d (%d done), %s (seed %d)", at, count.Load(), tm.name, seed)
			if acked == 0 && at > 50 {
				t.Fatalf("%s: nothing acknowledged", what)
			}
			checkAfterCrash(t, what, m.Crash(tm.mode, rng), acked, trimmed)
		}
	}
}

// failOn returns an Injector failing the nth op of kind with err, and
// whether it has.
func failOn(kind vfs.Op, nth int, err error) (vfs.Injector, *atomic.Bool) {
	var n atomic.Int64
	var failed atomic.Bool
	return func(op vfs.Op, name string) error {
		if op != kind || !strings.HasPrefix(name, logDir) {
			return nil
		}
		if n.Add(1) >= int64(nth) {
			// A failed device keeps failing.
			failed.Store(true)
			return err
		}
		return nil
	}, &failed
}

// syncWithin is l.Sync, failing the test if it does not return in time: a
// log that neither stops nor makes progress after a fault hangs its callers.
func syncWithin(t *testing.T, l *Log) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- l.Sync() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Sync has not returned after 10s (durable %d, next %d, err %v)", l.Durable(), l.Next(), l.Err())
		return nil
	}
}

// TestLogFaults: after a failed write, fdatasync or segment creation
// nothing more is acknowledged and every later call fails (invariant 5).
func TestLogFaults(t *testing.T) {
	for _, tc := range []struct {
		op  vfs.Op
		nth []int
	}{
		{vfs.OpSync, []int{1, 2, 3, 8, 40, 95}},
		{vfs.OpWrite, []int{1, 2, 9, 60}},
		{vfs.OpSyncDir, []int{1, 2, 3}},
		{vfs.OpCreate, []int{1, 2}},
	} {
		for _, nth := range tc.nth {
			t.Run(fmt.Sprintf("%v #%d", tc.op, nth), func(t *testing.T) {
				m := vfs.NewMem()
				inj, failed := failOn(tc.op, nth, syscall.EIO)
				m.SetInjector(inj)
				var a acks
				o := logOpts(m)
				o.OnDurable = a.add
				l, _ := mustOpenLog(t, o)
				// One record per group: the failed group is the one
				// whose Sync fails.
				var bad uint64
				var err error
				for seq := uint64(1); seq <= 300 && bad == 0; seq++ {
					r := testRecord(seq, 0)
					if err = l.Append(&r); err != nil {
						t.Fatalf("Append %d failed before any Sync did: %v", seq, err)
					}
					if err = syncWithin(t, l); err != nil {
						bad = seq
					}
				}
				if bad == 0 || !failed.Load() {
					t.Fatalf("no failure after 300 records")
				}
				if !errors.Is(err, syscall.EIO) {
					t.Fatalf("Sync: %v, want EIO", err)
				}
				if e := l.Err(); !errors.Is(e, syscall.EIO) || !strings.Contains(e.Error(), logDir) {
					t.Fatalf("Err() = %v, want EIO naming %s", e, logDir)
				}
				r := testRecord(bad+1, 0)
				if err := l.Append(&r); !errors.Is(err, syscall.EIO) {
					t.Fatalf("Append after the failure: %v, want EIO", err)
				}
				if err := syncWithin(t, l); !errors.Is(err, syscall.EIO) {
					t.Fatalf("Sync after the failure: %v, want EIO", err)
				}
				if err := l.Close(); !errors.Is(err, syscall.EIO) {
					t.Fatalf("Close: %v, want EIO", err)
				}
				if l.Durable() != bad-1 {
					t.Fatalf("Durable() = %d, want %d", l.Durable(), bad-1)
				}
				// Close waited for the commit goroutine: all calls are in.
				got := a.all()
				for i, s := range got {
					if s >= bad || i > 0 && s <= got[i-1] {
						t.Fatalf("acknowledgements %v with sequence %d failed", got, bad)
					}
				}
				if a.max() != bad-1 {
					t.Fatalf("last acknowledgement %d, want %d", a.max(), bad-1)
				}
				// The pair restarts from the journal: every acknowledged
				// record is there.
				m.SetInjector(nil)
				l, rep := mustOpenLog(t, logOpts(m))
				defer l.Close()
				if rep.LastSeq < bad-1 {
					t.Fatalf("after restart: report %+v, acknowledged %d", rep, bad-1)
				}
				if bad > 1 {
					checkSeqs(t, readAll(t, l, 1), 1, rep.LastSeq, gen0)
				}
			})
		}
	}
}

// TestLogFaultAsync: with many records per group, no acknowledgement ever
// exceeds what a successful fdatasync covered, before or after the fault.
func TestLogFaultAsync(t *testing.T) {
	for _, tc := range []struct {
		op  vfs.Op
		nth int
	}{{vfs.OpSync, 3}, {vfs.OpSync, 17}, {vfs.OpSync, 40}, {vfs.OpWrite, 25}} {
		t.Run(fmt.Sprintf("%v #%d", tc.op, tc.nth), func(t *testing.T) {
			w := &watchFS{Mem: vfs.NewMem()}
			inj, failed := failOn(tc.op, tc.nth, syscall.EIO)
			w.SetInjector(inj)
			var a acks
			var over atomic.Uint64
			o := logOpts(w)
			o.OnDurable = func(seq uint64) {
				if seq > w.Synced() {
					over.Store(seq)
				}
				a.add(seq)
			}
			l, _ := mustOpenLog(t, o)
			var appendErr error
			for seq := uint64(1); seq <= 3000; seq++ {
				r := testRecord(seq, 0)
				if appendErr = l.Append(&r); appendErr != nil {
					break
				}
			}
			if appendErr == nil {
				appendErr = syncWithin(t, l)
			}
			l.Close()
			if !failed.Load() || !errors.Is(appendErr, syscall.EIO) || !errors.Is(l.Err(), syscall.EIO) {
				t.Fatalf("fault injected %v; Append/Sync: %v; Err: %v", failed.Load(), appendErr, l.Err())
			}
			if s := over.Load(); s != 0 {
				t.Fatalf("OnDurable(%d) before that sequence was synced", s)
			}
			if a.max() > w.Synced() {
				t.Fatalf("acknowledged %d, synced %d", a.max(), w.Synced())
			}
			// What was acknowledged survives losing everything unsynced.
			l2, rep := mustOpenLog(t, logOpts(w.Crash(vfs.DropUnsynced, nil)))
			defer l2.Close()
			if rep.LastSeq < a.max() {
				t.Fatalf("after a crash: %+v, acknowledged %d", rep, a.max())
			}
		})
	}
}
