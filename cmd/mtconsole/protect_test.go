package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// protectHost is a process server serving sda (1 MiB) on loopback (or
// the disks of newProtectHostDisks) and a master target's config
// directory with an agent.toml that names it.
type protectHost struct {
	dir, etc, conf, pass, sock string
	small, big                 string // targets
	addr                       string
	fp                         wire.Fingerprint
	src                        map[string]string // the served disks' files by name
}

func newProtectHost(t *testing.T) *protectHost {
	t.Helper()
	return newProtectHostDisks(t, "sda")
}

// newProtectHostDisks is newProtectHost with a process server serving
// disks (1 MiB each, random bytes): the first's source is src.img, the
// others' src-NAME.img (h.src names them).
func newProtectHostDisks(t *testing.T, disks ...string) *protectHost {
	t.Helper()
	h := &protectHost{dir: t.TempDir(), src: map[string]string{}}
	h.etc = filepath.Join(h.dir, "etc")
	h.conf = filepath.Join(h.etc, "agent.toml")
	h.pass = filepath.Join(h.etc, "passphrase")
	h.sock = filepath.Join(h.dir, "agent.sock") // nobody answers
	h.small, h.big = filepath.Join(h.dir, "small.img"), filepath.Join(h.dir, "big.img")
	for p, n := range map[string]int{h.small: 4096, h.big: 1 << 20} {
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var served []ps.DiskConfig
	for i, name := range disks {
		src := filepath.Join(h.dir, "src.img")
		if i > 0 {
			src = filepath.Join(h.dir, "src-"+name+".img")
		}
		b := make([]byte, 1<<20)
		rand.Read(b)
		if err := os.WriteFile(src, b, 0o600); err != nil {
			t.Fatal(err)
		}
		h.src[name] = src
		var app time.Duration
		if i == 0 {
			app = time.Hour // the first disk's source host reports app-consistent tags hourly
		}
		served = append(served, ps.DiskConfig{Name: name, Path: src, AppConsistentInterval: app})
	}
	os.MkdirAll(h.etc, 0o700)
	const passphrase = "a passphrase for the protect tests"
	if err := os.WriteFile(h.pass, []byte(passphrase+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := wire.DeriveKey(passphrase)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, fp, err := wire.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	h.fp = fp
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: "ps-1", HostName: "web01", Disks: served})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ctx, ln) })
	t.Cleanup(func() { cancel(); wg.Wait(); srv.Close() })
	conf := fmt.Sprintf(`# hand-written
[agent]
host_id = "mt01"
journal_dir = %q
retention_dir = %q
socket = %q
trust_store = %q

[process_server]
address = %q
passphrase_file = %q

[[pair]]
disk = "old"
target = %q
`, filepath.Join(h.dir, "journal"), filepath.Join(h.dir, "retention"), h.sock, filepath.Join(h.etc, "known_process_servers"), h.addr, h.pass,
		filepath.Join(h.dir, "old.img"))
	if err := os.WriteFile(h.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *protectHost) args(extra ...string) []string {
	return append([]string{"protect", "--config", h.conf, "--group", "web01", "--allow-files", "--yes"}, extra...)
}

// A dry run prints the plan and the diff and changes nothing in the
// configuration directory (not even the trust store of a first use).
func TestProtectDryRun(t *testing.T) {
	h := newProtectHost(t)
	before := testutil.Tree(t, h.etc)
	out := mustRun(t, h.args("--map", "sda="+h.big, "--retention", "3d", "--dry-run")...)
	testutil.SameTree(t, h.etc, before)
	for _, w := range []string{"process server " + h.addr + " (web01): 1 disk, certificate " + h.fp.String() + ", first use",
		"protect web01: 1 disk", "+++ " + h.conf, "+[[group]]", "+name = \"web01\"", "+retention = \"3d\"", "+target = \"" + h.big + "\"", "dry run: nothing written",
		"app-consistent        every 1h (reported by the process server)", "alert threshold       the [defaults] (5 %)"} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
}

