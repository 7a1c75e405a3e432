package logging

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeJournald listens where journald would and returns the datagrams it
// receives, parsed into fields (a field may repeat).
type fakeJournald struct {
	path string
	conn *net.UnixConn
}

func newFakeJournald(t *testing.T) *fakeJournald {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &fakeJournald{path: path, conn: c}
}

func (f *fakeJournald) next(t *testing.T) map[string][]string {
	t.Helper()
	buf := make([]byte, 1<<20)
	if err := f.conn.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	n, err := f.conn.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	fields, err := parseDatagram(buf[:n])
	if err != nil {
		t.Fatalf("datagram %q: %v", buf[:n], err)
	}
	return fields
}

// none says no datagram is waiting.
func (f *fakeJournald) none(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	_ = f.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := f.conn.Read(buf); err == nil {
		t.Fatalf("unexpected datagram %q", buf[:n])
	}
}

// parseDatagram reads the native protocol as journald does.
func parseDatagram(p []byte) (map[string][]string, error) {
	out := map[string][]string{}
	for len(p) > 0 {
		nl := bytes.IndexByte(p, '\n')
		if nl < 0 {
			return nil, errors.New("field without newline")
		}
		line := p[:nl]
		if k, v, ok := bytes.Cut(line, []byte("=")); ok {
			out[string(k)] = append(out[string(k)], string(v))
			p = p[nl+1:]
			continue
		}
		key := string(line)
		p = p[nl+1:]
		if len(p) < 8 {
			return nil, fmt.Errorf("field %s: short length", key)
		}
		n := binary.LittleEndian.Uint64(p[:8])
		p = p[8:]
		if uint64(len(p)) < n+1 || p[n] != '\n' {
			return nil, fmt.Errorf("field %s: bad binary value", key)
		}
		out[key] = append(out[key], string(p[:n]))
		p = p[n+1:]
	}
	return out, nil
}

func one(t *testing.T, f map[string][]string, key string) string {
	t.Helper()
	if len(f[key]) != 1 {
		t.Fatalf("field %s: %q, want one value (fields %v)", key, f[key], f)
	}
	return f[key][0]
}

func TestJournalFieldsAndPriorities(t *testing.T) {
	j := newFakeJournald(t)
	var stream bytes.Buffer
	lv := new(slog.LevelVar)
	lv.Set(slog.LevelDebug)
	h, err := New(Options{Format: FormatJournal, Level: lv, Stream: &stream, Identifier: "mtconsole-agent", JournalSocket: j.path})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(h).With("pair", "sda")
	for _, c := range []struct {
		level slog.Level
		prio  string
	}{{slog.LevelDebug, "7"}, {slog.LevelInfo, "6"}, {slog.LevelWarn, "4"}, {slog.LevelError, "3"}} {
		log.Log(t.Context(), c.level, "applied", "seq", uint64(42), slog.Group("retention", "used_bytes", 7))
		f := j.next(t)
		if got := one(t, f, "PRIORITY"); got != c.prio {
			t.Errorf("%v: PRIORITY=%s, want %s", c.level, got, c.prio)
		}
		for k, want := range map[string]string{"PAIR": "sda", "SEQ": "42", "RETENTION_USED_BYTES": "7",
			"SYSLOG_IDENTIFIER": "mtconsole-agent", "MESSAGE": "applied pair=sda seq=42 retention_used_bytes=7",
			"CODE_FUNC": "github.com/mtconsole/mtconsole/internal/logging.TestJournalFieldsAndPriorities"} {
			if got := one(t, f, k); got != want {
				t.Errorf("%v: %s=%q, want %q", c.level, k, got, want)
			}
		}
		if got := one(t, f, "CODE_FILE"); !strings.HasSuffix(got, "logging_test.go") {
			t.Errorf("CODE_FILE=%q", got)
		}
		if one(t, f, "CODE_LINE") == "" {
			t.Error("no CODE_LINE")
		}
	}
	// The level changes while the handler runs (SIGHUP re-reads it).
	lv.Set(slog.LevelWarn)
	log.Info("hidden")
	j.none(t)
	log.Warn("shown")
	if got := one(t, j.next(t), "MESSAGE"); got != "shown pair=sda" {
		t.Errorf("MESSAGE=%q", got)
	}
	if stream.Len() != 0 {
		t.Errorf("stream got %q while journald took every record", stream.String())
	}
}

