package nbd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// memDev is a device in memory with an optional size cap on writes.
type memDev struct {
	mu   sync.Mutex
	b    []byte
	full bool // writes fail with ErrNoSpace
}

func (m *memDev) Size() int64 { return int64(len(m.b)) }
func (m *memDev) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return copy(p, m.b[off:]), nil
}
func (m *memDev) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.full {
		return 0, ErrNoSpace
	}
	return copy(m.b[off:], p), nil
}

func pattern(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func serve(t *testing.T, s *Server) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "nbd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return sock
}

// client is a minimal NBD client for the tests.
type client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, sock string) *client {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, c: c, br: bufio.NewReader(c)}
	var hdr [18]byte
	cl.read(hdr[:])
	if binary.BigEndian.Uint64(hdr[0:]) != nbdMagic || binary.BigEndian.Uint64(hdr[8:]) != optMagic {
		t.Fatalf("greeting % x", hdr)
	}
	if f := binary.BigEndian.Uint16(hdr[16:]); f != flagFixedNewstyle|flagNoZeroes {
		t.Fatalf("handshake flags %#x", f)
	}
	cl.write(binary.BigEndian.AppendUint32(nil, clientFixedNewstyle|clientNoZeroes))
	return cl
}

func (c *client) read(b []byte) {
	c.t.Helper()
	if _, err := io.ReadFull(c.br, b); err != nil {
		c.t.Fatalf("read: %v", err)
	}
}

func (c *client) write(b []byte) {
	c.t.Helper()
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) option(code uint32, data []byte) {
	b := binary.BigEndian.AppendUint64(nil, optMagic)
	b = binary.BigEndian.AppendUint32(b, code)
	b = binary.BigEndian.AppendUint32(b, uint32(len(data)))
	c.write(append(b, data...))
}

type optReply struct {
	code, typ uint32
	data      []byte
}

func (c *client) reply() optReply {
	c.t.Helper()
	var h [20]byte
	c.read(h[:])
	if m := binary.BigEndian.Uint64(h[:]); m != replyMagic {
		c.t.Fatalf("option reply magic %#x", m)
	}
	r := optReply{code: binary.BigEndian.Uint32(h[8:]), typ: binary.BigEndian.Uint32(h[12:])}
	r.data = make([]byte, binary.BigEndian.Uint32(h[16:]))
	c.read(r.data)
	return r
}

func goData(name string, infos ...uint16) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(infos)))
	for _, i := range infos {
		b = binary.BigEndian.AppendUint16(b, i)
	}
	return b
}

// goExport sends GO and returns the export's size and flags.
func (c *client) goExport(name string) (int64, uint16) {
	c.t.Helper()
	c.option(OptGo, goData(name, infoBlockSize))
	var size int64
	var flags uint16
	for {
		r := c.reply()
		switch r.typ {
		case repInfo:
			if binary.BigEndian.Uint16(r.data) == infoExport {
				size, flags = int64(binary.BigEndian.Uint64(r.data[2:])), binary.BigEndian.Uint16(r.data[10:])
			}
		case repAck:
			return size, flags
		default:
			c.t.Fatalf("GO %q: reply %#x %q", name, r.typ, r.data)
		}
	}
}

// cmd sends a request and reads the simple reply; n bytes of data
// follow a successful one.
func (c *client) cmd(typ uint16, off uint64, length uint32, data []byte, n int) (uint32, []byte) {
	c.t.Helper()
	cookie := rand.Uint64()
	c.write(append(EncodeRequest(Request{Type: typ, Cookie: cookie, Offset: off, Length: length}), data...))
	var h [16]byte
	c.read(h[:])
	if binary.BigEndian.Uint32(h[:]) != simpleReplyMagic || binary.BigEndian.Uint64(h[8:]) != cookie {
		c.t.Fatalf("reply % x", h)
	}
	errno := binary.BigEndian.Uint32(h[4:])
	if errno != 0 {
		return errno, nil
	}
	out := make([]byte, n)
	c.read(out)
	return 0, out
}

