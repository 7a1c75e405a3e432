// Package logging sets up the one log/slog handler every mtconsole
// command logs through (the agent, ps, cs serve, the console's own log,
// the demo), so an admin finds the same thing everywhere:
//
//   - journal: the systemd journal's native protocol, one datagram per
//     record on /run/systemd/journal/socket, with PRIORITY (so
//     journalctl -p warning filters), MESSAGE, SYSLOG_IDENTIFIER,
//     CODE_FILE, CODE_LINE, CODE_FUNC and every slog attribute as a field
//     of its own, upper-cased (pair → PAIR=, seq → SEQ=, a group g's
//     attribute a → G_A=). A record too large for a datagram, or a socket
//     that refuses it, is written to the stream instead (stderr, which
//     under systemd is the journal too), so nothing is lost.
//   - text: slog's key=value lines, for a terminal or a file.
//   - json: slog's JSON lines, for a log shipper.
//   - auto (the default): journal when $JOURNAL_STREAM names the device
//     and inode of the stream (systemd connected stderr to the journal),
//     text otherwise.
//
// The level is a slog.LevelVar the caller may change while the program
// runs (the agent re-reads host.conf's logging.level on SIGHUP). host.conf
// levels are syslog severities 0-7: a record is logged when its priority
// is at or below the level (7 debug, 6 info, 4-5 warning, 0-3 error).
//
// Every handler New returns redacts secrets first (Redact): an attribute
// whose key names a secret (passphrase, password, secret, token, private
// key material) is replaced by "[REDACTED]" at any depth, whatever the
// format. The message itself is not inspected: code never puts a secret
// in a message (STYLE.md).
package logging
