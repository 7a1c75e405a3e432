package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime/debug"
)

// The catalogue's failures that no retry mends. Both wrap into errors that
// name the file and what to do; callers that serve several pairs (the
// agent) test them with errors.Is and keep serving the other pairs.
var (
	// ErrCatalogueMissing is a catalogue that is absent or empty while
	// the pair's undo segments are still there: the applied position is
	// unknown, and taking it for "nothing applied" would undo every
	// before-image onto the target and delete the history.
	ErrCatalogueMissing = errors.New("retention catalogue is missing")
	// ErrCatalogueCorrupt is a catalogue that fails verification, panics
	// bbolt, belongs to another pair or does not match the segments.
	ErrCatalogueCorrupt = errors.New("retention catalogue is damaged")
)

// catalogueAdvice is what to do about a missing or damaged catalogue.
const catalogueAdvice = "nothing was changed; restore catalogue.db from a backup, " +
	"or move the retention directory's .undo segments and catalogue.db away to start the pair afresh (its history is lost and the target is fully resynchronised)"

func corrupt(path string, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s; %s", ErrCatalogueCorrupt, path, fmt.Sprintf(format, args...), catalogueAdvice)
}

// guard runs fn, which touches the bbolt file, turning a panic or a memory
// fault inside bbolt (a damaged page) into ErrCatalogueCorrupt.
func guard(path string, fn func() error) (err error) {
	old := debug.SetPanicOnFault(true)
	defer func() {
		debug.SetPanicOnFault(old)
		if r := recover(); r != nil {
			err = corrupt(path, "bbolt failed reading it: %v", r)
		}
	}()
	return fn()
}

// The bbolt on-disk format, as far as verifyCatalogue needs it (bbolt
// v1.x, little endian).
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltPageHeader   = 16
	boltElemSize     = 16 // branch and leaf page elements
	boltBucketHeader = 16 // root pgid, sequence
	boltBranch       = 0x01
	boltLeaf         = 0x02
	boltMeta         = 0x04
	boltFreelist     = 0x10
	boltBucketLeaf   = 0x01
	boltNoFreelist   = ^uint64(0)
	// A catalogue is small (its segments, ranges, tags); a file beyond
	// this is not one.
	maxCatalogue = 1 << 30
)

type boltMetaPage struct {
	pageSize       uint32
	root, freelist uint64
	hwm, txid      uint64
}

