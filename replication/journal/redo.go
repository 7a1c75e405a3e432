package journal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

const redoMagic = "MTREDO01"

// LogOptions configure a redo Log.
type LogOptions struct {
	FS  vfs.FS
	Dir string
	// SegmentSize is the fixed size of a segment file (default 64 MiB).
	SegmentSize int64
	// MaxPending is how many bytes may wait for the next group commit
	// before Append blocks (default 16 MiB).
	MaxPending int
	// MaxRecord bounds a record's size (default and at most
	// HeaderSize+MaxPayload); with MaxPending it bounds how far a torn
	// group can reach, which is how a torn tail is told from corruption.
	MaxRecord int
	// MaxSegments bounds the live segments; Append blocks when the journal
	// is full until Trim frees a segment (default 64).
	MaxSegments int
	// Base is the sequence already applied elsewhere (the retention
	// store's applied position): an empty log expects Base+1 next.
	Base uint64
	// OnDurable is called, from the commit goroutine, with the highest
	// sequence made durable by each group commit: the acknowledgement.
	OnDurable func(seq uint64)
	// OnNoSpace is told when a new segment finds no room; appends then
	// wait, unacknowledged, until it does.
	OnNoSpace func(error)
	Logger    *slog.Logger
}

func (o *LogOptions) defaults() {
	if o.FS == nil {
		o.FS = vfs.OS
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = 64 << 20
	}
	if o.MaxPending == 0 {
		o.MaxPending = 16 << 20
	}
	if o.MaxRecord == 0 || o.MaxRecord > HeaderSize+MaxPayload {
		o.MaxRecord = HeaderSize + MaxPayload
	}
	if o.MaxSegments == 0 {
		o.MaxSegments = 64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// RepairReport says what Open found and did.
type RepairReport struct {
	Segments  int
	FirstSeq  uint64 // 0: empty
	LastSeq   uint64
	TornAt    string // "segment N offset X" where a torn tail was cut
	TornBytes int64  // bytes zeroed past the cut
}

// Log is the inbound (redo) journal of one pair: fixed-size segment files,
// reused once applied, holding 8-byte-aligned records with CRC-32C; appends
// are made durable by group commit, one fdatasync per group.
type Log struct {
	o    LogOptions
	mu   sync.Mutex
	cond *sync.Cond

	segs   []*logSeg // live, ascending index
	spares []string  // paths of free segment files

	next         uint64 // sequence expected by Append
	tailSeg      uint64
	tailOff      int64
	tailCount    int // live segments including ones pending creation
	pending      []*chunk
	pendingBytes int
	free         [][]byte

	durable uint64
	err     error
	closed  bool
	waiting int // Appends waiting for room
	// finished: the commit loop has stopped; nothing more becomes durable
	finished bool
	done     chan struct{}
}

type logSeg struct {
	index    uint64
	firstSeq uint64
	path     string
	f        vfs.File
	end      int64 // durable end of records
}

type chunk struct {
	seg      uint64
	off      int64
	data     []byte
	lastSeq  uint64
	newSeg   bool
	firstSeq uint64
}

func (l *Log) segPath(index uint64) string {
	return filepath.Join(l.o.Dir, fmt.Sprintf("%016x.redo", index))
}

// OpenLog opens or creates the log in o.Dir, repairing a torn tail.
// Corruption before the tail returns an error wrapping ErrCorrupt.
func OpenLog(o LogOptions) (*Log, RepairReport, error) {
	o.defaults()
	l := &Log{o: o, done: make(chan struct{})}
	l.cond = sync.NewCond(&l.mu)
	var rep RepairReport
	if err := o.FS.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, rep, err
	}
	names, err := o.FS.List(o.Dir)
	if err != nil {
		return nil, rep, err
	}
	for _, name := range names {
		path := filepath.Join(o.Dir, name)
		if strings.HasPrefix(name, "spare-") {
			// Made by Trim in an earlier run: reuse it rather than leak it.
			l.spares = append(l.spares, path)
			continue
		}
		if !strings.HasSuffix(name, ".redo") {
			continue
		}
		idx, perr := strconv.ParseUint(strings.TrimSuffix(name, ".redo"), 16, 64)
		f, err := o.FS.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			l.closeFiles()
			return nil, rep, err
		}
		hidx, first, ok := readSegHeader(f, redoMagic)
		if perr != nil || !ok || hidx != idx {
			f.Close()
			l.spares = append(l.spares, path)
			continue
		}
		l.segs = append(l.segs, &logSeg{index: idx, firstSeq: first, path: path, f: f})
	}
	if err := l.scan(&rep); err != nil {
		l.closeFiles()
		return nil, rep, err
	}
	rep.Segments = len(l.segs)
	l.next = max(rep.LastSeq, o.Base) + 1
	l.durable = l.next - 1
	if n := len(l.segs); n > 0 {
		last := l.segs[n-1]
		l.tailSeg, l.tailOff = last.index, last.end
		l.tailCount = n
	}
	go l.commitLoop()
	return l, rep, nil
}

