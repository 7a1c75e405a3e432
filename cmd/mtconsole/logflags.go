package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/internal/logging"
)

// addLogFlags adds the log flags every command inherits from the root.
func addLogFlags(root *cobra.Command) {
	root.PersistentFlags().String("log-format", logging.FormatAuto,
		"log format of long-running commands: auto (journal under systemd, text otherwise), text, json or journal")
	root.PersistentFlags().String("log-level", "",
		"log level: debug, info, warning, error or a syslog severity 0-7 (default: host.conf's logging.level for the agent, else info)")
	_ = root.RegisterFlagCompletionFunc("log-format", cobra.FixedCompletions(logging.Formats, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("log-level", cobra.FixedCompletions([]string{"debug", "info", "warning", "error", "0", "1", "2", "3", "4", "5", "6", "7"}, cobra.ShellCompDirectiveNoFileComp))
}

// cmdLog is the log of a long-running command: its handler (secrets
// redacted), and its level, which reload re-reads from host.conf.
type cmdLog struct {
	*slog.Logger
	Handler  slog.Handler
	Level    *slog.LevelVar
	fixed    bool   // --log-level was given: host.conf does not change it
	hostConf string // "" when the command reads no host.conf
}

// newCmdLog is the log of cmd, written as identifier (SYSLOG_IDENTIFIER)
// to stream in the --log-format, at --log-level or else hostConf's
// logging.level (when hostConf is not "" and the file exists) or else
// info.
func newCmdLog(cmd *cobra.Command, identifier string, stream io.Writer, hostConf string) (*cmdLog, error) {
	format, level := flagString(cmd, "log-format"), flagString(cmd, "log-level")
	l := &cmdLog{Level: new(slog.LevelVar), hostConf: hostConf}
	if level != "" {
		lv, err := logging.ParseLevel(level)
		if err != nil {
			return nil, usageError{fmt.Errorf("--log-level: %w", err)}
		}
		l.Level.Set(lv)
		l.fixed = true
	}
	h, err := logging.New(logging.Options{Format: format, Level: l.Level, Stream: stream, Identifier: identifier, JournalSocket: journalSocket})
	if err != nil {
		return nil, usageError{err}
	}
	l.Handler, l.Logger = h, slog.New(h)
	if err := l.readHostConf(); err != nil {
		l.Warn("logging.level not applied: the level stays "+l.Level.Level().String(), "err", err)
	}
	return l, nil
}

// Reload re-reads host.conf's logging.level (SIGHUP), logging a change
// or why the file was not read.
func (l *cmdLog) Reload() {
	was := l.Level.Level()
	if err := l.readHostConf(); err != nil {
		l.Warn("logging.level not re-read: the level stays "+was.String(), "err", err)
		return
	}
	if now := l.Level.Level(); now != was {
		l.Log(context.Background(), max(now, was), "log level changed", "from", was.String(), "to", now.String(), "file", l.hostConf)
	}
}

func (l *cmdLog) readHostConf() error {
	if l.fixed || l.hostConf == "" {
		return nil
	}
	c, err := hostconfig.Load(l.hostConf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // not registered: the default stands
	}
	if err != nil {
		return err
	}
	l.Level.Set(logging.FromSyslog(c.LogLevel))
	return nil
}

// flagString is an inherited flag's value, or its default when cmd was
// made without the root (tests build commands alone).
func flagString(cmd *cobra.Command, name string) string {
	if f := cmd.Flags().Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// journalSocket is journald's socket; tests point it at a fake.
var journalSocket = logging.DefaultJournalSocket
