// Package recovery turns a retention store into images of the past.
//
// A Point (latest-tag, latest-time, latest-app-consistent, earliest,
// tag:NAME, tagid:ID, time:RFC3339) is resolved in one store or, for a group of
// pairs, to one multi-disk point (the newest tag every pair holds). Rollback
// rewrites the target in place and ends the pair; Export copies the target
// to a new file or device (copy_file_range where it can) and rolls the copy
// back, leaving the target alone. Both read the undo log forward from the
// point and write each byte once: the oldest before-image of a byte is its
// value at the point. The plan reads (and checks) the undo log in parts
// side by side, cut at segment boundaries and joined in order, before
// anything is written. Both report progress, honour cancellation, and leave
// nothing half-claimed: a rollback cut short stays RollingBack and is
// finished by running it again.
//
// A View is the image of a point without the copy: the same plan, kept as
// a map of which ranges come from which before-image, over the live
// target. It pins the before-images it reads (journal.Pin) and watches
// the ones the applier appends after it opened (journal.Store.
// WatchAppends): a block overwritten later is read from its before-image,
// which the applier appends before it writes the target, so a read that
// meets the new write on the target finds its before-image registered.
// A point sparse retention compacted away is refused. A reader going
// forward has the before-images and the target stretches between them
// asked of the kernel (fadvise WILLNEED) a bounded stretch ahead
// (viewReadAhead, 32 MiB of image): the view itself holds no data, only
// the map, which is O(before-images after the point).
// A Scratch makes a view writable with a capped copy-on-write overlay
// file, removed on close.
package recovery
