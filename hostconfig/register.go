package hostconfig

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/mtconsole/mtconsole/replication/wire"
)

// Paths are the files of this host's registration: the config, the
// passphrase (0600, in a 0700 directory) and the pinned certificate of the
// configuration server, all beside the config.
type Paths struct {
	Config     string
	Passphrase string
	Trust      string
}

// PathsFor derives the other paths from the config's:
// DIR/private/connection.passphrase and DIR/cs_known_hosts.
func PathsFor(config string) Paths {
	dir := filepath.Dir(config)
	return Paths{Config: config, Passphrase: filepath.Join(dir, "private", "connection.passphrase"),
		Trust: filepath.Join(dir, "cs_known_hosts")}
}

// Setup is what one registration needs besides the config.
type Setup struct {
	Paths Paths
	// Passphrase is the new passphrase; empty means the stored one.
	Passphrase Passphrase
	// Confirm decides on a certificate seen for the first time (nil: trust
	// it once the server proved it holds the passphrase).
	Confirm ConfirmFunc
	// Version is this build's version, registered with the host.
	Version string
	// SysRoot is "/" (a fake root in tests), for the host's OS and disks.
	SysRoot string
}

// Result is what a registration did.
type Result struct {
	Config      Config
	Host        Host // as the server holds it, read back
	Fingerprint wire.Fingerprint
	Login       LoginReply
}

// Key is the signing key of s's passphrase, or of the stored one.
func (s Setup) Key() (SigningKey, error) {
	p := s.Passphrase
	if p == "" {
		var err error
		if p, err = ReadPassphraseFile(s.Paths.Passphrase); err != nil {
			return SigningKey{}, fmt.Errorf("no passphrase given and none stored: %w", err)
		}
	}
	return DeriveSigningKey(p)
}

// NewClientFor makes the client of config c with key.
func NewClientFor(c Config, key SigningKey, trustFile string, confirm ConfirmFunc) (*Client, error) {
	if c.CSHost == "" {
		return nil, &FieldError{Field: "cs.host", Err: errors.New("no configuration server set: give --cs HOST[:PORT]")}
	}
	ts, err := wire.OpenTrustStore(trustFile)
	if err != nil {
		return nil, err
	}
	return NewClient(ClientOptions{Addr: c.CSAddr(), HTTPS: c.HTTPS, Key: key, HostID: c.HostID, Trust: ts, Confirm: confirm})
}

// Register does what hostconfigcli's save did: test the connection
// (pinning the certificate on first use, after Confirm), register the host
// described by c, read it back, and only then store the passphrase (0600)
// and the config. A failure at any step stores nothing (a certificate the
// server vouched for stays pinned).
func Register(ctx context.Context, c Config, s Setup) (Result, error) {
	if c.HostID == "" {
		// keep the stored id: the server knows this host by it
		if old, err := LoadOrDefault(s.Paths.Config); err == nil && old.HostID != "" {
			c.HostID = old.HostID
		} else {
			c.HostID = NewHostID()
		}
	}
	if err := c.Validate(); err != nil {
		return Result{}, err
	}
	key, err := s.Key()
	if err != nil {
		return Result{}, err
	}
	cl, err := NewClientFor(c, key, s.Paths.Trust, s.Confirm)
	if err != nil {
		return Result{}, err
	}
	login, fp, err := cl.Login(ctx)
	if err != nil {
		return Result{}, err
	}
	root := s.SysRoot
	if root == "" {
		root = "/"
	}
	info := CollectHostInfo(c, s.Version, root)
	if _, err := cl.Register(ctx, info); err != nil {
		return Result{}, err
	}
	h, err := cl.Verify(ctx, info)
	if err != nil {
		return Result{}, err
	}
	if s.Passphrase != "" {
		if err := SavePassphrase(s.Paths.Passphrase, s.Passphrase); err != nil {
			return Result{}, err
		}
	}
	saved, err := Update(s.Paths.Config, func(old *Config) error {
		*old = c
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return Result{Config: saved, Host: h, Fingerprint: fp, Login: login}, nil
}

// TestConnection logs in with c and s without registering or storing
// anything but a certificate the server vouched for.
func TestConnection(ctx context.Context, c Config, s Setup) (LoginReply, wire.Fingerprint, error) {
	if err := c.Validate(); err != nil {
		return LoginReply{}, wire.Fingerprint{}, err
	}
	key, err := s.Key()
	if err != nil {
		return LoginReply{}, wire.Fingerprint{}, err
	}
	cl, err := NewClientFor(c, key, s.Paths.Trust, s.Confirm)
	if err != nil {
		return LoginReply{}, wire.Fingerprint{}, err
	}
	return cl.Login(ctx)
}

// Stored opens the client of the stored config and passphrase, for
// verify, heartbeat and unregister.
func Stored(p Paths) (Config, *Client, error) {
	c, err := Load(p.Config)
	if err != nil {
		return Config{}, nil, err
	}
	if c.CSHost == "" || c.HostID == "" {
		return c, nil, fmt.Errorf("%w: %s names no configuration server or host id: register first (mtconsole register --cs HOST)", ErrNotRegistered, p.Config)
	}
	key, err := Setup{Paths: p}.Key()
	if err != nil {
		return c, nil, err
	}
	cl, err := NewClientFor(c, key, p.Trust, nil)
	return c, cl, err
}
