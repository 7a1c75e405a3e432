package ps

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// Step I of a hash resync is a pipeline: the stream keeps hashWindow
// batches of chunk hashes asked of the master target ahead of the one it
// compares, hashing the source's side of each while the master target
// hashes its own, so neither side waits for the other's round trip. A
// chunk whose hashes differ is compared again by sub-chunks of subChunk
// bytes (a second request, in the same pipeline), and only the sub-chunks
// that differ are sent: scattered small changes cost their own bytes, not
// their chunks'.
//
// The master target answers requests in the order it got them, so the
// answers are matched to the requests in order; anything else is a
// protocol error. Chunks are marked clean when their batch is asked for,
// before the source is read: a write that lands after marks its chunk
// dirty again, and step II sends the whole chunk.

const (
	// hashWindow is how many batches of chunk hashes are asked ahead.
	hashWindow = 4
	// subChunk is the unit of the second comparison, and of what is sent
	// of a chunk that differs. The smallest block a guest writes.
	subChunk = 4096
	// hashTimeout is how long an answer may take.
	hashTimeout = 2 * time.Minute
)

// hashPipe is a hash resync's step I on one connection.
type hashPipe struct {
	gen  uint64
	algo wire.HashAlgo
	seed uint64
	next int64        // next chunk to ask for
	asks []*hashAsk   // asked, not answered, in the order asked
	open []*hashBatch // batches not settled, in order
	bufs chan []byte  // free buffers for hashing the source
	// hashed is closed once the source's hashes of the last batch asked
	// are done: the next batch's start after it.
	hashed chan struct{}
	inBig  int    // batch asks in asks
	sub    []byte // askSub's read of a chunk
}

// hashBatch is the chunks [start, end) of one batch request: settled once
// its request and every sub-chunk request it led to are answered and what
// differs is queued.
type hashBatch struct {
	start, end int64
	pending    int
}

// hashAsk is one request in flight and the source's side of it.
type hashAsk struct {
	req   *wire.HashRequest
	batch *hashBatch
	sub   bool
	mine  chan hashResult
}

type hashResult struct {
	h   [][wire.HashSize]byte
	err error
}

// hashQueue holds a connection's hash answers for one stream until its
// sender takes them. It takes only as many as were asked for.
type hashQueue struct {
	mu    sync.Mutex
	asked int
	got   []*wire.HashResponse
	ready chan struct{}
}

func newHashQueue() *hashQueue { return &hashQueue{ready: make(chan struct{}, 1)} }

// asking counts a request sent.
func (q *hashQueue) asking() {
	q.mu.Lock()
	q.asked++
	q.mu.Unlock()
}

