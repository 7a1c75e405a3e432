package journal

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// buildLog writes sequences 1..n with o, closes the log and returns the
// segment files as a crash after the last sync leaves them: without the
// clean-end record, so that OpenLog scans them.
func buildLog(t *testing.T, o LogOptions, n uint64) map[string][]byte {
	t.Helper()
	m := vfs.NewMem()
	o.FS = m
	l, _ := mustOpenLog(t, o)
	appendSeqs(t, l, 1, n, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	fs := files(t, m, logDir)
	if _, ok := fs[cleanPath]; !ok {
		t.Fatal("a clean Close left no clean-end record")
	}
	delete(fs, cleanPath)
	return fs
}

var cleanPath = filepath.Join(logDir, cleanFile)

func lastSegment(t *testing.T, fs map[string][]byte) uint64 {
	t.Helper()
	var last uint64
	for i := uint64(0); ; i++ {
		if _, ok := fs[segName(i)]; !ok {
			if i == 0 {
				t.Fatal("no segment 0")
			}
			return last
		}
		last = i
	}
}

func copyFiles(fs map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range fs {
		out[k] = append([]byte(nil), v...)
	}
	return out
}

// TestTornTail cuts or flips a bit at every byte of the last records
// (invariant 4). A cut, or a flip in the last record, is a torn tail: the
// log reopens with exactly the records before the damaged one, reports
// the cut, and goes on from there. A flip in a record that valid records
// follow is damage to acknowledged data: ErrCorrupt, nothing cut.
func TestTornTail(t *testing.T) {
	o := logOpts(nil)
	long := buildLog(t, o, 200)
	if lastSegment(t, long) == 0 {
		t.Fatal("want at least two segments")
	}
	// A log whose last segment holds only its first two records.
	first := segRecords(long[segName(lastSegment(t, long))], lastSegment(t, long))[0].seq
	short := buildLog(t, o, first+1)

	for _, img := range []struct {
		name string
		fs   map[string][]byte
		recs int // how many of the last records to damage
	}{{"mid-segment", long, 3}, {"segment start", short, 2}} {
		seg := lastSegment(t, img.fs)
		spans := segRecords(img.fs[segName(seg)], seg)
		if len(spans) < img.recs {
			t.Fatalf("%s: %d records in the last segment", img.name, len(spans))
		}
		spans = spans[len(spans)-img.recs:]
		last := spans[len(spans)-1].seq
		for _, mode := range []string{"truncate", "flip"} {
			t.Run(img.name+"/"+mode, func(t *testing.T) {
				t.Parallel()
				for _, k := range spans {
					for p := k.start; p < k.end; p++ {
						fs := copyFiles(img.fs)
						b := fs[segName(seg)]
						if mode == "truncate" {
							fs[segName(seg)] = b[:p]
						} else {
							b[p] ^= 1 << (p % 8)
						}
						what := fmt.Sprintf("%s at byte %d of record %d (offset %d)", mode, p-k.start, k.seq, p)
						if mode == "flip" && k.seq != last {
							checkCorrupt(t, what, fs, seg, k.start, k.seq-1, k.seq+1)
							continue
						}
						wantTorn := ""
						if mode == "flip" || p > k.start {
							wantTorn = fmt.Sprintf("segment %d offset %d", seg, k.start)
						}
						checkTorn(t, what, fs, k.seq-1, wantTorn)
					}
				}
			})
		}
	}
}

// checkTorn opens the damaged log in fs and checks it holds 1..keep, then
// appends after it and reads everything back after another reopen.
func checkTorn(t *testing.T, what string, fs map[string][]byte, keep uint64, wantTorn string) {
	t.Helper()
	m := memWith(t, fs)
	o := logOpts(m)
	l, rep, err := OpenLog(o)
	if err != nil {
		t.Fatalf("%s: OpenLog: %v", what, err)
	}
	if rep.FirstSeq != 1 || rep.LastSeq != keep || rep.TornAt != wantTorn {
		l.Close()
		t.Fatalf("%s: report %+v, want sequences 1..%d, TornAt %q", what, rep, keep, wantTorn)
	}
	if l.Next() != keep+1 {
		t.Fatalf("%s: Next %d, want %d", what, l.Next(), keep+1)
	}
	checkSeqs(t, readAll(t, l, 1), 1, keep, gen0)
	// New records, with other contents, go where the torn ones were.
	appendSeqs(t, l, keep+1, keep+5, 1)
	if err := l.Close(); err != nil {
		t.Fatalf("%s: Close: %v", what, err)
	}
	l, rep, err = OpenLog(o)
	if err != nil {
		t.Fatalf("%s: second OpenLog: %v", what, err)
	}
	defer l.Close()
	if rep.LastSeq != keep+5 || rep.TornAt != "" {
		t.Fatalf("%s: second report %+v, want last %d and nothing torn", what, rep, keep+5)
	}
	checkSeqs(t, readAll(t, l, 1), 1, keep+5, func(seq uint64) byte {
		if seq > keep {
			return 1
		}
		return 0
	})
}

// checkCorrupt opens the damaged log in fs twice: both times ErrCorrupt
// naming the segment, the offset of the bad record, the last good
// sequence and the next valid one, and the files are left as they were.
func checkCorrupt(t *testing.T, what string, fs map[string][]byte, seg uint64, off int64, good, next uint64) {
	t.Helper()
	m := memWith(t, fs)
	o := logOpts(m)
	var first string
	for i := range 2 {
		l, rep, err := OpenLog(o)
		if err == nil {
			l.Close()
			t.Fatalf("%s: open %d succeeded (report %+v), want ErrCorrupt", what, i+1, rep)
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: open %d: %v, want ErrCorrupt", what, i+1, err)
		}
		for _, w := range []string{segName(seg), fmt.Sprintf("offset %d:", off), fmt.Sprintf("sequence %d)", next),
			fmt.Sprintf("last good sequence is %d", good), fmt.Sprintf("sequences %d-%d", good+1, next-1), "resync"} {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("%s: error %q does not say %q", what, err, w)
			}
		}
		if i == 0 {
			first = err.Error()
		} else if err.Error() != first {
			t.Fatalf("%s: second open: %v, first: %s", what, err, first)
		}
	}
	after := files(t, m, logDir)
	for name, b := range fs {
		if !bytes.Equal(after[name], b) {
			t.Fatalf("%s: %s changed by a failed open", what, name)
		}
	}
}

