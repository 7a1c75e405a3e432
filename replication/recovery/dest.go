package recovery

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// PartialSuffix names the file an export writes before it is complete:
// DEST.partial, renamed to DEST only once the whole image is durable.
const PartialSuffix = ".partial"

// ExportOptions say what an existing destination may be.
type ExportOptions struct {
	// Replace lets an existing regular file be replaced: the image is
	// still written to DEST.partial and renamed over it only when
	// complete, so a failed export leaves the old file as it was.
	Replace bool
	// Device lets the destination be an existing block device, written in
	// place (a device cannot be renamed): a failed export leaves a
	// partial image on it, and the error says so.
	Device bool
}

// ErrPartialDevice is an export to a block device that stopped: the
// device holds part of an image.
var ErrPartialDevice = errors.New("the device holds a partial image: do not use it, export to it again")

// ExportTo writes the image of point r to dest on fsys, never leaving
// anything at dest that could pass for a complete image: the image goes
// to DEST.partial (created, never reused: a stale one is refused and
// named), is made durable, and is renamed to dest; the directory is then
// synced. On any failure or cancel DEST.partial is removed. A block
// device (opts.Device) is written in place instead.
func ExportTo(ctx context.Context, st *journal.Store, src vfs.File, fsys vfs.FS, dest string, r Resolved, opts ExportOptions, progress Progress) (Result, error) {
	res := Result{Point: r}
	fi, err := statFS(fsys, dest)
	switch {
	case err == nil && isBlockDevice(fi):
		if !opts.Device {
			return res, fmt.Errorf("export to %s: it is a block device: give a new file, or allow the device (--force)", dest)
		}
		return exportDevice(ctx, st, src, fsys, dest, r, progress)
	case err == nil && !fi.Mode().IsRegular():
		return res, fmt.Errorf("export to %s: it exists and is not a regular file or a block device: give a new path", dest)
	case err == nil && !opts.Replace:
		return res, fmt.Errorf("export to %s: %w: give a new path", dest, fs.ErrExist)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return res, fmt.Errorf("export to %s: %w", dest, err)
	}
	partial := dest + PartialSuffix
	df, err := fsys.OpenFile(partial, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return res, fmt.Errorf("export to %s: %s exists: it is the partial image of an export that was cut short (killed or crashed), not a usable image; remove it and export again", dest, partial)
	}
	if err != nil {
		return res, fmt.Errorf("export to %s: %w", dest, err)
	}
	res, err = Export(ctx, st, src, df, r, progress) // fdatasyncs df
	if cerr := df.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("export to %s: close %s: %w", dest, partial, cerr)
	}
	if err == nil && !opts.Replace {
		// Someone made dest meanwhile: a rename would destroy it.
		if _, serr := statFS(fsys, dest); serr == nil {
			err = fmt.Errorf("export to %s: %w (it appeared while the export ran): give a new path", dest, fs.ErrExist)
		}
	}
	if err == nil {
		if err = fsys.Rename(partial, dest); err != nil {
			err = fmt.Errorf("export to %s: %w", dest, err)
		}
	}
	if err != nil {
		if rerr := fsys.Remove(partial); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return res, fmt.Errorf("%w; removing the partial image %s failed too (%v): remove it by hand, it is not a usable image", err, partial, rerr)
		}
		return res, fmt.Errorf("%w; the partial image %s was removed, nothing was written to %s", err, partial, dest)
	}
	if err := fsys.SyncDir(filepath.Dir(dest)); err != nil {
		return res, fmt.Errorf("export to %s: the image is complete but its name may not survive a crash: %w", dest, err)
	}
	return res, nil
}

// exportDevice writes the image onto a block device in place.
func exportDevice(ctx context.Context, st *journal.Store, src vfs.File, fsys vfs.FS, dest string, r Resolved, progress Progress) (Result, error) {
	df, err := fsys.OpenFile(dest, os.O_RDWR, 0)
	if err != nil {
		return Result{Point: r}, fmt.Errorf("export to %s: %w", dest, err)
	}
	res, err := Export(ctx, st, src, df, r, progress)
	if cerr := df.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("export to %s: close: %w", dest, cerr)
	}
	if err != nil {
		return res, fmt.Errorf("%w (%s): %w", ErrPartialDevice, dest, err)
	}
	return res, nil
}

func isBlockDevice(fi fs.FileInfo) bool {
	return fi.Mode()&fs.ModeDevice != 0 && fi.Mode()&fs.ModeCharDevice == 0
}

// statFS stats name on fsys: the real file system follows symlinks; any
// other (vfs.Mem) knows regular files only.
func statFS(fsys vfs.FS, name string) (fs.FileInfo, error) {
	if fsys == vfs.OS {
		return os.Stat(name)
	}
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	return memInfo{name: filepath.Base(name), size: size}, nil
}

type memInfo struct {
	name string
	size int64
}

func (m memInfo) Name() string       { return m.name }
func (m memInfo) Size() int64        { return m.size }
func (m memInfo) Mode() fs.FileMode  { return 0o600 }
func (m memInfo) ModTime() time.Time { return time.Time{} }
func (m memInfo) IsDir() bool        { return false }
func (m memInfo) Sys() any           { return nil }
