package recovery

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

func memExists(m *vfs.Mem, name string) bool {
	_, err := m.ReadFile(name)
	return err == nil
}

func TestExportToRenamesWhenComplete(t *testing.T) {
	smallRuns(t) // progress is reported while the export runs
	f := newFixture(t, 4, 60, true)
	r, _ := Resolve(f.st, Point{Kind: Earliest})
	var sawPartial bool
	prog := func(done, total int64) {
		if done < total && memExists(f.fs, "/r/img"+PartialSuffix) && !memExists(f.fs, "/r/img") {
			sawPartial = true
		}
	}
	if _, err := ExportTo(context.Background(), f.st, f.target, f.fs, "/r/img", r, ExportOptions{}, prog); err != nil {
		t.Fatal(err)
	}
	if !sawPartial {
		t.Error("while the export ran, the image was not at /r/img.partial alone")
	}
	got, _ := f.fs.ReadFile("/r/img")
	if !bytes.Equal(got, f.images[r.Seq]) {
		t.Fatal("exported image differs")
	}
	if memExists(f.fs, "/r/img"+PartialSuffix) {
		t.Error(".partial left after a complete export")
	}
	// An existing destination is refused, and left as it was.
	if _, err := ExportTo(context.Background(), f.st, f.target, f.fs, "/r/img", r, ExportOptions{}, nil); !errors.Is(err, fs.ErrExist) {
		t.Errorf("export over an existing file: %v", err)
	}
}

// A cancel (the agent told to stop) or a failed write mid-export leaves
// neither DEST nor DEST.partial.
func TestExportToFailureLeavesNothing(t *testing.T) {
	for _, tc := range []string{"cancel", "write error"} {
		t.Run(tc, func(t *testing.T) {
			f := newFixture(t, 4, 60, true)
			r, _ := Resolve(f.st, Point{Kind: Earliest})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var calls int
			prog := func(done, total int64) {
				if calls++; calls == 1 && tc == "cancel" {
					cancel()
				}
			}
			if tc == "write error" {
				smallRuns(t) // several writes: the second fails
				writes := 0
				f.fs.SetInjector(func(op vfs.Op, name string) error {
					if op == vfs.OpWrite && name == "/r/img"+PartialSuffix {
						if writes++; writes > 1 {
							return errors.New("input/output error")
						}
					}
					return nil
				})
			}
			_, err := ExportTo(ctx, f.st, f.target, f.fs, "/r/img", r, ExportOptions{}, prog)
			if err == nil {
				t.Fatal("export succeeded")
			}
			f.fs.SetInjector(nil)
			for _, n := range []string{"/r/img", "/r/img" + PartialSuffix} {
				if memExists(f.fs, n) {
					t.Errorf("%s left after a failed export (%v)", n, err)
				}
			}
		})
	}
}

func TestExportToStalePartial(t *testing.T) {
	f := newFixture(t, 4, 60, true)
	r, _ := Resolve(f.st, Point{Kind: Earliest})
	stale, _ := f.fs.OpenFile("/r/img"+PartialSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	stale.WriteAt([]byte("half"), 0)
	stale.Close()
	_, err := ExportTo(context.Background(), f.st, f.target, f.fs, "/r/img", r, ExportOptions{Replace: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "/r/img"+PartialSuffix) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("export with a stale .partial: %v", err)
	}
	if memExists(f.fs, "/r/img") {
		t.Error("refused export made its destination")
	}
	if got, _ := f.fs.ReadFile("/r/img" + PartialSuffix); string(got) != "half" {
		t.Error("refused export touched the stale .partial")
	}
}

// Replace puts the new image over an old file only when it is complete.
func TestExportToReplace(t *testing.T) {
	f := newFixture(t, 4, 60, true)
	r, _ := Resolve(f.st, Point{Kind: Earliest})
	old, _ := f.fs.OpenFile("/r/img", os.O_RDWR|os.O_CREATE, 0o600)
	old.WriteAt([]byte("keep me"), 0)
	old.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ExportTo(ctx, f.st, f.target, f.fs, "/r/img", r, ExportOptions{Replace: true}, nil); err == nil {
		t.Fatal("cancelled export succeeded")
	}
	if got, _ := f.fs.ReadFile("/r/img"); string(got) != "keep me" {
		t.Fatal("a failed replacing export changed the old file")
	}
	if _, err := ExportTo(context.Background(), f.st, f.target, f.fs, "/r/img", r, ExportOptions{Replace: true}, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.fs.ReadFile("/r/img"); !bytes.Equal(got, f.images[r.Seq]) {
		t.Fatal("replaced image differs")
	}
}

func TestGuard(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target.img")
	ret := filepath.Join(dir, "retention")
	jdir := filepath.Join(dir, "journal")
	for _, d := range []string{ret, jdir, filepath.Join(dir, "sub"), filepath.Join(dir, "out")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{target, filepath.Join(ret, "0000000000000001.undo"), filepath.Join(ret, "catalogue.db"), filepath.Join(jdir, "0000000000000001.redo")} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(target, filepath.Join(dir, "out", "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "out", "sym")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "out", "other.img"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var g Guard
	g.AddFile("p1", "target", target)
	g.AddDir("p1", "retention directory", ret)
	g.AddDir("p1", "journal directory", jdir)
	for dest, want := range map[string]string{
		target:                                        "target",
		filepath.Join(dir, "out", "hard"):             "target",
		filepath.Join(dir, "out", "sym"):              "target",
		filepath.Join(dir, "sub", "..", "target.img"): "target",
		filepath.Join(ret, "0000000000000001.undo"):   "0000000000000001.undo in pair p1's retention directory",
		filepath.Join(ret, "catalogue.db"):            "catalogue.db in pair p1's retention directory",
		filepath.Join(jdir, "0000000000000001.redo"):  "0000000000000001.redo in pair p1's journal directory",
		filepath.Join(ret, "new.img"):                 "inside pair p1's retention directory",
	} {
		err := g.Check(dest)
		if !errors.Is(err, ErrGuarded) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "p1") {
			t.Errorf("Check(%s) = %v, want it refused naming %q", dest, err, want)
		}
	}
	for _, dest := range []string{filepath.Join(dir, "out", "new.img"), filepath.Join(dir, "out", "other.img")} {
		if err := g.Check(dest); err != nil {
			t.Errorf("Check(%s) = %v, want nil", dest, err)
		}
	}
}
