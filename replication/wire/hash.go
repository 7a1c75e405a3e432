package wire

import (
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/zeebo/xxh3"
)

// HashChunks returns the SHA-256 of count chunks of r from off, each
// chunkSize bytes but the last, which ends at size: what a HashResponse
// carries. It reads in pieces of len(buf) (at least one chunk), one read
// per piece, and hashes a piece's chunks on every CPU.
func HashChunks(r io.ReaderAt, off int64, chunkSize, count int, size int64, buf []byte) ([][HashSize]byte, error) {
	return HashChunksAlgo(HashSHA256, 0, r, off, chunkSize, count, size, buf)
}

// SumChunk is the hash of one chunk b by algorithm a (seed: HashXXH3's,
// the connection's Session.HashSeed), as a HashResponse carries it.
func SumChunk(a HashAlgo, seed uint64, b []byte) [HashSize]byte {
	if a == HashXXH3 {
		var h [HashSize]byte
		s := xxh3.Hash128Seed(b, seed).Bytes()
		copy(h[:], s[:])
		return h
	}
	return sha256.Sum256(b)
}

// HashChunksAlgo is HashChunks by algorithm a (SHA-256 or XXH3 with seed).
func HashChunksAlgo(a HashAlgo, seed uint64, r io.ReaderAt, off int64, chunkSize, count int, size int64, buf []byte) ([][HashSize]byte, error) {
	if a != HashSHA256 && a != HashXXH3 {
		return nil, fmt.Errorf("wire: hash chunks: %w: algorithm %v", ErrMalformed, a)
	}
	cs := int64(chunkSize)
	if cs <= 0 || len(buf) < chunkSize {
		return nil, fmt.Errorf("wire: hash chunks: chunk size %d, buffer %d", chunkSize, len(buf))
	}
	end := min(off+int64(count)*cs, size)
	out := make([][HashSize]byte, 0, count)
	per := int64(len(buf)) / cs * cs
	workers := runtime.GOMAXPROCS(0)
	for pos := off; pos < end; pos += per {
		b := buf[:min(per, end-pos)]
		if n, err := r.ReadAt(b, pos); n < len(b) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read at %d: %w", pos, err)
		}
		first := len(out)
		n := (int64(len(b)) + cs - 1) / cs
		out = out[:first+int(n)]
		var wg sync.WaitGroup
		for w := range min(workers, int(n)) {
			wg.Go(func() {
				for i := int64(w); i < n; i += int64(workers) {
					out[first+int(i)] = SumChunk(a, seed, b[i*cs:min((i+1)*cs, int64(len(b)))])
				}
			})
		}
		wg.Wait()
	}
	return out, nil
}
