package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// An observed real file keeps its fast paths (OSFile, fallocate) and
// every Sync is reported, failed ones too.
func TestObservedKeepsFastPaths(t *testing.T) {
	var names []string
	fs := Observed(OS, func(name string, d time.Duration) { names = append(names, name) })
	p := filepath.Join(t.TempDir(), "f")
	f, err := fs.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	osf, ok := f.(interface{ OSFile() *os.File })
	if !ok || osf.OSFile().Name() != p {
		t.Fatalf("observed file lost OSFile: %T", f)
	}
	_ = map[File]bool{f: true} // a File may be a map key
	if err := Allocate(f, 1<<20); err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Size(); n != 1<<20 {
		t.Fatalf("size %d after Allocate", n)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != p {
		t.Fatalf("observed %v, want one sync of %s", names, p)
	}

	mem := NewMem()
	mem.SetInjector(func(op Op, name string) error {
		if op == OpSync {
			return syscall.EIO
		}
		return nil
	})
	mfs := Observed(mem, func(name string, d time.Duration) { names = append(names, name) })
	mf, err := mfs.OpenFile("/x", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := mf.(interface{ OSFile() *os.File }); ok {
		t.Fatal("a Mem file gained OSFile")
	}
	if err := mf.Sync(); !errors.Is(err, syscall.EIO) || len(names) != 2 {
		t.Fatalf("failed sync: %v, observed %v", err, names)
	}
}
