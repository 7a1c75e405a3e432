package agent

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtconsole/mtconsole/internal/backoff"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// MaxZeroRange is the longest ZeroRange accepted: it is journaled as one
// record of zeros.
const MaxZeroRange = 4 << 20

// PairConfig is one pair: the process server's disk by name, and the
// writer pair that receives it.
type PairConfig struct {
	Disk string
	// Group is the protected machine the pair belongs to: its disks
	// share tags and recover to one point. A pair in no [[group]] is a
	// group of its own, named by its id.
	Group string
	writer.PairConfig
}

// GroupConfig is a protected machine's setting beyond its pairs' policy.
type GroupConfig struct {
	Name string
	// ConsistencyInterval, when not 0, is how often the agent asks the
	// process server for a crash-consistent tag across the group's disks.
	ConsistencyInterval time.Duration
}

// Config configures a Client.
type Config struct {
	Addr             string // the process server, host:port
	Key              wire.Key
	Trust            *wire.TrustStore
	Confirm          wire.ConfirmFunc // trust a first-seen certificate (nil: never)
	HostID, HostName string
	Pairs            []PairConfig
	Groups           []GroupConfig // the file's [[group]] tables
	// HashResync asks for a hash resync, not a full copy, for a pair that
	// has journaled nothing yet: its target holds an older copy.
	HashResync bool
	// Writer configures the pairs' writer; OnAck is wrapped, not
	// replaced. Its Now (default time.Now) is the agent's clock too: the
	// time resync writes and heartbeats are stamped with.
	Writer writer.Options
	Space  writer.SpaceOptions
	// Credit is the flow-control credit granted at connection (32 MiB).
	Credit int64
	// MinBackoff and MaxBackoff bound the wait before dialing again
	// (100 ms, 30 s): each wait is drawn at random under a bound that
	// starts at MinBackoff and doubles up to MaxBackoff (internal/backoff).
	MinBackoff, MaxBackoff time.Duration
	// IdleTimeout ends a connection that brought nothing, not even a
	// heartbeat, for this long (30 s).
	IdleTimeout time.Duration
	// TagTimeout is how long Tag waits for its tags to come back (10 s).
	TagTimeout time.Duration
	// ConsistencyTicks, when set, are the times at which the consistency
	// loop looks for groups' tags that are due (tests); else a ticker
	// gives the time every second.
	ConsistencyTicks <-chan time.Time
	Logger           *slog.Logger
}

// State names, as admins know them: PairStatus.State is one of these,
// spelled by wire.PairState (the one list of pair-state names).
var (
	StateQueued   = wire.StateQueued.String()
	StateResync1  = wire.StateResync1.String()
	StateResync2  = wire.StateResync2.String()
	StateDiffSync = wire.StateDiffSync.String()
	// StateEnded is a pair rolled back (or being rolled back): it has left
	// the session and is no longer replicated (writer.HealthEnded).
	StateEnded = wire.StateEnded.String()
)

// PairStatus is a pair's replication state beside its writer status.
type PairStatus struct {
	Disk        string `json:"disk"`
	Group       string `json:"group"`
	State       string `json:"state"`
	ResyncDone  int64  `json:"resync_done_bytes"`
	ResyncTotal int64  `json:"resync_total_bytes"`
	Connected   bool   `json:"connected"`
	// AppConsistent is the source's application-consistent interval as
	// the process server reported it on the connection (0: none);
	// AppKnown is false while there is no connection.
	AppConsistent time.Duration `json:"-"`
	AppKnown      bool          `json:"-"`
	writer.PairStatus
}

// Stats counts what the client received, over all connections.
type Stats struct {
	Connections  int64
	ResyncBytes  int64 // ResyncData bytes
	ZeroBytes    int64 // bytes covered by ZeroRange
	WriteBytes   int64
	HashRequests int64
	HashBytes    int64 // chunk hashes sent back (their wire size)
}

type link struct {
	id   string // the pair's
	disk string
	cfg  PairConfig
	pair *writer.Pair // nil when it had ended before the agent started

	mu        sync.Mutex
	state     wire.PairState // 0: Queued
	done      int64
	total     int64
	connected bool
	// ended: the pair has left the session for good; what the process
	// server still sends for its disk is dropped.
	ended bool
	// removed: it ended because it left the configuration (RemovePair),
	// not by a rollback: its writer pair was closed, not ended.
	removed bool
}