func TestHandshakeAndReads(t *testing.T) {
	dev := &memDev{b: pattern(1<<20, 1)}
	sock := serve(t, &Server{Exports: []Export{{Name: "v1", Description: "test view", Dev: dev}}})
	c := dial(t, sock)

	c.option(OptList, nil)
	r := c.reply()
	if r.typ != repServer || string(r.data[4:4+binary.BigEndian.Uint32(r.data)]) != "v1" {
		t.Fatalf("LIST: %#x %q", r.typ, r.data)
	}
	if r := c.reply(); r.typ != repAck {
		t.Fatalf("LIST ends with %#x", r.typ)
	}
	c.option(OptStructuredReply, nil)
	if r := c.reply(); r.typ != repErrUnsup {
		t.Fatalf("STRUCTURED_REPLY: %#x, want ERR_UNSUP", r.typ)
	}
	c.option(99, []byte("whatever"))
	if r := c.reply(); r.typ != repErrUnsup || r.code != 99 {
		t.Fatalf("unknown option: %#x for %d, want ERR_UNSUP", r.typ, r.code)
	}
	c.option(OptGo, []byte{0, 0, 0, 9, 'x'})
	if r := c.reply(); r.typ != repErrInvalid {
		t.Fatalf("malformed GO: %#x, want ERR_INVALID", r.typ)
	}
	c.option(OptInfo, goData("nope"))
	if r := c.reply(); r.typ != repErrUnknown {
		t.Fatalf("INFO of an unknown export: %#x, want ERR_UNKNOWN", r.typ)
	}
	size, flags := c.goExport("v1")
	if size != 1<<20 || flags&transReadOnly == 0 || flags&transHasFlags == 0 {
		t.Fatalf("GO: size %d flags %#x; want 1 MiB, read-only", size, flags)
	}
	errno, got := c.cmd(CmdRead, 4096, 65536, nil, 65536)
	if errno != 0 || !bytes.Equal(got, dev.b[4096:4096+65536]) {
		t.Fatalf("READ: errno %d, bytes equal %v", errno, bytes.Equal(got, dev.b[4096:4096+65536]))
	}
	// read-only: a write gets EPERM, its data consumed, and the
	// connection goes on
	before := bytes.Clone(dev.b[:512])
	if errno, _ := c.cmd(CmdWrite, 0, 512, make([]byte, 512), 0); errno != EPERM {
		t.Fatalf("WRITE on a read-only export: errno %d, want EPERM", errno)
	}
	if !bytes.Equal(dev.b[:512], before) {
		t.Fatal("a refused write changed the device")
	}
	if errno, _ := c.cmd(CmdRead, 1<<20-10, 20, nil, 0); errno != EINVAL {
		t.Fatalf("READ past the end: errno %d, want EINVAL", errno)
	}
	if errno, _ := c.cmd(CmdRead, 0, MaxRequest+1, nil, 0); errno != EINVAL {
		t.Fatalf("READ too long: errno %d, want EINVAL", errno)
	}
	if errno, _ := c.cmd(77, 0, 0, nil, 0); errno != EINVAL {
		t.Fatalf("unknown command: errno %d, want EINVAL", errno)
	}
	if errno, _ := c.cmd(CmdFlush, 0, 0, nil, 0); errno != 0 {
		t.Fatalf("FLUSH: errno %d", errno)
	}
	if errno, got := c.cmd(CmdRead, 0, 8, nil, 8); errno != 0 || !bytes.Equal(got, dev.b[:8]) {
		t.Fatal("the connection did not go on after the errors")
	}
	c.write(EncodeRequest(Request{Type: CmdDisc}))
	if _, err := c.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after DISC: %v, want EOF", err)
	}
}

func TestWritable(t *testing.T) {
	dev := &memDev{b: make([]byte, 64<<10)}
	sock := serve(t, &Server{Exports: []Export{{Name: "w", Dev: dev, Writable: true}}})
	c := dial(t, sock)
	if _, flags := c.goExport(""); flags&transReadOnly != 0 {
		t.Fatalf("writable export advertised read-only (%#x)", flags)
	}
	data := pattern(1000, 2)
	if errno, _ := c.cmd(CmdWrite, 3, 1000, data, 0); errno != 0 {
		t.Fatalf("WRITE: errno %d", errno)
	}
	if errno, got := c.cmd(CmdRead, 3, 1000, nil, 1000); errno != 0 || !bytes.Equal(got, data) {
		t.Fatal("read back differs")
	}
	dev.mu.Lock()
	dev.full = true
	dev.mu.Unlock()
	if errno, _ := c.cmd(CmdWrite, 0, 10, make([]byte, 10), 0); errno != ENOSPC {
		t.Fatalf("WRITE on a full device: errno %d, want ENOSPC", errno)
	}
	if errno, _ := c.cmd(CmdTrim, 0, 10, nil, 0); errno != ENOTSUP {
		t.Fatalf("TRIM without a Trimmer: errno %d, want ENOTSUP", errno)
	}
}

