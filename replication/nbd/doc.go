// Package nbd serves a block device over the Network Block Device
// protocol (fixed newstyle handshake, simple replies), so that standard
// clients — nbd-client, qemu-nbd, qemu-img, nbdinfo, nbdcopy, nbdfuse —
// can attach a point-in-time view of a replicated disk.
//
// # Handshake
//
// The server sends NBDMAGIC, IHAVEOPT and the handshake flags
// FIXED_NEWSTYLE|NO_ZEROES, reads the client's flags (a client that does
// not speak fixed newstyle is refused), then answers options until one
// moves to transmission: GO (or the old EXPORT_NAME) with an export's
// name (a server offers one or more: the disks of a view), or the empty
// name, which is the first. INFO answers as GO does without leaving
// option haggling, LIST names the exports,
// ABORT is acknowledged and ends the connection, and every other option
// (STARTTLS, STRUCTURED_REPLY, the meta contexts, extended headers) gets
// NBD_REP_ERR_UNSUP, after which clients fall back to simple replies.
// Option data is bounded (MaxOptionLen); a longer one is read away and
// answered NBD_REP_ERR_TOO_BIG.
//
// # Transmission
//
// Requests are decoded (DecodeRequest) and answered with simple replies.
// READs run side by side (up to MaxInFlight per connection, replies in
// the order they finish, matched by cookie); any other command waits for
// the READs in flight, then runs alone, so writes land in the order sent
// and a FLUSH covers every write answered before it. The commands: READ, WRITE (EPERM on a read-only
// export, ENOSPC when the device says it is full), FLUSH, TRIM and
// WRITE_ZEROES (when the device supports them), DISC. A request beyond
// the end of the export gets EINVAL, an unknown command EINVAL, a
// length above MaxRequest EINVAL (a WRITE that long cannot be resynced
// and ends the connection). A bad magic ends the connection. Each
// connection has its own goroutine, and a client that sends garbage or
// goes away mid-request ends only its own connection; Close ends them
// all.
//
// The option and request decoders are pure functions on bytes, fuzzed
// (FuzzOption, FuzzRequest).
package nbd
