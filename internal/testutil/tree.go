package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Tree is a snapshot of a directory tree: one line per entry below it,
// "path mode size sha256" for a file, "path mode -> target" for a
// symlink, "path mode" for a directory. Two snapshots are equal when
// nothing below the root was created, removed, changed or re-moded.
func Tree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("%s %v", filepath.ToSlash(rel), fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			line += " -> " + target
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(b)
			line += fmt.Sprintf(" %d %s", fi.Size(), hex.EncodeToString(sum[:]))
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	sort.Strings(out)
	return out
}

// SameTree fails t, naming each difference, when root differs from the
// snapshot before.
func SameTree(t testing.TB, root string, before []string) {
	t.Helper()
	after := Tree(t, root)
	in := func(s []string) map[string]bool {
		m := map[string]bool{}
		for _, l := range s {
			m[l] = true
		}
		return m
	}
	b, a := in(before), in(after)
	var diff []string
	for _, l := range before {
		if !a[l] {
			diff = append(diff, "- "+l)
		}
	}
	for _, l := range after {
		if !b[l] {
			diff = append(diff, "+ "+l)
		}
	}
	if len(diff) > 0 {
		t.Errorf("%s changed:\n%s", root, strings.Join(diff, "\n"))
	}
}
