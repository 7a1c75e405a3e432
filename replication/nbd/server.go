package nbd

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Device is what an export serves: its size and its bytes. A Device may
// also be a Writer, a Flusher and a Trimmer.
type Device interface {
	Size() int64
	ReadAt(p []byte, off int64) (int, error)
}

// Writer is a Device that takes writes.
type Writer interface {
	WriteAt(p []byte, off int64) (int, error)
}

// Flusher makes written data durable (NBD_CMD_FLUSH).
type Flusher interface{ Flush() error }

// Trimmer discards a range (NBD_CMD_TRIM, NBD_CMD_WRITE_ZEROES): after
// it the range reads as zeros.
type Trimmer interface{ Trim(off, n int64) error }

// ErrNoSpace is a write the device has no room for: the client gets
// ENOSPC. syscall.ENOSPC is taken the same way.
var ErrNoSpace = errors.New("no space left for the write")

// HandshakeTimeout bounds the whole option haggling of one connection.
var HandshakeTimeout = 30 * time.Second

// Export is one device a server offers, by name.
type Export struct {
	Name        string
	Description string
	Dev         Device
	// Writable lets clients write when Dev is a Writer; otherwise a
	// WRITE gets EPERM and the export is advertised read-only.
	Writable bool
}

// Server serves its exports to any number of connections. The empty
// export name reaches the first export.
type Server struct {
	Exports []Export
	Logger  *slog.Logger

	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func (s *Server) log() *slog.Logger {
	if s.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Logger
}

func (e *Export) writable() bool {
	_, ok := e.Dev.(Writer)
	return e.Writable && ok
}

// Serve accepts connections on ln until Close (it then returns nil) or
// ln fails.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !s.track(c) {
			c.Close()
			return nil
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.untrack(c)
			s.ServeConn(c)
		}()
	}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// Conns is the number of connections open.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close stops the listeners, ends every connection and waits for them.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for _, ln := range s.lns {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// ServeConn runs one connection to its end; it closes c.
func (s *Server) ServeConn(c net.Conn) {
	defer c.Close()
	l := s.log().With("peer", c.RemoteAddr().String())
	br := bufio.NewReaderSize(c, 128<<10)
	bw := bufio.NewWriterSize(c, 128<<10)
	c.SetDeadline(time.Now().Add(HandshakeTimeout))
	e, err := s.handshake(br, bw)
	if err != nil {
		if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
			l.Info("NBD handshake ended", "err", err)
		}
		return
	}
	if e == nil {
		return
	}
	c.SetDeadline(time.Time{})
	if err := s.transmit(e, c, br, bw); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		l.Info("NBD connection ended", "err", err)
	}
}

// errAbort ends the haggling without transmission.
var errAbort = errors.New("client aborted")

// handshake runs the fixed newstyle negotiation; the export chosen:
// transmission.
func (s *Server) handshake(br *bufio.Reader, bw *bufio.Writer) (*Export, error) {
	var hdr [18]byte
	binary.BigEndian.PutUint64(hdr[0:], nbdMagic)
	binary.BigEndian.PutUint64(hdr[8:], optMagic)
	binary.BigEndian.PutUint16(hdr[16:], flagFixedNewstyle|flagNoZeroes)
	bw.Write(hdr[:])
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	var cf [4]byte
	if _, err := io.ReadFull(br, cf[:]); err != nil {
		return nil, err
	}
	cflags := binary.BigEndian.Uint32(cf[:])
	if cflags&clientFixedNewstyle == 0 {
		return nil, fmt.Errorf("client flags %#x: the client does not speak fixed newstyle", cflags)
	}
	if cflags&^uint32(clientFixedNewstyle|clientNoZeroes) != 0 {
		return nil, fmt.Errorf("client flags %#x: unknown flags", cflags)
	}
	noZeroes := cflags&clientNoZeroes != 0
	for {
		var oh [16]byte
		if _, err := io.ReadFull(br, oh[:]); err != nil {
			return nil, err
		}
		if m := binary.BigEndian.Uint64(oh[:]); m != optMagic {
			return nil, fmt.Errorf("option magic %#x, want IHAVEOPT", m)
		}
		code := binary.BigEndian.Uint32(oh[8:])
		n := binary.BigEndian.Uint32(oh[12:])
		if n > MaxOptionLen {
			if code == OptExportName {
				return nil, fmt.Errorf("EXPORT_NAME of %d bytes", n)
			}
			if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
				return nil, err
			}
			if err := s.optReply(bw, code, repErrTooBig, []byte(fmt.Sprintf("option data of %d bytes: at most %d", n, MaxOptionLen))); err != nil {
				return nil, err
			}
			continue
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(br, data); err != nil {
			return nil, err
		}
		e, err := s.option(bw, code, data, noZeroes)
		if err != nil || e != nil {
			if errors.Is(err, errAbort) {
				return nil, nil
			}
			return e, err
		}
	}
}

