package ps

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// DefaultAddr is where a process server listens unless told otherwise.
const DefaultAddr = ":9443"

// MaxChunk is the largest chunk size: a ZeroRange covers at most one
// chunk, and the master target journals it as one record of zeros.
const MaxChunk = 4 << 20

// DiskConfig names one source disk.
type DiskConfig struct {
	Name string // what master targets pair it by
	Path string // regular file or block device
	// AppConsistentInterval is how often the source host takes an
	// application-consistent tag, reported to master targets in the disk
	// list (discovery); 0: none reported. Whole seconds.
	AppConsistentInterval time.Duration
}

// Config configures a Server.
type Config struct {
	Key              wire.Key
	Cert             tls.Certificate
	HostID, HostName string
	Disks            []DiskConfig
	// ChunkSize is the resync and hash unit (1 MiB; a multiple of 4 KiB,
	// at most MaxChunk).
	ChunkSize int
	// HashBatch is the number of chunks per HashRequest (64).
	HashBatch int
	// MaxUnacked bounds the bytes kept for resending per stream (64 MiB).
	MaxUnacked int64
	// Heartbeat is the heartbeat interval (1 s).
	Heartbeat time.Duration
	// IdleTimeout ends a connection that sent nothing, not even a
	// heartbeat (the agent sends one a second), for this long (30 s).
	IdleTimeout time.Duration
	Logger      *slog.Logger
	// OnResume, when set, is told each time a master target attaches to a
	// disk: the sequence it resumes after and whether the stream was
	// renumbered from there (a resync begins; entries the master target
	// had not acknowledged are gone). Soak tests keep their oracle of the
	// sources' write order with it.
	OnResume func(disk string, seq uint64, renumbered bool)
}

// Server is a process server.
type Server struct {
	cfg   Config
	fp    wire.Fingerprint
	disks []*Disk
	wd    []wire.Disk

	mu    sync.Mutex
	conns map[*wire.Conn]struct{}
	wg    sync.WaitGroup
}

// CheckChunkSize says whether n bytes may be the resync and hash chunk
// size: a positive multiple of 4096 up to MaxChunk.
func CheckChunkSize(n int) error {
	if n <= 0 || n%4096 != 0 || n > MaxChunk {
		return fmt.Errorf("chunk size %d: must be a positive multiple of 4096 up to %d (%d MiB)", n, MaxChunk, MaxChunk>>20)
	}
	return nil
}

// New opens the disks of cfg.
func New(cfg Config) (*Server, error) {
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = 1 << 20
	}
	if err := CheckChunkSize(cfg.ChunkSize); err != nil {
		return nil, fmt.Errorf("ps: %w", err)
	}
	if cfg.HashBatch <= 0 {
		cfg.HashBatch = 64
	}
	if cfg.MaxUnacked <= 0 {
		cfg.MaxUnacked = 64 << 20
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Cert.Certificate) == 0 {
		return nil, errors.New("ps: no certificate")
	}
	if len(cfg.Disks) == 0 {
		return nil, errors.New("ps: no disks to serve")
	}
	paths := map[string]string{}
	for _, dc := range cfg.Disks {
		// a master target pairs by name: two disks of one name would be
		// one target written from two sources
		if p, dup := paths[dc.Name]; dup {
			return nil, fmt.Errorf("ps: disk name %q given twice (%s and %s): give each disk its own name", dc.Name, p, dc.Path)
		}
		paths[dc.Name] = dc.Path
		if a := dc.AppConsistentInterval; a < 0 || a%time.Second != 0 || a/time.Second > math.MaxUint32 {
			return nil, fmt.Errorf("ps: disk %s: app-consistent interval %v: want whole seconds, 0 for none", dc.Name, a)
		}
	}
	s := &Server{cfg: cfg, fp: wire.CertFingerprint(cfg.Cert.Certificate[0]), conns: map[*wire.Conn]struct{}{}}
	for i, dc := range cfg.Disks {
		d, err := openDisk(uint32(i+1), dc, cfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.disks = append(s.disks, d)
		s.wd = append(s.wd, wire.Disk{ID: d.id, Name: d.name, Size: d.size, BlockSize: 4096, AppConsistentInterval: dc.AppConsistentInterval})
	}
	return s, nil
}

