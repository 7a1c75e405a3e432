package ps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// Disk is one served source disk. Its change sources report through
// Write, Changed and Tag; it fans them out to the streams of the master
// targets paired with it.
type Disk struct {
	id         uint32
	name, path string
	f          vfs.File
	size       int64
	chunk      int64
	maxUnacked int64
	hashBatch  int
	onResume   func(disk string, seq uint64, renumbered bool)

	mu      sync.Mutex // orders source writes with the streams' view of them
	streams map[string]*stream

	bufs sync.Pool // *chunkBuf: chunk buffers given back (chunkbuf.go)
}

// Name is the disk's name; Size its size in bytes.
func (d *Disk) Name() string { return d.name }

// Size is the disk's size in bytes.
func (d *Disk) Size() int64 { return d.size }

// ReadAt reads the source.
func (d *Disk) ReadAt(p []byte, off int64) (int, error) { return d.f.ReadAt(p, off) }

// Write writes data to the source at off and reports the change.
func (d *Disk) Write(off int64, data []byte, t time.Time) error {
	if off < 0 || off+int64(len(data)) > d.size {
		return fmt.Errorf("ps: disk %s: %w: offset %d length %d", d.name, wire.ErrOutOfRange, off, len(data))
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.f.WriteAt(data, off); err != nil {
		return fmt.Errorf("ps: disk %s: %w", d.name, err)
	}
	for _, s := range d.streams {
		s.changed(off, data, t)
	}
	return nil
}

// Changed reports that the source now holds data at off (a change made
// by someone else, found by a Scanner).
func (d *Disk) Changed(off int64, data []byte, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.streams {
		s.changed(off, data, t)
	}
}

// Tag issues a consistency tag after every change reported so far. It
// returns how many master targets will receive it: a stream that is
// resyncing skips tags.
func (d *Disk) Tag(tag journal.TagInfo) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, s := range d.streams {
		if s.tag(tag) {
			n++
		}
	}
	return n
}

// StreamStatus is a stream's state on the process server.
type StreamStatus struct {
	Host      string
	Phase     wire.PairState
	Done      int64
	Total     int64
	Next      uint64 // the sequence the next message takes
	Acked     uint64
	Unacked   int64 // bytes kept for resending
	Connected bool
}

// Status returns the disk's streams.
func (d *Disk) Status() []StreamStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []StreamStatus
	for _, s := range d.streams {
		out = append(out, s.status())
	}
	return out
}

// forget drops s: its master target ended the pair, so changes are no
// longer kept for it.
func (d *Disk) forget(s *stream) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.streams[s.host] == s {
		delete(d.streams, s.host)
	}
}

func (d *Disk) stream(host string) *stream {
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.streams[host]
	if s == nil {
		s = &stream{d: d, host: host, fresh: true, next: 1}
		s.cond = sync.NewCond(&s.mu)
		d.streams[host] = s
	}
	return s
}

// entry is a message kept until acknowledged. State entries carry the
// sequence they follow and are never counted.
type entry struct {
	msg   wire.Message
	seq   uint64 // data: its sequence; State: the sequence it follows
	data  bool
	cost  int64
	phase wire.PairState
	buf   *chunkBuf // the pooled memory msg's data is in, if any
}

type resync struct {
	hash   bool
	step   wire.PairState // StateResync1 or StateResync2
	pos    int64          // next chunk of step I
	cursor int64          // next chunk to look at in step II
	done   int64
	pipe   *hashPipe // step I of a hash resync on the current connection
}

// stream is one disk as one master target (by host id) receives it, kept
// across that host's connections.
type stream struct {
	d    *Disk
	host string

	mu        sync.Mutex
	cond      *sync.Cond
	fresh     bool // never paired: the target's content is unknown
	next      uint64
	acked     uint64
	log       []entry // unacknowledged, in order: seqs acked+1 .. next-1
	logBytes  int64
	sendIdx   int    // first entry not sent on the current connection
	gen       uint64 // connection generation: a newer attach retires the old sender
	connected bool
	rs        *resync
	dirty     []uint64   // chunks changed during resync
	overflow  bool       // changes did not fit the buffer: resync by hashes
	ahead     *readAhead // step I of a full resync: the next chunk, being read
}

