package writer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
)

// TestBlockDeviceTarget replicates onto a real loop device: its size
// comes from the BLKGETSIZE64 ioctl, writes past it are refused, and
// the device ends equal to the source.
func TestBlockDeviceTarget(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for losetup")
	}
	if _, err := exec.LookPath("losetup"); err != nil {
		t.Skip("needs losetup")
	}
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	const size = 8 << 20
	if err := os.WriteFile(img, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		t.Skipf("losetup: %v: %s", err, out)
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })

	p, _, err := OpenPair(PairConfig{ID: "blk", Target: dev, JournalDir: filepath.Join(dir, "journal"),
		RetentionDir: filepath.Join(dir, "retention")}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if s := p.Status(); s.TargetBytes != size {
		t.Fatalf("device size %d, want %d", s.TargetBytes, size)
	}
	if err := p.Write(1, size-512, testutil.NewWorkload(1, 1024, nil).Clock, make([]byte, 1024), 0); err == nil {
		t.Fatal("a write past the end of the device was accepted")
	}
	w := testutil.NewWorkload(23, size, nil)
	w.MaxWrite = 64 << 10
	for range 300 {
		if err := feed(t, p, w.Next()); err != nil {
			t.Fatal(err)
		}
	}
	syncDrain(t, p)
	f, err := os.Open(dev)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got := make([]byte, size)
	if _, err := f.ReadAt(got, 0); err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(got, w.Source); d != "" {
		t.Fatalf("device: %s", d)
	}
}
