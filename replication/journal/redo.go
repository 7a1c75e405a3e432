package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
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
	// HeaderSize+MaxPayload).
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
	Segments int
	FirstSeq uint64 // 0: empty
	LastSeq  uint64
	TornAt   string // "segment N offset X" where a torn tail was cut
	// Clean says the end was taken from the clean-close record (no scan).
	Clean bool
	// ScannedBytes is how many bytes of segments the scan read: 0 after
	// a clean close, the live segments from the applied one on after a
	// crash.
	ScannedBytes int64
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
	lastSeg uint64 // segment and offset of the last durable record
	lastOff int64  // (0: none)
	err     error
	closed  bool
	waiting int // Appends waiting for room
	// finished: the commit loop has stopped; nothing more becomes durable
	finished bool
	done     chan struct{}

	// kept holds durable groups, in log order, for the reader to take
	// whole instead of reading them back from the files (keep.go);
	// keptBytes is their share of the process-wide budget. lastGroup is
	// the size of the last group, the size a fresh buffer starts at.
	kept      []*chunk
	keptBytes int64
	lastGroup int
}

type logSeg struct {
	index    uint64
	firstSeq uint64
	path     string
	f        vfs.File
	end      int64 // durable end of records; -1: not scanned (all applied)
}

type chunk struct {
	seg      uint64
	off      int64
	data     []byte
	lastSeq  uint64
	lastOff  int64 // offset of the record lastSeq
	newSeg   bool
	firstSeq uint64
}

func (l *Log) segPath(index uint64) string {
	return filepath.Join(l.o.Dir, fmt.Sprintf("%016x.redo", index))
}

