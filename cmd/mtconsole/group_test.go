package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// groupedAgent serves the fixture's pair as runningAgent does, with the
// pair in group (as an agent's network layer reports it).
func groupedAgent(t *testing.T, fx *fixture, group string) string {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "mt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	hub := api.NewHub()
	w := writer.New(writer.Options{OnEvent: hub.Publish, Now: fx.now}, writer.SpaceOptions{Interval: -1})
	t.Cleanup(func() { w.Close() })
	cfg := writer.PairConfig{ID: fxPair, Target: fx.target, JournalDir: filepath.Join(fx.dir, "journal"), RetentionDir: fx.retDir,
		Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge}, JournalSegmentSize: 1 << 20, UndoSegmentSize: 128 << 10}
	if _, _, err := w.Open(cfg); err != nil {
		t.Fatal(err)
	}
	b := api.FromWriter(w, api.HostInfo{Host: "mt1", Version: "test", Started: fx.now()}, hub, cfg)
	b.SetClock(fx.now)
	b.SetReplication(func() map[string]api.Replication {
		return map[string]api.Replication{fxPair: {State: "Differential Sync", Group: group}}
	})
	t.Cleanup(func() { b.Close() })
	srv, err := api.Listen(api.Config{Socket: filepath.Join(sockDir, "agent.sock")}, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Socket()
}

// status --json carries each pair's group; the table shows a GROUP column
// only when a group holds more than one pair (a pair alone is a group of
// its own: the table stays as it was).
func TestStatusGroupColumn(t *testing.T) {
	fx := newFixture(t)
	sock := groupedAgent(t, fx, "web01")
	out := mustRun(t, "status", "--json", "--socket", sock)
	var st api.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || len(st.Pairs) != 1 || st.Pairs[0].Group != "web01" {
		t.Fatalf("status --json: %+v, %v\n%s", st, err, out)
	}
	if out := mustRun(t, "status", "--socket", sock); strings.Contains(out, "GROUP") {
		t.Errorf("a group of one pair shows a GROUP column:\n%s", out)
	}

	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	pairs := func(groups ...string) api.Status {
		var st api.Status
		for i, g := range groups {
			st.Pairs = append(st.Pairs, api.PairStatus{Group: g, PairStatus: writer.PairStatus{ID: "p" + string(rune('1'+i)), Health: writer.HealthOK}})
		}
		return st
	}
	var buf bytes.Buffer
	printStatus(&buf, pairs("p1", "p2"), now)
	if strings.Contains(buf.String(), "GROUP") {
		t.Errorf("pairs each a group of its own show a GROUP column:\n%s", buf.String())
	}
	buf.Reset()
	printStatus(&buf, pairs("web01", "web01", "p3"), now)
	lines := strings.Split(buf.String(), "\n")
	var head, row1, row3 string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "GROUP"):
			head = l
		case strings.HasPrefix(l, "web01 ") && strings.Contains(l, " p1 "):
			row1 = l
		case strings.HasPrefix(l, "p3 "):
			row3 = l
		}
	}
	if !strings.HasPrefix(head, "GROUP  PAIR ") || row1 == "" || !strings.HasPrefix(strings.Join(strings.Fields(row3)[:2], " "), "p3 p3") {
		t.Errorf("a group of two pairs: want a GROUP column first:\n%s", buf.String())
	}
}

// recover --group recovers the group's pairs (the agent resolves the
// point common to all its disks); with --pairs too it is a usage error;
// a group the agent does not have is refused, naming the group.
func TestRecoverGroup(t *testing.T) {
	fx := newFixture(t)
	sock := groupedAgent(t, fx, "web01")
	tg := fx.tags[2]
	dest := filepath.Join(t.TempDir(), "web01.img")
	out := mustRun(t, "recover", "--group", "web01", "--point", "tag:"+tg.name, "--mode", "export", "--dest", dest, "--socket", sock)
	if !strings.Contains(out, "export of "+fxPair) || !strings.Contains(out, "done in") {
		t.Errorf("recover --group printed:\n%s", out)
	}
	if got, err := os.ReadFile(dest); err != nil || !bytes.Equal(got, fx.images[tg.name]) {
		t.Errorf("the group's export differs from the source at %s (%v)", tg.name, err)
	}
	_, _, err := run(t, "recover", "--group", "web01", "--pairs", fxPair, "--mode", "export", "--dest", dest+"2", "--socket", sock)
	wantErr(t, err, true, "--group", "--pairs")
	_, _, err = run(t, "recover", "--group", "db01", "--mode", "export", "--dest", dest+"3", "--socket", sock)
	wantErr(t, err, true, "group", "db01")
}