func TestJournalMultilineAndOddKeys(t *testing.T) {
	j := newFakeJournald(t)
	h := NewJournal(j.path, "t", slog.LevelInfo, slog.NewTextHandler(&bytes.Buffer{}, nil))
	slog.New(h).WithGroup("job").Info("line one\nline two", "err", errors.New("a\nb"), "message", "mine", "9x", "v", "a.b-c", "d")
	f := j.next(t)
	if got := one(t, f, "MESSAGE"); !strings.HasPrefix(got, "line one\nline two ") {
		t.Errorf("MESSAGE=%q", got)
	}
	for k, want := range map[string]string{"JOB_ERR": "a\nb", "JOB_MESSAGE": "mine", "JOB_X9X": "v", "JOB_A_B_C": "d"} {
		if got := one(t, f, k); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	// An attribute named like a field of the handler's own does not
	// override it.
	slog.New(h).Info("m", "priority", "0")
	f = j.next(t)
	if one(t, f, "PRIORITY") != "6" || one(t, f, "ATTR_PRIORITY") != "0" {
		t.Errorf("fields %v", f)
	}
}

// A record journald cannot take goes to the stream, whole.
func TestJournalFallsBackToStream(t *testing.T) {
	j := newFakeJournald(t)
	var stream bytes.Buffer
	h, err := New(Options{Format: FormatJournal, Stream: &stream, JournalSocket: j.path})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 4<<20) // larger than any datagram
	slog.New(h).Error("huge", "blob", big)
	if !strings.Contains(stream.String(), "level=ERROR msg=huge blob="+big) {
		t.Errorf("stream has %d bytes, not the record", stream.Len())
	}
	j.none(t)

	// No journald at all.
	stream.Reset()
	h, _ = New(Options{Format: FormatJournal, Stream: &stream, JournalSocket: filepath.Join(t.TempDir(), "absent")})
	slog.New(h).Warn("nobody listens", "pair", "p1")
	if got := stream.String(); !strings.Contains(got, `level=WARN msg="nobody listens" pair=p1`) {
		t.Errorf("stream %q", got)
	}
}

func TestAutoPicksJournalOnlyForTheJournalStream(t *testing.T) {
	j := newFakeJournald(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	env := fmt.Sprintf("%d:%d", st.Dev, st.Ino)
	for _, c := range []struct {
		env     string
		journal bool
	}{{env, true}, {"", false}, {fmt.Sprintf("%d:%d", st.Dev, st.Ino+1), false}, {"garbage", false}} {
		h, err := New(Options{Stream: f, JournalSocket: j.path, Getenv: func(string) string { return c.env }})
		if err != nil {
			t.Fatal(err)
		}
		slog.New(h).Info("hello")
		if c.journal {
			if one(t, j.next(t), "MESSAGE") != "hello" {
				t.Error("journal got another message")
			}
		} else {
			j.none(t)
		}
	}
	data, _ := os.ReadFile(f.Name())
	if n := strings.Count(string(data), "msg=hello"); n != 3 {
		t.Errorf("stream has %d text records, want 3 (the non-journal cases):\n%s", n, data)
	}
}

func TestNewRejectsUnknownFormat(t *testing.T) {
	_, err := New(Options{Format: "xml"})
	if err == nil || !strings.Contains(err.Error(), `--log-format "xml"`) || !strings.Contains(err.Error(), "journal") {
		t.Errorf("err %v", err)
	}
}

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warning": slog.LevelWarn,
		"warn": slog.LevelWarn, "error": slog.LevelError, "7": slog.LevelDebug, "6": slog.LevelInfo, "5": slog.LevelWarn,
		"4": slog.LevelWarn, "3": slog.LevelError, "0": slog.LevelError} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "8", "-1", "loud"} {
		if _, err := ParseLevel(bad); err == nil || !strings.Contains(err.Error(), "syslog severity 0-7") {
			t.Errorf("ParseLevel(%q): err %v", bad, err)
		}
	}
}
