// Package agent is the master-target side of replication: a Client dials
// a process server, pairs the disks it was configured with, and journals
// what the process server streams through a writer pair per disk.
//
// # Session flow
//
// The client dials the process server over TLS (wire.ClientTLSConfig:
// the server's certificate pinned in the trust store, a first one
// trusted through Config.Confirm), and runs the wire handshake as the
// master target. Its Accept pairs the offered disks it has a pair for
// (by disk name; a target smaller than the disk is refused) and reports
// each pair's resume point, Pair.Next()-1. A pair that has journaled
// nothing yet asks for a resync: by hashes when Config.HashResync is set
// (the target already holds an older copy), else a full copy; any other
// pair asks to stream on from its resume point, and the process server
// resyncs by hashes if it cannot.
//
// Messages are received (read, decrypted, checked) up to four ahead of
// the one being handled, so the next resync chunk comes off the wire
// while the last is written. TLS reads the socket through a 256 KiB
// buffer: it asks for one record (16 KiB at most) at a time, which would
// cost a read system call per record of a resync. In step I of a full resync, while the
// pair's retention store holds no recoverable point, ResyncData and
// ZeroRange go straight to the target (writer.Pair.WriteDirect: no
// before-image, no journal record; a zero range becomes a hole). Their
// data is received into memory lent by a wire.PayloadPool, aligned for
// O_DIRECT, which the pair writes from (writer.Pair.WriteDirectBuf) and
// gives back once the write has landed, so chunk after chunk reuses it
// and is never copied.
//
// Otherwise, per message: ResyncData and ZeroRange become journal writes
// flagged journal.FlagResync (a ZeroRange one write of zeros, so each
// wire disk sequence is exactly one journal sequence; the process server
// keeps a zero range within one chunk of at most 4 MiB); Write and Tag
// are journaled as they are; HashRequest is answered with the chunks'
// hashes (SHA-256, or seeded XXH3 from protocol version 2) once
// everything received in its range is on the target, by a hasher beside
// the receive loop that reads the target while the applier and the
// direct writes go on (every CPU reading and hashing pieces of 256 KiB,
// wire.HashChunksAlgo); State
// moves the pair between Resync Step I, Resync Step II and Differential
// Sync; Heartbeat feeds the pair's RPO (and the client sends one a
// second, so the process server can tell a silent peer from a dead
// one). Cumulative Acks go out as the writer reports group commits (Options.OnAck), with the apply backlog
// and the journal volume's free space; Credit is granted as journal
// appends return (sent with the next ack, on the acker's tick, or at once
// when a quarter of the window waits), so the journal's own
// back-pressure throttles the process server. Resent messages (after a reconnect) are duplicates the
// writer drops.
//
// Any error ends the connection; Run dials again with exponential
// backoff and full jitter (a uniform wait under a bound that starts at
// Config.MinBackoff and doubles up to Config.MaxBackoff, so master
// targets do not all redial a restarted process server at once), except
// after errors that a retry cannot mend: a failed passphrase proof
// (wire.ErrAuth), a changed or untrusted certificate. The backoff starts
// again from the minimum only after an established connection that the
// network or the peer ended: one ended by a pair of this side (its
// journal failing) would end the next one too.
//
// # Ended pairs
//
// A rollback ends its pair (Client.End, before the target is touched):
// the pair leaves the session at once, the process server is told with a
// non-fatal wire.Error CodeEnded for its disk and stops sending it, what
// was already on its way is dropped (its credit granted again), and the
// other pairs stream on in the same connection, without a resync. The
// writer keeps the pair as ended (writer.HealthEnded, StateEnded, with its
// reason). An agent started with a pair that has ended logs a warning to
// remove its [[pair]], reports it ended and replicates the others; with
// every pair ended, Run waits.
//
// The client keeps no state of its own: a pair's resume point is its
// journal's, so a restarted agent resumes where its journal ends.
//
// # The daemon
//
// Run is `mtconsole agent`: from a FileConfig it reads the passphrase
// (internal/secret's rules), opens the trust store, the pairs and the
// status API, sends the configuration server heartbeats
// (hostconfig.StartHeartbeats) and, on POST /v1/reload and SIGHUP,
// reloads the file through a Reloader (api.ReloadResult says what it
// did). What a reload does with each setting is the setting's reload tag
// on FileConfig ("live" or "restart"): the Reloader walks the type, and
// TestReloadTags fails on a setting that states none. A [[pair]] new in
// the file starts on the running connection (the process server is sent
// a PairAccept for it; the other pairs' connection and sequences carry
// on), one gone from it stops (its target left as it is, its journal and
// retention kept unless purged).
//
// Under systemd (Options.Notify, internal/sdnotify) Run sends READY=1
// once the pairs are open and the status API listens, a STATUS= line of
// the pairs' states (StatusLine) as it changes, and, with the unit's
// WatchdogSec (Options.Watchdog), WATCHDOG=1 every third of it only while
// no pair's applier has been inside one batch for half of it
// (writer.Writer.Stalled): a hung target or retention volume gets the
// agent restarted. The trust store defaults to DefaultTrustStore under
// /var/lib (the unit keeps /etc read-only); an older install's
// LegacyTrustStore is copied there once (FileConfig.TrustStorePath).
//
// Each group with a consistency interval gets a crash-consistent tag
// across its disks in Differential Sync every interval
// (ConsistencyTagName), one TagRequest for all of them.
package agent
