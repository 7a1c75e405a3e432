package wire

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
)

// TestMessageRoundTrip sends one message of each type through an Encoder
// and a Decoder and compares field by field.
func TestMessageRoundTrip(t *testing.T) {
	ms := sampleMessages()
	seen := map[Type]bool{}
	var b bytes.Buffer
	e := NewEncoder(&b)
	for _, m := range ms {
		if err := e.Encode(m); err != nil {
			t.Fatalf("encode %v: %v", m.Type(), err)
		}
		seen[m.Type()] = true
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	for typ := TypeHello; typ <= maxType; typ++ {
		if !seen[typ] {
			t.Errorf("no sample of %v", typ)
		}
	}
	got := frames(t, b.Bytes())
	if len(got) != len(ms) {
		t.Fatalf("%d messages back, sent %d", len(got), len(ms))
	}
	for i, m := range ms {
		if !reflect.DeepEqual(got[i], m) {
			t.Errorf("%v:\n got %+v\nwant %+v", m.Type(), got[i], m)
		}
	}
	// Marshal and Unmarshal alone agree with the frames.
	for _, m := range ms {
		p, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2 := newMessage(m.Type())
		if err := m2.Unmarshal(p); err != nil {
			t.Fatalf("unmarshal %v: %v", m.Type(), err)
		}
		m2.setDisk(m.DiskID())
		if !reflect.DeepEqual(m2, m) {
			t.Errorf("%v: unmarshal differs", m.Type())
		}
	}
}

// TestUnmarshalNeverPanics cuts and flips every sample payload: Unmarshal
// returns an error or a message, never panics, and a cut payload is always
// refused (but for a DiskList cut exactly before its optional version 2
// trailer: that is the list without it).
func TestUnmarshalNeverPanics(t *testing.T) {
	for _, m := range sampleMessages() {
		p, err := Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		v1 := -1
		if dl, ok := m.(*DiskList); ok {
			q, _ := Marshal(dl.WithoutV2())
			v1 = len(q)
		}
		for n := range len(p) {
			if n == v1 && n < len(p) {
				var back DiskList
				if err := back.Unmarshal(p[:n]); err != nil || !reflect.DeepEqual(&back, m.(*DiskList).WithoutV2()) {
					t.Fatalf("disk list without its trailer: %v, %+v", err, back)
				}
				continue
			}
			if err := newMessage(m.Type()).Unmarshal(p[:n]); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDecompress) {
				t.Fatalf("%v cut to %d of %d bytes: %v", m.Type(), n, len(p), err)
			}
		}
		if err := newMessage(m.Type()).Unmarshal(append(bytes.Clone(p), 0)); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDecompress) {
			t.Fatalf("%v with a trailing byte: %v", m.Type(), err)
		}
		for bit := range min(len(p), 512) * 8 {
			q := bytes.Clone(p)
			q[bit/8] ^= 1 << (bit % 8)
			if err := newMessage(m.Type()).Unmarshal(q); err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDecompress) {
				t.Fatalf("%v bit %d: unnamed error %v", m.Type(), bit, err)
			}
		}
	}
}