func openDisk(id uint32, dc DiskConfig, cfg Config) (*Disk, error) {
	if dc.Name == "" {
		return nil, fmt.Errorf("ps: disk %d (%s): no name", id, dc.Path)
	}
	f, err := vfs.OS.OpenFile(dc.Path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("ps: disk %s: %w", dc.Name, err)
	}
	size, err := f.Size()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("ps: disk %s: %s: %w", dc.Name, dc.Path, err)
	}
	if size <= 0 || size%4096 != 0 {
		f.Close()
		return nil, fmt.Errorf("ps: disk %s: %s is %d bytes, not a positive multiple of 4096", dc.Name, dc.Path, size)
	}
	return &Disk{id: id, name: dc.Name, path: dc.Path, f: f, size: size, chunk: int64(cfg.ChunkSize),
		maxUnacked: cfg.MaxUnacked, hashBatch: cfg.HashBatch, onResume: cfg.OnResume, streams: map[string]*stream{}}, nil
}

// Fingerprint is the fingerprint of the server's certificate, which
// admins compare on first use.
func (s *Server) Fingerprint() wire.Fingerprint { return s.fp }

// Disk returns the disk named name, or nil.
func (s *Server) Disk(name string) *Disk {
	for _, d := range s.disks {
		if d.name == name {
			return d
		}
	}
	return nil
}

// Disks returns the served disks.
func (s *Server) Disks() []*Disk { return s.disks }

// ListenAndServe listens on addr (DefaultAddr if empty) and serves until
// ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	if addr == "" {
		addr = DefaultAddr
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("ps: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts connections on ln (plain TCP: Serve adds TLS) until ctx
// ends, then closes ln and every connection and waits for their
// goroutines.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	tln := tls.NewListener(ln, wire.ServerTLSConfig(s.cfg.Cert))
	stop := context.AfterFunc(ctx, func() { tln.Close() })
	defer stop()
	defer s.wg.Wait()
	defer s.closeConns()
	for {
		nc, err := tln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("ps: accept: %w", err)
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := s.serveConn(ctx, nc)
			s.cfg.Logger.Info("connection ended", "remote", nc.RemoteAddr().String(), "err", err)
		}()
	}
}

