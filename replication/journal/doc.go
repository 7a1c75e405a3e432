// Package journal holds the two logs of a replication pair and the
// catalogue beside them.
//
// # Records
//
// Both logs are sequences of records, each 8-byte aligned:
//
//	0  uint32  payload length
//	4  uint8   type (write, tag, end of segment, undo)
//	5  uint8   flags (1 resync, 2 zero)
//	6  uint16  zero
//	8  uint64  sequence
//	16 uint32  CRC-32C of the segment index, bytes 0-15 and the payload
//	20 uint32  zero
//	24 payload, zero-padded to a multiple of 8
//
// Write and undo payloads are offset (uint64), source time (int64 Unix
// nanoseconds) and the data, or, with the zero flag, the data's length
// (uint64): a zero range, a before-image of a hole; tag payloads are the time and three
// length-prefixed strings (name, application, id). Because the checksum
// covers the segment index, a record left over in a reused segment never
// passes for a record of the new one.
//
// # Redo log (Log)
//
// The inbound journal. Fixed-size segment files (NNNNNNNNNNNNNNNN.redo,
// a 32-byte header then records) are allocated once and reused: Trim turns
// a segment whose records are all applied into a spare, and the next new
// segment is a spare renamed and given a fresh header. Append queues
// records; one goroutine writes each group and fdatasyncs it once, then
// calls OnDurable with the highest sequence of the group: the cumulative
// acknowledgement (invariant 1: nothing is acknowledged before it is
// durable). After a failed write or fdatasync the log stops and every later
// Append fails (invariant 5). Groups of 4 MiB and more are written past the
// page cache (vfs.WriteAppend).
//
// The Reader (the applier) takes the groups just made durable from memory,
// without a copy: a durable group's buffer is kept in the log until the
// reader reaches its offset, and the reader decodes the records where they
// lie and, once released, gives the buffer back for later groups (keep.go).
// Kept groups are bounded for the whole process (SetReadKeep,
// DefaultReadKeep); past the budget, after a restart, or for a reader that
// starts again behind, records are read from the segment files as before,
// and those reads stop where the next kept group starts. Only durable
// groups are kept, and their bytes are decoded and checked like the
// file's, so a reader never sees more than the disk holds. Release lets go
// of what the reader returned before its current buffer;
// Mark/ReleaseBefore of one batch while the next is still held (the
// applier's batch in flight).
//
// Close, once everything appended is durable, writes a clean-end record
// (clean-end: each live segment's first sequence and end, the last
// record's place and sequence, CRC-32C), atomically. Open trusts it only
// if it matches the segments (the same ones, an End record where each
// full one ends, the last record where it says, nothing after it), and
// then reads no segment; it removes the record before anything is written
// again, so a crash after a reopen never finds a stale end. Damage to a
// cleanly closed log is then found by the Reader, which stops on it with
// ErrCorrupt.
//
// Without it (a crash), Open scans the segments from the one holding the
// applied position (Base+1) on; those before it are applied and only wait
// for Trim. A bad record in an earlier segment is corruption. In the last
// segment a torn tail is the end of the last group commit, and a group is
// written only once every group before it is durable: so a bad record is
// a torn tail, and cut, only when no valid record of the segment with a
// sequence that follows it lies anywhere after it in the segment (stale
// records of the file's earlier life fail their checksum, which covers the
// segment index). A valid record after it is acknowledged data behind
// damage: Open fails with ErrCorrupt naming the file, the offset and the
// sequences lost, and changes nothing, so it fails the same way again
// (invariant 4). Such a pair needs a resync: with its journal directory
// moved aside it resumes from the applied position and the process server,
// which holds acknowledgements past it, resyncs the disk by hashes.

// # Retention store (Store)
//
// The undo log: per pair, append-only segments (NNNNNNNNNNNNNNNN.undo) of
// before-images, and a bbolt catalogue (catalogue.db) of segments, recovery
// ranges, tags and the pair's applied position. The applier appends a
// batch's before-images, Syncs them, writes the target, and only then
// Commits the applied position (invariant 2). CommitStaged commits only
// what was appended up to a Staged point, so that a commit (the target's
// fdatasync, then the catalogue) may run while the next batch is appended.
// Undo records written after the last commit's point are batches a crash
// cut short: Uncommitted returns them so the target can be put back,
// DiscardUncommitted cuts them. Prune removes
// whole oldest segments only, keeps what locked tags need, what holds (Hold: an export) and pins
// hold (a point-in-time view: Pin, PinnedFrom; it says which pin held it
// back), and reports the earliest recoverable point truthfully (invariant
// 6). WatchAppends tells a reader (a view) where each before-image lands
// as it is appended, before the applier writes the target.
//
// The catalogue is verified before bbolt maps it (verifyCatalogue: meta
// pages, length, every reachable page in the file and well formed), its
// entries against their keys and the segment files, and its pair against
// the directory's pair.id; bbolt calls run with panics and memory faults
// turned into ErrCatalogueCorrupt. A catalogue absent, empty or never
// initialised beside undo segments is ErrCatalogueMissing: the applied
// position is unknown, and a fresh catalogue would undo the whole history
// onto the target. Both errors name the file and what to do, and change
// nothing.
//
// # Sparse retention (compact.go, tiers.go)
//
// A policy's Tiers (the original's cdp_policies) keep every write for the
// first tier, then in each later one the first Count tags (of App, when
// set) of every Granularity-long stretch of UTC time; ValidateTiers holds
// the original's rules. Compact rewrites the segments wholly older than
// the first tier: with the kept points p0 < … < pk (kept tags, locked
// tags, tags not yet in a sparse tier) and Upto the last sequence
// rewritten, the image of pi is the target with, per byte, the oldest
// before-image after pi laid over it; so per stretch (pi, pi+1] only the
// oldest before-image of each byte is needed (cut to the bytes it wins),
// and nothing at or before p0. The new segments keep the old indices
// with a generation in their names (NNNNNNNNNNNNNNNN.gG.undo); a
// segment's FirstSeq-1 is the kept point its first stretch leads to, so
// Earliest and Prune stay truthful. The switch is crash-safe: new files
// written, synced, the directory synced, then one catalogue transaction
// (segments, tags removed to the compacted bucket, the sparse state,
// version 2), then the old files removed; OpenStore removes whichever
// side a crash left uncatalogued. At or before SparseState.Upto only the
// kept tags are points: Reachable, SeqAt and CompactedTag refuse the
// others naming the nearest kept points.
//
// Hold(from) pins the records after from against Prune and Compact for a
// reader (an export, a point-in-time view): writer.Pair.Hold takes
// Hold(0) for its work, and the compactor runs beside the applier.
//
// All segment I/O goes through vfs.FS, so tests crash it at every sync
// point. bbolt does its own I/O; its commits are atomic and durable, and the
// Hook option lets tests cut a transaction at the same crash points.
package journal