func (l *link) isEnded() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended
}

// Client is the master target's session with one process server.
type Client struct {
	cfg Config
	w   *writer.Writer
	// payloads lends the memory resync chunks are received into; a
	// chunk written directly gives it back (direct).
	payloads *wire.PayloadPool

	// lmu guards links and byID: AddPair and RemovePair change them
	// while the agent runs.
	lmu   sync.RWMutex
	links map[string]*link // by disk name
	byID  map[string]*link // by pair id
	// pmu makes pairing a disk on the session one step (pairLater).
	pmu sync.Mutex
	// gmu guards groups (SetGroups): the consistency loop reads them.
	gmu    sync.Mutex
	groups []GroupConfig
	// added wakes a Run that has no pair left when one is added.
	added   chan struct{}
	backend *api.WriterBackend // Backend's, told of pairs added

	mu   sync.Mutex
	sess *session

	tmu  sync.Mutex
	tags map[string]*tagWait // by tag id: tags asked for, on their way

	// Run's cancel and end, so Close can stop it first
	rmu     sync.Mutex
	closing bool
	runStop context.CancelFunc
	running sync.WaitGroup

	resyncBytes, zeroBytes, writeBytes, hashReqs, conns atomic.Int64
	hashBytes                                           atomic.Int64
}

// New opens the writer pairs of cfg. Close closes them.
func New(cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("agent: no process server address")
	}
	if cfg.Trust == nil {
		return nil, errors.New("agent: no trust store")
	}
	if cfg.Credit <= 0 {
		cfg.Credit = 32 << 20
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(30*time.Second, cfg.MinBackoff)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.TagTimeout <= 0 {
		cfg.TagTimeout = defaultTagTimeout
	}
	if cfg.Writer.Now == nil {
		cfg.Writer.Now = time.Now
	}
	cfg.Pairs = slices.Clone(cfg.Pairs)
	for i := range cfg.Pairs {
		if cfg.Pairs[i].Group == "" {
			cfg.Pairs[i].Group = cfg.Pairs[i].ID // a group of its own
		}
	}
	c := &Client{cfg: cfg, payloads: wire.NewPayloadPool(), groups: slices.Clone(cfg.Groups), links: map[string]*link{}, byID: map[string]*link{}, tags: map[string]*tagWait{}, added: make(chan struct{}, 1)}
	o := cfg.Writer
	inner := o.OnAck
	o.OnAck = func(pair string, seq uint64) {
		if inner != nil {
			inner(pair, seq)
		}
		c.onAck()
	}
	if o.Logger == nil {
		o.Logger = cfg.Logger
	}
	c.w = writer.New(o, cfg.Space)
	ids := map[string]bool{}
	for _, pc := range cfg.Pairs {
		if pc.Disk == "" || c.links[pc.Disk] != nil || ids[pc.ID] {
			c.w.Close()
			return nil, fmt.Errorf("agent: pair %s: disk name %q empty or paired twice, or the id used twice", pc.ID, pc.Disk)
		}
		ids[pc.ID] = true
		c.links[pc.Disk] = &link{id: pc.ID, disk: pc.Disk, cfg: pc}
	}
	// Open the pairs in parallel: each reads its journal and retention
	// store, and the process server buffers meanwhile.
	pairs := make([]*writer.Pair, len(cfg.Pairs))
	errs := make([]error, len(cfg.Pairs))
	sem := make(chan struct{}, 4*runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for i, pc := range cfg.Pairs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			pairs[i], _, errs[i] = c.w.Open(pc.PairConfig)
			if errors.Is(errs[i], writer.ErrEnded) {
				// A pair rolled back stays ended: it is reported (the
				// writer keeps it as ended) and skipped, and the others run.
				cfg.Logger.Warn("pair has ended and is skipped: it is no longer replicated; remove its [[pair]] from agent.toml (protect the disk again to replicate it anew)",
					"pair", pc.ID, "disk", pc.Disk, "err", errs[i])
				c.links[pc.Disk].ended = true
				errs[i] = nil
			}
		})
	}
	wg.Wait()
	for i, pc := range cfg.Pairs {
		if errors.Is(errs[i], journal.ErrCatalogueMissing) || errors.Is(errs[i], journal.ErrCatalogueCorrupt) {
			// One pair's damaged retention catalogue does not take the
			// others down: the error names the file and what to do.
			cfg.Logger.Error("pair not started: its retention catalogue is missing or damaged", "pair", pc.ID, "disk", pc.Disk, "err", errs[i])
			delete(c.links, pc.Disk)
			errs[i] = nil
		}
	}
	if err := errors.Join(errs...); err != nil {
		c.w.Close()
		return nil, fmt.Errorf("agent: %w", err)
	}
	for i, pc := range cfg.Pairs {
		l := c.links[pc.Disk]
		if l == nil {
			continue // not started
		}
		l.pair = pairs[i]
		c.byID[pc.ID] = l
	}
	return c, nil
}