func (s *Server) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// serveConn runs one master target's connection: the handshake, a sender
// per paired disk, heartbeats, and the receive loop for acks, credit and
// hash responses.
func (s *Server) serveConn(ctx context.Context, nc net.Conn) error {
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, err := wire.Server(hctx, nc, &wire.Config{Key: s.cfg.Key, Role: wire.RoleProcessServer,
		HostID: s.cfg.HostID, HostName: s.cfg.HostName, ServerCert: s.fp, Disks: s.wd})
	cancel()
	if err != nil {
		nc.Close()
		return err
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	sess := c.Session()
	s.cfg.Logger.Info("master target connected", "host", sess.Peer.HostName, "id", sess.Peer.HostID, "pairs", len(sess.Pairs))

	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	win := wire.NewWindow(0)
	defer win.Close()
	cs := &connStreams{streams: map[uint32]*stream{}, atts: map[uint32]attachment{}, stop: map[uint32]context.CancelFunc{}}
	var wg sync.WaitGroup
	// The first failure of a disk's sender ends the connection.
	errc := make(chan error, 1)
	// start runs disk p's sender; the receive loop calls it for a disk
	// paired after the handshake (a PairAccept), the others go on.
	cs.start = func(p wire.Pair) {
		d := s.disks[p.Disk-1]
		st := d.stream(sess.Peer.HostID)
		att := st.attach(p)
		sctx, stop := context.WithCancel(cctx)
		cs.mu.Lock()
		cs.streams[p.Disk], cs.atts[p.Disk], cs.stop[p.Disk] = st, att, stop
		cs.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A disk the master target ended stops alone (sctx), the
			// connection goes on.
			if err := st.run(sctx, c, win, att); err != nil && sctx.Err() == nil {
				select {
				case errc <- fmt.Errorf("disk %s: %w", d.name, err):
				default:
				}
				c.Close()
			}
		}()
	}
	for _, p := range sess.Pairs {
		cs.start(p)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(s.cfg.Heartbeat)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
			}
			var hbs []wire.Message
			for id, st := range cs.live() {
				if seq, t, ok := st.current(); ok {
					hbs = append(hbs, &wire.Heartbeat{Time: t, Latest: []wire.DiskSeq{{Disk: id, Seq: seq}}})
				}
			}
			if len(hbs) == 0 {
				hbs = append(hbs, &wire.Heartbeat{Time: time.Now()})
			}
			if err := c.Send(hbs...); err != nil {
				return
			}
		}
	}()
	err = s.recvLoop(c, cs, win)
	ccancel()
	win.Close()
	c.Close()
	wg.Wait()
	select {
	case e := <-errc:
		return e
	default:
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// connStreams are the streams of one connection. The receive loop
// removes a disk the master target ended; the heartbeat loop reads them.
type connStreams struct {
	mu      sync.Mutex
	streams map[uint32]*stream
	atts    map[uint32]attachment
	stop    map[uint32]context.CancelFunc
	start   func(wire.Pair) // runs a disk's sender (serveConn)
}

// live returns the streams not ended, by disk id.
func (cs *connStreams) live() map[uint32]*stream {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return maps.Clone(cs.streams)
}

// end stops sending disk on this connection and forgets its stream: the
// master target's pair has ended, and a pair made afresh resyncs.
func (cs *connStreams) end(disk uint32) (*stream, bool) {
	cs.mu.Lock()
	st := cs.streams[disk]
	stop := cs.stop[disk]
	delete(cs.streams, disk)
	delete(cs.atts, disk)
	cs.mu.Unlock()
	if st == nil {
		return nil, false
	}
	stop()
	st.d.forget(st)
	return st, true
}

func (s *Server) recvLoop(c *wire.Conn, cs *connStreams, win *wire.Window) error {
	for {
		_ = c.NetConn().SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
		m, err := c.Recv()
		if err != nil {
			return c.Abort(err)
		}
		// Only this loop changes cs, so it reads cs without the lock.
		switch m := m.(type) {
		case *wire.Credit:
			win.Grant(m.Bytes)
		case *wire.Ack:
			if st := cs.streams[m.Disk]; st != nil {
				st.ack(m)
			}
		case *wire.HashResponse:
			if a, ok := cs.atts[m.Disk]; ok {
				a.hashResponse(m)
			}
		case *wire.Error:
			if m.Code == wire.CodeEnded && m.Disk != 0 {
				if st, ok := cs.end(m.Disk); ok {
					s.cfg.Logger.Info("the master target ended its pair: the disk is no longer sent to it", "disk", st.d.name, "host", st.host, "msg", m.Message)
				}
				continue
			}
			s.cfg.Logger.Warn("master target reports an error", "disk", m.Disk, "code", m.Code.String(), "msg", m.Message)
		case *wire.PairAccept:
			// Disks the master target pairs after the handshake (the
			// connection checked they are listed and not paired yet).
			for _, p := range m.Pairs {
				s.cfg.Logger.Info("master target paired a disk on its running connection", "disk", s.disks[p.Disk-1].name, "start", p.Start.String(), "seq", p.Seq)
				cs.start(p)
			}
		case *wire.Heartbeat:
		case *wire.TagRequest:
			s.tagDisks(m, cs.streams)
		default:
			return c.Abort(fmt.Errorf("ps: %w: %v", wire.ErrUnexpected, m.Type()))
		}
	}
}

// tagDisks issues the master target's tag on its disks at one point of
// their write order: every disk's write lock is held (in id order) while
// the tag goes into each stream, so no write lands on one disk between
// the tags of two.
func (s *Server) tagDisks(m *wire.TagRequest, streams map[uint32]*stream) {
	ids := slices.Clone(m.Disks)
	slices.Sort(ids)
	var ds []*stream
	for _, id := range ids {
		if st := streams[id]; st != nil {
			ds = append(ds, st)
		}
	}
	for _, st := range ds {
		st.d.mu.Lock()
	}
	defer func() {
		for _, st := range ds {
			st.d.mu.Unlock()
		}
	}()
	info := journal.TagInfo{Name: m.Name, App: m.App, ID: m.ID, Time: time.Now().UTC()}
	for _, st := range ds {
		if !st.tag(info) {
			s.cfg.Logger.Info("tag skipped: the disk is resyncing", "disk", st.d.name, "tag", m.Name)
		}
	}
}

// Close closes the disks. Call it after Serve has returned.
func (s *Server) Close() error {
	var first error
	for _, d := range s.disks {
		if err := d.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
