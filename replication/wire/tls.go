package wire

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"strings"
	"time"

	"github.com/mtconsole/mtconsole/internal/atomicfile"
)

// DefaultPort is the process server's data port (the original product's).
const DefaultPort = 9443

// ALPN is the TLS application protocol both sides require, so a client
// never mistakes another TLS service on the same address (the
// configuration server, a web server) for a process server.
const ALPN = "mtconsole-wire/1"

// Fingerprint is the SHA-256 of a certificate's DER encoding.
//
// It prints as ssh prints key fingerprints, "SHA256:" and unpadded
// base64 (SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU). Hex prints
// it as openssl does (AB:CD:...), for comparing with
// `openssl x509 -noout -fingerprint -sha256`; ParseFingerprint reads both.
type Fingerprint [sha256.Size]byte

// CertFingerprint is the fingerprint of a DER certificate.
func CertFingerprint(der []byte) Fingerprint { return sha256.Sum256(der) }

func (f Fingerprint) String() string {
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(f[:])
}

// Hex is the fingerprint as colon-separated upper-case hex bytes.
func (f Fingerprint) Hex() string {
	var b strings.Builder
	for i, c := range f {
		if i > 0 {
			b.WriteByte(':')
		}
		fmt.Fprintf(&b, "%02X", c)
	}
	return b.String()
}

// IsZero reports whether f is unset.
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }

// MarshalText is the String form, for config files and JSON.
func (f Fingerprint) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// UnmarshalText accepts what ParseFingerprint accepts.
func (f *Fingerprint) UnmarshalText(b []byte) error {
	v, err := ParseFingerprint(string(b))
	if err == nil {
		*f = v
	}
	return err
}

// ParseFingerprint reads "SHA256:<base64>" (padded or not) or 32
// hex bytes, with or without colons and an "sha256 Fingerprint=" or
// "SHA256:" prefix, in either case.
func ParseFingerprint(s string) (Fingerprint, error) {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '='); i >= 0 && strings.HasPrefix(strings.ToLower(s), "sha256 fingerprint=") {
		s = s[i+1:]
	}
	rest, prefixed := strings.CutPrefix(s, "SHA256:")
	if !prefixed {
		rest, prefixed = strings.CutPrefix(s, "sha256:")
	}
	var f Fingerprint
	if h := strings.ReplaceAll(rest, ":", ""); len(h) == 2*len(f) {
		if _, err := hex.Decode(f[:], []byte(h)); err == nil {
			return f, nil
		}
	}
	if prefixed {
		b, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(rest, "="))
		if err == nil && len(b) == len(f) {
			return Fingerprint(b), nil
		}
	}
	return Fingerprint{}, fmt.Errorf("wire: bad fingerprint %q: want SHA256:<base64> or 32 hex bytes", s)
}

// GenerateCertificate makes a self-signed ECDSA P-256 server certificate
// for the given host names and IP addresses, valid from an hour ago for
// validFor (10 years if 0 or less: the certificate is pinned, not checked
// against a CA, so its expiry protects nothing). It returns the
// certificate and the PKCS #8 private key, PEM encoded.
func GenerateCertificate(hosts []string, validFor time.Duration) (certPEM, keyPEM []byte, err error) {
	if validFor <= 0 {
		validFor = 10 * 365 * 24 * time.Hour
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("wire: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, fmt.Errorf("wire: serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "mtconsole process server", Organization: []string{"mtconsole"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("wire: create certificate: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("wire: marshal key: %w", err)
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk})
	return certPEM, keyPEM, nil
}

// LoadCertificate parses a PEM certificate and key and returns them with
// the certificate's fingerprint.
func LoadCertificate(certPEM, keyPEM []byte) (tls.Certificate, Fingerprint, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, Fingerprint{}, fmt.Errorf("wire: certificate: %w", err)
	}
	return c, CertFingerprint(c.Certificate[0]), nil
}

// LoadOrCreateCertificate loads the certificate and key from certFile and
// keyFile, or, when neither exists, generates them for hosts and writes
// them (the key root-only, 0600; both atomically). A process server calls
// it at start; its fingerprint is what admins compare on first use.
func LoadOrCreateCertificate(certFile, keyFile string, hosts []string) (tls.Certificate, Fingerprint, error) {
	certPEM, cerr := os.ReadFile(certFile)
	keyPEM, kerr := os.ReadFile(keyFile)
	switch {
	case cerr == nil && kerr == nil:
		c, fp, err := LoadCertificate(certPEM, keyPEM)
		if err != nil {
			return c, fp, fmt.Errorf("%w (files %s, %s)", err, certFile, keyFile)
		}
		return c, fp, nil
	case !errors.Is(cerr, os.ErrNotExist) && cerr != nil:
		return tls.Certificate{}, Fingerprint{}, fmt.Errorf("wire: %w", cerr)
	case !errors.Is(kerr, os.ErrNotExist) && kerr != nil:
		return tls.Certificate{}, Fingerprint{}, fmt.Errorf("wire: %w", kerr)
	case cerr == nil || kerr == nil:
		return tls.Certificate{}, Fingerprint{}, fmt.Errorf("wire: only one of %s and %s exists: restore the other, or remove both to make a new certificate (clients that pinned the old one will refuse the new one)", certFile, keyFile)
	}
	certPEM, keyPEM, err := GenerateCertificate(hosts, 0)
	if err != nil {
		return tls.Certificate{}, Fingerprint{}, err
	}
	if err := atomicfile.Write(keyFile, keyPEM, 0o600, 0o700); err != nil {
		return tls.Certificate{}, Fingerprint{}, err
	}
	if err := atomicfile.Write(certFile, certPEM, 0o644, 0o700); err != nil {
		return tls.Certificate{}, Fingerprint{}, err
	}
	return LoadCertificate(certPEM, keyPEM)
}

// ServerTLSConfig is the process server's TLS configuration: TLS 1.3 only,
// the given certificate, the wire ALPN. Clients are not asked for
// certificates: they prove themselves in the handshake.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{ALPN},
	}
}

// ConfirmFunc decides whether to trust a certificate seen for the first
// time at addr (ask the admin, showing fp, as ssh does). It runs during the
// TLS handshake.
type ConfirmFunc func(addr string, fp Fingerprint) bool

// ClientTLSConfig is the master target's TLS configuration for dialing the
// process server at addr (host:port): TLS 1.3 only, the wire ALPN, and no
// CA roots: the server's certificate is pinned in store instead. A
// certificate seen for the first time is trusted if confirm says so (and
// then pinned); a certificate that differs from the pinned one is refused
// with a *CertChangedError. A nil confirm trusts nothing new. Sessions
// are never resumed (there is no session cache), so every connection
// shows its certificate and is checked.
func ClientTLSConfig(addr string, store *TrustStore, confirm ConfirmFunc) *tls.Config {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{ALPN},
		ServerName: host,
		// The chain is not verified against CAs: the certificate is pinned,
		// checked in VerifyConnection, which runs even so. TLS still checks
		// that the server holds the certificate's private key.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if cs.NegotiatedProtocol != ALPN {
				return fmt.Errorf("wire: %s does not speak %s (ALPN %q): not a process server", addr, ALPN, cs.NegotiatedProtocol)
			}
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("wire: %s presented no certificate", addr)
			}
			if store == nil {
				return fmt.Errorf("wire: %w: no trust store to check %s against", ErrUntrusted, addr)
			}
			return store.Verify(addr, CertFingerprint(cs.PeerCertificates[0].Raw), confirm)
		},
	}
}
