package vfs

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DirectBlock is the alignment of direct writes: offsets, lengths and
// buffer addresses are multiples of it.
const DirectBlock = 4096

// directPiece is the most one direct write carries: the buffers come from
// a pool shared by every file, so many pairs do not each hold a group's
// worth of aligned memory. Appends of bigPieceFrom bytes or more go in
// pieces of bigPiece: one write of 8 MiB at a time is about twice as
// fast as 1 MiB ones on a virtual disk (fio, QD1), and only a busy
// pair's large groups take them.
const (
	directPiece  = 1 << 20
	bigPiece     = 8 << 20
	bigPieceFrom = 4 << 20
)

// ErrNoDirect says a file cannot be written with O_DIRECT (a file
// system without it, a file opened read-only): write it through the page
// cache instead.
var ErrNoDirect = errors.New("direct I/O not available")

// direct is the O_DIRECT descriptor of an osFile, opened on first use.
type direct struct {
	mu  sync.Mutex
	f   *os.File
	off bool // tried and failed: never again
}

// WriteDirect writes p at off with O_DIRECT, past the page cache: off,
// len(p) and p's address must be multiples of DirectBlock. It returns
// ErrNoDirect, having written nothing, when the file cannot take direct
// writes. Nothing is durable until Sync.
func (f *osFile) WriteDirect(p []byte, off int64) (int, error) {
	d := f.direct
	d.mu.Lock()
	if d.f == nil && !d.off {
		d.f = openDirect(f.File)
		d.off = d.f == nil
	}
	df := d.f
	d.mu.Unlock()
	if df == nil {
		return 0, ErrNoDirect
	}
	n, err := df.WriteAt(p, off)
	if n == 0 && errors.Is(err, syscall.EINVAL) {
		d.mu.Lock()
		d.off = true
		d.mu.Unlock()
		return 0, ErrNoDirect
	}
	return n, err
}

// openDirect opens f's file again with O_DIRECT, or returns nil when it
// cannot (or the name now leads to another file).
func openDirect(f *os.File) *os.File {
	df, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Fstat(int(df.Fd()), &b) != nil ||
		a.Dev != b.Dev || a.Ino != b.Ino || a.Mode&unix.S_IFMT != unix.S_IFREG {
		df.Close()
		return nil
	}
	return df
}

// Close closes the file and its direct descriptor.
func (f *osFile) Close() error {
	f.direct.mu.Lock()
	if f.direct.f != nil {
		f.direct.f.Close()
		f.direct.f = nil
	}
	f.direct.off = true
	f.direct.mu.Unlock()
	return f.File.Close()
}

// DirectWriter is a file that can write aligned blocks past the page
// cache (see osFile.WriteDirect).
type DirectWriter interface {
	WriteDirect(p []byte, off int64) (int, error)
}

var (
	piecePool    = sync.Pool{New: func() any { return alignedPiece(directPiece) }}
	bigPiecePool = sync.Pool{New: func() any { return alignedPiece(bigPiece) }}
)

func alignedPiece(n int) *[]byte {
	b := make([]byte, n+DirectBlock)
	k := int(uintptr(unsafe.Pointer(&b[0])) & (DirectBlock - 1))
	if k != 0 {
		b = b[DirectBlock-k:]
	}
	b = b[:n]
	return &b
}

// WriteAppend writes p at off like f.WriteAt, for files written in
// order, each write after the last: the whole DirectBlock-sized blocks
// it covers go past the page cache when f is a DirectWriter (the bytes of
// the first block before off read back from f and written again, as they
// are), the rest through it. Writing large appends that way keeps them
// out of the page cache, whose write-back of them is slow and stalls
// other writers; the next fdatasync makes them durable either way.
//
// When p lies in memory as the file will (the address of p[i] and off+i
// equal modulo DirectBlock: an AlignedBuffer sliced so), the whole
// blocks are written from p itself rather than copied to a piece first.
func WriteAppend(f File, p []byte, off int64) error {
	dw, ok := f.(DirectWriter)
	if !ok || len(p) < 4*DirectBlock {
		_, err := f.WriteAt(p, off)
		return err
	}
	start := off &^ (DirectBlock - 1)
	end := off + int64(len(p))
	stop := end &^ (DirectBlock - 1)
	if uintptr(unsafe.Pointer(&p[0]))&(DirectBlock-1) == uintptr(off&(DirectBlock-1)) {
		return writeAppendInPlace(f, dw, p, off, start, stop)
	}
	pool := &piecePool
	if len(p) >= bigPieceFrom {
		pool = &bigPiecePool
	}
	bp := pool.Get().(*[]byte)
	defer pool.Put(bp)
	buf := *bp
	head := int(off - start)
	if head > 0 {
		if err := ReadFull(f, buf[:head], start); err != nil {
			_, err := f.WriteAt(p, off)
			return err
		}
	}
	src := p
	for at := start; at < stop; {
		n := int(min(int64(len(buf)), stop-at))
		k := copy(buf[head:n], src)
		src = src[k:]
		if _, err := dw.WriteDirect(buf[:n], at); err != nil {
			if errors.Is(err, ErrNoDirect) {
				// Nothing of this piece was written: the rest goes
				// through the page cache.
				_, err := f.WriteAt(p[at+int64(head)-off:], at+int64(head))
				return err
			}
			return err
		}
		at += int64(n)
		head = 0
	}
	if len(src) > 0 {
		if _, err := f.WriteAt(src, stop); err != nil {
			return err
		}
	}
	return nil
}

// inPlacePiece is the most one in-place direct write carries: the kernel
// splits it into requests of the device's largest size and has them all
// in flight at once.
const inPlacePiece = 64 << 20

// writeAppendInPlace is WriteAppend of a p aligned as the file: the
// first block through a piece (with the bytes before off read back), the
// whole blocks after it straight from p, the tail through the page cache.
func writeAppendInPlace(f File, dw DirectWriter, p []byte, off, start, stop int64) error {
	at := start
	if head := int(off - start); head > 0 {
		bp := piecePool.Get().(*[]byte)
		defer piecePool.Put(bp)
		buf := (*bp)[:DirectBlock]
		if err := ReadFull(f, buf[:head], start); err != nil {
			_, err := f.WriteAt(p, off)
			return err
		}
		copy(buf[head:], p)
		if _, err := dw.WriteDirect(buf, start); err != nil {
			if errors.Is(err, ErrNoDirect) {
				_, err := f.WriteAt(p, off)
				return err
			}
			return err
		}
		at = start + DirectBlock
	}
	for at < stop {
		n := min(int64(inPlacePiece), stop-at)
		if _, err := dw.WriteDirect(p[at-off:at-off+n], at); err != nil {
			if errors.Is(err, ErrNoDirect) {
				_, err := f.WriteAt(p[at-off:], at)
				return err
			}
			return err
		}
		at += n
	}
	if at < off+int64(len(p)) {
		if _, err := f.WriteAt(p[at-off:], at); err != nil {
			return err
		}
	}
	return nil
}

// AlignedBuffer returns a buffer of n bytes whose first byte is at an
// address that is a multiple of DirectBlock: slice it from i where the
// file offset to write it at is i modulo DirectBlock, and WriteAppend
// writes it without copying.
func AlignedBuffer(n int) []byte { return *alignedPiece(n) }
