package main

import (
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// treeSums is the sha256 of every regular file under dir, by path.
func treeSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	sums := map[string][32]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sums[p] = sha256.Sum256(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func sameSums(t *testing.T, what string, before, after map[string][32]byte) {
	t.Helper()
	for p, s := range before {
		if a, ok := after[p]; !ok {
			t.Errorf("%s: %s is gone", what, p)
		} else if a != s {
			t.Errorf("%s: %s changed", what, p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			t.Errorf("%s: %s appeared", what, p)
		}
	}
}

func undoSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.undo"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no undo segments in %s: %v", dir, err)
	}
	sort.Strings(segs)
	return segs
}

// The pair's own files are never a destination, whatever the name they
// are given and --force or not: nothing changes.
func TestRetentionRecoverRefusesOwnFiles(t *testing.T) {
	fx := newFixture(t)
	links := filepath.Join(fx.dir, "links")
	if err := os.MkdirAll(filepath.Join(links, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(fx.target, filepath.Join(links, "hard.img")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fx.target, filepath.Join(links, "sym.img")); err != nil {
		t.Fatal(err)
	}
	seg := undoSegments(t, fx.retDir)[0]
	for _, tc := range []struct{ name, dest, want string }{
		{"target", fx.target, "pair p1's target"},
		{"hard link to the target", filepath.Join(links, "hard.img"), "pair p1's target"},
		{"symlink to the target", filepath.Join(links, "sym.img"), "pair p1's target"},
		{"dotdot path to the target", filepath.Join(links, "sub", "..", "..", "target.img"), "pair p1's target"},
		{"undo segment", seg, filepath.Base(seg) + " in pair p1's retention directory"},
		{"catalogue", filepath.Join(fx.retDir, "catalogue.db"), "catalogue.db in pair p1's retention directory"},
		{"new file in the store", filepath.Join(fx.retDir, "new.img"), "inside pair p1's retention directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := treeSums(t, fx.dir)
			for _, force := range []bool{false, true} {
				args := []string{"retention", "recover", "--dir", fx.retDir, "--point", "earliest", "--dest", tc.dest}
				if force {
					args = append(args, "--force")
				}
				_, _, err := run(t, args...)
				wantErr(t, err, false, tc.dest, tc.want, "nothing was written")
				sameSums(t, strings.Join(args[5:], " "), before, treeSums(t, fx.dir))
			}
		})
	}
	// The store still recovers: it was not overwritten.
	dest := filepath.Join(fx.dir, "after.img")
	mustRun(t, "retention", "recover", "--dir", fx.retDir, "--point", "tag:"+fx.tags[0].name, "--dest", dest)
	if got, _ := os.ReadFile(dest); string(got) != string(fx.images[fx.tags[0].name]) {
		t.Error("recover after the refusals: wrong image")
	}
}

// A recover that fails (a corrupt undo segment) leaves neither --dest
// nor --dest.partial; a stale .partial is refused and named.
func TestRetentionRecoverFailureLeavesNoDest(t *testing.T) {
	fx := newFixture(t)
	dest := filepath.Join(fx.dir, "out.img")

	t.Run("stale partial", func(t *testing.T) {
		if err := os.WriteFile(dest+".partial", []byte("half an image"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := run(t, "retention", "recover", "--dir", fx.retDir, "--point", "earliest", "--dest", dest, "--force")
		wantErr(t, err, false, dest+".partial", "cut short", "remove it")
		if _, err := os.Stat(dest); !errors.Is(err, fs.ErrNotExist) {
			t.Error("refused recover made --dest")
		}
		os.Remove(dest + ".partial")
	})

	t.Run("corrupt undo segment", func(t *testing.T) {
		segs := undoSegments(t, fx.retDir)
		seg := segs[len(segs)-1]
		b, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 'v' // type 118
		}
		if err := os.WriteFile(seg, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err = run(t, "retention", "recover", "--dir", fx.retDir, "--point", "earliest", "--dest", dest)
		if err == nil {
			t.Fatal("recover over a corrupt undo segment succeeded")
		}
		t.Logf("recover: %v", err)
		for _, p := range []string{dest, dest + ".partial"} {
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%s left by a failed recover", p)
			}
		}
	})
}
