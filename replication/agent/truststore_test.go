package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTrustStorePath: a file naming no trust_store gets the default
// under /var/lib, and an older install's pins at the legacy /etc path are
// copied there once (0600), the old file left as it was; a file naming
// one keeps it and nothing is copied.
func TestTrustStorePath(t *testing.T) {
	dir := t.TempDir()
	legacy := filepath.Join(dir, "etc", "known_process_servers")
	os.MkdirAll(filepath.Dir(legacy), 0o700)
	pins := []byte("ps1.example.com:9443 sha256:0123\n")
	os.WriteFile(legacy, pins, 0o644)
	fc := &FileConfig{trustDefault: true}
	fc.Agent.TrustStore = filepath.Join(dir, "var", "lib", "mtconsole", "known_process_servers")

	path, migrated, err := fc.TrustStorePath(legacy)
	if err != nil || !migrated || path != fc.Agent.TrustStore {
		t.Fatalf("TrustStorePath = %q, %v, %v; want the default, copied", path, migrated, err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(pins) {
		t.Fatalf("the copy holds %q (%v), want %q", got, err, pins)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("the copy is %v, want 0600", fi.Mode().Perm())
	}
	if old, _ := os.ReadFile(legacy); string(old) != string(pins) {
		t.Fatal("the legacy file changed")
	}
	// Once copied, the default is the store: a changed legacy file is not
	// read again.
	os.WriteFile(legacy, []byte("other:9443 sha256:ffff\n"), 0o644)
	if _, migrated, err := fc.TrustStorePath(legacy); migrated || err != nil {
		t.Fatalf("second start: migrated %v, %v", migrated, err)
	}
	if got, _ := os.ReadFile(path); string(got) != string(pins) {
		t.Fatalf("the store changed on the second start: %q", got)
	}

	// A file that names its trust store keeps it.
	named := &FileConfig{}
	named.Agent.TrustStore = filepath.Join(dir, "mine")
	if p, migrated, err := named.TrustStorePath(legacy); p != named.Agent.TrustStore || migrated || err != nil {
		t.Fatalf("named: %q, %v, %v", p, migrated, err)
	}
	if _, err := os.Stat(named.Agent.TrustStore); err == nil {
		t.Fatal("pins were copied into a named trust store")
	}

	// A legacy store that cannot be read is an error naming it.
	bad := &FileConfig{trustDefault: true}
	bad.Agent.TrustStore = filepath.Join(dir, "new2")
	if _, _, err := bad.TrustStorePath(filepath.Join(dir, "etc")); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "etc")) {
		t.Fatalf("unreadable legacy store: %v", err)
	}
}

func TestLoadConfigTrustStoreDefault(t *testing.T) {
	p := filepath.Join(t.TempDir(), "agent.toml")
	os.WriteFile(p, []byte("[process_server]\naddress = \"ps:9443\"\npassphrase_file = \"/x\"\n"), 0o600)
	fc, err := LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	if fc.Agent.TrustStore != DefaultTrustStore || !fc.trustDefault {
		t.Fatalf("trust_store %q (default %v)", fc.Agent.TrustStore, fc.trustDefault)
	}
}
