package vfs

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// Op names an operation for an Injector.
type Op int

// The operations an Injector sees.
const (
	OpRead Op = iota
	OpWrite
	OpSync
	OpSyncDir
	OpCreate
	OpRemove
	OpRename
	OpTruncate
)

var opNames = [...]string{"read", "write", "sync", "syncdir", "create", "remove", "rename", "truncate"}

func (o Op) String() string { return opNames[o] }

// ErrCrashed is returned by every operation on a Mem that has crashed.
var ErrCrashed = errors.New("vfs: file system crashed")

// Injector decides whether an operation on name fails. It returns nil to
// let it proceed.
type Injector func(op Op, name string) error

// TearMode says what a crash does with writes that were not synced.
type TearMode int

const (
	// DropUnsynced loses every unsynced write and directory change.
	DropUnsynced TearMode = iota
	// KeepUnsynced keeps them all, as if the page cache had been flushed.
	KeepUnsynced
	// TearUnsynced keeps a random subset of unsynced writes, some of them
	// cut short at a 512-byte sector boundary, in any order.
	TearUnsynced
)

type memOp struct {
	truncate bool
	off      int64
	data     []byte // for writes; for truncate, off is the new size
}

type memNode struct {
	data    []byte  // what reads see
	durable []byte  // what survives a crash
	pending []memOp // unsynced changes, in order
}

// Mem is an in-memory FS that models durability; see the package doc.
type Mem struct {
	mu       sync.Mutex
	files    map[string]*memNode // visible names
	durable  map[string]*memNode // names that survive a crash
	dirs     map[string]bool
	inject   Injector
	crashed  bool
	capacity int64 // 0: unlimited
}

// NewMem returns an empty Mem.
func NewMem() *Mem {
	return &Mem{files: map[string]*memNode{}, durable: map[string]*memNode{}, dirs: map[string]bool{"/": true, ".": true}}
}

// SetInjector installs f (nil removes it).
func (m *Mem) SetInjector(f Injector) { m.mu.Lock(); m.inject = f; m.mu.Unlock() }

// SetCapacity makes writes that would grow the total size of all files past
// n bytes fail with ENOSPC (0: unlimited).
func (m *Mem) SetCapacity(n int64) { m.mu.Lock(); m.capacity = n; m.mu.Unlock() }

// Crash stops m (every later operation fails with ErrCrashed) and returns a
// new Mem holding what a power cut at this instant would leave on disk.
func (m *Mem) Crash(mode TearMode, rng *rand.Rand) *Mem {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.crashed = true
	n := NewMem()
	n.capacity = m.capacity
	for d := range m.dirs {
		n.dirs[d] = true
	}
	names := m.durable
	if mode == KeepUnsynced {
		names = m.files
	}
	for name, node := range names {
		var data []byte
		switch mode {
		case DropUnsynced:
			data = append([]byte(nil), node.durable...)
		case KeepUnsynced:
			data = append([]byte(nil), node.data...)
		case TearUnsynced:
			data = append([]byte(nil), node.durable...)
			for _, op := range node.pending {
				if rng.Intn(2) == 0 {
					continue
				}
				if op.truncate {
					data = resize(data, op.off)
					continue
				}
				w := op.data
				if rng.Intn(3) == 0 && len(w) > 512 {
					w = w[:512*rng.Intn(len(w)/512+1)]
				}
				data = writeAt(data, w, op.off)
			}
		}
		nn := &memNode{data: data, durable: append([]byte(nil), data...)}
		n.files[name] = nn
		n.durable[name] = nn
	}
	return n
}

// Crashed reports whether Crash or an Injector returning ErrCrashed stopped m.
func (m *Mem) Crashed() bool { m.mu.Lock(); defer m.mu.Unlock(); return m.crashed }

// ReadFile returns the visible contents of name (for tests).
func (m *Mem) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, ok := m.files[clean(name)]
	if !ok {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
	}
	return append([]byte(nil), n.data...), nil
}

func clean(name string) string { return filepath.Clean(name) }

func (m *Mem) check(op Op, name string) error {
	if m.crashed {
		return ErrCrashed
	}
	if m.inject != nil {
		if err := m.inject(op, name); err != nil {
			if errors.Is(err, ErrCrashed) {
				m.crashed = true
			}
			return &os.PathError{Op: op.String(), Path: name, Err: err}
		}
	}
	return nil
}

func (m *Mem) used() int64 {
	var n int64
	for _, f := range m.files {
		n += int64(len(f.data))
	}
	return n
}

// OpenFile implements FS.
func (m *Mem) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	node, ok := m.files[name]
	if !ok {
		if flag&os.O_CREATE == 0 {
			return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
		}
		if !m.dirs[filepath.Dir(name)] {
			return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
		}
		if err := m.check(OpCreate, name); err != nil {
			return nil, err
		}
		node = &memNode{}
		m.files[name] = node
	} else if flag&os.O_EXCL != 0 && flag&os.O_CREATE != 0 {
		return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrExist}
	}
	if flag&os.O_TRUNC != 0 && len(node.data) > 0 {
		if err := m.check(OpTruncate, name); err != nil {
			return nil, err
		}
		node.data = node.data[:0]
		node.pending = append(node.pending, memOp{truncate: true})
	}
	return &memFile{fs: m, node: node, name: name, ro: flag&(os.O_WRONLY|os.O_RDWR) == 0}, nil
}

