// Package ps is the process server: it serves source disks (regular files
// or block devices) to master targets over the wire protocol and keeps
// each target in line with its source.
//
// A Server listens on TLS (default port 9443), runs the wire handshake as
// the process-server role and offers its disks. For every disk a master
// target pairs, the server keeps a stream: the disk sequence, the messages
// sent but not yet acknowledged, and the phase, for that master target
// (by host id) across its connections.
//
// # Session flow
//
// After the handshake (Hello, Welcome, Auth both ways, DiskList,
// PairAccept), per paired disk:
//
//   - The resume point is the PairAccept sequence. With StartStream the
//     server resends every message after it that it still holds; when it
//     holds nothing for this master target (a restarted process server)
//     or the gap cannot be filled, it falls back to a hash resync,
//     numbering from the resume point. StartFull and StartHashes start a
//     resync.
//   - Resync Step I: the disk in order, in chunks (Config.ChunkSize,
//     1 MiB). A full copy sends each chunk as ResyncData, or ZeroRange when
//     it reads as zeros; the next chunk is read while one is sent (its
//     dirty mark cleared before the read, as for any chunk step I reads). A hash resync first asks the master target for the
//     SHA-256 of a batch of chunks of its target (HashRequest,
//     HashResponse), hashes the same chunks of the source meanwhile (batch
//     after batch in the order asked, every CPU reading and hashing
//     pieces of 256 KiB), and sends only the chunks whose hash
//     differs. The master target drains its applier (and lands its direct
//     writes) before hashing only when data received since may lie in the
//     chunks asked for; it hashes beside the writes of the chunks compared
//     before. State(Resync Step I) reports progress.
//   - Resync Step II: every chunk changed while step I copied (a dirty
//     bitmap kept during step I) is sent again, read under the disk's
//     write lock so it is ordered after every change it holds. Changes
//     made during step II stream as Writes at once (a chunk is marked
//     only when the buffer is full), so one pass ends step II however
//     busy the source is; then State(Differential Sync).
//   - Differential Sync: each change a ChangeSource reports (Disk.Write,
//     Disk.Changed) becomes a Write, each Disk.Tag a Tag, numbered on.
//
// Data messages take credit from a wire.Window that the master target's
// Credit messages fill; a Heartbeat with the source clock and the latest
// sequence sent per disk goes out every Config.Heartbeat (for a disk only
// while it has sent every change reported so far: the source is current
// through that sequence at that time). Acks trim the
// unacknowledged buffer, bounded by Config.MaxUnacked (resync stops
// producing at the bound; a hash batch may pass it by one batch): a
// change that does not fit turns the stream into a hash resync of the
// disk instead (the source itself holds the data). Tags issued while a
// disk is resyncing are not sent: the target is not consistent then.
//
// A master target that pairs a disk of the list later, on its running
// connection (a PairAccept after the handshake: a pair added to it), gets
// that disk's stream started then, from the resume point it gives, beside
// the others.
//
// A master target whose pair of a disk has ended (a rollback) says so with
// a non-fatal Error CodeEnded for the disk: the server stops sending that
// disk on the connection and forgets its stream (a pair made afresh
// resyncs); the connection and its other disks go on untouched.
//
// # What is kept where
//
// Streams, their buffers and resync progress (position and dirty bitmap)
// live in memory only: a resync interrupted by a dropped connection
// resumes where it was, but a restarted process server resyncs each disk
// by hashes (cheap when the target is current). The memory of the chunks
// a resync reads is pooled per disk: a chunk's buffer is lent again once
// it is acknowledged and no sender is still writing it out. Nothing is written but
// the source disks, and only by the workload generator.
//
// # Change sources
//
// Scanner finds changes by hashing the source's chunks periodically (any
// disk, no driver needed); Workload writes the source itself,
// deterministically from a seed, and takes crash- and application-
// consistent tags on a schedule, recording the SHA-256 of the source at
// each so tests can check what the master target recovers.
package ps