// put takes an answer; one nobody asked for is dropped.
func (q *hashQueue) put(m *wire.HashResponse) {
	q.mu.Lock()
	if q.asked == 0 {
		q.mu.Unlock()
		return
	}
	q.asked--
	q.got = append(q.got, m)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// take waits for the next answer.
func (q *hashQueue) take(ctx context.Context) (*wire.HashResponse, error) {
	t := time.NewTimer(hashTimeout)
	defer t.Stop()
	for {
		q.mu.Lock()
		if len(q.got) > 0 {
			m := q.got[0]
			q.got[0] = nil
			q.got = q.got[1:]
			q.mu.Unlock()
			return m, nil
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			return nil, errNoHashAnswer
		}
	}
}

var errNoHashAnswer = fmt.Errorf("no answer to a hash request in %v", hashTimeout)

// hashAlgo is the chunk hash a connection uses: XXH3 from protocol
// version 2 on, SHA-256 with a master target that speaks only version 1.
func hashAlgo(c *wire.Conn) (wire.HashAlgo, uint64) {
	if s := c.Session(); s.Version >= 2 {
		return wire.HashXXH3, s.HashSeed
	}
	return wire.HashSHA256, 0
}

// produceHashes advances step I of a hash resync by one answer: it asks
// for batches up to the window, then compares the oldest answer with the
// source and queues what differs.
func (s *stream) produceHashes(ctx context.Context, c *wire.Conn, a attachment, rs *resync) error {
	gen := a.gen
	n := s.nchunks()
	s.mu.Lock()
	if s.gen != gen || s.rs != rs {
		s.mu.Unlock()
		return errSuperseded
	}
	hp := rs.pipe
	if hp == nil || hp.gen != gen {
		// A new connection asks again from the first chunk not settled.
		algo, seed := hashAlgo(c)
		hp = &hashPipe{gen: gen, algo: algo, seed: seed, next: rs.pos, bufs: make(chan []byte, hashWindow)}
		rs.pipe = hp
	}
	s.mu.Unlock()
	for hp.inBig < hashWindow && hp.next < n {
		if err := s.askBatch(c, a, rs, hp, min(int64(s.d.hashBatch), n-hp.next)); err != nil {
			return err
		}
	}
	if len(hp.asks) == 0 {
		return fmt.Errorf("ps: disk %s: hash resync at chunk %d of %d with nothing asked", s.d.name, rs.pos, n)
	}
	ask := hp.asks[0]
	hp.asks = hp.asks[1:]
	if !ask.sub {
		hp.inBig--
	}
	resp, err := a.hq.take(ctx)
	if err != nil {
		return fmt.Errorf("ps: disk %s: %w", s.d.name, err)
	}
	req := ask.req
	if resp.Offset != req.Offset || len(resp.Hashes) != req.Count || resp.ChunkSize != req.ChunkSize || resp.Algo != req.Algo {
		return fmt.Errorf("ps: disk %s: %w: hash response for %d %v chunks of %d at %d, asked %d of %d at %d",
			s.d.name, wire.ErrUnexpected, len(resp.Hashes), resp.Algo, resp.ChunkSize, resp.Offset, req.Count, req.ChunkSize, req.Offset)
	}
	var mine hashResult
	select {
	case mine = <-ask.mine:
	case <-ctx.Done():
		return ctx.Err()
	}
	if mine.err != nil {
		return fmt.Errorf("ps: disk %s: %w", s.d.name, mine.err)
	}
	cs := int64(req.ChunkSize)
	for i := range req.Count {
		if mine.h[i] == resp.Hashes[i] {
			continue
		}
		off := req.Offset + int64(i)*cs
		if !ask.sub && cs > subChunk {
			if err := s.askSub(c, a, rs, hp, ask.batch, off); err != nil {
				return err
			}
			continue
		}
		if err := s.sendRange(rs, gen, off, min(cs, s.d.size-off), nil); err != nil {
			return err
		}
	}
	ask.batch.pending--
	return s.settle(rs, gen, hp)
}

// askBatch asks for the hashes of count chunks from hp.next.
func (s *stream) askBatch(c *wire.Conn, a attachment, rs *resync, hp *hashPipe, count int64) error {
	pos := hp.next
	req := &wire.HashRequest{Disk: s.d.id, Algo: hp.algo, ChunkSize: uint32(s.d.chunk), Offset: pos * s.d.chunk, Count: int(count)}
	s.mu.Lock()
	if s.gen != a.gen || s.rs != rs {
		s.mu.Unlock()
		return errSuperseded
	}
	// Cleared before the source is read: a write that lands after
	// marks its chunk again, so step II sends it.
	for ch := pos; ch < pos+count; ch++ {
		s.dirty[ch/64] &^= 1 << (ch % 64)
	}
	s.mu.Unlock()
	b := &hashBatch{start: pos, end: pos + count, pending: 1}
	ask := &hashAsk{req: req, batch: b, mine: make(chan hashResult, 1)}
	a.hq.asking()
	if err := c.Send(req); err != nil {
		return err
	}
	hp.next += count
	hp.asks = append(hp.asks, ask)
	hp.open = append(hp.open, b)
	hp.inBig++
	var buf []byte
	select {
	case buf = <-hp.bufs:
	default:
		buf = make([]byte, wire.HashBufSize(int(s.d.chunk)))
	}
	// The source's hashes while the master target works out its own,
	// one batch after the other in the order asked: a batch hashed on
	// every CPU is ready sooner than batches hashed side by side, and it
	// is the oldest that the answers are compared with first.
	prev, done := hp.hashed, make(chan struct{})
	hp.hashed = done
	go func() {
		defer close(done)
		if prev != nil {
			<-prev
		}
		h, err := wire.HashChunksAlgo(hp.algo, hp.seed, s.d.f, req.Offset, int(s.d.chunk), req.Count, s.d.size, buf)
		ask.mine <- hashResult{h, err}
		select {
		case hp.bufs <- buf:
		default:
		}
	}()
	return nil
}

// askSub asks for the sub-chunk hashes of the chunk at off, which
// differs, and works out the source's.
func (s *stream) askSub(c *wire.Conn, a attachment, rs *resync, hp *hashPipe, b *hashBatch, off int64) error {
	n := min(s.d.chunk, s.d.size-off)
	req := &wire.HashRequest{Disk: s.d.id, Algo: hp.algo, ChunkSize: subChunk, Offset: off, Count: int((n + subChunk - 1) / subChunk)}
	ask := &hashAsk{req: req, batch: b, sub: true, mine: make(chan hashResult, 1)}
	a.hq.asking()
	if err := c.Send(req); err != nil {
		return err
	}
	b.pending++
	hp.asks = append(hp.asks, ask)
	// Read now, after the chunk was marked clean: what it holds is at
	// least as new as what its batch hashed. Into the pipe's buffer, the
	// same every time: fresh memory a chunk costs page faults that cost
	// more than the read.
	if int64(cap(hp.sub)) < n {
		hp.sub = make([]byte, n)
	}
	buf := hp.sub[:n]
	if err := vfs.ReadFull(s.d.f, buf, off); err != nil {
		return fmt.Errorf("ps: disk %s: read at %d: %w", s.d.name, off, err)
	}
	h := make([][wire.HashSize]byte, req.Count)
	for i := range h {
		h[i] = wire.SumChunk(hp.algo, hp.seed, buf[i*subChunk:min(int64(i+1)*subChunk, n)])
	}
	ask.mine <- hashResult{h: h}
	return nil
}

// settle moves step I past the batches that are settled, in order.
func (s *stream) settle(rs *resync, gen uint64, hp *hashPipe) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || s.rs != rs {
		return errSuperseded
	}
	moved := false
	for len(hp.open) > 0 && hp.open[0].pending == 0 {
		rs.pos = hp.open[0].end
		hp.open = hp.open[1:]
		moved = true
	}
	if moved {
		rs.done = min(rs.pos*s.d.chunk, s.d.size)
		s.stateLocked()
	}
	return nil
}