// readAhead is a chunk of step I of a full resync read while the one
// before it is sent: reading the source and sending to the master target
// take turns otherwise, each waiting for the other. Its dirty mark was
// cleared before the read started, as sendChunk does, so a write that
// lands after the read marks it again and step II sends it.
type readAhead struct {
	rs   *resync
	ch   int64
	buf  *chunkBuf
	n    int64 // the chunk's length: buf.b[:n]
	err  error
	done chan struct{} // closed once buf and err are set
}

func (s *stream) nchunks() int64 { return (s.d.size + s.d.chunk - 1) / s.d.chunk }

func (s *stream) phase() wire.PairState {
	if s.rs != nil {
		return s.rs.step
	}
	if s.overflow {
		return wire.StateResync1
	}
	return wire.StateDiffSync
}

func (s *stream) status() StreamStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := StreamStatus{Host: s.host, Phase: s.phase(), Next: s.next, Acked: s.acked, Unacked: s.logBytes, Connected: s.connected}
	if s.rs != nil {
		st.Done, st.Total = s.rs.done, s.d.size
	}
	return st
}

// changed is called with d.mu held, after the source holds data at off.
func (s *stream) changed(off int64, data []byte, t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rs != nil {
		if s.rs.step == wire.StateResync2 && s.logBytes+int64(len(data)) <= s.d.maxUnacked {
			// Step II streams changes as they come, so it ends after one
			// pass over what step I left dirty however busy the source
			// is. A chunk step II sends later is read under d.mu, after
			// this write, and so includes it.
			w := &wire.Write{Disk: s.d.id, Seq: s.next, Offset: off, Time: t, Data: bytes.Clone(data)}
			s.appendLocked(entry{msg: w, seq: s.next, data: true, cost: int64(len(data)), phase: wire.StateResync2})
			return
		}
		// Step I (or a full buffer): mark the chunks; step II sends them
		// again.
		for c := off / s.d.chunk; c <= (off+int64(len(data))-1)/s.d.chunk; c++ {
			s.dirty[c/64] |= 1 << (c % 64)
		}
		return
	}
	if s.overflow || s.fresh {
		return // the coming resync reads the source afresh
	}
	if s.logBytes+int64(len(data)) > s.d.maxUnacked {
		// The gap could not be filled from memory: resync the disk by
		// hashes once what is buffered has gone out.
		s.overflow = true
		s.cond.Broadcast()
		return
	}
	w := &wire.Write{Disk: s.d.id, Seq: s.next, Offset: off, Time: t, Data: bytes.Clone(data)}
	s.appendLocked(entry{msg: w, seq: s.next, data: true, cost: int64(len(data)), phase: wire.StateDiffSync})
}

func (s *stream) tag(tag journal.TagInfo) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rs != nil || s.overflow || s.fresh {
		return false
	}
	m := &wire.Tag{Disk: s.d.id, Seq: s.next, Time: tag.Time, Name: tag.Name, App: tag.App, ID: tag.ID}
	s.appendLocked(entry{msg: m, seq: s.next, data: true, phase: wire.StateDiffSync})
	return true
}

// appendLocked numbers a data entry (seq == s.next) or queues a State.
func (s *stream) appendLocked(e entry) {
	if e.data {
		s.next++
	}
	s.log = append(s.log, e)
	s.logBytes += e.cost
	s.cond.Broadcast()
}

func (s *stream) stateLocked() {
	m := &wire.State{Disk: s.d.id, State: s.phase(), Seq: s.next - 1}
	if s.rs != nil {
		m.Done, m.Total = s.rs.done, s.d.size
	}
	s.appendLocked(entry{msg: m, seq: s.next - 1, phase: m.State})
}

// beginResyncLocked starts a resync numbered on from s.next.
func (s *stream) beginResyncLocked(hash bool) {
	s.rs = &resync{hash: hash, step: wire.StateResync1}
	s.dirty = make([]uint64, (s.nchunks()+63)/64)
	s.overflow = false
	s.stateLocked()
}

// attachment is a stream's part in one connection.
type attachment struct {
	gen   uint64
	state *wire.State
	hq    *hashQueue // this connection's hash answers only
}