// scan verifies every live segment, cutting a torn tail in the last one.
func (l *Log) scan(rep *RepairReport) error {
	var prev uint64
	for i, s := range l.segs {
		if i > 0 && s.index != l.segs[i-1].index+1 {
			return fmt.Errorf("%w: %s: segment %d missing before %s", ErrCorrupt, l.o.Dir, l.segs[i-1].index+1, s.path)
		}
		size, err := s.f.Size()
		if err != nil {
			return err
		}
		last := i == len(l.segs)-1
		sc := newScanner(s.f, s.index, segHeaderSize, size)
		first := true
		for {
			off := sc.offset()
			r, err := sc.next()
			var bad *errBad
			if errors.As(err, &bad) {
				if !last {
					return fmt.Errorf("%w: %s offset %d: %s, and segment %d follows", ErrCorrupt, s.path, off, bad.why, s.index+1)
				}
				// Records start 8-byte aligned, and validAfter looks only
				// at offsets as aligned as its start.
				window := int64(align8(l.o.MaxPending + l.o.MaxRecord + HeaderSize))
				if validAfter(s.f, s.index, off+window, size) {
					return fmt.Errorf("%w: %s offset %d: %s, with valid records after it", ErrCorrupt, s.path, off, bad.why)
				}
				s.end = off
				if validAfter(s.f, s.index, off, min(off+window, size)) {
					// Part of the torn group survived past the cut: zero it so
					// a later append can never make it look like data again.
					n := min(off+window, size) - off
					if _, err := s.f.WriteAt(make([]byte, n), off); err != nil {
						return err
					}
					if err := s.f.Sync(); err != nil {
						return err
					}
					rep.TornBytes = n
				}
				if rep.TornBytes > 0 || off < size && !zeroAt(s.f, off) {
					rep.TornAt = fmt.Sprintf("segment %d offset %d", s.index, off)
					l.o.Logger.Warn("journal: torn tail cut", "dir", l.o.Dir, "segment", s.index, "offset", off, "reason", bad.why, "zeroed", rep.TornBytes)
				}
				break
			}
			if err != nil {
				return fmt.Errorf("%s offset %d: %w", s.path, off, err)
			}
			if r.Type == TypeEnd {
				if last {
					// The next segment was never made durable: continue here.
					s.end = off
				} else {
					s.end = sc.offset()
				}
				break
			}
			if first && r.Seq != s.firstSeq {
				return fmt.Errorf("%w: %s: first record has sequence %d, header says %d", ErrCorrupt, s.path, r.Seq, s.firstSeq)
			}
			if prev != 0 && r.Seq != prev+1 {
				return fmt.Errorf("%w: %s offset %d: sequence %d follows %d", ErrCorrupt, s.path, off, r.Seq, prev)
			}
			if rep.FirstSeq == 0 {
				rep.FirstSeq = r.Seq
			}
			first = false
			prev = r.Seq
			rep.LastSeq = r.Seq
		}
	}
	return nil
}

func zeroAt(f vfs.File, off int64) bool {
	b := make([]byte, HeaderSize)
	n, _ := f.ReadAt(b, off)
	for _, c := range b[:n] {
		if c != 0 {
			return false
		}
	}
	return true
}

func (l *Log) closeFiles() {
	for _, s := range l.segs {
		s.f.Close()
	}
}

// Next is the sequence Append expects.
func (l *Log) Next() uint64 { l.mu.Lock(); defer l.mu.Unlock(); return l.next }

// Durable is the highest sequence known durable.
func (l *Log) Durable() uint64 { l.mu.Lock(); defer l.mu.Unlock(); return l.durable }

// Err is the error that stopped the log, if any.
func (l *Log) Err() error { l.mu.Lock(); defer l.mu.Unlock(); return l.err }

// Append queues r for the next group commit. r.Seq must be Next(); the
// record is copied. It blocks while MaxPending bytes wait or the journal is
// full, until there is room or Close (then it returns ErrClosed). After an
// I/O error every Append fails with it.
func (l *Log) Append(r *Record) error { return l.AppendContext(context.Background(), r) }

