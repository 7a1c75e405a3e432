package agent

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// The agent answers hash requests beside its receive loop, not in it: the
// process server asks for batches ahead (see ps/hashsync.go), and the
// data of the chunks it already compared keeps arriving and going to the
// journal while the target is hashed. One hasher per session answers in
// the order asked, which is the order the process server matches answers
// in. The receive loop still decides, in order, whether the pair must be
// drained first (data journaled or written directly in the range asked
// for since the last drain), so an answer is always the target as it is
// with everything received before the request on it. The hasher reads the
// target while the applier and the direct resync writes go on
// (writer.Pair.ReadTarget): they write only chunks already compared.

// hashQueueLen is how many requests wait for the hasher before the
// receive loop waits for it.
const hashQueueLen = 256

type hashJob struct {
	l    *link
	m    *wire.HashRequest
	size int64
}

// hasher is a session's hash answerer.
type hasher struct {
	jobs chan hashJob
	stop atomic.Bool // the receive loop is done: what is queued is dropped
	wg   sync.WaitGroup
	mu   sync.Mutex
	err  error // the first failure; the connection is closed for it
}

// queueHashes checks m in order with what the receive loop journaled and
// hands it to the session's hasher, started on first use.
func (c *Client) queueHashes(ctx context.Context, s *session, l *link, m *wire.HashRequest) error {
	if m.Algo != wire.HashSHA256 && m.Algo != wire.HashXXH3 {
		return fmt.Errorf("agent: disk %s: hash %v: %w", l.disk, m.Algo, wire.ErrMalformed)
	}
	s.dmu.RLock()
	size := s.size[m.Disk]
	s.dmu.RUnlock()
	cs := int64(m.ChunkSize)
	if m.Count > 0 && (m.Offset%cs != 0 || m.Offset+int64(m.Count-1)*cs >= size) {
		return fmt.Errorf("agent: disk %s: hashes of %d chunks of %d at %d: %w (disk of %d bytes)", l.disk, m.Count, cs, m.Offset, wire.ErrOutOfRange, size)
	}
	if err := s.hashErr(); err != nil {
		return err
	}
	e := s.pending[m.Disk]
	if e == nil || e.overlaps(m.Offset, int64(m.Count)*cs) {
		// Direct resync writes gathered but not yet on the target land
		// (and are committed) first; then what was journaled is applied.
		if err := l.pair.EndDirect(); err != nil {
			return &pairError{disk: l.disk, err: err}
		}
		if err := l.pair.SyncContext(ctx); err != nil {
			return &pairError{disk: l.disk, err: err}
		}
		if err := l.pair.Drain(ctx); err != nil {
			return &pairError{disk: l.disk, err: err}
		}
		s.pending[m.Disk] = &extent{}
	}
	if s.hasher == nil {
		h := &hasher{jobs: make(chan hashJob, hashQueueLen)}
		s.hasher = h
		seed := s.c.Session().HashSeed
		h.wg.Go(func() { c.hashLoop(ctx, s, h, seed) })
	}
	select {
	case s.hasher.jobs <- hashJob{l: l, m: m, size: size}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) hashLoop(ctx context.Context, s *session, h *hasher, seed uint64) {
	fail := func(err error) {
		h.mu.Lock()
		if h.err == nil {
			h.err = err
		}
		h.mu.Unlock()
		s.c.Close() // the receive loop ends, and returns h.err
	}
	var next *hashJob
	var buf []byte
	for {
		var j hashJob
		if next != nil {
			j, next = *next, nil
		} else {
			var ok bool
			if j, ok = <-h.jobs; !ok {
				return
			}
		}
		// The requests already queued for the same pair are answered
		// together, their answers sent in one flush (a chunk's
		// sub-chunks come in bursts).
		run := []hashJob{j}
	gather:
		for len(run) < hashQueueLen {
			select {
			case j2, ok := <-h.jobs:
				if !ok {
					break gather
				}
				if j2.l != j.l {
					next = &j2
					break gather
				}
				run = append(run, j2)
			default:
				break gather
			}
		}
		if ctx.Err() != nil || h.stop.Load() || s.hashErr() != nil || j.l.isEnded() {
			continue
		}
		resps, err := c.answerHashes(j.l, run, seed, &buf)
		if err == nil {
			err = s.c.Send(resps...)
		}
		if err != nil {
			if !j.l.isEnded() {
				fail(err)
			}
			continue
		}
		for _, m := range resps {
			r := m.(*wire.HashResponse)
			c.hashBytes.Add(int64(len(r.Hashes) * r.Algo.Size()))
		}
	}
}

// answerHashes hashes the target's chunks of each job of l's run, read
// while the applier runs on (writer.Pair.ReadTarget): the direct resync
// writes and the journaled data of the chunks already compared go to
// the target meanwhile, and the receive loop, which waits for them, keeps
// taking the next requests. What a request must see is on the target
// before it is queued (queueHashes drains the pair when data received
// since may lie in its range), and the process server sends nothing for
// a range it has asked about until it has the answer. buf is the
// hasher's, kept from one run to the next.
func (c *Client) answerHashes(l *link, run []hashJob, seed uint64, buf *[]byte) ([]wire.Message, error) {
	out := make([]wire.Message, 0, len(run))
	r := targetReader{l.pair}
	for _, j := range run {
		m := j.m
		cs := int(m.ChunkSize)
		// A piece for every CPU, each read and hashed on its own.
		if n := wire.HashBufSize(cs); len(*buf) < n {
			*buf = make([]byte, n)
		}
		h, err := wire.HashChunksAlgo(m.Algo, seed, r, m.Offset, cs, m.Count, j.size, *buf)
		if err != nil {
			return nil, &pairError{disk: l.disk, err: fmt.Errorf("target: %w", err)}
		}
		out = append(out, &wire.HashResponse{Disk: m.Disk, Algo: m.Algo, ChunkSize: m.ChunkSize, Offset: m.Offset, Hashes: h})
	}
	return out, nil
}

// targetReader reads a pair's target (writer.Pair.ReadTarget).
type targetReader struct{ p *writer.Pair }

func (r targetReader) ReadAt(b []byte, off int64) (int, error) { return r.p.ReadTarget(b, off) }

// hashErr is the hasher's failure, if any.
func (s *session) hashErr() error {
	if s.hasher == nil {
		return nil
	}
	s.hasher.mu.Lock()
	defer s.hasher.mu.Unlock()
	return s.hasher.err
}

// stopHasher waits for the hasher once the receive loop is done (it alone
// queues) and returns err, or the hasher's failure that ended the loop.
func (s *session) stopHasher(err error) error {
	if s.hasher == nil {
		return err
	}
	s.hasher.stop.Store(true)
	close(s.hasher.jobs)
	s.hasher.wg.Wait()
	if herr := s.hashErr(); herr != nil {
		return herr
	}
	return err
}
