package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/nbd"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

const viewOpenTag = "bench-view-open"

// viewOpenRecords is how many before-images lie behind the point whose
// view_open is timed.
const viewOpenRecords = 10000

// benchView measures point-in-time views (issue 16): a tag, then
// -recover-bytes of random writes applied through a pair into the
// pre-filled target, the last viewOpenRecords of them after a second tag.
//
//   - view_read: the view of the first tag, served by the NBD server on a
//     unix socket and read sequentially in 1 MiB READs by a client in
//     this process, beside a sequential 1 MiB pread of the export of the
//     same point (written first, with recovery.Export). The page cache
//     of every file read is dropped (fadvise DONTNEED) before each read.
//     The view's bytes are checked against the pre-filled image as they
//     arrive, in memory (the baseline's bytes go nowhere either); the
//     process's CPU time and bytes read from storage during each read
//     are reported beside (figure=view_read_cpu, *_storage_mib).
//   - view_open: the time of recovery.OpenView of the second tag (the
//     applier held, the plan of viewOpenRecords before-images made).
func benchView(c config) error {
	b, err := newPairBench(c)
	if err != nil {
		return err
	}
	if err := b.open(); err != nil {
		return err
	}
	defer b.pair.Close()
	records := c.recoverBytes / int64(c.ioSize)
	if records <= viewOpenRecords {
		return fmt.Errorf("-recover-bytes %d of -io-size %d makes %d writes: view_open needs more than %d", c.recoverBytes, c.ioSize, records, viewOpenRecords)
	}
	if err := b.pair.Tag(b.pair.Next(), journal.TagInfo{Name: startTag, App: journal.AppUser, Time: time.Now().UTC()}); err != nil {
		return err
	}
	if err := b.write((records - viewOpenRecords) * int64(c.ioSize)); err != nil {
		return err
	}
	if err := b.pair.Tag(b.pair.Next(), journal.TagInfo{Name: viewOpenTag, App: journal.AppUser, Time: time.Now().UTC()}); err != nil {
		return err
	}
	if err := b.write(viewOpenRecords * int64(c.ioSize)); err != nil {
		return err
	}
	if err := b.drain(); err != nil {
		return err
	}
	st := b.pair.Store()

	// The export of the start tag: the baseline image.
	exportPath := filepath.Join(c.dir, "export.img")
	err = b.pair.Hold(func(target vfs.File, st *journal.Store) error {
		r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: startTag})
		if err != nil {
			return err
		}
		dst, err := vfs.OS.OpenFile(exportPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer dst.Close()
		_, err = recovery.Export(context.Background(), st, target, dst, r, nil)
		return err
	})
	if err != nil {
		return err
	}

	// view_open: the plan of viewOpenRecords before-images, the applier held.
	var openSec float64
	var openRecords int
	err = b.pair.Hold(func(target vfs.File, st *journal.Store) error {
		r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: viewOpenTag})
		if err != nil {
			return err
		}
		t := time.Now()
		v, err := recovery.OpenView(context.Background(), st, target, c.targetSize, r, "bench")
		openSec = time.Since(t).Seconds()
		if err != nil {
			return err
		}
		openRecords = v.Records
		return v.Close()
	})
	if err != nil {
		return err
	}
	kv("figure=view_open", "seconds", openSec, "undo_records", openRecords, "target_size", c.targetSize)

	// view_read: the start tag's view over NBD against the export.
	var v *recovery.View
	var openAllSec float64
	err = b.pair.Hold(func(target vfs.File, st *journal.Store) error {
		r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: startTag})
		if err != nil {
			return err
		}
		t := time.Now()
		v, err = recovery.OpenView(context.Background(), st, target, c.targetSize, r, "bench")
		openAllSec = time.Since(t).Seconds()
		return err
	})
	if err != nil {
		return err
	}
	defer v.Close()
	sock := filepath.Join(c.dir, "view.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := &nbd.Server{Exports: []nbd.Export{{Name: "bench", Dev: v}}}
	go srv.Serve(ln)
	defer srv.Close()

	drop := func() error {
		paths := []string{exportPath, b.target}
		for _, g := range st.Segments() {
			paths = append(paths, filepath.Join(b.retDir, fmt.Sprintf("%016x.undo", g.Index)))
		}
		for _, p := range paths {
			if err := dropCache(p); err != nil {
				return err
			}
		}
		return nil
	}
	if err := drop(); err != nil {
		return err
	}
	io0 := ioRead()
	t := time.Now()
	if err := readFile(exportPath, c.targetSize); err != nil {
		return err
	}
	expSec := time.Since(t).Seconds()
	expRead := ioRead() - io0
	if err := drop(); err != nil {
		return err
	}
	stop, err := profile(c.cpuprofile)
	if err != nil {
		return err
	}
	io0 = ioRead()
	cpu0 := cpuNow()
	t = time.Now()
	err = nbdRead(sock, c.targetSize, prefillChecker(c.seed))
	viewSec := time.Since(t).Seconds()
	stop()
	viewRead, viewCPU := ioRead()-io0, cpuSince(cpu0)
	if err != nil {
		return fmt.Errorf("the view read over NBD: %w", err)
	}
	kv("figure=view_read", "bytes", c.targetSize, "view_mibps", mib(c.targetSize)/viewSec, "export_mibps", mib(c.targetSize)/expSec,
		"undo_records", records, "undo_bytes", st.Used(), "churn", c.recoverBytes, "io_size", c.ioSize, "open_seconds", openAllSec,
		"export_storage_mib", mib(expRead), "view_storage_mib", mib(viewRead))
	kv("figure=view_read_cpu", viewCPU...)
	return nil
}

