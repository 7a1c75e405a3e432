package vfs

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartWriteback on a real file, plain and through Observed, leaves the
// data as written; the Sync after it makes it durable as ever.
func TestStartWritebackRealFile(t *testing.T) {
	dir := t.TempDir()
	for _, fs := range []FS{OS, Observed(OS, func(string, time.Duration) {})} {
		path := filepath.Join(dir, "target")
		f, err := fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]byte, 3<<20+123)
		rng := rand.New(rand.NewPCG(3, 4))
		for i := range want {
			want[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(want, 4096); err != nil {
			t.Fatal(err)
		}
		if err := StartWriteback(f, 4096, int64(len(want))); err != nil {
			t.Fatalf("%T: %v", f, err)
		}
		if err := StartWriteback(f, 0, 0); err != nil {
			t.Fatalf("%T, empty range: %v", f, err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, path, make([]byte, 4096), want)
	}
}

// A file that is not a real one has nothing to start: nil, nothing changed.
func TestStartWritebackMem(t *testing.T) {
	m := NewMem()
	f, err := m.OpenFile("/target", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("data"), 0); err != nil {
		t.Fatal(err)
	}
	if err := StartWriteback(f, 0, 4); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 4)
	if err := ReadFull(f, got, 0); err != nil || !bytes.Equal(got, []byte("data")) {
		t.Fatalf("Mem file holds %q (%v)", got, err)
	}
}

// A failing sync_file_range (here a closed descriptor) is an error naming
// the call, the file and the range.
func TestStartWritebackError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "target")
	f, err := OS.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	err = StartWriteback(f, 0, 8192)
	if err == nil {
		t.Fatal("StartWriteback on a closed file returned nil")
	}
	for _, s := range []string{"sync_file_range", path, "offsets 0-8192"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not name %q", err, s)
		}
	}
}