// TestUnmarshalRejects: payloads that pass a frame's checks but break a
// message rule.
func TestUnmarshalRejects(t *testing.T) {
	u32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	u64 := func(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	nonce := make([]byte, NonceSize)
	str := func(s string) []byte { return append(binary.LittleEndian.AppendUint16(nil, uint16(len(s))), s...) }
	hello := func(role byte, vs ...uint16) []byte {
		b := []byte{role, byte(len(vs))}
		for _, v := range vs {
			b = binary.LittleEndian.AppendUint16(b, v)
		}
		return cat(b, nonce, str("id"), str("name"))
	}
	block := func(n uint32, c byte, data []byte) []byte { return cat(u32(n), []byte{c, 0, 0, 0}, data) }
	for _, tc := range []struct {
		name string
		m    Message
		p    []byte
	}{
		{"hello unknown role", new(Hello), hello(3, 1)},
		{"hello no versions", new(Hello), hello(1)},
		{"hello version 0", new(Hello), hello(1, 0)},
		{"hello versions not ascending", new(Hello), hello(1, 2, 1)},
		{"hello 17 versions", new(Hello), hello(1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)},
		{"hello name not utf-8", new(Hello), cat([]byte{1, 1, 1, 0}, nonce, str("id"), str("\xff\xfe"))},
		{"hello name too long", new(Hello), cat([]byte{1, 1, 1, 0}, nonce, str("id"), str(strings.Repeat("x", maxName+1)))},
		{"welcome chosen not offered", new(Welcome), cat([]byte{2, 0}, hello(1, 1))},
		{"auth short", new(Auth), make([]byte, 31)},
		{"disk list count beyond payload", new(DiskList), cat(u32(1000000), make([]byte, 18))},
		{"disk list id 0", new(DiskList), cat(u32(1), u32(0), u32(512), u64(1), str("a"))},
		{"disk list id twice", new(DiskList), cat(u32(2), u32(1), u32(512), u64(1), str("a"), u32(1), u32(512), u64(1), str("b"))},
		{"disk list block size 1000", new(DiskList), cat(u32(1), u32(1), u32(1000), u64(1), str("a"))},
		{"disk list negative size", new(DiskList), cat(u32(1), u32(1), u32(512), u64(1<<63), str("a"))},
		{"disk list app intervals short", new(DiskList), cat(u32(1), u32(1), u32(512), u64(1), str("a"), u32(2), u32(60))},
		{"disk list app intervals cut", new(DiskList), cat(u32(1), u32(1), u32(512), u64(1), str("a"), u32(1))},
		{"disk list app intervals past", new(DiskList), cat(u32(1), u32(1), u32(512), u64(1), str("a"), u32(1), u32(60), u32(0))},
		{"pair unknown start", new(PairAccept), cat(u32(1), u32(1), []byte{9, 0, 0, 0}, u64(0))},
		{"pair reserved", new(PairAccept), cat(u32(1), u32(1), []byte{1, 0, 1, 0}, u64(0))},
		{"pair twice", new(PairAccept), cat(u32(2), u32(1), []byte{1, 0, 0, 0}, u64(0), u32(1), []byte{1, 0, 0, 0}, u64(0))},
		{"write seq 0", new(Write), cat(u64(0), u64(0), u64(0), block(1, 0, []byte{1}))},
		{"write negative offset", new(Write), cat(u64(1), u64(1<<63), u64(0), block(1, 0, []byte{1}))},
		{"write offset overflows", new(Write), cat(u64(1), u64(1<<63-1), u64(0), block(2, 0, []byte{1, 2}))},
		{"write length mismatch", new(Write), cat(u64(1), u64(0), u64(0), block(2, 0, []byte{1}))},
		{"write unknown codec", new(Write), cat(u64(1), u64(0), u64(0), block(1, 7, []byte{1}))},
		{"write compressed empty", new(Write), cat(u64(1), u64(0), u64(0), block(0, 1, []byte{1}))},
		{"write declared above maximum", new(Write), cat(u64(1), u64(0), u64(0), block(MaxPayload+1, 2, []byte{1}))},
		{"write reserved", new(Write), cat(u64(1), u64(0), u64(0), u32(1), []byte{0, 0, 1, 0}, []byte{1})},
		{"resync seq 0", new(ResyncData), cat(u64(0), u64(0), block(1, 0, []byte{1}))},
		{"zero range length 0", new(ZeroRange), cat(u64(1), u64(0), u64(0))},
		{"zero range negative", new(ZeroRange), cat(u64(1), u64(0), u64(1<<63))},
		{"zero range overflows", new(ZeroRange), cat(u64(1), u64(1<<62), u64(1<<62+1<<61+1<<60))},
		{"hash unknown algo", new(HashRequest), cat([]byte{4, 0, 0, 0}, u32(4096), u64(0), u32(1), u32(0))},
		{"hash chunk 0", new(HashRequest), cat([]byte{1, 0, 0, 0}, u32(0), u64(0), u32(1), u32(0))},
		{"hash count 0", new(HashRequest), cat([]byte{1, 0, 0, 0}, u32(4096), u64(0), u32(0), u32(0))},
		{"hash count above maximum", new(HashRequest), cat([]byte{1, 0, 0, 0}, u32(4096), u64(0), u32(MaxHashes+1), u32(0))},
		{"hash response count mismatch", new(HashResponse), cat([]byte{1, 0, 0, 0}, u32(4096), u64(0), u32(2), u32(0), make([]byte, 32))},
		{"state unknown", new(State), cat([]byte{4, 0, 0, 0, 0, 0, 0, 0}, u64(0), u64(0), u64(0))},
		{"state done above total", new(State), cat([]byte{1, 0, 0, 0, 0, 0, 0, 0}, u64(0), u64(5), u64(4))},
		{"tag empty name", new(Tag), cat(u64(1), u64(0), str(""), str("FS"), str("id"))},
		{"tag seq 0", new(Tag), cat(u64(0), u64(0), str("t"), str("FS"), str("id"))},
		{"tag short", new(Tag), cat(u64(1), u64(0), str("t"), str("FS"))},
		{"ack short", new(Ack), make([]byte, 23)},
		{"credit 0", new(Credit), u64(0)},
		{"credit above maximum", new(Credit), u64(MaxCredit + 1)},
		{"heartbeat disk twice", new(Heartbeat), cat(u64(0), u32(2), u32(1), u64(1), u32(1), u64(2))},
		{"heartbeat count beyond payload", new(Heartbeat), cat(u64(0), u32(0xffffffff))},
		{"error code 0", new(Error), cat([]byte{0, 0, 1}, str("x"))},
		{"error fatal 2", new(Error), cat([]byte{1, 0, 2}, str("x"))},
	} {
		err := tc.m.Unmarshal(tc.p)
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", tc.name, err)
		}
	}
}

