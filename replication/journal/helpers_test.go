package journal

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// t0 is the source time of sequence 0 in every test.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const logDir = "/j"

// testRecord is the record of sequence seq in generation gen: writes of
// varying length and content, a tag every tenth sequence. A later
// generation has other bytes, so a test can tell which one it reads.
func testRecord(seq uint64, gen byte) Record {
	at := t0.Add(time.Duration(seq) * time.Millisecond)
	if seq%10 == 0 {
		return Record{Type: TypeTag, Seq: seq, Time: at, Tag: &TagInfo{
			Name: fmt.Sprintf("tag-%d-%d", gen, seq), App: AppFS, ID: fmt.Sprintf("id-%d", seq), Time: at}}
	}
	n := int(seq*37%180) + 1 + int(gen)*3
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(seq) ^ byte(i*7) ^ gen<<4 | 1
	}
	var flags uint8
	if seq%3 == 0 {
		flags = FlagResync
	}
	return Record{Type: TypeWrite, Flags: flags, Seq: seq, Offset: int64(seq) * 4096, Time: at, Data: data}
}

// diffRecord describes how got differs from want, or returns "".
func diffRecord(got, want Record) string {
	var d []string
	if got.Type != want.Type {
		d = append(d, fmt.Sprintf("type %v, want %v", got.Type, want.Type))
	}
	if got.Flags != want.Flags {
		d = append(d, fmt.Sprintf("flags %#x, want %#x", got.Flags, want.Flags))
	}
	if got.Seq != want.Seq {
		d = append(d, fmt.Sprintf("seq %d, want %d", got.Seq, want.Seq))
	}
	if got.Type != TypeEnd && want.Type != TypeEnd && !got.Time.Equal(want.Time) {
		d = append(d, fmt.Sprintf("time %v, want %v", got.Time, want.Time))
	}
	switch want.Type {
	case TypeWrite, TypeUndo:
		if got.Offset != want.Offset {
			d = append(d, fmt.Sprintf("offset %d, want %d", got.Offset, want.Offset))
		}
		if !bytes.Equal(got.Data, want.Data) {
			d = append(d, fmt.Sprintf("data %d bytes %x..., want %d bytes %x...", len(got.Data), head(got.Data), len(want.Data), head(want.Data)))
		}
	case TypeTag:
		switch {
		case got.Tag == nil:
			d = append(d, "no tag")
		case got.Tag.Name != want.Tag.Name || got.Tag.App != want.Tag.App || got.Tag.ID != want.Tag.ID || !got.Tag.Time.Equal(want.Tag.Time):
			d = append(d, fmt.Sprintf("tag %+v, want %+v", *got.Tag, *want.Tag))
		}
	}
	return strings.Join(d, "; ")
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

// checkSeqs checks that recs are exactly the sequences from..to of the
// generations gen says, content included.
func checkSeqs(t *testing.T, recs []Record, from, to uint64, gen func(seq uint64) byte) {
	t.Helper()
	if want := int(to - from + 1); from > to && len(recs) != 0 || from <= to && len(recs) != want {
		var got []uint64
		for _, r := range recs {
			got = append(got, r.Seq)
		}
		t.Fatalf("read %d records %s, want sequences %d..%d", len(recs), seqSpan(got), from, to)
	}
	for i, r := range recs {
		seq := from + uint64(i)
		if d := diffRecord(r, testRecord(seq, gen(seq))); d != "" {
			t.Fatalf("record %d (sequence %d): %s", i, seq, d)
		}
	}
}

func seqSpan(s []uint64) string {
	if len(s) == 0 {
		return "[]"
	}
	return fmt.Sprintf("[%d..%d]", s[0], s[len(s)-1])
}

func gen0(uint64) byte { return 0 }

// logOpts are small options: 16 KiB segments and groups of at most 2 KiB,
// so a few hundred records span several segments.
func logOpts(fs vfs.FS) LogOptions {
	return LogOptions{FS: fs, Dir: logDir, SegmentSize: 16 << 10, MaxPending: 2 << 10, MaxRecord: 1 << 10, MaxSegments: 64}
}

func mustOpenLog(t *testing.T, o LogOptions) (*Log, RepairReport) {
	t.Helper()
	l, rep, err := OpenLog(o)
	if err != nil {
		t.Fatalf("OpenLog: %v", err)
	}
	return l, rep
}

// appendSeqs appends sequences from..to of generation gen.
func appendSeqs(t *testing.T, l *Log, from, to uint64, gen byte) {
	t.Helper()
	for seq := from; seq <= to; seq++ {
		r := testRecord(seq, gen)
		if err := l.Append(&r); err != nil {
			t.Fatalf("Append %d: %v", seq, err)
		}
	}
}

// readAll reads every durable record from sequence from.
func readAll(t *testing.T, l *Log, from uint64) []Record {
	t.Helper()
	recs, err := readAllErr(l, from)
	if err != nil {
		t.Fatalf("read from %d: %v", from, err)
	}
	return recs
}

func readAllErr(l *Log, from uint64) ([]Record, error) {
	var out []Record
	rd := l.NewReader(from)
	for {
		r, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
}

// files returns the contents of every file in dir.
func files(t *testing.T, m *vfs.Mem, dir string) map[string][]byte {
	t.Helper()
	names, err := m.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		b, err := m.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Join(dir, n)] = b
	}
	return out
}