// option answers one option; an export: transmission begins with it.
func (s *Server) option(bw *bufio.Writer, code uint32, data []byte, noZeroes bool) (*Export, error) {
	o, err := DecodeOption(code, data)
	if err != nil {
		if code == OptExportName {
			return nil, err
		}
		return nil, s.optReply(bw, code, repErrInvalid, []byte(err.Error()))
	}
	switch code {
	case OptExportName:
		e := s.export(o.Name)
		if e == nil {
			return nil, fmt.Errorf("EXPORT_NAME %q: no such export", o.Name)
		}
		var b [10 + 124]byte
		binary.BigEndian.PutUint64(b[0:], uint64(e.Dev.Size()))
		binary.BigEndian.PutUint16(b[8:], e.transFlags())
		if noZeroes {
			bw.Write(b[:10])
		} else {
			bw.Write(b[:])
		}
		return e, bw.Flush()
	case OptAbort:
		s.optReply(bw, code, repAck, nil) // the client may be gone already
		return nil, errAbort
	case OptList:
		for _, e := range s.Exports {
			b := make([]byte, 4+len(e.Name)+len(e.Description))
			binary.BigEndian.PutUint32(b, uint32(len(e.Name)))
			copy(b[4:], e.Name)
			copy(b[4+len(e.Name):], e.Description)
			if err := s.optReply(bw, code, repServer, b); err != nil {
				return nil, err
			}
		}
		return nil, s.optReply(bw, code, repAck, nil)
	case OptInfo, OptGo:
		e := s.export(o.Name)
		if e == nil {
			return nil, s.optReply(bw, code, repErrUnknown, []byte(fmt.Sprintf("no export %q: this server has %s", o.Name, s.names())))
		}
		var b [12]byte
		binary.BigEndian.PutUint16(b[0:], infoExport)
		binary.BigEndian.PutUint64(b[2:], uint64(e.Dev.Size()))
		binary.BigEndian.PutUint16(b[10:], e.transFlags())
		if err := s.optReply(bw, code, repInfo, b[:]); err != nil {
			return nil, err
		}
		for _, in := range o.Infos {
			switch in {
			case infoName:
				if err := s.optReply(bw, code, repInfo, append([]byte{0, infoName}, e.Name...)); err != nil {
					return nil, err
				}
			case infoDescription:
				if e.Description != "" {
					if err := s.optReply(bw, code, repInfo, append([]byte{0, infoDescription}, e.Description...)); err != nil {
						return nil, err
					}
				}
			case infoBlockSize:
				var bs [14]byte
				binary.BigEndian.PutUint16(bs[0:], infoBlockSize)
				binary.BigEndian.PutUint32(bs[2:], 1)
				binary.BigEndian.PutUint32(bs[6:], 4096)
				binary.BigEndian.PutUint32(bs[10:], MaxRequest)
				if err := s.optReply(bw, code, repInfo, bs[:]); err != nil {
					return nil, err
				}
			}
		}
		if err := s.optReply(bw, code, repAck, nil); err != nil {
			return nil, err
		}
		if code == OptGo {
			return e, nil
		}
		return nil, nil
	}
	return nil, s.optReply(bw, code, repErrUnsup, []byte(fmt.Sprintf("option %d is not supported", code)))
}

// export is the export named name (the empty name: the first), or nil.
func (s *Server) export(name string) *Export {
	for i := range s.Exports {
		if s.Exports[i].Name == name || name == "" {
			return &s.Exports[i]
		}
	}
	return nil
}

func (s *Server) names() string {
	var n []string
	for _, e := range s.Exports {
		n = append(n, fmt.Sprintf("%q", e.Name))
	}
	return strings.Join(n, ", ")
}

func (e *Export) transFlags() uint16 {
	f := uint16(transHasFlags | transSendFlush | transSendFUA | transMultiConn)
	if !e.writable() {
		f |= transReadOnly
	} else if _, ok := e.Dev.(Trimmer); ok {
		f |= transSendTrim | transSendWZeroes
	}
	return f
}

func (s *Server) optReply(bw *bufio.Writer, code, typ uint32, data []byte) error {
	var h [20]byte
	binary.BigEndian.PutUint64(h[0:], replyMagic)
	binary.BigEndian.PutUint32(h[8:], code)
	binary.BigEndian.PutUint32(h[12:], typ)
	binary.BigEndian.PutUint32(h[16:], uint32(len(data)))
	bw.Write(h[:])
	bw.Write(data)
	return bw.Flush()
}

// MaxInFlight bounds the READs one connection serves side by side
// (clients such as qemu-img and nbdcopy keep several in flight).
var MaxInFlight = 16

