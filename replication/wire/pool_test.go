package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// poolStream encodes n ResyncData chunks of size bytes each, different
// random data, and returns the stream and the chunks.
func poolStream(t *testing.T, n, size int, c Compression) ([]byte, [][]byte) {
	t.Helper()
	var b bytes.Buffer
	e := NewEncoder(&b)
	rng := rand.NewChaCha8([32]byte{9})
	var chunks [][]byte
	for i := range n {
		data := make([]byte, size)
		rng.Read(data)
		if c != CompressNone {
			clear(data[size/2:]) // compressible
		}
		chunks = append(chunks, data)
		if err := e.Encode(&ResyncData{Disk: 1, Seq: uint64(i + 1), Offset: int64(i * size), Data: data, Compression: c}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes(), chunks
}

// A message decoded into a PayloadPool's memory keeps its data until it
// is released, however many frames are decoded after it, and a second
// Release never lends one buffer to two messages.
func TestPayloadPoolKeepsDataUntilRelease(t *testing.T) {
	const size = 256 << 10
	for _, c := range []Compression{CompressNone, CompressZstd} {
		stream, chunks := poolStream(t, 8, size, c)
		pool := NewPayloadPool()
		d := NewDecoder(bytes.NewReader(stream))
		d.SetPayloadPool(pool)
		next := func(i int) *ResyncData {
			t.Helper()
			m, err := d.Decode()
			if err != nil {
				t.Fatalf("%v: frame %d: %v", c, i+1, err)
			}
			rd := m.(*ResyncData)
			if !bytes.Equal(rd.Data, chunks[i]) {
				t.Fatalf("%v: frame %d: data differs from what was sent", c, i+1)
			}
			if c == CompressNone && uintptr(unsafe.Pointer(&rd.Data[0]))%DataAlign != 0 {
				t.Fatalf("%v: frame %d: data at %p, not aligned to %d", c, i+1, &rd.Data[0], DataAlign)
			}
			if rd.pb == nil {
				t.Fatalf("%v: frame %d: not decoded into the pool", c, i+1)
			}
			return rd
		}
		// Frames 1-2 held; 3 released twice, then 4-5 decoded and held;
		// 6-8 released each at once.
		m1, m2 := next(0), next(1)
		m3 := next(2)
		m3.Release()
		if m3.Data != nil {
			t.Fatalf("%v: Data still set after Release", c)
		}
		m3.Release()
		m4, m5 := next(3), next(4)
		for i := 5; i < 8; i++ {
			next(i).Release()
		}
		for i, m := range []*ResyncData{m1, m2, m4, m5} {
			want := chunks[[]int{0, 1, 3, 4}[i]]
			if !bytes.Equal(m.Data, want) {
				t.Fatalf("%v: frame %d, still held, changed as later frames were decoded", c, m.Seq)
			}
		}
		if m4.pb == m5.pb {
			t.Fatalf("%v: frames 4 and 5 were given one buffer (a second Release lent it twice)", c)
		}
	}
}

// Without a pool, and for other messages and small chunks, the decoder
// allocates as before: nothing to release.
func TestPayloadPoolOnlyLargeResyncData(t *testing.T) {
	var b bytes.Buffer
	e := NewEncoder(&b)
	big := bytes.Repeat([]byte{7}, 128<<10)
	for i, m := range []Message{
		&Write{Disk: 1, Seq: 1, Data: big},
		&ResyncData{Disk: 1, Seq: 2, Data: []byte("small")},
		&ResyncData{Disk: 1, Seq: 3, Data: big},
	} {
		if err := e.Encode(m); err != nil {
			t.Fatal(i, err)
		}
	}
	e.Flush()
	for _, pool := range []*PayloadPool{nil, NewPayloadPool()} {
		d := NewDecoder(bytes.NewReader(b.Bytes()))
		d.SetPayloadPool(pool)
		for i, pooled := range []bool{false, false, pool != nil} {
			m, err := d.Decode()
			if err != nil {
				t.Fatal(err)
			}
			var got bool
			if rd, ok := m.(*ResyncData); ok {
				got = rd.pb != nil
				rd.Release() // harmless when not pooled
			}
			if got != pooled {
				t.Errorf("pool %v, frame %d: pooled %v, want %v", pool != nil, i+1, got, pooled)
			}
		}
	}
}

// TakeBuffer hands the memory over: Release on the message no longer
// gives it back (so the data stays for whoever took it), and the
// function returned gives it back once however often it is called.
func TestPayloadPoolTakeBuffer(t *testing.T) {
	const size = 128 << 10
	stream, chunks := poolStream(t, 6, size, CompressNone)
	d := NewDecoder(bytes.NewReader(stream))
	d.SetPayloadPool(NewPayloadPool())
	next := func() *ResyncData {
		t.Helper()
		m, err := d.Decode()
		if err != nil {
			t.Fatal(err)
		}
		return m.(*ResyncData)
	}
	m1 := next()
	data := m1.Data
	free := m1.TakeBuffer()
	if free == nil {
		t.Fatal("TakeBuffer of a pooled message returned nil")
	}
	m1.Release() // the message's owner lets go: the taker still holds the memory
	held := []*ResyncData{next(), next(), next()}
	if !bytes.Equal(data, chunks[0]) {
		t.Fatal("taken memory changed after the message was released and more frames decoded")
	}
	free()
	free() // a second call gives nothing back: frames 5 and 6 get their own
	held = append(held, next(), next())
	for i, m := range held {
		if !bytes.Equal(m.Data, chunks[i+1]) {
			t.Fatalf("frame %d, held, changed", i+2)
		}
	}
	var plain ResyncData
	if plain.TakeBuffer() != nil {
		t.Fatal("TakeBuffer of a message not from a pool returned a function")
	}
}
