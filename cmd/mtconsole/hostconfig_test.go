package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mtconsole/mtconsole/replication/agent"
)

func TestAgentHostConfig(t *testing.T) {
	dir := t.TempDir()
	if got := agentHostConfig(filepath.Join(dir, "none.toml")); got != agent.DefaultHostConfig {
		t.Errorf("no agent config: %q, want the default", got)
	}
	write := func(line string) string {
		p := filepath.Join(dir, "agent.toml")
		text := "[agent]\n" + line + "\n[process_server]\naddress = \"ps:9443\"\npassphrase_file = \"/p\"\n[[pair]]\ndisk = \"d\"\ntarget = \"/t\"\n"
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if got := agentHostConfig(write(`host_config = "/srv/mt/host.conf"`)); got != "/srv/mt/host.conf" {
		t.Errorf("named: %q", got)
	}
	if got := agentHostConfig(write(`host_config = ""`)); got != "" {
		t.Errorf("off: %q", got)
	}
	if got := agentHostConfig(write("")); got != agent.DefaultHostConfig {
		t.Errorf("left out: %q", got)
	}
}

// The host config screen only looks for --readonly, and for a user other
// than root who does not own the config's directory.
func TestHostConfigReadOnly(t *testing.T) {
	dir := t.TempDir()
	owner := os.Getuid()
	other := owner + 4242
	if owner == 0 {
		other = 4242
	}
	config := filepath.Join(dir, "host.conf")
	for _, c := range []struct {
		flag bool
		euid int
		want string
	}{
		{true, 0, "--readonly"},
		{false, 0, ""},
		{false, other, "not root"},
		{true, other, "--readonly"},
	} {
		if got := hostConfigReadOnly(c.flag, c.euid, config); got != c.want {
			t.Errorf("flag %v, euid %d: %q, want %q", c.flag, c.euid, got, c.want)
		}
	}
	if owner == 0 { // a user who owns it may change it
		if err := os.Chown(dir, other, -1); err != nil {
			t.Fatal(err)
		}
		owner = other
	}
	if got := hostConfigReadOnly(false, owner, config); got != "" {
		t.Errorf("the owner of the config's directory: %q", got)
	}
}
