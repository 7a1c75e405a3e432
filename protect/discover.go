package protect

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/mtconsole/mtconsole/internal/units"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mtconsole/mtconsole/internal/secret"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// Errors of Discover (errors.Is); each message says what to do.
var (
	// ErrUnreachable: nothing answered at the address, or what answered
	// is not a process server.
	ErrUnreachable = errors.New("process server unreachable")
	// ErrPassphrase: the process server refused this host's passphrase.
	ErrPassphrase = errors.New("passphrase refused")
	// ErrCertChanged: the process server's certificate differs from the
	// one pinned in the trust store (a *wire.CertChangedError is in the
	// chain, with both fingerprints).
	ErrCertChanged = errors.New("process server certificate changed")
	// ErrUntrusted: the certificate was seen for the first time and not
	// confirmed.
	ErrUntrusted = errors.New("process server certificate not trusted")
)

// Server says how to reach a process server, as the agent does.
type Server struct {
	// Addr is host:port (port 9443 when left out).
	Addr string
	// Key is the handshake key of the shared passphrase (KeyFromFile).
	Key wire.Key
	// TrustStore is the agent's trust file ([agent] trust_store).
	TrustStore string
	// Confirm decides on a first-seen certificate (nil: trust nothing
	// new). It is asked before the passphrase is proven, as the agent is.
	Confirm wire.ConfirmFunc
	// NoPin keeps a confirmed first-seen certificate out of the trust
	// file (a dry run changes nothing).
	NoPin bool
	// HostID and HostName introduce this host (default: the host name).
	HostID, HostName string
	// Timeout bounds the connection and the handshake (30 s).
	Timeout time.Duration
}

// Disk is a disk the process server serves.
type Disk struct {
	Name      string `json:"name"`
	Size      int64  `json:"size_bytes"`
	BlockSize uint32 `json:"block_size"`
	// AppConsistentInterval is how often the source host takes an
	// application-consistent tag, as the process server reports it
	// ("1h"; "" none reported).
	AppConsistentInterval string `json:"app_consistent_interval"`
}

// AppConsistentText says an application-consistent interval as the
// process server reported it: "every 1h (reported by the process server)"
// or "none reported".
func AppConsistentText(interval string) string {
	if interval == "" {
		return "none reported"
	}
	return "every " + interval + " (reported by the process server)"
}

// Discovery is what a process server said of itself.
type Discovery struct {
	Addr        string           `json:"address"`
	HostID      string           `json:"host_id"`
	HostName    string           `json:"host_name"`
	Fingerprint wire.Fingerprint `json:"fingerprint"`
	// FirstUse: the certificate was seen for the first time and
	// confirmed (and pinned unless NoPin).
	FirstUse bool   `json:"first_use"`
	Disks    []Disk `json:"disks"`
}

// Disk returns the disk named name.
func (d *Discovery) Disk(name string) (Disk, bool) {
	for _, x := range d.Disks {
		if x.Name == name {
			return x, true
		}
	}
	return Disk{}, false
}

// NormAddr adds the default port to an address without one.
func NormAddr(addr string) string {
	if _, _, err := net.SplitHostPort(addr); err != nil && !strings.Contains(addr, ":") {
		return net.JoinHostPort(addr, strconv.Itoa(wire.DefaultPort))
	}
	return addr
}