// attach starts a connection for pair p: where it resumes, and whether a
// resync must start.
func (s *stream) attach(p wire.Pair) attachment {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.connected = true
	s.cond.Broadcast()
	a := p.Seq
	resume := p.Start == wire.StartStream && !s.fresh && a >= s.acked && a < s.next
	if !resume {
		// Renumber from the master target's resume point.
		s.releaseLocked(s.log)
		s.next, s.acked, s.log, s.logBytes = a+1, a, nil, 0
		s.fresh = false
		s.beginResyncLocked(p.Start != wire.StartFull)
		s.log = nil // the State is sent below
		s.logBytes = 0
	} else {
		s.trimLocked(a)
	}
	if s.d.onResume != nil {
		s.d.onResume(s.d.name, a, !resume)
	}
	s.sendIdx = 0
	ph := s.phase()
	if len(s.log) > 0 {
		ph = s.log[0].phase
	}
	st := &wire.State{Disk: s.d.id, State: ph, Seq: a}
	if s.rs != nil {
		st.Done, st.Total = s.rs.done, s.d.size
	}
	return attachment{gen: s.gen, state: st, hq: newHashQueue()}
}

func (s *stream) trimLocked(seq uint64) {
	n := 0
	for n < len(s.log) && (s.log[n].seq < seq || s.log[n].data && s.log[n].seq == seq) {
		s.logBytes -= s.log[n].cost
		n++
	}
	if n > 0 {
		s.releaseLocked(s.log[:n])
		s.log = append(s.log[:0:0], s.log[n:]...)
		s.sendIdx = max(0, s.sendIdx-n)
	}
	if seq > s.acked {
		s.acked = seq
	}
}

// takeLocked takes the next entry to send, holding its buffer until the
// caller releases it once sent (e.buf.release), whatever an ack trims
// meanwhile.
func (s *stream) takeLocked() entry {
	e := s.log[s.sendIdx]
	s.sendIdx++
	e.buf.hold()
	return e
}

// releaseLocked drops the buffer's references of entries leaving it.
func (s *stream) releaseLocked(es []entry) {
	for _, e := range es {
		e.buf.release()
	}
}

func (s *stream) ack(m *wire.Ack) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trimLocked(m.Seq)
	s.cond.Broadcast()
}

// current reports that the source was current at t through seq: the
// stream is in Differential Sync and has sent every change reported
// before t. The master target's RPO stops growing while the source is
// idle, and only then.
func (s *stream) current() (seq uint64, t time.Time, ok bool) {
	s.d.mu.Lock() // no change half-reported while we look
	defer s.d.mu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	t = time.Now()
	return s.next - 1, t, s.rs == nil && !s.overflow && !s.fresh && s.sendIdx == len(s.log)
}

func (a attachment) hashResponse(m *wire.HashResponse) { a.hq.put(m) }

var errSuperseded = errors.New("stream taken over by a newer connection")

// run sends the stream on c until ctx ends or c fails: first what the
// master target lacks of the buffer, then what resync produces or
// changes append.
func (s *stream) run(ctx context.Context, c *wire.Conn, win *wire.Window, a attachment) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	defer func() {
		s.mu.Lock()
		if s.gen == a.gen {
			s.connected = false
		}
		s.mu.Unlock()
	}()
	if err := c.Send(a.state); err != nil {
		return err
	}
	for {
		s.mu.Lock()
		var e entry
		have, produce := false, false
		for {
			if s.gen != a.gen {
				s.mu.Unlock()
				return errSuperseded
			}
			if ctx.Err() != nil {
				s.mu.Unlock()
				return ctx.Err()
			}
			if s.sendIdx < len(s.log) {
				e, have = s.takeLocked(), true
				break
			}
			if s.overflow && s.rs == nil {
				s.beginResyncLocked(true)
				continue
			}
			if s.rs != nil && s.logBytes < s.d.maxUnacked {
				produce = true
				break
			}
			s.cond.Wait()
		}
		s.mu.Unlock()
		if have {
			err := win.Take(ctx, e.cost)
			if err == nil {
				err = c.Send(e.msg)
			}
			e.buf.release()
			if err != nil {
				return err
			}
			continue
		}
		if produce {
			if err := s.produce(ctx, c, a); err != nil {
				return err
			}
		}
	}
}

