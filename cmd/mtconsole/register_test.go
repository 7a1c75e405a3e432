package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/hostconfig/csserver"
)

// csServe runs `mtconsole cs serve` in this process on a loopback port
// until the test ends; it returns the address and the server's log.
func csServe(t *testing.T, dir string, extra ...string) (string, *lockedBuffer) {
	t.Helper()
	root := newRootCmd()
	out := &lockedBuffer{}
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs(append([]string{"cs", "serve", "--dir", dir, "--addr", "127.0.0.1:0"}, extra...))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cs serve: %v\n%s", err, out.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(csserver.Dir(dir).AddrFile()); err == nil && strings.HasSuffix(string(b), "\n") {
			return strings.TrimSpace(string(b)), out
		}
		select {
		case err := <-done:
			t.Fatalf("cs serve ended: %v\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("cs serve did not start:\n%s", out.String())
	return "", nil
}

// TestRegisterE2E: cs init, cs serve, register, cs hosts --json lists the
// host with a recent heartbeat; register --verify, unregister.
func TestRegisterE2E(t *testing.T) {
	dir := t.TempDir()
	csDir := filepath.Join(dir, "cs")
	initOut := mustRun(t, "cs", "init", "--dir", csDir)
	passBytes, err := os.ReadFile(filepath.Join(csDir, "connection.passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	pass := strings.TrimSpace(string(passBytes))
	if !strings.Contains(initOut, pass) || !strings.Contains(initOut, "SHA256:") {
		t.Fatalf("cs init does not print the passphrase and fingerprint:\n%s", initOut)
	}
	if _, _, err := run(t, "cs", "init", "--dir", csDir); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("second init: %v", err)
	}
	addr, serveLog := csServe(t, csDir)
	passFile := filepath.Join(dir, "pass")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "etc", "host.conf")
	out := mustRun(t, "register", "--cs", addr, "--passphrase-file", passFile, "--nat-ip", "203.0.113.7", "--config", config)
	for _, w := range []string{"passphrase accepted", "trusted on first use", "registered", "verified", "saved " + config} {
		if !strings.Contains(out, w) {
			t.Errorf("register output lacks %q:\n%s", w, out)
		}
	}
	cfg, err := hostconfig.Load(config)
	if err != nil {
		t.Fatal(err)
	}
	hostsOut := mustRun(t, "cs", "hosts", "--dir", csDir, "--json")
	var hosts []hostconfig.Host
	if err := json.Unmarshal([]byte(hostsOut), &hosts); err != nil {
		t.Fatalf("cs hosts --json: %v\n%s", err, hostsOut)
	}
	if len(hosts) != 1 || hosts[0].ID != cfg.HostID || hosts[0].State != hostconfig.StateRegistered ||
		time.Since(hosts[0].LastHeartbeat) > time.Minute || hosts[0].NATIP != "203.0.113.7" {
		t.Fatalf("cs hosts: %+v, want host %s with a recent heartbeat", hosts, cfg.HostID)
	}
	if table := mustRun(t, "cs", "hosts", "--dir", csDir); !strings.Contains(table, cfg.HostID) || !strings.Contains(table, "registered") {
		t.Errorf("cs hosts table:\n%s", table)
	}
	if v := mustRun(t, "register", "--verify", "--config", config); !strings.Contains(v, "state registered") {
		t.Errorf("verify: %s", v)
	}
	// again, with the stored passphrase: same host id, the pin holds
	out = mustRun(t, "register", "--config", config)
	if !strings.Contains(out, cfg.HostID) || !strings.Contains(out, "as pinned") {
		t.Errorf("re-register:\n%s", out)
	}
	if u := mustRun(t, "unregister", "--config", config); !strings.Contains(u, "unregistered host "+cfg.HostID) {
		t.Errorf("unregister: %s", u)
	}
	_, _, err = run(t, "register", "--verify", "--config", config)
	if !errors.Is(err, hostconfig.ErrNotRegistered) {
		t.Errorf("verify after unregister: %v", err)
	}
	// the passphrase appears nowhere but its files (and cs init's output)
	for name, s := range map[string]string{"server log": serveLog.String(), "register output": out, "hosts": hostsOut} {
		if strings.Contains(s, pass) {
			t.Errorf("the %s holds the passphrase", name)
		}
	}
	for _, f := range []string{config, filepath.Join(dir, "etc", "cs_known_hosts")} {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), pass) {
			t.Errorf("%s holds the passphrase", f)
		}
	}
}

