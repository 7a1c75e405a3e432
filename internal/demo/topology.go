package demo

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/mtconsole/mtconsole/replication/wire"
)

// The pieces of the demo's topology that the soak (internal/soak) builds
// the same way: the loopback secrets and the agent's configuration file.

// Secrets makes a fresh passphrase for the process server and the agent,
// in dir/passphrase (0600, one line), and a TLS certificate for hosts.
// It returns the passphrase file, the key derived from it and the
// certificate.
func Secrets(dir string, hosts []string) (string, wire.Key, tls.Certificate, error) {
	var secret [16]byte
	rand.Read(secret[:])
	pass := hex.EncodeToString(secret[:])
	passFile := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(passFile, []byte(pass+"\n"), 0o600); err != nil {
		return "", wire.Key{}, tls.Certificate{}, err
	}
	key, err := wire.DeriveKey(pass)
	if err != nil {
		return "", wire.Key{}, tls.Certificate{}, err
	}
	certPEM, keyPEM, err := wire.GenerateCertificate(hosts, 0)
	if err != nil {
		return "", wire.Key{}, tls.Certificate{}, err
	}
	cert, _, err := wire.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		return "", wire.Key{}, tls.Certificate{}, err
	}
	return passFile, key, cert, nil
}

// AgentConfig is an agent.toml for the directory layout of the demo and
// the soak: DIR/journal, DIR/retention, DIR/known_process_servers, and
// each pair's target DIR/targets/PAIR.img.
type AgentConfig struct {
	Comment    string // a first line, "# " and this; none if ""
	HostID     string
	Dir        string
	Socket     string
	HostConfig string // the host config for heartbeats; "" sends none
	Addr       string // the process server's
	PassFile   string
	Retention  string // e.g. "24h"
	Pairs      []string
}

// Write writes the file (0600).
func (c AgentConfig) Write(path string) error {
	var b strings.Builder
	if c.Comment != "" {
		fmt.Fprintf(&b, "# %s\n", c.Comment)
	}
	fmt.Fprintf(&b, `[agent]
host_id = %q
journal_dir = %q
retention_dir = %q
socket = %q
trust_store = %q
trust_new_servers = true
hash_resync = false
host_config = %q

[process_server]
address = %q
passphrase_file = %q

[defaults]
rpo_threshold = "1m"
retention = %q
`, c.HostID, filepath.Join(c.Dir, "journal"), filepath.Join(c.Dir, "retention"), c.Socket, filepath.Join(c.Dir, "known_process_servers"),
		c.HostConfig, c.Addr, c.PassFile, c.Retention)
	for _, p := range c.Pairs {
		fmt.Fprintf(&b, "\n[[pair]]\ndisk = %q\ntarget = %q\n", p, filepath.Join(c.Dir, "targets", p+".img"))
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}
