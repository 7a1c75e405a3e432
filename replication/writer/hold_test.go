package writer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// TestExportWhileBatchesStaged is the race behind wrong live exports: the
// applier has batches on the target whose applied position is not yet
// committed when an export asks it to hold. Hold must not hand the target
// over until those batches are committed; before the fix the export read
// the old applied position while the applier was still committing, left
// out the staged writes' before-images, and wrote their new data into an
// image reported exact.
func TestExportWhileBatchesStaged(t *testing.T) {
	m, tfs := newStagingPair(t)
	slow := &slowSyncFS{FS: tfs, target: m.cfg.Target}
	m.o.TargetFS = slow

	var (
		mu        sync.Mutex
		writesArm = -1 // target writes to let through before the gate
		gate      = make(chan struct{})
	)
	tfs.SetInjector(func(op vfs.Op, name string) error {
		mu.Lock()
		stall := false
		if op == vfs.OpWrite && name == m.cfg.Target && writesArm >= 0 {
			if writesArm == 0 {
				stall = true
			}
			writesArm--
		}
		mu.Unlock()
		if stall {
			<-gate
		}
		return nil
	})
	p, _ := m.open()
	defer p.Close()

	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	block := func(seq uint64) []byte { return bytes.Repeat([]byte{byte(seq)}, 4096) }
	write := func(seq uint64) {
		t.Helper()
		if err := p.Write(seq, int64(seq%8)*4096, t0.Add(time.Duration(seq)*time.Millisecond), block(seq), 0); err != nil {
			t.Fatal(err)
		}
	}
	want := make([]byte, diskSize) // the target at the tag
	for seq := uint64(1); seq < 10; seq++ {
		write(seq)
		copy(want[int64(seq%8)*4096:], block(seq))
	}
	if err := p.Tag(10, journal.TagInfo{Name: "t10", App: journal.AppCrash, Time: t0.Add(10 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	r, err := recovery.Resolve(p.Store(), recovery.Point{Kind: recovery.TagNamed, Name: "t10"})
	if err != nil {
		t.Fatal(err)
	}

	// Writes 11-20, all durable while the applier stalls writing 11 to the
	// target; the export's hold waits behind it. Released, the applier
	// has 11 staged when it meets the hold, and the target fdatasync that begins its commit is slow.
	mu.Lock()
	writesArm = 0
	mu.Unlock()
	for seq := uint64(11); seq <= 20; seq++ {
		write(seq)
	}
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	res := make(chan error, 1)
	go func() {
		_, err := p.Export(context.Background(), r, "/mt/export.img", nil)
		slow.done()
		res <- err
	}()
	time.Sleep(50 * time.Millisecond) // the export reaches Hold (if not, it still finds batches staged)
	slow.arm()
	close(gate)
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	got, err := tfs.ReadFile("/mt/export.img")
	if err != nil {
		t.Fatal(err)
	}
	if d := firstDiff(got, want); d != "" {
		t.Fatalf("export of tag t10 while batches were staged: %s", d)
	}
}

// newStagingPair is a pair whose target is on a file system of its own
// (stalling it stalls nothing else), applying one write a batch and
// committing only when idle or held: batches stay staged.
func newStagingPair(t *testing.T) (*memPair, *vfs.Mem) {
	m := newMemPair(t, nil)
	tfs := vfs.NewMem()
	tfs.MkdirAll("/mt", 0o700)
	tf, _ := tfs.OpenFile(m.cfg.Target, os.O_RDWR|os.O_CREATE, 0o600)
	tf.WriteAt(make([]byte, diskSize), 0)
	tf.Sync()
	tf.Close()
	m.o.TargetFS = tfs
	m.o.BatchRecords = 1
	m.o.CommitInterval = time.Hour
	m.o.CommitBytes = 1 << 40
	return m, tfs
}

func firstDiff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("image is %d bytes, want %d", len(got), len(want))
	}
	for i := 0; i < len(got); i += 4096 {
		if !bytes.Equal(got[i:i+4096], want[i:i+4096]) {
			return fmt.Sprintf("block at offset %d holds %d, want %d", i, got[i], want[i])
		}
	}
	return ""
}

// slowSyncFS makes, once armed, the target's fdatasync wait up to a second
// or until done: an export that does not wait for the commit reads the
// store meanwhile.
type slowSyncFS struct {
	vfs.FS
	target string
	mu     sync.Mutex
	armed  bool
	end    chan struct{}
}

func (s *slowSyncFS) arm() {
	s.mu.Lock()
	s.armed, s.end = true, make(chan struct{})
	s.mu.Unlock()
}

func (s *slowSyncFS) done() {
	s.mu.Lock()
	if s.armed {
		close(s.end)
		s.armed = false
	}
	s.mu.Unlock()
}

func (s *slowSyncFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := s.FS.OpenFile(name, flag, perm)
	if err != nil || name != s.target {
		return f, err
	}
	return slowSyncFile{f, s}, nil
}

type slowSyncFile struct {
	vfs.File
	fs *slowSyncFS
}

func (f slowSyncFile) Sync() error {
	f.fs.mu.Lock()
	armed, end := f.fs.armed, f.fs.end
	f.fs.mu.Unlock()
	if armed {
		select {
		case <-end:
		case <-time.After(time.Second):
		}
	}
	return f.File.Sync()
}
