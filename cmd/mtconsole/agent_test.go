package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// TestAgentCommand runs `mtconsole agent` against an in-process process
// server on loopback: the target catches up with the source, the status
// API answers, and cancelling (SIGTERM) ends it cleanly.
func TestAgentCommand(t *testing.T) {
	dir, err := os.MkdirTemp("", "mtag")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	src := make([]byte, 4<<20)
	rand.Read(src)
	os.WriteFile(filepath.Join(dir, "src.img"), src, 0o600)
	os.WriteFile(filepath.Join(dir, "tgt.img"), make([]byte, len(src)), 0o600)
	os.WriteFile(filepath.Join(dir, "pass"), []byte("a passphrase of some length\n"), 0o600)

	key, err := wire.DeriveKey("a passphrase of some length")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := wire.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: "ps", HostName: "ps",
		Disks: []ps.DiskConfig{{Name: "disk0", Path: filepath.Join(dir, "src.img")}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx, ln)
	defer srv.Close()

	sock := filepath.Join(dir, "a.sock")
	cfg := "[agent]\njournal_dir = \"" + dir + "/j\"\nretention_dir = \"" + dir + "/r\"\nsocket = \"" + sock + "\"\n" +
		"trust_store = \"" + dir + "/known\"\nhash_resync = false\n[process_server]\naddress = \"" + ln.Addr().String() +
		"\"\npassphrase_file = \"" + dir + "/pass\"\n[[pair]]\ndisk = \"disk0\"\ntarget = \"" + dir + "/tgt.img\"\n"
	path := filepath.Join(dir, "agent.toml")
	os.WriteFile(path, []byte(cfg), 0o600)

	var logs lockedBuffer
	done := make(chan error, 1)
	actx, stop := context.WithCancel(context.Background())
	go func() { done <- runAgentFile(actx, &logs, path) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := os.ReadFile(filepath.Join(dir, "tgt.img"))
		if bytes.Equal(got, src) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("the target never caught up; agent log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	c, err := api.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Pairs) != 1 || st.Pairs[0].ID != "disk0" || st.Pairs[0].State == "" {
		t.Fatalf("status %+v", st)
	}
	// A pause and a resume reach the agent's log, not only the event API.
	if _, err := c.Pause(context.Background(), "disk0", "checking the log"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Resume(context.Background(), "disk0"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`level=INFO msg="paused: checking the log" pair=disk0 kind=state`, `level=INFO msg=resumed pair=disk0 kind=state`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the agent's log lacks %s:\n%s", want, logs.String())
		}
	}
	// SIGHUP reloads: a new retention window applies at once; a file with
	// an error changes nothing.
	os.WriteFile(path, []byte(strings.Replace(cfg, "[[pair]]", "[defaults]\nretention = \"2 days\"\n[[pair]]", 1)), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	window := func() time.Duration {
		st, err := c.Status(context.Background())
		if err != nil || len(st.Pairs) != 1 {
			t.Fatalf("status: %v", err)
		}
		return st.Pairs[0].Retention.Window
	}
	for deadline := time.Now().Add(5 * time.Second); window() != 48*time.Hour; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the reload did not change the window: %s\n%s", window(), logs.String())
		}
	}
	os.WriteFile(path, []byte(strings.Replace(cfg, "[[pair]]", "[defaults]\nretention = \"1 fortnight\"\n[[pair]]", 1)), 0o600)
	syscall.Kill(os.Getpid(), syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	if window() != 48*time.Hour || !strings.Contains(logs.String(), "reload refused") {
		t.Fatalf("a bad file on reload: window %s, log:\n%s", window(), logs.String())
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("agent ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not stop")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

// runAgentFile runs the agent of the file at path as `mtconsole agent`
// does, SIGHUP reloading it, until ctx ends.
func runAgentFile(ctx context.Context, log io.Writer, path string) error {
	fc, err := agent.LoadConfig(path)
	if err != nil {
		return err
	}
	return agent.Run(ctx, fc, agent.Options{Log: log, ReloadOnHUP: true, Version: version})
}

func TestAgentCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[agent]\nsocket = 5\n"), 0o600)
	if err := runAgentFile(context.Background(), &bytes.Buffer{}, bad); err == nil || !strings.HasPrefix(err.Error(), bad) {
		t.Fatalf("bad config: %v", err)
	}
	pass := filepath.Join(dir, "pass")
	os.WriteFile(pass, []byte("secret passphrase\n"), 0o644)
	cfg := filepath.Join(dir, "agent.toml")
	os.WriteFile(cfg, []byte("[process_server]\naddress = \"127.0.0.1:1\"\npassphrase_file = \""+pass+"\"\n[[pair]]\ndisk = \"a\"\ntarget = \"/nonexistent\"\n"), 0o600)
	err := runAgentFile(context.Background(), &bytes.Buffer{}, cfg)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+pass) {
		t.Fatalf("passphrase file readable by others: %v", err)
	}
	// the wire passphrase has the minimum of every passphrase
	os.WriteFile(pass, []byte("short one\n"), 0o600)
	os.Chmod(pass, 0o600)
	if err := runAgentFile(context.Background(), &bytes.Buffer{}, cfg); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Fatalf("a passphrase of 9 characters: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("fixture")
	}
	if err := runAgentFile(context.Background(), &bytes.Buffer{}, filepath.Join(dir, "missing.toml")); err == nil {
		t.Fatal("a missing config file was accepted")
	}
}