// TestMarshalRefuses: what Unmarshal refuses, Marshal refuses to send.
func TestMarshalRefuses(t *testing.T) {
	for _, m := range []Message{
		&Hello{Role: RoleMasterTarget},
		&Hello{Role: 9, Versions: []uint16{1}},
		&Welcome{Version: 2, Versions: []uint16{1}, Role: RoleProcessServer},
		&DiskList{Disks: []Disk{{ID: 1, BlockSize: 512}, {ID: 1, BlockSize: 512}}},
		&PairAccept{Pairs: []Pair{{Disk: 1}}},
		&Write{Seq: 0, Disk: 1},
		&Write{Seq: 1, Disk: 1, Offset: -1},
		&Write{Seq: 1, Disk: 1, Compression: 9, Data: []byte{1}},
		&ZeroRange{Seq: 1, Disk: 1},
		&HashResponse{Disk: 1, Algo: HashSHA256, ChunkSize: 1},
		&Tag{Disk: 1, Seq: 1},
		&TagRequest{Name: "t", ID: "i"},
		&TagRequest{Disks: []uint32{1, 1}, Name: "t", ID: "i"},
		&TagRequest{Disks: []uint32{0}, Name: "t", ID: "i"},
		&TagRequest{Disks: []uint32{1}, ID: "i"},
		&Credit{},
		&Heartbeat{Latest: []DiskSeq{{Disk: 0, Seq: 1}}},
		&Error{},
		&Error{Code: CodeIO, Message: "\xff"},
	} {
		if _, err := Marshal(m); !errors.Is(err, ErrMalformed) {
			t.Errorf("%v %+v: %v, want ErrMalformed", m.Type(), m, err)
		}
	}
}

func TestCompressionRoundTrip(t *testing.T) {
	compressible := bytes.Repeat([]byte("the same sector, again and again. "), 2000)
	random := make([]byte, 64<<10)
	rand.Read(random)
	for _, c := range []Compression{CompressNone, CompressZstd, CompressS2} {
		for _, data := range [][]byte{compressible, random, {42}} {
			w := &Write{Disk: 1, Seq: 1, Time: t0, Data: data, Compression: c}
			p, err := Marshal(w)
			if err != nil {
				t.Fatal(err)
			}
			var got Write
			if err := got.Unmarshal(p); err != nil {
				t.Fatalf("%v, %d bytes: %v", c, len(data), err)
			}
			if !bytes.Equal(got.Data, data) {
				t.Fatalf("%v, %d bytes: data differs", c, len(data))
			}
			shrinks := c != CompressNone && len(data) == len(compressible)
			if shrinks && (got.Compression != c || len(p) > len(data)/4) {
				t.Errorf("%v: compressible data sent as %v in %d bytes", c, got.Compression, len(p))
			}
			if !shrinks && got.Compression != CompressNone {
				t.Errorf("%v, %d bytes of data that does not shrink: sent as %v", c, len(data), got.Compression)
			}
		}
	}
}

// writePayload builds a Write payload around already compressed bytes.
func writePayload(declared uint32, c Compression, z []byte) []byte {
	p := binary.LittleEndian.AppendUint64(nil, 1)
	p = binary.LittleEndian.AppendUint64(p, 0)
	p = binary.LittleEndian.AppendUint64(p, 0)
	p = binary.LittleEndian.AppendUint32(p, declared)
	p = append(p, byte(c), 0, 0, 0)
	return append(p, z...)
}

