package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// Record types.
const (
	TypeWrite Type = 1 // a write to the source disk (redo journal)
	TypeTag   Type = 2 // a consistency tag: a barrier after every earlier sequence
	TypeEnd   Type = 3 // the end of a segment: the log continues in the next one
	TypeUndo  Type = 4 // a before-image (retention store)
)

// Type is a record's type.
type Type uint8

func (t Type) String() string {
	switch t {
	case TypeWrite:
		return "write"
	case TypeTag:
		return "tag"
	case TypeEnd:
		return "end"
	case TypeUndo:
		return "undo"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

const (
	// HeaderSize is the size of a record header.
	HeaderSize = 24
	// MaxPayload is the largest payload a record may carry.
	MaxPayload = 32 << 20
	// segHeaderSize is the size of a segment file's header.
	segHeaderSize = 32
	// writeFixed is the fixed part of a write or undo payload: offset, time.
	writeFixed = 16
)

// Record flags.
const (
	// FlagResync marks a write sent during resync: the target is not
	// consistent until resync ends, so points inside are "Not guaranteed".
	FlagResync uint8 = 1 << 0
	// FlagZero marks a write or before-image of zeros: the record carries
	// the length instead of the bytes (a zero range of a resync, the
	// before-image of a hole). Decoded, its Data reads as that many zeros
	// and must not be written to.
	FlagZero uint8 = 1 << 1
)

// zeroData backs the Data of decoded FlagZero records: MaxPayload bytes of
// read-only anonymous memory, outside the Go heap (so the collector does
// not count it as live) and never written (so it takes no memory; a write
// would fault).
var zeroData = sync.OnceValue(func() []byte {
	b, err := unix.Mmap(-1, 0, MaxPayload, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, MaxPayload) // no mmap: the heap will do
	}
	return b
})

// IsZero reports whether b is all zeros.
func IsZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Sentinel errors.
var (
	// ErrCorrupt is a record that fails its checks before the tail of a log:
	// the log cannot be trusted past it and the pair stops.
	ErrCorrupt = errors.New("journal corrupt")
	// ErrOutOfOrder is an append whose sequence is not the next one.
	ErrOutOfOrder = errors.New("sequence out of order")
	// ErrTooLarge is a record whose payload exceeds MaxPayload.
	ErrTooLarge = errors.New("record too large")
	// ErrClosed is an operation on a closed log or store.
	ErrClosed = errors.New("journal closed")
)

// Record is one entry of a log. For writes and undo records, Offset and
// Data are the byte range; for tags, Tag is set. Data may alias a decoder's
// buffer.
type Record struct {
	Type   Type
	Flags  uint8
	Seq    uint64
	Offset int64
	Time   time.Time // source time
	Data   []byte
	Tag    *TagInfo
}

// TagInfo is what a tag record carries.
type TagInfo struct {
	Name string
	App  string // application type: CRASH, FS, USERDEFINED, SQL, ...
	ID   string // unique id (a UUID), shared by the pairs of a group
	Time time.Time
}

// Len is the bytes the record takes in a log.
func (r *Record) Len() int { return HeaderSize + align8(r.payloadLen()) }

func align8(n int) int { return (n + 7) &^ 7 }

func (r *Record) payloadLen() int {
	switch r.Type {
	case TypeWrite, TypeUndo:
		if r.Flags&FlagZero != 0 {
			return writeFixed + 8
		}
		return writeFixed + len(r.Data)
	case TypeTag:
		t := r.Tag
		return 8 + 2 + len(t.Name) + 2 + len(t.App) + 2 + len(t.ID)
	}
	return 0
}

// AppendRecord encodes r for segment seg onto b. The checksum covers the
// segment index so that stale records left in a reused segment never pass.
func AppendRecord(b []byte, seg uint64, r *Record) ([]byte, error) {
	if err := r.check(); err != nil {
		return b, err
	}
	pl := r.payloadLen()
	start := len(b)
	total := HeaderSize + align8(pl)
	if cap(b)-start < total {
		// grow by doubling: a group buffer takes many records
		nb := make([]byte, start, max(2*cap(b), start+total))
		copy(nb, b)
		b = nb
	}
	b = b[:start+total]
	h := b[start:]
	// Only the header and the padding need zeroing: the rest is written.
	clear(h[:HeaderSize])
	clear(h[HeaderSize+pl:])
	binary.LittleEndian.PutUint32(h[0:], uint32(pl))
	h[4] = byte(r.Type)
	h[5] = r.Flags
	binary.LittleEndian.PutUint64(h[8:], r.Seq)
	p := h[HeaderSize:]
	switch r.Type {
	case TypeWrite, TypeUndo:
		binary.LittleEndian.PutUint64(p[0:], uint64(r.Offset))
		binary.LittleEndian.PutUint64(p[8:], uint64(r.Time.UnixNano()))
		if r.Flags&FlagZero != 0 {
			binary.LittleEndian.PutUint64(p[writeFixed:], uint64(len(r.Data)))
		} else {
			copy(p[writeFixed:], r.Data)
		}
	case TypeTag:
		t := r.Tag
		binary.LittleEndian.PutUint64(p[0:], uint64(t.Time.UnixNano()))
		o := 8
		for _, s := range []string{t.Name, t.App, t.ID} {
			binary.LittleEndian.PutUint16(p[o:], uint16(len(s)))
			o += 2 + copy(p[o+2:], s)
		}
	}
	binary.LittleEndian.PutUint32(h[16:], recordCRC(seg, h[:16], p[:pl]))
	return b, nil
}

// check refuses a record that cannot be encoded, or that would be encoded
// into bytes DecodeRecord refuses: written to a log, it would read back as
// its end.
func (r *Record) check() error {
	switch r.Type {
	case TypeWrite, TypeUndo:
		if r.Offset < 0 {
			return fmt.Errorf("record %d: negative offset %d", r.Seq, r.Offset)
		}
		if r.Flags&FlagZero != 0 && (len(r.Data) > MaxPayload-writeFixed || !IsZero(r.Data)) {
			return fmt.Errorf("record %d: zero flag on %d bytes that are not all zero or too many", r.Seq, len(r.Data))
		}
	case TypeTag:
		t := r.Tag
		if t == nil {
			return fmt.Errorf("record %d: tag record without tag", r.Seq)
		}
		if len(t.Name) > 0xffff || len(t.App) > 0xffff || len(t.ID) > 0xffff {
			return fmt.Errorf("%w: tag fields", ErrTooLarge)
		}
	case TypeEnd:
	default:
		return fmt.Errorf("record %d: bad type %d", r.Seq, uint8(r.Type))
	}
	if pl := r.payloadLen(); pl > MaxPayload {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, pl)
	}
	return nil
}

