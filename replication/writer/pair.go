package writer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// Sentinel errors callers act on.
var (
	// ErrBeyondEnd is a write that does not fit the target.
	ErrBeyondEnd = errors.New("write beyond the end of the target")
	// ErrPairError is returned by writes to a pair stopped by an error.
	ErrPairError = errors.New("pair stopped by an error")
	// ErrEnded is a pair that was rolled back or is being rolled back.
	ErrEnded = errors.New("pair has ended")
)

// EndedError is a pair that has ended, and why: opening it fails with it.
// It matches ErrEnded.
type EndedError struct{ Reason string }

func (e *EndedError) Error() string        { return ErrEnded.Error() + ": " + e.Reason }
func (e *EndedError) Is(target error) bool { return target == ErrEnded }

// PairConfig describes one replication pair on the master target.
type PairConfig struct {
	ID           string
	Target       string // file or block device
	JournalDir   string
	RetentionDir string
	CatalogueDir string // default RetentionDir
	Policy       journal.Policy
	// RPOThreshold raises an alert when exceeded (default 15 min).
	RPOThreshold time.Duration
	// AlertPercent is the low-space trigger of this pair's group, in
	// percent of its retention volume (0: the Writer's SpaceOptions.Percent).
	AlertPercent float64

	// Left at 0, the segment sizes follow the volumes (sizeToVolumes):
	// 64 MiB on volumes of 1 GiB and more, a sixteenth of a smaller one
	// (the redo segment at least 8 MiB); the undo segment also at most
	// SizeCap/16 (but at least 1 MiB); and at most 64 redo segments,
	// together no more than a quarter of the journal volume.
	JournalSegmentSize int64
	JournalMaxSegments int
	MaxPending         int // default 16 MiB
	MaxRecord          int // default journal.HeaderSize+journal.MaxPayload
	UndoSegmentSize    int64
}

// Options are shared by the pairs of a Writer.
type Options struct {
	FS       vfs.FS // journals and retention (default vfs.OS)
	TargetFS vfs.FS // targets (default FS)
	Now      func() time.Time
	// OnAck is called with a pair's highest durable sequence after every
	// group commit (never after a failed one).
	OnAck   func(pair string, seq uint64)
	OnEvent func(Event)
	// OnFsync is called after every fdatasync of a pair's files with the
	// kind of file (FileJournal, FileRetention, FileTarget) and how long
	// it took, from the goroutine that synced.
	OnFsync func(pair, file string, d time.Duration)
	Logger  *slog.Logger
	// StoreHook runs inside every catalogue transaction (crash tests).
	StoreHook func() error
	// BatchBytes and BatchRecords bound one apply batch (32 MiB, 1024):
	// each batch costs one fdatasync of the retention store.
	BatchBytes   int
	BatchRecords int
	// Parallel is the number of target I/Os in flight (8).
	Parallel int
	// CommitBytes and CommitInterval bound how much applied data may wait
	// for its target fdatasync and catalogue commit (64 MiB but at most
	// one undo segment, 1 s): staged before-images cannot be pruned, so
	// the retention volume must hold them. The applier also commits
	// whenever it runs out of work.
	CommitBytes    int64
	CommitInterval time.Duration
	// CompactInterval is how often the compactor looks at the pairs
	// with sparse-retention tiers (default 1 min, the original's
	// CDPPolicyCheckInterval; <0: never, tests call Compact).
	CompactInterval time.Duration

	reserved uint64 // SpaceOptions.Reserved of the Writer
}

