package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/logging"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// journalSink is a fake journald: it keeps every datagram sent to path.
type journalSink struct {
	path string
	mu   sync.Mutex
	got  []string
}

func newJournalSink(t *testing.T) *journalSink {
	t.Helper()
	j := &journalSink{path: filepath.Join(t.TempDir(), "journal.sock")}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: j.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 1<<20)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			j.mu.Lock()
			j.got = append(j.got, string(buf[:n]))
			j.mu.Unlock()
		}
	}()
	return j
}

func (j *journalSink) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.got, "\x00")
}

// logAgent runs `mtconsole agent` with args against a process server
// logging through h until the target holds the source, runs during (when
// not nil), then stops it.
func logAgent(t *testing.T, dir, pass string, psLog slog.Handler, stderr *lockedBuffer, hostConf string, during func(), args ...string) {
	t.Helper()
	src := make([]byte, 1<<20)
	rand.Read(src)
	os.WriteFile(filepath.Join(dir, "src.img"), src, 0o600)
	os.WriteFile(filepath.Join(dir, "tgt.img"), make([]byte, len(src)), 0o600)
	os.WriteFile(filepath.Join(dir, "pass"), []byte(pass+"\n"), 0o600)
	key, err := wire.DeriveKey(pass)
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
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: "ps", HostName: "ps", Logger: slog.New(psLog),
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
	cfg := "[agent]\njournal_dir = \"" + dir + "/j\"\nretention_dir = \"" + dir + "/r\"\nsocket = \"" + dir + "/a.sock\"\n" +
		"host_config = \"" + hostConf + "\"\njobs_dir = \"" + dir + "/jobs\"\n" +
		"trust_store = \"" + dir + "/known\"\nhash_resync = false\n[process_server]\naddress = \"" + ln.Addr().String() +
		"\"\npassphrase_file = \"" + dir + "/pass\"\n[[pair]]\ndisk = \"disk0\"\ntarget = \"" + dir + "/tgt.img\"\n"
	path := filepath.Join(dir, "agent.toml")
	os.WriteFile(path, []byte(cfg), 0o600)

	root := newRootCmd()
	root.SetOut(stderr)
	root.SetErr(stderr)
	root.SetArgs(append([]string{"agent", "--config", path}, args...))
	actx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(actx) }()
	defer func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop")
		}
	}()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, _ := os.ReadFile(filepath.Join(dir, "tgt.img")); bytes.Equal(got, src) {
			if during != nil {
				during()
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target never caught up; agent log:\n%s", stderr.String())
		}
	}
}

// The passphrase, read and used by the real connection setup of the
// agent and the process server at debug level, reaches no log in any
// format.
func TestLogsHoldNoSecret(t *testing.T) {
	const pass = "tr0ub4dor&3-is-not-a-good-one"
	key, err := wire.DeriveKey(pass)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{pass, hex.EncodeToString(key[:]), strings.ToUpper(hex.EncodeToString(key[:]))}
	j := newJournalSink(t)
	old := journalSocket
	journalSocket = j.path
	defer func() { journalSocket = old }()
	for _, format := range []string{"text", "json", "journal"} {
		t.Run(format, func(t *testing.T) {
			var psOut, stderr lockedBuffer
			psH, err := logging.New(logging.Options{Format: format, Level: slog.LevelDebug, Stream: &psOut, JournalSocket: j.path})
			if err != nil {
				t.Fatal(err)
			}
			logAgent(t, t.TempDir(), pass, psH, &stderr, "", nil, "--log-format", format, "--log-level", "debug")
			all := psOut.String() + stderr.String() + j.String()
			for _, s := range secrets {
				if strings.Contains(all, s) {
					t.Errorf("%s: a secret (%q) is in the log", format, s)
				}
			}
			switch format {
			case "json":
				if !strings.Contains(stderr.String(), `"msg":"agent started"`) {
					t.Errorf("no JSON agent log:\n%s", stderr.String())
				}
			case "journal":
				if !strings.Contains(j.String(), "SYSLOG_IDENTIFIER=mtconsole-agent\n") || !strings.Contains(j.String(), "\nPROCESS_SERVER=127.0.0.1:") {
					t.Errorf("no agent datagrams:\n%q", j.String())
				}
			default:
				if !strings.Contains(stderr.String(), "level=INFO msg=\"agent started\"") {
					t.Errorf("no text agent log:\n%s", stderr.String())
				}
			}
		})
	}
}