// Waiting is the number of Appends waiting for room in the journal (full,
// or its commits waiting for space on the volume).
func (l *Log) Waiting() int { l.mu.Lock(); defer l.mu.Unlock(); return l.waiting }

// AppendContext is Append that also gives up, with ctx's error and
// nothing appended, when ctx ends while it waits for room.
func (l *Log) AppendContext(ctx context.Context, r *Record) error {
	// A record AppendRecord refuses would be acknowledged without ever
	// being written: refuse it here, before it takes a sequence.
	if r.Type == TypeEnd {
		return fmt.Errorf("record %d: end records are the log's own", r.Seq)
	}
	if err := r.check(); err != nil {
		return err
	}
	n := r.Len()
	if n > l.o.MaxRecord {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, l.o.MaxRecord)
	}
	if int64(n+HeaderSize+segHeaderSize) > l.o.SegmentSize {
		return fmt.Errorf("%w: %d bytes for %d-byte segments", ErrTooLarge, n, l.o.SegmentSize)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var stop func() bool
	defer func() {
		if stop != nil {
			stop()
		}
	}()
	for {
		if l.err != nil {
			return l.err
		}
		if l.closed {
			return ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.Seq != l.next {
			return fmt.Errorf("%w: got %d, want %d", ErrOutOfOrder, r.Seq, l.next)
		}
		newSeg := l.tailCount == 0 || l.tailOff+int64(n+HeaderSize) > l.o.SegmentSize
		if l.pendingBytes < l.o.MaxPending && (!newSeg || l.tailCount < l.o.MaxSegments) {
			break
		}
		if stop == nil && ctx.Done() != nil {
			// Wake this wait when ctx ends: the lock orders the broadcast
			// after Wait has released it, so it cannot be missed.
			stop = context.AfterFunc(ctx, func() {
				l.mu.Lock()
				l.cond.Broadcast()
				l.mu.Unlock()
			})
		}
		l.waiting++
		l.cond.Wait()
		l.waiting--
	}
	if l.tailCount == 0 || l.tailOff+int64(n+HeaderSize) > l.o.SegmentSize {
		if l.tailCount > 0 {
			end := &Record{Type: TypeEnd, Seq: l.next - 1}
			l.appendTo(l.tailSeg, l.tailOff, end, false, 0)
			l.tailSeg++
		} else if len(l.segs) == 0 {
			l.tailSeg = 0
		}
		l.tailOff = segHeaderSize
		l.tailCount++
		l.appendTo(l.tailSeg, l.tailOff, r, true, r.Seq)
	} else {
		l.appendTo(l.tailSeg, l.tailOff, r, false, 0)
	}
	l.next++
	l.cond.Broadcast()
	return nil
}

func (l *Log) appendTo(seg uint64, off int64, r *Record, newSeg bool, firstSeq uint64) {
	var c *chunk
	if k := len(l.pending); k > 0 && !newSeg && l.pending[k-1].seg == seg {
		c = l.pending[k-1]
	} else {
		var buf []byte
		if k := len(l.free); k > 0 {
			buf, l.free = l.free[k-1][:0], l.free[:k-1]
		} else {
			// Small at first: AppendRecord doubles it as a group needs, so
			// a quiet pair does not hold a busy pair's buffer.
			buf = make([]byte, 0, 64<<10)
		}
		c = &chunk{seg: seg, off: off, data: buf, newSeg: newSeg, firstSeq: firstSeq}
		l.pending = append(l.pending, c)
	}
	before := len(c.data)
	c.data, _ = AppendRecord(c.data, seg, r) // size checked by Append
	added := len(c.data) - before
	l.pendingBytes += added
	l.tailOff += int64(added)
	if r.Type != TypeEnd {
		c.lastSeq = r.Seq
	}
}

// Sync waits until everything appended so far is durable.
func (l *Log) Sync() error { return l.SyncContext(context.Background()) }

// SyncContext is Sync that gives up when ctx ends or the log is closed
// before everything appended is durable.
func (l *Log) SyncContext(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ctx.Done() != nil {
		stop := context.AfterFunc(ctx, func() {
			l.mu.Lock()
			l.cond.Broadcast()
			l.mu.Unlock()
		})
		defer stop()
	}
	want := l.next - 1
	for l.durable < want && l.err == nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		if l.closed && l.finished {
			return ErrClosed
		}
		l.cond.Wait()
	}
	return l.err
}

