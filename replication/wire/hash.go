package wire

import (
	"crypto/sha256"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/zeebo/xxh3"
)

// HashChunks returns the SHA-256 of count chunks of r from off, each
// chunkSize bytes but the last, which ends at size: what a HashResponse
// carries. It reads and hashes as HashChunksAlgo does.
func HashChunks(r io.ReaderAt, off int64, chunkSize, count int, size int64, buf []byte) ([][HashSize]byte, error) {
	return HashChunksAlgo(HashSHA256, 0, r, off, chunkSize, count, size, buf)
}

// HashPiece is the most HashChunksAlgo reads at once on one CPU (rounded
// down to whole chunks, at least one): small enough that the piece is
// still in that CPU's cache when it is hashed, and that the copy out of
// the page cache lands in the cache rather than in memory. Reading a
// page-cached GiB in pieces of 4 MiB and hashing them after costs three
// times the CPU of this.
const HashPiece = 256 << 10

// HashBufSize is the buffer HashChunksAlgo works best with for chunks of
// chunkSize: a piece for every CPU.
func HashBufSize(chunkSize int) int {
	return hashPieceOf(int64(chunkSize)) * runtime.GOMAXPROCS(0)
}

func hashPieceOf(cs int64) int {
	return int(max(cs, HashPiece/cs*cs))
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

// HashChunksAlgo is HashChunks by algorithm a (SHA-256 or XXH3 with
// seed). buf (at least one chunk) is split into one piece per CPU (each
// at most HashPiece, whole chunks): every CPU reads a piece of its own
// (one ReadAt a piece, r is read from several goroutines at once) and
// hashes it, then takes the next, so reading and hashing run on every
// CPU at once. A read that comes back short is an error
// (io.ErrUnexpectedEOF when r had no more); the first in the disk's
// order is returned.
func HashChunksAlgo(a HashAlgo, seed uint64, r io.ReaderAt, off int64, chunkSize, count int, size int64, buf []byte) ([][HashSize]byte, error) {
	return hashChunks(a, seed, r, off, chunkSize, count, size, buf, runtime.GOMAXPROCS(0))
}

// hashChunks is HashChunksAlgo on at most cpus goroutines.
func hashChunks(a HashAlgo, seed uint64, r io.ReaderAt, off int64, chunkSize, count int, size int64, buf []byte, cpus int) ([][HashSize]byte, error) {
	if a != HashSHA256 && a != HashXXH3 {
		return nil, fmt.Errorf("wire: hash chunks: %w: algorithm %v", ErrMalformed, a)
	}
	cs := int64(chunkSize)
	if cs <= 0 || len(buf) < chunkSize {
		return nil, fmt.Errorf("wire: hash chunks: chunk size %d, buffer %d", chunkSize, len(buf))
	}
	end := min(off+int64(count)*cs, size)
	if end <= off || count <= 0 {
		return [][HashSize]byte{}, nil
	}
	out := make([][HashSize]byte, (end-off+cs-1)/cs)
	per := min(int64(hashPieceOf(cs)), int64(len(buf))/cs*cs)
	pieces := (end - off + per - 1) / per
	workers := int(min(int64(max(cpus, 1)), int64(len(buf))/per, pieces))
	var (
		next   atomic.Int64
		failed atomic.Bool
		mu     sync.Mutex
		errAt  int64 = -1
		ferr   error
	)
	work := func(b []byte) {
		for !failed.Load() {
			pos := off + (next.Add(1)-1)*per
			if pos >= end {
				return
			}
			p := b[:min(per, end-pos)]
			if n, err := r.ReadAt(p, pos); n < len(p) {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				mu.Lock()
				if errAt < 0 || pos < errAt {
					errAt, ferr = pos, fmt.Errorf("read at %d: %w", pos, err)
				}
				mu.Unlock()
				failed.Store(true)
				return
			}
			first := (pos - off) / cs
			for i := int64(0); i*cs < int64(len(p)); i++ {
				out[first+i] = SumChunk(a, seed, p[i*cs:min((i+1)*cs, int64(len(p)))])
			}
		}
	}
	if workers <= 1 {
		work(buf[:per])
	} else {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() { work(buf[int64(w)*per : int64(w+1)*per]) })
		}
		wg.Wait()
	}
	if ferr != nil {
		return nil, ferr
	}
	return out, nil
}
