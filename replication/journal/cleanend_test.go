package journal

import (
	"bytes"
	"errors"
	"log/slog"
	"math/rand"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// logBuf is a logger whose lines the test reads.
func logBuf() (*slog.Logger, *bytes.Buffer) {
	var b bytes.Buffer
	return slog.New(slog.NewTextHandler(&b, nil)), &b
}

// TestLogCleanRestart: a clean Close records the end; the next open reads
// no segment, logs no torn tail, and appends and reads on as before, also
// in segments reused from spares (stale records past the end).
func TestLogCleanRestart(t *testing.T) {
	m := vfs.NewMem()
	o := logOpts(m)
	l, _ := mustOpenLog(t, o)
	appendSeqs(t, l, 1, 400, 0)
	if err := l.Trim(300); err != nil { // spares, reused below
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	trimmed := uint64(300)
	for round := range 3 {
		lg, buf := logBuf()
		o.Logger = lg
		o.Base = trimmed
		l, rep := mustOpenLog(t, o)
		want := uint64(400 + 100*round)
		if !rep.Clean || rep.ScannedBytes != 0 || rep.LastSeq != want || rep.TornAt != "" {
			l.Close()
			t.Fatalf("round %d: report %+v, want a clean end at %d and nothing scanned", round, rep, want)
		}
		if strings.Contains(buf.String(), "torn") {
			t.Fatalf("round %d: a clean start logged %s", round, buf)
		}
		checkSeqs(t, readAll(t, l, trimmed+1), trimmed+1, want, gen0)
		appendSeqs(t, l, want+1, want+100, 0)
		if err := l.Trim(want); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		o.Base = want
		// The same files scanned (as after a crash) give the same answer.
		c := copyFiles(files(t, m, logDir))
		delete(c, cleanPath)
		o2 := o
		o2.FS, o2.Logger = memWith(t, c), nil
		l2, rep2 := mustOpenLog(t, o2)
		if rep2.Clean || rep2.ScannedBytes == 0 || rep2.LastSeq != want+100 {
			t.Fatalf("round %d: scan report %+v, want last %d", round, rep2, want+100)
		}
		l2.Close()
		trimmed = want
	}
}

// TestLogCrashAfterReopen: the clean-end record is gone once the log is
// open, so a crash after more appends is scanned and finds them.
func TestLogCrashAfterReopen(t *testing.T) {
	m := vfs.NewMem()
	o := logOpts(m)
	l, _ := mustOpenLog(t, o)
	appendSeqs(t, l, 1, 100, 0)
	l.Close()
	l, rep := mustOpenLog(t, o)
	if !rep.Clean {
		t.Fatalf("report %+v, want a clean end", rep)
	}
	appendSeqs(t, l, 101, 250, 1)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	crashed := m.Crash(vfs.DropUnsynced, rand.New(rand.NewSource(1)))
	l.Close()
	o.FS = crashed
	l, rep = mustOpenLog(t, o)
	defer l.Close()
	if rep.Clean || rep.LastSeq != 250 {
		t.Fatalf("after the crash: report %+v, want last 250 from a scan", rep)
	}
	checkSeqs(t, readAll(t, l, 1), 1, 250, func(seq uint64) byte {
		if seq > 100 {
			return 1
		}
		return 0
	})
}

// TestLogCleanEndMismatch: a clean-end record that does not match the
// segments (one damaged or rewritten after it) is not trusted.
func TestLogCleanEndMismatch(t *testing.T) {
	fs := buildLog(t, logOpts(nil), 200)
	m := memWith(t, fs)
	o := logOpts(m)
	l, _ := mustOpenLog(t, o)
	l.Close()
	good := files(t, m, logDir)
	seg := lastSegment(t, good)
	spans := segRecords(good[segName(seg)], seg)
	for name, damage := range map[string]func(fs map[string][]byte){
		"last record damaged": func(fs map[string][]byte) { fs[segName(seg)][spans[len(spans)-1].start+HeaderSize] ^= 1 },
		"end record damaged": func(fs map[string][]byte) {
			sp := segRecords(fs[segName(0)], 0)
			fs[segName(0)][sp[len(sp)-1].start] ^= 1
		},
		"record past the end": func(fs map[string][]byte) {
			r := testRecord(201, 0)
			b, _ := AppendRecord(nil, seg, &r)
			copy(fs[segName(seg)][spans[len(spans)-1].end:], b)
		},
		"checksum": func(fs map[string][]byte) { fs[cleanPath][20] ^= 1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := copyFiles(good)
			damage(c)
			o := logOpts(memWith(t, c))
			l, rep, err := OpenLog(o)
			if err == nil {
				defer l.Close()
			}
			if rep.Clean {
				t.Fatalf("trusted a clean-end record that does not match: %+v, %v", rep, err)
			}
		})
	}
}

// TestLogDamageAfterCleanClose: damage to a cleanly closed log is not
// looked for at open (nothing is scanned), but the reader stops on it with
// ErrCorrupt naming the file and offset.
func TestLogDamageAfterCleanClose(t *testing.T) {
	m := vfs.NewMem()
	o := logOpts(m)
	l, _ := mustOpenLog(t, o)
	appendSeqs(t, l, 1, 200, 0)
	l.Close()
	fs := files(t, m, logDir)
	spans := segRecords(fs[segName(1)], 1)
	d := spans[len(spans)/2]
	fs[segName(1)][d.start+HeaderSize+3] ^= 0x10
	o.FS = memWith(t, fs)
	l, rep := mustOpenLog(t, o)
	defer l.Close()
	if !rep.Clean {
		t.Fatalf("report %+v, want a clean end", rep)
	}
	_, err := readAllErr(l, 1)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), segName(1)) {
		t.Fatalf("reading past the damage: %v, want ErrCorrupt naming %s", err, segName(1))
	}
}

