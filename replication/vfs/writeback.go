package vfs

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// StartWriteback starts the write-back of f's dirty pages in [off,
// off+n) without waiting for it (sync_file_range SYNC_FILE_RANGE_WRITE):
// a writer that starts each stretch it wrote keeps the page cache's dirty
// pages bounded, and the next Sync has only the tail left. It promises no
// durability: only Sync does. It does nothing (nil) on a file that is not
// a real one (Mem) or where the kernel or file system has no
// sync_file_range.
func StartWriteback(f File, off, n int64) error {
	osf, ok := f.(interface{ OSFile() *os.File })
	if !ok || n <= 0 {
		return nil
	}
	of := osf.OSFile()
	for {
		err := unix.SyncFileRange(int(of.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
		switch err {
		case nil, unix.EINVAL, unix.ENOSYS, unix.EOPNOTSUPP, unix.ESPIPE:
			return nil
		case unix.EINTR:
			continue
		}
		return &os.PathError{Op: "sync_file_range", Path: of.Name(), Err: fmt.Errorf("offsets %d-%d: %w", off, off+n, err)}
	}
}
