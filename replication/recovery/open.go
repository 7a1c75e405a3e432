package recovery

import (
	"errors"
	"fmt"
	"os"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// ErrNoTarget is a pair whose target was not given and whose catalogue
// does not record it.
var ErrNoTarget = errors.New("the catalogue does not record the pair's target")

// OpenTarget resolves p in st and opens the pair's target in fsys:
// target, or the one the catalogue records. readOnly opens it for an
// export, which changes neither the target nor the store; a rollback
// opens it for writing. Nothing is opened when p does not resolve.
func OpenTarget(st *journal.Store, fsys vfs.FS, target string, p Point, readOnly bool) (vfs.File, Resolved, error) {
	if target == "" {
		target = st.State().Target
	}
	if target == "" {
		return nil, Resolved{}, ErrNoTarget
	}
	r, err := Resolve(st, p)
	if err != nil {
		return nil, Resolved{}, err
	}
	mode := os.O_RDWR
	if readOnly {
		mode = os.O_RDONLY
	}
	tf, err := fsys.OpenFile(target, mode, 0)
	if err != nil {
		return nil, Resolved{}, fmt.Errorf("target: %w", err)
	}
	return tf, r, nil
}

// PairGuard guards the files of the pair ps whose retention store is in
// dir: the directory (with the catalogue and the undo segments) and its
// target, as given (target; "" for none) and as the catalogue records it.
func PairGuard(ps journal.PairState, dir, target string) *Guard {
	var g Guard
	g.AddDir(ps.Pair, "retention directory", dir)
	if target != "" {
		g.AddFile(ps.Pair, "target", target)
	}
	if ps.Target != "" {
		g.AddFile(ps.Pair, "target", ps.Target)
	}
	return &g
}
