package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// runningAgent reopens the fixture's pair in a writer and serves it on a
// unix socket, as `mtconsole agent` will; it returns the socket. The
// writer and the API run on the fixture's clock.
func runningAgent(t *testing.T, fx *fixture) string {
	t.Helper()
	return runningAgentAt(t, fx, fx.now)
}

// runningAgentAt is runningAgent with the writer and the API on clock now.
func runningAgentAt(t *testing.T, fx *fixture, now func() time.Time) string {
	t.Helper()
	sockDir, err := os.MkdirTemp("", "mt") // t.TempDir() may be too long for a socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	hub := api.NewHub()
	w := writer.New(writer.Options{OnEvent: hub.Publish, Now: now}, writer.SpaceOptions{Interval: -1})
	t.Cleanup(func() { w.Close() })
	cfg := writer.PairConfig{ID: fxPair, Target: fx.target, JournalDir: filepath.Join(fx.dir, "journal"), RetentionDir: fx.retDir,
		Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge}, JournalSegmentSize: 1 << 20, UndoSegmentSize: 128 << 10}
	if _, _, err := w.Open(cfg); err != nil {
		t.Fatal(err)
	}
	b := api.FromWriter(w, api.HostInfo{Host: "mt1", Version: "test", Started: now()}, hub, cfg)
	b.SetClock(now)
	b.SetViewDir(filepath.Join(sockDir, "views"))
	t.Cleanup(func() { b.Close() })
	srv, err := api.Listen(api.Config{Socket: filepath.Join(sockDir, "agent.sock")}, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Socket()
}

func TestStatusCommands(t *testing.T) {
	fx := newFixture(t)
	sock := runningAgent(t, fx)

	t.Run("json", func(t *testing.T) {
		out := mustRun(t, "status", "--json", "--socket", sock)
		var st api.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		if st.Host != "mt1" || st.Version != "test" || len(st.Pairs) != 1 || st.Pairs[0].ID != fxPair ||
			st.Pairs[0].AppliedSeq != fx.lastSeq || st.Pairs[0].Retention.Tags != len(fx.tags) {
			t.Errorf("status --json: %+v", st)
		}
		var keys map[string]json.RawMessage
		json.Unmarshal([]byte(out), &keys)
		for _, k := range []string{"host", "agent_version", "started", "uptime_seconds", "pairs"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("status --json has no %q", k)
			}
		}
	})

	t.Run("table", func(t *testing.T) {
		out := mustRun(t, "status", "--socket", sock)
		for _, w := range []string{"Agent test on mt1", "PAIR", "HEALTH", "RETAINED", fxPair, "1 day", "latest tag " + fx.tags[len(fx.tags)-1].name} {
			if !strings.Contains(out, w) {
				t.Errorf("status does not show %q:\n%s", w, out)
			}
		}
	})

	t.Run("pause resume", func(t *testing.T) {
		if out := mustRun(t, "pause", fxPair, "--reason", "backup window", "--socket", sock); out != fxPair+": Paused: backup window\n" {
			t.Errorf("pause printed %q", out)
		}
		if out := mustRun(t, "status", "--socket", sock); !strings.Contains(out, "Paused: backup window") {
			t.Errorf("status after pause:\n%s", out)
		}
		if out := mustRun(t, "resume", fxPair, "--socket", sock); strings.Contains(out, "Paused") {
			t.Errorf("resume printed %q", out)
		}
		_, _, err := run(t, "pause", "p7", "--socket", sock)
		wantErr(t, err, false, "p7", "no such pair")
		_, _, err = run(t, "pause", "--socket", sock)
		wantErr(t, err, true, "accepts 1 arg")
	})

	t.Run("tag", func(t *testing.T) {
		out := mustRun(t, "tag", "before-upgrade", "--socket", sock)
		if !strings.Contains(out, "Tagged before-upgrade (USERDEFINED") || !strings.Contains(out, fxPair+" sequence ") {
			t.Errorf("tag printed:\n%s", out)
		}
		_, _, err := run(t, "tag", " ", "--socket", sock)
		wantErr(t, err, true, "name")
		// Issue 11: a name the pair holds is refused (exit 1), saying
		// which pair and when the first was placed.
		_, _, err = run(t, "tag", "before-upgrade", "--socket", sock)
		wantErr(t, err, false, "pair "+fxPair+" already has a tag \"before-upgrade\"", "placed ", "another name")
		_, _, err = run(t, "tag", "before\nupgrade", "--socket", sock)
		wantErr(t, err, true, "name", "control character")
	})

	t.Run("recover export", func(t *testing.T) {
		tg := fx.tags[2]
		dest := filepath.Join(t.TempDir(), "export.img")
		out := mustRun(t, "recover", "--point", "tag:"+tg.name, "--mode", "export", "--dest", dest, "--socket", sock)
		if !strings.Contains(out, "Job j1: export of "+fxPair) || !strings.Contains(out, "done in") {
			t.Errorf("recover printed:\n%s", out)
		}
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, fx.images[tg.name]) {
			t.Errorf("exported image differs from the source at %s", tg.name)
		}
		_, _, err = run(t, "recover", "--point", "tag:nope", "--mode", "export", "--dest", dest+"2", "--socket", sock)
		wantErr(t, err, true, "point")
		_, _, err = run(t, "recover", "--point", "latest-tag", "--mode", "rollback", "--socket", sock)
		wantErr(t, err, true, "--pairs")
	})

	// Last: the pair ends.
	t.Run("recover rollback", func(t *testing.T) {
		tg := fx.tags[4]
		out := mustRun(t, "recover", "--point", "tag:"+tg.name, "--mode", "rollback", "--pairs", fxPair, "--yes", "--socket", sock)
		if !strings.Contains(out, "Job j2: rollback of "+fxPair) || !strings.Contains(out, "done in") {
			t.Errorf("recover printed:\n%s", out)
		}
		if got := fx.targetBytes(t); !bytes.Equal(got, fx.images[tg.name]) {
			t.Errorf("rolled-back target differs from the source at %s", tg.name)
		}
		// The pair stays listed, ended, with what ended it.
		if out := mustRun(t, "status", "--socket", sock); !strings.Contains(out, "Ended: rolled back to tag "+tg.name) {
			t.Errorf("status after the rollback:\n%s", out)
		}
	})
}

