package wire

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/mtconsole/mtconsole/internal/atomicfile"
)

// TrustStore pins process-server certificates by address, trust on first
// use, as ssh's known_hosts does. The file holds one line per address:
//
//	# comment
//	10.0.0.5:9443 SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU
//
// It is written root-only (mode 0600, in a directory created 0700 if
// missing) and atomically (temporary file, fsync, rename, fsync of the
// directory), so a crash leaves the old file or the new one, never half of
// one. A file writable by group or others is refused: whoever can write it
// can make this host trust any server. The file is read on every lookup,
// so an admin's edit (removing a changed server) takes effect at once.
// A TrustStore is safe for concurrent use within one process.
type TrustStore struct {
	path string
	mu   sync.Mutex
}

// TrustEntry is one pinned certificate.
type TrustEntry struct {
	Addr        string // host:port
	Fingerprint Fingerprint
}

// CertChangedError is a server certificate that differs from the pinned
// one. errors.Is matches ErrCertChanged.
type CertChangedError struct {
	Addr     string
	Pinned   Fingerprint // the certificate trusted before
	Received Fingerprint // the certificate the server presented now
	File     string      // the trust file
}

func (e *CertChangedError) Error() string {
	return fmt.Sprintf("wire: the certificate of process server %s has changed: pinned %s, presented %s; "+
		"someone could be intercepting the connection (man-in-the-middle), or the process server was reinstalled; "+
		"if it was, check the new fingerprint on the process server, then remove %s from %s and connect again",
		e.Addr, e.Pinned, e.Received, e.Addr, e.File)
}

// Is matches ErrCertChanged.
func (e *CertChangedError) Is(target error) bool { return target == ErrCertChanged }

// OpenTrustStore opens the trust file at path, which need not exist yet
// (the first pin creates it). An existing file must parse and must not be
// writable by group or others.
func OpenTrustStore(path string) (*TrustStore, error) {
	s := &TrustStore{path: path}
	if _, err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the trust file's path.
func (s *TrustStore) Path() string { return s.path }

// Lookup returns the fingerprint pinned for addr.
func (s *TrustStore) Lookup(addr string) (Fingerprint, bool, error) {
	key, err := normAddr(addr)
	if err != nil {
		return Fingerprint{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return Fingerprint{}, false, err
	}
	fp, ok := m[key]
	return fp, ok, nil
}

// List returns every pinned certificate, sorted by address.
func (s *TrustStore) List() ([]TrustEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return nil, err
	}
	return entries(m), nil
}

// Pin trusts fp for addr, replacing what was pinned (an admin's explicit
// decision, e.g. `--trust SHA256:...` after a reinstall).
func (s *TrustStore) Pin(addr string, fp Fingerprint) error {
	key, err := normAddr(addr)
	if err != nil {
		return err
	}
	if fp.IsZero() {
		return fmt.Errorf("wire: pin %s: zero fingerprint", key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return err
	}
	m[key] = fp
	return s.save(m)
}

// Remove forgets addr's certificate. It reports whether one was pinned.
func (s *TrustStore) Remove(addr string) (bool, error) {
	key, err := normAddr(addr)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return false, err
	}
	if _, ok := m[key]; !ok {
		return false, nil
	}
	delete(m, key)
	return true, s.save(m)
}

// Verify checks the certificate fp that the server at addr presented: the
// pinned one passes; a different one fails with a *CertChangedError; one
// seen for the first time is pinned if confirm returns true, and fails
// with ErrUntrusted otherwise (or if confirm is nil).
func (s *TrustStore) Verify(addr string, fp Fingerprint, confirm ConfirmFunc) error {
	key, err := normAddr(addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	m, err := s.load()
	if err != nil {
		return err
	}
	if old, ok := m[key]; ok {
		if old == fp {
			return nil
		}
		return &CertChangedError{Addr: key, Pinned: old, Received: fp, File: s.path}
	}
	if confirm == nil || !confirm(key, fp) {
		return fmt.Errorf("wire: %w: %s presented %s, seen for the first time and not confirmed", ErrUntrusted, key, fp)
	}
	m[key] = fp
	return s.save(m)
}

// normAddr is the key of an address: host (lower case, no trailing dot)
// and port.
func normAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return "", fmt.Errorf("wire: address %q: want host:port", addr)
	}
	return net.JoinHostPort(strings.TrimSuffix(strings.ToLower(host), "."), port), nil
}

func (s *TrustStore) load() (map[string]Fingerprint, error) {
	m := map[string]Fingerprint{}
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wire: %w: %w", ErrTrustFile, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("wire: %w: %w", ErrTrustFile, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("wire: %w: %s is not a regular file", ErrTrustFile, s.path)
	}
	if perm := st.Mode().Perm(); perm&0o022 != 0 {
		return nil, fmt.Errorf("wire: %w: %s is writable by group or others (mode %04o): run chmod 600 %s", ErrTrustFile, s.path, perm, s.path)
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("wire: %w: %s:%d: want \"host:port SHA256:...\"", ErrTrustFile, s.path, n)
		}
		key, err := normAddr(fields[0])
		if err != nil {
			return nil, fmt.Errorf("wire: %w: %s:%d: %s", ErrTrustFile, s.path, n, strings.TrimPrefix(err.Error(), "wire: "))
		}
		fp, err := ParseFingerprint(fields[1])
		if err != nil {
			return nil, fmt.Errorf("wire: %w: %s:%d: %s", ErrTrustFile, s.path, n, strings.TrimPrefix(err.Error(), "wire: "))
		}
		if _, dup := m[key]; dup {
			return nil, fmt.Errorf("wire: %w: %s:%d: %s pinned twice", ErrTrustFile, s.path, n, key)
		}
		m[key] = fp
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("wire: %w: %s: %w", ErrTrustFile, s.path, err)
	}
	return m, nil
}

func (s *TrustStore) save(m map[string]Fingerprint) error {
	var b bytes.Buffer
	b.WriteString("# mtconsole: trusted process-server certificates (pinned on first use).\n")
	b.WriteString("# One line per server: host:port SHA256:<base64 of the certificate's SHA-256>.\n")
	for _, e := range entries(m) {
		fmt.Fprintf(&b, "%s %s\n", e.Addr, e.Fingerprint)
	}
	if err := atomicfile.Write(s.path, b.Bytes(), 0o600, 0o700); err != nil {
		return fmt.Errorf("wire: %w: %w", ErrTrustFile, err)
	}
	return nil
}

func entries(m map[string]Fingerprint) []TrustEntry {
	es := make([]TrustEntry, 0, len(m))
	for a, fp := range m {
		es = append(es, TrustEntry{Addr: a, Fingerprint: fp})
	}
	slices.SortFunc(es, func(a, b TrustEntry) int { return strings.Compare(a.Addr, b.Addr) })
	return es
}