// OpenLog opens or creates the log in o.Dir. After a clean Close it takes
// the end from the clean-end record and scans nothing; after a crash it
// scans the segments from the applied one on and cuts a torn tail.
// Damage before the tail returns an error wrapping ErrCorrupt, and
// changes nothing on disk: opening again gives the same answer.
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
	var clean *cleanEnd
	for _, name := range names {
		path := filepath.Join(o.Dir, name)
		if name == cleanFile {
			clean = readCleanEnd(o.FS, path)
			continue
		}
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
	if clean != nil && l.trustClean(clean, &rep) {
		rep.Clean = true
	} else if err := l.scan(&rep); err != nil {
		l.closeFiles()
		return nil, rep, err
	} else if clean != nil && rep.LastSeq < clean.lastSeq && clean.lastSeq > o.Base {
		// The log was closed cleanly through clean.lastSeq, every record
		// durable; a shorter log now is damage after the stop (a segment
		// removed, emptied or cut), not a torn tail: those writes were
		// acknowledged. The clean-end record stays, so opening again
		// says the same.
		l.closeFiles()
		where := filepath.Join(o.Dir, fmt.Sprintf("%016x.redo", clean.lastSeg))
		return nil, rep, fmt.Errorf("%w: %s: the journal was closed cleanly through sequence %d, but its segments now hold only through %d: acknowledged writes %d-%d are lost (%s is missing, emptied or cut); %s",
			ErrCorrupt, o.Dir, clean.lastSeq, rep.LastSeq, max(rep.LastSeq, o.Base)+1, clean.lastSeq, where, l.resyncAdvice())
	}
	if slices.Contains(names, cleanFile) {
		// The journal is written again from now on: a crash must never
		// find an end it has moved past.
		if err := o.FS.Remove(filepath.Join(o.Dir, cleanFile)); err != nil {
			l.closeFiles()
			return nil, rep, err
		}
		if err := o.FS.SyncDir(o.Dir); err != nil {
			l.closeFiles()
			return nil, rep, err
		}
	}
	if n := len(l.segs); n > 0 {
		logNext := rep.LastSeq + 1
		if rep.LastSeq == 0 {
			logNext = l.segs[n-1].firstSeq
		}
		if o.Base+1 > logNext {
			// Everything journaled is applied already, and the next record
			// would leave a gap after it that the next scan refuses.
			if err := l.retire(rep.LastSeq); err != nil {
				l.closeFiles()
				return nil, rep, err
			}
			rep.FirstSeq, rep.LastSeq, rep.TornAt = 0, 0, ""
			l.lastSeg, l.lastOff = 0, 0
		}
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

// retire turns every live segment into a spare: their records are all at
// or below the applied position.
func (l *Log) retire(last uint64) error {
	l.o.Logger.Warn("journal: every record is already applied and the next one does not follow them; starting a new segment",
		"dir", l.o.Dir, "last", last, "applied", l.o.Base)
	for len(l.segs) > 0 {
		s := l.segs[0]
		s.f.Close()
		spare := filepath.Join(l.o.Dir, fmt.Sprintf("spare-%016x", s.index))
		if err := l.o.FS.Rename(s.path, spare); err != nil {
			return err
		}
		l.spares = append(l.spares, spare)
		l.segs = l.segs[1:]
	}
	return l.o.FS.SyncDir(l.o.Dir)
}

// scan verifies the live segments, cutting a torn tail in the last one.
// Segments whose records are all applied (the next segment starts at or
// before Base+1) are not read: nothing reads them again and Trim frees
// them.
func (l *Log) scan(rep *RepairReport) error {
	var prev uint64
	for i, s := range l.segs {
		if i > 0 && s.index != l.segs[i-1].index+1 {
			return fmt.Errorf("%w: %s: segment %d missing before %s", ErrCorrupt, l.o.Dir, l.segs[i-1].index+1, s.path)
		}
		if i > 0 && s.firstSeq <= l.segs[i-1].firstSeq {
			return fmt.Errorf("%w: %s: first sequence %d, not after %d of the segment before", ErrCorrupt, s.path, s.firstSeq, l.segs[i-1].firstSeq)
		}
		if i+1 < len(l.segs) && l.segs[i+1].firstSeq <= l.o.Base+1 {
			s.end = -1
			if rep.FirstSeq == 0 {
				rep.FirstSeq = s.firstSeq
			}
			continue
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
				rep.ScannedBytes += off - segHeaderSize
				if !last {
					return fmt.Errorf("%w: %s offset %d: %s, and segment %d follows; %s", ErrCorrupt, s.path, off, bad.why, s.index+1, l.resyncAdvice())
				}
				// A torn tail is the end of the last group commit, with
				// nothing valid after it: a group is written only once every
				// group before it is durable. A valid record of this segment
				// that follows the bad one, with a sequence that belongs
				// after it, is acknowledged data behind damage.
				expect := prev + 1
				if first {
					expect = s.firstSeq
				}
				maxSeq := expect + uint64((size-off)/HeaderSize)
				v, q, found, n, err := nextValid(s.f, s.index, off+8, size, expect, maxSeq)
				rep.ScannedBytes += n
				if err != nil {
					return fmt.Errorf("%s offset %d: %w", s.path, off, err)
				}
				if found {
					return fmt.Errorf("%w: %s offset %d: %s, yet a valid record (sequence %d) follows at offset %d: damage, not a torn tail; "+
						"the last good sequence is %d, so sequences %d-%d, acknowledged to the source, are lost (nothing was cut); %s",
						ErrCorrupt, s.path, off, bad.why, q, v, expect-1, expect, max(q, expect+1)-1, l.resyncAdvice())
				}
				s.end = off
				if off < size && !zeroAt(s.f, off) {
					rep.TornAt = fmt.Sprintf("segment %d offset %d", s.index, off)
					l.o.Logger.Warn("journal: torn tail cut", "dir", l.o.Dir, "segment", s.index, "offset", off, "reason", bad.why)
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
				rep.ScannedBytes += sc.offset() - segHeaderSize
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
			l.lastSeg, l.lastOff = s.index, off
		}
	}
	return nil
}

// resyncAdvice says what to do with a journal that lost acknowledged
// writes.
func (l *Log) resyncAdvice() string {
	return fmt.Sprintf("the pair needs a resync: move %s aside and start the agent again; the pair then resumes from its applied position and the process server resyncs the disk by hashes", l.o.Dir)
}

// nextValid looks for a record of segment seg at the 8-byte boundaries of
// [from, to) whose sequence is in [minSeq, maxSeq]. It returns its offset
// and sequence, and how many bytes it read. Stale records of a reused
// segment fail the checksum (it covers the segment index); random bytes
// rarely pass the cheap checks, so the search reads the range about once.
func nextValid(f vfs.File, seg uint64, from, to int64, minSeq, maxSeq uint64) (int64, uint64, bool, int64, error) {
	buf := make([]byte, 1<<20)
	var read int64
	for off := from; off+HeaderSize <= to; {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), to-off)], off)
		read += int64(k)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, 0, false, read, err
		}
		if k < HeaderSize {
			break
		}
		b := buf[:k]
		i := 0
		for ; i+HeaderSize <= k; i += 8 {
			h := b[i:]
			pl := int(binary.LittleEndian.Uint32(h))
			seq := binary.LittleEndian.Uint64(h[8:])
			if pl > MaxPayload || h[4] < byte(TypeWrite) || h[4] > byte(TypeUndo) || seq < minSeq || seq > maxSeq ||
				binary.LittleEndian.Uint16(h[6:]) != 0 || binary.LittleEndian.Uint32(h[20:]) != 0 {
				continue
			}
			total := HeaderSize + align8(pl)
			at := off + int64(i)
			if at+int64(total) > to {
				continue
			}
			rb := h
			if i+total > k {
				rb = make([]byte, total)
				if err := vfs.ReadFull(f, rb, at); err != nil {
					continue
				}
				read += int64(total)
			}
			if r, _, err := DecodeRecord(rb[:total], seg); err == nil {
				return at, r.Seq, true, read, nil
			}
		}
		off += int64(i)
	}
	return 0, 0, false, read, nil
}

