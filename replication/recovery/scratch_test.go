package recovery

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A writable view reads its writes back, leaves the view below as it was,
// refuses writes past its cap with ENOSPC, and leaves nothing on close.
func TestScratch(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	size := int64(10*ScratchBlock + 100) // a short last block
	base := make([]byte, size)
	rng.Read(base)
	orig := bytes.Clone(base)
	path := filepath.Join(t.TempDir(), "v1.overlay")
	s, err := NewScratch(bytes.NewReader(base), size, path, 4*ScratchBlock)
	if err != nil {
		t.Fatal(err)
	}
	model := bytes.Clone(base)
	write := func(off int64, n int) error {
		b := make([]byte, n)
		rng.Read(b)
		if _, err := s.WriteAt(b, off); err != nil {
			return err
		}
		copy(model[off:], b)
		return nil
	}
	// partial blocks at both ends, inside one block, the short last block
	for _, w := range [][2]int64{{100, 5000}, {3*ScratchBlock + 7, 10}, {size - 50, 50}} {
		if err := write(w[0], int(w[1])); err != nil {
			t.Fatalf("write %v: %v", w, err)
		}
	}
	if s.Used() != 4*ScratchBlock {
		t.Fatalf("used %d bytes, want 4 blocks", s.Used())
	}
	got := make([]byte, size)
	if _, err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, model) {
		t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got, model))
	}
	if !bytes.Equal(base, orig) {
		t.Fatal("a write reached the view below")
	}
	err = write(6*ScratchBlock, 1)
	if !errors.Is(err, ErrScratchFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the cap: %v, want ENOSPC", err)
	}
	if _, err := s.ReadAt(got, 0); err != nil || !bytes.Equal(got, model) {
		t.Fatal("a refused write changed what the view reads")
	}
	if err := write(ScratchBlock, 10); err != nil { // a block it holds: no room needed
		t.Fatal(err)
	}
	if _, err := s.WriteAt([]byte{1}, size); err == nil {
		t.Fatal("a write past the end succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("overlay left after close: %v", err)
	}
}
