package ps

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// A source write that lands on a chunk after step I began reading it
// ahead, before that chunk is numbered and sent, is not lost: the chunk
// goes out with the data as read (without the write), marked dirty, and
// step II sends it again with the write. Applying the stream in order
// then gives the source.
func TestReadAheadChunkWrittenDuringReadIsResent(t *testing.T) {
	const chunk, nchunks = 64 << 10, 4
	d, src := testDisk(t, chunk, nchunks, 1)
	s := d.stream("mt")
	s.mu.Lock()
	s.gen, s.fresh = 1, false
	s.beginResyncLocked(false)
	s.mu.Unlock()

	// The write lands on chunk 2 once its read ahead has read it.
	change := bytes.Repeat([]byte{0xAB}, 4096)
	const at = 2*chunk + 8192
	hooked := 0
	readAheadHook = func(ch int64) {
		if ch == 2 {
			hooked++
			if err := d.Write(at, change, time.Unix(0, 0)); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { readAheadHook = nil })

	a := attachment{gen: 1}
	for range 100 {
		s.mu.Lock()
		done := s.rs == nil
		s.mu.Unlock()
		if done {
			break
		}
		if err := s.produce(context.Background(), nil, a); err != nil {
			t.Fatal(err)
		}
	}
	if s.rs != nil {
		t.Fatal("the resync did not end")
	}
	if hooked != 1 {
		t.Fatalf("chunk 2 was read ahead %d times, want 1", hooked)
	}
	copy(src[at:], change)

	// Apply the stream in order; count how often chunk 2 went out, and
	// check its first copy is the read-ahead one (the write missing), so
	// the case is the one meant.
	tgt := make([]byte, len(src))
	var sends [][]byte
	for _, e := range s.log {
		switch m := e.msg.(type) {
		case *wire.ResyncData:
			copy(tgt[m.Offset:], m.Data)
			if m.Offset == 2*chunk {
				sends = append(sends, m.Data)
			}
		case *wire.ZeroRange:
			clear(tgt[m.Offset : m.Offset+m.Length])
		case *wire.Write:
			copy(tgt[m.Offset:], m.Data)
		}
	}
	if len(sends) != 2 {
		t.Fatalf("chunk 2 was sent %d times, want 2 (step I's read ahead, step II's again)", len(sends))
	}
	if bytes.Equal(sends[0][8192:8192+4096], change) {
		t.Fatal("step I's copy of chunk 2 holds the write: it was read after the write, the case is not tested")
	}
	if !bytes.Equal(tgt, src) {
		t.Fatal("the target applied from the stream differs from the source")
	}
}

// testDisk is a disk of n chunks of random bytes (seeded) in memory, and
// those bytes.
func testDisk(t *testing.T, chunk, n int, seed byte) (*Disk, []byte) {
	t.Helper()
	f, err := vfs.NewMem().OpenFile("src", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	src := make([]byte, chunk*n)
	rand.NewChaCha8([32]byte{seed}).Read(src)
	if _, err := f.WriteAt(src, 0); err != nil {
		t.Fatal(err)
	}
	return &Disk{id: 1, name: "d", f: f, size: int64(len(src)), chunk: int64(chunk), maxUnacked: 64 << 20, streams: map[string]*stream{}}, src
}
