package main

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/hostconfig/csserver"
	"github.com/mtconsole/mtconsole/replication/agent"
)

// agentFileConfig is an agent configuration whose [agent] section holds
// extra (e.g. a host_config line).
func agentFileConfig(t *testing.T, extra string) *agent.FileConfig {
	t.Helper()
	dir := t.TempDir()
	text := "[agent]\n" + extra + "\n[process_server]\naddress = \"127.0.0.1:1\"\npassphrase_file = \"" + dir + "/pass\"\n" +
		"[[pair]]\ndisk = \"d\"\ntarget = \"" + dir + "/t\"\n"
	p := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	fc, err := agent.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	return fc
}

// waitCS polls h until ok says the status is the one awaited.
func waitCS(t *testing.T, h *csHeartbeats, logs *lockedBuffer, ok func(s string) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st := h.Status()
		if ok(st.Problem) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the registration never became %s: %+v\nlog:\n%s", what, h.Status(), logs.String())
}

// The agent keeps a registered host's registration alive: it beats at
// start, the status shows the server and the last heartbeat, a server
// that stops shows as unreachable (logged, with what failed, never the
// passphrase), and one that is back is seen again.
func TestAgentHeartbeats(t *testing.T) {
	dir := t.TempDir()
	csDir := filepath.Join(dir, "cs")
	pass, _, err := csserver.Init(csserver.Dir(csDir), []string{"127.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	csLog := &lockedBuffer{}
	csCtx, stopCS := context.WithCancel(context.Background())
	srv, err := serveCS(csCtx, csDir, ln, true, slog.New(slog.NewTextHandler(csLog, nil)))
	if err != nil {
		t.Fatal(err)
	}
	host, port, _ := net.SplitHostPort(addr)
	cfg := hostconfig.Default()
	cfg.CSHost = host
	cfg.CSPort, _ = hostconfig.ParsePort(port)
	hostConf := filepath.Join(dir, "etc", "host.conf")
	res, err := hostconfig.Register(context.Background(), cfg, hostconfig.Setup{Paths: hostconfig.PathsFor(hostConf), Passphrase: pass, Version: "test", SysRoot: "/"})
	if err != nil {
		t.Fatal(err)
	}
	registeredAt := res.Host.LastHeartbeat

	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fc := agentFileConfig(t, "host_config = \""+hostConf+"\"")
	h := startCSHeartbeats(ctx, fc, logger, 100*time.Millisecond)
	if h == nil {
		t.Fatalf("no heartbeats for a registered host; log:\n%s", logs.String())
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Status().LastHeartbeat.IsZero() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := h.Status()
	if !st.OK || st.Server != addr || st.HostID != res.Config.HostID || st.LastHeartbeat.IsZero() || st.Problem != "" {
		t.Fatalf("status after the first beat: %+v\nlog:\n%s", st, logs.String())
	}
	// the server saw it
	stopCS()
	if err := srv.Wait(); err != nil {
		t.Fatal(err)
	}
	if hb, state := hostLastHeartbeat(t, csDir, res.Config.HostID); !hb.After(registeredAt) || state != hostconfig.StateRegistered {
		t.Errorf("the server's last heartbeat %s (registered at %s), state %s", hb, registeredAt, state)
	}
	// the server is gone
	waitCS(t, h, logs, func(p string) bool { return p == "unreachable" }, "unreachable")
	st = h.Status()
	if st.OK || st.FailingSince.IsZero() || st.LastHeartbeat.IsZero() || !strings.Contains(st.Error, "connection refused") {
		t.Errorf("status with the server down: %+v", st)
	}
	if !strings.Contains(logs.String(), "configuration server heartbeat failed") || !strings.Contains(logs.String(), "problem=unreachable") {
		t.Errorf("the failure is not logged:\n%s", logs.String())
	}
	// back, on the same address
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	csCtx2, stopCS2 := context.WithCancel(context.Background())
	srv2, err := serveCS(csCtx2, csDir, ln2, true, slog.New(slog.NewTextHandler(csLog, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopCS2(); srv2.Wait() }()
	failedSince := st.FailingSince
	// the loop retries within min(interval, 30 s): 100 ms here
	waitCS(t, h, logs, func(p string) bool { return p == "" }, "ok again")
	if st := h.Status(); !st.OK || !st.LastHeartbeat.After(failedSince) || !st.FailingSince.IsZero() {
		t.Errorf("status once the server is back: %+v", st)
	}
	if !strings.Contains(logs.String(), "heartbeat accepted again") {
		t.Errorf("the recovery is not logged:\n%s", logs.String())
	}
	cancel()
	h.Wait()
	for name, s := range map[string]string{"agent log": logs.String(), "server log": csLog.String()} {
		if strings.Contains(s, string(pass)) {
			t.Errorf("the %s holds the passphrase", name)
		}
	}
}

func hostLastHeartbeat(t *testing.T, csDir, id string) (time.Time, string) {
	t.Helper()
	st, err := csserver.OpenStore(csserver.Dir(csDir).Store(), true)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, found, err := st.Get(id)
	if err != nil || !found {
		t.Fatalf("host %s on the server: %v %v", id, found, err)
	}
	return h.LastHeartbeat, h.State
}

// No registration, no heartbeats: each case says why in the log, and an
// unusable host config shows as failing rather than as not registered.
func TestAgentHeartbeatsOff(t *testing.T) {
	dir := t.TempDir()
	unregistered := filepath.Join(dir, "plain", "host.conf")
	if err := hostconfig.Save(unregistered, hostconfig.Default()); err != nil {
		t.Fatal(err)
	}
	// names a server, but the passphrase file is missing
	broken := filepath.Join(dir, "broken", "host.conf")
	bc := hostconfig.Default()
	bc.CSHost, bc.HostID = "cs.example.com", hostconfig.NewHostID()
	if err := hostconfig.Save(broken, bc); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, line, log string
		problem         string // "" for no status at all
	}{
		{"empty", `host_config = ""`, "heartbeats off: [agent] host_config is empty", ""},
		{"missing", `host_config = "` + filepath.Join(dir, "none.conf") + `"`, "does not exist", ""},
		{"no server", `host_config = "` + unregistered + `"`, "not registered with a configuration server", ""},
		{"no passphrase", `host_config = "` + broken + `"`, "the host config cannot be used", "host config error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuffer{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := startCSHeartbeats(ctx, agentFileConfig(t, tc.line), slog.New(slog.NewTextHandler(logs, nil)), time.Hour)
			defer h.Wait()
			if !strings.Contains(logs.String(), tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, logs.String())
			}
			st := h.Status()
			switch {
			case tc.problem == "" && st != nil:
				t.Errorf("status %+v, want none (not registered)", st)
			case tc.problem != "" && (st == nil || st.Problem != tc.problem || st.OK || st.Server != "cs.example.com:443"):
				t.Errorf("status %+v, want problem %q", st, tc.problem)
			}
		})
	}
}
