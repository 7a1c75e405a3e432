package journal

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// buildLog writes sequences 1..n with o, closes the log and returns the
// segment files.
func buildLog(t *testing.T, o LogOptions, n uint64) map[string][]byte {
	t.Helper()
	m := vfs.NewMem()
	o.FS = m
	l, _ := mustOpenLog(t, o)
	appendSeqs(t, l, 1, n, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return files(t, m, logDir)
}

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
// (invariant 4): the log reopens with exactly the records before the
// damaged one, reports the cut, and goes on from there.
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
						wantTorn := ""
						if mode == "flip" || p > k.start {
							wantTorn = fmt.Sprintf("segment %d offset %d", seg, k.start)
						}
						checkTorn(t, fmt.Sprintf("%s at byte %d of record %d (offset %d)", mode, p-k.start, k.seq, p),
							fs, k.seq-1, wantTorn, mode == "flip" && k.seq != last)
					}
				}
			})
		}
	}
}

// checkTorn opens the damaged log in fs and checks it holds 1..keep, then
// appends after it and reads everything back after another reopen.
func checkTorn(t *testing.T, what string, fs map[string][]byte, keep uint64, wantTorn string, wantZeroed bool) {
	t.Helper()
	m := memWith(t, fs)
	o := logOpts(m)
	l, rep, err := OpenLog(o)
	if err != nil {
		t.Fatalf("%s: OpenLog: %v", what, err)
	}
	if rep.FirstSeq != 1 || rep.LastSeq != keep || rep.TornAt != wantTorn || (rep.TornBytes > 0) != wantZeroed {
		l.Close()
		t.Fatalf("%s: report %+v, want sequences 1..%d, TornAt %q, zeroed %v", what, rep, keep, wantTorn, wantZeroed)
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

	// One big last segment; the windows a torn group can reach are
	// MaxPending+MaxRecord+HeaderSize: 1560 and, unaligned, 1524 bytes.
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
			[]string{segName(0), fmt.Sprintf("offset %d", bigSpans[20].start), "valid records after it"}},
		{"last segment, valid records far after, unaligned window", bigOdd, flip(bigOddFS, 0, oddSpans[20].start),
			[]string{segName(0), fmt.Sprintf("offset %d", oddSpans[20].start), "valid records after it"}},
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

// TestTornTailWindowEdge: in one big last segment, damage whose valid
// successors all start within a group's reach is a torn tail; the valid
// records after it are zeroed so they can never come back.
func TestTornTailWindowEdge(t *testing.T) {
	for _, o := range []LogOptions{
		{Dir: logDir, SegmentSize: 64 << 10, MaxPending: 1024, MaxRecord: 512},
		{Dir: logDir, SegmentSize: 64 << 10, MaxPending: 1000, MaxRecord: 500},
	} {
		t.Run(fmt.Sprintf("MaxPending %d MaxRecord %d", o.MaxPending, o.MaxRecord), func(t *testing.T) {
			fs := buildLog(t, o, 350)
			spans := segRecords(fs[segName(0)], 0)
			window := int64(o.MaxPending + o.MaxRecord + HeaderSize)
			// The earliest record all of whose successors start within
			// the window after it.
			last := spans[len(spans)-1].start
			k := len(spans) - 1
			for k > 0 && last < spans[k-1].start+window {
				k--
			}
			d := spans[k]
			fs[segName(0)][d.start+HeaderSize+1] ^= 1
			o.FS = memWith(t, fs)
			l, rep, err := OpenLog(o)
			if err != nil {
				t.Fatalf("damage %d bytes before the last record: %v", last-d.start, err)
			}
			if rep.LastSeq != d.seq-1 || rep.TornBytes == 0 {
				t.Fatalf("report %+v, want last %d and bytes zeroed", rep, d.seq-1)
			}
			checkSeqs(t, readAll(t, l, 1), 1, d.seq-1, gen0)
			l.Close()
			img, _ := o.FS.(*vfs.Mem).ReadFile(segName(0))
			for off := d.start; off < int64(len(img)); off += 8 {
				if r, _, err := DecodeRecord(img[off:], 0); err == nil {
					t.Fatalf("record %d still valid at offset %d after the cut at %d", r.Seq, off, d.start)
				}
			}
			// One record earlier it is no longer a torn tail.
			fs = copyFiles(fs)
			fs[segName(0)][spans[k-1].start+HeaderSize+1] ^= 1
			o.FS = memWith(t, fs)
			if l, _, err := OpenLog(o); !errors.Is(err, ErrCorrupt) {
				if l != nil {
					l.Close()
				}
				t.Fatalf("damage at record %d, %d bytes before the last: %v, want ErrCorrupt", spans[k-1].seq, last-spans[k-1].start, err)
			}
		})
	}
}
