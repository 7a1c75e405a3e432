package vfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// zeroAndCheck zeros [off, off+n) of f, which holds old, and checks f
// reads back as old with that range zero, through f and as a file.
func zeroAndCheck(t *testing.T, f File, old []byte, off, n int64) {
	t.Helper()
	if err := Zero(f, off, n, make([]byte, 64<<10)); err != nil {
		t.Fatalf("Zero(%d, %d): %v", off, n, err)
	}
	want := append([]byte(nil), old...)
	clear(want[off : off+n])
	got := make([]byte, len(old))
	if err := ReadFull(f, got, 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		i := 0
		for got[i] == want[i] {
			i++
		}
		t.Fatalf("after Zero(%d, %d): first difference at %d", off, n, i)
	}
}

// TestZeroPunchesHole: on a real file, a zeroed range reads as zeros,
// frees its blocks (a hole) and the file keeps its size; the bytes
// around it are untouched, an unaligned range included.
func TestZeroPunchesHole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	old := randomBytes(4<<20, 1)
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := OS.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, ok := f.(Zeroer); !ok {
		t.Fatal("a real file has no Zero")
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	blocks := func() int64 {
		var st syscall.Stat_t
		if err := syscall.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Blocks * 512
	}
	before := blocks()
	zeroAndCheck(t, f, old, 1<<20, 2<<20)
	clear(old[1<<20 : 3<<20])
	if size, _ := f.Size(); size != 4<<20 {
		t.Fatalf("size after Zero: %d, want %d", size, 4<<20)
	}
	// ext4, xfs, btrfs and tmpfs all punch: the blocks are gone.
	if after := blocks(); after > before-(2<<20)+(64<<10) {
		t.Fatalf("blocks: %d before, %d after zeroing 2 MiB: no hole punched", before, after)
	}
	zeroAndCheck(t, f, old, 3<<20+123, 1000) // unaligned: zeros inside one block
}

// TestZeroOnLoopDevice: on a block device (a loop device over a temp
// file) a zeroed range reads back as zeros through the device, aligned
// (BLKZEROOUT) and not (zeros written), the rest untouched.
func TestZeroOnLoopDevice(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for losetup")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup")
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	old := randomBytes(8<<20, 2)
	if err := os.WriteFile(img, old, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	f, err := OS.OpenFile(dev, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// The kernel zeroes an aligned range of any block device itself
	// (writing zeros when the device has no command for it).
	if err := f.(Zeroer).Zero(6<<20, 1<<20); err != nil {
		t.Fatalf("BLKZEROOUT on %s: %v", dev, err)
	}
	clear(old[6<<20 : 7<<20])
	zeroAndCheck(t, f, old, 1<<20, 3<<20)
	clear(old[1<<20 : 4<<20])
	zeroAndCheck(t, f, old, 5<<20+100, 5000)
	clear(old[5<<20+100 : 5<<20+5100])
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Fatal("the loop device's backing file does not hold the zeroed ranges")
	}
}

// TestZeroWritesWhereItCannotPunch: a file without Zero (Mem) gets the
// zeros written, through a buffer shorter than the range.
func TestZeroWritesWhereItCannotPunch(t *testing.T) {
	fs := NewMem()
	f, err := fs.OpenFile("/f", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	old := randomBytes(100000, 3)
	f.WriteAt(old, 0)
	if _, ok := f.(Zeroer); ok {
		t.Fatal("Mem files have Zero: the test needs a file without")
	}
	zeroAndCheck(t, f, old, 10, 90000)
}
