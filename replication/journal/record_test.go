package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
	"time"
)

func TestTypeString(t *testing.T) {
	for _, tc := range []struct {
		t    Type
		want string
	}{{TypeWrite, "write"}, {TypeTag, "tag"}, {TypeEnd, "end"}, {TypeUndo, "undo"}, {0, "type(0)"}, {9, "type(9)"}} {
		if got := tc.t.String(); got != tc.want {
			t.Errorf("Type(%d).String() = %q, want %q", uint8(tc.t), got, tc.want)
		}
	}
}

func codecCases() []struct {
	name string
	r    Record
} {
	at := time.Date(2026, 5, 4, 3, 2, 1, 987654321, time.UTC)
	return []struct {
		name string
		r    Record
	}{
		{"write", Record{Type: TypeWrite, Flags: FlagResync, Seq: 42, Offset: 1 << 40, Time: at, Data: []byte("hello, world")}},
		{"write empty", Record{Type: TypeWrite, Seq: 1, Time: at}},
		{"write aligned", Record{Type: TypeWrite, Seq: 1<<63 + 5, Offset: 512, Time: at, Data: bytes.Repeat([]byte{0xa5}, 4096)}},
		{"write before 1970", Record{Type: TypeWrite, Seq: 7, Offset: 0, Time: time.Date(1901, 1, 1, 0, 0, 0, 1, time.UTC), Data: []byte{0}}},
		{"undo", Record{Type: TypeUndo, Seq: 99, Offset: 8 << 30, Time: at, Data: bytes.Repeat([]byte("before"), 100)}},
		{"tag", Record{Type: TypeTag, Seq: 10, Time: at, Tag: &TagInfo{Name: "hourly", App: AppFS, ID: "7d3c0a4e-0000-4000-8000-000000000001", Time: at}}},
		{"tag empty fields", Record{Type: TypeTag, Seq: 11, Time: at, Tag: &TagInfo{Time: at}}},
		{"tag unicode", Record{Type: TypeTag, Seq: 12, Time: at, Tag: &TagInfo{Name: "nächtlich ✓", App: "SQL", ID: "x", Time: at}}},
		{"end", Record{Type: TypeEnd, Seq: 77}},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	prefix := []byte("prefix!!")
	for _, tc := range codecCases() {
		t.Run(tc.name, func(t *testing.T) {
			const seg = 5
			b, err := AppendRecord(append([]byte(nil), prefix...), seg, &tc.r)
			if err != nil {
				t.Fatalf("AppendRecord: %v", err)
			}
			if !bytes.Equal(b[:len(prefix)], prefix) {
				t.Fatalf("AppendRecord changed the bytes before it: %q", b[:len(prefix)])
			}
			enc := b[len(prefix):]
			if len(enc) != tc.r.Len() || len(enc)%8 != 0 {
				t.Fatalf("encoded %d bytes, Len() = %d; want equal and 8-aligned", len(enc), tc.r.Len())
			}
			// Trailing bytes (the next record) do not change the decoding.
			got, n, err := DecodeRecord(append(enc, 1, 2, 3, 4, 5, 6, 7, 8), seg)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if n != len(enc) {
				t.Errorf("DecodeRecord length %d, want %d", n, len(enc))
			}
			if d := diffRecord(got, tc.r); d != "" {
				t.Errorf("decoded record differs: %s", d)
			}
			again, err := AppendRecord(nil, seg, &got)
			if err != nil || !bytes.Equal(again, enc) {
				t.Errorf("re-encoding the decoded record gives other bytes (err %v)", err)
			}
			// A record of segment 5 left in the file reused as segment 6
			// must not pass for one of segment 6.
			if _, _, err := DecodeRecord(enc, seg+1); !isBad(err, "checksum") {
				t.Errorf("decoding as segment %d: err %v, want a checksum error", seg+1, err)
			}
		})
	}
}

// TestRecordLayout pins the byte layout the package doc promises.
func TestRecordLayout(t *testing.T) {
	r := Record{Type: TypeWrite, Flags: FlagResync, Seq: 0x0102030405060708, Offset: 0x1000, Time: time.Unix(0, 0x20), Data: []byte("ab")}
	b, err := AppendRecord(nil, 3, &r)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	want := make([]byte, 48)
	le.PutUint32(want[0:], 18) // payload: offset, time, "ab"
	want[4], want[5] = byte(TypeWrite), FlagResync
	le.PutUint64(want[8:], 0x0102030405060708)
	le.PutUint64(want[24:], 0x1000)
	le.PutUint64(want[32:], 0x20)
	copy(want[40:], "ab")
	var seg [8]byte
	le.PutUint64(seg[:], 3)
	crc := crc32.Update(crc32.Update(crc32.Update(0, castagnoli, seg[:]), castagnoli, want[:16]), castagnoli, want[24:42])
	le.PutUint32(want[16:], crc)
	if !bytes.Equal(b, want) {
		t.Fatalf("encoding\n got %x\nwant %x", b, want)
	}
}

// isBad reports whether err is a decoding error whose text holds why.
func isBad(err error, why string) bool {
	var bad *errBad
	return errors.As(err, &bad) && strings.Contains(bad.why, why)
}

// reCRC recomputes the checksum of the record at the start of b for seg, so
// a test can build records that are well formed but wrong in other ways.
func reCRC(b []byte, seg uint64) {
	if len(b) < HeaderSize {
		return
	}
	pl := int(binary.LittleEndian.Uint32(b))
	if pl > MaxPayload || HeaderSize+pl > len(b) {
		return
	}
	binary.LittleEndian.PutUint32(b[16:], recordCRC(seg, b[:16], b[HeaderSize:HeaderSize+pl]))
}

func TestDecodeRecordBad(t *testing.T) {
	enc := func(r Record) []byte {
		b, err := AppendRecord(nil, 1, &r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	write := func() []byte {
		return enc(Record{Type: TypeWrite, Seq: 3, Offset: 8, Time: t0, Data: []byte("abcde")}) // 3 bytes of padding
	}
	tag := func() []byte {
		return enc(Record{Type: TypeTag, Seq: 4, Tag: &TagInfo{Name: "n", App: "a", ID: "i", Time: t0}})
	}
	le := binary.LittleEndian
	for _, tc := range []struct {
		name string
		b    func() []byte
		why  string
	}{
		{"empty", func() []byte { return nil }, "short header"},
		{"short header", func() []byte { return write()[:HeaderSize-1] }, "short header"},
		{"zeros", func() []byte { return make([]byte, 64) }, "bad type 0"},
		{"type 5", func() []byte { b := write(); b[4] = 5; reCRC(b, 1); return b }, "bad type 5"},
		{"length past MaxPayload", func() []byte { b := write(); le.PutUint32(b, MaxPayload+1); return b }, "bad length"},
		{"length past end", func() []byte { b := write(); le.PutUint32(b, 64); return b }, "past end"},
		{"truncated payload", func() []byte { return write()[:HeaderSize+16] }, "past end"},
		{"truncated padding", func() []byte { b := write(); return b[:len(b)-1] }, "past end"},
		{"payload bit flip", func() []byte { b := write(); b[HeaderSize+17] ^= 4; return b }, "checksum"},
		{"sequence bit flip", func() []byte { b := write(); b[9] ^= 1; return b }, "checksum"},
		{"flags bit flip", func() []byte { b := write(); b[5] ^= 0x80; return b }, "checksum"},
		{"checksum bit flip", func() []byte { b := write(); b[18] ^= 1; return b }, "checksum"},
		{"reserved bytes 6-7", func() []byte { b := write(); b[7] = 1; reCRC(b, 1); return b }, "reserved"},
		{"reserved bytes 20-23", func() []byte { b := write(); b[21] = 1; return b }, "reserved"},
		{"nonzero padding", func() []byte { b := write(); b[len(b)-1] = 1; return b }, "padding"},
		{"short write payload", func() []byte {
			b := write()
			le.PutUint32(b, 8)
			b = b[:HeaderSize+8]
			reCRC(b, 1)
			return b
		}, "short write payload"},
		{"negative offset", func() []byte { b := write(); b[HeaderSize+7] = 0x80; reCRC(b, 1); return b }, "negative offset"},
		{"short tag payload", func() []byte {
			b := enc(Record{Type: TypeEnd, Seq: 4})
			b[4] = byte(TypeTag)
			le.PutUint32(b, 0)
			reCRC(b, 1)
			return b
		}, "short tag payload"},
		{"tag string past payload", func() []byte { b := tag(); b[HeaderSize+8] = 200; reCRC(b, 1); return b }, "short tag payload"},
		{"tag trailing bytes", func() []byte {
			b := tag() // payload 17 bytes: grow it by one byte inside the padding
			le.PutUint32(b, le.Uint32(b)+1)
			reCRC(b, 1)
			return b
		}, "trailing"},
		{"end with payload", func() []byte {
			b := append(enc(Record{Type: TypeEnd, Seq: 4}), make([]byte, 8)...)
			le.PutUint32(b, 8)
			reCRC(b, 1)
			return b
		}, "end record with payload"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, n, err := DecodeRecord(tc.b(), 1)
			if !isBad(err, tc.why) {
				t.Fatalf("DecodeRecord = %+v, %d, %v; want an *errBad saying %q", r, n, err, tc.why)
			}
			if n != 0 {
				t.Errorf("length %d with an error, want 0", n)
			}
		})
	}
}

func TestAppendRecordRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r       Record
		tooBig  bool
		message string
	}{
		{"payload past MaxPayload", Record{Type: TypeWrite, Seq: 1, Data: make([]byte, MaxPayload-writeFixed+1)}, true, "record too large"},
		{"payload at MaxPayload", Record{Type: TypeUndo, Seq: 1, Data: make([]byte, MaxPayload-writeFixed)}, false, ""},
		{"tag name past 64 KiB", Record{Type: TypeTag, Seq: 1, Tag: &TagInfo{Name: strings.Repeat("n", 0x10000)}}, true, "tag fields"},
		{"tag id past 64 KiB", Record{Type: TypeTag, Seq: 1, Tag: &TagInfo{ID: strings.Repeat("i", 0x10000)}}, true, "tag fields"},
		{"tag without TagInfo", Record{Type: TypeTag, Seq: 1}, false, "without tag"},
		{"negative offset", Record{Type: TypeWrite, Seq: 1, Offset: -512}, false, "negative offset"},
		{"type 0", Record{Seq: 1}, false, "bad type"},
		{"type 5", Record{Type: 5, Seq: 1}, false, "bad type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := []byte{1, 2, 3}
			b, err := AppendRecord(prefix, 1, &tc.r)
			if tc.message == "" {
				if err != nil {
					t.Fatalf("AppendRecord: %v", err)
				}
				if _, _, err := DecodeRecord(b[len(prefix):], 1); err != nil {
					t.Fatalf("DecodeRecord: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("AppendRecord error %v, want one saying %q", err, tc.message)
			}
			if errors.Is(err, ErrTooLarge) != tc.tooBig {
				t.Errorf("errors.Is(%v, ErrTooLarge) = %v, want %v", err, !tc.tooBig, tc.tooBig)
			}
			if !bytes.Equal(b, prefix) {
				t.Errorf("AppendRecord wrote %d bytes on error", len(b)-len(prefix))
			}
		})
	}
}

// FuzzDecodeRecord: DecodeRecord never panics, and whatever it accepts is
// the canonical encoding of what it returns. With fix set the checksum is
// made right first, so the fuzzer gets past it into the payload parsing.
func FuzzDecodeRecord(f *testing.F) {
	for _, tc := range codecCases() {
		b, err := AppendRecord(nil, 5, &tc.r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint64(5), false)
		f.Add(b, uint64(6), false)
		f.Add(b[:len(b)-1], uint64(5), true)
	}
	f.Fuzz(func(t *testing.T, b []byte, seg uint64, fix bool) {
		if fix {
			b = append([]byte(nil), b...)
			reCRC(b, seg)
		}
		r, n, err := DecodeRecord(b, seg)
		if err != nil {
			var bad *errBad
			if !errors.As(err, &bad) {
				t.Fatalf("error %v is not an *errBad", err)
			}
			if n != 0 {
				t.Fatalf("length %d with an error", n)
			}
			return
		}
		if n < HeaderSize || n > len(b) || n%8 != 0 {
			t.Fatalf("length %d for %d input bytes", n, len(b))
		}
		if r.Len() != n {
			t.Fatalf("Len() = %d, decoded length %d", r.Len(), n)
		}
		again, err := AppendRecord(nil, seg, &r)
		if err != nil {
			t.Fatalf("re-encoding %+v: %v", r, err)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs\n got %x\nwant %x", again, b[:n])
		}
	})
}

// A zero record carries its length, not its bytes, and decodes to that
// many zeros; one whose data are not zero is refused, and a damaged
// length is named.
func TestZeroRecord(t *testing.T) {
	r := Record{Type: TypeUndo, Flags: FlagZero, Seq: 9, Offset: 4096, Time: time.Unix(5, 0).UTC(), Data: make([]byte, 1<<20)}
	b, err := AppendRecord(nil, 3, &r)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != HeaderSize+writeFixed+8 {
		t.Fatalf("a 1 MiB zero record takes %d bytes", len(b))
	}
	got, n, err := DecodeRecord(b, 3)
	if err != nil || n != len(b) {
		t.Fatalf("decode: %v, %d of %d bytes", err, n, len(b))
	}
	if got.Flags != FlagZero || got.Offset != 4096 || got.Seq != 9 || len(got.Data) != 1<<20 || !IsZero(got.Data) {
		t.Fatalf("decoded %+v (data %d bytes)", got.Flags, len(got.Data))
	}
	w := Record{Type: TypeWrite, Flags: FlagZero | FlagResync, Seq: 1, Data: []byte{0, 0, 1}}
	if _, err := AppendRecord(nil, 3, &w); err == nil {
		t.Error("a zero record with nonzero data was encoded")
	}
	// a length past the maximum, with a valid checksum
	binary.LittleEndian.PutUint64(b[HeaderSize+writeFixed:], MaxPayload)
	binary.LittleEndian.PutUint32(b[16:], recordCRC(3, b[:16], b[HeaderSize:HeaderSize+writeFixed+8]))
	if _, _, err := DecodeRecord(b, 3); err == nil || !strings.Contains(err.Error(), "bad zero record") {
		t.Errorf("a zero record of MaxPayload bytes: %v", err)
	}
}
