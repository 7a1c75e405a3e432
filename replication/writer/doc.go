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
// batch land in order. The target writes of a batch run in the background
// while the applier reads the next batch and captures its before-images:
// one batch in flight, its before-images already durable; where the next
// batch overlaps a write in flight its before-image is taken from that
// write's data, elsewhere from the target, which nothing in flight
// touches; the next batch's writes start only once the batch before has
// landed, and a commit, a hold, an error or a stop waits for them. After a
// crash in between, the oldest before-image of each byte puts it back.
// The batch after the one being staged is read from the journal
// meanwhile, on another goroutine that is waited for before the commit
// trims the journal. Memory: a busy pair holds up to three batches of
// journal data (the one in flight, the one captured, the one read ahead:
// 96 MiB at most) besides the before-image buffer; the journal's kept groups are bounded for the process
// (journal.SetReadKeep). Staged batches become the applied position together,
// with one fdatasync of the target and one catalogue commit, every undo
// segment or second (Options.CommitBytes, CommitInterval) and whenever the
// applier runs out of work. That commit runs on a goroutine of its own
// while the applier captures and appends the next batch: it waits for the
// writes of the batches it covers, fdatasyncs the target, and commits the
// before-images appended up to its start only (journal.Store.Staged,
// CommitStaged); the next batch's writes still start only once its own
// before-images are durable, and the applier trims the journal, counts
// and prunes once the commit is done. One commit runs at a time; a hold,
// an error, an idle applier or a stop waits for it. After a crash, or ENOSPC in the middle of this,
// the target is put back from the staged before-images and the batches are
// applied again. A journal that finds no room for a new segment makes
// acknowledgements wait (an alert says so) rather than fail.
//
// Pair.Hold stops the applier for work that reads the target and the
// retention store together (export, views): it hands them over only
// once every staged batch is committed, so the applied position read then
// covers every write on the target. (Handing them over before that commit
// was the cause of wrong live exports on a busy machine.) Pair.ReadTarget
// reads the target without stopping anything, for a reader that orders
// itself after the writes it must see (the agent's chunk hashes).
//
// Pair.Stalled (Writer.Stalled for all) tells an applier stuck inside one
// batch, on a hung target or retention volume, from one waiting for
// work, paused or held: the agent's systemd watchdog is fed only while no
// applier is stuck.
//
// A full resync's step I may skip the journal (Pair.WriteDirect) while
// the retention store holds no point it could make wrong: the chunks go
// straight to the target in batches of DirectBatchBytes, several writes
// of a batch in flight at once and past the page cache (O_DIRECT) where
// the target and the alignment allow (writes under 64 KiB, a hash
// resync's scattered blocks, go through it, and the commit's fdatasync
// writes them out together rather than one device round trip each), one batch written while the next
// gathers, the applier held per batch. WriteDirect copies each chunk into
// a pooled aligned buffer; Pair.WriteDirectBuf takes the caller's memory
// instead and, when it is aligned, writes from it without a copy, giving
// it back only once the write has landed (or was dropped). A zero range punches a hole in a
// file target (on a block device BLKZEROOUT; zeros written where neither
// works, vfs.Zero). Every DirectCommitBytes the batches written so far
// are fdatasynced and committed as applied (the ack, and where a killed
// pair resumes) beside the writes that follow: the commit waits for the
// batch it covers to land, not the receiver; what was only gathered is
// never acknowledged and comes again. A pause that lands while a stretch starts hands the write back
// to be journaled, as a paused pair journals everything.
//
// A Writer holds the pairs of a host and watches their retention volumes
// for low space. The volume is low when its free space falls below the
// trigger, 5 % of the volume by default (alert_threshold_percent, a
// policy setting of [defaults], a [[group]] or a [[pair]], or [agent] for
// all), clamped to 1–20 GiB but never above a tenth of a small volume,
// plus min_reserved_space_mb; purge pairs then lose their oldest segments
// and pause pairs stop, with an alert, until twice the trigger is free.
// On a retention volume shared by several groups each pair measures the
// volume's free space against its own group's trigger: the group with the
// highest threshold gives space back (purge) or pauses first, and a pair
// never purges because of another group's threshold. Segment sizes left at 0 follow the volume (a sixteenth,
// at most 64 MiB; redo at least 8 MiB, undo at least 1 MiB), a journal on
// the retention volume keeps room for itself, and a volume that cannot
// hold two redo segments and one undo segment is refused at open
// (ErrVolumeTooSmall). This is DESIGN §4's low-space rule made to fit
// small volumes.
package writer
