package main

import (
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// ioStats counts the calls, bytes and time of one class of files. Times
// are summed over goroutines, so parallel I/O can add up to more than the
// wall-clock time.
type ioStats struct {
	reads, readBytes, readNs    atomic.Int64
	writes, writeBytes, writeNs atomic.Int64
	syncs, syncNs               atomic.Int64
	dirSyncs, dirSyncNs         atomic.Int64
	opens                       atomic.Int64
	// first and last are when the class's first I/O began and its last
	// ended, in nanoseconds since the count began (+1, so 0 is none yet).
	first, last atomic.Int64
	base        *atomic.Int64
}

// span records an I/O that ran from t to now.
func (s *ioStats) span(t time.Time) {
	b := s.base.Load()
	s.first.CompareAndSwap(0, t.UnixNano()-b+1)
	end := time.Now().UnixNano() - b + 1
	for {
		l := s.last.Load()
		if end <= l || s.last.CompareAndSwap(l, end) {
			return
		}
	}
}

// countFS is a vfs.FS that counts the I/O of its files by class, a class
// being the first of its prefixes that a path starts with. It forwards the
// optional methods the engine looks for (Allocate for fallocate, OSFile
// for copy_file_range), so the engine takes the same paths as on vfs.OS.
type countFS struct {
	vfs.FS
	mu      sync.Mutex
	classes []string // prefix=class, longest prefix first
	byName  map[string]*ioStats
	base    atomic.Int64 // when the count began, Unix nanoseconds
}

func newCountFS(inner vfs.FS) *countFS {
	c := &countFS{FS: inner, byName: map[string]*ioStats{}}
	c.base.Store(time.Now().UnixNano())
	return c
}

// newStats returns the counters of a new class; c.mu is held.
func (c *countFS) newStats(name string) *ioStats {
	s := &ioStats{base: &c.base}
	c.byName[name] = s
	return s
}

// class names the files under prefix (a directory or a file path).
func (c *countFS) class(prefix, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.classes = append(c.classes, prefix+"="+name)
	sort.Slice(c.classes, func(i, j int) bool { return len(c.classes[i]) > len(c.classes[j]) })
	if c.byName[name] == nil {
		c.newStats(name)
	}
}

func (c *countFS) stats(path string) *ioStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	name := "other"
	for _, pc := range c.classes {
		i := strings.LastIndexByte(pc, '=')
		if strings.HasPrefix(path, pc[:i]) {
			name = pc[i+1:]
			break
		}
	}
	s := c.byName[name]
	if s == nil {
		s = c.newStats(name)
	}
	return s
}

func (c *countFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	s := c.stats(name)
	s.opens.Add(1)
	return newCountFile(f, s), nil
}

func (c *countFS) SyncDir(dir string) error {
	s := c.stats(dir + "/")
	t := time.Now()
	err := c.FS.SyncDir(dir)
	s.dirSyncs.Add(1)
	s.dirSyncNs.Add(int64(time.Since(t)))
	s.span(t)
	return err
}

// wrap counts the I/O of an already open file under class name.
func (c *countFS) wrap(f vfs.File, name string) vfs.File {
	c.mu.Lock()
	s := c.byName[name]
	if s == nil {
		s = c.newStats(name)
	}
	c.mu.Unlock()
	return newCountFile(f, s)
}

// reset zeroes every counter, of open files too.
func (c *countFS) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.base.Store(time.Now().UnixNano())
	for _, s := range c.byName {
		for _, v := range []*atomic.Int64{&s.reads, &s.readBytes, &s.readNs, &s.writes, &s.writeBytes, &s.writeNs,
			&s.syncs, &s.syncNs, &s.dirSyncs, &s.dirSyncNs, &s.opens, &s.first, &s.last} {
			v.Store(0)
		}
	}
}

