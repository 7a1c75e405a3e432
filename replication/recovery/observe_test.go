package recovery

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// countedFile counts the bytes written to it, by WriteAt and by the
// kernel copies it is told of (vfs.CopyObserver), keeping OSFile.
type countedFile struct {
	vfs.File
	osf                   *os.File
	written, copied, read atomic.Int64
}

func (f *countedFile) OSFile() *os.File { return f.osf }

func (f *countedFile) WriteAt(b []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(b, off)
	f.written.Add(int64(n))
	return n, err
}

func (f *countedFile) CopyRead(n int64, _ time.Time, _ time.Duration) { f.read.Add(n) }

func (f *countedFile) CopyWrite(n int64, _ time.Time, _ time.Duration) { f.copied.Add(n) }

// A restore in place that copies before-images in the kernel
// (copy_file_range) tells the destination of every byte it copied, so a
// wrapper that counts I/O (the benchmarks' io lines) sees the target
// writes of a rollback: counted writes and copies add up to the bytes
// restored, and the copies are most of them.
func TestRestoreCopiesAreObserved(t *testing.T) {
	dir := t.TempDir()
	rs := newRandomStore(t, vfs.OS, dir, 7, 150, 0)
	applied := rs.st.State().Applied
	pieces, _, err := plan(context.Background(), rs.st, 1, applied)
	if err != nil {
		t.Fatal(err)
	}
	cur := rs.read(t, filepath.Join(dir, "target"))
	inner := rs.create(t, "restored", cur)
	dst := &countedFile{File: inner, osf: inner.(interface{ OSFile() *os.File }).OSFile()}
	restored, err := apply(context.Background(), rs.st, pieces, nil, 0, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(rs.read(t, inner.Name()), rs.images[1]); d != "" {
		t.Fatalf("restored image is not the image at 1: %s", d)
	}
	if got := dst.written.Load() + dst.copied.Load(); got != restored {
		t.Fatalf("observed %d bytes written (%d by WriteAt, %d copied in the kernel), restored %d", got, dst.written.Load(), dst.copied.Load(), restored)
	}
	if dst.copied.Load() == 0 {
		t.Skipf("copy_file_range was not used on %s: nothing to observe", dir)
	}
}
