package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// The demo, without a terminal: a process server and an agent on
// loopback bring every pair to Differential Sync, the status table shows
// it, and at the end each target and the tags taken check bit-exact.
func TestDemoLive(t *testing.T) {
	dir := t.TempDir()
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, err := run(t, "demo", "--dir", dir, "--disks", "2", "--size", "8", "--rate", "200", "--crash-every", "300ms",
			"--app-every", "700ms", "--for", "8s", "--verify", "2")
		done <- result{out, errOut, err}
	}()
	// While it runs, the agent's status shows the demo host registered
	// with the demo's configuration server, heartbeats accepted.
	var cs *api.CSStatus
	var statusJSON string
	for deadline := time.Now().Add(10 * time.Second); cs == nil || !cs.OK; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent's status never showed an accepted heartbeat: %+v\n%s", cs, statusJSON)
		}
		o, _, err := run(t, "status", "--json", "--socket", filepath.Join(dir, "agent.sock"))
		if err != nil {
			continue
		}
		var st api.Status
		if err := json.Unmarshal([]byte(o), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, o)
		}
		cs, statusJSON = st.CS, o
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("mtconsole demo: %v\nstdout:\n%s\nstderr:\n%s", r.err, r.out, r.errOut)
	}
	out := r.out
	hostConf, err := hostconfig.Load(filepath.Join(dir, "hostconfig", "host.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if cs.Server != hostConf.CSAddr() || cs.HostID != hostConf.HostID || !strings.HasPrefix(cs.Server, "127.0.0.1:") ||
		time.Since(cs.LastHeartbeat) > time.Minute {
		t.Errorf("status cs %+v, want host %s registered with %s", cs, hostConf.HostID, hostConf.CSAddr())
	}
	if !strings.Contains(out, "Configuration server "+cs.Server+": registered, last heartbeat") {
		t.Errorf("the status table does not show the registration:\n%s", out)
	}
	// the server kept the host, with the agent's heartbeat
	hostsOut := mustRun(t, "cs", "hosts", "--dir", filepath.Join(dir, "cs"), "--json")
	var hosts []hostconfig.Host
	if err := json.Unmarshal([]byte(hostsOut), &hosts); err != nil {
		t.Fatalf("cs hosts --json: %v\n%s", err, hostsOut)
	}
	if len(hosts) != 1 || hosts[0].ID != hostConf.HostID || hosts[0].LastHeartbeat.Before(cs.LastHeartbeat.Add(-time.Second)) {
		t.Errorf("cs hosts: %+v, want %s with the heartbeat of %s", hosts, hostConf.HostID, cs.LastHeartbeat)
	}
	// the passphrase of the configuration server: in its 0600 files only
	csPass := mustRead(t, filepath.Join(dir, "cs", "connection.passphrase"))
	for _, f := range []string{filepath.Join(dir, "cs", "connection.passphrase"), filepath.Join(dir, "hostconfig", "private", "connection.passphrase")} {
		if fi, err := os.Stat(f); err != nil || fi.Mode().Perm() != 0o600 || mustRead(t, f) != csPass {
			t.Errorf("%s: %v %v, want the passphrase, mode 0600", f, fi, err)
		}
	}
	for name, s := range map[string]string{"output": out + r.errOut, "status JSON": statusJSON, "cs hosts": hostsOut,
		"agent.toml": mustRead(t, filepath.Join(dir, "agent.toml")), "demo.log": mustRead(t, filepath.Join(dir, "demo.log")),
		"host.conf": mustRead(t, filepath.Join(dir, "hostconfig", "host.conf"))} {
		if strings.Contains(s, csPass) {
			t.Errorf("the demo's %s holds the configuration server's passphrase", name)
		}
	}
	if !strings.Contains(out, "Resync Step") && !strings.Contains(out, "Queued") {
		t.Errorf("the status table never showed a resync:\n%s", out)
	}
	if !strings.Contains(out, "Differential Sync") {
		t.Errorf("no pair reached Differential Sync:\n%s", out)
	}
	m := regexp.MustCompile(`(\d+) checks: (\d+) bit-exact, 0 differ`).FindStringSubmatch(out)
	if m == nil || m[1] != m[2] {
		t.Fatalf("the demo's checks did not all pass:\n%s", out)
	}
	if b := mustRead(t, filepath.Join(dir, "tags.sha256")); !regexp.MustCompile(`^[0-9a-f]{64}  disk[01] \S+`).MatchString(b) {
		t.Errorf("tags.sha256 does not list the tags: %q", b)
	}
	// two live exports, two targets and two tags each
	if n := strings.Count(out, "bit-exact\n"); n != 8 {
		t.Errorf("%d lines end bit-exact, want 8 (2 live exports, 2 targets, 2 tags each):\n%s", n, out)
	}
	if n := len(regexp.MustCompile(`(?m)^  disk[01]: live \S+ +sha256 [0-9a-f]{12}…  bit-exact$`).FindAllString(out, -1)); n != 2 {
		t.Errorf("%d live exports checked, want 2 (one a pair, exported while the agent runs):\n%s", n, out)
	}
	if !strings.Contains(out, "mtconsole agent --config "+filepath.Join(dir, "agent.toml")) {
		t.Errorf("the kept directory's agent configuration is not offered:\n%s", out)
	}
	fi, err := os.Stat(filepath.Join(dir, "passphrase"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("passphrase file: %v %v", fi, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "agent.toml")); strings.Contains(string(b), mustRead(t, filepath.Join(dir, "passphrase"))) {
		t.Error("the agent configuration holds the passphrase in clear")
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestDemoBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--disks", "0"},
		{"--size", "0"},
		{"--rate", "0"},
		{"--write-size", "1000"},
		{"--for", "-1s"},
		{"extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "d")
			_, _, err := run(t, append([]string{"demo", "--dir", dir}, args...)...)
			wantErr(t, err, true)
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("a refused demo made its --dir")
			}
		})
	}
}