// TestRegisterFailures: exit code 14 for an unreachable server or a
// rejected passphrase, 2 for bad values; nothing stored.
func TestRegisterFailures(t *testing.T) {
	dir := t.TempDir()
	csDir := filepath.Join(dir, "cs")
	mustRun(t, "cs", "init", "--dir", csDir)
	addr, _ := csServe(t, csDir)
	config := filepath.Join(dir, "etc", "host.conf")
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-right-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err := run(t, "register", "--cs", addr, "--passphrase-file", wrong, "--config", config)
	if !isCSError(err) || !errors.Is(err, hostconfig.ErrPassphraseRejected) {
		t.Errorf("wrong passphrase: %v (exit 14: %v)", err, isCSError(err))
	}
	_, _, err = run(t, "register", "--cs", "127.0.0.1:1", "--passphrase-file", wrong, "--config", config)
	if !isCSError(err) || !strings.Contains(err.Error(), "connection refused — is the port open") {
		t.Errorf("server down: %v", err)
	}
	_, _, err = run(t, "register", "--cs", addr, "--passphrase-file", short, "--config", config)
	if !errors.Is(err, hostconfig.ErrPassphraseShort) || strings.Contains(err.Error(), "short\n") {
		t.Errorf("short passphrase: %v", err)
	}
	for _, bad := range []string{"10.0.0.4:70000", strings.Repeat("a.", 128) + "com"} {
		_, _, err = run(t, "register", "--cs", bad, "--passphrase-file", wrong, "--config", config)
		wantErr(t, err, true, "--cs")
	}
	_, _, err = run(t, "register", "--passphrase-file", wrong, "--config", config)
	wantErr(t, err, true, "give --cs")
	if _, err := os.Stat(config); err == nil {
		t.Error("a failed registration wrote the config")
	}
	if _, _, err := run(t, "register", "--verify", "--config", config); err == nil || isCSError(err) {
		t.Errorf("verify without a config: %v", err)
	}
	if out := mustRun(t, "register", "--help"); !strings.Contains(out, "14 cannot reach") {
		t.Error("register --help does not document exit code 14")
	}
}

// TestRegisterImportDrscout: the settings of an original drscout.conf.
func TestRegisterImportDrscout(t *testing.T) {
	dir := t.TempDir()
	csDir := filepath.Join(dir, "cs")
	mustRun(t, "cs", "init", "--dir", csDir)
	addr, _ := csServe(t, csDir)
	host, port, _ := strings.Cut(addr, ":")
	drscout := filepath.Join(dir, "drscout.conf")
	if err := os.WriteFile(drscout, []byte("[vxagent]\nHostId = 6f9619ff-8b86-d011-b42d-00cf4fc964ff\n[vxagent.transport]\n Hostname = "+host+"\nPort= "+port+"\nHttps=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	passFile := filepath.Join(csDir, "connection.passphrase")
	config := filepath.Join(dir, "etc", "host.conf")
	out := mustRun(t, "register", "--import-drscout", drscout, "--passphrase-file", passFile, "--config", config)
	if !strings.Contains(out, "6f9619ff-8b86-d011-b42d-00cf4fc964ff") || !strings.Contains(out, "imported "+drscout) {
		t.Errorf("import:\n%s", out)
	}
	cfg, err := hostconfig.Load(config)
	if err != nil || cfg.Imported != drscout {
		t.Errorf("config %+v %v", cfg, err)
	}
}