// Discover connects to the process server, reads its disk list and host
// name, pairs nothing and leaves.
func Discover(ctx context.Context, s Server) (*Discovery, error) {
	addr := NormAddr(s.Addr)
	if s.Timeout <= 0 {
		s.Timeout = 30 * time.Second
	}
	if s.HostID == "" {
		s.HostID, _ = os.Hostname()
	}
	if s.HostName == "" {
		s.HostName = s.HostID
	}
	if s.TrustStore == "" {
		return nil, errors.New("protect: no trust store: give the agent's trust_store")
	}
	storePath := s.TrustStore
	if s.NoPin {
		tmp, err := os.MkdirTemp("", "mtconsole-protect-trust-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		storePath = filepath.Join(tmp, "known_process_servers")
		b, err := os.ReadFile(s.TrustStore)
		if err == nil {
			// checked as the real one is: a file others may write is refused
			if _, err := wire.OpenTrustStore(s.TrustStore); err != nil {
				return nil, err
			}
			if err := os.WriteFile(storePath, b, 0o600); err != nil {
				return nil, err
			}
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("protect: trust store %s: %w", s.TrustStore, err)
		}
	}
	store, err := wire.OpenTrustStore(storePath)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v: check the address and port (%d by default), that `mtconsole ps` runs there, and that no firewall blocks the port",
			ErrUnreachable, addr, err, wire.DefaultPort)
	}
	var first wire.Fingerprint
	confirm := func(a string, fp wire.Fingerprint) bool {
		first = fp
		return s.Confirm != nil && s.Confirm(a, fp)
	}
	tc := tls.Client(nc, wire.ClientTLSConfig(addr, store, confirm))
	defer tc.Close()
	var disks []wire.Disk
	conn, err := wire.Client(ctx, tc, &wire.Config{Key: s.Key, Role: wire.RoleMasterTarget, HostID: s.HostID, HostName: s.HostName,
		Accept: func(_ wire.Peer, ds []wire.Disk) ([]wire.Pair, error) {
			disks = ds
			return nil, nil // discovery only: pair nothing
		}})
	if err != nil {
		return nil, discoverErr(addr, s.TrustStore, first, err)
	}
	sess := conn.Session()
	conn.Close()
	out := &Discovery{Addr: addr, HostID: sess.Peer.HostID, HostName: sess.Peer.HostName, Fingerprint: sess.ServerCert, FirstUse: !first.IsZero()}
	for _, x := range disks {
		d := Disk{Name: x.Name, Size: x.Size, BlockSize: x.BlockSize}
		if x.AppConsistentInterval > 0 {
			d.AppConsistentInterval = units.ConfigDuration(x.AppConsistentInterval)
		}
		out.Disks = append(out.Disks, d)
	}
	return out, nil
}

func discoverErr(addr, trust string, first wire.Fingerprint, err error) error {
	var cc *wire.CertChangedError
	switch {
	case errors.As(err, &cc):
		return fmt.Errorf("%w: %s: pinned %s, presented %s: someone could be intercepting the connection, or the process server was reinstalled; "+
			"if it was, compare the fingerprint `mtconsole ps` prints on the process server, then remove the line of %s from %s and run again (%w)",
			ErrCertChanged, addr, cc.Pinned, cc.Received, cc.Addr, trust, err)
	case errors.Is(err, wire.ErrUntrusted):
		return fmt.Errorf("%w: %s presented %s for the first time and it was not confirmed: compare it with the fingerprint `mtconsole ps` prints, "+
			"then answer y, or give --trust-fingerprint %s (%w)", ErrUntrusted, addr, first, first, err)
	case errors.Is(err, wire.ErrAuth):
		return fmt.Errorf("%w: the process server at %s refused the passphrase: the passphrase files of the two hosts differ; "+
			"give the process server's passphrase (--passphrase-file) (%w)", ErrPassphrase, addr, err)
	case errors.Is(err, wire.ErrTrustFile):
		return err
	}
	return fmt.Errorf("%w: %s: %w: check that the address is a process server's data port (`mtconsole ps`, %d by default)", ErrUnreachable, addr, err, wire.DefaultPort)
}

// KeyFromFile reads the passphrase file by the rules of every secret
// (0600, first line, at least 16 characters) and derives the handshake key.
func KeyFromFile(path string) (wire.Key, error) {
	pass, err := secret.Read(path, secret.Passphrase)
	if err != nil {
		return wire.Key{}, err
	}
	return wire.DeriveKey(pass)
}