// dropCache drops path's pages from the page cache: written back first,
// as dirty pages stay.
func dropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	return unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

// readFile reads path sequentially in 1 MiB preads.
func readFile(path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		if err := vfs.ReadFull(f, buf[:min(int64(len(buf)), size-off)], off); err != nil {
			return err
		}
	}
	return nil
}

// prefillChecker checks a read of the pre-filled image (as verifyPrefill
// does, in memory): b must be the bytes at off, inside one 4 MiB block.
func prefillChecker(seed uint64) func(b []byte, off int64) error {
	want := make([]byte, 4<<20)
	fill(want, seed+7)
	return func(b []byte, off int64) error {
		in := off % int64(len(want))
		if in+int64(len(b)) > int64(len(want)) {
			return fmt.Errorf("a read of %d bytes at offset %d crosses a 4 MiB block", len(b), off)
		}
		w := want[in : in+int64(len(b))]
		if in == 0 && len(b) >= 2 {
			if b[0] != byte(off>>22) || b[1] != byte(off>>30) || !bytes.Equal(b[2:], w[2:]) {
				return fmt.Errorf("the %d bytes at offset %d differ from the pre-filled image", len(b), off)
			}
			return nil
		}
		if !bytes.Equal(b, w) {
			return fmt.Errorf("the %d bytes at offset %d differ from the pre-filled image", len(b), off)
		}
		return nil
	}
}

// nbdRead reads the default export on the unix socket sock sequentially
// in 1 MiB READs (8 in flight, as qemu-img and nbdcopy keep) and checks
// each reply's bytes with check, in memory, as the baseline reads the
// export into a buffer and writes it nowhere.
func nbdRead(sock string, size int64, check func(b []byte, off int64) error) error {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return err
	}
	defer c.Close()
	br := bufio.NewReaderSize(c, 64<<10)
	var hs [18]byte
	if _, err := io.ReadFull(br, hs[:]); err != nil {
		return err
	}
	opt := binary.BigEndian.AppendUint32(nil, 3) // fixed newstyle, no zeroes
	opt = binary.BigEndian.AppendUint64(opt, 0x49484156454f5054)
	opt = binary.BigEndian.AppendUint32(opt, nbd.OptGo)
	opt = binary.BigEndian.AppendUint32(opt, 6)
	opt = append(opt, 0, 0, 0, 0, 0, 0) // the empty name, no info requests
	if _, err := c.Write(opt); err != nil {
		return err
	}
	for {
		var h [20]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return err
		}
		typ, n := binary.BigEndian.Uint32(h[12:]), binary.BigEndian.Uint32(h[16:])
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			return err
		}
		if typ == 1 {
			break
		}
		if typ&(1<<31) != 0 {
			return fmt.Errorf("NBD GO refused: reply %#x", typ)
		}
	}
	// inFlight READs are kept in flight, as qemu-img and nbdcopy do.
	const inFlight = 8
	const chunk = 1 << 20
	buf := make([]byte, chunk)
	var rh [16]byte
	sent, got := int64(0), int64(0)
	send := func() error {
		n := min(int64(chunk), size-sent)
		_, err := c.Write(nbd.EncodeRequest(nbd.Request{Type: nbd.CmdRead, Cookie: uint64(sent), Offset: uint64(sent), Length: uint32(n)}))
		sent += n
		return err
	}
	for sent < size && sent < inFlight*chunk {
		if err := send(); err != nil {
			return err
		}
	}
	for got < size {
		if _, err := io.ReadFull(br, rh[:]); err != nil {
			return err
		}
		off := int64(binary.BigEndian.Uint64(rh[8:]))
		if e := binary.BigEndian.Uint32(rh[4:]); e != 0 {
			return fmt.Errorf("NBD READ at %d: error %d", off, e)
		}
		n := min(int64(chunk), size-off)
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			return err
		}
		if err := check(buf[:n], off); err != nil {
			return err
		}
		got += n
		if sent < size {
			if err := send(); err != nil {
				return err
			}
		}
	}
	return nil
}

// ioRead is the bytes this process has had read from storage so far
// (/proc/self/io read_bytes; 0 where it is not kept).
func ioRead() int64 {
	b, _ := os.ReadFile("/proc/self/io")
	var n int64
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "read_bytes: "); ok {
			n, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return n
}