func recordCRC(seg uint64, hdr, payload []byte) uint32 {
	var s [8]byte
	binary.LittleEndian.PutUint64(s[:], seg)
	c := crc32.Update(0, castagnoli, s[:])
	c = crc32.Update(c, castagnoli, hdr)
	return crc32.Update(c, castagnoli, payload)
}

// errBad is an undecodable record; whether it is a torn tail or corruption
// is for the caller to say.
type errBad struct{ why string }

func (e *errBad) Error() string { return e.why }

// DecodeRecord decodes the record at the start of b for segment seg. It
// returns the record and its length in b, or an *errBad error.
func DecodeRecord(b []byte, seg uint64) (Record, int, error) {
	if len(b) < HeaderSize {
		return Record{}, 0, &errBad{"short header"}
	}
	pl := int(binary.LittleEndian.Uint32(b[0:]))
	typ := Type(b[4])
	if typ < TypeWrite || typ > TypeUndo {
		return Record{}, 0, &errBad{fmt.Sprintf("bad type %d", b[4])}
	}
	if pl > MaxPayload {
		return Record{}, 0, &errBad{fmt.Sprintf("bad length %d", pl)}
	}
	total := HeaderSize + align8(pl)
	if total > len(b) {
		return Record{}, 0, &errBad{fmt.Sprintf("length %d past end", pl)}
	}
	p := b[HeaderSize : HeaderSize+pl]
	if binary.LittleEndian.Uint32(b[16:]) != recordCRC(seg, b[:16], p) {
		return Record{}, 0, &errBad{"checksum mismatch"}
	}
	// The checksum does not cover bytes 20-23 nor the padding: they must
	// be zero, or a damaged record would read as data.
	if binary.LittleEndian.Uint16(b[6:]) != 0 || binary.LittleEndian.Uint32(b[20:]) != 0 {
		return Record{}, 0, &errBad{"nonzero reserved bytes"}
	}
	for _, c := range b[HeaderSize+pl : total] {
		if c != 0 {
			return Record{}, 0, &errBad{"nonzero padding"}
		}
	}
	r := Record{Type: typ, Flags: b[5], Seq: binary.LittleEndian.Uint64(b[8:])}
	switch typ {
	case TypeWrite, TypeUndo:
		if pl < writeFixed {
			return Record{}, 0, &errBad{"short write payload"}
		}
		r.Offset = int64(binary.LittleEndian.Uint64(p[0:]))
		r.Time = time.Unix(0, int64(binary.LittleEndian.Uint64(p[8:]))).UTC()
		r.Data = p[writeFixed:]
		if r.Flags&FlagZero != 0 {
			n := uint64(0)
			if pl == writeFixed+8 {
				n = binary.LittleEndian.Uint64(p[writeFixed:])
			}
			if pl != writeFixed+8 || n > MaxPayload-writeFixed {
				return Record{}, 0, &errBad{"bad zero record"}
			}
			r.Data = zeroData()[:n:n]
		}
		if r.Offset < 0 {
			return Record{}, 0, &errBad{"negative offset"}
		}
	case TypeTag:
		if pl < 8 {
			return Record{}, 0, &errBad{"short tag payload"}
		}
		t := &TagInfo{Time: time.Unix(0, int64(binary.LittleEndian.Uint64(p[0:]))).UTC()}
		o := 8
		var fields [3]string
		for i := range fields {
			if o+2 > len(p) {
				return Record{}, 0, &errBad{"short tag payload"}
			}
			n := int(binary.LittleEndian.Uint16(p[o:]))
			o += 2
			if o+n > len(p) {
				return Record{}, 0, &errBad{"short tag payload"}
			}
			fields[i] = string(p[o : o+n])
			o += n
		}
		if o != len(p) {
			return Record{}, 0, &errBad{"tag payload has trailing bytes"}
		}
		t.Name, t.App, t.ID = fields[0], fields[1], fields[2]
		r.Tag = t
		r.Time = t.Time
	case TypeEnd:
		if pl != 0 {
			return Record{}, 0, &errBad{"end record with payload"}
		}
	}
	return r, total, nil
}

