package wire

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is an established connection: the handshake is done and the paired
// disks are known. Send and Recv may run at the same time (one goroutine
// reading, any number sending); Send calls are serialized.
//
// Beyond what a Decoder checks, Recv enforces the protocol: each message
// type flows in one direction only (process server → master target for
// data, tags and states; back for acks, credit and hash responses), every
// disk a message names is paired, no write or range runs past the end of
// its disk (the size in the disk list), each disk's sequence (Write, Tag,
// ResyncData and ZeroRange share one) runs on by one from the resume
// point, and acknowledgements never go backwards nor past what was sent. Send checks the same rules on the way out. Any error leaves
// its side of the Conn unusable: close it (or Abort to tell the peer).
type Conn struct {
	nc   net.Conn
	role Role
	sess Session

	// disks are the paired disks: those of the handshake, and those a
	// PairAccept after it added (dmu guards the map; the fields of each
	// entry belong to the side named in their comment).
	dmu   sync.RWMutex
	disks map[uint32]*diskSeqs

	rmu  sync.Mutex
	dec  *Decoder
	rerr error

	wmu  sync.Mutex
	enc  *Encoder
	werr error

	closed atomic.Bool
}

type diskSeqs struct {
	size  int64         // from the disk list
	sent  atomic.Uint64 // write side: last disk sequence sent (read by Recv for acks)
	recvd uint64        // read side: last disk sequence received
	acked uint64        // read side: last cumulative ack received
}

func newConn(nc net.Conn, role Role) *Conn {
	return &Conn{nc: nc, role: role, enc: NewEncoder(nc), dec: NewDecoder(nc)}
}

// start records the session once the handshake is done.
func (c *Conn) start(s Session) {
	c.sess = s
	c.disks = make(map[uint32]*diskSeqs, len(s.Pairs))
	c.addPairs(s.Pairs)
}

// addPairs records pairs as paired, each from its resume point.
func (c *Conn) addPairs(ps []Pair) {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	for _, p := range ps {
		var size int64
		for _, d := range c.sess.Disks {
			if d.ID == p.Disk {
				size = d.Size
			}
		}
		d := &diskSeqs{size: size, recvd: p.Seq, acked: p.Seq}
		d.sent.Store(p.Seq)
		c.disks[p.Disk] = d
	}
}

// disk is the paired disk id, or nil.
func (c *Conn) disk(id uint32) *diskSeqs {
	c.dmu.RLock()
	defer c.dmu.RUnlock()
	return c.disks[id]
}

// Paired says whether disk id is paired on this connection (in the
// handshake or by a later PairAccept).
func (c *Conn) Paired(id uint32) bool { return c.disk(id) != nil }

// Session is what the handshake established. Its slices are shared: do
// not modify them. Pairs added later by a PairAccept are not in it
// (Paired).
func (c *Conn) Session() Session { return c.sess }

// NetConn is the underlying connection, for deadlines and addresses.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Send writes msgs as consecutive frames and flushes them.
func (c *Conn) Send(msgs ...Message) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed.Load() {
		return fmt.Errorf("wire: %w", ErrClosed)
	}
	if c.werr != nil {
		return c.werr
	}
	for _, m := range msgs {
		if err := c.send(m); err != nil {
			c.werr = err
			return err
		}
	}
	if err := c.enc.Flush(); err != nil {
		c.werr = err
		return err
	}
	return nil
}

func (c *Conn) send(m Message) error {
	d, seq, err := c.check(m, c.role)
	if err != nil {
		return fmt.Errorf("wire: send %v: %w", m.Type(), err)
	}
	if seq != 0 && seq != d.sent.Load()+1 {
		return fmt.Errorf("wire: send %v: %w: disk %d sequence %d, next is %d", m.Type(), ErrSequence, m.DiskID(), seq, d.sent.Load()+1)
	}
	if err := c.enc.Encode(m); err != nil {
		return err
	}
	if seq != 0 {
		d.sent.Store(seq)
	}
	if pa, ok := m.(*PairAccept); ok {
		c.addPairs(pa.Pairs)
	}
	return nil
}

// Recv reads the next message. A fatal Error from the peer comes back as
// the error (a *Error); a non-fatal one as a message. Byte slices of the
// message are the caller's, unless Config.ReuseBuffer was set: then they
// are valid until the next Recv.
func (c *Conn) Recv() (Message, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.rerr != nil {
		return nil, c.rerr
	}
	m, err := c.recv()
	if err != nil {
		if c.closed.Load() {
			err = fmt.Errorf("wire: %w (%w)", ErrClosed, err)
		}
		c.rerr = err
		return nil, err
	}
	if e, ok := m.(*Error); ok && e.Fatal {
		c.rerr = e
		return nil, e
	}
	return m, nil
}