// report prints one "io" line per class that saw any I/O, in name order;
// active_from_s and active_to_s place its I/O on the time line that began
// at the count's start (newCountFS or reset).
func (c *countFS) report() {
	c.mu.Lock()
	names := make([]string, 0, len(c.byName))
	for n := range c.byName {
		names = append(names, n)
	}
	c.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		s := c.byName[n]
		if s.reads.Load()+s.writes.Load()+s.syncs.Load()+s.dirSyncs.Load() == 0 {
			continue
		}
		sec := func(v *atomic.Int64) float64 { return time.Duration(v.Load()).Seconds() }
		kv("io", "class", n,
			"writes", s.writes.Load(), "write_mib", mib(s.writeBytes.Load()), "write_s", sec(&s.writeNs),
			"reads", s.reads.Load(), "read_mib", mib(s.readBytes.Load()), "read_s", sec(&s.readNs),
			"fdatasyncs", s.syncs.Load(), "fdatasync_s", sec(&s.syncNs),
			"dirsyncs", s.dirSyncs.Load(), "dirsync_s", sec(&s.dirSyncNs),
			"active_from_s", sec(&s.first), "active_to_s", sec(&s.last))
	}
}

type countFile struct {
	vfs.File
	s *ioStats
}

// countOSFile is a countFile over a real file.
type countOSFile struct {
	*countFile
	osf *os.File
}

// OSFile keeps copy_file_range for rollback and export (recovery); the
// copies are counted through CopyRead and CopyWrite.
func (f countOSFile) OSFile() *os.File { return f.osf }

func newCountFile(f vfs.File, s *ioStats) vfs.File {
	cf := &countFile{File: f, s: s}
	if o, ok := f.(interface{ OSFile() *os.File }); ok {
		return countOSFile{cf, o.OSFile()}
	}
	return cf
}

func (f *countFile) ReadAt(p []byte, off int64) (int, error) {
	t := time.Now()
	n, err := f.File.ReadAt(p, off)
	f.s.readNs.Add(int64(time.Since(t)))
	f.s.span(t)
	f.s.reads.Add(1)
	f.s.readBytes.Add(int64(n))
	return n, err
}

func (f *countFile) WriteAt(p []byte, off int64) (int, error) {
	t := time.Now()
	n, err := f.File.WriteAt(p, off)
	f.s.writeNs.Add(int64(time.Since(t)))
	f.s.span(t)
	f.s.writes.Add(1)
	f.s.writeBytes.Add(int64(n))
	return n, err
}

func (f *countFile) Sync() error {
	t := time.Now()
	err := f.File.Sync()
	f.s.syncNs.Add(int64(time.Since(t)))
	f.s.span(t)
	f.s.syncs.Add(1)
	return err
}

// Allocate keeps fallocate for the journal's segments (vfs.Allocate).
func (f *countFile) Allocate(size int64) error { return vfs.Allocate(f.File, size) }

// WriteDirect keeps the engine's direct writes (vfs.WriteAppend), counted
// as writes.
func (f countOSFile) WriteDirect(p []byte, off int64) (int, error) {
	d, ok := f.File.(vfs.DirectWriter)
	if !ok {
		return 0, vfs.ErrNoDirect
	}
	t := time.Now()
	n, err := d.WriteDirect(p, off)
	f.s.writeNs.Add(int64(time.Since(t)))
	f.s.span(t)
	f.s.writes.Add(1)
	f.s.writeBytes.Add(int64(n))
	return n, err
}

// Zero keeps the engine's hole punching of zero ranges (vfs.Zero).
func (f countOSFile) Zero(off, n int64) error {
	if z, ok := f.File.(vfs.Zeroer); ok {
		return z.Zero(off, n)
	}
	return vfs.ErrNoZero
}

// CopyRead counts what copy_file_range read from the file as reads
// (vfs.CopyObserver).
func (f countOSFile) CopyRead(n int64, start time.Time, d time.Duration) {
	f.s.readNs.Add(int64(d))
	f.s.span(start)
	f.s.reads.Add(1)
	f.s.readBytes.Add(n)
}

// CopyWrite counts what copy_file_range wrote to the file as writes
// (vfs.CopyObserver).
func (f countOSFile) CopyWrite(n int64, start time.Time, d time.Duration) {
	f.s.writeNs.Add(int64(d))
	f.s.span(start)
	f.s.writes.Add(1)
	f.s.writeBytes.Add(n)
}
