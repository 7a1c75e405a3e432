package vfs

import (
	"errors"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrNoZero says a file cannot zero a range without writing the zeros
// (no hole punching here, a device without a guaranteed zeroing
// command): write zeros instead. Nothing was changed.
var ErrNoZero = errors.New("zeroing a range without writing it not available")

// Zeroer is a file that can make a range read as zeros without writing
// them (see osFile.Zero).
type Zeroer interface {
	Zero(off, n int64) error
}

// Zero makes n bytes of f at off read as zeros, as a storage admin
// expects of a range known to be empty: on a regular file a hole is
// punched (fallocate PUNCH_HOLE|KEEP_SIZE: the blocks are freed, the size
// kept); on a block device the device is told to zero them
// (BLKZEROOUT, which the kernel guarantees reads back as zeros, falling
// back to writing zeros itself). Where neither is possible, or the range
// is not aligned as the call needs, the zeros are written through
// f.WriteAt from buf (zeros, any length > 0). Nothing is durable until
// Sync.
func Zero(f File, off, n int64, buf []byte) error {
	if z, ok := f.(Zeroer); ok {
		err := z.Zero(off, n)
		if !errors.Is(err, ErrNoZero) {
			return err
		}
	}
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := f.WriteAt(buf[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}

// Zero implements Zeroer for real files and block devices.
func (f *osFile) Zero(off, n int64) error { return zeroOS(f.File, off, n) }

func zeroOS(f *os.File, off, n int64) error {
	if n <= 0 {
		return nil
	}
	fi, err := f.Stat()
	if err != nil {
		return ErrNoZero
	}
	fd := int(f.Fd())
	switch {
	case fi.Mode().IsRegular():
		err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, n)
		switch err {
		case nil:
			return nil
		case unix.EOPNOTSUPP, unix.ENOSYS, unix.EINVAL:
			return ErrNoZero
		}
		return &os.PathError{Op: "fallocate punch hole", Path: f.Name(), Err: err}
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
		// BLKZEROOUT wants the range aligned to the logical block size;
		// it drops the page cache of the range itself.
		if off%512 != 0 || n%512 != 0 {
			return ErrNoZero
		}
		r := [2]uint64{uint64(off), uint64(n)}
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKZEROOUT, uintptr(unsafe.Pointer(&r[0])))
		switch e {
		case 0:
			return nil
		case unix.EOPNOTSUPP, unix.ENOTTY, unix.EINVAL:
			return ErrNoZero
		}
		return &os.PathError{Op: "ioctl BLKZEROOUT", Path: f.Name(), Err: e}
	}
	return ErrNoZero
}
