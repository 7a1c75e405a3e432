package main

import (
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// dirListing is the names, sizes and checksums of the files in dir other
// than the catalogue.
func dirListing(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range ents {
		if e.Name() == "catalogue.db" {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, fmt.Sprintf("%s %d %08x", e.Name(), len(b), crc32.ChecksumIEEE(b)))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestRetentionCatalogueDamage runs summary, events, recover and lock on a
// pair whose catalogue is missing, empty, truncated, has 64 bytes flipped
// on each of its pages, or is another pair's: each prints what the good
// catalogue gives or fails with an error that names catalogue.db and wraps
// journal.ErrCatalogueMissing or ErrCatalogueCorrupt; never a panic, a
// segment removed or a target changed.
func TestRetentionCatalogueDamage(t *testing.T) {
	fx := newFixture(t)
	cat := filepath.Join(fx.retDir, "catalogue.db")
	good, err := os.ReadFile(cat)
	if err != nil {
		t.Fatal(err)
	}
	segs := dirListing(t, fx.retDir)
	if !strings.Contains(segs, ".undo") {
		t.Fatalf("fixture has no undo segments:\n%s", segs)
	}
	mid := fx.tags[len(fx.tags)/2]
	wantSummary := mustRun(t, "retention", "summary", "--verbose", "--json", "--dir", fx.retDir)
	wantEvents := mustRun(t, "retention", "events", "--json", "--dir", fx.retDir)

	// another pair's catalogue
	odir := t.TempDir()
	ost, err := journal.OpenStore(journal.StoreOptions{Dir: odir, Pair: "other"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := ost.Append([]journal.Record{{Type: journal.TypeUndo, Seq: 1, Time: at, Data: make([]byte, 512)}}); err != nil {
		t.Fatal(err)
	}
	if err := ost.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := ost.Commit(journal.Commit{Applied: 1, AppliedTime: at, Accuracy: journal.Exact, FirstTime: at,
		Tags: []journal.Tag{{Seq: 1, Time: at, Name: mid.name, App: journal.AppFS, Accuracy: journal.Exact}}}); err != nil {
		t.Fatal(err)
	}
	ost.Close()
	other, err := os.ReadFile(filepath.Join(odir, "catalogue.db"))
	if err != nil {
		t.Fatal(err)
	}

	type damage struct {
		name    string
		data    []byte // nil: no file
		refused bool   // only a named error is right
	}
	damages := []damage{{name: "missing", refused: true}, {name: "zero length", data: []byte{}, refused: true},
		{name: "another pair's", data: other, refused: true}}
	const ps = 4096
	for _, n := range []int{100, ps + 1, 2 * ps, 3*ps - 7, 40000, len(good) / 2, len(good) - ps, len(good) - 1} {
		if n > 0 && n < len(good) {
			damages = append(damages, damage{name: fmt.Sprintf("truncated to %d", n), data: good[:n]})
		}
	}
	for off := 0; off < len(good); off += ps {
		for _, o := range []int{0, 16, 100} {
			d := bytes.Clone(good)
			for i := off + o; i < off+o+64; i++ {
				d[i] ^= 0xFF
			}
			damages = append(damages, damage{name: fmt.Sprintf("64 bytes flipped at %d", off+o), data: d})
		}
	}

	dest := t.TempDir()
	refused := 0
	for i, d := range damages {
		os.Remove(cat)
		if d.data != nil {
			if err := os.WriteFile(cat, d.data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		check := func(cmd string, out string, err error, want string) {
			t.Helper()
			what := fmt.Sprintf("%s: %s", d.name, cmd)
			if err != nil {
				refused++
				if !errors.Is(err, journal.ErrCatalogueMissing) && !errors.Is(err, journal.ErrCatalogueCorrupt) || !strings.Contains(err.Error(), cat) {
					t.Errorf("%s: %v: want a named catalogue error naming %s", what, err, cat)
				}
				return
			}
			if d.refused {
				t.Errorf("%s: succeeded, want it refused:\n%s", what, out)
			}
			if want != "" && out != want {
				t.Errorf("%s: printed\n%s\nwant\n%s", what, out, want)
			}
		}
		out, _, err := runNoPanic(t, "retention", "summary", "--verbose", "--json", "--dir", fx.retDir)
		check("summary", out, err, wantSummary)
		out, _, err = runNoPanic(t, "retention", "events", "--json", "--dir", fx.retDir)
		check("events", out, err, wantEvents)
		img := filepath.Join(dest, fmt.Sprintf("%d.img", i))
		out, _, err = runNoPanic(t, "retention", "recover", "--dir", fx.retDir, "--point", "tag:"+mid.name, "--dest", img, "--target", fx.target)
		check("recover", out, err, "")
		if err == nil {
			if got, _ := os.ReadFile(img); !bytes.Equal(got, fx.images[mid.name]) {
				t.Errorf("%s: recover wrote another image than the source's at %s", d.name, mid.name)
			}
		}
		out, _, err = runNoPanic(t, "retention", "lock", "--dir", fx.retDir, mid.name)
		check("lock", out, err, "")
		if got := dirListing(t, fx.retDir); got != segs {
			t.Fatalf("%s: the retention directory changed:\n%s\nwant\n%s", d.name, got, segs)
		}
		if !bytes.Equal(fx.targetBytes(t), fx.final) {
			t.Fatalf("%s: the target changed", d.name)
		}
	}
	t.Logf("%d damages, %d commands refused", len(damages), refused)
}

func runNoPanic(t *testing.T, args ...string) (out, errOut string, err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return run(t, args...)
}
