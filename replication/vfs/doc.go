// Package vfs is the small file-system interface that every store of the
// replication engine does its I/O through, with two implementations:
//
//   - OS, the real one: Sync is fdatasync(2), SyncDir fsyncs a directory,
//     Free is statfs(2), and the size of a block device comes from the
//     BLKGETSIZE64 ioctl;
//   - Mem, an in-memory file system for tests that remembers which writes and
//     which directory entries were made durable, and can "crash": Crash
//     returns the file system as a power cut would leave it, keeping,
//     dropping or tearing what was not synced. Every operation can be made to
//     fail through an Injector (EIO, ENOSPC, or a crash at the Nth sync
//     point), and a capacity turns writes past it into ENOSPC.
//
// Optional methods of real files, found by type assertion and kept by
// the wrappers (Observed): OSFile (copy_file_range, sync_file_range),
// Allocate (fallocate), WriteDirect (O_DIRECT writes of aligned blocks,
// WriteAppend, which writes straight from an AlignedBuffer laid out as
// the file and copies other buffers to aligned pieces first) and Zero (a range made to read as zeros without writing
// it: a punched hole in a file, BLKZEROOUT on a block device; the
// function Zero writes the zeros where a file cannot). A wrapper that
// counts I/O learns of what copy_file_range moved past it through
// CopyObserver (ObserveCopy).
//
// The package promises nothing beyond what POSIX promises: data written is
// durable after Sync of its file, a created, renamed or removed name is
// durable after SyncDir of its directory. Mem enforces exactly that, so code
// that passes its crash tests does not lean on stronger guarantees.
package vfs
