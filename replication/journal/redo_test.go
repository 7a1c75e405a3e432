package journal

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// TestLogAppendReopen appends across many small segments, checks every
// acknowledgement against what was synced, and reads it all back before and
// after a reopen.
func TestLogAppendReopen(t *testing.T) {
	const n = 1500
	w := &watchFS{Mem: vfs.NewMem()}
	var (
		mu   sync.Mutex
		last uint64
		bad  []string
	)
	o := logOpts(w)
	o.OnDurable = func(seq uint64) {
		mu.Lock()
		defer mu.Unlock()
		// Invariant 1: acknowledged only once durable, and cumulatively.
		if synced := w.Synced(); seq > synced {
			bad = append(bad, "OnDurable("+itoa(seq)+") above the synced "+itoa(synced))
		}
		if seq <= last {
			bad = append(bad, "OnDurable("+itoa(seq)+") after "+itoa(last))
		}
		last = seq
	}
	l, rep := mustOpenLog(t, o)
	if rep != (RepairReport{}) || l.Next() != 1 || l.Durable() != 0 {
		t.Fatalf("new log: report %+v, Next %d, Durable %d", rep, l.Next(), l.Durable())
	}
	appendSeqs(t, l, 1, n/2, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if l.Durable() != n/2 {
		t.Fatalf("Durable() = %d after Sync, want %d", l.Durable(), n/2)
	}
	appendSeqs(t, l, n/2+1, n, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, readAll(t, l, 1), 1, n, gen0)
	checkSeqs(t, readAll(t, l, 777), 777, n, gen0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if len(bad) > 0 {
		t.Fatalf("%d bad acknowledgements, first: %s", len(bad), bad[0])
	}
	if last != n {
		t.Fatalf("last acknowledgement %d, want %d", last, n)
	}
	mu.Unlock()
	names, _ := w.List(logDir)
	segs := 0
	for _, name := range names {
		if strings.HasSuffix(name, ".redo") {
			segs++
		}
	}
	if segs < 5 {
		t.Fatalf("%d segment files (%v): the test wants several segments", segs, names)
	}

	// After a clean Close the end is known: nothing is scanned.
	l, rep = mustOpenLog(t, logOpts(w.Mem))
	defer l.Close()
	if want := (RepairReport{Segments: segs, FirstSeq: 1, LastSeq: n, Clean: true}); rep != want {
		t.Fatalf("reopen report %+v, want %+v", rep, want)
	}
	if l.Next() != n+1 || l.Durable() != n {
		t.Fatalf("reopen: Next %d Durable %d, want %d and %d", l.Next(), l.Durable(), n+1, n)
	}
	checkSeqs(t, readAll(t, l, 1), 1, n, gen0)
	appendSeqs(t, l, n+1, n+10, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, readAll(t, l, n-5), n-5, n+10, gen0)
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// TestLogReaderFollows reads the live tail while another goroutine appends.
func TestLogReaderFollows(t *testing.T) {
	const n = 800
	l, _ := mustOpenLog(t, logOpts(vfs.NewMem()))
	defer l.Close()
	errc := make(chan error, 1)
	go func() {
		for seq := uint64(1); seq <= n; seq++ {
			r := testRecord(seq, 0)
			if err := l.Append(&r); err != nil {
				errc <- err
				return
			}
			if seq%50 == 0 {
				if err := l.Sync(); err != nil {
					errc <- err
					return
				}
			}
		}
		errc <- l.Sync()
	}()
	rd := l.NewReader(1)
	var got []Record
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			time.Sleep(50 * time.Microsecond)
			continue
		}
		if err != nil {
			t.Fatalf("Next after %d records: %v", len(got), err)
		}
		if r.Seq > l.Durable() {
			t.Fatalf("read sequence %d, durable only %d", r.Seq, l.Durable())
		}
		got = append(got, r)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, got, 1, n, gen0)
	if _, err := rd.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next past the end: %v, want io.EOF", err)
	}
}

