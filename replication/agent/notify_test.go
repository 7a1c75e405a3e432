package agent_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/sdnotify"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// TestDaemonNotifiesSystemd runs the daemon as systemd would with
// Type=notify and WatchdogSec: READY=1 comes once the status API answers
// (the pairs are open), STATUS= lines say what the pairs do, WATCHDOG=1
// keep-alives follow while the appliers move, and STOPPING=1 at the end.
func TestDaemonNotifiesSystemd(t *testing.T) {
	dir, err := os.MkdirTemp("", "mtn") // short: socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const pass = "a passphrase of some length"
	os.WriteFile(filepath.Join(dir, "pass"), []byte(pass+"\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addr := startDaemonPS(t, ctx, dir, pass, "disk0")

	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	recv := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		mgr.SetReadDeadline(time.Now().Add(time.Minute))
		n, err := mgr.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v", err)
		}
		return string(buf[:n])
	}

	sock := filepath.Join(dir, "a.sock")
	cfg := "[agent]\nhost_id = \"mt1\"\njournal_dir = \"" + dir + "/j\"\nretention_dir = \"" + dir + "/r\"\nsocket = \"" + sock + "\"\n" +
		"trust_store = \"" + dir + "/known\"\nhash_resync = false\nhost_config = \"\"\n[process_server]\naddress = \"" + addr +
		"\"\npassphrase_file = \"" + dir + "/pass\"\n[[pair]]\ndisk = \"disk0\"\ntarget = \"" + dir + "/disk0.tgt\"\n"
	path := filepath.Join(dir, "agent.toml")
	os.WriteFile(path, []byte(cfg), 0o600)
	fc, err := agent.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(actx, fc, agent.Options{Log: &logs, Version: "test",
			Notify: sdnotify.New(filepath.Join(dir, "notify")), Watchdog: 3 * time.Second})
	}()
	defer func() { stop(); <-done }()

	ready := recv()
	if !strings.HasPrefix(ready, "READY=1\nSTATUS=1 pair, 1 in ") {
		t.Fatalf("first notification %q, want READY=1 with the pairs' status", ready)
	}
	// Ready means serving: the status API answers at once.
	c, err := api.Dial(sock)
	if err != nil {
		t.Fatalf("READY=1 sent before the status API listens: %v", err)
	}
	c.Close()

	var diff, alive bool
	for !diff || !alive {
		m := recv()
		alive = alive || strings.Contains(m, "WATCHDOG=1\n")
		diff = diff || strings.Contains(m, "STATUS=1 pair, 1 in "+agent.StateDiffSync+"\n")
		if strings.Contains(m, "watchdog not fed") {
			t.Fatalf("the watchdog went unfed with a moving applier: %q\n%s", m, logs.String())
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	done <- nil // for the deferred stop
	for {
		m := recv()
		if m == "STOPPING=1\n" {
			break
		}
		if !strings.HasPrefix(m, "WATCHDOG=1") && !strings.HasPrefix(m, "STATUS=") {
			t.Fatalf("unexpected notification while stopping: %q", m)
		}
	}
}

func TestStatusLine(t *testing.T) {
	ps := func(states ...string) []agent.PairStatus {
		var out []agent.PairStatus
		for _, s := range states {
			out = append(out, agent.PairStatus{State: s})
		}
		return out
	}
	for _, c := range []struct {
		in   []agent.PairStatus
		want string
	}{
		{nil, "no pairs"},
		{ps(agent.StateDiffSync), "1 pair, 1 in Differential Sync"},
		{ps(agent.StateResync1, agent.StateDiffSync, agent.StateDiffSync), "3 pairs, 2 in Differential Sync, 1 in Resync Step I"},
	} {
		if got := agent.StatusLine(c.in); got != c.want {
			t.Errorf("StatusLine = %q, want %q", got, c.want)
		}
	}
}
