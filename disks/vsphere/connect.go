package vsphere

import (
	"bufio"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/fault"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/mtconsole/mtconsole/internal/secret"
)

// Errors callers act on.
var (
	// ErrUnreachable: nothing answered at the URL (refused, no route, DNS,
	// time-out, not TLS).
	ErrUnreachable = errors.New("vSphere unreachable")
	// ErrLogin: the server refused the user name or password.
	ErrLogin = errors.New("vSphere login refused")
	// ErrCertificate: the server's certificate is not the pinned one, or
	// nothing is pinned and Insecure is off. Its *CertificateError says
	// which.
	ErrCertificate = errors.New("vSphere certificate not trusted")
	// ErrPermission: the session lacks a privilege; the error names it.
	ErrPermission = errors.New("vSphere permission missing")
)

// Config says where and how to connect. Password is used for the login
// only: it is never logged, never put in an error, never written anywhere.
type Config struct {
	URL      string // https://vcenter.example or https://host/sdk
	User     string
	Password string
	// PasswordFunc gives the password when Password is empty, and is
	// called only when a login is needed: a reused session needs none.
	PasswordFunc func() (string, error)
	// SessionDir, when set, caches the session cookie there (see
	// DefaultSessionDir): a live cached session is reused instead of a
	// login, and a new login's session is saved for the next Connect.
	SessionDir string
	// Thumbprint pins the server's certificate: its SHA-256 (or SHA-1)
	// fingerprint, hex with or without colons.
	Thumbprint string
	// TrustStore is a file of "host:port THUMBPRINT" lines: a host not in
	// it is pinned on first use; a host whose certificate changed is
	// refused with the old and the new thumbprint.
	TrustStore string
	// Insecure accepts any certificate. The caller warns the user.
	Insecure bool
	// ReadOnly writes nothing on this host (a dry run): a first use
	// trusts the certificate for this connection only, without pinning
	// it in TrustStore. Give no SessionDir with it.
	ReadOnly bool
	// Timeout bounds the TCP connect and TLS handshake; 15 s if zero.
	Timeout time.Duration
}

// CertificateError says why the server's certificate was not trusted.
type CertificateError struct {
	Host   string // host:port
	Pinned string // the pinned thumbprint, "" when nothing was pinned
	Got    string // the server's SHA-256 thumbprint
	Store  string // the trust store it was pinned in, if any
}

func (e *CertificateError) Error() string {
	if e.Pinned == "" {
		return fmt.Sprintf("the certificate of %s is not pinned: its SHA-256 thumbprint is %s; compare it with the one vCenter or the ESXi host shows, then pass --thumbprint %s (or --trust-store FILE to pin it on first use, or --insecure to skip the check)",
			e.Host, e.Got, e.Got)
	}
	where := "--thumbprint"
	if e.Store != "" {
		where = "the trust store " + e.Store
	}
	return fmt.Sprintf("the certificate of %s changed: %s pins %s, the server shows %s; if the certificate was replaced on purpose, remove the host's line from %s (or pass --thumbprint with the new one), otherwise do not connect",
		e.Host, where, e.Pinned, e.Got, orText(e.Store, "the command line"))
}

func (e *CertificateError) Unwrap() error { return ErrCertificate }

func orText(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Client is a logged-in session on vCenter or an ESXi host.
type Client struct {
	gc *govmomi.Client
	// Host is the server's host:port.
	Host string
	// Thumbprint is the server's SHA-256 thumbprint.
	Thumbprint string
	// FirstUse is true when this connection pinned the thumbprint in the
	// trust store: the caller shows it to the user.
	FirstUse bool
	// Insecure is true when the certificate was not checked.
	Insecure bool
	// IsVC is true for vCenter, false for a standalone ESXi host.
	IsVC bool
	// Reused is true when the cached session was reused: no login.
	Reused bool
	// CacheErr is why the session could not be cached, if it could not:
	// the connection works, the caller warns.
	CacheErr error
	// TaskGrace is how long an interrupted failback run waits for the
	// vSphere task under way to end before undoing (DefaultTaskGrace
	// when 0).
	TaskGrace time.Duration

	sessionFile string // the session cache file, "" when not cached
}

// Vim returns the underlying client, for callers that need more.
func (c *Client) Vim() *vim25.Client { return c.gc.Client }

// Logout ends the session, and forgets it in the session cache.
func (c *Client) Logout(ctx context.Context) error {
	if c.sessionFile != "" {
		os.Remove(c.sessionFile)
		c.sessionFile = ""
	}
	return c.gc.Logout(ctx)
}

// ParseURL makes https://host/sdk of what a user types: host, host:port,
// https://host or https://host/sdk. Any user info in it is refused, so
// that a password never travels in a URL.
func ParseURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, errors.New("no vSphere URL: give --url https://vcenter.example")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("vSphere URL %q: %w", s, err)
	}
	if u.User != nil {
		return nil, errors.New("vSphere URL: put no user or password in the URL: use --user and --password-file, --password-env or stdin")
	}
	if u.Scheme != "https" {
		return nil, fmt.Errorf("vSphere URL %q: only https is supported", s)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "443")
	}
	return u, nil
}

