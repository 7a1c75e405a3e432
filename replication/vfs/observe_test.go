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

// copyCounter is a File that counts the copies it is told of.
type copyCounter struct {
	File
	read, written int64
}

func (c *copyCounter) CopyRead(n int64, _ time.Time, _ time.Duration)  { c.read += n }
func (c *copyCounter) CopyWrite(n int64, _ time.Time, _ time.Duration) { c.written += n }

// ObserveCopy reaches a CopyObserver through an observed real file, the
// source told of the read and the destination of the write; a file that
// is no CopyObserver is passed over.
func TestObserveCopyThroughObserved(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	f, err := OS.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inner := &copyCounter{File: f}
	wrapped := &observedOSFile{observedFile{inner, func(string, time.Duration) {}}, f.(interface{ OSFile() *os.File })}
	plain := NewMem()
	m, err := plain.OpenFile("/m", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	ObserveCopy(m, wrapped, 4096, time.Now(), time.Millisecond)
	ObserveCopy(wrapped, m, 512, time.Now(), time.Millisecond)
	if inner.written != 4096 || inner.read != 512 {
		t.Fatalf("observed %d bytes written and %d read, want 4096 and 512", inner.written, inner.read)
	}
}
