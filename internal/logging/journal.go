package logging

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Journal is a slog.Handler that sends each record to journald as one
// datagram of its native protocol (systemd.journal-fields(7)). A record
// journald cannot take (too large, socket gone) goes to the fallback
// handler instead.
type Journal struct {
	s      *journalSender
	level  slog.Leveler
	ident  string
	prefix string      // the open groups, upper-cased, each followed by "_"
	attrs  []fieldPair // attributes from WithAttrs, rendered
	text   []string    // the same, key=value, for MESSAGE
	fall   slog.Handler
}

type fieldPair struct{ key, value string }

type journalSender struct {
	socket string
	mu     sync.Mutex
	fd     int // -1 until the first send
}

// NewJournal returns a handler that sends to the journald socket at
// socket as identifier, at or above level, falling back to fallback.
func NewJournal(socket, identifier string, level slog.Leveler, fallback slog.Handler) *Journal {
	if level == nil {
		level = slog.LevelInfo
	}
	return &Journal{s: &journalSender{socket: socket, fd: -1}, level: level, ident: identifier, fall: fallback}
}

// Enabled implements slog.Handler.
func (j *Journal) Enabled(_ context.Context, l slog.Level) bool { return l >= j.level.Level() }

// WithAttrs implements slog.Handler.
func (j *Journal) WithAttrs(as []slog.Attr) slog.Handler {
	c := *j
	c.attrs = append([]fieldPair(nil), j.attrs...)
	c.text = append([]string(nil), j.text...)
	for _, a := range as {
		c.attrs, c.text = appendAttr(c.attrs, c.text, j.prefix, a)
	}
	c.fall = j.fall.WithAttrs(as)
	return &c
}

// WithGroup implements slog.Handler.
func (j *Journal) WithGroup(name string) slog.Handler {
	if name == "" {
		return j
	}
	c := *j
	c.prefix = j.prefix + fieldName(name) + "_"
	c.fall = j.fall.WithGroup(name)
	return &c
}

// Handle implements slog.Handler.
func (j *Journal) Handle(ctx context.Context, r slog.Record) error {
	fields, text := j.attrs, j.text
	r.Attrs(func(a slog.Attr) bool {
		fields, text = appendAttr(fields, text, j.prefix, a)
		return true
	})
	var b bytes.Buffer
	msg := r.Message
	if len(text) > 0 {
		msg += " " + strings.Join(text, " ")
	}
	writeField(&b, "MESSAGE", msg)
	writeField(&b, "PRIORITY", strconv.Itoa(Priority(r.Level)))
	writeField(&b, "SYSLOG_IDENTIFIER", j.ident)
	if r.PC != 0 {
		f, _ := runtime.CallersFrames([]uintptr{r.PC}).Next()
		if f.File != "" {
			writeField(&b, "CODE_FILE", f.File)
			writeField(&b, "CODE_LINE", strconv.Itoa(f.Line))
			writeField(&b, "CODE_FUNC", f.Function)
		}
	}
	if !r.Time.IsZero() {
		// The time the record was made, not when journald received it.
		writeField(&b, "SYSLOG_TIMESTAMP", r.Time.Format(time.RFC3339Nano))
	}
	for _, f := range fields {
		writeField(&b, f.key, f.value)
	}
	if err := j.s.send(b.Bytes()); err != nil {
		// Too large for a datagram (EMSGSIZE), journald not there: the
		// stream, which under systemd is the journal too.
		return j.fall.Handle(ctx, r)
	}
	return nil
}

func (s *journalSender) send(p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fd < 0 {
		fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		s.fd = fd
	}
	// Unconnected: a journald restarted since the last record is found
	// again at the same path.
	return syscall.Sendto(s.fd, p, 0, &syscall.SockaddrUnix{Name: s.socket})
}

// reserved are the fields the handler writes itself; an attribute of the
// same name is written as ATTR_<name> instead of overriding them.
var reserved = map[string]bool{"MESSAGE": true, "PRIORITY": true, "SYSLOG_IDENTIFIER": true,
	"CODE_FILE": true, "CODE_LINE": true, "CODE_FUNC": true, "SYSLOG_TIMESTAMP": true, "MESSAGE_ID": true}

func appendAttr(fields []fieldPair, text []string, prefix string, a slog.Attr) ([]fieldPair, []string) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fields, text
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += fieldName(a.Key) + "_"
		}
		for _, g := range a.Value.Group() {
			fields, text = appendAttr(fields, text, p, g)
		}
		return fields, text
	}
	key := prefix + fieldName(a.Key)
	if reserved[key] {
		key = "ATTR_" + key
	}
	if len(key) > 64 { // journald drops longer names
		key = key[:64]
	}
	v := attrString(a.Value)
	fields = append(fields, fieldPair{key, v})
	text = append(text, strings.ToLower(key)+"="+quoteIfNeeded(v))
	return fields, text
}

func attrString(v slog.Value) string {
	if v.Kind() == slog.KindTime {
		return v.Time().Format(time.RFC3339Nano)
	}
	return v.String()
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}

// fieldName is a journal field name for an attribute key: upper case,
// only A-Z, 0-9 and _, starting with a letter (a leading _ is journald's
// own, trusted, fields).
func fieldName(key string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(key) {
		if (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		s = "X" + s
	}
	return s
}

// writeField writes one field: KEY=value, or for a value with a newline
// the binary form KEY\n<64-bit little-endian length><value>\n.
func writeField(b *bytes.Buffer, key, value string) {
	if !strings.Contains(value, "\n") {
		fmt.Fprintf(b, "%s=%s\n", key, value)
		return
	}
	b.WriteString(key)
	b.WriteByte('\n')
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(value)))
	b.Write(n[:])
	b.WriteString(value)
	b.WriteByte('\n')
}