// TestFixtureAgentClock: the injected clock, never the wall clock, is
// what the agent's writer prunes the 24 h window against. On the
// fixture's clock a commit keeps every fixture tag, whatever today's date
// (TestStatusCommands failed with `no tag "crash-03"` from 2026-11-27
// on, when its agent ran on the wall clock); on a clock two days later
// the same commits prune them. Either way, an agent on the wall clock
// fails one of the two.
func TestFixtureAgentClock(t *testing.T) {
	// commitTags tags the pair through the agent twice and waits until
	// the second tag is applied. The first tag's commit prunes; the
	// applier commits in turn, so once the second is in the store that
	// pruning is over, and the clock being fixed, the second's prunes
	// nothing more.
	commitTags := func(t *testing.T, sock string) api.PairStatus {
		t.Helper()
		var st api.Status
		for _, name := range []string{"pin-1", "pin-2"} {
			mustRun(t, "tag", name, "--socket", sock)
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				out := mustRun(t, "status", "--json", "--socket", sock)
				if err := json.Unmarshal([]byte(out), &st); err != nil {
					t.Fatalf("status --json: %v\n%s", err, out)
				}
				if len(st.Pairs) == 1 && st.Pairs[0].Retention.LatestTag != nil && st.Pairs[0].Retention.LatestTag.Name == name {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("tag %s never applied:\n%s", name, out)
				}
			}
		}
		return st.Pairs[0]
	}

	t.Run("fixture clock", func(t *testing.T) {
		fx := newFixture(t)
		sock := runningAgent(t, fx)
		p := commitTags(t, sock)
		if p.Retention.Tags != len(fx.tags)+2 {
			t.Errorf("on the fixture's clock, %d tags after two commits, want the fixture's %d and pin-1, pin-2", p.Retention.Tags, len(fx.tags))
		}
		if !p.Retention.From.Before(fx.tags[0].time) {
			t.Errorf("window starts %s, after the fixture's first tag %s: pruned", p.Retention.From, fx.tags[0].time)
		}
		if !p.Retention.LatestTag.Time.Equal(fx.now()) {
			t.Errorf("tag pin-2 stamped %s, want the fixture's clock %s", p.Retention.LatestTag.Time, fx.now())
		}
		out := mustRun(t, "status", "--json", "--socket", sock)
		var st api.Status
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, out)
		}
		if !st.Started.Equal(fx.now()) || st.UptimeSeconds != 0 {
			t.Errorf("agent started %s, up %gs: want %s, 0s (the fixture's clock)", st.Started, st.UptimeSeconds, fx.now())
		}
	})

	t.Run("two days later", func(t *testing.T) {
		fx := newFixture(t)
		later := fx.now().Add(48 * time.Hour)
		sock := runningAgentAt(t, fx, func() time.Time { return later })
		p := commitTags(t, sock)
		if p.Retention.Tags >= len(fx.tags)+2 {
			t.Errorf("two days past the fixture, %d tags after two commits: the 24 h window pruned none", p.Retention.Tags)
		}
		if !p.Retention.From.After(fx.tags[0].time) {
			t.Errorf("window starts %s, before the fixture's first tag %s: nothing pruned", p.Retention.From, fx.tags[0].time)
		}
	})
}

