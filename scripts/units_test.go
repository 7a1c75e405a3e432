package scripts

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

var unitFiles = []string{"mtconsole-agent.service", "mtconsole-ps.service", "mtconsole-cs.service"}

// unitsWithBinary copies the units into a temp dir with ExecStart's
// /usr/bin/mtconsole replaced by an executable that exists here (the
// test binary), as systemd-analyze verify checks it.
func unitsWithBinary(t *testing.T) map[string]string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := map[string]string{}
	for _, u := range unitFiles {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, u)
		os.WriteFile(p, bytes.ReplaceAll(b, []byte("/usr/bin/mtconsole"), []byte(exe)), 0o644)
		out[u] = p
	}
	return out
}

// TestUnitsVerify: systemd-analyze verify (the systemd package on
// Debian) finds nothing wrong in the three units.
func TestUnitsVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze (apt install systemd)")
	}
	for u, p := range unitsWithBinary(t) {
		out, err := exec.Command(sa, "verify", "--man=no", p).CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("systemd-analyze verify %s: %v\n%s", u, err, out)
		}
	}
	// A broken unit is reported: the check can fail.
	bad := filepath.Join(t.TempDir(), "mtconsole-bad.service")
	os.WriteFile(bad, []byte("[Service]\nType=notify\nExecStart=/nonexistent/mtconsole agent\nProtectSystem=stricter\n"), 0o644)
	if out, err := exec.Command(sa, "verify", "--man=no", bad).CombinedOutput(); err == nil && len(bytes.TrimSpace(out)) == 0 {
		t.Error("systemd-analyze verify passes a unit with a missing binary and a bad ProtectSystem")
	}
}

var exposure = regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`)

// TestUnitsSecurity: systemd-analyze security --offline scores the units'
// exposure at most 4.0 for ps and cs and 5.5 for the agent, which must
// write block devices and its retention volume.
func TestUnitsSecurity(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze (apt install systemd)")
	}
	goal := map[string]float64{"mtconsole-agent.service": 5.5, "mtconsole-ps.service": 4.0, "mtconsole-cs.service": 4.0}
	for u, p := range unitsWithBinary(t) {
		out, err := exec.Command(sa, "security", "--offline=true", "--no-pager", p).CombinedOutput()
		m := exposure.FindSubmatch(out)
		if m == nil {
			t.Fatalf("systemd-analyze security %s: %v, no score in\n%s", u, err, out)
		}
		score, _ := strconv.ParseFloat(string(m[1]), 64)
		t.Logf("%s: exposure %.1f", u, score)
		if score > goal[u] {
			t.Errorf("%s: exposure %.1f, want at most %.1f:\n%s", u, score, goal[u], out)
		}
	}
}

// TestUnitsSettings: what the units promise in README.md.
func TestUnitsSettings(t *testing.T) {
	for _, u := range unitFiles {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, want := range []string{"Type=notify", "NotifyAccess=main", "WatchdogSec=", "ProtectSystem=strict", "ExecStart=/usr/bin/mtconsole "} {
			if !strings.Contains(s, "\n"+want) {
				t.Errorf("%s lacks %s", u, want)
			}
		}
	}
	rw := map[string]string{
		"mtconsole-agent.service": "", // StateDirectory and RuntimeDirectory; the retention drop-in adds its data
		"mtconsole-ps.service":    "/etc/mtconsole/ps",
		"mtconsole-cs.service":    "/etc/mtconsole/cs",
	}
	for u, want := range rw {
		b, _ := os.ReadFile(u)
		var got []string
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "ReadWritePaths="); ok {
				got = append(got, v)
			}
		}
		if strings.Join(got, " ") != want {
			t.Errorf("%s: ReadWritePaths %q, want %q", u, got, want)
		}
	}
	if b, err := os.ReadFile("mtconsole-agent.service"); err != nil || !bytes.Equal(AgentUnit, b) {
		t.Errorf("the embedded agent unit differs from the file (%v)", err)
	}
}
