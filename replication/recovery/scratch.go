package recovery

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
)

// ScratchBlock is the unit a writable view copies on write.
const ScratchBlock = 4096

// ErrScratchFull is a write to a writable view whose overlay has reached
// its cap: NBD clients get ENOSPC.
var ErrScratchFull = fmt.Errorf("the view's overlay is full: %w", syscall.ENOSPC)

// Scratch makes a view writable without touching what it shows: writes
// go to an overlay file (sparse, in blocks of ScratchBlock), reads take
// the blocks written from it and the rest from the view. The overlay
// holds at most Cap bytes of blocks; a write that needs more fails with
// ErrScratchFull and changes nothing. Close removes the file: what was
// written is gone.
type Scratch struct {
	base io.ReaderAt
	size int64
	f    *os.File
	path string
	cap  int64

	mu   sync.RWMutex
	have []uint64 // bit per block: written to the overlay
	used int64
}

// NewScratch creates the overlay file at path (it must not exist) over
// base, size bytes, holding at most limit bytes (0: the disk's size).
func NewScratch(base io.ReaderAt, size int64, path string, limit int64) (*Scratch, error) {
	if limit <= 0 {
		limit = size
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("view overlay: %w", err)
	}
	blocks := (size + ScratchBlock - 1) / ScratchBlock
	return &Scratch{base: base, size: size, f: f, path: path, cap: limit, have: make([]uint64, (blocks+63)/64)}, nil
}

// Path is the overlay file.
func (s *Scratch) Path() string { return s.path }

// Used is the bytes of blocks the overlay holds; Cap its limit.
func (s *Scratch) Used() int64 { s.mu.RLock(); defer s.mu.RUnlock(); return s.used }

// Cap is the overlay's limit in bytes.
func (s *Scratch) Cap() int64 { return s.cap }

// Size is the disk's size.
func (s *Scratch) Size() int64 { return s.size }

func (s *Scratch) written(b int64) bool { return s.have[b/64]&(1<<(b%64)) != 0 }

// ReadAt reads the view with the writes made to it.
func (s *Scratch) ReadAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if off < 0 || end > s.size {
		return 0, fmt.Errorf("read of %d bytes at offset %d: the disk has %d bytes", len(p), off, s.size)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for pos := off; pos < end; {
		b := pos / ScratchBlock
		w := s.written(b)
		// the run of blocks in the same state
		e := min((b+1)*ScratchBlock, end)
		for e < end && s.written(e/ScratchBlock) == w {
			e = min(e+ScratchBlock, end)
		}
		var src io.ReaderAt = s.base
		if w {
			src = s.f
		}
		if n, err := src.ReadAt(p[pos-off:e-off], pos); n != int(e-pos) {
			if err == nil {
				err = io.ErrUnexpectedEOF
			}
			return 0, fmt.Errorf("view at offset %d: %w", pos, err)
		}
		pos = e
	}
	return len(p), nil
}

// WriteAt writes to the overlay, copying the untouched part of a block
// it writes partly from the view first.
func (s *Scratch) WriteAt(p []byte, off int64) (int, error) {
	end := off + int64(len(p))
	if off < 0 || end > s.size {
		return 0, fmt.Errorf("write of %d bytes at offset %d: the disk has %d bytes", len(p), off, s.size)
	}
	if len(p) == 0 {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	lo, hi := off/ScratchBlock, (end-1)/ScratchBlock
	var fresh int64
	for b := lo; b <= hi; b++ {
		if !s.written(b) {
			fresh++
		}
	}
	if s.used+fresh*ScratchBlock > s.cap {
		return 0, fmt.Errorf("%w: %d of %d bytes used, the write at offset %d needs %d more; close the view and open it again with a larger --overlay-cap",
			ErrScratchFull, s.used, s.cap, off, fresh*ScratchBlock)
	}
	for _, b := range []int64{lo, hi} {
		bo, be := b*ScratchBlock, min((b+1)*ScratchBlock, s.size)
		if s.written(b) || (off <= bo && end >= be) {
			continue
		}
		buf := make([]byte, be-bo)
		if err := readFull(s.base, buf, bo); err != nil {
			return 0, fmt.Errorf("view at offset %d: %w", bo, err)
		}
		if _, err := s.f.WriteAt(buf, bo); err != nil {
			return 0, fmt.Errorf("view overlay %s: %w", s.path, err)
		}
		if lo == hi {
			break
		}
	}
	if _, err := s.f.WriteAt(p, off); err != nil {
		return 0, fmt.Errorf("view overlay %s: %w", s.path, err)
	}
	for b := lo; b <= hi; b++ {
		if !s.written(b) {
			s.have[b/64] |= 1 << (b % 64)
			s.used += ScratchBlock
		}
	}
	return len(p), nil
}

func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// Flush does nothing: the overlay is discarded on close, so there is
// nothing to make durable.
func (s *Scratch) Flush() error { return nil }

// Close removes the overlay file.
func (s *Scratch) Close() error {
	err := s.f.Close()
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}
