// Package writer is the master-target writer: per pair, writes are
// acknowledged once durable in the redo journal, then applied to the target
// in sequence order, in batches, with before-images captured in the
// retention store first.
//
// The promises, each tested:
//
//   - OnAck never reports a sequence that is not durable in the journal,
//     and nothing more is acknowledged after an I/O or fsync error on the
//     journal, the retention store or the target: the pair is Error, with
//     the device and offset in its reason, until it is reopened from disk.
//   - A before-image is durable before its write reaches the target; the
//     applied position is persisted only after both.
//   - OpenPair after a crash at any instant puts the target back to the
//     applied position from the cut batch's before-images, then re-applies
//     the journal: the target ends at its last acknowledged state.
//   - Writes beyond the target, out of sequence, or to a pair in error are
//     refused with a named error and change nothing; a resent sequence is a
//     duplicate and is dropped.
//   - ENOSPC on the retention volume follows the pair's policy: purge the
//     oldest segment and retry, or pause; either way an alert event says so.
//
// The applier works in batches (at most 32 MiB, 1024 records, one undo
// segment): it reads the batch's before-images from the target several at
// a time (Options.Parallel), appends them to the retention store and
// fdatasyncs it once, then writes the target; overlapping writes within a
// batch land in order. Staged batches become the applied position together,
// with one fdatasync of the target and one catalogue commit, every undo
// segment or second (Options.CommitBytes, CommitInterval) and whenever the
// applier runs out of work. After a crash, or ENOSPC in the middle of this,
// the target is put back from the staged before-images and the batches are
// applied again. A journal that finds no room for a new segment makes
// acknowledgements wait (an alert says so) rather than fail.
//
// A Writer holds the pairs of a host and watches their retention volumes
// for low space.
package writer
