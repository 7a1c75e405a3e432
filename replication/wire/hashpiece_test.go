package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Every CPU reading and hashing pieces of its own gives each chunk's hash
// at its place, whatever the number of CPUs, the buffer (a piece per CPU
// or fewer) and a short last chunk.
func TestHashChunksOnEveryCPU(t *testing.T) {
	const cs = 4096
	data := make([]byte, 77*cs+1234)
	rng := rand.New(rand.NewChaCha8([32]byte{7}))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	r := bytes.NewReader(data)
	for _, a := range []HashAlgo{HashXXH3, HashSHA256} {
		for _, cpus := range []int{1, 2, 3, 8} {
			for _, bufLen := range []int{cs, 3 * cs, 5*cs + 100, HashPiece * 4} {
				name := fmt.Sprintf("%v/cpus %d/buf %d", a, cpus, bufLen)
				// From chunk 3 to past the end: the last chunk is short.
				got, err := hashChunks(a, 42, r, 3*cs, cs, 75, int64(len(data)), make([]byte, bufLen), cpus)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if len(got) != 75 {
					t.Fatalf("%s: %d hashes, want 75", name, len(got))
				}
				for i, h := range got {
					lo := (3 + i) * cs
					if want := SumChunk(a, 42, data[lo:min(lo+cs, len(data))]); h != want {
						t.Fatalf("%s: chunk %d: hash differs", name, 3+i)
					}
				}
			}
		}
	}
	if got, err := hashChunks(HashXXH3, 0, r, 0, cs, 0, int64(len(data)), make([]byte, cs), 4); err != nil || len(got) != 0 {
		t.Errorf("no chunks asked: %d hashes, %v", len(got), err)
	}
}

// failingReader fails every read that reaches bad, and counts reads.
type failingReader struct {
	r    io.ReaderAt
	bad  int64
	mu   sync.Mutex
	read int
}

func (f *failingReader) ReadAt(b []byte, off int64) (int, error) {
	f.mu.Lock()
	f.read++
	f.mu.Unlock()
	if off+int64(len(b)) > f.bad {
		return 0, syscall.EIO
	}
	return f.r.ReadAt(b, off)
}

// A failed read is the error, at the first failing piece in the disk's
// order whichever CPU met it first; the pieces after it are not all read.
func TestHashChunksReadError(t *testing.T) {
	const cs = 4096
	per := int64(hashPieceOf(cs))
	data := make([]byte, 16*per) // 16 pieces
	n := int(int64(len(data)) / cs)
	for _, cpus := range []int{1, 2, 4} {
		f := &failingReader{r: bytes.NewReader(data), bad: 2*per + 5}
		_, err := hashChunks(HashXXH3, 0, f, 0, cs, n, int64(len(data)), make([]byte, HashBufSize(cs)*4), cpus)
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("cpus %d: %v, want EIO", cpus, err)
		}
		if want := fmt.Sprintf("read at %d:", 2*per); !strings.Contains(err.Error(), want) {
			t.Errorf("cpus %d: %q does not name the first failing piece (%q)", cpus, err, want)
		}
		if pieces := int(int64(len(data)) / per); f.read >= pieces {
			t.Errorf("cpus %d: %d reads after a failure, all %d pieces", cpus, f.read, pieces)
		}
	}
	// A reader that ends early: unexpected EOF, not a short hash list.
	_, err := hashChunks(HashXXH3, 0, bytes.NewReader(data[:100*cs]), 0, cs, n, int64(len(data)), make([]byte, HashBufSize(cs)), 2)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("reader shorter than the disk: %v, want unexpected EOF", err)
	}
}
