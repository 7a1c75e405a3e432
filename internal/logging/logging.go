package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/term"
)

// Formats New accepts (--log-format).
const (
	FormatAuto    = "auto"
	FormatText    = "text"
	FormatJSON    = "json"
	FormatJournal = "journal"
)

// Formats lists the formats in the order --help and completion show them.
var Formats = []string{FormatAuto, FormatText, FormatJSON, FormatJournal}

// DefaultJournalSocket is where journald reads native-protocol datagrams.
const DefaultJournalSocket = "/run/systemd/journal/socket"

// Options say how New builds a handler.
type Options struct {
	// Format is one of Formats; "" is auto.
	Format string
	// Level is the minimum level (nil: a fixed Info).
	Level slog.Leveler
	// Stream is where text and JSON go, and journal records that cannot
	// be sent as a datagram (default os.Stderr).
	Stream io.Writer
	// Identifier is SYSLOG_IDENTIFIER (default "mtconsole").
	Identifier string
	// JournalSocket is journald's socket (default DefaultJournalSocket).
	JournalSocket string
	// Getenv reads $JOURNAL_STREAM (default os.Getenv).
	Getenv func(string) string
}

// New returns the handler o describes, secrets redacted (Redact).
func New(o Options) (slog.Handler, error) {
	if o.Stream == nil {
		o.Stream = os.Stderr
	}
	if o.Identifier == "" {
		o.Identifier = "mtconsole"
	}
	if o.JournalSocket == "" {
		o.JournalSocket = DefaultJournalSocket
	}
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.Level == nil {
		o.Level = slog.LevelInfo
	}
	hopts := &slog.HandlerOptions{Level: o.Level}
	format := o.Format
	if format == "" || format == FormatAuto {
		format = FormatText
		if OnJournalStream(o.Stream, o.Getenv("JOURNAL_STREAM")) {
			format = FormatJournal
		}
	}
	var h slog.Handler
	switch format {
	case FormatText:
		h = slog.NewTextHandler(o.Stream, hopts)
	case FormatJSON:
		h = slog.NewJSONHandler(o.Stream, hopts)
	case FormatJournal:
		h = NewJournal(o.JournalSocket, o.Identifier, o.Level, slog.NewTextHandler(o.Stream, hopts))
	default:
		return nil, fmt.Errorf("--log-format %q: want one of %s", o.Format, strings.Join(Formats, ", "))
	}
	return Redact(h), nil
}

// OnJournalStream says whether w is the file systemd connected to the
// journal: $JOURNAL_STREAM ("device:inode", systemd.exec(5)) names w's
// device and inode. A program whose stderr was redirected elsewhere
// inherits the variable but fails the check, and keeps its text.
func OnJournalStream(w io.Writer, env string) bool {
	f, ok := w.(*os.File)
	if !ok || env == "" {
		return false
	}
	dev, ino, ok := strings.Cut(env, ":")
	if !ok {
		return false
	}
	d, err1 := strconv.ParseUint(dev, 10, 64)
	i, err2 := strconv.ParseUint(ino, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == d && st.Ino == i
}

// IsTerminal says whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// ParseLevel reads a level as --log-level and host.conf take it: a name
// (debug, info, notice, warning or warn, error or err) or a syslog
// severity 0-7 (FromSyslog).
func ParseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "notice", "warning", "warn":
		return slog.LevelWarn, nil
	case "error", "err":
		return slog.LevelError, nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 7 {
		return 0, fmt.Errorf("level %q: want debug, info, warning, error or a syslog severity 0-7", s)
	}
	return FromSyslog(n), nil
}

// FromSyslog is the slog level of host.conf's logging.level, a syslog
// severity: records at or more severe than it are logged.
func FromSyslog(n int) slog.Level {
	switch {
	case n >= 7:
		return slog.LevelDebug
	case n == 6:
		return slog.LevelInfo
	case n >= 4:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// Priority is the syslog priority journald files a record of level l
// under (journalctl -p).
func Priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}
