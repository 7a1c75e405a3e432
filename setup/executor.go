package setup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Executor makes setup's changes on the host: every command setup runs
// and every file it writes, links or removes goes through one. A nil or
// zero Executor performs them. A dry-run Executor performs none: it
// records what it would do ("would run: …", "would write …") and returns
// success, so a dry run changes nothing, anywhere, whichever screen or
// command forgets to ask whether it is one (subiquity's rule).
type Executor struct {
	dry   bool
	root  string // shown as /: the records name paths as on the host
	mu    sync.Mutex
	would []string
	made  map[string]bool // directories a dry run would have made
}

// DryRun is an Executor that records and performs nothing. Its records
// name the paths below root as the host will have them (root "/" or "":
// as they are).
func DryRun(root string) *Executor { return &Executor{dry: true, root: root} }

// show is path as the host will have it: below the root, from "/".
func (x *Executor) show(path string) string {
	if x.root == "" || x.root == "/" {
		return path
	}
	rel, err := filepath.Rel(x.root, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return path
	}
	return "/" + filepath.ToSlash(rel)
}

// Dry reports whether x records instead of performing.
func (x *Executor) Dry() bool { return x != nil && x.dry }

func (x *Executor) record(s string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.would = append(x.would, s)
}

// Would lists what a dry run would have done, from the n-th record on
// (Mark gives n), one line each.
func (x *Executor) Would(n int) []string {
	if x == nil {
		return nil
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if n >= len(x.would) {
		return nil
	}
	return append([]string(nil), x.would[n:]...)
}

// Mark is how many records there are: Would(Mark()) after an action is
// what that action would have done.
func (x *Executor) Mark() int {
	if x == nil {
		return 0
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.would)
}

// Run runs argv, streaming its output to line (RunStreaming).
func (x *Executor) Run(ctx context.Context, argv, env []string, line func(string)) error {
	if x.Dry() {
		x.record("would run: " + strings.Join(append(append([]string(nil), env...), argv...), " "))
		return nil
	}
	return RunStreaming(ctx, argv, env, line)
}

// Install installs packages with pm.
func (x *Executor) Install(ctx context.Context, pm PackageManager, pkgs []string, line func(string)) error {
	if x.Dry() {
		x.record("would run: " + pm.InstallCommand(pkgs))
		return nil
	}
	return pm.Install(ctx, pkgs, line)
}

// WriteFile replaces path with data atomically (WriteFileAtomic).
func (x *Executor) WriteFile(path string, data []byte, mode os.FileMode) error {
	if x.Dry() {
		what := "new"
		if cur, err := os.ReadFile(path); err == nil {
			what = fmt.Sprintf("replaces %d bytes", len(cur))
		}
		x.record(fmt.Sprintf("would write %s (%d bytes, %04o, %s)", x.show(path), len(data), mode.Perm(), what))
		return nil
	}
	return WriteFileAtomic(path, data, mode)
}

// Link makes path a symlink to target, atomically.
func (x *Executor) Link(path, target string) error {
	if x.Dry() {
		x.record("would link " + x.show(path) + " → " + target)
		return nil
	}
	return replaceLink(path, target)
}

// MkdirAll makes dir and its missing parents, and gives dir mode.
func (x *Executor) MkdirAll(dir string, mode os.FileMode) error {
	if x.Dry() {
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() && fi.Mode().Perm() == mode.Perm() {
			return nil
		}
		x.mu.Lock()
		made := x.made[dir]
		if x.made == nil {
			x.made = map[string]bool{}
		}
		x.made[dir] = true
		x.mu.Unlock()
		if !made {
			x.record(fmt.Sprintf("would mkdir %s (%04o)", x.show(dir), mode.Perm()))
		}
		return nil
	}
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	return os.Chmod(dir, mode)
}

// Remove removes path; a path that is not there is no error.
func (x *Executor) Remove(path string) error {
	if x.Dry() {
		if _, err := os.Lstat(path); err == nil {
			x.record("would remove " + x.show(path))
		}
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveAll removes path and what it holds.
func (x *Executor) RemoveAll(path string) error {
	if x.Dry() {
		if _, err := os.Lstat(path); err == nil {
			x.record("would remove " + x.show(path) + " (and what it holds)")
		}
		return nil
	}
	return os.RemoveAll(path)
}
