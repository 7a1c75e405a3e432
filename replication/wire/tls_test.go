package wire

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestFingerprintFormat(t *testing.T) {
	fp := CertFingerprint([]byte("certificate"))
	if fp != sha256.Sum256([]byte("certificate")) {
		t.Fatal("fingerprint is not the SHA-256 of the DER bytes")
	}
	s := fp.String()
	if !strings.HasPrefix(s, "SHA256:") || len(s) != len("SHA256:")+43 || strings.HasSuffix(s, "=") {
		t.Fatalf("String() = %q, want SHA256: and 43 unpadded base64 characters", s)
	}
	h := fp.Hex()
	if len(h) != 32*3-1 || strings.ToUpper(h) != h || strings.Count(h, ":") != 31 {
		t.Fatalf("Hex() = %q", h)
	}
	for _, in := range []string{
		s, s + "=", " " + s + "\n", h, strings.ToLower(h), strings.ReplaceAll(h, ":", ""),
		"SHA256:" + h, "sha256 Fingerprint=" + h, "SHA256 Fingerprint=" + h,
	} {
		got, err := ParseFingerprint(in)
		if err != nil || got != fp {
			t.Errorf("ParseFingerprint(%q) = %v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "SHA256:", "SHA256:abc", h[:20], "MD5:" + h[3:], s[7:]} {
		if _, err := ParseFingerprint(in); err == nil {
			t.Errorf("ParseFingerprint(%q) accepted", in)
		}
	}
	var back Fingerprint
	if txt, _ := fp.MarshalText(); back.UnmarshalText(txt) != nil || back != fp {
		t.Errorf("text round trip: %v", back)
	}
}

func TestGenerateCertificate(t *testing.T) {
	certPEM, keyPEM, err := GenerateCertificate([]string{"ps.example", "127.0.0.1", "::1"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("key is %T, want ECDSA P-256", cert.PublicKey)
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		t.Fatalf("not self-signed: %v", err)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "ps.example" || len(cert.IPAddresses) != 2 {
		t.Fatalf("names %v, addresses %v", cert.DNSNames, cert.IPAddresses)
	}
	if time.Until(cert.NotAfter) > 2*time.Hour || time.Until(cert.NotBefore) > 0 {
		t.Fatalf("valid %v to %v", cert.NotBefore, cert.NotAfter)
	}
	if kb, _ := pem.Decode(keyPEM); kb == nil || kb.Type != "PRIVATE KEY" {
		t.Fatal("key is not PKCS #8 PEM")
	}
	_, fp, err := LoadCertificate(certPEM, keyPEM)
	if err != nil || fp != CertFingerprint(block.Bytes) {
		t.Fatalf("LoadCertificate: %v, %v", fp, err)
	}
	// Two certificates never share a fingerprint.
	c2, k2, _ := GenerateCertificate(nil, 0)
	if _, fp2, _ := LoadCertificate(c2, k2); fp2 == fp {
		t.Fatal("two certificates, one fingerprint")
	}
}

func TestLoadOrCreateCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls", "ps.crt"), filepath.Join(dir, "tls", "ps.key")
	_, fp, err := LoadOrCreateCertificate(certFile, keyFile, []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st.Mode(), err)
	}
	_, fp2, err := LoadOrCreateCertificate(certFile, keyFile, nil)
	if err != nil || fp2 != fp {
		t.Fatalf("second start: %v, fingerprint %v then %v", err, fp, fp2)
	}
	os.Remove(keyFile)
	if _, _, err := LoadOrCreateCertificate(certFile, keyFile, nil); err == nil || !strings.Contains(err.Error(), "only one of") {
		t.Fatalf("certificate without key: %v", err)
	}
}

func TestTrustStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "etc", "trust")
	s, err := OpenTrustStore(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := CertFingerprint([]byte("a")), CertFingerprint([]byte("b"))
	const addr = "PS.Example.:9443"

	// Declined: nothing stored.
	if err := s.Verify(addr, a, func(string, Fingerprint) bool { return false }); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("declined: %v", err)
	}
	if err := s.Verify(addr, a, nil); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("no callback: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("declined certificate created the file: %v", err)
	}
	// First use: asked once, with the normalized address, then pinned.
	var asked []string
	yes := func(addr string, fp Fingerprint) bool { asked = append(asked, addr+" "+fp.String()); return true }
	if err := s.Verify(addr, a, yes); err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != "ps.example:9443 "+a.String() {
		t.Fatalf("asked %v", asked)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("trust file mode %v, %v; want 0600", st.Mode(), err)
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("trust directory mode %v, want 0700", dst.Mode())
	}
	// Same certificate: passes without asking, also through a new store
	// (the pin is on disk).
	s2, err := OpenTrustStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Verify("ps.example:9443", a, yes); err != nil || len(asked) != 1 {
		t.Fatalf("same certificate: %v, asked %d times", err, len(asked))
	}
	// Changed certificate: refused, both fingerprints shown, pin kept.
	err = s2.Verify(addr, b, yes)
	var ce *CertChangedError
	if !errors.Is(err, ErrCertChanged) || !errors.As(err, &ce) || len(asked) != 1 {
		t.Fatalf("changed certificate: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, a.String()) || !strings.Contains(msg, b.String()) || !strings.Contains(msg, path) {
		t.Fatalf("message lacks the fingerprints or the file: %s", msg)
	}
	if fp, ok, _ := s.Lookup(addr); !ok || fp != a {
		t.Fatalf("pin after refusal: %v %v", fp, ok)
	}
	// Other entries, listing, removing, explicit pins.
	if err := s.Pin("[::1]:9443", b); err != nil {
		t.Fatal(err)
	}
	if es, err := s.List(); err != nil || len(es) != 2 || es[0].Addr != "[::1]:9443" || es[1].Fingerprint != a {
		t.Fatalf("list: %+v, %v", es, err)
	}
	if ok, err := s.Remove(addr); !ok || err != nil {
		t.Fatalf("remove: %v %v", ok, err)
	}
	if err := s.Verify(addr, b, yes); err != nil || len(asked) != 2 {
		t.Fatalf("after remove, a new certificate is a first use: %v", err)
	}
	if err := s.Pin("no-port", a); err == nil {
		t.Fatal("address without port accepted")
	}
	// No temporary files left behind.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Fatalf("directory holds %d files", len(ents))
	}
}

