package wire

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash/crc32"
	"io"
	"runtime"
	"strings"
	"testing"
)

// TestGoldenFrame pins the byte layout: a change here breaks every peer
// already deployed.
func TestGoldenFrame(t *testing.T) {
	var b bytes.Buffer
	e := NewEncoder(&b)
	if err := e.Encode(&Ack{Disk: 7, Seq: 42, Backlog: 1 << 20, FreeJournal: 5 << 30}); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	const golden = "" +
		"4d545752" + "01" + "0d" + "0000" + // magic "MTWR", version 1, type ack (13), flags
		"0100000000000000" + // sequence 1
		"07000000" + "18000000" + // disk 7, payload length 24
		"00000000" + "51bfb01e" + // reserved, header CRC-32C
		"2a00000000000000" + "0000100000000000" + "0000004001000000" + // seq 42, backlog 1 MiB, free 5 GiB
		"e6d156cc" + "00000000" // payload CRC-32C, padding to 64 bytes
	got := hex.EncodeToString(b.Bytes())
	if got != golden {
		t.Fatalf("frame bytes\n got %s\nwant %s", got, golden)
	}
	// The checksums are what the documentation says they are.
	raw := b.Bytes()
	if c := crc32.Checksum(raw[:28], castagnoli); binary.LittleEndian.Uint32(raw[28:]) != c {
		t.Errorf("header CRC is not CRC-32C of bytes 0-27")
	}
	if c := crc32.Update(binary.LittleEndian.Uint32(raw[28:]), castagnoli, raw[32:56]); binary.LittleEndian.Uint32(raw[56:]) != c {
		t.Errorf("payload CRC does not continue the header CRC")
	}
	if len(raw) != FrameSize(24) || len(raw)%8 != 0 {
		t.Errorf("frame is %d bytes, FrameSize says %d", len(raw), FrameSize(24))
	}
}