// segment file header: magic[8] index[8] firstSeq[8] crc[4] pad[4]
func encodeSegHeader(magic string, index, firstSeq uint64) []byte {
	b := make([]byte, segHeaderSize)
	copy(b, magic)
	binary.LittleEndian.PutUint64(b[8:], index)
	binary.LittleEndian.PutUint64(b[16:], firstSeq)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagnoli))
	return b
}

func readSegHeader(f vfs.File, magic string) (index, firstSeq uint64, ok bool) {
	b := make([]byte, segHeaderSize)
	if err := vfs.ReadFull(f, b, 0); err != nil {
		return 0, 0, false
	}
	if string(b[:8]) != magic || binary.LittleEndian.Uint32(b[24:]) != crc32.Checksum(b[:24], castagnoli) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[8:]), binary.LittleEndian.Uint64(b[16:]), true
}

// scanner reads the records of one segment in order through a buffer:
// read from the file, or a durable group of the log adopted whole
// (adopt: the log's own buffer, handed over without a copy).
type scanner struct {
	f     vfs.File
	seg   uint64
	off   int64 // file offset of buf[0]
	buf   []byte
	pos   int // next record in buf
	end   int64
	limit int64 // >off: file reads stop here (a kept group starts there)
	chunk int
	// gen numbers the buffers in the order they became buf; bufKept
	// says buf is an adopted group, given back through giveBack.
	gen     uint64
	bufGen  uint64
	bufKept bool
	old     []heldBuf // buffers records were returned from, until release
	pool    [][]byte  // buffers free for reuse
	// giveBack takes an adopted group's buffer back once released.
	giveBack func([]byte)
}

// heldBuf is a buffer records were returned from.
type heldBuf struct {
	b    []byte
	gen  uint64
	kept bool
}

func newScanner(f vfs.File, seg uint64, off, end int64) *scanner {
	return &scanner{f: f, seg: seg, off: off, end: end, chunk: 4 << 20}
}

// follow makes s, a scanner of the next segment, hold the buffers prev
// still holds, so that records returned before stay valid until
// release, and reuse its pool.
func (s *scanner) follow(prev *scanner) {
	s.old, s.pool, s.gen, s.giveBack = prev.old, prev.pool, prev.gen, prev.giveBack
	if prev.buf != nil {
		s.old = append(s.old, heldBuf{prev.buf, prev.bufGen, prev.bufKept})
	}
	s.gen++
	s.bufGen = s.gen
}

