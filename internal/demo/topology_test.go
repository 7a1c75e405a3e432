package demo

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// The demo's agent.toml is the file the demo always wrote, and the agent
// loads it; the soak's is the same without the comment and heartbeats.
func TestAgentConfigWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.toml")
	c := AgentConfig{Comment: "written by mtconsole demo", HostID: "demo-mt", Dir: "/d", Socket: "/d/agent.sock",
		HostConfig: "/d/hostconfig/host.conf", Addr: "127.0.0.1:9", PassFile: "/d/passphrase", Retention: "24h", Pairs: []string{"disk0", "disk1"}}
	if err := c.Write(path); err != nil {
		t.Fatal(err)
	}
	want := `# written by mtconsole demo
[agent]
host_id = "demo-mt"
journal_dir = "/d/journal"
retention_dir = "/d/retention"
socket = "/d/agent.sock"
trust_store = "/d/known_process_servers"
trust_new_servers = true
hash_resync = false
host_config = "/d/hostconfig/host.conf"

[process_server]
address = "127.0.0.1:9"
passphrase_file = "/d/passphrase"

[defaults]
rpo_threshold = "1m"
retention = "24h"

[[pair]]
disk = "disk0"
target = "/d/targets/disk0.img"

[[pair]]
disk = "disk1"
target = "/d/targets/disk1.img"
`
	b, err := os.ReadFile(path)
	if err != nil || string(b) != want {
		t.Fatalf("%v\n%s\nwant\n%s", err, b, want)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if _, err := agent.LoadConfig(path); err != nil {
		t.Errorf("the agent does not load it: %v", err)
	}
	c.Comment, c.HostConfig = "", ""
	if err := c.Write(path); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if string(b[:8]) != "[agent]\n" {
		t.Errorf("no comment: starts %q", b[:8])
	}
}

// Secrets writes the passphrase (0600, one line) the key derives from.
func TestSecrets(t *testing.T) {
	dir := t.TempDir()
	file, key, cert, err := Secrets(dir, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil || len(b) != 33 || b[32] != '\n' {
		t.Fatalf("passphrase file %q %v", b, err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if k, err := wire.DeriveKey(string(b[:32])); err != nil || k != key {
		t.Errorf("the key is not the passphrase's: %v", err)
	}
	if len(cert.Certificate) == 0 {
		t.Error("no certificate")
	}
}
