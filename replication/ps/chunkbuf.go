package ps

import (
	"sync"
	"sync/atomic"
)

// chunkBuf is the memory of one chunk step I or II read from the source,
// lent from its disk's pool so that the next chunk reuses it instead of
// fresh memory (fresh pages cost a fault each as the read fills them).
// Its references are the unacknowledged buffer's entry, which holds one
// from append until the entry is trimmed or dropped, and each sender
// that took the entry, from taking it (under stream.mu) until its Send
// returned: the bytes go back to the pool only when neither holds them,
// so a message still referenced never sees its bytes change.
type chunkBuf struct {
	b    []byte // a whole chunk; the message holds b[:n]
	refs atomic.Int32
	pool *sync.Pool
}

// getChunkBuf lends a buffer of the disk's chunk size, one reference held.
func (d *Disk) getChunkBuf() *chunkBuf {
	cb, _ := d.bufs.Get().(*chunkBuf)
	if cb == nil || int64(len(cb.b)) != d.chunk {
		cb = &chunkBuf{b: make([]byte, d.chunk), pool: &d.bufs}
	}
	cb.refs.Store(1)
	return cb
}

// hold takes one more reference; cb may be nil (nothing lent).
func (cb *chunkBuf) hold() {
	if cb != nil {
		cb.refs.Add(1)
	}
}

// release drops one reference; the last one gives the buffer back. cb
// may be nil.
func (cb *chunkBuf) release() {
	if cb == nil {
		return
	}
	switch n := cb.refs.Add(-1); {
	case n == 0:
		cb.pool.Put(cb)
	case n < 0:
		// A reference dropped twice: the buffer may be in use, so it is
		// never lent again (left to the garbage collector).
		cb.refs.Store(-1 << 30)
	}
}
