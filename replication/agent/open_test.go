package agent_test

import (
	"fmt"
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

// TestNewOpensPairsInParallel: New opens every pair (in parallel), and
// when some cannot be opened says which and why, each of them, and leaves
// none open.
func TestNewOpensPairsInParallel(t *testing.T) {
	dir := t.TempDir()
	trust, err := wire.OpenTrustStore(filepath.Join(dir, "trust", "known_servers"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(missing map[int]bool) agent.Config {
		c := agent.Config{Addr: "127.0.0.1:1", Trust: trust, HostID: "mt-1",
			Space: writer.SpaceOptions{Interval: -1}}
		for i := range 12 {
			tgt := filepath.Join(dir, fmt.Sprintf("target%d.img", i))
			if !missing[i] {
				if err := os.WriteFile(tgt, make([]byte, 1<<20), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			c.Pairs = append(c.Pairs, agent.PairConfig{Disk: fmt.Sprintf("disk%d", i), PairConfig: writer.PairConfig{
				ID: fmt.Sprintf("pair%d", i), Target: tgt,
				JournalDir: filepath.Join(dir, "journal", fmt.Sprint(i)), RetentionDir: filepath.Join(dir, "retention", fmt.Sprint(i)),
				Policy:          journal.Policy{Window: time.Hour, OnFull: journal.Purge},
				UndoSegmentSize: 1 << 20, JournalSegmentSize: 1 << 20, JournalMaxSegments: 4}})
		}
		return c
	}
	_, err = agent.New(cfg(map[int]bool{3: true, 7: true}))
	if err == nil {
		t.Fatal("New succeeded with two targets missing")
	}
	for _, w := range []string{"pair pair3", "target3.img", "pair pair7", "target7.img"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	// Nothing stayed open: with the targets there, every pair opens.
	os.WriteFile(filepath.Join(dir, "target3.img"), make([]byte, 1<<20), 0o600)
	os.WriteFile(filepath.Join(dir, "target7.img"), make([]byte, 1<<20), 0o600)
	cl, err := agent.New(cfg(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for i := range 12 {
		if p := cl.Pair(fmt.Sprintf("disk%d", i)); p == nil || p.ID() != fmt.Sprintf("pair%d", i) {
			t.Fatalf("disk%d: pair %v", i, p)
		}
	}
}
