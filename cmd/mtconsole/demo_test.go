package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The demo, without a terminal: a process server and an agent on
// loopback bring every pair to Differential Sync, the status table shows
// it, and at the end each target and the tags taken check bit-exact.
func TestDemoLive(t *testing.T) {
	dir := t.TempDir()
	out := mustRun(t, "demo", "--dir", dir, "--disks", "2", "--size", "8", "--rate", "200", "--crash-every", "300ms",
		"--app-every", "700ms", "--for", "4s", "--verify", "2")
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
	// two targets and two tags each
	if n := strings.Count(out, "bit-exact\n"); n != 6 {
		t.Errorf("%d lines end bit-exact, want 6 (2 targets, 2 tags each):\n%s", n, out)
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
