package agent_test

import (
	"context"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/sdnotify"
	"github.com/mtconsole/mtconsole/replication/agent"
)

// strictScript does in a new mount namespace what the agent's unit's
// ProtectSystem=strict does: every mount read-only but /dev, /proc and
// /sys, then the paths given before -- writable again (the unit's
// StateDirectory, RuntimeDirectory and the retention drop-in's
// ReadWritePaths); then it runs the command after --.
const strictScript = `set -e
awk '{print $5}' /proc/self/mountinfo | sort -u | while read -r m; do
	case "$m" in /dev|/dev/*|/proc|/proc/*|/sys|/sys/*) continue ;; esac
	mount -o remount,bind,ro "$m" 2>/dev/null || true
done
while [ "$1" != -- ]; do mount --bind "$1" "$1"; mount -o remount,bind,rw "$1"; shift; done
shift
exec "$@"`

// TestAgentWritablePaths runs a real agent with the file system read-only
// but for the directories its unit makes writable, laid out as the unit's:
// etc (agent.toml, passphrase: /etc/mtconsole, read-only), state
// (journals, retention, jobs, the trust store: /var/lib/mtconsole), run
// (the status socket: /run/mtconsole) and data (the target, as a block
// device or the retention volume is). It must come up (READY=1), pin the
// process server, resync and reach Differential Sync, and stop cleanly;
// with a jobs_dir under etc it must fail, read-only, which proves the
// namespace is.
func TestAgentWritablePaths(t *testing.T) {
	if testing.Short() {
		t.Skip("runs an agent in a mount namespace")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("no unshare (util-linux)")
	}
	dir, err := os.MkdirTemp("", "mtro") // short: socket paths
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	const pass = "a passphrase of some length"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	os.WriteFile(filepath.Join(dir, "pass"), []byte(pass+"\n"), 0o600)
	addr := startDaemonPS(t, ctx, dir, pass, "disk0")

	etc, state, run, data := filepath.Join(dir, "etc"), filepath.Join(dir, "state"), filepath.Join(dir, "run"), filepath.Join(dir, "data")
	for _, d := range []string{etc, state, run, data} {
		os.MkdirAll(d, 0o700)
	}
	os.WriteFile(filepath.Join(etc, "passphrase"), []byte(pass+"\n"), 0o600)
	os.WriteFile(filepath.Join(data, "disk0.tgt"), make([]byte, 1<<20), 0o600)
	config := func(jobs string) string {
		p := filepath.Join(etc, "agent.toml")
		os.WriteFile(p, []byte("[agent]\nhost_id = \"mt1\"\njournal_dir = \""+state+"/journal\"\nretention_dir = \""+state+"/retention\"\n"+
			"jobs_dir = \""+jobs+"\"\nsocket = \""+run+"/agent.sock\"\ntrust_store = \""+state+"/known_process_servers\"\n"+
			"hash_resync = false\nhost_config = \"\"\n[process_server]\naddress = \""+addr+"\"\npassphrase_file = \""+etc+"/passphrase\"\n"+
			"[[pair]]\ndisk = \"disk0\"\ntarget = \""+data+"/disk0.tgt\"\n"), 0o600)
		return p
	}
	mgr, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(run, "notify"), Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer mgr.Close()
	start := func(cfg string) (*exec.Cmd, *syncBuf) {
		var logs syncBuf
		c := exec.CommandContext(ctx, unshare, "-m", "--propagation", "private", "sh", "-c", strictScript, "sh", state, run, data, "--",
			os.Args[0], "-test.run=^TestAgentWritablePathsChild$", "-test.count=1")
		c.Env = append(os.Environ(), "MTCONSOLE_RO_CHILD="+cfg, "NOTIFY_SOCKET="+filepath.Join(run, "notify"))
		c.Stdout, c.Stderr = &logs, &logs
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		return c, &logs
	}

	// Read-only is read-only: a jobs_dir under etc fails the start.
	c, logs := start(config(filepath.Join(etc, "jobs")))
	if err := c.Wait(); err == nil || !strings.Contains(logs.String(), "read-only file system") {
		t.Fatalf("an agent writing its jobs under the read-only etc: %v\n%s", err, logs.String())
	}

	c, logs = start(config(filepath.Join(state, "jobs")))
	defer c.Process.Kill()
	recv := func() string {
		buf := make([]byte, 4096)
		mgr.SetReadDeadline(time.Now().Add(time.Minute))
		n, err := mgr.Read(buf)
		if err != nil {
			t.Fatalf("no notification: %v\n%s", err, logs.String())
		}
		return string(buf[:n])
	}
	if m := recv(); !strings.HasPrefix(m, "READY=1\n") {
		t.Fatalf("first notification %q\n%s", m, logs.String())
	}
	for m := recv(); !strings.Contains(m, "1 in "+agent.StateDiffSync); m = recv() {
	}
	// The resync applied onto the target in data.
	src, _ := os.ReadFile(filepath.Join(dir, "disk0.src"))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if tgt, _ := os.ReadFile(filepath.Join(data, "disk0.tgt")); string(tgt) == string(src) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the target never came to hold the source\n%s", logs.String())
		}
	}
	c.Process.Signal(syscall.SIGTERM)
	if err := c.Wait(); err != nil {
		t.Fatalf("the agent under a read-only file system: %v\n%s", err, logs.String())
	}
	if strings.Contains(logs.String(), "read-only file system") {
		t.Fatalf("the agent met a read-only path:\n%s", logs.String())
	}
	for _, p := range []string{"known_process_servers", "journal", "retention", "jobs"} {
		if _, err := os.Stat(filepath.Join(state, p)); err != nil {
			t.Errorf("the agent did not write %s in its state directory: %v", p, err)
		}
	}
}

// TestAgentWritablePathsChild is the agent TestAgentWritablePaths runs in
// its namespace.
func TestAgentWritablePathsChild(t *testing.T) {
	cfg := os.Getenv("MTCONSOLE_RO_CHILD")
	if cfg == "" {
		t.Skip("run by TestAgentWritablePaths")
	}
	fc, err := agent.LoadConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := agent.Run(ctx, fc, agent.Options{Log: os.Stderr, Version: "test", Notify: sdnotify.FromEnv()}); err != nil {
		t.Fatal(err)
	}
}
