package agent_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The daemon reloads its file on POST /v1/reload: a [[pair]] added to the
// file starts and reaches Differential Sync, the result names it; a file
// with an error changes nothing and the result says where; a [[pair]]
// taken out stops, with purge its journal and retention go (never its
// target). The log says what each reload did.
func TestDaemonReloadViaAPI(t *testing.T) {
	dir, err := os.MkdirTemp("", "mtd") // short: a socket path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const pass = "a passphrase of some length"
	os.WriteFile(filepath.Join(dir, "pass"), []byte(pass+"\n"), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	addr := startDaemonPS(t, ctx, dir, pass, "disk0", "disk1")

	sock := filepath.Join(dir, "a.sock")
	head := "[agent]\nhost_id = \"mt1\"\njournal_dir = \"" + dir + "/j\"\nretention_dir = \"" + dir + "/r\"\nsocket = \"" + sock + "\"\n" +
		"trust_store = \"" + dir + "/known\"\nhash_resync = false\nhost_config = \"\"\n[process_server]\naddress = \"" + addr +
		"\"\npassphrase_file = \"" + dir + "/pass\"\n"
	pairText := func(d string) string {
		return "[[pair]]\ndisk = \"" + d + "\"\ntarget = \"" + dir + "/" + d + ".tgt\"\n"
	}
	path := filepath.Join(dir, "agent.toml")
	os.WriteFile(path, []byte(head+pairText("disk0")), 0o600)
	fc, err := agent.LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(actx, fc, agent.Options{Log: &logs, Version: "test"}) }()
	defer func() { stop(); <-done }()
	var c *api.Client
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err = api.Dial(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no API: %v\n%s", err, logs.String())
		}
	}
	defer c.Close()
	states := func() map[string]string {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, p := range st.Pairs {
			out[p.ID] = p.State
		}
		return out
	}
	waitState := func(what string, ok func(map[string]string) bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !ok(states()); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s: %v\n%s", what, states(), logs.String())
			}
		}
	}
	waitState("disk0 in differential sync", func(s map[string]string) bool { return s["disk0"] == agent.StateDiffSync })

	os.WriteFile(path, []byte(head+pairText("disk0")+pairText("disk1")), 0o600)
	res, err := c.Reload(ctx)
	if err != nil || !slices.Equal(res.Started, []string{"disk1"}) || len(res.Stopped)+len(res.Restart) != 0 {
		t.Fatalf("reload with a new pair: %+v, %v\n%s", res, err, logs.String())
	}
	waitState("disk1 in differential sync", func(s map[string]string) bool {
		return s["disk0"] == agent.StateDiffSync && s["disk1"] == agent.StateDiffSync
	})
	if !strings.Contains(logs.String(), `msg="configuration reloaded"`) || !strings.Contains(logs.String(), "started=[disk1]") {
		t.Errorf("the log does not say what the reload did:\n%s", logs.String())
	}

	os.WriteFile(path, []byte(head+"[defaults]\nretention = \"soon\"\n"+pairText("disk0")), 0o600)
	res, err = c.Reload(ctx)
	if !errors.Is(err, api.ErrReload) || !strings.Contains(res.Error, path+":") || len(res.Stopped) != 0 || len(states()) != 2 {
		t.Errorf("a bad file: %+v, %v", res, err)
	}

	os.WriteFile(path, []byte(head+pairText("disk0")), 0o600)
	res, err = c.ReloadWith(ctx, api.ReloadRequest{Purge: true})
	if err != nil || !slices.Equal(res.Stopped, []string{"disk1"}) {
		t.Fatalf("reload without disk1: %+v, %v", res, err)
	}
	if s := states(); len(s) != 1 || s["disk0"] != agent.StateDiffSync {
		t.Errorf("after disk1 was taken out: %v", s)
	}
	for _, d := range []string{"j/disk1", "r/disk1"} {
		if _, err := os.Stat(filepath.Join(dir, d)); !os.IsNotExist(err) {
			t.Errorf("purged: %s still there (%v)", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "disk1.tgt")); err != nil {
		t.Errorf("the target of the removed pair: %v", err)
	}
}

// startDaemonPS serves the disks (1 MiB of random data each, DIR/NAME.src,
// with an empty DIR/NAME.tgt beside) from a process server on loopback
// until ctx ends, and returns its address.
func startDaemonPS(t *testing.T, ctx context.Context, dir, pass string, disks ...string) string {
	t.Helper()
	var dcs []ps.DiskConfig
	for _, d := range disks {
		writeRandom(t, filepath.Join(dir, d+".src"), 1<<20, 3)
		os.WriteFile(filepath.Join(dir, d+".tgt"), make([]byte, 1<<20), 0o600)
		dcs = append(dcs, ps.DiskConfig{Name: d, Path: filepath.Join(dir, d+".src")})
	}
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
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: "ps", HostName: "ps", Disks: dcs, ChunkSize: 64 << 10, Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	psDone := make(chan struct{})
	go func() { defer close(psDone); srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-psDone; srv.Close() })
	return ln.Addr().String()
}