// offset is the file offset of the next record.
func (s *scanner) offset() int64 { return s.off + int64(s.pos) }

// drained says every byte of buf has been returned as records.
func (s *scanner) drained() bool { return s.pos == len(s.buf) }

// adopt makes b, the bytes of the segment at offset off (whole records,
// durable), the buffer to read from; s must be drained. b is given back
// through giveBack once released.
func (s *scanner) adopt(b []byte, off int64) {
	s.swap(b, true)
	s.off, s.pos = off, 0
}

// swap makes nb the current buffer, keeping the old one for release.
func (s *scanner) swap(nb []byte, kept bool) {
	if s.buf != nil {
		s.old = append(s.old, heldBuf{s.buf, s.bufGen, s.bufKept})
	}
	s.gen++
	s.buf, s.bufGen, s.bufKept = nb, s.gen, kept
}

// fill makes at least n bytes available at pos, or as many as the file
// holds. Records already returned keep their buffer until release.
func (s *scanner) fill(n int) error {
	if len(s.buf)-s.pos >= n {
		return nil
	}
	rest := s.buf[s.pos:]
	s.off += int64(s.pos)
	s.pos = 0
	want := max(s.chunk, n)
	stop := s.end
	if s.limit > s.off && s.limit < stop {
		stop = s.limit
	}
	if s.off+int64(want) > stop {
		want = int(stop - s.off)
	}
	if want < n && s.off+int64(n) <= s.end {
		want = n // a record never crosses a kept group's start
	}
	if want < len(rest) {
		want = len(rest)
	}
	nb := s.take(want)
	copy(nb, rest)
	if want > len(rest) {
		k, err := s.f.ReadAt(nb[len(rest):], s.off+int64(len(rest)))
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		// Only what was read: a reused buffer holds older bytes past it.
		nb = nb[:len(rest)+k]
	}
	s.swap(nb, false)
	return nil
}

func (s *scanner) take(n int) []byte {
	for i, b := range s.pool {
		if cap(b) >= n {
			s.pool = append(s.pool[:i], s.pool[i+1:]...)
			return b[:n]
		}
	}
	return make([]byte, n) // sized to what is read: a caught-up reader reads little
}

// release lets the buffers of records returned before the current
// buffer be reused.
func (s *scanner) release() { s.releaseBefore(s.bufGen) }

// releaseBefore lets the buffers that became current before buffer gen
// be reused: adopted groups go back to the log, read buffers to the
// pool.
func (s *scanner) releaseBefore(gen uint64) {
	keep := s.old[:0]
	for _, h := range s.old {
		switch {
		case h.gen >= gen:
			keep = append(keep, h)
		case h.kept:
			if s.giveBack != nil {
				s.giveBack(h.b)
			}
		default:
			s.pool = append(s.pool, h.b)
		}
	}
	clear(s.old[len(keep):])
	s.old = keep
	// A reader may hold two batches (one writing the target while the
	// next is captured): its buffers come back a batch at a time and
	// serve the next one, rather than fresh ones faulted in.
	if len(s.pool) > scanPool {
		s.pool = s.pool[len(s.pool)-scanPool:]
	}
}

// scanPool is how many read buffers a busy scanner keeps for reuse
// (4 MiB each: a 32 MiB batch and some).
const scanPool = 12

// idle lets a caught-up scanner's spare buffers go but three.
func (s *scanner) idle() {
	if len(s.pool) > 3 {
		clear(s.pool[:len(s.pool)-3])
		s.pool = s.pool[len(s.pool)-3:]
	}
}

// next returns the next record, an *errBad error where the valid log ends,
// or an I/O error.
func (s *scanner) next() (Record, error) {
	if err := s.fill(HeaderSize); err != nil {
		return Record{}, err
	}
	if len(s.buf)-s.pos >= HeaderSize {
		pl := int(binary.LittleEndian.Uint32(s.buf[s.pos:]))
		if pl <= MaxPayload {
			if err := s.fill(HeaderSize + align8(pl)); err != nil {
				return Record{}, err
			}
		}
	}
	r, n, err := DecodeRecord(s.buf[s.pos:], s.seg)
	if err != nil {
		return Record{}, err
	}
	s.pos += n
	return r, nil
}
