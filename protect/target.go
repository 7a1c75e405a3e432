package protect

import (
	"fmt"
	"io"
	"os"
)

// TargetCheck asks whether path may receive the source disk. Its fields
// are the ones setup's target rules take.
type TargetCheck struct {
	Path            string
	SourceName      string
	SourceSize      int64
	SourceBlockSize uint32
	AllowFiles      bool
	AllowNoSCSIID   bool
	// Overwrite is what the user typed to allow overwriting a target that
	// holds a file system or partition table (its name).
	Overwrite string
	// InUse are the targets of the pairs in agent.toml.
	InUse []string
	// RetentionDirs are the agent's journal and retention directories.
	RetentionDirs []string
}

// TargetVerdict is the answer to a TargetCheck.
type TargetVerdict struct {
	OK     bool
	Size   int64
	Code   string // a short word for scripts: "missing", "too-small", ...
	Reason string // what is wrong and what to do
	// Confirm, when set, is what the user must type (as Overwrite) to
	// allow the target.
	Confirm string
}

// BasicTarget is the least every target must be: it exists, is a block
// device or (with AllowFiles) a regular file, and holds the source. The
// full rules (boot disk, mounts, holders, LVM, SCSI id, file systems) are
// setup's; callers pass them as Options.CheckTarget.
func BasicTarget(c TargetCheck) TargetVerdict {
	fi, err := os.Stat(c.Path)
	if err != nil {
		return TargetVerdict{Code: "missing", Reason: fmt.Sprintf("%s: %v: give an existing disk of this host", c.Path, err)}
	}
	switch {
	case fi.Mode()&os.ModeDevice != 0 && fi.Mode()&os.ModeCharDevice == 0:
	case fi.Mode().IsRegular():
		if !c.AllowFiles {
			return TargetVerdict{Code: "file", Reason: fmt.Sprintf("%s is a regular file, not a disk: give a block device, or --allow-files for a demo or test", c.Path)}
		}
	default:
		return TargetVerdict{Code: "not-a-disk", Reason: fmt.Sprintf("%s is not a block device (mode %v): give a disk such as /dev/sdc", c.Path, fi.Mode())}
	}
	size, err := sizeOf(c.Path)
	if err != nil {
		return TargetVerdict{Code: "unreadable", Reason: fmt.Sprintf("%s: %v", c.Path, err)}
	}
	if size < c.SourceSize {
		return TargetVerdict{Size: size, Code: "too-small", Reason: fmt.Sprintf("%s holds %d bytes, less than the %d of source disk %s: give a target at least as large",
			c.Path, size, c.SourceSize, c.SourceName)}
	}
	return TargetVerdict{OK: true, Size: size}
}

// sizeOf is a file's or block device's size.
func sizeOf(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return f.Seek(0, io.SeekEnd)
}
