package secret_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/secret"
)

func TestRead(t *testing.T) {
	const pass = "sixteen-chars-ok"
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sub := filepath.Join(dir, "adir")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		path  string
		rules secret.Rules
		want  string
		err   []string // the error holds all of these
	}{
		{"0600 ok", write("ok", pass+"\nsecond line\n", 0o600), secret.Passphrase, pass, nil},
		{"0400 ok", write("ro", pass+"\n", 0o400), secret.Passphrase, pass, nil},
		{"no newline", write("nonl", pass, 0o600), secret.Passphrase, pass, nil},
		{"CRLF trimmed", write("crlf", pass+"\r\nx\r\n", 0o600), secret.Passphrase, pass, nil},
		{"0640 refused", write("group", pass+"\n", 0o640), secret.Passphrase, "",
			[]string{"passphrase file", filepath.Join(dir, "group"), "mode 0640", "chmod 600 " + filepath.Join(dir, "group")}},
		{"0604 refused", write("other", pass+"\n", 0o604), secret.Passphrase, "", []string{"mode 0604", "chmod 600"}},
		{"directory refused", sub, secret.Passphrase, "", []string{sub, "not a regular file", "a directory"}},
		{"device refused", "/dev/null", secret.Password, "", []string{"/dev/null", "not a regular file", "a device"}},
		{"missing", filepath.Join(dir, "none"), secret.Password, "", []string{"no such file"}},
		{"no path", "", secret.Password, "", []string{"no vCenter password file given"}},
		{"short refused", write("short", "fifteen-chars!!\n", 0o600), secret.Passphrase, "",
			[]string{filepath.Join(dir, "short"), "15 characters", "at least 16"}},
		{"empty file", write("empty", "", 0o600), secret.Password, "", []string{filepath.Join(dir, "empty"), "first line is empty"}},
		{"empty first line", write("blank", "\r\nsecret on line 2\n", 0o600), secret.Password, "", []string{"first line is empty"}},
		{"password of one character", write("pw1", "x\n", 0o600), secret.Password, "x", nil},
		{"characters, not bytes", write("utf8", strings.Repeat("é", 16)+"\n", 0o600), secret.Passphrase, strings.Repeat("é", 16), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := secret.Read(tc.path, tc.rules)
			if tc.err == nil {
				if err != nil || got != tc.want {
					t.Fatalf("Read = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Read = %q, want an error", got)
			}
			if !errors.Is(err, secret.ErrFile) {
				t.Errorf("%v does not wrap ErrFile", err)
			}
			if short := strings.Contains(tc.name, "short") || strings.Contains(tc.name, "empty"); errors.Is(err, secret.ErrShort) != short {
				t.Errorf("%v: ErrShort %v, want %v", err, errors.Is(err, secret.ErrShort), short)
			}
			for _, w := range tc.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "fifteen") || strings.Contains(err.Error(), pass) {
				t.Errorf("the error holds the secret: %v", err)
			}
		})
	}
}