// Pair returns the writer pair of disk, or nil (none, or ended).
func (c *Client) Pair(disk string) *writer.Pair {
	c.lmu.RLock()
	l := c.links[disk]
	c.lmu.RUnlock()
	if l != nil && !l.isEnded() {
		return l.pair
	}
	return nil
}

// link is pair id's link, or nil.
func (c *Client) link(id string) *link {
	c.lmu.RLock()
	defer c.lmu.RUnlock()
	return c.byID[id]
}

// pairLinks are the links by pair id, a copy.
func (c *Client) pairLinks() map[string]*link {
	c.lmu.RLock()
	defer c.lmu.RUnlock()
	return maps.Clone(c.byID)
}

// live is the number of pairs not ended.
func (c *Client) live() int {
	c.lmu.RLock()
	defer c.lmu.RUnlock()
	n := 0
	for _, l := range c.links {
		if !l.isEnded() {
			n++
		}
	}
	return n
}

// pairCount is the number of pairs the agent has, ended or not.
func (c *Client) pairCount() int {
	c.lmu.RLock()
	defer c.lmu.RUnlock()
	return len(c.links)
}

// End ends pair id, before a rollback: the pair leaves the session at
// once (the process server is told it no longer wants the disk, and what
// it still sends for it is dropped), the other pairs stream on
// undisturbed, and the writer ends the pair with reason (writer.Writer.End),
// so the status reports it ended. Ending an ended pair changes only its
// reason. An ended pair stays ended: a restarted agent skips it.
func (c *Client) End(id, reason string) error {
	l := c.link(id)
	if l == nil {
		return fmt.Errorf("agent: no pair %q", id)
	}
	l.mu.Lock()
	was := l.ended
	l.ended, l.connected = true, false
	l.mu.Unlock()
	if !was {
		c.mu.Lock()
		s := c.sess
		c.mu.Unlock()
		if s != nil {
			s.release(c, l, reason)
		}
		c.cfg.Logger.Info("pair ended: it has left the session with the process server", "pair", id, "disk", l.disk, "reason", reason)
	}
	return c.w.End(id, reason)
}

// release tells the process server that the pairs of s that have ended no
// longer want their disks (each once); a session left with none ends.
func (s *session) release(c *Client, l *link, reason string) {
	live := 0
	for id, sl := range s.linked() {
		if !sl.isEnded() {
			live++
			continue
		}
		if l != nil && sl != l {
			continue
		}
		s.rmu.Lock()
		first := !s.released[id]
		s.released[id] = true
		s.rmu.Unlock()
		if first {
			// Best effort: a connection that fails here ends, and the
			// next one does not pair the disk.
			if err := s.c.Send(&wire.Error{Disk: id, Code: wire.CodeEnded, Message: "pair " + sl.id + " ended: " + reason}); err != nil {
				c.cfg.Logger.Debug("telling the process server a pair ended", "disk", sl.disk, "err", err)
			}
		}
	}
	if live == 0 {
		s.c.Close() // nothing left to receive: Run waits
	}
}

// Writer is the writer holding the pairs.
func (c *Client) Writer() *writer.Writer { return c.w }