// The clean-end record: written by Close once everything is durable,
// removed by OpenLog before anything is written again. It holds what a
// scan would find, so a clean restart reads a few records, not the
// segments.
const (
	cleanFile  = "clean-end"
	cleanMagic = "MTREDOCE"
)

type cleanEnd struct {
	lastSeq uint64
	lastSeg uint64
	lastOff int64 // 0: no record
	segs    []cleanSeg
}

type cleanSeg struct {
	index, firstSeq uint64
	end             int64
}

func (c *cleanEnd) encode() []byte {
	b := make([]byte, 0, 40+24*len(c.segs)+4)
	b = append(b, cleanMagic...)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(c.segs)))
	b = binary.LittleEndian.AppendUint64(b, c.lastSeq)
	b = binary.LittleEndian.AppendUint64(b, c.lastSeg)
	b = binary.LittleEndian.AppendUint64(b, uint64(c.lastOff))
	for _, s := range c.segs {
		b = binary.LittleEndian.AppendUint64(b, s.index)
		b = binary.LittleEndian.AppendUint64(b, s.firstSeq)
		b = binary.LittleEndian.AppendUint64(b, uint64(s.end))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// readCleanEnd reads the clean-end record at path, or returns nil when it
// is missing, short or fails its checksum (then the log is scanned).
func readCleanEnd(fs vfs.FS, path string) *cleanEnd {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil || size < 44 || size > 44+24*4096 || (size-44)%24 != 0 {
		return nil
	}
	b := make([]byte, size)
	if vfs.ReadFull(f, b, 0) != nil || string(b[:8]) != cleanMagic ||
		binary.LittleEndian.Uint32(b[size-4:]) != crc32.Checksum(b[:size-4], castagnoli) {
		return nil
	}
	n := binary.LittleEndian.Uint64(b[8:])
	if int64(n) != (size-44)/24 {
		return nil
	}
	c := &cleanEnd{lastSeq: binary.LittleEndian.Uint64(b[16:]), lastSeg: binary.LittleEndian.Uint64(b[24:]),
		lastOff: int64(binary.LittleEndian.Uint64(b[32:]))}
	for p := b[40 : size-4]; len(p) >= 24; p = p[24:] {
		c.segs = append(c.segs, cleanSeg{binary.LittleEndian.Uint64(p), binary.LittleEndian.Uint64(p[8:]), int64(binary.LittleEndian.Uint64(p[16:]))})
	}
	return c
}

// trustClean takes the log's end from c if it matches the segments on
// disk: the same segments, an End record where each full one ends, and
// the last record where c says, with its sequence.
func (l *Log) trustClean(c *cleanEnd, rep *RepairReport) bool {
	n := len(l.segs)
	if len(c.segs) != n {
		return false
	}
	for i, s := range l.segs {
		cs := c.segs[i]
		if cs.index != s.index || cs.firstSeq != s.firstSeq {
			return false
		}
		size, err := s.f.Size()
		if err != nil || cs.end > size {
			return false
		}
		switch {
		case cs.end == -1:
			// Not scanned: still all applied?
			if i+1 >= n || l.segs[i+1].firstSeq > l.o.Base+1 {
				return false
			}
		case cs.end < segHeaderSize:
			return false
		case i < n-1:
			r, _, err := readRecordAt(s.f, s.index, cs.end-HeaderSize)
			if err != nil || r.Type != TypeEnd {
				return false
			}
		}
	}
	if c.lastOff == 0 {
		if c.lastSeq != 0 {
			return false
		}
	} else {
		var s *logSeg
		var k int
		for i, x := range l.segs {
			if x.index == c.lastSeg {
				s, k = x, i
			}
		}
		if s == nil || c.segs[k].end < 0 {
			return false
		}
		end := c.segs[k].end
		if k < n-1 {
			end -= HeaderSize // the End record
		}
		r, size, err := readRecordAt(s.f, s.index, c.lastOff)
		if err != nil || r.Type == TypeEnd || r.Seq != c.lastSeq || c.lastOff+int64(size) != end {
			return false
		}
		// No segment after it holds records.
		for _, x := range c.segs[k+1:] {
			if x.end != segHeaderSize {
				return false
			}
		}
	}
	if n > 0 {
		// Nothing was appended after the record was written.
		s := l.segs[n-1]
		if r, _, err := readRecordAt(s.f, s.index, c.segs[n-1].end); err == nil && r.Seq > c.lastSeq {
			return false
		}
	}
	for i, s := range l.segs {
		s.end = c.segs[i].end
	}
	rep.LastSeq = c.lastSeq
	if n > 0 && c.lastSeq >= l.segs[0].firstSeq {
		rep.FirstSeq = l.segs[0].firstSeq
	}
	l.lastSeg, l.lastOff = c.lastSeg, c.lastOff
	return true
}

// readRecordAt decodes the record at off of segment seg's file f.
func readRecordAt(f vfs.File, seg uint64, off int64) (Record, int, error) {
	h := make([]byte, HeaderSize)
	if err := vfs.ReadFull(f, h, off); err != nil {
		return Record{}, 0, err
	}
	pl := int(binary.LittleEndian.Uint32(h))
	if pl > MaxPayload {
		return Record{}, 0, &errBad{fmt.Sprintf("bad length %d", pl)}
	}
	b := make([]byte, HeaderSize+align8(pl))
	if err := vfs.ReadFull(f, b, off); err != nil {
		return Record{}, 0, err
	}
	return DecodeRecord(b, seg)
}

// writeCleanEnd records the log's end for the next OpenLog: a temporary
// file written and synced, renamed over the old one, the directory
// synced.
func (l *Log) writeCleanEnd() error {
	c := &cleanEnd{lastSeq: l.next - 1, lastSeg: l.lastSeg, lastOff: l.lastOff}
	if l.lastOff == 0 {
		c.lastSeq = 0
	}
	for _, s := range l.segs {
		c.segs = append(c.segs, cleanSeg{s.index, s.firstSeq, s.end})
	}
	return vfs.WriteFile(l.o.FS, filepath.Join(l.o.Dir, cleanFile), c.encode(), 0o600)
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
			// The size of the last group: a quiet pair does not hold a
			// busy pair's buffer, and a busy pair's group does not grow
			// (and copy) its way up from small again.
			want := max(64<<10, l.lastGroup)
			if l.lastGroup >= l.o.MaxPending/4 {
				// A busy log: room for the largest group, so that it never
				// grows (and copies) its way up.
				want = l.o.MaxPending + 1<<20
			}
			if buf = pooled(want); buf == nil {
				buf = make([]byte, 0, want)
			}
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
		c.lastOff = c.off + int64(before)
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
			// A durable group goes to the reader as it is, as far as the
			// budget goes; else its buffer serves the next groups.
			l.lastGroup = min(len(c.data), l.o.MaxPending+l.o.MaxRecord)
			if err != nil || !l.keep(c) {
				l.recycle(c.data)
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
		// Past the page cache where it can: the group is made durable
		// at once and not read from the cache again but by a lagging
		// applier.
		if err := vfs.WriteAppend(dirty.f, c.data, c.off); err != nil {
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
		if c.lastSeq > 0 {
			l.lastSeg, l.lastOff = c.seg, c.lastOff
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
	if len(l.segs) > 0 {
		l.dropKept(l.segs[0].index, 0)
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
	if l.err == nil {
		// Everything appended is durable: say where the log ends, so the
		// next OpenLog need not scan for it.
		if err := l.writeCleanEnd(); err != nil {
			l.o.Logger.Warn("journal: could not record the clean end; the next start scans the journal", "dir", l.o.Dir, "err", err)
		}
	}
	l.closeFiles()
	l.dropAllKept()
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

// Mark is a place in the reader's buffers: ReleaseBefore(Mark()) later
// lets go of the data of the records returned before the call to Mark,
// but for the last of them, and keeps what was returned after.
type Mark uint64

// Mark returns the reader's place now, for ReleaseBefore.
func (r *Reader) Mark() Mark {
	if r.sc == nil {
		return 0
	}
	return Mark(r.sc.bufGen)
}

// ReleaseBefore says that the data of the records returned before m was
// taken (but for the last of them) is no longer needed.
func (r *Reader) ReleaseBefore(m Mark) {
	if r.sc != nil {
		r.sc.releaseBefore(uint64(m))
	}
}

// scanner makes the scanner of segment s, holding what prev holds.
func (r *Reader) scanner(s *logSeg, prev *scanner) *scanner {
	sc := newScanner(s.f, s.index, segHeaderSize, s.end)
	if prev != nil {
		sc.follow(prev)
	} else {
		sc.giveBack = r.l.giveBack
	}
	return sc
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
			if r.sc != nil {
				r.sc.idle() // caught up: a quiet pair holds little
			}
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
			if s.end < 0 {
				l.mu.Unlock()
				return Record{}, fmt.Errorf("%s: sequence %d was applied before the journal was opened and is not read again", l.o.Dir, r.want)
			}
			r.seg = s
			r.sc = r.scanner(s, r.sc)
		}
		r.sc.end = r.seg.end
		if r.sc.drained() {
			l.feed(r.sc)
		}
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
			r.sc = r.scanner(r.seg, r.sc)
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
