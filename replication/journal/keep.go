package journal

import (
	"sync"
	"sync/atomic"
)

// The groups a Log has just made durable are handed to its reader (the
// applier) as they are: the group commit writes them past the page cache
// (vfs.WriteAppend), so reading them back went to the disk, and the
// re-read and its copies were the largest share of the applier's CPU.
//
// A durable group's buffer is kept in the log, not copied, until the
// reader reaches its offset; the reader then decodes the records where
// they lie (adopt) and, once the caller releases them, gives the buffer
// back to the log, whose next groups are written into it. So a reader
// that keeps up moves no journal byte twice and the log allocates no
// fresh buffer in the steady state. (An earlier attempt copied each
// group into a cache and gained nothing: the copies cost what the reads
// saved.)
//
// Kept groups are bounded for the whole process (SetReadKeep, default
// DefaultReadKeep): pairs that keep up hold a group or two each, one pair
// behind may use the rest. The buffers the readers give back go to a
// pool shared by the Logs, bounded by the same figure, from which the next groups take theirs: a fresh buffer is
// faulted in and zeroed, which on a virtual machine costs about as much
// as the disk read it replaces. Past the budget a group's buffer is reused at
// once and the reader reads those bytes from the segment file, as it does
// after a restart or when it starts again behind (a retry): file reads
// stop where the next kept group starts, so the reader meets it whole.
// The bytes kept are the very bytes written at those offsets, decoded
// and CRC-checked the same way, and only once durable: what a reader
// sees never runs ahead of the disk. Groups the reader holds are not
// counted: that is the caller's batch, bounded by the caller.

// DefaultReadKeep is the process-wide bound of kept groups (and, apart,
// of the pooled buffers). It covers appliers that keep up, which hold a
// group or two each; an applier far behind reads the files. Larger
// budgets were measured on the 2-core test VM (apply_retention, 512 MiB
// written faster than applied): 64 and 128 MiB cost more CPU than the
// reads they saved, because memory a process touches for the first time
// is expensive there (about 8 ms per MiB) and the bigger budget is
// first-touch memory in a short run.
const DefaultReadKeep = 32 << 20

var readKeep struct {
	limit atomic.Int64
	used  atomic.Int64 // kept

	mu     sync.Mutex
	pool   [][]byte
	pooled int64
}

func init() { readKeep.limit.Store(DefaultReadKeep) }

// SetReadKeep sets the process-wide bound, in bytes, of the durable
// groups every Log keeps for its reader (0: none, every record is read
// from the files), and returns the previous bound. Groups kept already
// stay until read.
func SetReadKeep(bytes int64) int64 { return readKeep.limit.Swap(max(bytes, 0)) }

// keep hands a durable chunk to the reader if the budget has room, and
// reports whether it did. l.mu is held.
func (l *Log) keep(c *chunk) bool {
	n := int64(cap(c.data))
	if len(c.data) == 0 || l.closed {
		return false
	}
	if k := len(l.kept); k > 0 {
		last := l.kept[k-1]
		if c.seg < last.seg || c.seg == last.seg && c.off < last.off+int64(len(last.data)) {
			// Not after the last one: segment numbers used again (Skip);
			// what is kept is of the old ones.
			l.dropAllKept()
		}
	}
	if readKeep.used.Add(n) > readKeep.limit.Load() {
		readKeep.used.Add(-n)
		return false
	}
	l.keptBytes += n
	l.kept = append(l.kept, c)
	return true
}

// recycle keeps a group buffer for the next groups: allocating and
// faulting in a fresh one per group costs more than writing it. l.mu is
// held.
func (l *Log) recycle(b []byte) {
	if cap(b) <= 2*(l.o.MaxPending+1<<20) && len(l.free) < 4 {
		l.free = append(l.free, b[:0])
	}
}

// giveBack takes back the buffer of a group the reader has released:
// into the shared pool while the budget has room, else the log's own
// free list.
func (l *Log) giveBack(b []byte) {
	n := int64(cap(b))
	readKeep.mu.Lock()
	if readKeep.pooled+n <= readKeep.limit.Load() {
		readKeep.pool = append(readKeep.pool, b[:0])
		readKeep.pooled += n
		readKeep.mu.Unlock()
		return
	}
	readKeep.mu.Unlock()
	l.mu.Lock()
	l.recycle(b)
	l.mu.Unlock()
}

// pooled takes a buffer of at least n bytes from the shared pool, or
// returns nil.
func pooled(n int) []byte {
	readKeep.mu.Lock()
	defer readKeep.mu.Unlock()
	for i := len(readKeep.pool) - 1; i >= 0; i-- {
		if b := readKeep.pool[i]; cap(b) >= n {
			readKeep.pool = append(readKeep.pool[:i], readKeep.pool[i+1:]...)
			readKeep.pooled -= int64(cap(b))
			return b
		}
	}
	return nil
}

// dropKept lets go of the kept groups before offset off of segment seg:
// the reader has read past their start (from the file), or they were
// trimmed. l.mu is held.
func (l *Log) dropKept(seg uint64, off int64) {
	i := 0
	for ; i < len(l.kept); i++ {
		c := l.kept[i]
		if c.seg > seg || c.seg == seg && c.off >= off {
			break
		}
		l.unkeep(c)
		l.recycle(c.data)
	}
	clear(l.kept[:i])
	l.kept = l.kept[i:]
}

// dropAllKept lets go of every kept group (Close, Skip). l.mu is held.
func (l *Log) dropAllKept() {
	for _, c := range l.kept {
		l.unkeep(c)
	}
	clear(l.kept)
	l.kept = nil
}

func (l *Log) unkeep(c *chunk) {
	n := int64(cap(c.data))
	readKeep.used.Add(-n)
	l.keptBytes -= n
}

// feed gives the drained scanner sc the kept group that starts where it
// stands, or stops its file reads where the next one starts. l.mu is
// held.
func (l *Log) feed(sc *scanner) {
	at := sc.offset()
	l.dropKept(sc.seg, at)
	sc.limit = 0
	if len(l.kept) == 0 || l.kept[0].seg != sc.seg {
		return
	}
	c := l.kept[0]
	if c.off > at {
		sc.limit = c.off
		return
	}
	l.kept[0] = nil
	l.kept = l.kept[1:]
	l.unkeep(c)
	sc.adopt(c.data, c.off)
}
