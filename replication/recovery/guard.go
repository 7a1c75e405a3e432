package recovery

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Guard holds the files an export must never write: the targets,
// journals, retention stores and catalogues of pairs. It compares by
// device and inode (and, for block devices, the device number), never by
// name, so a hard link, a symlink or a path such as dir/../target is
// recognised.
type Guard struct {
	files []guarded
}

type guarded struct {
	what     string // "pair p1's target /dev/sdb"
	dev, ino uint64
	rdev     uint64 // a block device's device number
	block    bool
	dir      bool
}

// AddFile guards the file or device at path; a missing one guards
// nothing (there is nothing to overwrite).
func (g *Guard) AddFile(pair, role, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return
	}
	g.add(fmt.Sprintf("pair %s's %s %s", pair, role, path), fi)
}

// AddDir guards dir and every file under it: an export may neither
// overwrite one nor be made inside it.
func (g *Guard) AddDir(pair, role, dir string) {
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil
		}
		what := fmt.Sprintf("pair %s's %s %s", pair, role, dir)
		if path != dir {
			what = fmt.Sprintf("%s in pair %s's %s %s", filepath.Base(path), pair, role, dir)
		}
		g.add(what, fi)
		return nil
	})
}

func (g *Guard) add(what string, fi fs.FileInfo) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	g.files = append(g.files, guarded{what: what, dev: uint64(st.Dev), ino: uint64(st.Ino), rdev: uint64(st.Rdev),
		block: isBlockDevice(fi), dir: fi.IsDir()})
}

// ErrGuarded is a destination that is a pair's own file.
var ErrGuarded = errors.New("the destination is a replication pair's own file")

// Check refuses a destination that is (or is inside the directory of)
// a guarded file, or a block device holding one. A destination that does
// not exist yet is checked by its parent directory.
func (g *Guard) Check(dest string) error {
	fi, err := os.Stat(dest)
	if errors.Is(err, fs.ErrNotExist) {
		parent, perr := os.Stat(filepath.Dir(dest))
		if perr != nil {
			return nil // the export itself says the directory is missing
		}
		if st, ok := parent.Sys().(*syscall.Stat_t); ok {
			for _, f := range g.files {
				if f.dir && f.dev == uint64(st.Dev) && f.ino == uint64(st.Ino) {
					return fmt.Errorf("%w: %s would be made inside %s: export to another directory", ErrGuarded, dest, f.what)
				}
			}
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("destination %s: %w", dest, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	block := isBlockDevice(fi)
	for _, f := range g.files {
		switch {
		case f.dev == uint64(st.Dev) && f.ino == uint64(st.Ino):
			return fmt.Errorf("%w: %s is %s: export to a new file or another device (--force does not change this)", ErrGuarded, dest, f.what)
		case block && f.block && f.rdev == uint64(st.Rdev):
			return fmt.Errorf("%w: %s is the same device as %s: export to a new file or another device (--force does not change this)", ErrGuarded, dest, f.what)
		case block && f.dev == uint64(st.Rdev):
			return fmt.Errorf("%w: device %s holds the file system of %s: export to a new file or another device (--force does not change this)", ErrGuarded, dest, f.what)
		}
	}
	return nil
}