// sendRange reads [off, off+n) of the source and appends it to the buffer:
// as ResyncData, or as a ZeroRange when it reads as zeros; then, s.mu
// held, calls appended (if not nil). It leaves the dirty marks and step
// I's position alone (sendChunk moves them: a part of a chunk is not the
// chunk).
func (s *stream) sendRange(rs *resync, gen uint64, off, n int64, appended func()) error {
	var cb *chunkBuf
	var b []byte
	if n <= s.d.chunk {
		cb = s.d.getChunkBuf()
		b = cb.b[:n]
	} else {
		b = make([]byte, n) // the message keeps it
	}
	if err := vfs.ReadFull(s.d.f, b, off); err != nil {
		cb.release()
		return fmt.Errorf("ps: disk %s: read at %d: %w", s.d.name, off, err)
	}
	return s.appendRange(rs, gen, off, b, cb, appended)
}

// appendRange appends b, read from the source at off, to the buffer, as
// sendRange does. cb, if not nil, is the pooled memory b is in, one
// reference held: the entry takes it over, or it is dropped here.
func (s *stream) appendRange(rs *resync, gen uint64, off int64, b []byte, cb *chunkBuf, appended func()) error {
	n := int64(len(b))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen || s.rs != rs {
		cb.release()
		return errSuperseded
	}
	if journal.IsZero(b) {
		s.appendLocked(entry{msg: &wire.ZeroRange{Disk: s.d.id, Seq: s.next, Offset: off, Length: n},
			seq: s.next, data: true, phase: rs.step})
		cb.release() // a ZeroRange holds no data
	} else {
		s.appendLocked(entry{msg: &wire.ResyncData{Disk: s.d.id, Seq: s.next, Offset: off, Data: b},
			seq: s.next, data: true, cost: n, phase: rs.step, buf: cb})
	}
	if appended != nil {
		appended()
	}
	return nil
}