func TestNoAgentExitCode(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"status"}, {"status", "--json"}, {"status", "--watch"}, {"tag", "x"}, {"pause", "p1"}, {"resume", "p1"},
		{"recover", "--mode", "export", "--dest", "/tmp/x.img"},
	} {
		_, _, err := run(t, append(args, "--socket", sock)...)
		if !errors.Is(err, api.ErrNoAgent) {
			t.Errorf("%v with no agent: %v, want no agent (exit code %d)", args, err, exitAgent)
			continue
		}
		if want := "no agent at " + sock + ": is mtconsole agent running?"; err.Error() != want {
			t.Errorf("%v: %q, want %q", args, err, want)
		}
	}
	if out := mustRun(t, "status", "--help"); !strings.Contains(out, "3 no agent") {
		t.Errorf("status --help does not document the exit codes:\n%s", out)
	}
}

// lockedBuffer is written by a running command and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// TestStatusWatch: --watch redraws when the agent reports an event and
// Ctrl-C (SIGINT) ends it with exit code 0.
func TestStatusWatch(t *testing.T) {
	fx := newFixture(t)
	sock := runningAgent(t, fx)
	root := newRootCmd()
	var out lockedBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"status", "--watch", "--socket", sock})
	done := make(chan error, 1)
	go func() { done <- root.Execute() }()
	waitFor := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !strings.Contains(out.String(), what); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("status --watch never showed %q:\n%s", what, out.String())
			}
		}
	}
	waitFor("PAIR")
	mustRun(t, "pause", fxPair, "--reason", "watch me", "--socket", sock)
	waitFor("Paused: watch me")
	waitFor("paused: watch me") // the event, under Recent events
	// The watch has registered for SIGINT since its first draw.
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("status --watch after Ctrl-C: %v, want exit code 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("status --watch did not end on SIGINT")
	}
}

func TestCSLine(t *testing.T) {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		cs   *api.CSStatus
		want string
	}{
		{nil, "Configuration server: not registered"},
		{&api.CSStatus{Server: "cs:443", OK: true, LastHeartbeat: now.Add(-12 * time.Second)}, "Configuration server cs:443: registered, last heartbeat 12s ago"},
		{&api.CSStatus{Server: "cs:443"}, "Configuration server cs:443: registered, no heartbeat yet"},
		{&api.CSStatus{Server: "cs:443", Problem: "unreachable", Error: "cannot reach cs:443", FailingSince: now.Add(-3 * time.Minute)},
			"Configuration server cs:443: heartbeats failing for 3m0s (unreachable; none since the agent started): cannot reach cs:443"},
		{&api.CSStatus{Server: "cs:443", Problem: "clock skew", Error: "clock differs by 21 min", FailingSince: now.Add(-time.Minute), LastHeartbeat: now.Add(-4 * time.Minute)},
			"Configuration server cs:443: heartbeats failing for 1m0s (clock skew; last accepted 4m0s ago): clock differs by 21 min"},
	} {
		if got := csLine(tc.cs, now); got != tc.want {
			t.Errorf("csLine(%+v)\n got %q\nwant %q", tc.cs, got, tc.want)
		}
	}
}

// A pair whose RPO is unknown (restarted, the source not yet heard from)
// shows "—" in the RPO column, not 0s.
func TestStatusRPOUnknown(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	printStatus(&buf, api.Status{Pairs: []api.PairStatus{{PairStatus: writer.PairStatus{ID: "p1", Health: writer.HealthOK, RPOUnknown: true}}}}, now)
	var row string
	for _, l := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(l, "p1 ") {
			row = l
		}
	}
	if f := strings.Fields(row); len(f) < 4 || f[3] != "—" {
		t.Errorf("row %q: want — as the RPO\n%s", row, buf.String())
	}
}