// Remove implements FS.
func (m *Mem) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = clean(name)
	if _, ok := m.files[name]; !ok {
		if m.dirs[name] {
			delete(m.dirs, name)
			return nil
		}
		return &os.PathError{Op: "remove", Path: name, Err: os.ErrNotExist}
	}
	if err := m.check(OpRemove, name); err != nil {
		return err
	}
	delete(m.files, name)
	return nil
}

// Rename implements FS.
func (m *Mem) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	oldname, newname = clean(oldname), clean(newname)
	node, ok := m.files[oldname]
	if !ok {
		return &os.PathError{Op: "rename", Path: oldname, Err: os.ErrNotExist}
	}
	if err := m.check(OpRename, oldname); err != nil {
		return err
	}
	delete(m.files, oldname)
	m.files[newname] = node
	return nil
}

// MkdirAll implements FS. Directories are durable at once.
func (m *Mem) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.crashed {
		return ErrCrashed
	}
	for d := clean(dir); !m.dirs[d]; d = filepath.Dir(d) {
		m.dirs[d] = true
	}
	return nil
}

// List implements FS.
func (m *Mem) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = clean(dir)
	if !m.dirs[dir] {
		return nil, &os.PathError{Op: "open", Path: dir, Err: os.ErrNotExist}
	}
	var names []string
	for name := range m.files {
		if filepath.Dir(name) == dir {
			names = append(names, filepath.Base(name))
		}
	}
	for d := range m.dirs {
		if d != dir && filepath.Dir(d) == dir && !strings.HasPrefix(filepath.Base(d), ".") {
			names = append(names, filepath.Base(d))
		}
	}
	sort.Strings(names)
	return names, nil
}

// SyncDir implements FS: the entries of dir become what a crash leaves.
func (m *Mem) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = clean(dir)
	if err := m.check(OpSyncDir, dir); err != nil {
		return err
	}
	for name := range m.durable {
		if filepath.Dir(name) == dir {
			delete(m.durable, name)
		}
	}
	for name, node := range m.files {
		if filepath.Dir(name) == dir {
			m.durable[name] = node
		}
	}
	return nil
}

// Free implements FS from the capacity (unlimited: 1 TiB).
func (m *Mem) Free(dir string) (free, total uint64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.capacity
	if c == 0 {
		c = 1 << 40
	}
	u := m.used()
	if u > c {
		u = c
	}
	return uint64(c - u), uint64(c), nil
}

type memFile struct {
	fs     *Mem
	node   *memNode
	name   string
	ro     bool
	closed bool
}

func (f *memFile) Name() string { return f.name }

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.use("read"); err != nil {
		return 0, err
	}
	if err := f.fs.check(OpRead, f.name); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("%s: negative offset", f.name)
	}
	if off >= int64(len(f.node.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.node.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.use("write"); err != nil {
		return 0, err
	}
	if f.ro {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	if err := f.fs.check(OpWrite, f.name); err != nil {
		return 0, err
	}
	if end := off + int64(len(p)); f.fs.capacity > 0 && end > int64(len(f.node.data)) &&
		f.fs.used()+end-int64(len(f.node.data)) > f.fs.capacity {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.ENOSPC}
	}
	f.node.data = writeAt(f.node.data, p, off)
	f.node.pending = append(f.node.pending, memOp{off: off, data: append([]byte(nil), p...)})
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.use("sync"); err != nil {
		return err
	}
	if err := f.fs.check(OpSync, f.name); err != nil {
		return err
	}
	f.node.durable = append(f.node.durable[:0], f.node.data...)
	f.node.pending = nil
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.use("truncate"); err != nil {
		return err
	}
	if err := f.fs.check(OpTruncate, f.name); err != nil {
		return err
	}
	if grow := size - int64(len(f.node.data)); f.fs.capacity > 0 && grow > 0 && f.fs.used()+grow > f.fs.capacity {
		return &os.PathError{Op: "truncate", Path: f.name, Err: syscall.ENOSPC}
	}
	f.node.data = resize(f.node.data, size)
	f.node.pending = append(f.node.pending, memOp{truncate: true, off: size})
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.fs.crashed {
		return 0, ErrCrashed
	}
	return int64(len(f.node.data)), nil
}

// Close ends the file's use: every later call fails as on an *os.File
// (os.ErrClosed), so a test meets the code that syncs or writes a file it
// closed, which the real file system refuses with EBADF.
func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return &os.PathError{Op: "close", Path: f.name, Err: os.ErrClosed}
	}
	f.closed = true
	return nil
}

// use fails once the file is closed. f.fs.mu is held.
func (f *memFile) use(op string) error {
	if f.closed {
		return &os.PathError{Op: op, Path: f.name, Err: os.ErrClosed}
	}
	return nil
}

func resize(b []byte, n int64) []byte {
	if int64(len(b)) >= n {
		return b[:n]
	}
	return append(b, make([]byte, n-int64(len(b)))...)
}

func writeAt(b, p []byte, off int64) []byte {
	if end := off + int64(len(p)); end > int64(len(b)) {
		b = resize(b, end)
	}
	copy(b[off:], p)
	return b
}

// Halt stops m at this instant, as a crash would: every later operation
// fails with ErrCrashed. Crash then builds what survives.
func (m *Mem) Halt() { m.mu.Lock(); m.crashed = true; m.mu.Unlock() }
