package writer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// memListing is the names and sizes of the files under dir.
func memListing(t *testing.T, m *memPair, dir string) string {
	t.Helper()
	names, err := m.fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		data, err := m.fs.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %08x\n", n, len(data), crc32.ChecksumIEEE(data))
	}
	return b.String()
}

// TestOpenPairCatalogueLost is issue 12's report: the catalogue removed
// while the undo segments remain read as "nothing applied", every
// before-image went back onto the target and the segments were deleted.
// Now the pair does not open, and nothing changes; with the segments
// moved away too, the journal (which starts past sequence 1) gives the
// catalogue away.
func TestOpenPairCatalogueLost(t *testing.T) {
	m := newMemPair(t, nil)
	m.cfg.JournalSegmentSize = 16 << 10
	p, _ := m.open()
	w := testutil.NewWorkload(3, diskSize, nil)
	fill(t, p, w, 400)
	if err := p.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	target := m.target()
	ret := memListing(t, m, m.cfg.RetentionDir)
	jnl := memListing(t, m, m.cfg.JournalDir)
	if !strings.Contains(ret, ".undo") {
		t.Fatalf("no undo segments:\n%s", ret)
	}
	cat := filepath.Join(m.catDir, "catalogue.db")
	unchanged := func(what string) {
		t.Helper()
		if !bytes.Equal(m.target(), target) {
			t.Fatalf("%s: the target changed", what)
		}
		if got := memListing(t, m, m.cfg.JournalDir); got != jnl {
			t.Fatalf("%s: the journal changed:\n%s\nwant\n%s", what, got, jnl)
		}
	}

	if err := os.Remove(cat); err != nil {
		t.Fatal(err)
	}
	_, err := m.tryOpen()
	if !errors.Is(err, journal.ErrCatalogueMissing) || !strings.Contains(err.Error(), cat) {
		t.Fatalf("OpenPair without its catalogue: %v, want ErrCatalogueMissing naming %s", err, cat)
	}
	unchanged("catalogue missing")
	if got := memListing(t, m, m.cfg.RetentionDir); got != ret {
		t.Fatalf("the undo segments changed:\n%s\nwant\n%s", got, ret)
	}

	// The segments moved away as well: a fresh catalogue, but the journal
	// starts past sequence 1.
	names, _ := m.fs.List(m.cfg.RetentionDir)
	for _, n := range names {
		if err := m.fs.Remove(filepath.Join(m.cfg.RetentionDir, n)); err != nil {
			t.Fatal(err)
		}
	}
	_, err = m.tryOpen()
	if !errors.Is(err, journal.ErrCatalogueMissing) || !strings.Contains(err.Error(), cat) || !strings.Contains(err.Error(), m.cfg.JournalDir) {
		t.Fatalf("OpenPair with a new catalogue beside a used journal: %v", err)
	}
	unchanged("segments moved away")
}