// A hangup (the SSH session gone) quits the demo as q does: it drains,
// checks and exits 0, its agent does not take the signal for a reload.
func TestDemoHangup(t *testing.T) {
	dir := t.TempDir()
	work := filepath.Join(dir, "demo")
	p := startE2E(t, dir, "demo", "demo", "--no-console", "--dir", work, "--disks", "1", "--size", "4", "--rate", "50", "--for", "1h")
	e2eWait(t, "the pair in Differential Sync", 30*time.Second, []*e2eProc{p}, func() (bool, string) {
		out := p.output()
		return strings.Contains(out, "Differential Sync"), out
	})
	if err := p.stop(t, syscall.SIGHUP, 60*time.Second); err != nil {
		t.Fatalf("demo on SIGHUP: %v (want exit 0); its output:\n%s", err, p.output())
	}
	out := p.output()
	if !regexp.MustCompile(`\d+ checks: \d+ bit-exact, 0 differ`).MatchString(out) || !strings.Contains(out, "disk0: target") {
		t.Errorf("the demo did not check its target on the hangup:\n%s", out)
	}
}

// Rolling one pair of the demo back (as the dashboard's r does) ends that
// pair alone: the agent does not reconnect to the process server, the
// other pairs stream on, and at the end the demo reports the pair rolled
// back, checks its target against the source at the tag, checks the
// others bit-exact, and exits 0.
func TestDemoRollbackOnePair(t *testing.T) {
	dir := t.TempDir()
	work := filepath.Join(dir, "demo")
	socket := filepath.Join(work, "agent.sock")
	p := startE2E(t, dir, "demo", "demo", "--no-console", "--dir", work, "--disks", "3", "--size", "4", "--rate", "100",
		"--crash-every", "200ms", "--app-every", "0", "--verify", "1", "--for", "1h")
	pairs := func() (map[string]api.PairStatus, string) {
		o, _, err := run(t, "status", "--json", "--socket", socket)
		if err != nil {
			return nil, err.Error()
		}
		var st api.Status
		if err := json.Unmarshal([]byte(o), &st); err != nil {
			return nil, o
		}
		out := map[string]api.PairStatus{}
		for _, p := range st.Pairs {
			out[p.ID] = p
		}
		return out, o
	}
	e2eWait(t, "every pair in Differential Sync, disk2 with a tag", 60*time.Second, []*e2eProc{p}, func() (bool, string) {
		ps, o := pairs()
		for _, d := range []string{"disk0", "disk1", "disk2"} {
			if ps[d].State != "Differential Sync" {
				return false, o
			}
		}
		return ps["disk2"].Retention.LatestTag != nil, o
	})
	mustRun(t, "recover", "--socket", socket, "--point", "latest-tag", "--mode", "rollback", "--pairs", "disk2", "--yes")
	ps, o := pairs()
	if ps["disk2"].Health != writer.HealthEnded || ps["disk2"].State != "Ended" || !strings.HasPrefix(ps["disk2"].Reason, "rolled back to tag ") {
		t.Errorf("status after the rollback does not show disk2 ended:\n%s", o)
	}
	// The others go on: more of their writes are applied.
	applied := map[string]uint64{"disk0": ps["disk0"].AppliedSeq, "disk1": ps["disk1"].AppliedSeq}
	e2eWait(t, "disk0 and disk1 to go on", 30*time.Second, []*e2eProc{p}, func() (bool, string) {
		ps, o := pairs()
		return ps["disk0"].AppliedSeq > applied["disk0"]+20 && ps["disk1"].AppliedSeq > applied["disk1"]+20 &&
			ps["disk0"].State == "Differential Sync" && ps["disk1"].State == "Differential Sync", o
	})
	if err := p.stop(t, syscall.SIGINT, 90*time.Second); err != nil {
		t.Fatalf("demo: %v (want exit 0); its output:\n%s", err, p.output())
	}
	out := p.output()
	if !regexp.MustCompile(`disk2: rolled back and ended, no longer replicated \(rolled back to tag `).MatchString(out) ||
		!regexp.MustCompile(`disk2: target +sha256 [0-9a-f]+…  bit-exact \(the source at tag `).MatchString(out) {
		t.Errorf("the demo does not report disk2 rolled back and checked:\n%s", out)
	}
	if m := regexp.MustCompile(`(\d+) checks: (\d+) bit-exact, 0 differ`).FindStringSubmatch(out); m == nil || m[1] != m[2] {
		t.Errorf("the demo's checks did not all pass:\n%s", out)
	}
	for _, d := range []string{"disk0", "disk1"} {
		if !regexp.MustCompile(d + `: target +sha256 [0-9a-f]+…  bit-exact\n`).MatchString(out) {
			t.Errorf("%s's target not checked bit-exact:\n%s", d, out)
		}
	}
	log := mustRead(t, filepath.Join(work, "demo.log"))
	if n := strings.Count(log, "connection to the process server ended"); n != 0 {
		t.Errorf("the agent's connection ended %d times:\n%s", n, log)
	}
	if !strings.Contains(log, "the master target ended its pair") {
		t.Errorf("the process server was not told disk2 ended:\n%s", log)
	}
}
