package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/journal"
)

func fxStore(t *testing.T, fx *fixture) *journal.Store {
	t.Helper()
	st, err := journal.OpenStore(journal.StoreOptions{Dir: fx.retDir})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRetentionDamagedSegment: a rollback across a damaged undo segment
// is refused with the pair left Active and the target unchanged; repair
// reports the damage, changes nothing without --yes, and with it moves
// the window past the damage, after which a rollback works.
func TestRetentionDamagedSegment(t *testing.T) {
	fx := newFixture(t)
	st := fxStore(t, fx)
	segs := st.Segments()
	st.Close()
	if len(segs) < 3 {
		t.Fatalf("fixture has %d undo segments, want 3 or more", len(segs))
	}
	bad := segs[1]
	path := filepath.Join(fx.retDir, fmt.Sprintf("%016x.undo", bad.Index))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}

	_, _, err = run(t, "retention", "rollback", "--yes", "--dir", fx.retDir, "--point", "earliest")
	wantErr(t, err, false, "refused", "target is unchanged", "stays Active", fmt.Sprintf("segment %d", bad.Index),
		fmt.Sprintf("earliest point still recoverable is sequence %d", bad.LastSeq))
	if strings.Contains(err.Error(), "partly") {
		t.Errorf("the error says partly rolled back though nothing was written: %v", err)
	}
	if !bytes.Equal(fx.targetBytes(t), fx.final) {
		t.Fatal("a refused rollback changed the target")
	}
	if out := mustRun(t, "retention", "summary", "--dir", fx.retDir); !strings.Contains(out, "State: Active\n") {
		t.Fatalf("after a refused rollback:\n%s", out)
	}

	out := mustRun(t, "retention", "repair", "--dir", fx.retDir)
	for _, want := range []string{"damaged at offset", fmt.Sprintf("-%d lost", bad.LastSeq), "Nothing was changed", "ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("repair (dry run) output lacks %q:\n%s", want, out)
		}
	}
	st = fxStore(t, fx)
	if n := len(st.Segments()); n != len(segs) {
		t.Fatalf("a dry run removed segments: %d of %d left", n, len(segs))
	}
	st.Close()

	out = mustRun(t, "retention", "repair", "--dir", fx.retDir, "--yes")
	if !strings.Contains(out, "Removed 2 oldest segment(s)") || !strings.Contains(out, fmt.Sprintf("earliest recoverable point is now sequence %d", bad.LastSeq)) {
		t.Fatalf("repair --yes:\n%s", out)
	}
	if !bytes.Equal(fx.targetBytes(t), fx.final) {
		t.Fatal("repair changed the target")
	}
	if out := mustRun(t, "retention", "repair", "--dir", fx.retDir); !strings.Contains(out, "nothing to repair") {
		t.Fatalf("repair after repair:\n%s", out)
	}
	// The earliest point, past the damage, rolls back.
	mustRun(t, "retention", "rollback", "--yes", "--dir", fx.retDir, "--point", "earliest")
}

// TestRetentionRollbackAbandon: --abandon gives up a rollback that wrote
// nothing and refuses one that did.
func TestRetentionRollbackAbandon(t *testing.T) {
	fx := newFixture(t)
	_, _, err := run(t, "retention", "rollback", "--abandon", "--dir", fx.retDir)
	wantErr(t, err, false, "not being rolled back")

	st := fxStore(t, fx)
	if err := st.SetState(journal.StateRollingBack, "test", 5); err != nil {
		t.Fatal(err)
	}
	st.Close()
	out := mustRun(t, "retention", "rollback", "--abandon", "--dir", fx.retDir)
	if !strings.Contains(out, "Active again") {
		t.Fatalf("abandon printed:\n%s", out)
	}
	if out := mustRun(t, "retention", "summary", "--dir", fx.retDir); !strings.Contains(out, "State: Active\n") {
		t.Fatalf("after abandon:\n%s", out)
	}

	st = fxStore(t, fx)
	if err := st.SetState(journal.StateRollingBack, "test", 5); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkRollbackWritten(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, _, err = run(t, "retention", "rollback", "--abandon", "--dir", fx.retDir)
	wantErr(t, err, false, "partly rolled back", "again to finish")
	if out := mustRun(t, "retention", "summary", "--dir", fx.retDir); !strings.Contains(out, "State: RollingBack") {
		t.Fatalf("after a refused abandon:\n%s", out)
	}
}