// Garbage, clients that stop mid-request and bad magics end their own
// connection only: a client alongside reads on.
func TestGarbageClients(t *testing.T) {
	dev := &memDev{b: pattern(256<<10, 3)}
	s := &Server{Exports: []Export{{Name: "g", Dev: dev}}}
	sock := serve(t, s)
	good := dial(t, sock)
	good.goExport("g")

	garbage := [][]byte{
		pattern(4096, 9),      // noise instead of client flags
		{0, 0, 0, 0},          // old-style client
		{0, 0, 0, 3, 1, 2, 3}, // flags, then a short option
		append([]byte{0, 0, 0, 3}, pattern(16, 5)...), // bad option magic
	}
	for i, g := range garbage {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		io.ReadFull(c, make([]byte, 18))
		c.Write(g)
		c.Close()
		if errno, got := good.cmd(CmdRead, 0, 100, nil, 100); errno != 0 || !bytes.Equal(got, dev.b[:100]) {
			t.Fatalf("after garbage client %d the good client's read failed", i)
		}
	}
	// in transmission: half a request header, half a write, a bad magic
	for i, tail := range [][]byte{
		EncodeRequest(Request{Type: CmdRead, Length: 10})[:13],
		append(EncodeRequest(Request{Type: CmdWrite, Length: 4096}), 1, 2, 3),
		pattern(28, 4),
	} {
		c := dial(t, sock)
		c.goExport("g")
		c.write(tail)
		c.c.Close()
		if errno, got := good.cmd(CmdRead, 1000, 100, nil, 100); errno != 0 || !bytes.Equal(got, dev.b[1000:1100]) {
			t.Fatalf("after broken client %d the good client's read failed", i)
		}
	}
	// an oversized option is read away and refused
	c := dial(t, sock)
	c.option(OptGo, make([]byte, MaxOptionLen+1))
	if r := c.reply(); r.typ != repErrTooBig {
		t.Fatalf("oversized option: %#x, want ERR_TOO_BIG", r.typ)
	}
	if size, _ := c.goExport("g"); size != 256<<10 {
		t.Fatal("GO after a refused option failed")
	}
	// ABORT is acknowledged and ends the connection
	a := dial(t, sock)
	a.option(OptAbort, nil)
	if r := a.reply(); r.typ != repAck {
		t.Fatalf("ABORT: %#x", r.typ)
	}
	if _, err := a.br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("after ABORT: %v, want EOF", err)
	}
}

// Real clients: nbdinfo and qemu-img read the export bit for bit.
func TestRealClients(t *testing.T) {
	qemu, err := exec.LookPath("qemu-img")
	if err != nil {
		t.Skip("qemu-img not installed (apt-get install qemu-utils): the real-client test is skipped")
	}
	dev := &memDev{b: pattern(3<<20+512, 7)}
	sock := serve(t, &Server{Exports: []Export{{Name: "r", Dev: dev}}})
	out := filepath.Join(t.TempDir(), "copy.raw")
	if b, err := exec.Command(qemu, "convert", "-f", "raw", "-O", "raw", "nbd+unix:///r?socket="+sock, out).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, b)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, dev.b) {
		t.Fatalf("qemu-img read %d bytes that differ from the export's %d", len(got), len(dev.b))
	}
	if nbdinfo, err := exec.LookPath("nbdinfo"); err == nil {
		b, err := exec.Command(nbdinfo, "--size", "nbd+unix:///r?socket="+sock).CombinedOutput()
		if err != nil || string(bytes.TrimSpace(b)) != "3146240" {
			t.Fatalf("nbdinfo --size: %v %q", err, b)
		}
	}
}