// produce appends the next piece of the resync to the buffer.
func (s *stream) produce(ctx context.Context, c *wire.Conn, a attachment) error {
	gen := a.gen
	s.mu.Lock()
	rs := s.rs
	if s.gen != gen || rs == nil {
		s.mu.Unlock()
		return errSuperseded
	}
	step, pos, hash := rs.step, rs.pos, rs.hash
	s.mu.Unlock()
	n := s.nchunks()
	switch {
	case step == wire.StateResync1 && pos >= n:
		s.mu.Lock()
		rs.step, rs.cursor = wire.StateResync2, 0
		s.stateLocked()
		s.mu.Unlock()
		return nil
	case step == wire.StateResync1 && !hash:
		return s.sendChunk(rs, gen, pos)
	case step == wire.StateResync1:
		return s.produceHashes(ctx, c, a, rs)
	default: // step II: chunks changed since they were copied
		// d.mu before s.mu, as writes take them: no source write lands
		// between reading a chunk and numbering it, so the chunk is
		// ordered after every Write whose data it holds.
		s.d.mu.Lock()
		defer s.d.mu.Unlock()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.gen != gen || s.rs != rs {
			return errSuperseded
		}
		for i := int64(0); i < n; i++ {
			ch := (rs.cursor + i) % n
			if s.dirty[ch/64]&(1<<(ch%64)) != 0 {
				rs.cursor = ch
				s.mu.Unlock()
				err := s.sendChunk(rs, gen, ch)
				s.mu.Lock()
				rs.cursor = ch + 1
				return err
			}
		}
		// Nothing changed since it was copied: the target equals the
		// source as of s.next-1, and changes stream from here on.
		s.rs, s.dirty = nil, nil
		s.stateLocked()
		return nil
	}
}

// sendChunk reads chunk ch and appends it to the buffer (sendRange),
// step I's position moved past it. In step I of a full resync the next
// chunk is read meanwhile (readAhead), and chunk ch may have been read
// so by the call before.
func (s *stream) sendChunk(rs *resync, gen uint64, ch int64) error {
	off := ch * s.d.chunk
	n := min(s.d.chunk, s.d.size-off)
	s.mu.Lock()
	if s.gen != gen || s.rs != rs {
		s.mu.Unlock()
		return errSuperseded
	}
	step1 := rs.step == wire.StateResync1 && !rs.hash
	a := s.ahead
	s.ahead = nil
	if a != nil && (!step1 || a.rs != rs || a.ch != ch) {
		// Another chunk, or step II: read ch afresh, under d.mu. The
		// buffer goes back once its read is over.
		go func(a *readAhead) {
			<-a.done
			a.buf.release()
		}(a)
		a = nil
	}
	if a == nil {
		// Cleared before reading: a write that lands after this marks
		// the chunk again, so step II sends it.
		s.dirty[ch/64] &^= 1 << (ch % 64)
	}
	if step1 && ch+1 < s.nchunks() {
		s.ahead = s.readAheadLocked(rs, ch+1)
	}
	s.mu.Unlock()
	appended := func() {
		if rs.step == wire.StateResync1 {
			rs.pos = ch + 1
			rs.done = min(rs.pos*s.d.chunk, s.d.size)
			if rs.pos%16 == 0 || rs.pos == s.nchunks() {
				s.stateLocked()
			}
		}
	}
	if a == nil {
		return s.sendRange(rs, gen, off, n, appended)
	}
	<-a.done
	if a.err != nil {
		a.buf.release()
		return a.err
	}
	return s.appendRange(rs, gen, off, a.buf.b[:a.n], a.buf, appended)
}

// readAheadLocked clears chunk ch's dirty mark and starts reading it;
// s.mu is held.
func (s *stream) readAheadLocked(rs *resync, ch int64) *readAhead {
	s.dirty[ch/64] &^= 1 << (ch % 64)
	off := ch * s.d.chunk
	a := &readAhead{rs: rs, ch: ch, buf: s.d.getChunkBuf(), n: min(s.d.chunk, s.d.size-off), done: make(chan struct{})}
	go func() {
		defer close(a.done)
		if err := vfs.ReadFull(s.d.f, a.buf.b[:a.n], off); err != nil {
			a.err = fmt.Errorf("ps: disk %s: read at %d: %w", s.d.name, off, err)
		}
		if readAheadHook != nil {
			readAheadHook(ch)
		}
	}()
	return a
}

// readAheadHook, when set (tests), runs once a chunk read ahead has been
// read, before sendChunk may take it.
var readAheadHook func(ch int64)
