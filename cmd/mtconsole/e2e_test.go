//go:build linux

package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// e2eChildEnv carries a child's mtconsole arguments, as a JSON array whose
// first element is the command (ps or agent).
const e2eChildEnv = "MTCONSOLE_E2E_CHILD"

// TestE2EChild is the child process of TestE2EProcesses: it runs the real
// mtconsole command named in e2eChildEnv, with real flags and files,
// until it ends (or is killed).
func TestE2EChild(t *testing.T) {
	spec := os.Getenv(e2eChildEnv)
	if spec == "" {
		t.Skip("run as a child process by TestE2EProcesses")
	}
	var args []string
	if err := json.Unmarshal([]byte(spec), &args); err != nil {
		fmt.Fprintf(os.Stderr, "e2e child: bad %s: %v\n", e2eChildEnv, err)
		os.Exit(2)
	}
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "mtconsole:", err)
		os.Exit(1)
	}
}

// e2eProc is one child process: mtconsole ps or agent.
type e2eProc struct {
	name string
	cmd  *exec.Cmd
	log  string // its stdout and stderr
	done chan struct{}
	err  error // Wait's answer, once done is closed
}

// startE2E re-executes the test binary as `mtconsole args...`. The child is
// killed when the test ends, and by the kernel if the test process dies.
func startE2E(t *testing.T, dir, name string, args ...string) *e2eProc {
	t.Helper()
	spec, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	p := &e2eProc{name: name, log: filepath.Join(dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close() // the child has its own descriptor
	p.cmd = exec.Command(os.Args[0], "-test.run=^TestE2EChild$", "-test.count=1", "-test.timeout=3m")
	p.cmd.Env = append(os.Environ(), e2eChildEnv+"="+string(spec))
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *e2eProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *e2eProc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// stop sends sig and waits up to d for the child to end; it returns the
// exit error (nil: exit status 0).
func (p *e2eProc) stop(t *testing.T, sig os.Signal, d time.Duration) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
	select {
	case <-p.done:
		return p.err
	case <-time.After(d):
		t.Fatalf("%s did not end within %s of %v; its log:\n%s", p.name, d, sig, p.output())
		return nil
	}
}

// e2eWait polls cond every 50 ms until it holds, failing the test after d
// or as soon as one of procs has ended.
func e2eWait(t *testing.T, what string, d time.Duration, procs []*e2eProc, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	last := ""
	for {
		ok, detail := cond()
		if ok {
			return time.Since(start)
		}
		if detail != "" {
			last = detail
		}
		for _, p := range procs {
			if p.exited() {
				t.Fatalf("waiting for %s: %s ended (%v); last seen: %s; its log:\n%s", what, p.name, p.err, last, p.output())
			}
		}
		if time.Now().After(deadline) {
			var logs strings.Builder
			for _, p := range procs {
				fmt.Fprintf(&logs, "--- %s ---\n%s", p.name, p.output())
			}
			t.Fatalf("waiting for %s: not after %s; last seen: %s\n%s", what, d, last, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// e2eStatus asks the agent on sock for its one pair.
func e2eStatus(sock string) (api.PairStatus, error) {
	c, err := api.Dial(sock)
	if err != nil {
		return api.PairStatus{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return api.PairStatus{}, err
	}
	if len(st.Pairs) != 1 {
		return api.PairStatus{}, fmt.Errorf("status has %d pairs, want 1", len(st.Pairs))
	}
	return st.Pairs[0], nil
}

func describe(ps api.PairStatus) string {
	return fmt.Sprintf("state=%q health=%s durable=%d applied=%d backlog=%dB tags=%d", ps.State, ps.Health, ps.DurableSeq,
		ps.AppliedSeq, ps.BacklogBytes, ps.Retention.Tags)
}

// e2eTag is a tag the process server's workload logged, with the SHA-256
// of the whole source at the tag.
type e2eTag struct {
	name string
	sent bool
	sha  string
}

// psTags parses the `msg=tag` lines of a process server's log.
func psTags(log string) []e2eTag {
	var out []e2eTag
	for line := range strings.Lines(log) {
		kv := map[string]string{}
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				kv[k] = v
			}
		}
		if kv["msg"] != "tag" || kv["name"] == "" || len(kv["sha256"]) != 64 {
			continue
		}
		tg := e2eTag{name: kv["name"], sent: kv["sent"] == "true", sha: kv["sha256"]}
		out = append(out, tg)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestE2EProcesses runs `mtconsole ps` and `mtconsole agent` as real
// processes on loopback with file-backed disks: initial full resync under a
// workload, kill -9 of the agent mid-stream and its resumption, a restart of
// the process server without workload (hash resync), byte-for-byte
// equality of target and source, recovery of workload tags through the
// agent's API against the source hashes the generator logged, and a clean
// SIGTERM of the agent.
func TestE2EProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes for tens of seconds")
	}
	t0 := time.Now()
	phase := t0
	lap := func(what string) {
		t.Logf("%-44s %6.2fs (total %6.2fs)", what, time.Since(phase).Seconds(), time.Since(t0).Seconds())
		phase = time.Now()
	}
	// Short: unix socket paths are limited to 108 bytes.
	dir, err := os.MkdirTemp("", "mte2e")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // runs after the children are killed

	const size = 16 << 20
	src := filepath.Join(dir, "src.img")
	tgt := filepath.Join(dir, "tgt.img")
	pass := filepath.Join(dir, "pass")
	b := make([]byte, size)
	rand.Read(b)
	clear(b[4<<20 : 5<<20]) // a zero range too
	if err := os.WriteFile(src, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tgt, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pass, []byte("an end-to-end passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sock := filepath.Join(dir, "a.sock")
	cfg := filepath.Join(dir, "agent.toml")
	conf := fmt.Sprintf(`[agent]
host_id = "mte2e"
journal_dir = %q
retention_dir = %q
socket = %q
trust_store = %q
hash_resync = false

[process_server]
address = %q
passphrase_file = %q

[[pair]]
disk = "disk0"
target = %q
`, filepath.Join(dir, "j"), filepath.Join(dir, "r"), sock, filepath.Join(dir, "known"), addr, pass, tgt)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	psArgs := []string{"ps", "--listen", addr, "--disk", "disk0=" + src, "--passphrase-file", pass,
		"--cert-dir", filepath.Join(dir, "cert"), "--chunk-size", "65536"}
	// 64 random writes of 64 KiB a second: 4 MiB/s. Chunks as small as the
	// writes, so that Resync Step II, which ends only once no chunk is
	// dirty, converges under the workload (with the default 1 MiB chunks and
	// 5 MiB/s of random writes it never left Step II under -race).
	ps1 := startE2E(t, dir, "ps1", append(slices.Clone(psArgs), "--workload", "seed=7,rate=64,size=65536,crash=1s,app=3s")...)
	agent1 := startE2E(t, dir, "agent1", "agent", "--config", cfg)

	// 1. Full resync into the empty target, then Differential Sync with tags.
	var st api.PairStatus
	e2eWait(t, "Differential Sync with tags", 40*time.Second, []*e2eProc{ps1, agent1}, func() (bool, string) {
		s, err := e2eStatus(sock)
		if err != nil {
			return false, err.Error()
		}
		st = s
		return s.State == "Differential Sync" && s.Retention.Tags >= 2 && s.DurableSeq > 0, describe(s)
	})
	lap("1. resync to Differential Sync, 2 tags")

	// 2. kill -9 the agent mid-stream and start it again.
	pre := st
	if err := agent1.stop(t, syscall.SIGKILL, 10*time.Second); err == nil {
		t.Fatal("agent1 exited 0 on SIGKILL")
	}
	preKill := psTags(ps1.output())
	lap("2. kill -9 the agent")
	agent2 := startE2E(t, dir, "agent2", "agent", "--config", cfg)
	var states []string
	var resumed uint64
	first := true
	e2eWait(t, "the restarted agent back in Differential Sync with new tags", 40*time.Second, []*e2eProc{ps1, agent2}, func() (bool, string) {
		s, err := e2eStatus(sock)
		if err != nil {
			return false, err.Error()
		}
		if first {
			first = false
			// Every write durable before the kill survived it.
			resumed = s.DurableSeq
			if s.DurableSeq < pre.DurableSeq {
				t.Fatalf("after kill -9 the agent's journal is durable to %d, but %d was durable before", s.DurableSeq, pre.DurableSeq)
			}
		}
		if len(states) == 0 || states[len(states)-1] != s.State {
			states = append(states, s.State)
		}
		return s.State == "Differential Sync" && s.DurableSeq > pre.DurableSeq && s.Retention.Tags >= pre.Retention.Tags+2, describe(s)
	})
	for _, s := range states {
		if strings.HasPrefix(s, "Resync") {
			t.Errorf("the agent's restart made a resync: states %q; the process server kept its buffer", states)
			break
		}
	}
	t.Logf("kill -9 at durable seq %d with %d tags; the restarted agent resumed at durable seq %d and went through %q",
		pre.DurableSeq, pre.Retention.Tags, resumed, states)
	if !strings.Contains(agent2.output(), "removed a stale socket") {
		t.Logf("agent2 did not report removing the killed agent's socket; its log:\n%s", agent2.output())
	}
	lap("2. restarted agent back in Differential Sync")

	// 3. Stop the process server (SIGTERM: exit 0) and start it without
	// workload: the agent resumes, the process server, having lost its
	// buffer, resyncs by hashes, and the target ends equal to the source.
	if err := ps1.stop(t, syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("ps1 on SIGTERM: %v (want exit 0); its log:\n%s", err, ps1.output())
	}
	tags := psTags(ps1.output())
	want, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	lap("3. SIGTERM the process server")
	ps2 := startE2E(t, dir, "ps2", psArgs...)
	var states2 []string
	e2eWait(t, "the target equal to the still source", 40*time.Second, []*e2eProc{ps2, agent2}, func() (bool, string) {
		if !strings.Contains(ps2.output(), "master target connected") {
			return false, "the agent has not reconnected to ps2"
		}
		s, err := e2eStatus(sock)
		if err != nil {
			return false, err.Error()
		}
		st = s
		if len(states2) == 0 || states2[len(states2)-1] != s.State {
			states2 = append(states2, s.State)
		}
		if s.State != "Differential Sync" || s.BacklogBytes != 0 || s.AppliedSeq != s.DurableSeq {
			return false, describe(s)
		}
		got, err := os.ReadFile(tgt)
		if err != nil {
			return false, err.Error()
		}
		if !bytes.Equal(got, want) {
			i := 0
			for i < len(got) && i < len(want) && got[i] == want[i] {
				i++
			}
			return false, describe(s) + fmt.Sprintf("; the target differs from the source at byte %d", i)
		}
		return true, ""
	})
	if now, _ := os.ReadFile(src); !bytes.Equal(now, want) {
		t.Fatal("the source changed without a workload")
	}
	t.Logf("after the process server's restart the agent went through %q", states2)
	lap("3. target == source after the ps restart")

	// 4. Recover workload tags through the agent and compare each image
	// with the source's SHA-256 the generator logged at that tag.
	if st.Retention.LatestTag == nil {
		t.Fatalf("no tag in the agent's retention: %s", describe(st))
	}
	latest := st.Retention.LatestTag.Name
	var cands []e2eTag
	sawSent := false
	for _, tg := range tags {
		if tg.sent {
			sawSent = true
		} else if sawSent {
			t.Errorf("tag %s was not sent though an earlier one was: the stream resynced in between", tg.name)
		}
		if tg.sent {
			cands = append(cands, tg)
		}
		if tg.name == latest {
			break
		}
	}
	if len(cands) == 0 || cands[len(cands)-1].name != latest {
		t.Fatalf("the agent's latest tag %s is not among the %d tags the process server sent", latest, len(cands))
	}
	// The first tag the agent got, the last one taken before the kill, the latest.
	pick := []e2eTag{cands[0]}
	for i := len(cands) - 1; i >= 0; i-- {
		if slices.ContainsFunc(preKill, func(p e2eTag) bool { return p.name == cands[i].name }) {
			pick = append(pick, cands[i])
			break
		}
	}
	pick = append(pick, cands[len(cands)-1])
	pick = slices.CompactFunc(pick, func(a, b e2eTag) bool { return a.name == b.name })
	c, err := api.Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tg := range pick {
		dest := filepath.Join(dir, "export-"+tg.name+".img")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		job, err := c.Recover(ctx, api.RecoverRequest{Point: "tag:" + tg.name, Mode: api.ModeExport, Dest: dest, Pairs: []string{"disk0"}})
		if err != nil {
			cancel()
			t.Fatalf("recover tag %s: %v", tg.name, err)
		}
		for job.State == api.JobRunning {
			time.Sleep(50 * time.Millisecond)
			j, err := c.Job(ctx, job.ID)
			if err != nil {
				cancel()
				t.Fatalf("job %s (tag %s): %v", job.ID, tg.name, err)
			}
			job = j
		}
		cancel()
		if job.State != api.JobDone {
			t.Fatalf("job %s (tag %s): %s: %s", job.ID, tg.name, job.State, job.Error)
		}
		img, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(img)
		if got := hex.EncodeToString(h[:]); got != tg.sha {
			t.Errorf("tag %s: the exported image's SHA-256 is %s, the source's at the tag was %s", tg.name, got, tg.sha)
		}
		os.Remove(dest)
	}
	names := make([]string, len(pick))
	for i, tg := range pick {
		names[i] = tg.name
	}
	t.Logf("recovered %d of %d tags the agent holds: %s", len(pick), len(cands), strings.Join(names, ", "))
	lap("4. export tags, compare SHA-256")

	// 5. SIGTERM the agent: exit 0, socket gone. Then the process server.
	c.Close()
	if err := agent2.stop(t, syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("agent on SIGTERM: %v (want exit 0); its log:\n%s", err, agent2.output())
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the agent left its socket behind: %v", err)
	}
	lap("5. SIGTERM the agent: exit 0, socket gone")
	if err := ps2.stop(t, syscall.SIGTERM, 15*time.Second); err != nil {
		t.Fatalf("ps2 on SIGTERM: %v (want exit 0); its log:\n%s", err, ps2.output())
	}
	lap("5. SIGTERM the process server: exit 0")
}
