package agent_test

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// TestAgentSkipsPairWithDamagedCatalogue: a pair whose retention catalogue
// is gone while its undo segments remain is not started (and its target
// and segments are left alone), with an ERROR naming the pair and the
// file; the other pairs start.
func TestAgentSkipsPairWithDamagedCatalogue(t *testing.T) {
	dir := t.TempDir()
	pair := func(id string) agent.PairConfig {
		tgt := filepath.Join(dir, id+".img")
		if err := os.WriteFile(tgt, bytes.Repeat([]byte{7}, 1<<16), 0o600); err != nil {
			t.Fatal(err)
		}
		return agent.PairConfig{Disk: "disk-" + id, PairConfig: writer.PairConfig{ID: id, Target: tgt,
			JournalDir: filepath.Join(dir, "journal", id), RetentionDir: filepath.Join(dir, "retention", id)}}
	}
	good, bad := pair("good"), pair("bad")

	// bad's history: one applied batch, then its catalogue removed.
	st, err := journal.OpenStore(journal.StoreOptions{Dir: bad.RetentionDir, Pair: bad.ID})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	if err := st.Append([]journal.Record{{Type: journal.TypeUndo, Seq: 1, Time: at, Data: make([]byte, 512)}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := st.Commit(journal.Commit{Applied: 1, AppliedTime: at, Accuracy: journal.Exact, FirstTime: at}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cat := filepath.Join(bad.RetentionDir, "catalogue.db")
	if err := os.Remove(cat); err != nil {
		t.Fatal(err)
	}

	trust, err := wire.OpenTrustStore(filepath.Join(dir, "trust", "known_servers"))
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cl, err := agent.New(agent.Config{Addr: "127.0.0.1:1", Trust: trust, HostID: "mt-1",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), Space: writer.SpaceOptions{Interval: -1},
		Pairs: []agent.PairConfig{bad, good}})
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	defer cl.Close()
	if cl.Pair("disk-good") == nil || cl.Pair("disk-bad") != nil {
		t.Fatalf("pairs started: good %v, bad %v", cl.Pair("disk-good") != nil, cl.Pair("disk-bad") != nil)
	}
	if l := logs.String(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "pair=bad") || !strings.Contains(l, cat) {
		t.Fatalf("log does not name the pair and the catalogue:\n%s", l)
	}
	if _, err := os.Stat(cat); !os.IsNotExist(err) {
		t.Fatalf("a catalogue was created for the skipped pair: %v", err)
	}
	if b, _ := os.ReadFile(bad.Target); !bytes.Equal(b, bytes.Repeat([]byte{7}, 1<<16)) {
		t.Fatal("the skipped pair's target changed")
	}
	if ents, _ := filepath.Glob(filepath.Join(bad.RetentionDir, "*.undo")); len(ents) != 1 {
		t.Fatalf("bad's undo segments: %v", ents)
	}
}
