package journal

import (
	"errors"
	"testing"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// TestLogSkip: a log skipped past sequences made durable elsewhere
// expects the one after, acknowledges the skip, appends and reads on from
// there, and a reopen (clean or after a crash) resumes at the same place.
func TestLogSkip(t *testing.T) {
	for _, clean := range []bool{true, false} {
		m := vfs.NewMem()
		var a acks
		o := logOpts(m)
		o.OnDurable = a.add
		l, _ := mustOpenLog(t, o)
		appendSeqs(t, l, 1, 40, 0) // spans several segments
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		// Not durable yet: refused.
		r := testRecord(41, 0)
		if err := l.Append(&r); err != nil {
			t.Fatal(err)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := l.Skip(30); err == nil {
			t.Fatal("skip to 30 with 41 journaled: want an error")
		}
		if err := l.Skip(100); err != nil {
			t.Fatal(err)
		}
		if l.Next() != 101 || l.Durable() != 100 || a.max() != 100 {
			t.Fatalf("after Skip(100): next %d durable %d acked %d", l.Next(), l.Durable(), a.max())
		}
		appendSeqs(t, l, 101, 130, 1)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		checkSeqs(t, readAll(t, l, 101), 101, 130, func(uint64) byte { return 1 })
		if clean {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		} else {
			m.Halt()
			l.Close()
			m = m.Crash(vfs.DropUnsynced, nil)
			o.FS = m
		}
		o.Base = 100 // the retention store committed the skipped stretch
		l2, rep := mustOpenLog(t, o)
		if l2.Next() != 131 || rep.LastSeq != 130 {
			t.Fatalf("clean %v: reopened after a skip: next %d, last %d; want 131, 130", clean, l2.Next(), rep.LastSeq)
		}
		checkSeqs(t, readAll(t, l2, 101), 101, 130, func(uint64) byte { return 1 })
		l2.Close()
	}
}

// TestMarkResync: a store with nothing recoverable takes a direct resync
// and marks it "Not guaranteed" durably; Commit extends that range; a
// store holding before-images or tags refuses, changing nothing.
func TestMarkResync(t *testing.T) {
	e := newStoreEnv(t)
	s := e.open()
	if !s.DirectResyncOK() {
		t.Fatal("a fresh store refuses a direct resync")
	}
	if err := s.MarkResync(at(0)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = e.open()
	rs := s.Ranges()
	if len(rs) != 1 || rs[0].Accuracy != NotGuaranteed || rs[0].FirstSeq != 0 || rs[0].LastSeq != 0 {
		t.Fatalf("ranges after MarkResync and a reopen: %+v", rs)
	}
	if err := s.Commit(Commit{Applied: 10, AppliedTime: at(10), Accuracy: NotGuaranteed, FirstTime: at(1)}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkResync(at(11)); err != nil {
		t.Fatal(err)
	}
	if rs := s.Ranges(); len(rs) != 1 || rs[0].LastSeq != 10 {
		t.Fatalf("ranges after a direct commit: %+v", rs)
	}
	if e, _ := s.Earliest(); e != 10 {
		t.Fatalf("earliest %d: want the applied position 10", e)
	}
	// Before-images kept: refused.
	apply(t, s, 11, 12, Exact)
	if s.DirectResyncOK() {
		t.Fatal("a store with before-images takes a direct resync")
	}
	before := s.Ranges()
	if err := s.MarkResync(at(13)); !errors.Is(err, ErrNotDirect) {
		t.Fatalf("MarkResync with before-images: %v, want ErrNotDirect", err)
	}
	if after := s.Ranges(); len(after) != len(before) {
		t.Fatalf("a refused MarkResync changed the ranges: %+v", after)
	}
	s.Close()
}
