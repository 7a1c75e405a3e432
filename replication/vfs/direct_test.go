package vfs

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

// appendAll writes random records one after another with WriteAppend, as
// the journal and the retention store do, and returns what the file must
// hold.
func appendAll(t *testing.T, f File, start int64) []byte {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var want []byte
	off := start
	for _, n := range []int{100, 5000, 3 * DirectBlock, 70000, 8, directPiece + 12345, 2*directPiece + DirectBlock, 40000, bigPieceFrom + 777, 2*bigPiece + 3*DirectBlock + 5, 1} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		if err := WriteAppend(f, p, off); err != nil {
			t.Fatalf("WriteAppend %d bytes at %d: %v", n, off, err)
		}
		want = append(want, p...)
		off += int64(n)
	}
	return want
}

func checkFile(t *testing.T, path string, head, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(head)+len(want) {
		t.Fatalf("file is %d bytes, want %d: appends must not pad it", len(got), len(head)+len(want))
	}
	if !bytes.Equal(got[:len(head)], head) || !bytes.Equal(got[len(head):], want) {
		t.Fatal("file content differs from what was appended")
	}
}

// Appends through a real file keep every byte, the bytes before the
// first unaligned offset included, and leave the file exactly as long as
// what was written.
func TestWriteAppendRealFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	f, err := OS.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	head := []byte("HEADER-of-37-bytes-that-stays-intact!")
	if _, err := f.WriteAt(head, 0); err != nil {
		t.Fatal(err)
	}
	want := appendAll(t, f, int64(len(head)))
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	checkFile(t, path, head, want)
}

// fakeDirect records direct writes, checks their alignment, and can
// refuse them as a file system without O_DIRECT does.
type fakeDirect struct {
	File
	refuseAfter int
	calls       int
	bytes       int
	misaligned  bool
}

func (f *fakeDirect) WriteDirect(p []byte, off int64) (int, error) {
	f.calls++
	if f.calls > f.refuseAfter {
		return 0, ErrNoDirect
	}
	if off%DirectBlock != 0 || len(p)%DirectBlock != 0 || uintptr(unsafe.Pointer(&p[0]))%DirectBlock != 0 {
		f.misaligned = true
	}
	f.bytes += len(p)
	return f.File.WriteAt(p, off)
}

// Direct writes are aligned, and a file that stops taking them (EINVAL
// half way) gets the rest through the page cache, nothing lost.
func TestWriteAppendDirectAlignedAndFallback(t *testing.T) {
	for _, refuse := range []int{0, 1, 3, 1 << 30} {
		path := filepath.Join(t.TempDir(), "seg")
		osf, err := OS.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f := &fakeDirect{File: osf, refuseAfter: refuse}
		head := []byte("0123456789abc")
		if _, err := f.WriteAt(head, 0); err != nil {
			t.Fatal(err)
		}
		want := appendAll(t, f, int64(len(head)))
		osf.Close()
		if f.misaligned {
			t.Fatalf("refuse after %d: a direct write was not aligned", refuse)
		}
		if refuse > 0 && f.bytes == 0 {
			t.Fatalf("refuse after %d: no direct write was made", refuse)
		}
		checkFile(t, path, head, want)
	}
}

// A file without direct writes (the Mem file system) is written as it
// always was.
func TestWriteAppendMem(t *testing.T) {
	m := NewMem()
	f, err := m.OpenFile("/seg", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := f.(DirectWriter); ok {
		t.Fatal("a Mem file has direct writes")
	}
	want := appendAll(t, f, 0)
	got := make([]byte, len(want))
	if err := ReadFull(f, got, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("Mem file content differs (%v)", err)
	}
}

// A direct write's I/O error is returned, not hidden by a retry through
// the page cache (invariant 5: no retry after an I/O error).
func TestWriteAppendDirectError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seg")
	osf, err := OS.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer osf.Close()
	eio := errors.New("EIO")
	f := &errDirect{File: osf, err: eio}
	if err := WriteAppend(f, make([]byte, 1<<20), 0); !errors.Is(err, eio) {
		t.Fatalf("got %v, want the direct write's error", err)
	}
}

type errDirect struct {
	File
	err error
}

func (f *errDirect) WriteDirect([]byte, int64) (int, error) { return 0, f.err }

// inPlaceDirect is fakeDirect that also counts the direct writes made
// from within the caller's buffer (lo..hi), not from a piece.
type inPlaceDirect struct {
	fakeDirect
	lo, hi  uintptr
	inPlace int
}

func (f *inPlaceDirect) WriteDirect(p []byte, off int64) (int, error) {
	if a := uintptr(unsafe.Pointer(&p[0])); a >= f.lo && a < f.hi {
		f.inPlace++
	}
	return f.fakeDirect.WriteDirect(p, off)
}

// Appends from an AlignedBuffer sliced as the file offset are written
// from the buffer itself, aligned, every byte kept, the bytes before an
// unaligned offset included; a file that stops taking direct writes gets
// the rest through the page cache.
func TestWriteAppendInPlace(t *testing.T) {
	for _, refuse := range []int{0, 1, 2, 1 << 30} {
		path := filepath.Join(t.TempDir(), "seg")
		osf, err := OS.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		head := []byte("0123456789abc")
		if _, err := osf.WriteAt(head, 0); err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(5, 6))
		base := AlignedBuffer(3*bigPiece + 2*DirectBlock)
		f := &inPlaceDirect{fakeDirect: fakeDirect{File: osf, refuseAfter: refuse},
			lo: uintptr(unsafe.Pointer(&base[0])), hi: uintptr(unsafe.Pointer(&base[0])) + uintptr(len(base))}
		var want []byte
		off := int64(len(head))
		for _, n := range []int{5 * DirectBlock, bigPiece + 3*DirectBlock + 77, 4*DirectBlock + 1, 2*bigPiece + 5, 6 * DirectBlock} {
			shift := int(off % DirectBlock)
			p := base[shift : shift+n]
			for i := range p {
				p[i] = byte(rng.Uint32())
			}
			if err := WriteAppend(f, p, off); err != nil {
				t.Fatalf("refuse after %d: WriteAppend %d bytes at %d: %v", refuse, n, off, err)
			}
			want = append(want, p...)
			off += int64(n)
		}
		osf.Close()
		if f.misaligned {
			t.Fatalf("refuse after %d: a direct write was not aligned", refuse)
		}
		if refuse > 2 && f.inPlace == 0 {
			t.Fatalf("refuse after %d: no direct write was made from the buffer itself", refuse)
		}
		checkFile(t, path, head, want)
	}
}