func (l *Log) commitLoop() {
	defer close(l.done)
	defer func() {
		l.mu.Lock()
		l.finished = true
		l.cond.Broadcast()
		l.mu.Unlock()
	}()
	for {
		l.mu.Lock()
		for len(l.pending) == 0 && !l.closed && l.err == nil {
			l.cond.Wait()
		}
		if len(l.pending) == 0 || l.err != nil {
			l.mu.Unlock()
			return
		}
		group := l.pending
		l.pending = nil
		l.pendingBytes = 0
		l.cond.Broadcast()
		l.mu.Unlock()

		last, err := l.commit(group)
		for warned := false; err != nil; warned = true {
			// A new segment found no room: nothing of the group was
			// acknowledged and no fdatasync failed, so wait for space
			// (trimming, retention pruning) and try the group again.
			var ns *errNoSpace
			if !errors.As(err, &ns) || l.isClosed() {
				break
			}
			if !warned {
				l.o.Logger.Warn("journal: no room for a new segment, acknowledgements wait", "dir", l.o.Dir, "err", err)
				if l.o.OnNoSpace != nil {
					l.o.OnNoSpace(err)
				}
			}
			time.Sleep(50 * time.Millisecond)
			last, err = l.commit(group)
		}

		l.mu.Lock()
		for _, c := range group {
			// Keep two group buffers: allocating and faulting in a fresh
			// one per group costs more than writing it.
			if cap(c.data) <= 2*(l.o.MaxPending+1<<20) && len(l.free) < 2 {
				l.free = append(l.free, c.data)
			}
		}
		if err != nil {
			// Invariant 5: after a failed write or fdatasync nothing more is
			// acknowledged; the pair restarts from what is on disk.
			l.err = fmt.Errorf("journal %s: %w", l.o.Dir, err)
			l.o.Logger.Error("journal: commit failed, acknowledgements stopped", "dir", l.o.Dir, "err", err)
			l.cond.Broadcast()
			l.mu.Unlock()
			return
		}
		if last > l.durable {
			l.durable = last
		}
		l.cond.Broadcast()
		l.mu.Unlock()
		if last > 0 && l.o.OnDurable != nil {
			l.o.OnDurable(last)
		}
	}
}

// commit writes a group and makes it durable: one fdatasync per segment
// file it touches (one, except when the group crosses into a new segment).
func (l *Log) commit(group []*chunk) (uint64, error) {
	var last uint64
	var dirty *logSeg
	for _, c := range group {
		if c.newSeg {
			if dirty != nil {
				// The End record must be durable before the next segment
				// holds anything: a segment without an End followed by
				// another is corruption to the scan.
				if err := dirty.f.Sync(); err != nil {
					return 0, err
				}
				dirty = nil
			}
			s, err := l.newSegment(c.seg, c.firstSeq)
			if err != nil {
				return 0, err
			}
			dirty = s
		} else if dirty == nil || dirty.index != c.seg {
			dirty = l.seg(c.seg)
		}
		if _, err := dirty.f.WriteAt(c.data, c.off); err != nil {
			return 0, err
		}
		if c.lastSeq > last {
			last = c.lastSeq
		}
	}
	if err := dirty.f.Sync(); err != nil {
		return 0, err
	}
	l.mu.Lock()
	for _, c := range group {
		if s := l.segLocked(c.seg); s != nil && c.off+int64(len(c.data)) > s.end {
			s.end = c.off + int64(len(c.data))
		}
	}
	l.mu.Unlock()
	return last, nil
}

func (l *Log) seg(index uint64) *logSeg {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.segLocked(index)
}

// errNoSpace is a segment that could not be allocated: retried, unlike
// an error of a write or fdatasync.
type errNoSpace struct{ err error }

func (e *errNoSpace) Error() string { return e.err.Error() }
func (e *errNoSpace) Unwrap() error { return e.err }

func (l *Log) isClosed() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.closed }

func (l *Log) segLocked(index uint64) *logSeg {
	for i := len(l.segs) - 1; i >= 0; i-- {
		if l.segs[i].index == index {
			return l.segs[i]
		}
	}
	return nil
}

