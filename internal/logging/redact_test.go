package logging

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

type secretValuer struct{ s string }

func (v secretValuer) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", "admin"), slog.String("password", v.s))
}

func TestIsSecretKey(t *testing.T) {
	for _, k := range []string{"passphrase", "Passphrase", "cs_passphrase", "password", "db.passwd", "secret", "clientSecret",
		"token", "auth_token", "key", "pskKey", "psk", "private_key", "privateKey", "api-key", "Authorization", "pass", "credentials"} {
		if !IsSecretKey(k) {
			t.Errorf("%q is a secret", k)
		}
	}
	for _, k := range []string{"pair", "seq", "fingerprint", "keyboard", "passive", "monkeys", "address", "err", "group", "tag"} {
		if IsSecretKey(k) {
			t.Errorf("%q is not a secret", k)
		}
	}
}

// No secret reaches any field, in any format, however it is attached.
func TestRedactEveryFormat(t *testing.T) {
	const pass = "correct-horse-battery-staple"
	log := func(l *slog.Logger) {
		l.With("passphrase", pass).Info("dialing", "pair", "p1")
		l.Info("login", slog.Group("cs", "host", "cs1", "password", pass))
		l.WithGroup("secret").Info("grouped", "value", pass)
		l.Info("valuer", "who", secretValuer{pass})
		l.Info("token", "token", []byte(pass), "key", pass)
	}
	for _, format := range []string{FormatText, FormatJSON} {
		var out bytes.Buffer
		h, err := New(Options{Format: format, Stream: &out})
		if err != nil {
			t.Fatal(err)
		}
		log(slog.New(h))
		if strings.Contains(out.String(), pass) || strings.Contains(out.String(), "[99 111") {
			t.Errorf("%s: secret in %s", format, out.String())
		}
		if n := strings.Count(out.String(), Redacted); n != 6 {
			t.Errorf("%s: %d redactions, want 6:\n%s", format, n, out.String())
		}
		if !strings.Contains(out.String(), "admin") || !strings.Contains(out.String(), "cs1") {
			t.Errorf("%s: non-secrets lost:\n%s", format, out.String())
		}
	}
	j := newFakeJournald(t)
	var stream bytes.Buffer
	h, err := New(Options{Format: FormatJournal, Stream: &stream, JournalSocket: j.path})
	if err != nil {
		t.Fatal(err)
	}
	log(slog.New(h))
	for range 5 {
		f := j.next(t)
		for k, vs := range f {
			for _, v := range vs {
				if strings.Contains(v, pass) {
					t.Errorf("journal field %s=%q holds the secret", k, v)
				}
			}
		}
	}
	if stream.Len() != 0 {
		t.Errorf("stream %q", stream.String())
	}
}
