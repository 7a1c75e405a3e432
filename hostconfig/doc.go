// Package hostconfig is this host's registration with the configuration
// server: the host config file, the stable host id, the shared passphrase,
// request signing, certificate trust and the client that registers,
// verifies, heartbeats and unregisters. It replaces the original
// product's hostconfigcli, csgetfingerprint and the registration part of
// UnifiedAgentConfigurator.sh.
//
// What it promises:
//
//   - The config file (see Config for its format) is written atomically
//     (temporary file, fsync, rename, fsync of the directory) under an
//     exclusive lock file, mode 0600. A bad file is refused with its path,
//     line and key, and what to write instead; nothing is guessed.
//   - The passphrase is at least MinPassphraseLength characters, is read
//     from a 0600 file or from a reader (stdin), never from argv, and is
//     stored only in its own 0600 file. Passphrase and SigningKey print as
//     REDACTED whatever the verb, in errors and in slog.
//   - The passphrase never crosses the wire. Every request carries an
//     HMAC-SHA256 signature, keyed from the passphrase, over the method,
//     path, action, a fresh random nonce, a timestamp, the SHA-256
//     fingerprint of the server's certificate as the client saw it, and
//     the body's hash. The server signs its reply the same way (over the
//     request's signature, the status, its clock and the certificate it
//     holds), so the client knows the server holds the passphrase and saw
//     the same certificate before it pins that certificate: trust on first
//     use that a relay cannot hijack.
//   - A pinned certificate that changes is refused with both fingerprints
//     (ErrCertChanged), before anything is sent.
//   - Errors say what to do: ErrUnreachable, ErrPassphraseRejected,
//     ErrClockSkew (with the difference), ErrReplay, ErrRateLimited,
//     ErrNotRegistered, ErrUntrusted, ErrBadReply.
//
// What it never does: log, print or write the passphrase anywhere but its
// own file; send the passphrase or the derived key; trust a certificate the
// reply's signature does not vouch for.
package hostconfig
