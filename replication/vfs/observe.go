package vfs

import (
	"os"
	"time"
)

// Observed returns fs with every file's Sync timed: observe is called
// after each fdatasync with the file's name and how long it took, failed
// ones included. Directory syncs are not timed. The files keep the
// optional methods of fs's files (OSFile, Allocate), so fast paths that
// look for them still find them.
func Observed(fs FS, observe func(name string, d time.Duration)) FS {
	return observedFS{fs, observe}
}

type observedFS struct {
	FS
	observe func(string, time.Duration)
}

func (o observedFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := o.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	// Pointers: a File may be a map key (its func field would make a
	// value unhashable).
	of := observedFile{f, o.observe}
	if osf, ok := f.(interface{ OSFile() *os.File }); ok {
		return &observedOSFile{of, osf}, nil
	}
	return &of, nil
}

type observedFile struct {
	File
	observe func(string, time.Duration)
}

func (f *observedFile) Sync() error {
	t := time.Now()
	err := f.File.Sync()
	f.observe(f.File.Name(), time.Since(t))
	return err
}

// Allocate keeps the inner file's fallocate (or its truncate fallback).
func (f *observedFile) Allocate(size int64) error { return Allocate(f.File, size) }

type observedOSFile struct {
	observedFile
	osf interface{ OSFile() *os.File }
}

func (f *observedOSFile) OSFile() *os.File { return f.osf.OSFile() }

// WriteDirect keeps the inner file's direct writes (WriteAppend).
func (f *observedOSFile) WriteDirect(p []byte, off int64) (int, error) {
	if d, ok := f.File.(DirectWriter); ok {
		return d.WriteDirect(p, off)
	}
	return 0, ErrNoDirect
}

// Zero keeps the inner file's zeroing without writing (Zero).
func (f *observedOSFile) Zero(off, n int64) error {
	if z, ok := f.File.(Zeroer); ok {
		return z.Zero(off, n)
	}
	return ErrNoZero
}

// CopyObserver is a file that wants to know of the I/O a fast path did on
// it past ReadAt and WriteAt: copy_file_range reads its source and writes
// its destination in the kernel, where a wrapper that counts I/O never
// sees it. The fast path calls CopyRead on the source and CopyWrite on
// the destination after each copy, with the bytes moved and the time
// the call took (the same time on both sides).
type CopyObserver interface {
	CopyRead(n int64, start time.Time, d time.Duration)
	CopyWrite(n int64, start time.Time, d time.Duration)
}

// ObserveCopy tells src and dst, where they are CopyObservers, of n bytes
// copied from one to the other in d from start.
func ObserveCopy(src, dst File, n int64, start time.Time, d time.Duration) {
	if o, ok := src.(CopyObserver); ok {
		o.CopyRead(n, start, d)
	}
	if o, ok := dst.(CopyObserver); ok {
		o.CopyWrite(n, start, d)
	}
}

// CopyRead passes the copy on to the inner file.
func (f *observedOSFile) CopyRead(n int64, start time.Time, d time.Duration) {
	if o, ok := f.File.(CopyObserver); ok {
		o.CopyRead(n, start, d)
	}
}

// CopyWrite passes the copy on to the inner file.
func (f *observedOSFile) CopyWrite(n int64, start time.Time, d time.Duration) {
	if o, ok := f.File.(CopyObserver); ok {
		o.CopyWrite(n, start, d)
	}
}
