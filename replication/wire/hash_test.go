package wire

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"
)

// HashChunks gives each chunk's SHA-256, the short last one as it is,
// whatever the piece size, and a short read is an error.
func TestHashChunks(t *testing.T) {
	data := make([]byte, 10*4096+1000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	r := bytes.NewReader(data)
	for _, piece := range []int{4096, 3 * 4096, 64 << 10} {
		got, err := HashChunks(r, 4096, 4096, 10, int64(len(data)), make([]byte, piece))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 10 {
			t.Fatalf("piece %d: %d hashes, want 10", piece, len(got))
		}
		for i, h := range got {
			lo := 4096 * (i + 1)
			want := sha256.Sum256(data[lo:min(lo+4096, len(data))])
			if h != want {
				t.Errorf("piece %d: chunk %d: hash differs", piece, i)
			}
		}
	}
	if _, err := HashChunks(r, 0, 4096, 20, int64(len(data))+50000, make([]byte, 8192)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("past the end of the reader: %v, want unexpected EOF", err)
	}
	if _, err := HashChunks(r, 0, 4096, 1, int64(len(data)), make([]byte, 100)); err == nil {
		t.Error("a buffer smaller than a chunk was taken")
	}
}