// A read-only export: a second client that writes (or trims, or writes
// zeros) gets EPERM on that request only, its connection and the first
// client's go on, and the device is untouched. A writable export whose
// device takes no writes refuses them the same way.
func TestReadOnlyWriters(t *testing.T) {
	dev := &memDev{b: pattern(64<<10, 7)}
	orig := bytes.Clone(dev.b)
	sock := serve(t, &Server{Exports: []Export{{Name: "ro", Dev: dev}, {Name: "nw", Dev: readOnlyDev{dev}, Writable: true}}})
	reader := dial(t, sock)
	if _, flags := reader.goExport("ro"); flags&transReadOnly == 0 {
		t.Fatalf("read-only export advertised writable (%#x)", flags)
	}
	writer := dial(t, sock)
	writer.goExport("ro")
	for _, c := range []struct {
		typ  uint16
		data []byte
	}{{CmdWrite, pattern(512, 8)}, {CmdTrim, nil}, {CmdWriteZeroes, nil}} {
		if errno, _ := writer.cmd(c.typ, 4096, 512, c.data, 0); errno != EPERM {
			t.Fatalf("command %d to a read-only export: errno %d, want EPERM", c.typ, errno)
		}
		if errno, got := writer.cmd(CmdRead, 4096, 512, nil, 512); errno != 0 || !bytes.Equal(got, orig[4096:4608]) {
			t.Fatalf("the refused writer's next read: errno %d", errno)
		}
		if errno, got := reader.cmd(CmdRead, 4000, 700, nil, 700); errno != 0 || !bytes.Equal(got, orig[4000:4700]) {
			t.Fatalf("the reader beside the refused writer: errno %d", errno)
		}
	}
	nw := dial(t, sock)
	if _, flags := nw.goExport("nw"); flags&transReadOnly == 0 {
		t.Fatalf("an export whose device takes no writes advertised writable (%#x)", flags)
	}
	if errno, _ := nw.cmd(CmdWrite, 0, 512, pattern(512, 9), 0); errno != EPERM {
		t.Fatalf("write to a device that takes none: errno %d, want EPERM", errno)
	}
	if !bytes.Equal(dev.b, orig) {
		t.Fatal("a refused write changed the device")
	}
}

// readOnlyDev hides memDev's WriteAt.
type readOnlyDev struct{ m *memDev }

func (d readOnlyDev) Size() int64                             { return d.m.Size() }
func (d readOnlyDev) ReadAt(p []byte, off int64) (int, error) { return d.m.ReadAt(p, off) }

// slowDev answers reads only when released, to catch clients that go
// away while their READs are being served.
type slowDev struct {
	memDev
	started chan struct{}
	release chan struct{}
}

func (d *slowDev) ReadAt(p []byte, off int64) (int, error) {
	d.started <- struct{}{}
	<-d.release
	return d.memDev.ReadAt(p, off)
}

// Clients that disconnect with READs in flight (their replies not yet
// written, or written into a closed socket) end their own connection:
// the server drops it, and a client alongside reads on.
func TestDisconnectMidRead(t *testing.T) {
	const size = 4 << 20
	dev := &slowDev{memDev: memDev{b: pattern(size, 11)}, started: make(chan struct{}, 64), release: make(chan struct{})}
	s := &Server{Exports: []Export{{Name: "d", Dev: dev}}}
	sock := serve(t, s)
	for round := range 3 {
		c := dial(t, sock)
		c.goExport("d")
		var reqs []byte
		for i := range 4 {
			reqs = append(reqs, EncodeRequest(Request{Type: CmdRead, Cookie: uint64(i), Offset: uint64(i) << 20, Length: 1 << 20})...)
		}
		c.write(reqs)
		<-dev.started // a READ is being served
		if round == 1 {
			c.write(EncodeRequest(Request{Type: CmdRead, Length: 1 << 20})[:10]) // and half of another
		}
		c.c.Close()
		// Release the READ whose start was seen; the server may start
		// any number of the others before it notices the client left
		// (not necessarily all four: waiting for four hung CI), and the
		// loop below releases each one it starts.
		dev.release <- struct{}{}
		// the server notices and drops the connection
		deadline := time.Now().Add(time.Minute)
		for s.Conns() > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d connections still open after their client went away mid-read", round, s.Conns())
			}
			select {
			case <-dev.started:
				dev.release <- struct{}{}
			case <-time.After(time.Millisecond):
			}
		}
	}
	good := dial(t, sock)
	good.goExport("d")
	go func() {
		<-dev.started
		dev.release <- struct{}{}
	}()
	if errno, got := good.cmd(CmdRead, 3<<20, 1000, nil, 1000); errno != 0 || !bytes.Equal(got, dev.b[3<<20:3<<20+1000]) {
		t.Fatalf("after clients left mid-read a new client's read failed: errno %d", errno)
	}
}
