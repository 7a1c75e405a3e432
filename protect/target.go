package protect

import (
	"github.com/mtconsole/mtconsole/setup"
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

// SetupTarget is the target rule of package setup (CheckTarget: the boot
// disk, mounts, holders, LVM labels, the retention volume, size, block
// size, SCSI id, file systems that need a typed name) on the host env
// describes: the one rule protect, mtconsole check --targets and the
// console share.
func SetupTarget(env *setup.Env) func(TargetCheck) TargetVerdict {
	return func(c TargetCheck) TargetVerdict {
		inUse := map[string]string{}
		for _, t := range c.InUse {
			inUse[t] = "in agent.toml"
		}
		v := setup.CheckTarget(env, setup.TargetRequest{
			Path: c.Path, SourceName: c.SourceName, SourceSize: c.SourceSize, SourceBlockSize: c.SourceBlockSize,
			AllowFiles: c.AllowFiles, AllowNoSCSIID: c.AllowNoSCSIID, Overwrite: c.Overwrite,
			InUse: inUse, RetentionDirs: c.RetentionDirs,
		})
		return TargetVerdict{OK: v.OK, Size: v.Size, Code: v.Code, Reason: v.Reason, Confirm: v.Confirm}
	}
}
