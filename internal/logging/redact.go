package logging

import (
	"context"
	"log/slog"
	"strings"
	"unicode"
)

// Redacted replaces the value of a secret attribute.
const Redacted = "[REDACTED]"

// secretWords are the parts of an attribute key that make it a secret,
// whole (key, psk) or inside a word (passphrase_file is not a secret but
// is redacted anyway: a path is cheap to lose, a passphrase is not).
var secretWords = []string{"passphrase", "password", "passwd", "secret", "token", "credential", "privatekey", "apikey", "authorization", "cookie"}

// secretTokens are key parts that name a secret only as a whole token:
// "key" and "pass" are secrets, "keyboard" and "passive" are not.
var secretTokens = map[string]bool{"key": true, "psk": true, "pass": true, "pwd": true, "auth": true, "private": true}

// IsSecretKey says whether an attribute named key holds a secret.
func IsSecretKey(key string) bool {
	l := strings.ToLower(key)
	flat := strings.Map(func(r rune) rune {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			return r
		}
		return -1
	}, l)
	for _, w := range secretWords {
		if strings.Contains(flat, w) {
			return true
		}
	}
	// Tokens: split on anything not a letter or digit, and on camelCase.
	var tok []rune
	check := func() bool {
		s := strings.ToLower(string(tok))
		tok = tok[:0]
		return secretTokens[s]
	}
	for i, r := range key {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			if check() {
				return true
			}
			continue
		}
		if unicode.IsUpper(r) && i > 0 && len(tok) > 0 {
			if check() {
				return true
			}
		}
		tok = append(tok, r)
	}
	return check()
}

// Redact wraps h so that no secret attribute reaches it: a key IsSecretKey
// names has its value, resolved or not, group or not, replaced by
// Redacted; a group IsSecretKey names has all of its attributes replaced.
func Redact(h slog.Handler) slog.Handler {
	if r, ok := h.(*redactHandler); ok {
		return r
	}
	return &redactHandler{next: h}
}

type redactHandler struct {
	next slog.Handler
	// secretGroup: a WithGroup named a secret, so every attribute under
	// it is one.
	secretGroup bool
}

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	nr := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(h.redact(a))
		return true
	})
	return h.next.Handle(ctx, nr)
}

func (h *redactHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make([]slog.Attr, len(as))
	for i, a := range as {
		out[i] = h.redact(a)
	}
	return &redactHandler{next: h.next.WithAttrs(out), secretGroup: h.secretGroup}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{next: h.next.WithGroup(name), secretGroup: h.secretGroup || IsSecretKey(name)}
}

func (h *redactHandler) redact(a slog.Attr) slog.Attr {
	return redactAttr(a, h.secretGroup)
}

func redactAttr(a slog.Attr, secret bool) slog.Attr {
	a.Value = a.Value.Resolve()
	secret = secret || IsSecretKey(a.Key)
	if a.Value.Kind() == slog.KindGroup {
		as := a.Value.Group()
		out := make([]slog.Attr, len(as))
		for i, g := range as {
			out[i] = redactAttr(g, secret)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(out...)}
	}
	if secret {
		return slog.String(a.Key, Redacted)
	}
	return a
}
