package csserver

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// DefaultDir is where cs init puts the server's files unless told.
const DefaultDir = "/etc/mtconsole/cs"

// Dir is the configuration server's directory:
//
//	connection.passphrase  the shared passphrase (0600), printed once by cs init
//	cs.crt, cs.key         the TLS certificate and its key (0600)
//	hosts.db               the host inventory (bbolt, 0600)
type Dir string

func (d Dir) Passphrase() string { return filepath.Join(string(d), "connection.passphrase") }
func (d Dir) Cert() string       { return filepath.Join(string(d), "cs.crt") }
func (d Dir) Key() string        { return filepath.Join(string(d), "cs.key") }
func (d Dir) Store() string      { return filepath.Join(string(d), "hosts.db") }

// ErrInitialized is a directory cs init already set up.
var ErrInitialized = errors.New("configuration server already initialized")

// Init sets up a new server in d: a fresh passphrase and a TLS
// certificate for hosts. It refuses a directory that holds a passphrase
// unless force (hosts registered with the old passphrase will be
// refused). It returns the passphrase, to be printed once, and the
// certificate's fingerprint.
func Init(d Dir, hosts []string, force bool) (hostconfig.Passphrase, wire.Fingerprint, error) {
	if _, err := os.Stat(d.Passphrase()); err == nil && !force {
		return "", wire.Fingerprint{}, fmt.Errorf("%w: %s exists; hosts registered with it keep working. "+
			"To start over (every host must register again with the new passphrase) use --force", ErrInitialized, d.Passphrase())
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", wire.Fingerprint{}, err
	}
	if err := os.MkdirAll(string(d), 0o700); err != nil {
		return "", wire.Fingerprint{}, err
	}
	if force {
		for _, f := range []string{d.Cert(), d.Key()} {
			if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return "", wire.Fingerprint{}, err
			}
		}
	}
	_, fp, err := wire.LoadOrCreateCertificate(d.Cert(), d.Key(), hosts)
	if err != nil {
		return "", wire.Fingerprint{}, err
	}
	p := hostconfig.GeneratePassphrase()
	if err := hostconfig.SavePassphrase(d.Passphrase(), p); err != nil {
		return "", wire.Fingerprint{}, err
	}
	return p, fp, nil
}

// Load reads the server's signing key and certificate from d.
func Load(d Dir) (hostconfig.SigningKey, tls.Certificate, wire.Fingerprint, error) {
	p, err := hostconfig.ReadPassphraseFile(d.Passphrase())
	if errors.Is(err, fs.ErrNotExist) {
		return hostconfig.SigningKey{}, tls.Certificate{}, wire.Fingerprint{}, fmt.Errorf("%s has no passphrase: run mtconsole cs init --dir %s first", d, d)
	}
	if err != nil {
		return hostconfig.SigningKey{}, tls.Certificate{}, wire.Fingerprint{}, err
	}
	key, err := hostconfig.DeriveSigningKey(p)
	if err != nil {
		return hostconfig.SigningKey{}, tls.Certificate{}, wire.Fingerprint{}, err
	}
	certPEM, err := os.ReadFile(d.Cert())
	if err != nil {
		return key, tls.Certificate{}, wire.Fingerprint{}, fmt.Errorf("certificate: %w (run mtconsole cs init --dir %s)", err, d)
	}
	keyPEM, err := os.ReadFile(d.Key())
	if err != nil {
		return key, tls.Certificate{}, wire.Fingerprint{}, fmt.Errorf("certificate key: %w (run mtconsole cs init --dir %s)", err, d)
	}
	cert, fp, err := wire.LoadCertificate(certPEM, keyPEM)
	return key, cert, fp, err
}