// protect --json: the discovery, the plan and the result; with no agent
// the file is written and the note says the agent will pick it up; the
// file loads; protection list --json shows the group.
func TestProtectJSON(t *testing.T) {
	h := newProtectHost(t)
	old, _ := os.ReadFile(h.conf)
	out := mustRun(t, h.args("--map", "sda="+h.big, "--consistency-interval", "15m", "--size-cap-mb", "0", "--alert-threshold-percent", "12", "--json")...)
	var r struct {
		DryRun        bool `json:"dry_run"`
		ProcessServer struct {
			Address     string `json:"address"`
			HostName    string `json:"host_name"`
			Fingerprint string `json:"fingerprint"`
			FirstUse    bool   `json:"first_use"`
			Disks       []struct {
				Name string `json:"name"`
				Size int64  `json:"size_bytes"`
				App  string `json:"app_consistent_interval"`
			} `json:"disks"`
		} `json:"process_server"`
		Plan struct {
			Group string `json:"group"`
			Pairs []struct {
				ID, Disk, Target string
				App              string `json:"app_consistent_interval"`
			} `json:"pairs"`
		} `json:"plan"`
		Result struct {
			Written bool   `json:"written"`
			Backup  string `json:"backup"`
			Agent   bool   `json:"agent"`
			Note    string `json:"note"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if r.DryRun || r.ProcessServer.Address != h.addr || r.ProcessServer.HostName != "web01" || r.ProcessServer.Fingerprint != h.fp.String() ||
		!r.ProcessServer.FirstUse || len(r.ProcessServer.Disks) != 1 || r.ProcessServer.Disks[0].Size != 1<<20 ||
		r.Plan.Group != "web01" || len(r.Plan.Pairs) != 1 || r.Plan.Pairs[0].Target != h.big ||
		r.ProcessServer.Disks[0].App != "1h" || r.Plan.Pairs[0].App != "1h" ||
		!r.Result.Written || r.Result.Backup != h.conf+".bak" || r.Result.Agent || r.Result.Note != protect.NoAgentNote {
		t.Fatalf("report %+v\n%s", r, out)
	}
	if b, _ := os.ReadFile(h.conf + ".bak"); string(b) != string(old) {
		t.Fatal(".bak is not the previous file")
	}
	fc, err := agent.LoadConfig(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	if cc := fc.ClientConfig(); len(cc.Groups) != 1 || cc.Groups[0].ConsistencyInterval.String() != "15m0s" || len(cc.Pairs) != 2 {
		t.Fatalf("config %+v", cc)
	}
	if st, err := wire.OpenTrustStore(filepath.Join(h.etc, "known_process_servers")); err != nil {
		t.Fatal(err)
	} else if fp, ok, _ := st.Lookup(h.addr); !ok || fp != h.fp {
		t.Fatal("certificate not pinned")
	}

	out = mustRun(t, "protection", "list", "--config", h.conf, "--json")
	var l protect.Listing
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatal(err)
	}
	if l.Agent || len(l.Groups) != 2 || l.Groups[0].Name != "web01" || !l.Groups[0].Declared || l.Groups[0].ConsistencyInterval != "15m" ||
		len(l.Groups[0].Pairs) != 1 || l.Groups[0].Pairs[0].Disk != "sda" || l.Groups[0].Pairs[0].Running ||
		l.Groups[1].Name != "old" || l.Groups[1].Declared ||
		l.Groups[0].Pairs[0].AlertThresholdPercent != 12 || l.Groups[1].Pairs[0].AlertThresholdPercent != agent.DefaultAlertPercent {
		t.Fatalf("listing %+v", l)
	}
	out = mustRun(t, "protection", "list", "--config", h.conf)
	if !strings.Contains(out, "web01 (group, consistency interval 15m)") || !strings.Contains(out, "no agent answers") ||
		!strings.Contains(out, "ALERT") || !strings.Contains(out, "12 %") ||
		!strings.Contains(out, "app-consistent: not known (no agent connected to the process server)") {
		t.Errorf("list:\n%s", out)
	}
}

// A refused plan exits 2, names the reason (in --json too) and leaves
// agent.toml as it was; a first-seen certificate not confirmed in a
// script is exit 1 with the fingerprint.
func TestProtectRefused(t *testing.T) {
	h := newProtectHost(t)
	before := testutil.Tree(t, h.dir)
	out, _, err := run(t, h.args("--map", "sda="+h.small, "--json", "--dry-run=false")...)
	wantErr(t, err, true, "protection refused", h.small, "smaller than source sda")
	if exitCode(err) != exitUsage || !strings.Contains(out, `"code": "target-too-small"`) {
		t.Errorf("exit %d, json:\n%s", exitCode(err), out)
	}
	after := testutil.Tree(t, h.dir)
	// the trust store gained the pin (--yes), nothing else changed
	var changed []string
	for _, l := range after {
		if !strings.Contains(strings.Join(before, "\n"), l) && !strings.HasPrefix(l, "etc/known_process_servers ") {
			changed = append(changed, l)
		}
	}
	if len(changed) > 0 || len(after) != len(before)+1 {
		t.Fatalf("changed: %v", changed)
	}
	conf, _ := os.ReadFile(h.conf)
	for _, args := range [][]string{
		{"--map", "nope=" + h.big},
		{"--map", "sda=" + h.big, "--retention", "forever"},
		{"--map", "sda=" + h.big, "--group", "old"},
		{"--map", "sda=" + h.big, "--on-full", "explode"},
	} {
		_, _, err := run(t, h.args(args...)...)
		if exitCode(err) != exitUsage {
			t.Errorf("%v: exit %d (%v), want 2", args, exitCode(err), err)
		}
		if b, _ := os.ReadFile(h.conf); string(b) != string(conf) {
			t.Fatalf("%v: agent.toml changed", args)
		}
	}
	_, _, err = run(t, h.args("--map", "sda="+h.big, "--alert-threshold-percent", "60")...)
	wantErr(t, err, true, "--alert-threshold-percent: alert_threshold_percent 60: want a percentage of the retention volume above 0 and at most 50")
	if b, _ := os.ReadFile(h.conf); string(b) != string(conf) {
		t.Fatal("--alert-threshold-percent 60: agent.toml changed")
	}
	_, _, err = run(t, h.args("--map", "sda="+h.big, "--retention", "3d", "--sparse", "all 1d; 1 per 1h for 6d")...)
	wantErr(t, err, true, "--sparse: the last tier ends at 7 days but the retention window is 3 days: they must be equal (--retention is 3 days)")
	_, _, err = run(t, h.args("--map", "sda="+h.big, "--sparse", "all 1d; 0 per 1h for 6d")...)
	wantErr(t, err, true, "--sparse: tier 2 tagcount: 0: must be at least 1")
	if b, _ := os.ReadFile(h.conf); string(b) != string(conf) {
		t.Fatal("--sparse refused: agent.toml changed")
	}
	_, _, err = run(t, "protect", "--config", h.conf, "--group", "x", "--map", "bad")
	wantErr(t, err, true, "--map", "DISK=TARGET")

	// not confirmed, not at a terminal
	h2 := newProtectHost(t)
	_, _, err = run(t, "protect", "--config", h2.conf, "--group", "web01", "--allow-files", "--map", "sda="+h2.big)
	wantErr(t, err, false, "first time", h2.fp.String(), "--trust-fingerprint")
	_, _, err = run(t, "protect", "--config", h2.conf, "--group", "web01", "--allow-files", "--map", "sda="+h2.big, "--trust-fingerprint", wire.Fingerprint{1}.String())
	wantErr(t, err, false, "not the --trust-fingerprint")
	mustRun(t, "protect", "--config", h2.conf, "--group", "web01", "--allow-files", "--map", "sda="+h2.big, "--trust-fingerprint", h2.fp.String())
}

// A host without agent.toml gets a complete one from --ps and
// --passphrase-file.
func TestProtectFreshHost(t *testing.T) {
	h := newProtectHost(t)
	os.Remove(h.conf)
	_, _, err := run(t, h.args("--map", "sda="+h.big)...)
	wantErr(t, err, true, "does not exist", "--ps", "--passphrase-file")
	trust := filepath.Join(h.etc, "trust")
	out := mustRun(t, h.args("--map", "sda="+h.big, "--ps", h.addr, "--passphrase-file", h.pass, "--trust-store", trust,
		"--journal-dir", filepath.Join(h.dir, "j"), "--retention-dir", filepath.Join(h.dir, "r"), "--socket", h.sock)...)
	if !strings.Contains(out, "wrote "+h.conf+"\n") || !strings.Contains(out, protect.NoAgentNote) {
		t.Errorf("output:\n%s", out)
	}
	fc, err := agent.LoadConfig(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	if fc.ProcessServer.Address != h.addr || fc.Agent.TrustStore != trust || fc.Agent.Socket != h.sock || len(fc.Pairs) != 1 {
		t.Fatalf("%+v", fc)
	}
	if fi, _ := os.Stat(h.conf); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode())
	}
}
