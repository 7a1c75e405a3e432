package wire

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

const testPassphrase = "correct horse battery staple 42"

// testKey is DeriveKey(testPassphrase), derived once: PBKDF2 is slow on
// purpose.
var testKey = sync.OnceValue(func() Key {
	k, err := DeriveKey(testPassphrase)
	if err != nil {
		panic(err)
	}
	return k
})

// fixedKey is a key for tests that need no passphrase (fuzzing).
var fixedKey = Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}

var t0 = time.Date(2026, 11, 26, 10, 30, 0, 123456789, time.UTC)

var testDisks = []Disk{
	{ID: 1, Name: "/dev/sdb", Size: 1 << 30, BlockSize: 512},
	{ID: 2, Name: "/srv/disks/data.img", Size: 3 << 20, BlockSize: 4096},
	{ID: 7, Name: "scsi-36000c29f0e3a7b5e", Size: 0, BlockSize: 512},
}

// psConfig is a process server's side of a handshake.
// testDisksApp are testDisks with the application-consistent intervals
// of protocol version 2.
var testDisksApp = []Disk{
	{ID: 1, Name: "/dev/sdb", Size: 1 << 30, BlockSize: 512, AppConsistentInterval: time.Hour},
	{ID: 2, Name: "/srv/disks/data.img", Size: 3 << 20, BlockSize: 4096},
	{ID: 7, Name: "scsi-36000c29f0e3a7b5e", Size: 0, BlockSize: 512, AppConsistentInterval: 90 * time.Second},
}

func psConfig(k Key) *Config {
	return &Config{Key: k, Role: RoleProcessServer, HostID: "ps-0001", HostName: "ps.example", Disks: testDisks}
}

// mtConfig is a master target's side that pairs disks 1 and 2 (resuming
// disk 1 after sequence 41, resyncing disk 2 by hashes) and leaves 7.
func mtConfig(k Key) *Config {
	return &Config{Key: k, Role: RoleMasterTarget, HostID: "mt-0001", HostName: "mt.example",
		Accept: func(p Peer, ds []Disk) ([]Pair, error) {
			return []Pair{{Disk: 1, Start: StartStream, Seq: 41}, {Disk: 2, Start: StartHashes, Seq: 0}}, nil
		}}
}

// result is one side's handshake outcome.
type result struct {
	c   *Conn
	err error
}

// handshakePair runs Client on cn and Server on sn at once.
func handshakePair(t *testing.T, cn, sn net.Conn, ccfg, scfg *Config) (client, server result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		c, err := Server(ctx, sn, scfg)
		if err != nil {
			sn.Close()
		}
		done <- result{c, err}
	}()
	c, err := Client(ctx, cn, ccfg)
	if err != nil {
		cn.Close()
	}
	client = result{c, err}
	server = <-done
	t.Cleanup(func() {
		cn.Close()
		sn.Close()
	})
	return client, server
}

// pipePair is an established mt (client) and ps (server) over net.Pipe.
func pipePair(t *testing.T) (mt, ps *Conn) {
	t.Helper()
	cn, sn := net.Pipe()
	c, s := handshakePair(t, cn, sn, mtConfig(fixedKey), psConfig(fixedKey))
	if c.err != nil || s.err != nil {
		t.Fatalf("handshake: client %v, server %v", c.err, s.err)
	}
	return c.c, s.c
}

// scriptConn is a net.Conn that reads a fixed script and records what is
// written to it.
type scriptConn struct {
	r       io.Reader
	mu      sync.Mutex
	written bytes.Buffer
}

func newScriptConn(script []byte) *scriptConn { return &scriptConn{r: bytes.NewReader(script)} }

func (c *scriptConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.written.Write(p)
}
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return pipeAddr{} }
func (c *scriptConn) RemoteAddr() net.Addr             { return pipeAddr{} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

func (c *scriptConn) output() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.written.Bytes())
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// recordConn records what is written through a net.Conn.
type recordConn struct {
	net.Conn
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.out.Write(p)
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *recordConn) recorded() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

