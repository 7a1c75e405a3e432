package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Frame format constants (see the package documentation for the layout).
const (
	// FrameVersion is the version of the frame layout, byte 4 of every
	// header. It changes only if the header itself changes; what messages
	// mean is the protocol version negotiated in the handshake.
	FrameVersion = 1
	// HeaderSize is the size of a frame header.
	HeaderSize = 32
	// MaxPayload is the hard maximum payload of a frame. A Decoder or an
	// Encoder may be set lower, never higher.
	MaxPayload = 16 << 20
	// handshakePayload is the maximum payload while the peer is not yet
	// authenticated, so that a stranger cannot make this side allocate
	// more than a few kilobytes.
	handshakePayload = 8 << 10
	// pairingPayload is the maximum payload of the disk list and the pair
	// acceptance, right after authentication.
	pairingPayload = 1 << 20
)

// magic opens every frame: "MTWR", mtconsole wire.
var magic = [4]byte{'M', 'T', 'W', 'R'}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Type is a frame's type: which message its payload holds.
type Type uint8

// Frame types. The values are part of the protocol: never renumber.
const (
	TypeHello        Type = 1  // client → server: offered versions, role, host, nonce
	TypeWelcome      Type = 2  // server → client: chosen version, role, host, nonce
	TypeAuth         Type = 3  // both: HMAC proof of the shared key
	TypeDiskList     Type = 4  // process server → master target: the disks it serves
	TypePairAccept   Type = 5  // master target → process server: paired disks and resume points
	TypeResyncData   Type = 6  // ps → mt: a range of the source disk, in disk order
	TypeZeroRange    Type = 7  // ps → mt: a range of the source that reads as zeros
	TypeHashRequest  Type = 8  // ps → mt: hash these chunks of your target
	TypeHashResponse Type = 9  // mt → ps: the hashes
	TypeState        Type = 10 // ps → mt: the pair's phase and resync progress
	TypeWrite        Type = 11 // ps → mt: a write to the source disk
	TypeTag          Type = 12 // ps → mt: a consistency tag
	TypeAck          Type = 13 // mt → ps: cumulative durable sequence, backlog, free journal
	TypeCredit       Type = 14 // mt → ps: flow-control credit in bytes
	TypeHeartbeat    Type = 15 // both: sender's clock and latest sequence per disk
	TypeError        Type = 16 // both: an error, fatal or not
	TypeTagRequest   Type = 17 // mt → ps: issue a tag on these disks at one point of their write order
	maxType               = TypeTagRequest
)

var typeNames = [...]string{
	TypeHello:        "hello",
	TypeWelcome:      "welcome",
	TypeAuth:         "auth",
	TypeDiskList:     "disk-list",
	TypePairAccept:   "pair-accept",
	TypeResyncData:   "resync-data",
	TypeZeroRange:    "zero-range",
	TypeHashRequest:  "hash-request",
	TypeHashResponse: "hash-response",
	TypeState:        "state",
	TypeWrite:        "write",
	TypeTag:          "tag",
	TypeAck:          "ack",
	TypeCredit:       "credit",
	TypeHeartbeat:    "heartbeat",
	TypeError:        "error",
	TypeTagRequest:   "tag-request",
}

func (t Type) known() bool { return t >= TypeHello && t <= maxType }