// replier writes simple replies to the connection, one at a time, each
// in one write.
type replier struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (r *replier) send(cookie uint64, errno uint32, data []byte) error {
	var h [16]byte
	binary.BigEndian.PutUint32(h[0:], simpleReplyMagic)
	binary.BigEndian.PutUint32(h[4:], errno)
	binary.BigEndian.PutUint64(h[8:], cookie)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	bufs := net.Buffers{h[:]}
	if errno == 0 && len(data) > 0 {
		bufs = append(bufs, data)
	}
	_, r.err = bufs.WriteTo(r.w)
	return r.err
}

func (r *replier) failed() error { r.mu.Lock(); defer r.mu.Unlock(); return r.err }

// transmit serves requests until DISC, an error or EOF. READs run side by
// side (up to MaxInFlight); any other command waits for them first, so
// a FLUSH covers every write answered before it and writes land in the
// order sent.
func (s *Server) transmit(e *Export, c io.Writer, br *bufio.Reader, bw *bufio.Writer) error {
	if err := bw.Flush(); err != nil {
		return err
	}
	rep := &replier{w: c}
	var (
		hb    [RequestSize]byte
		wbuf  []byte
		wg    sync.WaitGroup
		slots = make(chan struct{}, max(MaxInFlight, 1))
	)
	defer wg.Wait()
	size := e.Dev.Size()
	for {
		if err := rep.failed(); err != nil {
			return err
		}
		if _, err := io.ReadFull(br, hb[:]); err != nil {
			return err
		}
		r, err := DecodeRequest(hb[:])
		if err != nil {
			return err
		}
		inRange := r.Offset <= uint64(size) && uint64(r.Length) <= uint64(size)-r.Offset
		if r.Type == CmdRead && r.Length <= MaxRequest && inRange {
			slots <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots }()
				out := getBuf(int(r.Length))
				defer putBuf(out)
				errno := uint32(0)
				if _, err := e.Dev.ReadAt(out, int64(r.Offset)); err != nil {
					s.log().Warn("NBD read failed", "offset", r.Offset, "length", r.Length, "err", err)
					errno = errnoOf(err)
				}
				rep.send(r.Cookie, errno, out)
			}()
			continue
		}
		var data []byte
		if r.Type == CmdWrite {
			if r.Length > MaxRequest {
				return fmt.Errorf("WRITE of %d bytes: at most %d", r.Length, MaxRequest)
			}
			if cap(wbuf) < int(r.Length) {
				wbuf = make([]byte, r.Length)
			}
			data = wbuf[:r.Length]
			if _, err := io.ReadFull(br, data); err != nil {
				return err
			}
		}
		wg.Wait() // the READs in flight first
		if r.Type == CmdDisc {
			return nil
		}
		errno := uint32(0)
		switch r.Type {
		case CmdRead: // too long or out of range
			errno = EINVAL
		case CmdWrite:
			w, ok := e.Dev.(Writer)
			switch {
			case !e.Writable || !ok:
				errno = EPERM
			case !inRange:
				errno = EINVAL
			default:
				if _, err := w.WriteAt(data, int64(r.Offset)); err != nil {
					errno = errnoOf(err)
				} else if r.Flags&1 != 0 { // FUA
					errno = e.flush()
				}
			}
		case CmdFlush:
			errno = e.flush()
		case CmdTrim, CmdWriteZeroes:
			t, ok := e.Dev.(Trimmer)
			switch {
			case !e.writable():
				errno = EPERM
			case !ok:
				errno = ENOTSUP
			case !inRange:
				errno = EINVAL
			default:
				if err := t.Trim(int64(r.Offset), int64(r.Length)); err != nil {
					errno = errnoOf(err)
				}
			}
		case CmdCache:
			if !inRange {
				errno = EINVAL
			}
		default:
			errno = EINVAL
		}
		if err := rep.send(r.Cookie, errno, nil); err != nil {
			return err
		}
	}
}

// bufPool keeps READ buffers of 1 MiB and less for reuse.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

func getBuf(n int) []byte {
	if n <= 1<<20 {
		return (*bufPool.Get().(*[]byte))[:n]
	}
	return make([]byte, n)
}

func putBuf(b []byte) {
	if cap(b) == 1<<20 {
		b = b[:cap(b)]
		bufPool.Put(&b)
	}
}

func (e *Export) flush() uint32 {
	if f, ok := e.Dev.(Flusher); ok {
		if err := f.Flush(); err != nil {
			return errnoOf(err)
		}
	}
	return 0
}

// errnoOf maps a device error to an NBD error value.
func errnoOf(err error) uint32 {
	switch {
	case errors.Is(err, ErrNoSpace) || errors.Is(err, syscall.ENOSPC):
		return ENOSPC
	case errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EROFS):
		return EPERM
	case errors.Is(err, syscall.EINVAL):
		return EINVAL
	case errors.Is(err, syscall.ENOMEM):
		return ENOMEM
	}
	return EIO
}