// TestLogBaseAfterEnd: a journal whose records all lie at or below Base
// and do not reach it (its tail lost) starts over in a new segment, and
// opening again after appends gives the same log, not a sequence gap.
func TestLogBaseAfterEnd(t *testing.T) {
	fs := buildLog(t, logOpts(nil), 100)
	o := logOpts(memWith(t, fs))
	o.Base = 150
	l, rep := mustOpenLog(t, o)
	if l.Next() != 151 || rep.LastSeq != 0 {
		t.Fatalf("report %+v, Next %d, want an empty log expecting 151", rep, l.Next())
	}
	appendSeqs(t, l, 151, 160, 0)
	l.Close()
	for range 2 {
		l, rep := mustOpenLog(t, o)
		if rep.FirstSeq != 151 || rep.LastSeq != 160 {
			t.Fatalf("reopen: report %+v, want 151..160", rep)
		}
		checkSeqs(t, readAll(t, l, 151), 151, 160, gen0)
		l.Close()
		o.FS.(*vfs.Mem).Remove(cleanPath) // and as after a crash
	}
}

// TestLogCrashScanFromApplied: after a crash, the segments whose records
// are all applied are not read; reading from the applied position works.
func TestLogCrashScanFromApplied(t *testing.T) {
	fs := buildLog(t, logOpts(nil), 400)
	o := logOpts(memWith(t, fs))
	l, all := mustOpenLog(t, o)
	l.Close()
	o = logOpts(memWith(t, fs))
	o.Base = 350
	l, rep := mustOpenLog(t, o)
	defer l.Close()
	if rep.Clean || rep.ScannedBytes == 0 || rep.ScannedBytes >= all.ScannedBytes || rep.LastSeq != 400 || rep.FirstSeq != 1 {
		t.Fatalf("Base 350: report %+v, want a scan of the last segments only (all: %+v)", rep, all)
	}
	checkSeqs(t, readAll(t, l, 351), 351, 400, gen0)
}