func (t Type) String() string {
	if t.known() {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Frame is one unit on the wire. Seq is the frame's position on its
// connection, in one direction: the first frame is 1 and every frame is the
// previous plus one. Disk is 0 for messages about the whole connection.
type Frame struct {
	Type    Type
	Flags   uint16 // reserved: zero in frame version 1
	Seq     uint64
	Disk    uint32
	Payload []byte

	pb *payloadBuf // the PayloadPool memory Payload is in, if any
}

// FrameSize is the number of bytes a frame with an n-byte payload takes on
// the wire.
func FrameSize(n int) int { return HeaderSize + align8(n+4) }

func align8(n int) int { return (n + 7) &^ 7 }

// putHeader writes f's header, with payload length n, into h.
func putHeader(h []byte, f *Frame, n int) {
	copy(h[0:4], magic[:])
	h[4] = FrameVersion
	h[5] = byte(f.Type)
	binary.LittleEndian.PutUint16(h[6:], f.Flags)
	binary.LittleEndian.PutUint64(h[8:], f.Seq)
	binary.LittleEndian.PutUint32(h[16:], f.Disk)
	binary.LittleEndian.PutUint32(h[20:], uint32(n))
	binary.LittleEndian.PutUint32(h[24:], 0)
	binary.LittleEndian.PutUint32(h[28:], crc32.Checksum(h[:28], castagnoli))
}

// payloadCRC continues the header's CRC over the payload, so a payload
// never passes behind another frame's header.
func payloadCRC(h, payload []byte) uint32 {
	return crc32.Update(binary.LittleEndian.Uint32(h[28:]), castagnoli, payload)
}

// AppendFrame appends f, encoded with f.Seq as given, to b. It does not
// check f: use an Encoder to write frames a Decoder accepts. Tests use it
// to build frames an Encoder would refuse to write.
func AppendFrame(b []byte, f Frame) []byte {
	start := len(b)
	b = append(b, make([]byte, FrameSize(len(f.Payload)))...)
	h := b[start : start+HeaderSize]
	putHeader(h, &f, len(f.Payload))
	copy(b[start+HeaderSize:], f.Payload)
	t := b[start+HeaderSize+len(f.Payload):]
	binary.LittleEndian.PutUint32(t, payloadCRC(h, f.Payload))
	return b
}

// limit clamps a configured maximum payload into (0, MaxPayload].
func limit(n int) int {
	if n <= 0 || n > MaxPayload {
		return MaxPayload
	}
	return n
}

// An Encoder writes frames to a stream through a buffer, numbering them
// 1, 2, 3, ... It is not safe for concurrent use. After a write error every
// call returns that error: part of a frame may have been written.
type Encoder struct {
	w       *bufio.Writer
	seq     uint64
	max     int
	hdr     [HeaderSize]byte
	trailer [12]byte
	scratch []byte
	err     error
}

// NewEncoder returns an Encoder writing to w with a 64 KiB buffer and the
// maximum payload MaxPayload.
func NewEncoder(w io.Writer) *Encoder {
	return &Encoder{w: bufio.NewWriterSize(w, 64<<10), max: MaxPayload}
}

// SetMaxPayload lowers the largest payload the Encoder writes; n <= 0 or
// above MaxPayload means MaxPayload.
func (e *Encoder) SetMaxPayload(n int) { e.max = limit(n) }

// Seq is the sequence of the last frame written (0 before the first).
func (e *Encoder) Seq() uint64 { return e.seq }

// WriteFrame buffers one frame with the next sequence. It refuses an
// unknown type and a payload above the maximum without writing anything.
func (e *Encoder) WriteFrame(t Type, disk uint32, payload []byte) error {
	return e.writeFrame(t, disk, payload, nil)
}

// writeFrame writes a frame whose payload is head then tail, so the data
// of a Write goes from the caller's buffer to the stream without a copy.
func (e *Encoder) writeFrame(t Type, disk uint32, head, tail []byte) error {
	if e.err != nil {
		return e.err
	}
	n := len(head) + len(tail)
	if !t.known() {
		return fmt.Errorf("wire: encode %v: %w", t, ErrUnknownType)
	}
	if n > e.max {
		return fmt.Errorf("wire: encode %v: %w: payload %d bytes, maximum %d", t, ErrTooLarge, n, e.max)
	}
	f := Frame{Type: t, Seq: e.seq + 1, Disk: disk}
	putHeader(e.hdr[:], &f, n)
	crc := crc32.Update(payloadCRC(e.hdr[:], head), castagnoli, tail)
	binary.LittleEndian.PutUint32(e.trailer[:], crc)
	clear(e.trailer[4:])
	pad := FrameSize(n) - HeaderSize - n
	for _, b := range [][]byte{e.hdr[:], head, tail, e.trailer[:pad]} {
		if _, err := e.w.Write(b); err != nil {
			return e.fail(err)
		}
	}
	e.seq++
	return nil
}

// Encode marshals m and buffers it as one frame.
func (e *Encoder) Encode(m Message) error {
	if e.err != nil {
		return e.err
	}
	if err := checkDisk(m.Type(), m.DiskID()); err != nil {
		return err
	}
	if n := Cost(m); n > int64(e.max) {
		// Compressed or not, data is held to the maximum payload.
		return fmt.Errorf("wire: encode %v: %w: %d bytes of data, maximum %d", m.Type(), ErrTooLarge, n, e.max)
	}
	var head, tail []byte
	var err error
	if dm, ok := m.(splitMarshaler); ok {
		head, tail, err = dm.marshalSplit(e.scratch[:0])
	} else {
		head, err = m.AppendMarshal(e.scratch[:0])
	}
	if err != nil {
		return err
	}
	e.scratch = head[:0]
	return e.writeFrame(m.Type(), m.DiskID(), head, tail)
}

// Flush writes the buffered frames to the underlying writer.
func (e *Encoder) Flush() error {
	if e.err != nil {
		return e.err
	}
	if err := e.w.Flush(); err != nil {
		return e.fail(err)
	}
	return nil
}

func (e *Encoder) fail(err error) error {
	e.err = fmt.Errorf("wire: write frame %d: %w", e.seq+1, err)
	return e.err
}

// A Decoder reads frames from a stream and checks every rule of the
// format before it returns one: magic, header checksum, frame version,
// reserved bits, known type, length within the maximum (before anything
// is allocated for the payload), sequence, payload checksum and padding.
// It is not safe for concurrent use. After an error every call returns
// that error; io.EOF means the stream ended cleanly between two frames.
type Decoder struct {
	r     *bufio.Reader
	seq   uint64
	max   int
	err   error
	reuse bool
	buf   []byte // the payload buffer, when reused
	pool  *PayloadPool
}

// NewDecoder returns a Decoder reading from r with a 64 KiB buffer and the
// maximum payload MaxPayload.
func NewDecoder(r io.Reader) *Decoder {
	return &Decoder{r: bufio.NewReaderSize(r, 64<<10), max: MaxPayload}
}

// SetMaxPayload sets the largest payload the Decoder accepts; n <= 0 or
// above MaxPayload means MaxPayload.
func (d *Decoder) SetMaxPayload(n int) { d.max = limit(n) }

// SetReuseBuffer makes the Decoder read every payload into one buffer it
// keeps (as bufio.Scanner does): a frame's payload, and the byte slices of
// a message decoded from it, are then valid only until the next read. It
// spares an allocation per frame, which is most of the cost of receiving
// large writes; a receiver that copies the data before reading on (the
// inbound journal's Append does) should turn it on.
func (d *Decoder) SetReuseBuffer(on bool) {
	d.reuse = on
	if !on {
		d.buf = nil
	}
}

// Seq is the sequence of the last frame read (0 before the first).
func (d *Decoder) Seq() uint64 { return d.seq }

// ReadFrame reads the next frame. Its payload is newly allocated and
// belongs to the caller, unless SetReuseBuffer is on.
func (d *Decoder) ReadFrame() (Frame, error) {
	if d.err != nil {
		return Frame{}, d.err
	}
	f, err := d.readFrame()
	if err != nil {
		d.err = err
		return Frame{}, err
	}
	d.seq = f.Seq
	return f, nil
}

// Decode reads the next frame and decodes its message. The uncompressed
// data of a Write or ResyncData is held to the Decoder's maximum payload
// too.
func (d *Decoder) Decode() (Message, error) {
	f, err := d.ReadFrame()
	if err != nil {
		return nil, err
	}
	m, err := decodeMessage(f, d.max)
	if err != nil {
		d.err = err
	}
	return m, err
}

func (d *Decoder) readFrame() (Frame, error) {
	var h [HeaderSize]byte
	if n, err := io.ReadFull(d.r, h[:]); err != nil {
		if err == io.EOF && n == 0 {
			return Frame{}, io.EOF
		}
		return Frame{}, err
	}
	f, n, err := parseHeader(h[:], d.seq+1, d.max)
	if err != nil {
		return Frame{}, err
	}
	// n is at most d.max here: the claimed length was checked before this
	// allocation.
	var body []byte
	var pb *payloadBuf
	if d.reuse {
		if cap(d.buf) < align8(n+4) {
			d.buf = make([]byte, align8(n+4))
		}
		body = d.buf[:align8(n+4)]
	} else if d.pool != nil && f.Type == TypeResyncData && n >= pooledMin {
		pb, body = d.pool.get(align8(n+4), resyncDataHead)
	} else {
		body = make([]byte, align8(n+4))
	}
	if _, err := io.ReadFull(d.r, body); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	p := body[:n:n]
	if got, want := binary.LittleEndian.Uint32(body[n:]), payloadCRC(h[:], p); got != want {
		return Frame{}, fmt.Errorf("wire: frame %d (%v, %d bytes): %w (stored %08x, computed %08x)", f.Seq, f.Type, n, ErrPayloadCRC, got, want)
	}
	for _, c := range body[n+4:] {
		if c != 0 {
			return Frame{}, fmt.Errorf("wire: frame %d: %w: nonzero padding", f.Seq, ErrMalformed)
		}
	}
	f.Payload, f.pb = p, pb
	return f, nil
}

// parseHeader checks a frame header that should carry sequence seq and a
// payload of at most max bytes, and returns the frame (without payload)
// and its payload length.
func parseHeader(h []byte, seq uint64, max int) (Frame, int, error) {
	if [4]byte(h[0:4]) != magic {
		return Frame{}, 0, fmt.Errorf("wire: frame %d: %w (% x)", seq, ErrMagic, h[0:4])
	}
	if got, want := binary.LittleEndian.Uint32(h[28:]), crc32.Checksum(h[:28], castagnoli); got != want {
		return Frame{}, 0, fmt.Errorf("wire: frame %d: %w (stored %08x, computed %08x)", seq, ErrHeaderCRC, got, want)
	}
	if h[4] != FrameVersion {
		return Frame{}, 0, fmt.Errorf("wire: frame %d: %w %d (this build speaks %d)", seq, ErrFrameVersion, h[4], FrameVersion)
	}
	f := Frame{
		Type:  Type(h[5]),
		Flags: binary.LittleEndian.Uint16(h[6:]),
		Seq:   binary.LittleEndian.Uint64(h[8:]),
		Disk:  binary.LittleEndian.Uint32(h[16:]),
	}
	n := binary.LittleEndian.Uint32(h[20:])
	if f.Flags != 0 || binary.LittleEndian.Uint32(h[24:]) != 0 {
		return Frame{}, 0, fmt.Errorf("wire: frame %d: %w: reserved header bits set", seq, ErrMalformed)
	}
	if !f.Type.known() {
		return Frame{}, 0, fmt.Errorf("wire: frame %d: %w %d", seq, ErrUnknownType, h[5])
	}
	if uint64(n) > uint64(max) {
		return Frame{}, 0, fmt.Errorf("wire: frame %d (%v): %w: payload %d bytes, maximum %d", seq, f.Type, ErrTooLarge, n, max)
	}
	if f.Seq != seq {
		return Frame{}, 0, fmt.Errorf("wire: frame %v: %w: sequence %d, expected %d", f.Type, ErrSequence, f.Seq, seq)
	}
	return f, int(n), nil
}
