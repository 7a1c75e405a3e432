package wire

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Message is one typed message: the payload of one frame. The set is
// closed: the types of this package are all the messages there are.
//
// Messages about one disk (ResyncData, ZeroRange, HashRequest,
// HashResponse, State, Write, Tag, Ack, and Error optionally) have a Disk
// field; it travels in the frame header, not in the payload, so a receiver
// can route a frame without decoding it. AppendMarshal and Unmarshal handle
// the payload only; Encoder.Encode and DecodeMessage carry Disk.
type Message interface {
	// Type is the frame type that carries the message.
	Type() Type
	// DiskID is the disk the message is about, 0 for the connection.
	DiskID() uint32
	// AppendMarshal appends the message's payload to b. It refuses a
	// message that Unmarshal would refuse.
	AppendMarshal(b []byte) ([]byte, error)
	// Unmarshal decodes a payload into the message, checking every length
	// and range. It never panics. Byte slices of the result may alias p.
	Unmarshal(p []byte) error

	setDisk(uint32)
}

// Marshal returns m's payload.
func Marshal(m Message) ([]byte, error) { return m.AppendMarshal(nil) }

// DecodeMessage decodes a frame's message, with its Disk from the header.
func DecodeMessage(f Frame) (Message, error) { return decodeMessage(f, MaxPayload) }

// decodeMessage is DecodeMessage with the largest uncompressed data a
// Write or ResyncData may declare: a Decoder passes its own maximum, so
// compression never lets a peer past the limit its frames are held to.
func decodeMessage(f Frame, limit int) (Message, error) {
	m := newMessage(f.Type)
	if m == nil {
		return nil, fmt.Errorf("wire: frame %d: %w %d", f.Seq, ErrUnknownType, uint8(f.Type))
	}
	if err := checkDisk(f.Type, f.Disk); err != nil {
		return nil, wrap(err, "wire: frame %d", f.Seq)
	}
	var err error
	switch m := m.(type) {
	case *Write:
		err = m.unmarshal(f.Payload, limit)
	case *ResyncData:
		err = m.unmarshal(f.Payload, limit)
		m.pb = f.pb
	default:
		err = m.Unmarshal(f.Payload)
	}
	if err != nil {
		return nil, wrap(err, "wire: frame %d", f.Seq)
	}
	m.setDisk(f.Disk)
	return m, nil
}

func newMessage(t Type) Message {
	switch t {
	case TypeHello:
		return new(Hello)
	case TypeWelcome:
		return new(Welcome)
	case TypeAuth:
		return new(Auth)
	case TypeDiskList:
		return new(DiskList)
	case TypePairAccept:
		return new(PairAccept)
	case TypeResyncData:
		return new(ResyncData)
	case TypeZeroRange:
		return new(ZeroRange)
	case TypeHashRequest:
		return new(HashRequest)
	case TypeHashResponse:
		return new(HashResponse)
	case TypeState:
		return new(State)
	case TypeWrite:
		return new(Write)
	case TypeTag:
		return new(Tag)
	case TypeAck:
		return new(Ack)
	case TypeCredit:
		return new(Credit)
	case TypeHeartbeat:
		return new(Heartbeat)
	case TypeError:
		return new(Error)
	case TypeTagRequest:
		return new(TagRequest)
	}
	return nil
}

// diskBound reports whether messages of type t are about one disk.
func diskBound(t Type) bool {
	switch t {
	case TypeResyncData, TypeZeroRange, TypeHashRequest, TypeHashResponse,
		TypeState, TypeWrite, TypeTag, TypeAck:
		return true
	}
	return false
}

// checkDisk enforces the header's disk id rule: nonzero for messages about
// a disk, zero for messages about the connection, either for Error.
func checkDisk(t Type, disk uint32) error {
	switch {
	case t == TypeError:
	case diskBound(t) && disk == 0:
		return fmt.Errorf("wire: %v: %w: disk id 0", t, ErrMalformed)
	case !diskBound(t) && disk != 0:
		return fmt.Errorf("wire: %v: %w: disk id %d on a connection message", t, ErrMalformed, disk)
	}
	return nil
}

// connMsg is embedded by the messages about the whole connection.
type connMsg struct{}

func (connMsg) DiskID() uint32 { return 0 }
func (connMsg) setDisk(uint32) {}

// Limits of message contents.
const (
	// NonceSize is the size of a handshake nonce.
	NonceSize = 32
	// ProofSize is the size of a handshake proof (HMAC-SHA256).
	ProofSize = 32
	// HashSize is the size of a chunk hash (SHA-256 or BLAKE2b-256).
	HashSize = 32
	// MaxVersions is the most protocol versions a Hello may offer.
	MaxVersions = 16
	// MaxHashes is the most chunk hashes one request or response covers.
	MaxHashes = 1 << 16
	// MaxCredit is the largest credit one Credit message grants.
	MaxCredit = 1 << 40
)

// Time on the wire is int64 Unix nanoseconds; 0 is the zero time.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return appendU64(b, 0)
	}
	return appendU64(b, uint64(t.UnixNano()))
}