// TestCorruptionBeforeTail: damage that no torn group can explain stops
// the log with ErrCorrupt naming the file and offset (invariant 4).
func TestCorruptionBeforeTail(t *testing.T) {
	o := logOpts(nil)
	three := buildLog(t, o, 300)
	if lastSegment(t, three) < 2 {
		t.Fatal("want three segments")
	}
	seg0 := segRecords(three[segName(0)], 0)
	seg1 := segRecords(three[segName(1)], 1)
	if seg0[len(seg0)-1].typ != TypeEnd || seg1[len(seg1)-1].typ != TypeEnd {
		t.Fatal("segments 0 and 1 should end with an End record")
	}

	// One big last segment, with groups of 1024 and, unaligned, 1000
	// bytes: valid records follow the damage from far and near.
	big := func(maxPending, maxRecord int) (LogOptions, map[string][]byte) {
		o := LogOptions{Dir: logDir, SegmentSize: 64 << 10, MaxPending: maxPending, MaxRecord: maxRecord}
		return o, buildLog(t, o, 350)
	}
	bigAligned, bigAlignedFS := big(1024, 512)
	bigOdd, bigOddFS := big(1000, 500)

	flip := func(fs map[string][]byte, seg uint64, off int64) map[string][]byte {
		fs = copyFiles(fs)
		fs[segName(seg)][off+HeaderSize+3] ^= 0x10
		return fs
	}
	middle := func(spans []recordSpan) recordSpan { return spans[len(spans)/2] }
	crafted := func(header uint64, seqs ...uint64) map[string][]byte {
		b := encodeSegHeader(redoMagic, 0, header)
		for _, s := range seqs {
			r := testRecord(s, 0)
			b, _ = AppendRecord(b, 0, &r)
		}
		return map[string][]byte{segName(0): append(b, make([]byte, 4096)...)}
	}
	bigSpans := segRecords(bigAlignedFS[segName(0)], 0)
	oddSpans := segRecords(bigOddFS[segName(0)], 0)

	for _, tc := range []struct {
		name string
		o    LogOptions
		fs   map[string][]byte
		want []string // in the error message
	}{
		{"record in the first segment", o, flip(three, 0, middle(seg0).start),
			[]string{segName(0), fmt.Sprintf("offset %d", middle(seg0).start), "checksum", "segment 1 follows"}},
		{"last record of a middle segment", o, flip(three, 1, seg1[len(seg1)-2].start),
			[]string{segName(1), fmt.Sprintf("offset %d", seg1[len(seg1)-2].start)}},
		{"end record of the first segment", o, flip(three, 0, seg0[len(seg0)-1].start-HeaderSize),
			[]string{segName(0), fmt.Sprintf("offset %d", seg0[len(seg0)-1].start)}},
		{"middle segment cut short", o, func() map[string][]byte {
			fs := copyFiles(three)
			fs[segName(1)] = fs[segName(1)][:middle(seg1).start+5]
			return fs
		}(), []string{segName(1), fmt.Sprintf("offset %d", middle(seg1).start)}},
		{"middle segment missing", o, func() map[string][]byte {
			fs := copyFiles(three)
			delete(fs, segName(1))
			return fs
		}(), []string{"segment 1 missing", segName(2)}},
		{"last segment, valid records far after", bigAligned, flip(bigAlignedFS, 0, bigSpans[20].start),
			[]string{segName(0), fmt.Sprintf("offset %d", bigSpans[20].start), "sequences 21-21", "acknowledged"}},
		{"last segment, valid records far after, unaligned", bigOdd, flip(bigOddFS, 0, oddSpans[20].start),
			[]string{segName(0), fmt.Sprintf("offset %d", oddSpans[20].start), "sequences 21-21"}},
		{"last segment, valid records within the last group's reach", bigAligned, flip(bigAlignedFS, 0, bigSpans[len(bigSpans)-3].start),
			[]string{segName(0), fmt.Sprintf("offset %d", bigSpans[len(bigSpans)-3].start), "sequences 348-348", "not a torn tail"}},
		{"sequence gap", o, crafted(1, 1, 2, 4, 5), []string{segName(0), "sequence 4 follows 2"}},
		{"first record against the header", o, crafted(5, 1, 2), []string{segName(0), "first record has sequence 1, header says 5"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.FS = memWith(t, tc.fs)
			l, rep, err := OpenLog(tc.o)
			if err == nil {
				l.Close()
				t.Fatalf("OpenLog succeeded (report %+v), want ErrCorrupt", rep)
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("OpenLog: %v, want ErrCorrupt", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestTornTailGarbageAfter: in one big last segment, a record cut short
// or damaged with nothing valid after it but bytes that are no record of
// this segment (stale records of the file's earlier life, random bytes,
// records whose sequence does not follow) is a torn tail, however far
// those bytes reach; the next open after appends finds nothing to cut.
func TestTornTailGarbageAfter(t *testing.T) {
	o := LogOptions{Dir: logDir, SegmentSize: 64 << 10, MaxPending: 1024, MaxRecord: 512}
	fs := buildLog(t, o, 350)
	img := fs[segName(0)]
	spans := segRecords(img, 0)
	lastRec := spans[len(spans)-1]
	for _, tc := range []struct {
		name string
		fill func(b []byte, at int64)
	}{
		{"stale records of segment 7", func(b []byte, at int64) {
			var rb []byte
			for seq := uint64(400); len(rb) < len(b)-int(at); seq++ {
				r := testRecord(seq, 3)
				rb, _ = AppendRecord(rb, 7, &r)
			}
			copy(b[at:], rb)
		}},
		{"random bytes", func(b []byte, at int64) {
			x := uint64(0x9e3779b97f4a7c15)
			for i := at; i < int64(len(b)); i++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				b[i] = byte(x)
			}
		}},
		{"old records of this segment", func(b []byte, at int64) {
			// Sequences that do not follow the cut: not this log's future.
			var rb []byte
			for seq := uint64(1); len(rb) < len(b)-int(at); seq++ {
				r := testRecord(seq, 3)
				rb, _ = AppendRecord(rb, 0, &r)
			}
			copy(b[at:], rb)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := copyFiles(fs)
			b := fs[segName(0)]
			// The last record cut short, garbage from its middle on.
			tc.fill(b, lastRec.start+16)
			o.FS = memWith(t, fs)
			l, rep, err := OpenLog(o)
			if err != nil {
				t.Fatal(err)
			}
			if rep.LastSeq != lastRec.seq-1 || rep.TornAt != fmt.Sprintf("segment 0 offset %d", lastRec.start) {
				l.Close()
				t.Fatalf("report %+v, want last %d, torn at %d", rep, lastRec.seq-1, lastRec.start)
			}
			checkSeqs(t, readAll(t, l, 1), 1, lastRec.seq-1, gen0)
			appendSeqs(t, l, lastRec.seq, lastRec.seq+3, 1)
			l.Close()
			// A crash now: no clean-end record, the scan finds the new end.
			if err := o.FS.Remove(cleanPath); err != nil {
				t.Fatal(err)
			}
			l, rep, err = OpenLog(o)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			if rep.LastSeq != lastRec.seq+3 || rep.Clean {
				t.Fatalf("after appends: report %+v, want last %d from a scan", rep, lastRec.seq+3)
			}
		})
	}
}