func (o *Options) defaults() {
	if o.FS == nil {
		o.FS = vfs.OS
	}
	if o.TargetFS == nil {
		o.TargetFS = o.FS
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CompactInterval == 0 {
		o.CompactInterval = time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BatchBytes == 0 {
		o.BatchBytes = 32 << 20
	}
	if o.BatchRecords == 0 {
		o.BatchRecords = 1024
	}
	if o.Parallel == 0 {
		o.Parallel = 8
	}
	if o.CommitBytes == 0 {
		o.CommitBytes = 64 << 20
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = time.Second
	}
}

// Health of a pair, in the words admins know.
const (
	HealthOK     = "OK"
	HealthRPO    = "RPO breach"
	HealthPaused = "Paused"
	HealthError  = "Error"
	// HealthEnded is a pair rolled back (or being rolled back): it is no
	// longer replicated, and its configuration is left for the admin to
	// remove.
	HealthEnded = "Ended"
)

// Healths are every health, for those that list them all (the agent's
// metrics give each its own series).
var Healths = []string{HealthOK, HealthRPO, HealthPaused, HealthError, HealthEnded}

// Pair is one replication pair: its redo journal, its retention store,
// its target, and the applier that moves writes from the first to the
// last while capturing before-images in the second.
type Pair struct {
	cfg    PairConfig
	o      Options
	log    *journal.Log
	store  *journal.Store
	target vfs.File
	size   int64
	fsync  *fsyncStats
	// heldBy is the pin (an open view) last reported holding pruning
	// back: said once, not after every commit. Applier only.
	heldBy string

	mu sync.Mutex
	// compaction: bytes given back since open, when it last rewrote
	reclaimed      int64
	lastCompaction time.Time
	paused         string // reason; "" when running
	spacePause     bool   // paused for lack of retention space

	sharedVolume bool // journal and retention on one volume
	err          error
	ended        bool
	times        []seqTime // appended, not yet durable
	durTime      time.Time // source time of the newest durable write
	// opened is when OpenPair ran; heard, that the source has been heard
	// from since (a heartbeat, a write made durable). Until then durTime
	// is the applied time from the store, old if the source was idle,
	// and the RPO is unknown (rpoLocked).
	opened   time.Time
	heard    bool
	appended int64 // bytes of writes appended
	applied  int64 // bytes of writes applied
	retained int64 // bytes of before-images written to retention
	dups     int64
	rate     rate
	rpoAlert bool
	lastAck  time.Time

	pend    pending     // batches on the target whose applied position is not yet committed
	fly     *flight     // the batch whose target writes are running (apply.go)
	cm      *committing // the commit running beside the applier (apply.go)
	undoBuf []byte      // before-image buffer, reused batch to batch

	wake chan struct{}
	stop chan struct{}
	done chan struct{}
	hold chan holdReq // requests to stop applying for a while
	// dmu guards dir, the direct resync writes not yet committed
	// (resync.go); reread tells the applier that a direct commit moved
	// the applied position and the journal past its reader.
	dmu    sync.Mutex
	dir    *direct
	reread atomic.Bool
	// beat is when the applier last went round its loop (p.o.Now, in
	// Unix nanoseconds); waiting, that it is waiting for work or parked
	// under a hold, not stuck inside a batch (Stalled).
	beat    atomic.Int64
	waiting atomic.Bool
	closeMu sync.Mutex
	closed  bool
}

type seqTime struct {
	seq uint64
	t   time.Time
}

// Recovered says what opening a pair repaired.
type Recovered struct {
	RolledBack     int    // before-images of a half-applied batch restored
	RolledBackFrom uint64 // their sequence range
	RolledBackTo   uint64
	Reapply        uint64 // journaled writes after the applied position
	Journal        journal.RepairReport
}

// OpenPair opens a pair's stores and target, recovers from a crash and
// starts its applier.
func OpenPair(cfg PairConfig, o Options) (*Pair, Recovered, error) {
	o.defaults()
	var rec Recovered
	if cfg.RPOThreshold == 0 {
		cfg.RPOThreshold = 15 * time.Minute
	}
	if cfg.Policy.OnFull == "" {
		cfg.Policy.OnFull = journal.Purge
	}
	sizeToVolumes(&cfg, o.FS)
	if err := checkVolumes(cfg, o.FS, o.reserved); err != nil {
		return nil, rec, fmt.Errorf("pair %s: %w", cfg.ID, err)
	}
	fsync := observeFS(&o, cfg.ID, cfg.JournalDir)
	p := &Pair{cfg: cfg, o: o, sharedVolume: sameVolume(o.FS, cfg.JournalDir, cfg.RetentionDir), wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), hold: make(chan holdReq), fsync: fsync}
	var err error
	p.store, err = journal.OpenStore(journal.StoreOptions{FS: o.FS, Dir: cfg.RetentionDir, Pair: cfg.ID,
		CatalogueDir: cfg.CatalogueDir, SegmentSize: cfg.UndoSegmentSize, Hook: o.StoreHook, Logger: o.Logger})
	if err != nil {
		return nil, rec, fmt.Errorf("pair %s: %w", cfg.ID, err)
	}
	fail := func(err error) (*Pair, Recovered, error) {
		if p.log != nil {
			p.log.Close()
		}
		if p.target != nil {
			p.target.Close()
		}
		p.store.Close()
		return nil, rec, fmt.Errorf("pair %s: %w", cfg.ID, err)
	}
	st := p.store.State()
	switch st.State {
	case journal.StateRollingBack:
		if st.RollbackTracked && !st.RollbackWritten {
			return fail(&EndedError{fmt.Sprintf("a rollback to sequence %d did not finish; it wrote nothing to the target: run `mtconsole retention rollback` again, or `mtconsole retention rollback --abandon` to keep replicating", st.RollbackTo)})
		}
		return fail(&EndedError{fmt.Sprintf("a rollback to sequence %d did not finish and the target is partly rolled back; run `mtconsole retention rollback` again to finish it", st.RollbackTo)})
	case journal.StateEnded:
		return fail(&EndedError{st.Reason})
	case journal.StatePaused:
		p.paused = st.Reason
	}
	if err := p.store.SetPolicy(cfg.Policy); err != nil {
		return fail(err)
	}
	if err := p.store.SetTarget(cfg.Target); err != nil {
		return fail(err)
	}
	p.target, err = o.TargetFS.OpenFile(cfg.Target, os.O_RDWR, 0)
	if err != nil {
		return fail(fmt.Errorf("target: %w", err))
	}
	if p.size, err = p.target.Size(); err != nil {
		return fail(fmt.Errorf("target %s: %w", cfg.Target, err))
	}

	p.log, rec.Journal, err = journal.OpenLog(journal.LogOptions{FS: o.FS, Dir: cfg.JournalDir,
		SegmentSize: cfg.JournalSegmentSize, MaxSegments: cfg.JournalMaxSegments, MaxPending: cfg.MaxPending,
		MaxRecord: cfg.MaxRecord, Base: st.Applied, OnDurable: p.onDurable, Logger: o.Logger,
		OnNoSpace: func(err error) {
			p.event(EventAlert, slog.LevelWarn, "journal volume full, acknowledgements wait for space: "+err.Error())
		}})
	if err != nil {
		return fail(err)
	}
	// The journal keeps every write after the applied position: one that
	// starts later means the catalogue's applied position is not this
	// pair's (a catalogue lost and made anew, or restored from an old
	// backup). Refused before the target or the segments are touched.
	if first := rec.Journal.FirstSeq; first > st.Applied+1 {
		catalogue := filepath.Join(cmp.Or(cfg.CatalogueDir, cfg.RetentionDir), "catalogue.db")
		kind := journal.ErrCatalogueCorrupt
		if st.Applied == 0 && len(p.store.Segments()) == 0 {
			kind = journal.ErrCatalogueMissing
		}
		return fail(fmt.Errorf("%w: %s says sequence %d is applied but the journal %s starts at sequence %d: "+
			"the catalogue does not belong with this journal (lost and made anew, or an old backup); nothing was changed; "+
			"restore the pair's catalogue.db, or move its journal and retention directories away to start it afresh (a full resync)",
			kind, catalogue, st.Applied, cfg.JournalDir, first))
	}
	// Invariant 3: a batch whose before-images are durable but whose
	// applied position is not may have reached the target in part; put
	// the target back to the applied position from those before-images.
	if rec.RolledBack, rec.RolledBackFrom, rec.RolledBackTo, err = p.undoStaged(); err != nil {
		return fail(err)
	}
	if d := p.log.Durable(); d > st.Applied {
		rec.Reapply = d - st.Applied
	}
	p.durTime, p.opened = st.AppliedTime, o.Now()
	if rec.RolledBack > 0 || rec.Reapply > 0 || rec.Journal.TornAt != "" {
		o.Logger.Info("pair recovered", "pair", cfg.ID, "rolled_back", rec.RolledBack,
			"rolled_back_seqs", fmt.Sprintf("%d-%d", rec.RolledBackFrom, rec.RolledBackTo),
			"applied", st.Applied, "reapply_through", p.log.Durable(), "torn", rec.Journal.TornAt)
		p.event(EventLog, slog.LevelInfo, fmt.Sprintf("recovered: rolled back %d before-images (seq %d-%d), re-applying seq %d-%d",
			rec.RolledBack, rec.RolledBackFrom, rec.RolledBackTo, st.Applied+1, p.log.Durable()))
	}
	p.beat.Store(o.Now().UnixNano())
	go p.run(st.Applied + 1)
	return p, rec, nil
}

// undoStaged puts the target back to the applied position from the
// before-images written past it (a crash's or a failed batch's), makes
// that durable, then cuts those before-images.
func (p *Pair) undoStaged() (n int, from, to uint64, err error) {
	p.pend = pending{}
	un, err := p.store.Uncommitted()
	if err != nil {
		return 0, 0, 0, err
	}
	if len(un) > 0 {
		ov := recovery.NewOverlay(context.Background(), p.target, p.o.Parallel)
		for i := range un {
			ov.Add(&un[i])
		}
		if err := ov.Close(); err != nil {
			return 0, 0, 0, err
		}
		if err := p.target.Sync(); err != nil {
			return 0, 0, 0, fmt.Errorf("target %s: %w", p.cfg.Target, err)
		}
		n, from, to = len(un), un[0].Seq, un[len(un)-1].Seq
	}
	return n, from, to, p.store.DropPending()
}

// ID is the pair's id.
func (p *Pair) ID() string { return p.cfg.ID }

// Store gives read access to the pair's retention store.
func (p *Pair) Store() *journal.Store { return p.store }

// Next is the sequence the pair expects next: resume the stream there.
func (p *Pair) Next() uint64 { return p.log.Next() }

// Durable is the highest sequence durably journaled (acknowledged).
func (p *Pair) Durable() uint64 { return p.log.Durable() }

func (p *Pair) onDurable(seq uint64) {
	p.mu.Lock()
	i := 0
	for ; i < len(p.times) && p.times[i].seq <= seq; i++ {
		if p.times[i].t.After(p.durTime) {
			p.durTime = p.times[i].t
		}
		p.heard = true
	}
	p.times = append(p.times[:0], p.times[i:]...)
	ok := p.err == nil
	if ok {
		p.lastAck = p.o.Now()
	}
	p.mu.Unlock()
	// Invariant 5: a pair in error acknowledges nothing more.
	if ok && p.o.OnAck != nil {
		p.o.OnAck(p.cfg.ID, seq)
	}
	p.kick()
}

func (p *Pair) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Write journals a write of the source disk. A sequence already
// journaled is a duplicate (a resend after reconnect) and is dropped.
// While the journal is full it waits for room, or until Close (then it
// fails with journal.ErrClosed).
func (p *Pair) Write(seq uint64, off int64, t time.Time, data []byte, flags uint8) error {
	return p.WriteContext(context.Background(), seq, off, t, data, flags)
}

// WriteContext is Write that gives up, journaling nothing, when ctx ends
// while it waits for room in the journal.
func (p *Pair) WriteContext(ctx context.Context, seq uint64, off int64, t time.Time, data []byte, flags uint8) error {
	// Direct resync writes before it reach the target first.
	if err := p.EndDirect(); err != nil {
		return err
	}
	if err := p.admit(seq); err != nil {
		return dropDup(err)
	}
	if off < 0 || off+int64(len(data)) > p.size {
		return fmt.Errorf("pair %s: %w: offset %d length %d, target %s is %d bytes", p.cfg.ID, ErrBeyondEnd, off, len(data), p.cfg.Target, p.size)
	}
	r := journal.Record{Type: journal.TypeWrite, Flags: flags, Seq: seq, Offset: off, Time: t, Data: data}
	return p.append(ctx, &r, int64(len(data)))
}

// Tag journals a consistency tag at seq: a barrier after every earlier
// write.
func (p *Pair) Tag(seq uint64, tag journal.TagInfo) error {
	return p.TagContext(context.Background(), seq, tag)
}

// TagContext is Tag that gives up when ctx ends while it waits for room
// in the journal.
func (p *Pair) TagContext(ctx context.Context, seq uint64, tag journal.TagInfo) error {
	if err := p.EndDirect(); err != nil {
		return err
	}
	if err := p.admit(seq); err != nil {
		return dropDup(err)
	}
	if tag.Name == "" {
		return fmt.Errorf("pair %s: tag at %d has no name", p.cfg.ID, seq)
	}
	if tag.App == "" {
		tag.App = journal.AppUser
	}
	if tag.Time.IsZero() {
		tag.Time = p.o.Now().UTC()
	}
	r := journal.Record{Type: journal.TypeTag, Seq: seq, Tag: &tag, Time: tag.Time}
	return p.append(ctx, &r, 0)
}

// Heartbeat tells the pair the source was current at t through seq, so
// RPO does not grow while the source is idle.
func (p *Pair) Heartbeat(seq uint64, t time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// Heard from even when seq is ahead: the source has writes this side
	// lacks, and the RPO runs from durTime until they are durable.
	p.heard = true
	if seq <= p.log.Durable() && t.After(p.durTime) {
		p.durTime = t
	}
}

var errDup = errors.New("duplicate")

func dropDup(err error) error {
	if err == errDup {
		return nil
	}
	return err
}

func (p *Pair) admit(seq uint64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ended {
		return fmt.Errorf("pair %s: %w", p.cfg.ID, ErrEnded)
	}
	if p.err != nil {
		return fmt.Errorf("pair %s: %w: %v", p.cfg.ID, ErrPairError, p.err)
	}
	if seq < p.log.Next() {
		p.dups++
		return errDup
	}
	return nil
}

func (p *Pair) append(ctx context.Context, r *journal.Record, n int64) error {
	p.mu.Lock()
	p.times = append(p.times, seqTime{r.Seq, r.Time})
	p.mu.Unlock()
	if err := p.log.AppendContext(ctx, r); err != nil {
		p.mu.Lock()
		p.times = p.times[:len(p.times)-1]
		p.mu.Unlock()
		// Given up or closed while waiting for room: nothing was
		// journaled and nothing is wrong with the pair.
		if errors.Is(err, journal.ErrOutOfOrder) || errors.Is(err, journal.ErrTooLarge) ||
			errors.Is(err, journal.ErrClosed) || ctx.Err() != nil {
			return fmt.Errorf("pair %s: %w", p.cfg.ID, err)
		}
		p.setError(err)
		return fmt.Errorf("pair %s: %w", p.cfg.ID, err)
	}
	p.mu.Lock()
	p.appended += n
	p.mu.Unlock()
	return nil
}

// Sync waits until every write given so far is durable. A failed
// journal commit stops the pair (invariant 5) before Sync returns, so
// Status already says Error when the caller looks.
// Direct resync writes (WriteDirect) are committed first.
func (p *Pair) Sync() error { return p.SyncContext(context.Background()) }

// SyncContext is Sync that gives up when ctx ends or the pair is closed.
func (p *Pair) SyncContext(ctx context.Context) error {
	if err := p.EndDirect(); err != nil {
		return err
	}
	return p.synced(ctx, p.log.SyncContext(ctx))
}

func (p *Pair) synced(ctx context.Context, err error) error {
	if err != nil && !errors.Is(err, journal.ErrClosed) && ctx.Err() == nil {
		p.setError(err)
	}
	return err
}

// JournalWaiting is the number of writes waiting for room in the journal.
func (p *Pair) JournalWaiting() int { return p.log.Waiting() }

// Drain waits until everything durable has been applied, or the pair
// stops on an error or pause, or ctx ends.
func (p *Pair) Drain(ctx context.Context) error {
	for {
		if p.store.State().Applied >= p.log.Durable() {
			return nil
		}
		p.mu.Lock()
		err, paused := p.err, p.paused
		p.mu.Unlock()
		if err != nil {
			return err
		}
		if paused != "" {
			return fmt.Errorf("pair %s is paused: %s", p.cfg.ID, paused)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done: // closed: nothing more is applied
			return fmt.Errorf("pair %s: %w", p.cfg.ID, journal.ErrClosed)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Pause stops applying (writes are still journaled and acknowledged until
// the journal is full); the state survives a restart.
func (p *Pair) Pause(reason string) error {
	if reason == "" {
		reason = "paused by the administrator"
	}
	p.mu.Lock()
	p.paused = reason
	p.mu.Unlock()
	p.event(EventState, slog.LevelInfo, "paused: "+reason)
	return p.store.SetState(journal.StatePaused, reason, 0)
}

// SetPolicy changes the pair's retention policy and, when rpo is not
// zero, its RPO threshold, while it runs (a configuration reload). The
// new policy prunes from the next commit on.
func (p *Pair) SetPolicy(pol journal.Policy, rpo time.Duration) error {
	if pol.OnFull == "" {
		pol.OnFull = journal.Purge
	}
	if err := p.store.SetPolicy(pol); err != nil {
		return err
	}
	p.mu.Lock()
	if rpo > 0 {
		p.cfg.RPOThreshold = rpo
	}
	p.cfg.Policy = pol
	p.mu.Unlock()
	p.kick()
	return nil
}

// SetAlertPercent changes the pair's low-space trigger (percent of its
// retention volume; 0: the Writer's) while it runs (a configuration
// reload); the monitor's next look uses it.
func (p *Pair) SetAlertPercent(pct float64) {
	p.mu.Lock()
	p.cfg.AlertPercent = pct
	p.mu.Unlock()
}

// AlertPercent is the pair's low-space trigger (0: the Writer's).
func (p *Pair) AlertPercent() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.AlertPercent
}

// Resume restarts applying after Pause.
func (p *Pair) Resume() error {
	p.mu.Lock()
	p.paused, p.spacePause = "", false
	p.mu.Unlock()
	if err := p.store.SetState(journal.StateActive, "", 0); err != nil {
		return err
	}
	p.event(EventState, slog.LevelInfo, "resumed")
	p.kick()
	return nil
}

// Err is the error that stopped the pair, if any.
func (p *Pair) Err() error { p.mu.Lock(); defer p.mu.Unlock(); return p.err }

func (p *Pair) setError(err error) {
	p.mu.Lock()
	first := p.err == nil
	if first {
		p.err = err
	}
	p.mu.Unlock()
	if first {
		p.o.Logger.Error("pair stopped", "pair", p.cfg.ID, "err", err)
		p.event(EventAlert, slog.LevelError, "error, acknowledgements stopped: "+err.Error())
	}
}

// holdReq asks the applier to stop: it answers on ready once the target
// and the store agree (nil), or why they cannot (the commit failed), and
// then waits for release.
type holdReq struct {
	ready   chan error
	release chan struct{}
}

// Hold stops the applier and runs fn while it is stopped, for work that
// needs the target and the retention store still (export, a view, chunk
// hashes). fn runs only once every batch staged on the target is
// committed: a reader of the applied position must never meet target
// writes past it whose before-images it cannot see (the wrong live
// exports of a busy machine).
func (p *Pair) Hold(fn func(target vfs.File, store *journal.Store) error) error {
	h := holdReq{ready: make(chan error, 1), release: make(chan struct{})}
	select {
	case p.hold <- h:
	case <-p.done:
		return fmt.Errorf("pair %s: %w", p.cfg.ID, journal.ErrClosed)
	}
	defer close(h.release)
	if err := <-h.ready; err != nil {
		return fmt.Errorf("pair %s: %w", p.cfg.ID, err)
	}
	// The applier's pruning waits on the park; the compactor, which runs
	// beside it, on this hold of every undo segment.
	release := p.store.Hold(0)
	defer release()
	return fn(p.target, p.store)
}

// ReadTarget reads the target at off while the applier runs on: it
// neither stops the applier nor waits for a hold or a direct resync
// write. It is for a reader that orders itself after the writes it must
// see, as the agent's chunk hashes do (they drain what was journaled in
// the range and land the direct writes first, and the process server
// sends nothing there until it has the answer): a hash resync then
// hashes the target while the chunks compared before are applied or
// written, rather than taking turns with them. A reader that needs the
// target and the retention store to agree uses Hold.
func (p *Pair) ReadTarget(b []byte, off int64) (int, error) {
	select {
	case <-p.done:
		return 0, fmt.Errorf("pair %s: %w", p.cfg.ID, journal.ErrClosed)
	default:
	}
	return p.target.ReadAt(b, off)
}

// park serves a hold in the applier: commit what is staged, say so, and
// wait for the release.
func (p *Pair) park(h holdReq) {
	if err := p.commit(); err != nil {
		p.handleApplyError(err)
		h.ready <- fmt.Errorf("committing the applied batches before holding: %w", err)
		return
	}
	h.ready <- nil
	<-h.release
}

// Export writes the image of point r to a new file at dest (on the
// target's file system; neither it nor dest.partial may exist yet) while
// the applier is held. The image is written to dest.partial and renamed
// to dest only when complete: a partial image never passes for a
// recovered one, and a failed or cancelled export removes it.
func (p *Pair) Export(ctx context.Context, r recovery.Resolved, dest string, progress recovery.Progress) (recovery.Result, error) {
	var res recovery.Result
	err := p.Hold(func(target vfs.File, st *journal.Store) error {
		var err error
		res, err = recovery.ExportTo(ctx, st, target, p.o.TargetFS, dest, r, recovery.ExportOptions{}, progress)
		return err
	})
	return res, err
}

// Close stops the applier after its current batch, makes the journal
// durable and closes everything.
func (p *Pair) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if err := p.EndDirect(); err != nil {
		p.o.Logger.Warn("committing the direct resync writes at close", "pair", p.cfg.ID, "err", err)
	}
	close(p.stop)
	<-p.done
	errs := []error{p.log.Close(), p.store.Close(), p.target.Close()}
	return errors.Join(errs...)
}

// run is the applier.
func (p *Pair) run(from uint64) {
	defer close(p.done)
	rd := p.log.NewReader(from)
	var carry *journal.Record
	// ahead is the batch read while the one before was staged.
	var ahead *readAhead
	// rels are the batches whose target writes are done, to release
	// when no read-ahead is using the reader; released records one.
	type rel struct {
		r *journal.Reader
		m journal.Mark
	}
	var rels []rel
	released := func(r *journal.Reader, m journal.Mark) func() {
		return func() { rels = append(rels, rel{r, m}) }
	}
	release := func() {
		for _, x := range rels {
			if x.r == rd { // not a reader given up since
				x.r.ReleaseBefore(x.m)
			}
		}
		rels = rels[:0]
	}
	// flush commits the staged batches; on failure the pair is in error.
	flush := func() bool {
		if err := p.commit(); err != nil {
			p.handleApplyError(err)
			return false
		}
		return true
	}
	for {
		p.beat.Store(p.o.Now().UnixNano())
		select {
		case <-p.stop:
			flush()
			return
		case h := <-p.hold:
			p.parkWaiting(h)
			continue
		default:
		}
		if p.reread.Swap(false) {
			// A direct resync commit (resync.go) moved the applied
			// position and skipped the journal past the reader.
			rd, carry, ahead = p.log.NewReader(p.store.State().Applied+1), nil, nil
		}
		p.mu.Lock()
		blocked := p.err != nil || p.paused != ""
		p.mu.Unlock()
		if !blocked {
			var (
				batch []journal.Record
				next  *journal.Record
				err   error
				mark  journal.Mark
			)
			if ahead != nil {
				batch, next, err, mark = ahead.batch, ahead.next, ahead.err, ahead.mark
				ahead = nil
			} else {
				batch, next, err = p.readBatch(rd, carry)
				mark = rd.Mark()
			}
			if err != nil {
				p.setError(err)
				continue
			}
			carry = next
			if len(batch) > 0 {
				// The next batch is read from the journal while this one
				// is staged; it is waited for before anything else
				// touches the reader (the commit trims the journal).
				ra := &readAhead{done: make(chan struct{})}
				r, c := rd, carry
				go func() {
					defer close(ra.done)
					ra.batch, ra.next, ra.err = p.readBatch(r, c)
					ra.mark = r.Mark()
				}()
				carry = nil // the read-ahead's now
				// The batch's buffers go back to the journal once its
				// target writes are done; carry's stay.
				err := p.stage(batch, released(r, mark))
				<-ra.done
				ahead = ra
				release()
				if err == nil && p.committed() {
					// The commit that ran beside the batch is done: its
					// trim and the rest, while no read-ahead runs.
					err = p.finishCommit()
				}
				if err == nil && p.pend.due(p.o.Now(), min(p.o.CommitBytes, p.cfg.UndoSegmentSize), p.o.CommitInterval) {
					err = p.commitAsync()
					release()
				}
				if err != nil {
					ahead, carry = nil, nil
					if p.handleApplyError(err) {
						// retry from the applied position
						rd = p.log.NewReader(p.store.State().Applied + 1)
					}
				}
				continue
			}
		}
		// Idle, paused or stopped: what is staged becomes the applied
		// position now.
		if p.pend.n > 0 || p.cm != nil {
			flush()
			release()
			continue
		}
		p.waiting.Store(true)
		select {
		case <-p.stop:
			return
		case h := <-p.hold:
			p.park(h)
		case <-p.wake:
		case <-time.After(time.Second):
			p.checkRPO()
		}
		p.waiting.Store(false)
	}
}

// parkWaiting is park with the applier counted as waiting: a hold
// (an export, a rollback) may last minutes and is not a stuck applier.
func (p *Pair) parkWaiting(h holdReq) {
	p.waiting.Store(true)
	defer p.waiting.Store(false)
	p.park(h)
}

// Stalled says whether the applier has been inside one round of its
// loop (reading, staging or committing a batch) for longer than limit
// at now, and for how long. An applier waiting for work, paused or
// parked under a hold is not stalled however long it waits; a closed
// pair is not either. The agent feeds systemd's watchdog only while no
// pair is stalled, so that a hung target or retention volume gets the
// service restarted rather than acknowledging writes it never applies.
func (p *Pair) Stalled(now time.Time, limit time.Duration) (time.Duration, bool) {
	select {
	case <-p.done:
		return 0, false
	default:
	}
	if p.waiting.Load() {
		return 0, false
	}
	d := now.Sub(time.Unix(0, p.beat.Load()))
	return d, d > limit
}

// readAhead is a batch the applier reads while it stages the one before.
type readAhead struct {
	batch []journal.Record
	next  *journal.Record
	err   error
	mark  journal.Mark
	done  chan struct{}
}

func (p *Pair) readBatch(rd *journal.Reader, carry *journal.Record) ([]journal.Record, *journal.Record, error) {
	var batch []journal.Record
	bytes := 0
	kind := -1 // resync flag of the batch's writes
	if carry != nil {
		batch = append(batch, *carry)
		bytes += len(carry.Data)
		kind = int(carry.Flags & journal.FlagResync)
	}
	// A batch is at most one undo segment: the retention volume must hold
	// what a batch stages, and pruning frees whole segments.
	limit := min(p.o.BatchBytes, int(p.cfg.UndoSegmentSize))
	for len(batch) < p.o.BatchRecords && bytes < limit {
		r, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		// A batch holds writes of one kind: resync writes make points
		// that are not guaranteed consistent, the rest exact ones.
		if r.Type == journal.TypeWrite {
			k := int(r.Flags & journal.FlagResync)
			if kind >= 0 && k != kind {
				rr := r
				return batch, &rr, nil
			}
			kind = k
		}
		batch = append(batch, r)
		bytes += len(r.Data)
	}
	return batch, nil, nil
}