// TestLogTrimReusesSegments appends a lot while trimming what is applied:
// the segment files stay few and are reused, across reopens too.
func TestLogTrimReusesSegments(t *testing.T) {
	m := vfs.NewMem()
	var creates atomic.Int64
	m.SetInjector(func(op vfs.Op, name string) error {
		if op == vfs.OpCreate {
			creates.Add(1)
		}
		return nil
	})
	o := logOpts(m)
	o.MaxSegments = 4
	bound := o.MaxSegments + 2 // live segments and at most two spares
	next := uint64(1)
	for session := 0; session < 4; session++ {
		l, rep := mustOpenLog(t, o)
		if session > 0 && (rep.LastSeq != next-1 || l.Next() != next) {
			t.Fatalf("session %d: report %+v, Next %d, want last %d", session, rep, l.Next(), next-1)
		}
		var applied uint64
		for i := 0; i < 2000; i++ {
			appendSeqs(t, l, next, next, 0)
			next++
			if next%40 == 0 {
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
				applied = l.Durable() - 10
				if err := l.Trim(applied); err != nil {
					t.Fatalf("Trim: %v", err)
				}
				if names, _ := m.List(logDir); len(names) > bound {
					t.Fatalf("session %d: %d files after Trim: %v", session, len(names), names)
				}
			}
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		last := next - 1
		// Everything from the applied position on is still there.
		checkSeqs(t, readAll(t, l, applied+1), applied+1, last, gen0)
		if _, err := readAllErr(l, 1); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "sequence 1 is not in the journal") {
			t.Fatalf("reading trimmed sequence 1: %v, want ErrCorrupt saying it is not in the journal", err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// Trim keeps at most two spares, whoever made them.
		names, _ := m.List(logDir)
		if spares := len(names) - len(l.segs); spares > 2 || len(names) > bound {
			t.Fatalf("session %d: %d spares, %d files: %v", session, spares, len(names), names)
		}
	}
	names, _ := m.List(logDir)
	// ~8000 records of ~130 bytes fill ~60 segments of 16 KiB.
	var last string
	for _, n := range names {
		if strings.HasSuffix(n, ".redo") && n > last {
			last = n
		}
	}
	if last < "0000000000000028.redo" {
		t.Fatalf("newest segment %q: want past index 0x28", last)
	}
	if c := creates.Load(); c > int64(bound) {
		t.Fatalf("%d segment files created for %s: spares are not reused", c, last)
	}
}

// TestLogSpareNamedLikeNextSegment: a crash while a new segment was being
// created can leave a file with the next segment's name and no valid
// header. Reopened, it is a spare; the log must never hand out the same
// file twice.
func TestLogSpareNamedLikeNextSegment(t *testing.T) {
	m := vfs.NewMem()
	o := logOpts(m)
	l, _ := mustOpenLog(t, o)
	appendSeqs(t, l, 1, 200, 0) // segments 0 and 1
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := m.OpenFile(segName(2), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(o.SegmentSize)
	f.Sync()
	m.SyncDir(logDir)

	l, rep := mustOpenLog(t, o)
	if rep.Segments != 2 || rep.LastSeq != 200 {
		t.Fatalf("report %+v, want two segments up to 200", rep)
	}
	// Segment 0 becomes a spare too: two spares, one named 2.
	if err := l.Trim(200); err != nil {
		t.Fatal(err)
	}
	next := uint64(201)
	for next < 800 {
		appendSeqs(t, l, next, next+49, 0)
		next += 50
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rep = mustOpenLog(t, o)
	defer l.Close()
	if rep.LastSeq != next-1 {
		t.Fatalf("reopen report %+v, want last %d", rep, next-1)
	}
	checkSeqs(t, readAll(t, l, rep.FirstSeq), rep.FirstSeq, next-1, gen0)
	if rep.FirstSeq > 201 {
		t.Fatalf("first sequence %d: sequences after the applied 200 are gone", rep.FirstSeq)
	}
}

func TestLogBase(t *testing.T) {
	m := vfs.NewMem()
	o := logOpts(m)
	o.Base = 100
	l, rep := mustOpenLog(t, o)
	if l.Next() != 101 || l.Durable() != 100 || rep.LastSeq != 0 {
		t.Fatalf("empty log with Base 100: Next %d Durable %d report %+v", l.Next(), l.Durable(), rep)
	}
	r := testRecord(1, 0)
	if err := l.Append(&r); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("Append(1) on Base 100: %v, want ErrOutOfOrder", err)
	}
	if _, err := readAllErr(l, 101); err != nil {
		t.Fatalf("reading an empty log: %v", err)
	}
	appendSeqs(t, l, 101, 130, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, base := range []uint64{0, 100, 130} {
		o.Base = base
		l, rep := mustOpenLog(t, o)
		if rep.FirstSeq != 101 || rep.LastSeq != 130 || l.Next() != 131 {
			t.Fatalf("reopen with Base %d: report %+v, Next %d", base, rep, l.Next())
		}
		checkSeqs(t, readAll(t, l, 101), 101, 130, gen0)
		l.Close()
	}
}

func TestLogAppendRefuses(t *testing.T) {
	l, _ := mustOpenLog(t, LogOptions{FS: vfs.NewMem(), Dir: logDir, SegmentSize: 256 << 10, MaxRecord: 128 << 10})
	defer l.Close()
	appendSeqs(t, l, 1, 3, 0)
	for _, tc := range []struct {
		name   string
		r      Record
		is     error
		saying string
	}{
		{"sequence behind", testRecord(3, 0), ErrOutOfOrder, "got 3, want 4"},
		{"sequence ahead", testRecord(5, 0), ErrOutOfOrder, "got 5, want 4"},
		{"past MaxRecord", Record{Type: TypeWrite, Seq: 4, Data: make([]byte, 128<<10)}, ErrTooLarge, "limit"},
		{"tag field past 64 KiB", Record{Type: TypeTag, Seq: 4, Tag: &TagInfo{Name: strings.Repeat("x", 70000)}}, ErrTooLarge, "tag fields"},
		{"tag without TagInfo", Record{Type: TypeTag, Seq: 4}, nil, "without tag"},
		{"negative offset", Record{Type: TypeWrite, Seq: 4, Offset: -1}, nil, "negative offset"},
		{"end record", Record{Type: TypeEnd, Seq: 4}, nil, "end"},
		{"type 0", Record{Seq: 4}, nil, "bad type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Append(&tc.r)
			if err == nil {
				t.Fatalf("Append accepted it")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("Append: %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.saying) {
				t.Fatalf("Append: %q, want it to say %q", err, tc.saying)
			}
			if l.Next() != 4 || l.Err() != nil {
				t.Fatalf("after a refused Append: Next %d Err %v, want 4 and nil", l.Next(), l.Err())
			}
		})
	}
	// Nothing refused took a sequence: 4 is still next, and everything
	// reads back after a reopen.
	appendSeqs(t, l, 4, 10, 0)
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, readAll(t, l, 1), 1, 10, gen0)
}

func TestLogSmallSegmentRefusesLargeRecord(t *testing.T) {
	l, _ := mustOpenLog(t, LogOptions{FS: vfs.NewMem(), Dir: logDir, SegmentSize: 4096})
	defer l.Close()
	r := Record{Type: TypeWrite, Seq: 1, Data: make([]byte, 4096-segHeaderSize-2*HeaderSize-writeFixed+1)}
	if err := l.Append(&r); !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "4096-byte segments") {
		t.Fatalf("Append of a record that cannot fit a segment: %v", err)
	}
	r.Data = r.Data[:len(r.Data)-1-7] // fits with room for the End record
	if err := l.Append(&r); err != nil {
		t.Fatalf("Append of a record that fits: %v", err)
	}
	r2 := Record{Type: TypeWrite, Seq: 2, Data: r.Data}
	if err := l.Append(&r2); err != nil {
		t.Fatalf("Append of a second full-segment record: %v", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, l, 1)
	if len(recs) != 2 || recs[1].Seq != 2 || len(recs[1].Data) != len(r.Data) {
		t.Fatalf("read back %d records", len(recs))
	}
}

func TestLogClosed(t *testing.T) {
	m := vfs.NewMem()
	l, _ := mustOpenLog(t, logOpts(m))
	appendSeqs(t, l, 1, 50, 0)
	// Close makes pending appends durable.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	r := testRecord(51, 0)
	if err := l.Append(&r); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	l, rep := mustOpenLog(t, logOpts(m.Crash(vfs.DropUnsynced, nil)))
	defer l.Close()
	if rep.LastSeq != 50 {
		t.Fatalf("after Close and a crash: last %d, want 50", rep.LastSeq)
	}
}

// TestLogIgnoresOtherFiles: files that are not segments stay untouched.
func TestLogIgnoresOtherFiles(t *testing.T) {
	m := vfs.NewMem()
	m.MkdirAll(logDir, 0o700)
	note := filepath.Join(logDir, "README")
	if err := vfs.WriteFile(m, note, []byte("hands off"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, _ := mustOpenLog(t, logOpts(m))
	appendSeqs(t, l, 1, 400, 0)
	l.Sync()
	l.Trim(390)
	l.Close()
	l, _ = mustOpenLog(t, logOpts(m))
	defer l.Close()
	if b, err := m.ReadFile(note); err != nil || string(b) != "hands off" {
		t.Fatalf("README: %q, %v", b, err)
	}
}

// waitWaiting polls until an Append waits for room in l.
func waitWaiting(t *testing.T, l *Log, errc <-chan appendEnd) {
	t.Helper()
	for l.Waiting() == 0 {
		select {
		case e := <-errc:
			t.Fatalf("Append %d returned %v before the journal was full", e.seq, e.err)
		case <-time.After(time.Millisecond):
		}
	}
}

type appendEnd struct {
	seq uint64 // the Append that failed
	err error
}

// fillThenAppend appends from seq on until an Append fails, and says which.
func fillThenAppend(ctx context.Context, l *Log, seq uint64, errc chan<- appendEnd) {
	for ; ; seq++ {
		r := testRecord(seq, 0)
		if err := l.AppendContext(ctx, &r); err != nil {
			errc <- appendEnd{seq, err}
			return
		}
	}
}

// TestLogAppendWaitingForRoomEnds: an Append waiting on a full journal
// (nothing applied, so nothing trimmed) returns when its context ends,
// with nothing appended, and when the log is closed, with ErrClosed; Close
// itself returns (the agent's SIGTERM was ignored while it waited).
func TestLogAppendWaitingForRoomEnds(t *testing.T) {
	m := vfs.NewMem()
	o := logOpts(m)
	o.MaxSegments = 2
	l, _ := mustOpenLog(t, o)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan appendEnd, 1)
	go fillThenAppend(ctx, l, 1, errc)
	waitWaiting(t, l, errc)
	cancel()
	e := <-errc
	if !errors.Is(e.err, context.Canceled) {
		t.Fatalf("Append after its context ended: %v, want context.Canceled", e.err)
	}
	if l.Next() != e.seq || l.Waiting() != 0 {
		t.Fatalf("Next %d (want %d), %d waiting after the cancelled Append", l.Next(), e.seq, l.Waiting())
	}
	go fillThenAppend(context.Background(), l, e.seq, errc)
	waitWaiting(t, l, errc)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	e = <-errc
	if !errors.Is(e.err, ErrClosed) {
		t.Fatalf("Append waiting when the log closed: %v, want ErrClosed", e.err)
	}
	// What was acknowledged before is all there.
	l, rep := mustOpenLog(t, o)
	defer l.Close()
	if rep.LastSeq != e.seq-1 {
		t.Fatalf("reopened: last %d, want %d", rep.LastSeq, e.seq-1)
	}
}

// TestLogAppendWaitingForSpaceEnds: with no room on the volume for a
// segment the commits wait for space and Appends queue up behind them;
// Close still returns, and so do they and Sync.
func TestLogAppendWaitingForSpaceEnds(t *testing.T) {
	m := vfs.NewMem()
	m.SetCapacity(100)
	l, _ := mustOpenLog(t, logOpts(m))
	errc := make(chan appendEnd, 1)
	go fillThenAppend(context.Background(), l, 1, errc)
	waitWaiting(t, l, errc)
	l.Close() // the commit that found no room fails
	if e := <-errc; !errors.Is(e.err, ErrClosed) && !errors.Is(e.err, syscall.ENOSPC) {
		t.Fatalf("Append waiting when the log closed: %v, want ErrClosed or ENOSPC", e.err)
	}
	if err := l.Sync(); err == nil {
		t.Fatal("Sync of a closed log with appends never made durable: nil error")
	}
}
