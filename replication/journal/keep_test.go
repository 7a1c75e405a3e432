package journal

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// segReads counts the reads of redo segment files on m from now on.
func segReads(m *vfs.Mem) *atomic.Int64 {
	var n atomic.Int64
	m.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpRead && strings.HasSuffix(name, ".redo") {
			n.Add(1)
		}
		return nil
	})
	return &n
}

// keptOf is the memory l keeps for its reader (ReadKept counts every
// Log of the process).
func keptOf(l *Log) int64 { l.mu.Lock(); defer l.mu.Unlock(); return l.keptBytes }

// withReadKeep sets the process-wide budget for one test.
func withReadKeep(t *testing.T, n int64) {
	old := SetReadKeep(n)
	t.Cleanup(func() { SetReadKeep(old) })
}

// readReleasing reads every durable record from rd, releasing as it goes
// like the applier (each record copied out first), until io.EOF.
func readReleasing(t *testing.T, rd *Reader) []Record {
	t.Helper()
	var out []Record
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(out), err)
		}
		r.Data = append([]byte(nil), r.Data...)
		out = append(out, r)
		rd.Release()
	}
}

// TestReaderTakesKeptGroups: a reader that keeps up reads the groups the
// log just made durable from memory, not from the segment files, and
// gets every record exactly; with the budget at 0 it reads the files.
func TestReaderTakesKeptGroups(t *testing.T) {
	for _, budget := range []int64{DefaultReadKeep, 0} {
		withReadKeep(t, budget)
		m := vfs.NewMem()
		l, _ := mustOpenLog(t, logOpts(m))
		reads := segReads(m)
		rd := l.NewReader(1)
		var got []Record
		for from := uint64(1); from <= 600; from += 50 {
			appendSeqs(t, l, from, from+49, 0)
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			got = append(got, readReleasing(t, rd)...)
		}
		checkSeqs(t, got, 1, 600, gen0)
		n := reads.Load()
		if budget > 0 && n != 0 {
			t.Errorf("budget %d: the reader read the segment files %d times; the groups were in memory", budget, n)
		}
		if budget == 0 && n == 0 {
			t.Errorf("budget 0: the reader never read the segment files")
		}
		if kept := keptOf(l); budget > 0 && kept != 0 {
			t.Errorf("budget %d: %d bytes still kept after the reader read everything", budget, kept)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReaderBehindBudget: a reader far behind finds some groups kept and
// the rest only on disk (the budget full); it reads both, in order, and
// the buffers it gives back, written over by later groups, never change
// a record it still holds.
func TestReaderBehindBudget(t *testing.T) {
	// Groups of up to 2 KiB in 64 KiB buffers: room for three.
	withReadKeep(t, 3*64<<10)
	m := vfs.NewMem()
	l, _ := mustOpenLog(t, logOpts(m))
	defer l.Close()
	reads := segReads(m)
	for from := uint64(1); from <= 400; from += 20 {
		appendSeqs(t, l, from, from+19, 0)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	rd := l.NewReader(1)
	var held []Record // records of the batch "in flight", not copied
	var got []Record
	for batch := 0; ; batch++ {
		mark := rd.Mark()
		var b []Record
		for len(b) < 30 {
			r, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, r)
		}
		// The batch before is done: let its buffers go while this one is
		// held, then write more groups into the buffers given back.
		checkHeld := func() {
			for _, r := range held {
				if d := diffRecord(r, testRecord(r.Seq, 0)); d != "" {
					t.Fatalf("batch %d: a held record changed (sequence %d): %s", batch, r.Seq, d)
				}
			}
		}
		checkHeld()
		for _, r := range held {
			r.Data = append([]byte(nil), r.Data...)
			got = append(got, r)
		}
		rd.ReleaseBefore(mark)
		held = b
		if next := l.Next(); next <= 800 {
			appendSeqs(t, l, next, next+9, 0)
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		checkHeld()
		if len(b) == 0 {
			break
		}
	}
	checkSeqs(t, got, 1, l.Durable(), gen0)
	if reads.Load() == 0 {
		t.Fatal("a reader behind the budget never read the files: the test does not test")
	}
}

// TestKeptDroppedByTrimAndSkip: kept groups of trimmed segments, or of a
// log skipped to a new sequence, are let go; a new reader reads the
// records that remain correctly.
func TestKeptDroppedByTrimAndSkip(t *testing.T) {
	withReadKeep(t, DefaultReadKeep)
	m := vfs.NewMem()
	l, _ := mustOpenLog(t, logOpts(m))
	defer l.Close()
	appendSeqs(t, l, 1, 300, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if kept := keptOf(l); kept == 0 {
		t.Fatal("nothing kept after a sync: the test does not test")
	}
	if err := l.Trim(200); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, readAll(t, l, 201), 201, 300, gen0)
	if err := l.Skip(300); err != nil {
		t.Fatal(err)
	}
	if kept := keptOf(l); kept != 0 {
		t.Fatalf("%d bytes kept after Skip", kept)
	}
	appendSeqs(t, l, 301, 350, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, readAll(t, l, 301), 301, 350, gen0)
}