// Status returns every pair's state, ended pairs too (StateEnded).
func (c *Client) Status() []PairStatus {
	var out []PairStatus
	links := c.pairLinks()
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	var app map[string]time.Duration // by disk name, from the connection's disk list
	if s != nil {
		app = map[string]time.Duration{}
		for _, d := range s.c.Session().Disks {
			app[d.Name] = d.AppConsistentInterval
		}
	}
	for _, ws := range c.w.Status() {
		l := links[ws.ID]
		if l == nil {
			continue
		}
		l.mu.Lock()
		ps := PairStatus{Disk: l.disk, Group: l.cfg.Group, State: l.state.String(), ResyncDone: l.done, ResyncTotal: l.total,
			Connected: l.connected, PairStatus: ws}
		ps.AppConsistent, ps.AppKnown = app[l.disk], app != nil
		if l.ended {
			ps.State, ps.ResyncDone, ps.ResyncTotal, ps.Connected = StateEnded, 0, 0, false
		}
		l.mu.Unlock()
		out = append(out, ps)
	}
	return out
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{Connections: c.conns.Load(), ResyncBytes: c.resyncBytes.Load(), ZeroBytes: c.zeroBytes.Load(),
		WriteBytes: c.writeBytes.Load(), HashRequests: c.hashReqs.Load(), HashBytes: c.hashBytes.Load()}
}

// Close stops Run, if it runs, and waits for it to return (a write
// waiting for room in a full journal gives up), then makes every pair's
// journal durable and closes the pairs.
func (c *Client) Close() error {
	c.rmu.Lock()
	c.closing = true
	if c.runStop != nil {
		c.runStop()
	}
	c.rmu.Unlock()
	c.running.Wait()
	return c.w.Close()
}

// permanent reports errors a new connection cannot mend.
func permanent(err error) bool {
	return errors.Is(err, wire.ErrAuth) || errors.Is(err, wire.ErrCertChanged) || errors.Is(err, wire.ErrUntrusted) ||
		errors.Is(err, wire.ErrTrustFile)
}

// pairError ends a connection because of a pair of this master target
// (its journal refused a write, its target a read), not the network or
// the peer: a new connection is likely to meet it again.
type pairError struct {
	disk string
	err  error
}

func (e *pairError) Error() string { return e.err.Error() }
func (e *pairError) Unwrap() error { return e.err }