// newSegment readies segment index: a spare renamed, or a new file
// allocated, then its header written and made durable with the name.
func (l *Log) newSegment(index, firstSeq uint64) (*logSeg, error) {
	path := l.segPath(index)
	l.mu.Lock()
	var spare string
	for i, p := range l.spares {
		if p == path {
			// A segment file whose creation a crash cut short: take it, or
			// a spare renamed over it would leave its name in the list
			// and the next new segment would take the live file.
			spare = p
			l.spares = append(l.spares[:i], l.spares[i+1:]...)
			break
		}
	}
	if k := len(l.spares); spare == "" && k > 0 {
		spare, l.spares = l.spares[k-1], l.spares[:k-1]
	}
	l.mu.Unlock()
	var f vfs.File
	var err error
	if spare != "" {
		if err = l.o.FS.Rename(spare, path); err != nil {
			return nil, err
		}
		f, err = l.o.FS.OpenFile(path, os.O_RDWR, 0)
	} else {
		f, err = l.o.FS.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err == nil {
			if err = vfs.Allocate(f, l.o.SegmentSize); err != nil {
				f.Close()
				f = nil
				l.o.FS.Remove(path)
				if errors.Is(err, syscall.ENOSPC) {
					err = &errNoSpace{err}
				}
			}
		}
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		return nil, err
	}
	if _, err := f.WriteAt(encodeSegHeader(redoMagic, index, firstSeq), 0); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := l.o.FS.SyncDir(l.o.Dir); err != nil {
		f.Close()
		return nil, err
	}
	s := &logSeg{index: index, firstSeq: firstSeq, path: path, f: f, end: segHeaderSize}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	return s, nil
}

// Trim frees the segments that hold only sequences at or below applied;
// they become spares for reuse. It must not run concurrently with
// Reader.Next on the same log: the applier calls both from one goroutine.
func (l *Log) Trim(applied uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var err error
	for len(l.segs) >= 2 && l.segs[1].firstSeq <= applied+1 {
		s := l.segs[0]
		s.f.Close()
		spare := filepath.Join(l.o.Dir, fmt.Sprintf("spare-%016x", s.index))
		if len(l.spares) >= 2 {
			err = l.o.FS.Remove(s.path)
		} else if err = l.o.FS.Rename(s.path, spare); err == nil {
			l.spares = append(l.spares, spare)
		}
		if err != nil {
			break
		}
		l.segs = l.segs[1:]
		l.tailCount--
	}
	l.cond.Broadcast()
	return err
}

// Close makes pending appends durable and stops the log.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closeFiles()
	return l.err
}

// Reader reads durable records in sequence order.
type Reader struct {
	l    *Log
	want uint64
	seg  *logSeg
	sc   *scanner
}

// NewReader returns a reader positioned at sequence from.
func (l *Log) NewReader(from uint64) *Reader { return &Reader{l: l, want: from} }

// Release says that the data of the records returned so far, but for the
// last, is no longer needed: their buffers may be reused. Without Release,
// data stays valid after later calls.
func (r *Reader) Release() {
	if r.sc != nil {
		r.sc.release()
	}
}

// Next returns the next durable record, io.EOF when there is none yet, or
// an error wrapping ErrCorrupt. Data stays valid until Release.
func (r *Reader) Next() (Record, error) {
	for {
		l := r.l
		l.mu.Lock()
		durable := l.durable
		if r.want > durable {
			l.mu.Unlock()
			return Record{}, io.EOF
		}
		if r.seg != nil && (len(l.segs) == 0 || r.seg.index < l.segs[0].index) {
			r.seg = nil // trimmed under us
		}
		if r.seg == nil {
			var s *logSeg
			for _, c := range l.segs {
				if c.firstSeq <= r.want {
					s = c
				}
			}
			if s == nil {
				l.mu.Unlock()
				return Record{}, fmt.Errorf("%w: %s: sequence %d is not in the journal", ErrCorrupt, l.o.Dir, r.want)
			}
			r.seg = s
			r.sc = newScanner(s.f, s.index, segHeaderSize, s.end)
		}
		r.sc.end = r.seg.end
		l.mu.Unlock()

		off := r.sc.offset()
		rec, err := r.sc.next()
		if err != nil {
			var bad *errBad
			if errors.As(err, &bad) {
				return Record{}, fmt.Errorf("%w: %s offset %d: %s", ErrCorrupt, r.seg.path, off, bad.why)
			}
			return Record{}, err
		}
		if rec.Type == TypeEnd {
			r.seg = nil
			l.mu.Lock()
			for _, c := range l.segs {
				if c.index == r.sc.seg+1 {
					r.seg = c
				}
			}
			if r.seg == nil {
				l.mu.Unlock()
				return Record{}, io.EOF
			}
			r.sc = newScanner(r.seg.f, r.seg.index, segHeaderSize, r.seg.end)
			l.mu.Unlock()
			continue
		}
		if rec.Seq < r.want {
			continue
		}
		if rec.Seq != r.want {
			return Record{}, fmt.Errorf("%w: %s offset %d: sequence %d, want %d", ErrCorrupt, r.seg.path, off, rec.Seq, r.want)
		}
		r.want++
		return rec, nil
	}
}