func (c *Conn) recv() (Message, error) {
	m, err := c.dec.Decode()
	if err != nil {
		return nil, err
	}
	peer := c.sess.Peer.Role
	d, seq, err := c.check(m, peer)
	if err != nil {
		return nil, fmt.Errorf("wire: frame %d: %w", c.dec.Seq(), err)
	}
	switch m := m.(type) {
	case *Ack:
		if m.Seq < d.acked || m.Seq > d.sent.Load() {
			return nil, fmt.Errorf("wire: frame %d: ack: %w: disk %d acknowledged %d after %d, last sent %d", c.dec.Seq(), ErrSequence, m.Disk, m.Seq, d.acked, d.sent.Load())
		}
		d.acked = m.Seq
	case *State:
		if m.Seq > d.recvd {
			return nil, fmt.Errorf("wire: frame %d: state: %w: disk %d state after %d, last received %d", c.dec.Seq(), ErrSequence, m.Disk, m.Seq, d.recvd)
		}
	case *PairAccept:
		c.addPairs(m.Pairs)
	case *Heartbeat:
		for _, l := range m.Latest {
			if c.disk(l.Disk) == nil {
				return nil, fmt.Errorf("wire: frame %d: heartbeat: %w: disk %d", c.dec.Seq(), ErrUnknownDisk, l.Disk)
			}
		}
	}
	if seq != 0 {
		if seq != d.recvd+1 {
			return nil, fmt.Errorf("wire: frame %d: %v: %w: disk %d sequence %d, expected %d", c.dec.Seq(), m.Type(), ErrSequence, m.DiskID(), seq, d.recvd+1)
		}
		d.recvd = seq
	}
	return m, nil
}

// check applies the rules common to both directions to m, sent by a host
// of role from: the direction of its type, and its disk. It returns the
// disk's state and the disk sequence m carries (0 if none).
func (c *Conn) check(m Message, from Role) (*diskSeqs, uint64, error) {
	t := m.Type()
	if !sends(from, t) {
		return nil, 0, fmt.Errorf("%w: %v from a %v", ErrUnexpected, t, from)
	}
	disk := m.DiskID()
	if pa, ok := m.(*PairAccept); ok {
		// A pair added after the handshake: a disk of the list, not
		// paired yet (once ended, a disk is paired again only on a new
		// connection: what was sent for it may still be on its way).
		if err := checkPaired(c.sess.Disks, pa.Pairs); err != nil {
			return nil, 0, err
		}
		for _, p := range pa.Pairs {
			if c.disk(p.Disk) != nil {
				return nil, 0, fmt.Errorf("%w: %v: disk %d is already paired on this connection", ErrMalformed, t, p.Disk)
			}
		}
		return nil, 0, nil
	}
	if tr, ok := m.(*TagRequest); ok {
		for _, d := range tr.Disks {
			if c.disk(d) == nil {
				return nil, 0, fmt.Errorf("%w: %v for disk %d", ErrUnknownDisk, t, d)
			}
		}
	}
	if disk == 0 {
		return nil, 0, nil
	}
	d := c.disk(disk)
	if d == nil {
		return nil, 0, fmt.Errorf("%w: %v for disk %d", ErrUnknownDisk, t, disk)
	}
	var seq uint64
	var off, n int64 = 0, -1 // the range m touches, if any
	switch m := m.(type) {
	case *Write:
		seq, off, n = m.Seq, m.Offset, int64(len(m.Data))
	case *Tag:
		seq = m.Seq
	case *ResyncData:
		seq, off, n = m.Seq, m.Offset, int64(len(m.Data))
	case *ZeroRange:
		seq, off, n = m.Seq, m.Offset, m.Length
	case *HashRequest:
		off, n = m.Offset, 0 // its last chunks may run past the end, not its start
		if m.Algo == HashXXH3 && c.sess.Version < 2 {
			return nil, 0, fmt.Errorf("%w: %v %v on a protocol version %d connection (2 on)", ErrMalformed, t, m.Algo, c.sess.Version)
		}
	case *HashResponse:
		if m.Algo == HashXXH3 && c.sess.Version < 2 {
			return nil, 0, fmt.Errorf("%w: %v %v on a protocol version %d connection (2 on)", ErrMalformed, t, m.Algo, c.sess.Version)
		}
	}
	if n >= 0 && (off > d.size || n > d.size-off || (n == 0 && off == d.size && t == TypeHashRequest)) {
		return nil, 0, fmt.Errorf("%w: %v of %d bytes at %d on disk %d of %d bytes", ErrOutOfRange, t, n, off, disk, d.size)
	}
	return d, seq, nil
}

// sends reports whether a host of role r sends messages of type t once the
// handshake is done.
func sends(r Role, t Type) bool {
	switch t {
	case TypeHeartbeat, TypeError:
		return true
	case TypeResyncData, TypeZeroRange, TypeHashRequest, TypeState, TypeWrite, TypeTag:
		return r == RoleProcessServer
	case TypeHashResponse, TypeAck, TypeCredit, TypeTagRequest:
		return r == RoleMasterTarget
	case TypePairAccept:
		// After the handshake: a disk of the list paired later (a pair
		// added to a running master target).
		return r == RoleMasterTarget
	}
	return false // handshake messages
}

// Abort tells the peer why this side ends the connection (a fatal Error
// made by ErrorFor, unless err came from the peer), then closes it. It
// waits at most a second for the peer to take the message. It returns err.
func (c *Conn) Abort(err error) error {
	c.tell(err)
	_ = c.Close()
	return err
}

// tell sends the fatal Error for err, best effort and bounded in time.
func (c *Conn) tell(err error) {
	if err == nil || c.closed.Load() || errors.Is(err, ErrPeer) {
		return // nothing to say, or the peer already ended the connection
	}
	// The deadline also unblocks a Send stuck on a peer that stopped
	// reading, so the lock below is not held for long.
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.enc.Encode(ErrorFor(err)) == nil {
		_ = c.enc.Flush()
	}
	c.werr = ErrClosed
}

// Close closes the connection. Blocked Send and Recv calls return.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	return c.nc.Close()
}