func (r *reader) time(what string) time.Time {
	ns := int64(r.u64(what))
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// checkTime refuses a time that int64 nanoseconds cannot hold.
func checkTime(t Type, what string, v time.Time) error {
	if v.IsZero() {
		return nil
	}
	if v.Year() < 1678 || v.Year() > 2261 {
		return fmt.Errorf("wire: %v: %w: %s %v out of range", t, ErrMalformed, what, v)
	}
	return nil
}

func malformed(t Type, format string, args ...any) error {
	return fmt.Errorf("wire: %v: %w: %s", t, ErrMalformed, fmt.Sprintf(format, args...))
}

// ---- handshake ----

// Hello opens the handshake: the client's offer.
type Hello struct {
	connMsg
	Versions []uint16 // protocol versions offered, strictly ascending
	Role     Role
	HostID   string
	HostName string
	Nonce    [NonceSize]byte // fresh random bytes for this handshake only
}

func (*Hello) Type() Type { return TypeHello }

func (m *Hello) AppendMarshal(b []byte) ([]byte, error) {
	if err := checkPeer(TypeHello, m.Role, m.Versions, m.HostID, m.HostName); err != nil {
		return b, err
	}
	return appendPeer(b, m.Role, m.Versions, &m.Nonce, m.HostID, m.HostName), nil
}

func (m *Hello) Unmarshal(p []byte) error {
	r := reader{t: TypeHello, b: p}
	*m = Hello{}
	m.Role, m.Versions, m.HostID, m.HostName = readPeer(&r, &m.Nonce)
	return r.done()
}

// Welcome answers a Hello: the server's side and the version chosen.
type Welcome struct {
	connMsg
	Version  uint16   // the highest version both sides offer
	Versions []uint16 // the server's versions, strictly ascending
	Role     Role
	HostID   string
	HostName string
	Nonce    [NonceSize]byte
}

func (*Welcome) Type() Type { return TypeWelcome }

func (m *Welcome) AppendMarshal(b []byte) ([]byte, error) {
	if err := checkPeer(TypeWelcome, m.Role, m.Versions, m.HostID, m.HostName); err != nil {
		return b, err
	}
	if !containsVersion(m.Versions, m.Version) {
		return b, malformed(TypeWelcome, "chosen version %d not among %v", m.Version, m.Versions)
	}
	b = appendU16(b, m.Version)
	return appendPeer(b, m.Role, m.Versions, &m.Nonce, m.HostID, m.HostName), nil
}

func (m *Welcome) Unmarshal(p []byte) error {
	r := reader{t: TypeWelcome, b: p}
	*m = Welcome{}
	m.Version = r.u16("version")
	m.Role, m.Versions, m.HostID, m.HostName = readPeer(&r, &m.Nonce)
	if r.err == nil && !containsVersion(m.Versions, m.Version) {
		r.fail("chosen version %d not among %v", m.Version, m.Versions)
	}
	return r.done()
}

// Hello and Welcome share: role u8, n u8, n × version u16, nonce, host id,
// host name.
func appendPeer(b []byte, role Role, versions []uint16, nonce *[NonceSize]byte, id, name string) []byte {
	b = append(b, byte(role), byte(len(versions)))
	for _, v := range versions {
		b = appendU16(b, v)
	}
	b = append(b, nonce[:]...)
	b = appendStr(b, id)
	return appendStr(b, name)
}

func readPeer(r *reader, nonce *[NonceSize]byte) (Role, []uint16, string, string) {
	role := Role(r.u8("role"))
	n := int(r.u8("version count"))
	if r.err == nil && (n == 0 || n > MaxVersions) {
		r.fail("%d versions offered (1 to %d)", n, MaxVersions)
	}
	var vs []uint16
	if r.err == nil {
		vs = make([]uint16, n)
		for i := range vs {
			vs[i] = r.u16("version")
		}
	}
	copy(nonce[:], r.take(NonceSize, "nonce"))
	id := r.str("host id", maxName)
	name := r.str("host name", maxName)
	if r.err == nil {
		if err := checkPeer(r.t, role, vs, id, name); err != nil {
			r.err = err
		}
	}
	return role, vs, id, name
}

func checkPeer(t Type, role Role, versions []uint16, id, name string) error {
	if !role.known() {
		return malformed(t, "unknown role %d", role)
	}
	if len(versions) == 0 || len(versions) > MaxVersions {
		return malformed(t, "%d versions offered (1 to %d)", len(versions), MaxVersions)
	}
	for i, v := range versions {
		if v == 0 || (i > 0 && v <= versions[i-1]) {
			return malformed(t, "versions %v not strictly ascending from 1", versions)
		}
	}
	if err := checkStr(t, "host id", id, maxName); err != nil {
		return err
	}
	return checkStr(t, "host name", name, maxName)
}

func containsVersion(vs []uint16, v uint16) bool {
	for _, x := range vs {
		if x == v {
			return true
		}
	}
	return false
}

// Auth carries a handshake proof: HMAC-SHA256 of the transcript under the
// key derived from the passphrase.
type Auth struct {
	connMsg
	Proof [ProofSize]byte
}

func (*Auth) Type() Type { return TypeAuth }

func (m *Auth) AppendMarshal(b []byte) ([]byte, error) { return append(b, m.Proof[:]...), nil }

func (m *Auth) Unmarshal(p []byte) error {
	r := reader{t: TypeAuth, b: p}
	copy(m.Proof[:], r.take(ProofSize, "proof"))
	return r.done()
}

// Disk describes one source disk a process server serves.
type Disk struct {
	ID        uint32 // nonzero, unique on the connection; frames name the disk by it
	Name      string // the source's name for it (a path or a device id)
	Size      int64  // bytes
	BlockSize uint32 // logical block size: a power of two from 512 to 64 KiB
	// AppConsistentInterval is how often the source host takes an
	// application-consistent tag, as the process server is configured to
	// report it (0: none reported). Whole seconds, at most 2^32-1. Sent
	// from protocol version 2 on (see DiskList).
	AppConsistentInterval time.Duration
}

// DiskList is the process server's list of disks, sent once after
// authentication.
type DiskList struct {
	connMsg
	Disks []Disk
}

func (*DiskList) Type() Type { return TypeDiskList }

// disk entry: id u32, block size u32, size u64, name
const diskEntryMin = 4 + 4 + 8 + 2

func (m *DiskList) AppendMarshal(b []byte) ([]byte, error) {
	if err := checkDisks(m.Disks); err != nil {
		return b, err
	}
	b = appendU32(b, uint32(len(m.Disks)))
	app := false
	for _, d := range m.Disks {
		b = appendU32(b, d.ID)
		b = appendU32(b, d.BlockSize)
		b = appendU64(b, uint64(d.Size))
		b = appendStr(b, d.Name)
		app = app || d.AppConsistentInterval != 0
	}
	// Version 2's optional trailer: only when there is something to say,
	// so a list without it is version 1's, byte for byte.
	if app {
		b = appendU32(b, uint32(len(m.Disks)))
		for _, d := range m.Disks {
			b = appendU32(b, uint32(d.AppConsistentInterval/time.Second))
		}
	}
	return b, nil
}

// WithoutV2 is the list as a version 1 peer reads it: without the
// application-consistent intervals (a version 1 decoder refuses the
// trailer as trailing bytes).
func (m *DiskList) WithoutV2() *DiskList {
	out := &DiskList{Disks: slices.Clone(m.Disks)}
	for i := range out.Disks {
		out.Disks[i].AppConsistentInterval = 0
	}
	return out
}

func (m *DiskList) Unmarshal(p []byte) error {
	r := reader{t: TypeDiskList, b: p}
	n := r.count(diskEntryMin, "disks")
	m.Disks = nil
	if n > 0 {
		m.Disks = make([]Disk, n)
	}
	for i := range m.Disks {
		d := &m.Disks[i]
		d.ID = r.u32("disk id")
		d.BlockSize = r.u32("block size")
		d.Size = r.nonNeg("disk size")
		d.Name = r.str("disk name", maxName)
	}
	if r.err == nil && len(r.b) > 0 {
		// version 2's trailer: one interval per disk
		if c := r.u32("app-consistent count"); r.err == nil && int(c) != len(m.Disks) {
			r.fail("%d app-consistent intervals for %d disks", c, len(m.Disks))
		}
		for i := range m.Disks {
			if r.err != nil {
				break
			}
			m.Disks[i].AppConsistentInterval = time.Duration(r.u32("app-consistent interval")) * time.Second
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	return checkDisks(m.Disks)
}

func checkDisks(ds []Disk) error {
	seen := make(map[uint32]bool, len(ds))
	for _, d := range ds {
		switch {
		case d.ID == 0:
			return malformed(TypeDiskList, "disk id 0")
		case seen[d.ID]:
			return malformed(TypeDiskList, "disk id %d twice", d.ID)
		case d.Size < 0:
			return malformed(TypeDiskList, "disk %d: negative size", d.ID)
		case d.BlockSize < 512 || d.BlockSize > 64<<10 || d.BlockSize&(d.BlockSize-1) != 0:
			return malformed(TypeDiskList, "disk %d: block size %d (a power of two from 512 to 65536)", d.ID, d.BlockSize)
		case d.AppConsistentInterval < 0 || d.AppConsistentInterval%time.Second != 0 || d.AppConsistentInterval/time.Second > math.MaxUint32:
			return malformed(TypeDiskList, "disk %d: app-consistent interval %v (whole seconds, 0 to 2^32-1)", d.ID, d.AppConsistentInterval)
		}
		if err := checkStr(TypeDiskList, "disk name", d.Name, maxName); err != nil {
			return err
		}
		seen[d.ID] = true
	}
	return nil
}

// Start says how a paired disk starts streaming.
type Start uint8

// Start modes. The values are part of the protocol.
const (
	// StartStream: the target holds every write up to Seq; send from
	// Seq+1. If the process server no longer has those writes it must
	// resync instead.
	StartStream Start = 1
	// StartFull: the target is empty or unknown; copy the whole disk.
	StartFull Start = 2
	// StartHashes: the target holds an older copy (the failback case);
	// compare chunk hashes and send only the chunks that differ.
	StartHashes Start = 3
)

func (s Start) String() string {
	switch s {
	case StartStream:
		return "stream"
	case StartFull:
		return "full-resync"
	case StartHashes:
		return "hash-resync"
	}
	return fmt.Sprintf("start(%d)", uint8(s))
}

// Pair is one disk the master target accepts, and where it resumes.
type Pair struct {
	Disk  uint32
	Start Start
	// Seq is the disk's last sequence durable in the master target's
	// journal (0 if none): the sender numbers what it sends from Seq+1.
	Seq uint64
}

// PairAccept is the master target's answer to a DiskList: the disks it
// pairs (a subset of the list) and each one's resume point.
type PairAccept struct {
	connMsg
	Pairs []Pair
}

func (*PairAccept) Type() Type { return TypePairAccept }

// pair entry: disk u32, start u8, reserved 3, seq u64
const pairEntry = 16

func (m *PairAccept) AppendMarshal(b []byte) ([]byte, error) {
	if err := checkPairs(m.Pairs); err != nil {
		return b, err
	}
	b = appendU32(b, uint32(len(m.Pairs)))
	for _, p := range m.Pairs {
		b = appendU32(b, p.Disk)
		b = append(b, byte(p.Start), 0, 0, 0)
		b = appendU64(b, p.Seq)
	}
	return b, nil
}

func (m *PairAccept) Unmarshal(p []byte) error {
	r := reader{t: TypePairAccept, b: p}
	n := r.count(pairEntry, "pairs")
	m.Pairs = nil
	if n > 0 {
		m.Pairs = make([]Pair, n)
	}
	for i := range m.Pairs {
		pr := &m.Pairs[i]
		pr.Disk = r.u32("disk id")
		pr.Start = Start(r.u8("start"))
		r.zero(3)
		pr.Seq = r.u64("sequence")
	}
	if err := r.done(); err != nil {
		return err
	}
	return checkPairs(m.Pairs)
}

func checkPairs(ps []Pair) error {
	seen := make(map[uint32]bool, len(ps))
	for _, p := range ps {
		switch {
		case p.Disk == 0:
			return malformed(TypePairAccept, "disk id 0")
		case seen[p.Disk]:
			return malformed(TypePairAccept, "disk %d twice", p.Disk)
		case p.Start < StartStream || p.Start > StartHashes:
			return malformed(TypePairAccept, "disk %d: unknown start %d", p.Disk, p.Start)
		case p.Seq == math.MaxUint64:
			return malformed(TypePairAccept, "disk %d: sequence space exhausted", p.Disk)
		}
		seen[p.Disk] = true
	}
	return nil
}

// ---- data ----

// Both Write and ResyncData carry a block of data after their fixed
// fields: declared (uncompressed) length u32, codec u8, reserved 3, then
// the data as the codec left it. appendBlock appends the block's header
// and, if compressed, its data; uncompressed data is returned as tail, to
// go on the wire from the caller's buffer.
func appendBlock(t Type, b []byte, data []byte, c Compression) (head, tail []byte, err error) {
	if len(data) > MaxPayload {
		return b, nil, fmt.Errorf("wire: %v: %w: %d bytes of data, maximum %d", t, ErrTooLarge, len(data), MaxPayload)
	}
	if !c.known() {
		return b, nil, malformed(t, "unknown compression %d", c)
	}
	b = appendU32(b, uint32(len(data)))
	at := len(b)
	b = append(b, 0, 0, 0, 0)
	b, used := compress(b, data, c)
	b[at] = byte(used)
	if used == CompressNone {
		return b, data, nil
	}
	return b, nil, nil
}

// splitMarshaler is a message whose payload may end with the caller's
// data, uncopied.
type splitMarshaler interface {
	marshalSplit(b []byte) (head, tail []byte, err error)
}

func (r *reader) block(limit int) ([]byte, Compression) {
	n := r.u32("data length")
	c := Compression(r.u8("compression"))
	r.zero(3)
	data := r.rest()
	if r.err != nil {
		return nil, 0
	}
	switch {
	case !c.known():
		r.fail("unknown compression %d", c)
	case uint64(n) > uint64(limit):
		r.fail("declared data length %d above %d", n, limit)
	case c == CompressNone && int(n) != len(data):
		r.fail("declared data length %d, payload holds %d", n, len(data))
	case c != CompressNone && n == 0:
		r.fail("compressed empty data")
	}
	if r.err != nil || c == CompressNone {
		return data, c
	}
	out, err := decompress(data, c, int(n))
	if err != nil {
		r.err = wrap(err, "wire: %v", r.t)
		return nil, 0
	}
	return out, c
}

// checkRange refuses a byte range that a disk offset cannot hold.
func checkRange(t Type, off, n int64) error {
	if off < 0 || n < 0 || off > math.MaxInt64-n {
		return malformed(t, "range at %d, %d bytes, out of range", off, n)
	}
	return nil
}

func checkSeq(t Type, seq uint64) error {
	if seq == 0 {
		return malformed(t, "disk sequence 0")
	}
	return nil
}

// ResyncData is a range of the source disk sent during resync, in
// ascending offset order within a pass.
type ResyncData struct {
	Disk        uint32
	Seq         uint64 // disk sequence
	Offset      int64
	Data        []byte // uncompressed
	Compression Compression

	pb *payloadBuf // PayloadPool memory the payload was read into (Release)
}

func (*ResyncData) Type() Type         { return TypeResyncData }
func (m *ResyncData) DiskID() uint32   { return m.Disk }
func (m *ResyncData) setDisk(d uint32) { m.Disk = d }

// AppendMarshal compresses Data with Compression; data that does not
// shrink travels uncompressed (and Unmarshal then reports CompressNone).
func (m *ResyncData) AppendMarshal(b []byte) ([]byte, error) {
	b, tail, err := m.marshalSplit(b)
	return append(b, tail...), err
}

func (m *ResyncData) marshalSplit(b []byte) ([]byte, []byte, error) {
	if err := checkSeq(TypeResyncData, m.Seq); err != nil {
		return b, nil, err
	}
	if err := checkRange(TypeResyncData, m.Offset, int64(len(m.Data))); err != nil {
		return b, nil, err
	}
	b = appendU64(b, m.Seq)
	b = appendU64(b, uint64(m.Offset))
	return appendBlock(TypeResyncData, b, m.Data, m.Compression)
}

func (m *ResyncData) Unmarshal(p []byte) error { return m.unmarshal(p, MaxPayload) }

func (m *ResyncData) unmarshal(p []byte, limit int) error {
	r := reader{t: TypeResyncData, b: p}
	m.Seq = r.u64("sequence")
	m.Offset = r.nonNeg("offset")
	m.Data, m.Compression = r.block(limit)
	if err := r.done(); err != nil {
		return err
	}
	if err := checkSeq(TypeResyncData, m.Seq); err != nil {
		return err
	}
	return checkRange(TypeResyncData, m.Offset, int64(len(m.Data)))
}

// ZeroRange is a range of the source disk that reads as zeros, sent during
// resync instead of the zeros themselves.
type ZeroRange struct {
	Disk   uint32
	Seq    uint64
	Offset int64
	Length int64 // > 0
}

func (*ZeroRange) Type() Type         { return TypeZeroRange }
func (m *ZeroRange) DiskID() uint32   { return m.Disk }
func (m *ZeroRange) setDisk(d uint32) { m.Disk = d }

func (m *ZeroRange) AppendMarshal(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	b = appendU64(b, m.Seq)
	b = appendU64(b, uint64(m.Offset))
	return appendU64(b, uint64(m.Length)), nil
}

func (m *ZeroRange) Unmarshal(p []byte) error {
	r := reader{t: TypeZeroRange, b: p}
	m.Seq = r.u64("sequence")
	m.Offset = int64(r.u64("offset"))
	m.Length = int64(r.u64("length"))
	if err := r.done(); err != nil {
		return err
	}
	return m.check()
}

func (m *ZeroRange) check() error {
	if err := checkSeq(TypeZeroRange, m.Seq); err != nil {
		return err
	}
	if m.Length <= 0 {
		return malformed(TypeZeroRange, "length %d", m.Length)
	}
	return checkRange(TypeZeroRange, m.Offset, m.Length)
}

// HashAlgo is the strong hash of a chunk comparison.
type HashAlgo uint8

// Hash algorithms. The values are part of the protocol.
//
// HashXXH3 (protocol version 2 on) is the 128-bit XXH3 of a chunk, seeded
// with the connection's Session.HashSeed; a response carries 16 bytes per
// chunk (held in the first half of each [HashSize]byte, the rest zero).
// It is not a cryptographic hash, and it need not be one here: two
// honest chunks collide with odds of 2^-128 per comparison (2^-110 for
// the 2^18 chunks of a 1 TiB disk hashed twice), far below the odds of an
// undetected disk or memory error. The one who could aim at a collision
// writes to the protected disk, so could write anything there already;
// what they would gain is a target that keeps an older block of theirs.
// Even that needs the seed before writing both blocks, and the seed is
// secret (derived from the passphrase's key and both nonces, see
// Session.HashSeed) and new for each connection.
const (
	HashSHA256     HashAlgo = 1
	HashBLAKE2b256 HashAlgo = 2
	HashXXH3       HashAlgo = 3
)

// Size is the bytes one chunk's hash takes on the wire.
func (a HashAlgo) Size() int {
	if a == HashXXH3 {
		return 16
	}
	return HashSize
}

func (a HashAlgo) String() string {
	switch a {
	case HashSHA256:
		return "sha256"
	case HashBLAKE2b256:
		return "blake2b-256"
	case HashXXH3:
		return "xxh3-128"
	}
	return fmt.Sprintf("hash(%d)", uint8(a))
}

// hash request and response: algo u8, reserved 3, chunk size u32,
// offset u64, count u32, reserved 4
const hashFixed = 24

func checkHashHead(t Type, a HashAlgo, chunk uint32, off int64, n int) error {
	switch {
	case a != HashSHA256 && a != HashBLAKE2b256 && a != HashXXH3:
		return malformed(t, "unknown hash algorithm %d", a)
	case chunk == 0:
		return malformed(t, "chunk size 0")
	case n < 1 || n > MaxHashes:
		return malformed(t, "%d chunks (1 to %d)", n, MaxHashes)
	}
	return checkRange(t, off, int64(chunk)*int64(n))
}

func appendHashHead(t Type, b []byte, a HashAlgo, chunk uint32, off int64, n int) ([]byte, error) {
	if err := checkHashHead(t, a, chunk, off, n); err != nil {
		return b, err
	}
	b = append(b, byte(a), 0, 0, 0)
	b = appendU32(b, chunk)
	b = appendU64(b, uint64(off))
	b = appendU32(b, uint32(n))
	return appendU32(b, 0), nil
}

func (r *reader) hashHead() (HashAlgo, uint32, int64, int) {
	a := HashAlgo(r.u8("algorithm"))
	r.zero(3)
	chunk := r.u32("chunk size")
	off := r.nonNeg("offset")
	n := r.u32("count")
	r.zero(4)
	if r.err == nil {
		r.err = checkHashHead(r.t, a, chunk, off, int(n))
	}
	if r.err != nil {
		return 0, 0, 0, 0
	}
	return a, chunk, off, int(n)
}

// HashRequest asks the master target for the hashes of Count chunks of
// its target, starting at Offset. The last chunk of a disk may be short;
// it is hashed as it is.
type HashRequest struct {
	Disk      uint32
	Algo      HashAlgo
	ChunkSize uint32
	Offset    int64
	Count     int
}

func (*HashRequest) Type() Type         { return TypeHashRequest }
func (m *HashRequest) DiskID() uint32   { return m.Disk }
func (m *HashRequest) setDisk(d uint32) { m.Disk = d }

func (m *HashRequest) AppendMarshal(b []byte) ([]byte, error) {
	return appendHashHead(TypeHashRequest, b, m.Algo, m.ChunkSize, m.Offset, m.Count)
}

func (m *HashRequest) Unmarshal(p []byte) error {
	r := reader{t: TypeHashRequest, b: p}
	m.Algo, m.ChunkSize, m.Offset, m.Count = r.hashHead()
	return r.done()
}

// HashResponse answers a HashRequest with one hash per chunk.
type HashResponse struct {
	Disk      uint32
	Algo      HashAlgo
	ChunkSize uint32
	Offset    int64
	Hashes    [][HashSize]byte
}

func (*HashResponse) Type() Type         { return TypeHashResponse }
func (m *HashResponse) DiskID() uint32   { return m.Disk }
func (m *HashResponse) setDisk(d uint32) { m.Disk = d }

func (m *HashResponse) AppendMarshal(b []byte) ([]byte, error) {
	b, err := appendHashHead(TypeHashResponse, b, m.Algo, m.ChunkSize, m.Offset, len(m.Hashes))
	if err != nil {
		return b, err
	}
	hs := m.Algo.Size()
	for i := range m.Hashes {
		if hs < HashSize && !allZero(m.Hashes[i][hs:]) {
			return b, malformed(TypeHashResponse, "hash %d: %v takes %d bytes, more are set", i, m.Algo, hs)
		}
		b = append(b, m.Hashes[i][:hs]...)
	}
	return b, nil
}

func (m *HashResponse) Unmarshal(p []byte) error {
	r := reader{t: TypeHashResponse, b: p}
	var n int
	m.Algo, m.ChunkSize, m.Offset, n = r.hashHead()
	m.Hashes = nil
	hs := m.Algo.Size()
	if r.err == nil && len(r.b) != n*hs {
		r.fail("%d hashes of %d bytes declared, %d bytes follow", n, hs, len(r.b))
	}
	if r.err == nil {
		m.Hashes = make([][HashSize]byte, n)
		for i := range m.Hashes {
			copy(m.Hashes[i][:], r.take(hs, "hash"))
		}
	}
	return r.done()
}

// PairState is a pair's phase as admins know it. This is the one list of
// pair-state names: the agent's status, the console and the commands all
// spell a state through String (long) or Short.
type PairState uint8

// Pair states. The values 1 to 3 are part of the protocol; StateQueued and
// StateEnded are the agent's own and never go on the wire (check refuses
// them).
const (
	StateQueued   PairState = 0 // Queued: no State from the process server yet
	StateResync1  PairState = 1 // Resync Step I: full or checksum copy
	StateResync2  PairState = 2 // Resync Step II: changes made during step I
	StateDiffSync PairState = 3 // Differential Sync: streaming changes
	// StateEnded is a pair rolled back (or being rolled back): it has left
	// the session and is no longer replicated.
	StateEnded PairState = 0xff
)

var pairStateNames = [...]struct {
	s           PairState
	long, short string
}{
	{StateQueued, "Queued", "Queued"},
	{StateResync1, "Resync Step I", "Resync I"},
	{StateResync2, "Resync Step II", "Resync II"},
	{StateDiffSync, "Differential Sync", "Diff sync"},
	{StateEnded, "Ended", "Ended"},
}

// PairStates are every state, in the order a pair goes through them.
func PairStates() []PairState {
	out := make([]PairState, len(pairStateNames))
	for i, n := range pairStateNames {
		out[i] = n.s
	}
	return out
}

// String is the state's name as admins know it ("Differential Sync").
func (s PairState) String() string {
	for _, n := range pairStateNames {
		if n.s == s {
			return n.long
		}
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// Short is the state's name for narrow columns ("Diff sync").
func (s PairState) Short() string {
	for _, n := range pairStateNames {
		if n.s == s {
			return n.short
		}
	}
	return s.String()
}

// ParsePairState returns the state String names; ok is false for any
// other text.
func ParsePairState(name string) (s PairState, ok bool) {
	for _, n := range pairStateNames {
		if n.long == name {
			return n.s, true
		}
	}
	return 0, false
}

// State tells the master target the pair's phase on the process server
// and its resync progress. It takes effect after every message of the
// disk with a sequence up to Seq; a State with StateDiffSync ends resync.
// A process server may repeat it to report progress.
type State struct {
	Disk  uint32
	State PairState
	Seq   uint64 // the last disk sequence sent before the change
	Done  int64  // resync bytes done
	Total int64  // resync bytes in all (0: unknown)
}

func (*State) Type() Type         { return TypeState }
func (m *State) DiskID() uint32   { return m.Disk }
func (m *State) setDisk(d uint32) { m.Disk = d }

// state: state u8, reserved 7, seq u64, done u64, total u64
func (m *State) AppendMarshal(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	b = append(b, byte(m.State), 0, 0, 0, 0, 0, 0, 0)
	b = appendU64(b, m.Seq)
	b = appendU64(b, uint64(m.Done))
	return appendU64(b, uint64(m.Total)), nil
}

func (m *State) Unmarshal(p []byte) error {
	r := reader{t: TypeState, b: p}
	m.State = PairState(r.u8("state"))
	r.zero(7)
	m.Seq = r.u64("sequence")
	m.Done = r.nonNeg("done")
	m.Total = r.nonNeg("total")
	if err := r.done(); err != nil {
		return err
	}
	return m.check()
}

func (m *State) check() error {
	switch {
	case m.State < StateResync1 || m.State > StateDiffSync:
		return malformed(TypeState, "unknown state %d", m.State)
	case m.Done < 0 || m.Total < 0 || (m.Total > 0 && m.Done > m.Total):
		return malformed(TypeState, "progress %d of %d", m.Done, m.Total)
	}
	return nil
}

// Write is one write to the source disk, streamed after resync (or during
// it, for Resync Step II).
type Write struct {
	Disk        uint32
	Seq         uint64 // disk sequence
	Offset      int64
	Time        time.Time // source time of the write, for RPO
	Data        []byte    // uncompressed
	Compression Compression
}

func (*Write) Type() Type         { return TypeWrite }
func (m *Write) DiskID() uint32   { return m.Disk }
func (m *Write) setDisk(d uint32) { m.Disk = d }

// write: seq u64, offset u64, time i64, then the block (see appendBlock)

// AppendMarshal compresses Data with Compression; data that does not
// shrink travels uncompressed (and Unmarshal then reports CompressNone).
func (m *Write) AppendMarshal(b []byte) ([]byte, error) {
	b, tail, err := m.marshalSplit(b)
	return append(b, tail...), err
}

func (m *Write) marshalSplit(b []byte) ([]byte, []byte, error) {
	if err := checkSeq(TypeWrite, m.Seq); err != nil {
		return b, nil, err
	}
	if err := checkRange(TypeWrite, m.Offset, int64(len(m.Data))); err != nil {
		return b, nil, err
	}
	if err := checkTime(TypeWrite, "time", m.Time); err != nil {
		return b, nil, err
	}
	b = appendU64(b, m.Seq)
	b = appendU64(b, uint64(m.Offset))
	b = appendTime(b, m.Time)
	return appendBlock(TypeWrite, b, m.Data, m.Compression)
}

func (m *Write) Unmarshal(p []byte) error { return m.unmarshal(p, MaxPayload) }

func (m *Write) unmarshal(p []byte, limit int) error {
	r := reader{t: TypeWrite, b: p}
	m.Seq = r.u64("sequence")
	m.Offset = r.nonNeg("offset")
	m.Time = r.time("time")
	m.Data, m.Compression = r.block(limit)
	if err := r.done(); err != nil {
		return err
	}
	if err := checkSeq(TypeWrite, m.Seq); err != nil {
		return err
	}
	return checkRange(TypeWrite, m.Offset, int64(len(m.Data)))
}

// Tag is a consistency point: a barrier after every earlier sequence of
// its disk. A tag issued for a group of disks carries the same ID on each.
type Tag struct {
	Disk uint32
	Seq  uint64
	Time time.Time // when the source took the tag
	Name string    // not empty
	App  string    // application type: CRASH, FS, USERDEFINED, SQL, ...
	ID   string    // unique id, shared by the disks of a group
}

func (*Tag) Type() Type         { return TypeTag }
func (m *Tag) DiskID() uint32   { return m.Disk }
func (m *Tag) setDisk(d uint32) { m.Disk = d }

// tag: seq u64, time i64, name, app, id
func (m *Tag) AppendMarshal(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	b = appendU64(b, m.Seq)
	b = appendTime(b, m.Time)
	b = appendStr(b, m.Name)
	b = appendStr(b, m.App)
	return appendStr(b, m.ID), nil
}

func (m *Tag) Unmarshal(p []byte) error {
	r := reader{t: TypeTag, b: p}
	m.Seq = r.u64("sequence")
	m.Time = r.time("time")
	m.Name = r.str("name", maxName)
	m.App = r.str("application", maxName)
	m.ID = r.str("id", maxName)
	if err := r.done(); err != nil {
		return err
	}
	return m.check()
}

func (m *Tag) check() error {
	if err := checkSeq(TypeTag, m.Seq); err != nil {
		return err
	}
	if m.Name == "" {
		return malformed(TypeTag, "empty name")
	}
	if err := checkTime(TypeTag, "time", m.Time); err != nil {
		return err
	}
	for _, f := range []struct{ n, v string }{{"name", m.Name}, {"application", m.App}, {"id", m.ID}} {
		if err := checkStr(TypeTag, f.n, f.v, maxName); err != nil {
			return err
		}
	}
	return nil
}

// TagRequest asks the process server to issue one consistency tag on the
// listed disks at one point of their write order (master target →
// process server; the tag an admin takes on the master target). Each disk
// in Differential Sync gets it as a Tag on its stream, numbered there; a
// disk that is resyncing skips it, as it skips every tag.
type TagRequest struct {
	connMsg
	Disks []uint32
	Name  string // not empty
	App   string
	ID    string // not empty: shared by the disks' tags
}

func (*TagRequest) Type() Type { return TypeTagRequest }

// tag request: count u32, disk ids u32..., name, app, id
func (m *TagRequest) AppendMarshal(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	b = appendU32(b, uint32(len(m.Disks)))
	for _, d := range m.Disks {
		b = appendU32(b, d)
	}
	b = appendStr(b, m.Name)
	b = appendStr(b, m.App)
	return appendStr(b, m.ID), nil
}

func (m *TagRequest) Unmarshal(p []byte) error {
	r := reader{t: TypeTagRequest, b: p}
	n := r.count(4, "disks")
	m.Disks = nil
	if n > 0 {
		m.Disks = make([]uint32, n)
	}
	for i := range m.Disks {
		m.Disks[i] = r.u32("disk id")
	}
	m.Name = r.str("name", maxName)
	m.App = r.str("application", maxName)
	m.ID = r.str("id", maxName)
	if err := r.done(); err != nil {
		return err
	}
	return m.check()
}

func (m *TagRequest) check() error {
	if len(m.Disks) == 0 {
		return malformed(TypeTagRequest, "no disks")
	}
	seen := make(map[uint32]bool, len(m.Disks))
	for _, d := range m.Disks {
		if d == 0 || seen[d] {
			return malformed(TypeTagRequest, "disk id %d zero or twice", d)
		}
		seen[d] = true
	}
	if m.Name == "" || m.ID == "" {
		return malformed(TypeTagRequest, "empty name or id")
	}
	for _, f := range []struct{ n, v string }{{"name", m.Name}, {"application", m.App}, {"id", m.ID}} {
		if err := checkStr(TypeTagRequest, f.n, f.v, maxName); err != nil {
			return err
		}
	}
	return nil
}

// ---- control ----

// Ack is the master target's cumulative acknowledgement for one disk:
// every message of the disk up to Seq is durable in its journal.
type Ack struct {
	Disk        uint32
	Seq         uint64 // cumulative durable sequence
	Backlog     uint64 // bytes journaled but not yet applied to the target
	FreeJournal uint64 // bytes free in the inbound journal
}

func (*Ack) Type() Type         { return TypeAck }
func (m *Ack) DiskID() uint32   { return m.Disk }
func (m *Ack) setDisk(d uint32) { m.Disk = d }

func (m *Ack) AppendMarshal(b []byte) ([]byte, error) {
	b = appendU64(b, m.Seq)
	b = appendU64(b, m.Backlog)
	return appendU64(b, m.FreeJournal), nil
}

func (m *Ack) Unmarshal(p []byte) error {
	r := reader{t: TypeAck, b: p}
	m.Seq = r.u64("sequence")
	m.Backlog = r.u64("backlog")
	m.FreeJournal = r.u64("free journal")
	return r.done()
}

// Credit grants the process server Bytes more of data to send (see
// Window).
type Credit struct {
	connMsg
	Bytes int64 // 1 to MaxCredit
}

func (*Credit) Type() Type { return TypeCredit }

func (m *Credit) AppendMarshal(b []byte) ([]byte, error) {
	if m.Bytes < 1 || m.Bytes > MaxCredit {
		return b, malformed(TypeCredit, "%d bytes (1 to %d)", m.Bytes, int64(MaxCredit))
	}
	return appendU64(b, uint64(m.Bytes)), nil
}

func (m *Credit) Unmarshal(p []byte) error {
	r := reader{t: TypeCredit, b: p}
	v := r.u64("bytes")
	if err := r.done(); err != nil {
		return err
	}
	if v < 1 || v > MaxCredit {
		return malformed(TypeCredit, "%d bytes (1 to %d)", v, int64(MaxCredit))
	}
	m.Bytes = int64(v)
	return nil
}

// DiskSeq is a disk and a sequence.
type DiskSeq struct {
	Disk uint32
	Seq  uint64
}

// Heartbeat proves the sender is alive and carries its clock (the process
// server's clock gives the master target its RPO) and the latest sequence
// it has sent per disk.
type Heartbeat struct {
	connMsg
	Time   time.Time
	Latest []DiskSeq
}

func (*Heartbeat) Type() Type { return TypeHeartbeat }

// heartbeat: time i64, count u32, count × (disk u32, seq u64)
func (m *Heartbeat) AppendMarshal(b []byte) ([]byte, error) {
	if err := m.check(); err != nil {
		return b, err
	}
	b = appendTime(b, m.Time)
	b = appendU32(b, uint32(len(m.Latest)))
	for _, d := range m.Latest {
		b = appendU32(b, d.Disk)
		b = appendU64(b, d.Seq)
	}
	return b, nil
}

func (m *Heartbeat) Unmarshal(p []byte) error {
	r := reader{t: TypeHeartbeat, b: p}
	m.Time = r.time("time")
	n := r.count(12, "disks")
	m.Latest = nil
	if n > 0 {
		m.Latest = make([]DiskSeq, n)
	}
	for i := range m.Latest {
		m.Latest[i] = DiskSeq{Disk: r.u32("disk id"), Seq: r.u64("sequence")}
	}
	if err := r.done(); err != nil {
		return err
	}
	return m.check()
}

func (m *Heartbeat) check() error {
	if err := checkTime(TypeHeartbeat, "time", m.Time); err != nil {
		return err
	}
	seen := make(map[uint32]bool, len(m.Latest))
	for _, d := range m.Latest {
		if d.Disk == 0 || seen[d.Disk] {
			return malformed(TypeHeartbeat, "disk id %d zero or repeated", d.Disk)
		}
		seen[d.Disk] = true
	}
	return nil
}

// ErrorCode classifies an Error message.
type ErrorCode uint16

// Error codes. The values are part of the protocol; a receiver treats a
// code it does not know as CodeInternal.
const (
	CodeInternal    ErrorCode = 1  // the sender failed; its message says how
	CodeProtocol    ErrorCode = 2  // the receiver broke the protocol (bad frame, order, sequence)
	CodeAuth        ErrorCode = 3  // authentication failed
	CodeVersion     ErrorCode = 4  // no protocol version in common
	CodeRole        ErrorCode = 5  // both sides have the same role
	CodeRefused     ErrorCode = 6  // pairing refused (no disk accepted, not configured)
	CodeUnknownDisk ErrorCode = 7  // a message named a disk not paired
	CodeOutOfRange  ErrorCode = 8  // a write or range beyond the end of the disk
	CodeNoSpace     ErrorCode = 9  // the journal or retention volume is full
	CodePaused      ErrorCode = 10 // the pair is paused by the admin
	CodeShutdown    ErrorCode = 11 // the sender is shutting down
	CodeIO          ErrorCode = 12 // a disk or journal I/O error
	// CodeEnded, non-fatal, from the master target: its pair of the disk
	// has ended (rolled back), so the process server stops sending that
	// disk on this connection and forgets the stream; the other disks go
	// on. Nothing is sent for the disk again until it is paired afresh.
	CodeEnded ErrorCode = 13
)

var codeNames = map[ErrorCode]string{
	CodeInternal: "internal", CodeProtocol: "protocol", CodeAuth: "auth",
	CodeVersion: "version", CodeRole: "role", CodeRefused: "refused",
	CodeUnknownDisk: "unknown-disk", CodeOutOfRange: "out-of-range",
	CodeNoSpace: "no-space", CodePaused: "paused", CodeShutdown: "shutdown",
	CodeIO: "io", CodeEnded: "ended",
}

func (c ErrorCode) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code(%d)", uint16(c))
}

// Error is an error reported by the peer. It is also a Go error: errors.Is
// matches ErrPeer, and the sentinel its code stands for (ErrAuth,
// ErrNoCommonVersion, ErrRole, ErrRefused, ErrUnknownDisk,
// ErrOutOfRange). A fatal Error
// is the last frame of its connection.
type Error struct {
	Disk    uint32 // 0: the connection
	Code    ErrorCode
	Fatal   bool
	Message string
}

func (*Error) Type() Type         { return TypeError }
func (m *Error) DiskID() uint32   { return m.Disk }
func (m *Error) setDisk(d uint32) { m.Disk = d }

// error: code u16, fatal u8, message
func (m *Error) AppendMarshal(b []byte) ([]byte, error) {
	if m.Code == 0 {
		return b, malformed(TypeError, "code 0")
	}
	if err := checkStr(TypeError, "message", m.Message, maxText); err != nil {
		return b, err
	}
	b = appendU16(b, uint16(m.Code))
	f := byte(0)
	if m.Fatal {
		f = 1
	}
	return appendStr(append(b, f), m.Message), nil
}

func (m *Error) Unmarshal(p []byte) error {
	r := reader{t: TypeError, b: p}
	m.Code = ErrorCode(r.u16("code"))
	f := r.u8("fatal")
	m.Message = r.str("message", maxText)
	if err := r.done(); err != nil {
		return err
	}
	if m.Code == 0 || f > 1 {
		return malformed(TypeError, "code %d, fatal %d", m.Code, f)
	}
	m.Fatal = f == 1
	return nil
}

func (m *Error) Error() string {
	var s string
	if m.Fatal {
		s = "fatal "
	}
	if m.Disk != 0 {
		return fmt.Sprintf("wire: peer: %s%v error on disk %d: %s", s, m.Code, m.Disk, m.Message)
	}
	return fmt.Sprintf("wire: peer: %s%v error: %s", s, m.Code, m.Message)
}

// Is matches ErrPeer and the sentinel of the code.
func (m *Error) Is(target error) bool {
	if target == ErrPeer {
		return true
	}
	switch m.Code {
	case CodeAuth:
		return target == ErrAuth
	case CodeVersion:
		return target == ErrNoCommonVersion
	case CodeRole:
		return target == ErrRole
	case CodeRefused:
		return target == ErrRefused
	case CodeUnknownDisk:
		return target == ErrUnknownDisk
	case CodeOutOfRange:
		return target == ErrOutOfRange
	}
	return false
}

// ErrorFor returns the fatal Error message that tells the peer about err:
// the code of the sentinel err wraps, and err's text (cut to the maximum
// length). An authentication failure says nothing more than ErrAuth does.
func ErrorFor(err error) *Error {
	m := &Error{Code: CodeInternal, Fatal: true, Message: err.Error()}
	switch {
	case errors.Is(err, ErrAuth):
		m.Code, m.Message = CodeAuth, ErrAuth.Error()
	case errors.Is(err, ErrNoCommonVersion):
		m.Code = CodeVersion
	case errors.Is(err, ErrRole):
		m.Code = CodeRole
	case errors.Is(err, ErrRefused):
		m.Code = CodeRefused
	case errors.Is(err, ErrUnknownDisk):
		m.Code = CodeUnknownDisk
	case errors.Is(err, ErrOutOfRange):
		m.Code = CodeOutOfRange
	case errors.Is(err, ErrMagic), errors.Is(err, ErrFrameVersion),
		errors.Is(err, ErrHeaderCRC), errors.Is(err, ErrPayloadCRC),
		errors.Is(err, ErrTooLarge), errors.Is(err, ErrUnknownType),
		errors.Is(err, ErrSequence), errors.Is(err, ErrMalformed),
		errors.Is(err, ErrDecompress), errors.Is(err, ErrUnexpected):
		m.Code = CodeProtocol
	}
	if len(m.Message) > maxText {
		m.Message = m.Message[:maxText]
	}
	m.Message = strings.ToValidUTF8(m.Message, "")
	return m
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