// memWith returns a Mem holding exactly these files, all durable.
func memWith(t *testing.T, fs map[string][]byte) *vfs.Mem {
	t.Helper()
	m := vfs.NewMem()
	dirs := map[string]bool{}
	for path, data := range fs {
		dir := filepath.Dir(path)
		if err := m.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		dirs[dir] = true
		f, err := m.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(data, 0); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	for d := range dirs {
		if err := m.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func segName(index uint64) string {
	return filepath.Join(logDir, fmt.Sprintf("%016x.redo", index))
}

// recordSpan is where one record lies in a segment image.
type recordSpan struct {
	seq        uint64
	typ        Type
	start, end int64
}

// segRecords decodes the records of a redo segment image up to its first
// bad record.
func segRecords(img []byte, index uint64) []recordSpan {
	var out []recordSpan
	for off := int64(segHeaderSize); off < int64(len(img)); {
		r, n, err := DecodeRecord(img[off:], index)
		if err != nil {
			break
		}
		out = append(out, recordSpan{seq: r.Seq, typ: r.Type, start: off, end: off + int64(n)})
		off += int64(n)
		if r.Type == TypeEnd {
			break
		}
	}
	return out
}

// watchFS is a Mem that notes the highest sequence found in a redo segment
// image right after each successful Sync: what is known durable.
type watchFS struct {
	*vfs.Mem
	mu     sync.Mutex
	synced uint64
}

func (w *watchFS) OpenFile(name string, flag int, perm os.FileMode) (vfs.File, error) {
	f, err := w.Mem.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &watchFile{File: f, w: w}, nil
}

func (w *watchFS) Synced() uint64 { w.mu.Lock(); defer w.mu.Unlock(); return w.synced }

type watchFile struct {
	vfs.File
	w *watchFS
}

func (f *watchFile) Sync() error {
	if err := f.File.Sync(); err != nil {
		return err
	}
	base := filepath.Base(f.Name())
	index, err := strconv.ParseUint(strings.TrimSuffix(base, ".redo"), 16, 64)
	if !strings.HasSuffix(base, ".redo") || err != nil {
		return nil
	}
	// Only the commit goroutine writes segments, and it is here: what
	// reads see now is what was just made durable.
	img, err := f.w.Mem.ReadFile(f.Name())
	if err != nil {
		return nil
	}
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	for _, s := range segRecords(img, index) {
		if s.typ != TypeEnd && s.seq > f.w.synced {
			f.w.synced = s.seq
		}
	}
	return nil
}

// acks collects OnDurable calls.
type acks struct {
	mu   sync.Mutex
	seqs []uint64
}

func (a *acks) add(seq uint64) { a.mu.Lock(); a.seqs = append(a.seqs, seq); a.mu.Unlock() }

func (a *acks) max() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seqs) == 0 {
		return 0
	}
	return a.seqs[len(a.seqs)-1]
}

func (a *acks) all() []uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]uint64(nil), a.seqs...)
}
