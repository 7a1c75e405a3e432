package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
)

// installAnswers is the example answers with a protect: section.
func installAnswers(t *testing.T, protect string) string {
	t.Helper()
	ex, err := os.ReadFile("../../scripts/examples/mt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "a.yaml")
	if err := os.WriteFile(p, append(ex, []byte(protect)...), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// dryDiff is the change to agent.toml a dry run printed.
func dryDiff(t *testing.T, out string) string {
	t.Helper()
	i := strings.Index(out, "\n--- ")
	j := strings.LastIndex(out, "\ndry run: nothing written")
	if j < 0 {
		j = strings.LastIndex(out, "\nDry run: nothing changed.")
	}
	if i < 0 || j < i {
		t.Fatalf("no diff in:\n%s", out)
	}
	return out[i+1 : j]
}

// The answers' protect: section and mtconsole protect's flags, given the
// same values, write the same agent.toml, byte for byte: on a host with
// an agent.toml (both really written, in two copies of it) and on a
// fresh one (both dry runs: the same planned text, nothing written).
func TestInstallProtectSameAsCLI(t *testing.T) {
	h := newProtectHost(t)
	orig, _ := os.ReadFile(h.conf)
	policy := "    retention: 3d\n    size_cap_mb: 0\n    on_full: pause\n    rpo_threshold: 20m\n    alert_threshold_percent: 12.5\n    consistency_interval: 15m\n    allow_files: true\n    sparse: all 1d; 1 per 1h for 2d\n"
	flags := []string{"--retention", "3d", "--size-cap-mb", "0", "--on-full", "pause", "--rpo-threshold", "20m", "--alert-threshold-percent", "12.5", "--consistency-interval", "15m", "--allow-files", "--sparse", "all 1d; 1 per 1h for 2d",
		"--trust-fingerprint", h.fp.String()}

	// with agent.toml: both written
	rootCLI, rootAns := t.TempDir(), t.TempDir()
	for _, r := range []string{rootCLI, rootAns} {
		os.MkdirAll(filepath.Join(r, "etc/mtconsole"), 0o700)
		if err := os.WriteFile(filepath.Join(r, "etc/mtconsole/agent.toml"), orig, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cliConf := filepath.Join(rootCLI, "etc/mtconsole/agent.toml")
	mustRun(t, append([]string{"protect", "--config", cliConf, "--group", "web01", "--map", "sda=" + h.big}, flags...)...)
	answers := installAnswers(t, "protect:\n  - group: web01\n    map: {sda: "+h.big+"}\n    trust_fingerprint: "+h.fp.String()+"\n"+policy)
	out, code := runSetupCmd(t, "install", "--root", rootAns, "--answers", answers, "--skip-checks")
	if code != 0 || !strings.Contains(out, "protect: 1 machine in "+filepath.Join(rootAns, "etc/mtconsole/agent.toml")) || !strings.Contains(out, "protect web01: 1 disk") {
		t.Fatalf("install: exit %d\n%s", code, out)
	}
	cli, _ := os.ReadFile(cliConf)
	ans, _ := os.ReadFile(filepath.Join(rootAns, "etc/mtconsole/agent.toml"))
	if string(cli) == string(orig) || string(cli) != string(ans) || !strings.Contains(string(cli), "\nalert_threshold_percent = 12.5\n") {
		t.Fatalf("agent.toml differs:\nCLI:\n%s\nanswers:\n%s", cli, ans)
	}
	if b, _ := os.ReadFile(filepath.Join(rootAns, "etc/mtconsole/agent.toml.bak")); string(b) != string(orig) {
		t.Error("install: no agent.toml.bak of the previous file")
	}

	// fresh host: both dry runs plan the same file and write nothing
	root := t.TempDir()
	conf := filepath.Join(root, "etc/mtconsole/agent.toml")
	cliOut := mustRun(t, append([]string{"protect", "--config", conf, "--group", "web01", "--map", "sda=" + h.big, "--dry-run",
		"--ps", h.addr, "--passphrase-file", h.pass, "--retention-dir", "/mnt/retention/mtconsole"}, flags...)...)
	answers = installAnswers(t, "protect:\n  - group: web01\n    ps: "+h.addr+"\n    passphrase_file: "+h.pass+"\n    map: {sda: "+h.big+"}\n    trust_fingerprint: "+h.fp.String()+"\n"+policy)
	out, code = runSetupCmd(t, "install", "--root", root, "--answers", answers, "--skip-checks", "--dry-run")
	if code != 0 {
		t.Fatalf("install dry run: exit %d\n%s", code, out)
	}
	if c, a := dryDiff(t, cliOut), dryDiff(t, out); c != a || !strings.Contains(c, "--- /dev/null") || !strings.Contains(c, `+retention_dir = "/mnt/retention/mtconsole"`) {
		t.Fatalf("planned files differ:\nCLI:\n%s\nanswers:\n%s", c, a)
	}
	if es, _ := os.ReadDir(root); len(es) != 0 {
		t.Errorf("dry run changed %s", root)
	}
}

// Several machines are one change, planned each on the one before; a
// refused entry names the answers file, line and group, exits 2 and
// writes nothing; a first-seen certificate without trust_fingerprint is
// refused with its fingerprint.
func TestInstallProtectRefused(t *testing.T) {
	h := newProtectHost(t)
	orig, _ := os.ReadFile(h.conf)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/mtconsole"), 0o700)
	conf := filepath.Join(root, "etc/mtconsole/agent.toml")
	os.WriteFile(conf, orig, 0o600)
	before := testutil.Tree(t, root)

	// the second entry maps a disk the first one pairs: refused
	answers := installAnswers(t, "protect:\n  - group: web01\n    map: {sda: "+h.big+"}\n    allow_files: true\n    trust_fingerprint: "+h.fp.String()+
		"\n  - group: web02\n    map: {sda: "+h.small+"}\n    allow_files: true\n")
	out, code := runSetupCmd(t, "install", "--root", root, "--answers", answers, "--skip-checks", "--dry-run")
	if code != exitUsage || !strings.Contains(out, "a.yaml:") || !strings.Contains(out, ": protect web02: protection refused") || !strings.Contains(out, `source disk "sda" is already paired`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	testutil.SameTree(t, root, before)

	// no trust_fingerprint for a first-seen process server
	answers = installAnswers(t, "protect:\n  - group: web01\n    map: {sda: "+h.big+"}\n    allow_files: true\n")
	out, code = runSetupCmd(t, "install", "--root", root, "--answers", answers, "--skip-checks")
	if code == 0 || !strings.Contains(out, h.fp.String()) || !strings.Contains(out, "trust_fingerprint") {
		t.Fatalf("untrusted: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(conf); string(b) != string(orig) {
		t.Fatal("agent.toml changed")
	}
}