// NormalizeThumbprint makes "aa:bb…" or "AABB…" the upper-case,
// colon-separated form vSphere shows; it refuses anything that is not a
// SHA-1 or SHA-256 fingerprint.
func NormalizeThumbprint(s string) (string, error) {
	h := strings.ToUpper(strings.NewReplacer(":", "", " ", "", "-", "").Replace(strings.TrimSpace(s)))
	if len(h) != 40 && len(h) != 64 {
		return "", fmt.Errorf("thumbprint %q: want the 20-byte SHA-1 or 32-byte SHA-256 fingerprint in hex", s)
	}
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		c := h[i : i+2]
		if strings.Trim(c, "0123456789ABCDEF") != "" {
			return "", fmt.Errorf("thumbprint %q: not hex", s)
		}
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(c)
	}
	return b.String(), nil
}

func fingerprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

// ThumbprintSHA256 is the certificate's SHA-256 thumbprint as vSphere
// shows it.
func ThumbprintSHA256(cert *x509.Certificate) string {
	s := sha256.Sum256(cert.Raw)
	return fingerprint(s[:])
}

func thumbprintSHA1(cert *x509.Certificate) string {
	s := sha1.Sum(cert.Raw)
	return fingerprint(s[:])
}

func matches(pin string, cert *x509.Certificate) bool {
	return pin == ThumbprintSHA256(cert) || pin == thumbprintSHA1(cert)
}

// probe fetches the server's certificate without trusting it, to compare
// it with the pin before any credential is sent.
func probe(ctx context.Context, host string, timeout time.Duration) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: timeout}, Config: &tls.Config{InsecureSkipVerify: true}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, host, err)
	}
	defer conn.Close()
	certs := conn.(*tls.Conn).ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil, fmt.Errorf("%w: %s sent no certificate", ErrUnreachable, host)
	}
	return certs[0], nil
}

// Connect logs in. The certificate is checked before the password is
// sent, and again on every TLS connection of the session.
func Connect(ctx context.Context, cfg Config) (*Client, error) {
	u, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.User == "" {
		return nil, errors.New("no vSphere user: give --user")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 15 * time.Second
	}
	host := u.Host
	cert, err := probe(ctx, host, cfg.Timeout)
	if err != nil {
		return nil, err
	}
	cl := &Client{Host: host, Thumbprint: ThumbprintSHA256(cert), Insecure: cfg.Insecure}
	pin := ""
	if !cfg.Insecure {
		if cfg.Thumbprint != "" {
			if pin, err = NormalizeThumbprint(cfg.Thumbprint); err != nil {
				return nil, err
			}
		}
		if pin == "" && cfg.TrustStore != "" {
			pins, err := readTrustStore(cfg.TrustStore)
			if err != nil {
				return nil, err
			}
			if pin = pins[host]; pin == "" {
				// First use: pin what the server shows now.
				pin = cl.Thumbprint
				pins[host] = pin
				if !cfg.ReadOnly {
					if err := writeTrustStore(cfg.TrustStore, pins); err != nil {
						return nil, err
					}
				}
				cl.FirstUse = true
			}
		}
		if pin == "" {
			return nil, &CertificateError{Host: host, Got: cl.Thumbprint}
		}
		if !matches(pin, cert) {
			store := ""
			if cfg.Thumbprint == "" {
				store = cfg.TrustStore
			}
			return nil, &CertificateError{Host: host, Pinned: pin, Got: cl.Thumbprint, Store: store}
		}
	}

	sc := soap.NewClient(u, true)
	if !cfg.Insecure {
		// Every TLS connection of the session is held to the pin, not only
		// the probe's: InsecureSkipVerify turns off the CA check, which a
		// self-signed vCenter would fail, and VerifyConnection puts the
		// pin in its place.
		tc := sc.DefaultTransport().TLSClientConfig
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !matches(pin, cs.PeerCertificates[0]) {
				got := ""
				if len(cs.PeerCertificates) > 0 {
					got = ThumbprintSHA256(cs.PeerCertificates[0])
				}
				return &CertificateError{Host: host, Pinned: pin, Got: got}
			}
			return nil
		}
	}
	sc.DefaultTransport().TLSHandshakeTimeout = cfg.Timeout
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, connErr(host, err)
	}
	sm := session.NewManager(vc)
	cl.gc = &govmomi.Client{Client: vc, SessionManager: sm}
	cl.IsVC = vc.IsVC()
	if cfg.SessionDir != "" {
		cl.sessionFile = sessionFile(cfg.SessionDir, u, cfg.User)
		if cl.Reused, err = resume(ctx, vc, u, cl.sessionFile, cfg.User, cl.Thumbprint); err != nil {
			return nil, connErr(host, err)
		}
		if cl.Reused {
			return cl, nil
		}
	}
	pw := cfg.Password
	if pw == "" && cfg.PasswordFunc != nil {
		if pw, err = cfg.PasswordFunc(); err != nil {
			return nil, err
		}
	}
	if err := sm.Login(ctx, url.UserPassword(cfg.User, pw)); err != nil {
		var il *types.InvalidLogin
		if _, ok := fault.As(err, &il); ok {
			return nil, fmt.Errorf("%w: %s refused user %q: wrong user name or password", ErrLogin, host, cfg.User)
		}
		return nil, connErr(host, err)
	}
	if cl.sessionFile != "" {
		if cl.CacheErr = cl.saveSession(u, cfg.User); cl.CacheErr != nil {
			cl.sessionFile = "" // not cached: Close logs out
		}
	}
	return cl, nil
}