// host.conf's logging.level is applied at start, re-read on SIGHUP, and
// --log-level overrides it.
func TestAgentLogLevelFromHostConf(t *testing.T) {
	dir := t.TempDir()
	hc := filepath.Join(dir, "host.conf")
	os.WriteFile(hc, []byte("[logging]\nlevel = 4\n"), 0o600)
	var stderr lockedBuffer
	// At level 4 (warning) the agent's info is not logged.
	ps := slog.NewTextHandler(&bytes.Buffer{}, nil)
	logAgent(t, dir, "a passphrase of some length", ps, &stderr, hc, func() {
		if strings.Contains(stderr.String(), "agent started") {
			t.Errorf("level 4 logged info:\n%s", stderr.String())
		}
		// SIGHUP re-reads the file: level 6 is info.
		os.WriteFile(hc, []byte("[logging]\nlevel = 6\n"), 0o600)
		syscall.Kill(os.Getpid(), syscall.SIGHUP)
		for deadline := time.Now().Add(30 * time.Second); !strings.Contains(stderr.String(), `msg="log level changed" from=WARN to=INFO`); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("SIGHUP did not change the level:\n%s", stderr.String())
			}
		}
	}, "--log-format", "text")
	if !strings.Contains(stderr.String(), "level=INFO msg=\"agent stopping") {
		t.Errorf("info not logged after the SIGHUP:\n%s", stderr.String())
	}
	// --log-level wins over the file.
	var fixed lockedBuffer
	l, err := newCmdLog(newRootCmd(), "t", &fixed, hc)
	if err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	if err := root.ParseFlags([]string{"--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if l, err = newCmdLog(root, "t", &fixed, hc); err != nil || l.Level.Level() != slog.LevelError {
		t.Errorf("--log-level error over level 6: %v, %v", l.Level.Level(), err)
	}
	l.Reload()
	if l.Level.Level() != slog.LevelError {
		t.Errorf("a reload undid --log-level: %v", l.Level.Level())
	}
	root = newRootCmd()
	root.ParseFlags([]string{"--log-level", "loud"})
	if _, err := newCmdLog(root, "t", &fixed, hc); err == nil || !isUsage(err) || !strings.Contains(err.Error(), "--log-level") {
		t.Errorf("--log-level loud: %v", err)
	}
	// Level 7 is debug; a reload (SIGHUP) re-reads the file, and a bad
	// file keeps the level.
	os.WriteFile(hc, []byte("[logging]\nlevel = 7\n"), 0o600)
	l, err = newCmdLog(newRootCmd(), "t", &stderr, hc)
	if err != nil {
		t.Fatal(err)
	}
	if l.Level.Level() != slog.LevelDebug {
		t.Errorf("level 7 read as %v", l.Level.Level())
	}
	os.WriteFile(hc, []byte("[logging]\nlevel = 6\n"), 0o600)
	l.Reload()
	if l.Level.Level() != slog.LevelInfo || !strings.Contains(stderr.String(), `msg="log level changed" from=DEBUG to=INFO`) {
		t.Errorf("reload: level %v, log:\n%s", l.Level.Level(), stderr.String())
	}
	os.WriteFile(hc, []byte("[logging]\nlevel = 9\n"), 0o600)
	l.Reload()
	if l.Level.Level() != slog.LevelInfo || !strings.Contains(stderr.String(), "logging.level not re-read: the level stays INFO") {
		t.Errorf("bad file: level %v, log:\n%s", l.Level.Level(), stderr.String())
	}
}