// Run connects and streams until ctx ends or Close (then it returns nil), dialing
// again with backoff after every error but those a retry cannot mend.
// The backoff starts again from Config.MinBackoff only after a connection
// that was established and ended by the network or the peer; one ended by
// a pair of this side keeps it growing. Once every pair has ended, Run
// waits for ctx: there is nothing left to replicate.
func (c *Client) Run(ctx context.Context) error {
	c.rmu.Lock()
	if c.closing {
		c.rmu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.runStop = cancel
	c.running.Add(1)
	c.rmu.Unlock()
	defer c.running.Done()
	cdone := make(chan struct{})
	go func() {
		defer close(cdone)
		c.consistency(ctx)
	}()
	defer func() {
		cancel()
		<-cdone
	}()
	// Full jitter: master targets that lost the same process server do
	// not all dial it again in the same instant when it comes back.
	bo := backoff.New(c.cfg.MinBackoff, c.cfg.MaxBackoff)
	for {
		if c.live() == 0 {
			if c.pairCount() == 0 {
				c.cfg.Logger.Info("no pairs: waiting for a protection (mtconsole protect, or a [[pair]] in agent.toml and a reload)", "addr", c.cfg.Addr)
			} else {
				c.cfg.Logger.Warn("every pair has ended: nothing left to replicate; remove their [[pair]] from agent.toml", "addr", c.cfg.Addr)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-c.added: // a pair was added: connect for it
				continue
			}
		}
		established, err := c.connect(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("agent: %s: %w", c.cfg.Addr, err)
		}
		if c.live() == 0 {
			continue
		}
		var pe *pairError
		local := errors.As(err, &pe)
		if established && !local {
			bo.Reset()
		}
		within := bo.Ceiling()
		wait := bo.Next()
		if local {
			c.cfg.Logger.Warn("connection to the process server ended by a pair of this master target", "addr", c.cfg.Addr, "disk", pe.disk, "err", err, "retry_in", wait, "backoff", within)
		} else {
			c.cfg.Logger.Warn("connection to the process server ended", "addr", c.cfg.Addr, "err", err, "retry_in", wait, "backoff", within)
		}
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
	}
}

// session is one connection.
type session struct {
	c *wire.Conn
	// dmu guards disks, size, recvd and resume: a pair added while the
	// session runs is paired on it (pairLater).
	dmu    sync.RWMutex
	disks  map[uint32]*link
	size   map[uint32]int64
	recvd  map[uint32]*atomic.Uint64 // last sequence journaled per disk
	resume map[uint32]uint64
	kick   chan struct{}
	credit atomic.Int64 // bytes journaled, not yet granted again
	// grantAt is how much credit waits before the acker is woken to
	// grant it (a quarter of the window): on the tick alone, a sender
	// faster than the window per tick would wait for it.
	grantAt int64
	// pending is, per disk, the extent of the data journaled in this
	// session since the target was last drained; absent: unknown (drain
	// before hashing). Only the receive loop touches it.
	pending map[uint32]*extent

	rmu      sync.Mutex
	released map[uint32]bool // disks the process server was told ended

	hasher *hasher // answers hash requests; started by the first (hashsync.go)
}

// linked is the session's links by disk id, a copy.
func (s *session) linked() map[uint32]*link {
	s.dmu.RLock()
	defer s.dmu.RUnlock()
	return maps.Clone(s.disks)
}

// linkOf is disk id's link, or nil.
func (s *session) linkOf(id uint32) *link {
	s.dmu.RLock()
	defer s.dmu.RUnlock()
	return s.disks[id]
}

// extent is [lo, hi) of a disk; empty when lo >= hi.
type extent struct{ lo, hi int64 }

func (e *extent) add(off, n int64) {
	if e.lo >= e.hi {
		e.lo, e.hi = off, off+n
		return
	}
	e.lo, e.hi = min(e.lo, off), max(e.hi, off+n)
}

func (e *extent) overlaps(off, n int64) bool { return e.lo < e.hi && off < e.hi && e.lo < off+n }

// touched records data journaled for disk at [off, off+n).
func (s *session) touched(disk uint32, off, n int64) {
	if e := s.pending[disk]; e != nil {
		e.add(off, n)
	}
}

func (c *Client) onAck() {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

func (c *Client) connect(ctx context.Context) (bool, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", c.cfg.Addr)
	if err != nil {
		return false, err
	}
	tc := tls.Client(readBuffered{nc, bufio.NewReaderSize(nc, 256<<10)}, wire.ClientTLSConfig(c.cfg.Addr, c.cfg.Trust, c.cfg.Confirm))
	s := &session{disks: map[uint32]*link{}, size: map[uint32]int64{}, recvd: map[uint32]*atomic.Uint64{},
		resume: map[uint32]uint64{}, kick: make(chan struct{}, 1), grantAt: max(c.cfg.Credit/4, 1),
		pending: map[uint32]*extent{}, released: map[uint32]bool{}}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := wire.Client(hctx, tc, &wire.Config{Key: c.cfg.Key, Role: wire.RoleMasterTarget, PayloadPool: c.payloads,
		HostID: c.cfg.HostID, HostName: c.cfg.HostName, Accept: func(_ wire.Peer, ds []wire.Disk) ([]wire.Pair, error) {
			return c.accept(s, ds)
		}})
	cancel()
	if err != nil {
		tc.Close()
		return false, err
	}
	s.c = conn
	c.conns.Add(1)
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	ended := false
	for _, l := range s.linked() {
		l.mu.Lock()
		if l.ended {
			ended = true
		} else {
			l.connected, l.state = true, 0
		}
		l.mu.Unlock()
	}
	if ended {
		// Ended since it was accepted, before End could see this session.
		s.release(c, nil, "the pair has ended")
	}
	defer func() {
		c.mu.Lock()
		c.sess = nil
		c.mu.Unlock()
		for _, l := range s.linked() {
			l.mu.Lock()
			l.connected = false
			l.mu.Unlock()
			endDirect(c, l)
		}
	}()
	cctx, ccancel := context.WithCancel(ctx)
	defer ccancel()
	stop := context.AfterFunc(cctx, func() { conn.Close() })
	defer stop()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := c.acker(cctx, s); err != nil {
			conn.Close()
		}
	}()
	defer wg.Wait()
	defer ccancel()
	if err := conn.Send(&wire.Credit{Bytes: c.cfg.Credit}); err != nil {
		conn.Close()
		return true, err
	}
	// Pairs added while the handshake ran.
	c.pairLater()
	err = s.stopHasher(c.recvLoop(cctx, s))
	if ctx.Err() != nil {
		conn.Close()
		return true, nil
	}
	return true, conn.Abort(err)
}

func (c *Client) accept(s *session, ds []wire.Disk) ([]wire.Pair, error) {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	c.lmu.RLock()
	links := maps.Clone(c.links)
	c.lmu.RUnlock()
	var out []wire.Pair
	for _, d := range ds {
		if p, ok := c.pairOn(s, links[d.Name], d); ok {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("none of the offered disks is configured on this master target")
	}
	return out, nil
}

// pairOn makes l's pair of the process server's disk d on session s:
// where it resumes, recorded in s. It says no for no link, an ended one,
// or a target smaller than its source.
func (c *Client) pairOn(s *session, l *link, d wire.Disk) (wire.Pair, bool) {
	if l == nil || l.isEnded() {
		return wire.Pair{}, false
	}
	if tb := l.pair.Status().TargetBytes; tb < d.Size {
		c.cfg.Logger.Error("target smaller than its source disk: not paired", "disk", d.Name, "source_bytes", d.Size, "target_bytes", tb)
		return wire.Pair{}, false
	}
	seq := l.pair.Next() - 1
	start := wire.StartStream
	if seq == 0 {
		start = wire.StartFull
		if c.cfg.HashResync {
			start = wire.StartHashes
		}
	}
	r := &atomic.Uint64{}
	r.Store(seq)
	s.dmu.Lock()
	s.disks[d.ID] = l
	s.size[d.ID] = d.Size
	s.resume[d.ID] = seq
	s.recvd[d.ID] = r
	s.dmu.Unlock()
	return wire.Pair{Disk: d.ID, Start: start, Seq: seq}, true
}

// pairLater pairs, on the running session, the pairs not paired on it
// whose disks the process server listed (AddPair, or added while the
// handshake ran): one PairAccept, and the other pairs stream on. A disk
// that was paired on this session before (its pair removed, then added
// again) waits for the next connection, as does a disk the process
// server did not list.
func (c *Client) pairLater() {
	c.pmu.Lock()
	defer c.pmu.Unlock()
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return // the next connection's handshake pairs them
	}
	c.lmu.RLock()
	links := maps.Clone(c.links)
	c.lmu.RUnlock()
	paired := s.linked()
	var out []wire.Pair
	var added []*link
	listed := map[string]bool{}
	for _, d := range s.c.Session().Disks {
		listed[d.Name] = true
	}
	for name, l := range links {
		if !listed[name] && !l.isEnded() && !slices.ContainsFunc(slices.Collect(maps.Values(paired)), func(pl *link) bool { return pl == l }) {
			c.cfg.Logger.Warn("the process server did not offer this pair's disk on this connection: the pair waits, Queued, for a connection that offers it",
				"pair", l.id, "disk", name)
		}
	}
	for _, d := range s.c.Session().Disks {
		l := links[d.Name]
		if l == nil || l.isEnded() {
			continue
		}
		if pl, ok := paired[d.ID]; ok {
			if pl != l {
				c.cfg.Logger.Info("pair added again: it is paired on the next connection to the process server", "pair", l.id, "disk", l.disk)
			}
			continue
		}
		if p, ok := c.pairOn(s, l, d); ok {
			out = append(out, p)
			added = append(added, l)
		}
	}
	if len(out) == 0 {
		return
	}
	for _, l := range added {
		l.mu.Lock()
		if !l.ended {
			l.connected, l.state = true, 0
		}
		l.mu.Unlock()
	}
	if err := s.c.Send(&wire.PairAccept{Pairs: out}); err != nil {
		// The connection fails: the next one pairs them.
		c.cfg.Logger.Warn("pairing added pairs on the running connection", "err", err)
		return
	}
	for _, l := range added {
		c.cfg.Logger.Info("pair started on the running connection to the process server", "pair", l.id, "disk", l.disk)
	}
}

// acker sends cumulative acks as the journal commits, and credit for
// what was journaled.
func (c *Client) acker(ctx context.Context, s *session) error {
	last := map[uint32]uint64{}
	s.dmu.RLock()
	for id, seq := range s.resume {
		last[id] = seq
	}
	s.dmu.RUnlock()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	lastHB := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.kick:
		case <-t.C:
		}
		var msgs []wire.Message
		if time.Since(lastHB) >= time.Second {
			// Proves this side alive: the process server ends a
			// connection that stays silent longer than its idle timeout.
			lastHB = time.Now()
			msgs = append(msgs, &wire.Heartbeat{Time: c.cfg.Writer.Now()})
		}
		for id, l := range s.linked() {
			if l.isEnded() {
				continue
			}
			s.dmu.RLock()
			recvd, resume := s.recvd[id], s.resume[id]
			s.dmu.RUnlock()
			if _, ok := last[id]; !ok {
				last[id] = resume // paired after the acker started
			}
			d := l.pair.Durable()
			// Never past what this connection journaled: the ack covers
			// messages the process server sent on it.
			d = min(d, recvd.Load())
			if d <= last[id] {
				continue
			}
			last[id] = d
			st := l.pair.Status()
			a := &wire.Ack{Disk: id, Seq: d, Backlog: uint64(max(st.BacklogBytes, 0))}
			if fs := c.cfg.Writer.FS; fs != nil {
				a.FreeJournal, _, _ = fs.Free(l.cfg.JournalDir)
			} else {
				a.FreeJournal, _, _ = vfs.OS.Free(l.cfg.JournalDir)
			}
			msgs = append(msgs, a)
		}
		if n := s.credit.Swap(0); n > 0 {
			msgs = append(msgs, &wire.Credit{Bytes: n})
		}
		if len(msgs) > 0 {
			if err := s.c.Send(msgs...); err != nil {
				return err
			}
		}
	}
}