// TestDecompressionBomb: compressed data that expands past its declared
// length is refused without expanding it.
func TestDecompressionBomb(t *testing.T) {
	const huge = 64 << 20 // 64 MiB of zeros: a few KiB compressed
	var zs bytes.Buffer
	zw, err := zstd.NewWriter(&zs, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, io.LimitReader(zeros{}, huge)); err != nil {
		t.Fatal(err)
	}
	zw.Close()
	zall := zstdEncoder().EncodeAll(make([]byte, 8<<20), nil) // declares its size in the frame
	s2bomb := s2.Encode(nil, make([]byte, 8<<20))
	if zs.Len() > 1<<20 || len(s2bomb) > 1<<20 {
		t.Fatalf("bombs are not small: zstd %d, s2 %d bytes", zs.Len(), len(s2bomb))
	}
	// Warm the shared decoder up, so its own buffers are not counted.
	if _, err := decompress(zall, CompressZstd, 8<<20); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		c        Compression
		declared uint32
		z        []byte
	}{
		{"zstd stream, 64 MiB declared as 4 KiB", CompressZstd, 4096, zs.Bytes()},
		{"zstd stream, 64 MiB declared as 1 MiB", CompressZstd, 1 << 20, zs.Bytes()},
		{"zstd frame, 8 MiB declared as 4 KiB", CompressZstd, 4096, zall},
		{"zstd frame, 8 MiB declared as 8 MiB + 1", CompressZstd, 8<<20 + 1, zall},
		{"s2, 8 MiB declared as 4 KiB", CompressS2, 4096, s2bomb},
		{"zstd garbage", CompressZstd, 4096, []byte("not zstd at all")},
		{"s2 garbage", CompressS2, 4096, []byte{0x80, 0x20, 0xff, 0xff, 0xff}},
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var w Write
		err := w.Unmarshal(writePayload(tc.declared, tc.c, tc.z))
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrDecompress) {
			t.Errorf("%s: %v, want ErrDecompress", tc.name, err)
		}
		// The decoder may take the declared length and its own window
		// buffers, never the expansion (8 or 64 MiB).
		if grew := after.TotalAlloc - before.TotalAlloc; grew > uint64(tc.declared)+4<<20 {
			t.Errorf("%s: allocated %d KiB", tc.name, grew>>10)
		}
	}
	// The same data with its true length passes.
	var w Write
	if err := w.Unmarshal(writePayload(8<<20, CompressZstd, zall)); err != nil || len(w.Data) != 8<<20 {
		t.Fatalf("honest zstd: %v, %d bytes", err, len(w.Data))
	}
	if err := w.Unmarshal(writePayload(8<<20, CompressS2, s2bomb)); err != nil || len(w.Data) != 8<<20 {
		t.Fatalf("honest s2: %v, %d bytes", err, len(w.Data))
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestErrorMessage(t *testing.T) {
	e := &Error{Code: CodeAuth, Fatal: true, Message: ErrAuth.Error()}
	for _, target := range []error{ErrPeer, ErrAuth} {
		if !errors.Is(e, target) {
			t.Errorf("auth error is not %v", target)
		}
	}
	if errors.Is(e, ErrRole) {
		t.Error("auth error matches ErrRole")
	}
	for err, code := range map[error]ErrorCode{
		ErrAuth:             CodeAuth,
		ErrNoCommonVersion:  CodeVersion,
		ErrRole:             CodeRole,
		ErrRefused:          CodeRefused,
		ErrUnknownDisk:      CodeUnknownDisk,
		ErrOutOfRange:       CodeOutOfRange,
		ErrSequence:         CodeProtocol,
		ErrPayloadCRC:       CodeProtocol,
		io.ErrUnexpectedEOF: CodeInternal,
	} {
		m := ErrorFor(errors.Join(errors.New("context"), err))
		if m.Code != code || !m.Fatal {
			t.Errorf("ErrorFor(%v) = %v, want fatal %v", err, m.Code, code)
		}
		if _, err := Marshal(m); err != nil {
			t.Errorf("ErrorFor(%v) does not marshal: %v", err, err)
		}
	}
	// An authentication failure says nothing beyond ErrAuth.
	if m := ErrorFor(errors.Join(errors.New("client proof mismatch"), ErrAuth)); m.Message != ErrAuth.Error() {
		t.Errorf("auth error message %q says more than ErrAuth", m.Message)
	}
	long := ErrorFor(errors.New(strings.Repeat("é", maxText)))
	if _, err := Marshal(long); err != nil {
		t.Errorf("a long error message is not cut to size: %v", err)
	}
}