func parseBoltMeta(p []byte) (boltMetaPage, bool) {
	if len(p) < boltPageHeader+64 {
		return boltMetaPage{}, false
	}
	m := p[boltPageHeader:]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic || le.Uint32(m[4:]) != boltVersion || binary.LittleEndian.Uint16(p[8:])&boltMeta == 0 {
		return boltMetaPage{}, false
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != le.Uint64(m[56:]) {
		return boltMetaPage{}, false
	}
	return boltMetaPage{pageSize: le.Uint32(m[8:]), root: le.Uint64(m[16:]), freelist: le.Uint64(m[32:]),
		hwm: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}, true
}

// verifyCatalogue checks the bbolt file at path before bbolt maps it: a
// valid meta page, a file long enough for every page it claims (a
// truncated file would fault inside the mapping: SIGBUS), and every page
// reachable from the root or the freelist inside the file, of the right
// type, referenced once, with its elements inside it and its keys in
// order. bbolt checksums only its meta pages and trusts the rest; after
// this it reads nothing outside the file. It reads the whole file once.
//
// Read-only, both meta pages must be sound: bbolt falls back to the other
// one, a transaction older, and a report or an export from it would miss
// the last applied batch while the target has it. Read-write, the fallback
// stands (bbolt's crash recovery; the writer undoes the batch the older
// meta page does not record, from its before-images).
func verifyCatalogue(path string, readOnly bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("catalogue %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("catalogue %s: %w", path, err)
	}
	size := fi.Size()
	if size > maxCatalogue {
		return corrupt(path, "%d bytes is not a retention catalogue", size)
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return fmt.Errorf("catalogue %s: %w", path, err)
	}
	// Page 0 gives the page size; if it is damaged, page 1 at each
	// possible page size.
	var metas []boltMetaPage
	if m, ok := parseBoltMeta(data[:min(len(data), 4096)]); ok {
		metas = append(metas, m)
	}
	ps := uint64(0)
	if len(metas) == 1 {
		ps = uint64(metas[0].pageSize)
		if ps >= 1024 && ps <= 1<<24 && ps&(ps-1) == 0 && 2*ps <= uint64(size) {
			if m, ok := parseBoltMeta(data[ps : 2*ps]); ok && m.pageSize == metas[0].pageSize {
				metas = append(metas, m)
			}
		}
	} else {
		for p := uint64(1024); p <= 1<<24 && 2*p <= uint64(size); p *= 2 {
			if m, ok := parseBoltMeta(data[p : 2*p]); ok && uint64(m.pageSize) == p {
				metas = append(metas, m)
				break
			}
		}
	}
	if len(metas) == 0 {
		return corrupt(path, "no valid bbolt meta page (%d bytes)", size)
	}
	if readOnly && len(metas) < 2 {
		return fmt.Errorf("%w: %s: one of its two bbolt meta pages is damaged, so it may have lost its last change; "+
			"start the pair in the agent, which recovers from the other one, or restore catalogue.db from a backup", ErrCatalogueCorrupt, path)
	}
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	ps = uint64(m.pageSize)
	if ps < 1024 || ps > 1<<24 || ps&(ps-1) != 0 {
		return corrupt(path, "page size %d", ps)
	}
	if m.hwm < 2 || m.hwm > uint64(size)/ps || 2*ps > uint64(size) {
		return corrupt(path, "it is %d bytes but its meta page counts %d pages of %d bytes (%d bytes): truncated", size, m.hwm, ps, m.hwm*ps)
	}
	v := &boltVerifier{data: data[:m.hwm*ps], ps: ps, hwm: m.hwm, seen: make([]bool, m.hwm), free: make([]bool, m.hwm)}
	v.seen[0], v.seen[1] = true, true
	if m.freelist != boltNoFreelist {
		if err := v.freelist(m.freelist); err != nil {
			return corrupt(path, "%v", err)
		}
	}
	if err := v.page(m.root, 0); err != nil {
		return corrupt(path, "%v", err)
	}
	return nil
}

type boltVerifier struct {
	data []byte
	ps   uint64
	hwm  uint64
	seen []bool // by page id: reachable
	free []bool // by page id: in the freelist
}

// span returns page id with its overflow pages, once.
func (v *boltVerifier) span(id uint64, want uint16) ([]byte, error) {
	if id < 2 || id >= v.hwm {
		return nil, fmt.Errorf("page %d is outside the file's %d pages", id, v.hwm)
	}
	p := v.data[id*v.ps : (id+1)*v.ps]
	le := binary.LittleEndian
	if got := le.Uint64(p); got != id {
		return nil, fmt.Errorf("page %d says it is page %d", id, got)
	}
	if fl := le.Uint16(p[8:]); fl != want {
		return nil, fmt.Errorf("page %d has type %#x, want %#x", id, fl, want)
	}
	ov := uint64(le.Uint32(p[12:]))
	if id+ov >= v.hwm {
		return nil, fmt.Errorf("page %d runs past the file's %d pages", id, v.hwm)
	}
	for i := id; i <= id+ov; i++ {
		if v.seen[i] {
			return nil, fmt.Errorf("page %d is referenced twice", i)
		}
		if v.free[i] {
			return nil, fmt.Errorf("page %d is in use and free", i)
		}
		v.seen[i] = true
	}
	return v.data[id*v.ps : (id+ov+1)*v.ps], nil
}

func (v *boltVerifier) freelist(id uint64) error {
	p, err := v.span(id, boltFreelist)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	le := binary.LittleEndian
	n, start := uint64(le.Uint16(p[10:])), uint64(boltPageHeader)
	if n == 0xFFFF {
		n, start = le.Uint64(p[boltPageHeader:]), boltPageHeader+8
	}
	if n > (uint64(len(p))-start)/8 {
		return fmt.Errorf("freelist page %d: %d ids do not fit", id, n)
	}
	for i := uint64(0); i < n; i++ {
		f := le.Uint64(p[start+8*i:])
		if f < 2 || f >= v.hwm || v.seen[f] || v.free[f] {
			return fmt.Errorf("freelist page %d: free page %d is a meta page, in use, listed twice or outside the file", id, f)
		}
		v.free[f] = true
	}
	return nil
}

// page verifies the tree of branch and leaf pages at page id.
func (v *boltVerifier) page(id uint64, depth int) error {
	if depth > 64 {
		return fmt.Errorf("page %d: the tree is deeper than 64", id)
	}
	if id < 2 || id >= v.hwm {
		return fmt.Errorf("page %d is outside the file's %d pages", id, v.hwm)
	}
	fl := binary.LittleEndian.Uint16(v.data[id*v.ps+8:])
	if fl != boltBranch && fl != boltLeaf {
		return fmt.Errorf("page %d has type %#x, want a branch or a leaf", id, fl)
	}
	p, err := v.span(id, fl)
	if err != nil {
		return err
	}
	return v.elements(p, id, nil, depth)
}

// elements verifies the elements of the branch or leaf page p: page id,
// or the inline page of bucket inline.
func (v *boltVerifier) elements(p []byte, id uint64, inline []byte, depth int) error {
	name := func() string {
		if inline != nil {
			return fmt.Sprintf("inline bucket %q", inline)
		}
		return fmt.Sprintf("page %d", id)
	}
	le := binary.LittleEndian
	fl, n := le.Uint16(p[8:]), int(le.Uint16(p[10:]))
	if boltPageHeader+n*boltElemSize > len(p) {
		return fmt.Errorf("%s: %d elements do not fit", name(), n)
	}
	var prev []byte
	for i := 0; i < n; i++ {
		e := boltPageHeader + i*boltElemSize
		var pos, ks, vs, eflags uint64
		if fl == boltBranch {
			pos, ks = uint64(le.Uint32(p[e:])), uint64(le.Uint32(p[e+4:]))
		} else {
			eflags, pos, ks, vs = uint64(le.Uint32(p[e:])), uint64(le.Uint32(p[e+4:])), uint64(le.Uint32(p[e+8:])), uint64(le.Uint32(p[e+12:]))
		}
		if uint64(e)+pos+ks+vs > uint64(len(p)) {
			return fmt.Errorf("%s: element %d lies outside the page", name(), i)
		}
		k := p[uint64(e)+pos : uint64(e)+pos+ks]
		if i > 0 && bytes.Compare(prev, k) >= 0 {
			return fmt.Errorf("%s: keys out of order at element %d", name(), i)
		}
		prev = k
		if fl == boltBranch {
			if err := v.page(le.Uint64(p[e+8:]), depth+1); err != nil {
				return err
			}
			continue
		}
		if eflags&boltBucketLeaf == 0 {
			continue
		}
		val := p[uint64(e)+pos+ks : uint64(e)+pos+ks+vs]
		if len(val) < boltBucketHeader {
			return fmt.Errorf("%s: bucket %q: value of %d bytes", name(), k, len(val))
		}
		if root := le.Uint64(val); root != 0 {
			if err := v.page(root, depth+1); err != nil {
				return fmt.Errorf("bucket %q: %w", k, err)
			}
			continue
		}
		in := val[boltBucketHeader:]
		if len(in) < boltPageHeader || le.Uint16(in[8:]) != boltLeaf {
			return fmt.Errorf("%s: inline bucket %q is not a leaf", name(), k)
		}
		if err := v.elements(in, id, k, depth+1); err != nil {
			return err
		}
	}
	return nil
}
