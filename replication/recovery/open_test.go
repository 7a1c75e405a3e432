package recovery

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// OpenTarget needs a target (given or recorded), resolves the point
// before it opens anything, and names the target when it cannot open it.
func TestOpenTarget(t *testing.T) {
	f := newFixture(t, 5, 40, true)
	if f.st.State().Target != "" {
		t.Fatalf("the fixture records target %q; the test needs none", f.st.State().Target)
	}
	if _, _, err := OpenTarget(f.st, f.fs, "", Point{Kind: Earliest}, true); !errors.Is(err, ErrNoTarget) {
		t.Errorf("no target: %v, want ErrNoTarget", err)
	}
	if _, _, err := OpenTarget(f.st, f.fs, "/r/target", Point{Kind: TagNamed, Name: "no-such-tag"}, true); err == nil || !strings.Contains(err.Error(), "no-such-tag") {
		t.Errorf("unknown tag: %v, want it named", err)
	}
	if _, _, err := OpenTarget(f.st, f.fs, "/r/missing", Point{Kind: Earliest}, true); err == nil || !strings.HasPrefix(err.Error(), "target: ") {
		t.Errorf("missing target: %v, want a target: error", err)
	}
	want, err := Resolve(f.st, Point{Kind: Earliest})
	if err != nil {
		t.Fatal(err)
	}
	tf, r, err := OpenTarget(f.st, f.fs, "/r/target", Point{Kind: Earliest}, false)
	if err != nil {
		t.Fatal(err)
	}
	defer tf.Close()
	if r != want || tf.Name() != "/r/target" {
		t.Errorf("opened %s at %v, want /r/target at %v", tf.Name(), r, want)
	}
}

// PairGuard refuses the retention directory's files and the target, as
// given and as the catalogue records it.
func TestPairGuard(t *testing.T) {
	dir := t.TempDir()
	ret := filepath.Join(dir, "retention")
	given, recorded, other := filepath.Join(dir, "given.img"), filepath.Join(dir, "recorded.img"), filepath.Join(dir, "other.img")
	if err := os.MkdirAll(ret, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{given, recorded, other, filepath.Join(ret, "catalogue.db")} {
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g := PairGuard(journal.PairState{Pair: "p1", Target: recorded}, ret, given)
	for _, dest := range []string{given, recorded, filepath.Join(ret, "catalogue.db"), filepath.Join(ret, "new.img")} {
		if err := g.Check(dest); !errors.Is(err, ErrGuarded) || !strings.Contains(err.Error(), "p1") {
			t.Errorf("Check(%s) = %v, want it refused", dest, err)
		}
	}
	if err := g.Check(other); err != nil {
		t.Errorf("Check(%s) = %v, want nil", other, err)
	}
	if err := PairGuard(journal.PairState{Pair: "p1"}, ret, "").Check(given); err != nil {
		t.Errorf("no target given or recorded: Check(%s) = %v, want nil", given, err)
	}
}
