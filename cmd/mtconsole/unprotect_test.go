package main

import (
	"github.com/mtconsole/mtconsole/replication/agent"
	"os"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
)

// unprotect: a dry run changes nothing; a name that is not protected, or
// the last pairs, is refused (exit 2, nothing written); --purge-retention
// outside a terminal needs --yes; with no agent the group leaves the file,
// which is then as before protect, and the target is left as it is.
func TestUnprotect(t *testing.T) {
	h, before, protected, target := protectedHost(t)

	tree := testutil.Tree(t, h.etc)
	out := mustRun(t, "unprotect", "--config", h.conf, "--socket", h.sock, "web01", "--dry-run")
	testutil.SameTree(t, h.etc, tree)
	for _, w := range []string{"unprotect web01: 1 pair leaves", "-[[group]]", "dry run: nothing written"} {
		if !strings.Contains(out, w) {
			t.Errorf("dry run lacks %q:\n%s", w, out)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"nope"}, "not protected here"},
		{[]string{"web01", "--purge-retention"}, "confirm with --yes"},
	} {
		_, _, err := run(t, append([]string{"unprotect", "--config", h.conf, "--socket", h.sock}, tc.args...)...)
		if exitCode(err) != exitUsage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want exit 2 and %q", tc.args, err, tc.want)
		}
		testutil.SameTree(t, h.etc, tree)
	}
	out = mustRun(t, "unprotect", "--config", h.conf, "--socket", h.sock, "web01")
	if !strings.Contains(out, "no agent answers") {
		t.Errorf("output:\n%s", out)
	}
	if now, _ := os.ReadFile(h.conf); string(now) != string(before) {
		t.Errorf("after unprotect:\n%s\nwant as before protect:\n%s", now, before)
	}
	if bak, _ := os.ReadFile(h.conf + ".bak"); string(bak) != string(protected) {
		t.Error("agent.toml.bak is not the file before unprotect")
	}
	if now, _ := os.ReadFile(h.big); string(now) != string(target) {
		t.Error("the target changed")
	}
	// What is left is the last pair: it goes too, the file keeps loading
	// (an agent with no pair waits for the next protection), and a name
	// not there is refused.
	if _, _, err := run(t, "unprotect", "--config", h.conf, "--socket", h.sock, "old"); err != nil {
		t.Fatalf("last pair: %v", err)
	}
	if now := string(readFile(t, h.conf)); strings.Contains(now, "[[pair]]") {
		t.Errorf("after the last unprotect:\n%s", now)
	}
	if _, err := agent.LoadConfig(h.conf); err != nil {
		t.Errorf("agent.toml without pairs: %v", err)
	}
	_, _, err := run(t, "unprotect", "--config", h.conf, "--socket", h.sock, "old")
	if exitCode(err) != exitUsage || !strings.Contains(err.Error(), "not protected here") {
		t.Errorf("unprotect of what is gone: %v", err)
	}
}

// protectedHost is a protect host with group web01 (sda → big.img)
// protected, no agent running; it returns agent.toml before and after
// the protect, and the target's bytes.
func protectedHost(t *testing.T) (h *protectHost, before, protected, target []byte) {
	t.Helper()
	h = newProtectHost(t)
	before = readFile(t, h.conf)
	mustRun(t, h.args("--map", "sda="+h.big)...)
	return h, before, readFile(t, h.conf), readFile(t, h.big)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