var zeros = make([]byte, MaxZeroRange)

// recvAhead is how many messages are received (read, decrypted,
// checked) ahead of the one being handled: the next chunk of a resync
// comes off the wire while the last one is written to the target.
const recvAhead = 4

// received is one Recv's outcome.
type received struct {
	m   wire.Message
	err error
}

// receive reads s's messages into a channel, recvAhead at most waiting,
// until Recv fails (its error is the last item) or done closes. The
// caller closes the connection once it stops reading, which ends a Recv
// in progress.
func (c *Client) receive(s *session, done <-chan struct{}) <-chan received {
	in := make(chan received, recvAhead)
	go func() {
		for {
			_ = s.c.NetConn().SetReadDeadline(time.Now().Add(c.cfg.IdleTimeout))
			m, err := s.c.Recv()
			select {
			case in <- received{m, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return in
}

func (c *Client) recvLoop(ctx context.Context, s *session) error {
	done := make(chan struct{})
	defer close(done)
	in := c.receive(s, done)
	for {
		r := <-in
		if r.err != nil {
			return r.err
		}
		m := r.m
		var l *link
		if id := m.DiskID(); id != 0 {
			l = s.linkOf(id)
		}
		if l != nil && l.isEnded() {
			s.drop(m)
			continue
		}
		if err := c.handle(ctx, s, l, m); err != nil {
			// A pair ended while its message was at it (End closed it):
			// that message is dropped, not the connection.
			if l != nil && l.isEnded() {
				s.drop(m)
				continue
			}
			return err
		}
	}
}

// drop forgets a message for a disk whose pair has ended (the process
// server sent it before it learned so), granting its credit again.
func (s *session) drop(m wire.Message) {
	switch m := m.(type) {
	case *wire.ResyncData:
		s.grant(int64(len(m.Data)))
	case *wire.Write:
		s.grant(int64(len(m.Data)))
	}
}

// handle takes one message; l is the link of its disk, if any. Errors of
// l's pair come back as *pairError.
func (c *Client) handle(ctx context.Context, s *session, l *link, m wire.Message) error {
	local := func(err error) error {
		if err == nil {
			return nil
		}
		return &pairError{disk: l.disk, err: err}
	}
	switch m.(type) {
	case *wire.ResyncData, *wire.ZeroRange:
		if done, err := c.direct(ctx, s, l, m); done || err != nil {
			return err
		}
	}
	switch m := m.(type) {
	case *wire.ResyncData:
		// Resync writes are flagged: points inside a resync are not
		// consistent.
		if err := l.pair.WriteContext(ctx, m.Seq, m.Offset, c.cfg.Writer.Now(), m.Data, journal.FlagResync); err != nil {
			return local(err)
		}
		c.resyncBytes.Add(int64(len(m.Data)))
		s.touched(m.Disk, m.Offset, int64(len(m.Data)))
		s.journaled(m.Disk, m.Seq, int64(len(m.Data)))
	case *wire.ZeroRange:
		if m.Length > MaxZeroRange {
			return fmt.Errorf("agent: disk %s: zero range of %d bytes at %d: more than %d: %w", l.disk, m.Length, m.Offset, MaxZeroRange, wire.ErrMalformed)
		}
		// One wire sequence, one journal record: the zeros are
		// written as one write.
		if err := l.pair.WriteContext(ctx, m.Seq, m.Offset, c.cfg.Writer.Now(), zeros[:m.Length], journal.FlagResync|journal.FlagZero); err != nil {
			return local(err)
		}
		c.zeroBytes.Add(m.Length)
		s.touched(m.Disk, m.Offset, m.Length)
		s.journaled(m.Disk, m.Seq, 0)
	case *wire.Write:
		if err := l.pair.WriteContext(ctx, m.Seq, m.Offset, m.Time, m.Data, 0); err != nil {
			return local(err)
		}
		c.writeBytes.Add(int64(len(m.Data)))
		s.touched(m.Disk, m.Offset, int64(len(m.Data)))
		s.journaled(m.Disk, m.Seq, int64(len(m.Data)))
	case *wire.Tag:
		if err := l.pair.TagContext(ctx, m.Seq, journal.TagInfo{Name: m.Name, App: m.App, ID: m.ID, Time: m.Time}); err != nil {
			return local(err)
		}
		s.journaled(m.Disk, m.Seq, 0)
		c.tagArrived(l.pair.ID(), m.ID, m.Seq)
	case *wire.HashRequest:
		c.hashReqs.Add(1)
		if err := c.queueHashes(ctx, s, l, m); err != nil {
			return err
		}
	case *wire.State:
		l.mu.Lock()
		l.state, l.done, l.total = m.State, m.Done, m.Total
		l.mu.Unlock()
		if m.State != wire.StateResync1 {
			// Step I is over: its last direct writes are acknowledged
			// now, not when something is journaled next.
			if err := l.pair.EndDirect(); err != nil {
				return local(err)
			}
		}
	case *wire.Heartbeat:
		for _, ds := range m.Latest {
			if hl := s.linkOf(ds.Disk); hl != nil && !hl.isEnded() {
				hl.pair.Heartbeat(ds.Seq, m.Time)
			}
		}
	case *wire.Error:
		c.cfg.Logger.Warn("process server reports an error", "disk", m.Disk, "code", m.Code.String(), "msg", m.Message)
	default:
		return fmt.Errorf("agent: %w: %v", wire.ErrUnexpected, m.Type())
	}
	return nil
}

func (s *session) journaled(disk uint32, seq uint64, n int64) {
	s.dmu.RLock()
	r := s.recvd[disk]
	s.dmu.RUnlock()
	r.Store(seq)
	s.grant(n)
}

// grant returns n bytes of credit, granted by the acker: at once when a
// quarter of the window waits, else on its tick.
func (s *session) grant(n int64) {
	if s.credit.Add(n) >= s.grantAt && s.grantAt > 0 {
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
}

// readBuffered reads the connection through a large buffer: TLS asks for
// a record at a time, and a resync's records come in bulk.
type readBuffered struct {
	net.Conn
	r *bufio.Reader
}

func (c readBuffered) Read(p []byte) (int, error) { return c.r.Read(p) }
