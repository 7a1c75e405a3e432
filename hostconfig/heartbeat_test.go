package hostconfig_test

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/hostconfig/csserver"
)

// serveCS serves the configuration server of dir on ln (HTTPS, as cs serve
// does) until the returned stop is called; stop returns once it has.
func serveCS(t *testing.T, dir csserver.Dir, pass hostconfig.Passphrase, ln net.Listener, log *lockedBuf) (stop func()) {
	t.Helper()
	_, cert, fp, err := csserver.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	st, err := csserver.OpenStore(dir.Store(), false)
	if err != nil {
		t.Fatal(err)
	}
	srv := csserver.New(csserver.Options{Key: deriveKey(t, pass), Cert: fp, Store: st,
		Log: slog.New(slog.NewTextHandler(log, nil)), Version: "test"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln, &cert, 0) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cs serve: %v", err)
		}
		st.Close()
	}
}

// waitHeartbeats polls h until ok says the status is the one awaited.
func waitHeartbeats(t *testing.T, h *hostconfig.Heartbeats, logs *lockedBuf, ok func(s string) bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ok(h.Status().Problem) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the registration never became %s: %+v\nlog:\n%s", what, h.Status(), logs.String())
}

// Heartbeats keep a registered host's registration alive: they beat at
// start, the status shows the server and the last heartbeat, a server
// that stops shows as unreachable (logged, with what failed, never the
// passphrase), and one that is back is seen again.
func TestHeartbeats(t *testing.T) {
	dir := t.TempDir()
	csDir := csserver.Dir(filepath.Join(dir, "cs"))
	pass, _, err := csserver.Init(csDir, []string{"127.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	csLog := &lockedBuf{}
	stopCS := serveCS(t, csDir, pass, ln, csLog)
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

	logs := &lockedBuf{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h := hostconfig.StartHeartbeats(ctx, hostConf, true, "test", logger, 100*time.Millisecond)
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
	if hb, state := hostLastHeartbeat(t, csDir, res.Config.HostID); !hb.After(registeredAt) || state != hostconfig.StateRegistered {
		t.Errorf("the server's last heartbeat %s (registered at %s), state %s", hb, registeredAt, state)
	}
	// the server is gone
	waitHeartbeats(t, h, logs, func(p string) bool { return p == "unreachable" }, "unreachable")
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
	defer serveCS(t, csDir, pass, ln2, csLog)()
	failedSince := st.FailingSince
	// the loop retries within min(interval, 30 s): 100 ms here
	waitHeartbeats(t, h, logs, func(p string) bool { return p == "" }, "ok again")
	if st := h.Status(); !st.OK || !st.LastHeartbeat.After(failedSince) || !st.FailingSince.IsZero() {
		t.Errorf("status once the server is back: %+v", st)
	}
	if !strings.Contains(logs.String(), "heartbeat accepted again") {
		t.Errorf("the recovery is not logged:\n%s", logs.String())
	}
	cancel()
	h.Wait()
	for name, s := range map[string]string{"heartbeats' log": logs.String(), "server log": csLog.String()} {
		if strings.Contains(s, string(pass)) {
			t.Errorf("the %s holds the passphrase", name)
		}
	}
}

func hostLastHeartbeat(t *testing.T, csDir csserver.Dir, id string) (time.Time, string) {
	t.Helper()
	st, err := csserver.OpenStore(csDir.Store(), true)
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
func TestHeartbeatsOff(t *testing.T) {
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
		name, path string
		named      bool
		log        string
		problem    string // "" for no status at all
	}{
		{"empty", "", true, "heartbeats off: [agent] host_config is empty", ""},
		{"missing, named", filepath.Join(dir, "none.conf"), true, "does not exist", ""},
		{"missing, the default", filepath.Join(dir, "none.conf"), false, "(no host config); heartbeats off", ""},
		{"no server", unregistered, true, "not registered with a configuration server", ""},
		{"no passphrase", broken, true, "the host config cannot be used", "host config error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &lockedBuf{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			h := hostconfig.StartHeartbeats(ctx, tc.path, tc.named, "test", slog.New(slog.NewTextHandler(logs, nil)), time.Hour)
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