// frames decodes every frame of b.
func frames(t *testing.T, b []byte) []Message {
	t.Helper()
	d := NewDecoder(bytes.NewReader(b))
	var ms []Message
	for {
		m, err := d.Decode()
		if errors.Is(err, io.EOF) {
			return ms
		}
		if err != nil {
			t.Fatalf("decode frame %d: %v", len(ms)+1, err)
		}
		ms = append(ms, m)
	}
}

// frameErrors are the sentinels a bad frame may produce.
var frameErrors = []error{ErrMagic, ErrFrameVersion, ErrHeaderCRC, ErrPayloadCRC, ErrTooLarge,
	ErrUnknownType, ErrSequence, ErrMalformed, ErrDecompress}

func isFrameError(err error) bool {
	for _, s := range frameErrors {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// sampleMessages is one message of each type, every field set.
func sampleMessages() []Message {
	var nonce [NonceSize]byte
	for i := range nonce {
		nonce[i] = byte(i * 7)
	}
	var proof [ProofSize]byte
	copy(proof[:], "0123456789abcdef0123456789abcdef")
	data := bytes.Repeat([]byte("mtconsole "), 26)
	return []Message{
		&Hello{Versions: []uint16{1, 2}, Role: RoleMasterTarget, HostID: "mt-1", HostName: "mt.example", Nonce: nonce},
		&Welcome{Version: 2, Versions: []uint16{1, 2, 9}, Role: RoleProcessServer, HostID: "ps-1", HostName: "ps", Nonce: nonce},
		&Auth{Proof: proof},
		&DiskList{Disks: testDisks},
		&DiskList{Disks: testDisksApp},
		&PairAccept{Pairs: []Pair{{Disk: 1, Start: StartStream, Seq: 41}, {Disk: 2, Start: StartFull}, {Disk: 7, Start: StartHashes, Seq: 3}}},
		&ResyncData{Disk: 2, Seq: 9, Offset: 4096, Data: data},
		&ResyncData{Disk: 2, Seq: 10, Offset: 8192, Data: data, Compression: CompressS2},
		&ZeroRange{Disk: 2, Seq: 11, Offset: 1 << 20, Length: 1 << 30},
		&HashRequest{Disk: 1, Algo: HashSHA256, ChunkSize: 64 << 10, Offset: 1 << 20, Count: 3},
		&HashResponse{Disk: 1, Algo: HashBLAKE2b256, ChunkSize: 64 << 10, Offset: 1 << 20, Hashes: [][HashSize]byte{{1}, {2, 3}, {31: 9}}},
		&HashRequest{Disk: 1, Algo: HashXXH3, ChunkSize: 4096, Offset: 1 << 20, Count: 16},
		&HashResponse{Disk: 1, Algo: HashXXH3, ChunkSize: 4096, Offset: 1 << 20, Hashes: [][HashSize]byte{{1}, {15: 7}}},
		&State{Disk: 2, State: StateResync1, Seq: 11, Done: 5 << 20, Total: 3 << 30},
		&Write{Disk: 1, Seq: 42, Offset: 512, Time: t0, Data: []byte("hello, disk")},
		&Write{Disk: 1, Seq: 43, Offset: 1 << 20, Time: t0, Data: data, Compression: CompressZstd},
		&Write{Disk: 1, Seq: 44, Offset: 0, Time: t0, Data: []byte{}},
		&Tag{Disk: 1, Seq: 45, Time: t0, Name: "hourly-10:00", App: "FS", ID: "5f0c6a8e-9d1b-4c35-8a1f-4e2b9b1c7d00"},
		&Ack{Disk: 1, Seq: 44, Backlog: 1 << 20, FreeJournal: 5 << 30},
		&Credit{Bytes: 64 << 20},
		&Heartbeat{Time: t0, Latest: []DiskSeq{{Disk: 1, Seq: 45}, {Disk: 2, Seq: 11}}},
		&Error{Code: CodeOutOfRange, Disk: 1, Message: "write at 2 GiB beyond the end of the disk (1 GiB)"},
		&Error{Code: CodeShutdown, Fatal: true, Message: "process server stopping"},
		&TagRequest{Disks: []uint32{1, 2}, Name: "before-patch", App: "USERDEFINED", ID: "8d7c"},
	}
}
