package hostconfig

import (
	"bufio"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/mtconsole/mtconsole/internal/atomicfile"
	"github.com/mtconsole/mtconsole/internal/secret"
)

// Passphrase limits: the original's MIN_PASSPHRASE_LENGTH and its entry's
// maximum.
const (
	MinPassphraseLength = 16
	MaxPassphraseLength = 256
)

// Errors of the passphrase.
var (
	ErrPassphraseShort = errors.New("passphrase too short")
	ErrPassphraseFile  = errors.New("passphrase file")
)

// Passphrase is the shared secret of this host and the configuration
// server. It prints and logs as REDACTED whatever the verb; string(p)
// gives the text.
type Passphrase string

func (Passphrase) String() string               { return "REDACTED" }
func (Passphrase) GoString() string             { return "hostconfig.Passphrase(REDACTED)" }
func (Passphrase) LogValue() slog.Value         { return slog.StringValue("REDACTED") }
func (p Passphrase) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, p.String()) }

// CleanPassphrase makes typed or pasted text a passphrase: a trailing
// newline (a paste of a whole line, a file's last line) and surrounding
// spaces go, and it is checked. The error never holds the text.
func CleanPassphrase(s string) (Passphrase, error) {
	s = strings.TrimSpace(strings.TrimRight(s, "\r\n"))
	if s == "" {
		return "", fmt.Errorf("%w: the passphrase is empty", ErrPassphraseShort)
	}
	n := utf8.RuneCountInString(s)
	if n < MinPassphraseLength {
		return "", fmt.Errorf("%w: %d characters, at least %d needed (print it on the configuration server with `mtconsole cs init`)", ErrPassphraseShort, n, MinPassphraseLength)
	}
	if n > MaxPassphraseLength {
		return "", fmt.Errorf("passphrase too long: %d characters, at most %d", n, MaxPassphraseLength)
	}
	if strings.ContainsAny(s, "\n\r\x00") {
		return "", errors.New("the passphrase holds a line break or NUL: it is one line of text")
	}
	return Passphrase(s), nil
}

// ReadPassphrase reads the first line of r (stdin, for scripts).
func ReadPassphrase(r io.Reader) (Passphrase, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read passphrase: %w", err)
	}
	return CleanPassphrase(line)
}

// ReadPassphraseFile reads the passphrase of path by the rules of
// secret.Passphrase (a regular file only its owner may read or write, the
// first line, at least 16 characters).
func ReadPassphraseFile(path string) (Passphrase, error) {
	s, err := secret.Read(path, secret.Passphrase)
	if err != nil {
		return "", passphraseFileError{err}
	}
	p, err := CleanPassphrase(s)
	if err != nil {
		return "", fmt.Errorf("%w %s: %w", ErrPassphraseFile, path, err)
	}
	return p, nil
}

// passphraseFileError is an error of secret.Read, which names the file
// already, as ErrPassphraseFile (and ErrPassphraseShort for a short one).
type passphraseFileError struct{ error }

func (e passphraseFileError) Unwrap() error { return e.error }
func (e passphraseFileError) Is(target error) bool {
	return target == ErrPassphraseFile || target == ErrPassphraseShort && errors.Is(e.error, secret.ErrShort)
}

// SavePassphrase writes p to path atomically, mode 0600, in a directory
// made 0700 if missing.
func SavePassphrase(path string, p Passphrase) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("%w: %w", ErrPassphraseFile, err)
	}
	if err := atomicfile.Write(path, []byte(string(p)+"\n"), 0o600, 0o700); err != nil {
		return fmt.Errorf("%w %s: %w", ErrPassphraseFile, path, err)
	}
	return nil
}

// GeneratePassphrase makes a new random passphrase of 24 characters from
// an alphabet without look-alikes (no 0/O, 1/l/I), easy to read out.
func GeneratePassphrase() Passphrase {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, 24)
	for i := range b {
		// rejection sampling: no modulo bias
		for {
			var r [1]byte
			_, _ = rand.Read(r[:])
			if int(r[0]) < 256-256%len(alphabet) {
				b[i] = alphabet[int(r[0])%len(alphabet)]
				break
			}
		}
	}
	return Passphrase(b)
}

// SigningKey is the key requests and replies are signed with, derived
// from the passphrase. It is a secret: it prints as REDACTED.
type SigningKey [32]byte

func (SigningKey) String() string               { return "REDACTED" }
func (SigningKey) GoString() string             { return "hostconfig.SigningKey{REDACTED}" }
func (SigningKey) LogValue() slog.Value         { return slog.StringValue("REDACTED") }
func (k SigningKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// Key derivation parameters; part of the protocol. The salt names this
// use, so the signing key is never the wire handshake's key of the same
// passphrase.
const (
	KeyIterations = 600_000
	KeySalt       = "mtconsole cs v1 signing key"
)

// DeriveSigningKey is PBKDF2-HMAC-SHA256(passphrase, KeySalt,
// KeyIterations): about 0.1 s, so each guess at a stolen signature costs
// that much. Derive once and keep the key.
func DeriveSigningKey(p Passphrase) (SigningKey, error) {
	if _, err := CleanPassphrase(string(p)); err != nil {
		return SigningKey{}, err
	}
	b, err := pbkdf2.Key(sha256.New, string(p), []byte(KeySalt), KeyIterations, 32)
	if err != nil {
		return SigningKey{}, fmt.Errorf("derive signing key: %w", err)
	}
	return SigningKey(b), nil
}