func TestTrustFileRefused(t *testing.T) {
	dir := t.TempDir()
	fp := CertFingerprint([]byte("a"))
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"group writable", "", 0o620, "chmod 600"},
		{"world writable", "", 0o606, "chmod 600"},
		{"bad line", "# ok\n10.0.0.5:9443\n", 0o600, "trust:2"},
		{"bad fingerprint", "10.0.0.5:9443 SHA256:nope\n", 0o600, "trust:1"},
		{"bad address", "10.0.0.5 " + fp.String() + "\n", 0o600, "trust:1"},
		{"twice", "a:1 " + fp.String() + "\nA:1 " + fp.String() + "\n", 0o600, "pinned twice"},
	} {
		path := filepath.Join(dir, tc.name, "trust")
		os.MkdirAll(filepath.Dir(path), 0o700)
		if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(path, tc.mode)
		_, err := OpenTrustStore(path)
		if !errors.Is(err, ErrTrustFile) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want ErrTrustFile mentioning %q", tc.name, err, tc.want)
		}
	}
	// A readable (0644) file is fine: fingerprints are not secrets; the
	// next write makes it 0600.
	path := filepath.Join(dir, "readable")
	os.WriteFile(path, []byte("10.0.0.5:9443 "+fp.Hex()+"\n"), 0o644)
	s, err := OpenTrustStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := s.Lookup("10.0.0.5:9443"); !ok || got != fp {
		t.Fatal("hex fingerprint in the file not read")
	}
	if err := s.Pin("10.0.0.6:9443", fp); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("rewritten with mode %v", st.Mode())
	}
}