func TestFrameRoundTripAllPaddings(t *testing.T) {
	var b bytes.Buffer
	e := NewEncoder(&b)
	for n := range 20 {
		p := bytes.Repeat([]byte{byte(n + 1)}, n)
		if err := e.WriteFrame(TypeCredit, 0, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(&b)
	for n := range 20 {
		f, err := d.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", n+1, err)
		}
		if f.Seq != uint64(n+1) || f.Type != TypeCredit || !bytes.Equal(f.Payload, bytes.Repeat([]byte{byte(n + 1)}, n)) {
			t.Fatalf("frame %d: got %+v", n+1, f)
		}
	}
	if _, err := d.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

// smallFrames is two frames: a valid one, then the one under test.
func smallFrame(t *testing.T, m Message) []byte {
	t.Helper()
	var b bytes.Buffer
	e := NewEncoder(&b)
	if err := e.Encode(m); err != nil {
		t.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestEveryBitFlip flips each bit of small frames (header, payload, CRC,
// padding): each flip must give a named error, never a panic and never a
// message.
func TestEveryBitFlip(t *testing.T) {
	for _, m := range []Message{
		&Tag{Disk: 1, Seq: 45, Time: t0, Name: "hourly", App: "FS", ID: "x"},
		&Write{Disk: 3, Seq: 9, Offset: 4096, Time: t0, Data: []byte("abcdefgh12345")},
		&Credit{Bytes: 1},
	} {
		good := smallFrame(t, m)
		for bit := range len(good) * 8 {
			bad := bytes.Clone(good)
			bad[bit/8] ^= 1 << (bit % 8)
			got, err := NewDecoder(bytes.NewReader(bad)).Decode()
			if err == nil {
				t.Fatalf("%v: bit %d flipped: accepted %+v", m.Type(), bit, got)
			}
			if !isFrameError(err) {
				t.Fatalf("%v: bit %d flipped: %v is not a named error", m.Type(), bit, err)
			}
			if got != nil {
				t.Fatalf("%v: bit %d flipped: message returned with the error", m.Type(), bit)
			}
		}
	}
}

// TestTruncated cuts a frame at every length: io.EOF at a frame boundary,
// io.ErrUnexpectedEOF inside.
func TestTruncated(t *testing.T) {
	var b []byte
	b = append(b, smallFrame(t, &Credit{Bytes: 1})...)
	two := smallFrame(t, &Write{Disk: 3, Seq: 9, Offset: 4096, Time: t0, Data: []byte("abcdefgh12345")})
	f := Frame{Type: TypeWrite, Seq: 2, Disk: 3}
	f.Payload = two[HeaderSize : HeaderSize+int(binary.LittleEndian.Uint32(two[20:]))]
	b = AppendFrame(b, f)
	first := FrameSize(8)
	for n := range len(b) {
		d := NewDecoder(bytes.NewReader(b[:n]))
		var err error
		for err == nil {
			_, err = d.Decode()
		}
		want := io.ErrUnexpectedEOF
		if n == 0 || n == first {
			want = io.EOF
		}
		if err != want {
			t.Fatalf("cut at %d of %d: %v, want %v", n, len(b), err, want)
		}
	}
}

// header builds a valid header for payload length n.
func header(typ Type, seq uint64, disk uint32, n uint32) []byte {
	h := make([]byte, HeaderSize)
	putHeader(h, &Frame{Type: typ, Seq: seq, Disk: disk}, 0)
	binary.LittleEndian.PutUint32(h[20:], n)
	fixHeaderCRC(h)
	return h
}

func fixHeaderCRC(h []byte) {
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
}

// TestOversizedBeforeAllocation: a header claiming a huge payload is
// refused from the header alone, without allocating the claim.
func TestOversizedBeforeAllocation(t *testing.T) {
	for _, tc := range []struct {
		max   int
		claim uint32
	}{
		{0, MaxPayload + 1},
		{0, 0xffffffff},
		{1 << 10, 1<<10 + 1},
	} {
		d := NewDecoder(bytes.NewReader(header(TypeWrite, 1, 1, tc.claim)))
		d.SetMaxPayload(tc.max)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := d.ReadFrame()
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrTooLarge) {
			t.Fatalf("claim %d with max %d: %v, want ErrTooLarge", tc.claim, tc.max, err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<10 {
			t.Fatalf("claim %d: allocated %d bytes before refusing", tc.claim, grew)
		}
	}
	// At the limit is fine (and the missing payload is a truncation).
	d := NewDecoder(bytes.NewReader(header(TypeWrite, 1, 1, 1<<10)))
	d.SetMaxPayload(1 << 10)
	if _, err := d.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("claim at the limit: %v, want io.ErrUnexpectedEOF", err)
	}
	// The encoder refuses to write what a decoder would refuse.
	var b bytes.Buffer
	e := NewEncoder(&b)
	e.SetMaxPayload(100)
	if err := e.WriteFrame(TypeWrite, 1, make([]byte, 101)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encode oversized: %v", err)
	}
	if err := e.Encode(&Write{Disk: 1, Seq: 1, Data: make([]byte, MaxPayload+1)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encode oversized write: %v", err)
	}
	big := &Write{Disk: 1, Seq: 1, Data: make([]byte, 2<<20), Compression: CompressZstd}
	if err := e.Encode(big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encode 2 MiB of zeros compressed, maximum 100 bytes: %v", err)
	}
	if e.Flush(); b.Len() != 0 || e.Seq() != 0 {
		t.Fatalf("refused frames wrote %d bytes, seq %d", b.Len(), e.Seq())
	}
}

// TestCompressedDataHeldToMaximum: compression does not let data past
// the receiver's maximum payload.
func TestCompressedDataHeldToMaximum(t *testing.T) {
	var b bytes.Buffer
	e := NewEncoder(&b)
	if err := e.Encode(&Write{Disk: 1, Seq: 1, Data: make([]byte, 2<<20), Compression: CompressZstd}); err != nil {
		t.Fatal(err)
	}
	e.Flush()
	if b.Len() > 64<<10 {
		t.Fatalf("2 MiB of zeros compressed to %d bytes", b.Len())
	}
	d := NewDecoder(bytes.NewReader(b.Bytes()))
	d.SetMaxPayload(1 << 20)
	if _, err := d.Decode(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "declared data length") {
		t.Fatalf("decoder with a 1 MiB maximum: %v", err)
	}
	if m, err := NewDecoder(bytes.NewReader(b.Bytes())).Decode(); err != nil || len(m.(*Write).Data) != 2<<20 {
		t.Fatalf("decoder with the default maximum: %v", err)
	}
}

func TestSequence(t *testing.T) {
	frame := func(seq uint64) []byte {
		return AppendFrame(nil, Frame{Type: TypeCredit, Seq: seq, Payload: []byte{1, 0, 0, 0, 0, 0, 0, 0}})
	}
	for _, tc := range []struct {
		name string
		seqs []uint64
		bad  int // index of the frame refused
	}{
		{"first is not 1", []uint64{2}, 0},
		{"first is 0", []uint64{0}, 0},
		{"gap", []uint64{1, 2, 4}, 2},
		{"repeat", []uint64{1, 2, 2}, 2},
		{"backwards", []uint64{1, 2, 3, 1}, 3},
	} {
		var b []byte
		for _, s := range tc.seqs {
			b = append(b, frame(s)...)
		}
		d := NewDecoder(bytes.NewReader(b))
		for i := range tc.seqs {
			_, err := d.Decode()
			if i < tc.bad && err != nil {
				t.Fatalf("%s: frame %d: %v", tc.name, i, err)
			}
			if i == tc.bad && !errors.Is(err, ErrSequence) {
				t.Fatalf("%s: frame %d: %v, want ErrSequence", tc.name, i, err)
			}
		}
		// The error sticks: the stream cannot be trusted past it.
		if _, err := d.Decode(); !errors.Is(err, ErrSequence) {
			t.Fatalf("%s: after the error: %v", tc.name, err)
		}
	}
}

// TestHeaderRules covers the checks behind a valid header CRC: a peer
// that computes the CRC but breaks a rule.
func TestHeaderRules(t *testing.T) {
	good := smallFrame(t, &Credit{Bytes: 1})
	for _, tc := range []struct {
		name  string
		patch func(h []byte)
		want  error
	}{
		{"magic", func(h []byte) { copy(h, "HTTP") }, ErrMagic},
		{"version 0", func(h []byte) { h[4] = 0 }, ErrFrameVersion},
		{"version 2", func(h []byte) { h[4] = 2 }, ErrFrameVersion},
		{"type 0", func(h []byte) { h[5] = 0 }, ErrUnknownType},
		{"type 17", func(h []byte) { h[5] = byte(maxType) + 1 }, ErrUnknownType},
		{"type 255", func(h []byte) { h[5] = 255 }, ErrUnknownType},
		{"flags", func(h []byte) { h[6] = 1 }, ErrMalformed},
		{"reserved", func(h []byte) { h[26] = 1 }, ErrMalformed},
	} {
		bad := bytes.Clone(good)
		tc.patch(bad)
		fixHeaderCRC(bad)
		_, err := NewDecoder(bytes.NewReader(bad)).Decode()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Frames valid as frames, whose header and payload disagree with the
	// message type.
	for _, tc := range []struct {
		name string
		f    Frame
	}{
		{"disk on a connection message", Frame{Type: TypeCredit, Seq: 1, Disk: 1, Payload: []byte{1, 0, 0, 0, 0, 0, 0, 0}}},
		{"no disk on a disk message", Frame{Type: TypeAck, Seq: 1, Payload: make([]byte, 24)}},
		{"payload too short for its type", Frame{Type: TypeAck, Seq: 1, Disk: 1, Payload: make([]byte, 8)}},
	} {
		_, err := NewDecoder(bytes.NewReader(AppendFrame(nil, tc.f))).Decode()
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
	// Nonzero padding behind a valid payload CRC.
	f := AppendFrame(nil, Frame{Type: TypeCredit, Seq: 1, Payload: []byte{1, 0, 0, 0, 0, 0, 0, 0, 0}})
	f[len(f)-1] = 1
	if _, err := NewDecoder(bytes.NewReader(f)).ReadFrame(); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "padding") {
		t.Errorf("nonzero padding: %v", err)
	}
	// The encoder refuses unknown types.
	if err := NewEncoder(io.Discard).WriteFrame(0, 0, nil); !errors.Is(err, ErrUnknownType) {
		t.Errorf("encode type 0: %v", err)
	}
}

func TestStickyWriteError(t *testing.T) {
	e := NewEncoder(failWriter{})
	if err := e.WriteFrame(TypeCredit, 0, make([]byte, 128<<10)); err == nil {
		t.Fatal("write to a failing writer succeeded")
	}
	if err := e.Flush(); err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("after a write error: %v", err)
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk on fire") }

// TestReuseBuffer: by default each payload is the caller's to keep; with
// SetReuseBuffer it is valid until the next read, and the frames are just
// as checked.
func TestReuseBuffer(t *testing.T) {
	var b bytes.Buffer
	e := NewEncoder(&b)
	e.Encode(&Write{Disk: 1, Seq: 1, Data: []byte("first write")})
	e.Encode(&Write{Disk: 1, Seq: 2, Data: []byte("second one!")})
	e.Flush()
	stream := b.Bytes()

	d := NewDecoder(bytes.NewReader(stream))
	m1, _ := d.Decode()
	m2, err := d.Decode()
	if err != nil || string(m1.(*Write).Data) != "first write" || string(m2.(*Write).Data) != "second one!" {
		t.Fatalf("default: %q then %q, %v", m1.(*Write).Data, m2.(*Write).Data, err)
	}

	d = NewDecoder(bytes.NewReader(stream))
	d.SetReuseBuffer(true)
	m1, _ = d.Decode()
	if string(m1.(*Write).Data) != "first write" {
		t.Fatalf("reuse: first %q", m1.(*Write).Data)
	}
	m2, err = d.Decode()
	if err != nil || string(m2.(*Write).Data) != "second one!" {
		t.Fatalf("reuse: second %q, %v", m2.(*Write).Data, err)
	}
	if string(m1.(*Write).Data) != "second one!" {
		t.Fatalf("reuse: the buffer was not reused (first now %q)", m1.(*Write).Data)
	}
	bad := bytes.Clone(stream)
	bad[len(bad)-9] ^= 1
	d = NewDecoder(bytes.NewReader(bad))
	d.SetReuseBuffer(true)
	d.Decode()
	if _, err := d.Decode(); !errors.Is(err, ErrPayloadCRC) {
		t.Fatalf("reuse: corrupt second frame: %v", err)
	}
}
