// Package secret reads a secret (a passphrase, a password) from a file,
// with one rule set for every command: the file is a regular file, only
// its owner may read or write it, the secret is its first line, and it is
// at least as long as its kind requires.
//
// An error names the file, says what is wrong and what to do; it never
// holds the secret or any part of it.
package secret

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"
)

// Rules say what a secret of one kind must be.
type Rules struct {
	// Kind names the secret in errors ("passphrase", "vCenter password").
	Kind string
	// MinLen is the fewest characters (runes) the first line may hold;
	// at least 1 in effect: an empty secret is always refused.
	MinLen int
}

// The kinds of secret the commands read.
var (
	// Passphrase is a shared passphrase: the process server's and the
	// agent's wire passphrase, the configuration server's.
	Passphrase = Rules{Kind: "passphrase", MinLen: 16}
	// Password is a vCenter password: any non-empty line.
	Password = Rules{Kind: "vCenter password", MinLen: 1}
)

// maxLine bounds what is read of the file: a secret is one short line.
const maxLine = 64 << 10

// Errors of Read (errors.Is): every one is ErrFile; an empty or too short
// secret is ErrShort too.
var (
	ErrFile  = errors.New("secret file")
	ErrShort = errors.New("secret too short")
)

// fileError is an error of Read: its text names the kind and the file
// ("passphrase file /etc/x: ..."); it is ErrFile and wraps its cause.
type fileError struct {
	msg   string
	err   error // the cause, or nil
	short bool  // ErrShort
}

func (e *fileError) Error() string { return e.msg }
func (e *fileError) Unwrap() error { return e.err }
func (e *fileError) Is(target error) bool {
	return target == ErrFile || e.short && target == ErrShort
}

func fail(cause error, format string, args ...any) error {
	return &fileError{msg: fmt.Sprintf(format, args...), err: cause}
}

// Read returns the first line of the file at path, without its line end
// (LF or CRLF), after checking the file and the line against r.
func Read(path string, r Rules) (string, error) {
	kind := r.Kind
	if kind == "" {
		kind = "secret"
	}
	if path == "" {
		return "", fail(nil, "no %s file given", kind)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fail(err, "%s file: %v", kind, err)
	}
	if !fi.Mode().IsRegular() {
		return "", fail(nil, "%s file %s: not a regular file (%s): give a file whose first line is the %s",
			kind, path, modeKind(fi.Mode()), kind)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fail(nil, "%s file %s: readable or writable by group or others (mode %04o): run chmod 600 %s",
			kind, path, perm, path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fail(err, "%s file: %v", kind, err)
	}
	defer f.Close()
	line, err := bufio.NewReader(io.LimitReader(f, maxLine)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fail(err, "%s file %s: %v", kind, path, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		err := fail(nil, "%s file %s: the first line is empty: write the %s on it", kind, path, kind)
		err.(*fileError).short = true
		return "", err
	}
	if n := utf8.RuneCountInString(line); n < r.MinLen {
		err := fail(nil, "%s file %s: the %s on its first line has %d characters, at least %d are needed",
			kind, path, kind, n, r.MinLen)
		err.(*fileError).short = true
		return "", err
	}
	return line, nil
}

// modeKind names what a non-regular file is.
func modeKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeDevice != 0:
		return "a device"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	}
	return "mode " + m.String()
}