// TestCertificatePinningTLS: first use stores, the same certificate
// passes, a new certificate at the same address is refused with both
// fingerprints, over real TLS on 127.0.0.1.
func TestCertificatePinningTLS(t *testing.T) {
	k := fixedKey
	srv := newTLSServer(t, func() *Config { return psConfig(k) })
	store, err := OpenTrustStore(filepath.Join(t.TempDir(), "trust"))
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	confirm := func(string, Fingerprint) bool { asked++; return true }
	dial := func() error {
		c, err := dialTLS(srv.addr(), ClientTLSConfig(srv.addr(), store, confirm), mtConfig(k))
		if err == nil {
			c.Close()
		}
		r := <-srv.results
		if r.c != nil {
			r.c.Close()
		}
		return err
	}
	first := srv.fp
	if err := dial(); err != nil || asked != 1 {
		t.Fatalf("first use: %v, asked %d", err, asked)
	}
	if fp, ok, _ := store.Lookup(srv.addr()); !ok || fp != first {
		t.Fatal("first use did not pin the certificate")
	}
	if err := dial(); err != nil || asked != 1 {
		t.Fatalf("same certificate: %v, asked %d", err, asked)
	}
	second := srv.newCert(t)
	err = dial()
	if !errors.Is(err, ErrCertChanged) || asked != 1 {
		t.Fatalf("new certificate: %v, asked %d", err, asked)
	}
	if msg := err.Error(); !strings.Contains(msg, first.String()) || !strings.Contains(msg, second.String()) {
		t.Fatalf("message lacks the fingerprints: %s", msg)
	}
	// Declined first use fails the TLS handshake.
	os.Remove(store.Path())
	confirm = func(string, Fingerprint) bool { return false }
	if err := dial(); !errors.Is(err, ErrUntrusted) {
		t.Fatalf("declined: %v", err)
	}
}

// TestTLS13Only: a client limited to TLS 1.2 cannot connect, and a client
// without the wire ALPN is refused by the server.
func TestTLS13Only(t *testing.T) {
	certPEM, keyPEM, _ := GenerateCertificate([]string{"127.0.0.1"}, 0)
	cert, _, _ := LoadCertificate(certPEM, keyPEM)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerTLSConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.(*tls.Conn).Handshake()
				c.Close()
			}()
		}
	}()
	for name, cfg := range map[string]*tls.Config{
		"TLS 1.2":    {InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, NextProtos: []string{ALPN}},
		"other ALPN": {InsecureSkipVerify: true, NextProtos: []string{"h2"}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := (&tls.Dialer{Config: cfg}).DialContext(ctx, "tcp", ln.Addr().String())
		cancel()
		if err == nil {
			c.Close()
			t.Errorf("%s: connected", name)
		}
	}
	// The client config refuses a server without the wire ALPN.
	plain, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		c, err := plain.Accept()
		if err == nil {
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	store, _ := OpenTrustStore(filepath.Join(t.TempDir(), "trust"))
	nc, err := net.Dial("tcp", plain.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	addr := plain.Addr().String()
	err = tls.Client(nc, ClientTLSConfig(addr, store, func(string, Fingerprint) bool { return true })).Handshake()
	if err == nil || !strings.Contains(err.Error(), "not a process server") {
		t.Fatalf("server without ALPN: %v", err)
	}
	if _, ok, _ := store.Lookup(addr); ok {
		t.Fatal("a server without the wire ALPN got pinned")
	}
}

// A peer that does not speak TLS fails the handshake with crypto/tls's
// own words, said once: "tls: first record ...", never "tls: tls: ...".
func TestTLSHandshakeErrorMessage(t *testing.T) {
	certPEM, keyPEM, err := GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	defer b.Close()
	go func() {
		b.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
		io.Copy(io.Discard, b)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := psConfig(fixedKey)
	cfg.ServerCert = CertFingerprint(cert.Certificate[0])
	c, err := Server(ctx, tls.Server(a, ServerTLSConfig(cert)), cfg)
	if err == nil {
		c.Close()
		t.Fatal("a plain-text peer passed the handshake")
	}
	msg := err.Error()
	if !strings.Contains(msg, "handshake with pipe: tls: first record does not look like a TLS handshake") || strings.Contains(msg, "tls: tls:") {
		t.Errorf("error %q", msg)
	}
}