func connErr(host string, err error) error {
	var ce *CertificateError
	if errors.As(err, &ce) {
		return ce
	}
	if soap.IsSoapFault(err) || soap.IsVimFault(err) {
		return vimErr(err)
	}
	return fmt.Errorf("%w: %s: %v", ErrUnreachable, host, err)
}

// vimErr names the privilege of a NoPermission fault; other errors pass.
func vimErr(err error) error {
	if err == nil {
		return nil
	}
	var np *types.NoPermission
	if _, ok := fault.As(err, &np); ok {
		obj := "the object"
		if np.Object != nil {
			obj = np.Object.String()
		}
		return fmt.Errorf("%w: privilege %s on %s: grant it to the user's role in vCenter (Administration > Access Control > Roles): %v",
			ErrPermission, np.PrivilegeId, obj, err)
	}
	return err
}

func readTrustStore(path string) (map[string]string, error) {
	pins := map[string]string{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return pins, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust store: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("trust store %s:%d: want \"host:port THUMBPRINT\"", path, n)
		}
		tp, err := NormalizeThumbprint(fields[1])
		if err != nil {
			return nil, fmt.Errorf("trust store %s:%d: %w", path, n, err)
		}
		pins[fields[0]] = tp
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("trust store %s: %w", path, err)
	}
	return pins, nil
}

// writeTrustStore replaces the file atomically: a crash leaves the old
// pins or the new ones, never half a file.
func writeTrustStore(path string, pins map[string]string) error {
	hosts := make([]string, 0, len(pins))
	for h := range pins {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var b strings.Builder
	b.WriteString("# vSphere certificate thumbprints pinned by mtconsole: host:port SHA-256\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s %s\n", h, pins[h])
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".trust-*")
	if err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("trust store: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("trust store: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("trust store: %w", err)
	}
	return nil
}

// ReadPassword takes the password from a file (its first line; the file
// only its owner may read or write, see secret.Read), from an
// environment variable, or from r (one line), in that order of the
// arguments given. It never returns the password in an error.
func ReadPassword(file, env string, r *bufio.Reader) (string, error) {
	switch {
	case file != "" && env != "":
		return "", errors.New("give one of --password-file and --password-env")
	case file != "":
		return secret.Read(file, secret.Password)
	case env != "":
		pw, ok := os.LookupEnv(env)
		if !ok || pw == "" {
			return "", fmt.Errorf("password: environment variable %s is not set or empty", env)
		}
		return pw, nil
	}
	if r == nil {
		return "", errors.New("no password: give --password-file, --password-env or the password on stdin")
	}
	line, err := r.ReadString('\n')
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil {
			return "", errors.New("no password on stdin: give --password-file, --password-env or one line on stdin")
		}
		return "", errors.New("empty password on stdin")
	}
	return line, nil
}
