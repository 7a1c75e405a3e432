package journal

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

const undoMagic = "MTUNDO01"

// StoreOptions configure a retention Store.
type StoreOptions struct {
	FS   vfs.FS
	Dir  string // the pair's retention directory
	Pair string // the pair's id, kept in the catalogue
	// CatalogueDir holds catalogue.db (default Dir). bbolt does its own
	// I/O, so crash tests keep it on a real file system.
	CatalogueDir string
	// SegmentSize is the size at which an undo segment is sealed and a
	// new one begun (default 64 MiB): pruning works in these units.
	SegmentSize int64
	// ReadOnly opens the catalogue shared, for reports.
	ReadOnly bool
	// Hook, when set, runs inside every catalogue transaction just before
	// it commits; an error aborts the transaction (crash tests).
	Hook   func() error
	Logger *slog.Logger
}

// Store is the retention (undo) store of one pair: append-only segments of
// before-images and the bbolt catalogue of segments, ranges, tags and the
// pair's applied position.
type Store struct {
	o    StoreOptions
	mu   sync.Mutex
	db   *bolt.DB
	path string // of catalogue.db
	// broken is the ErrCatalogueCorrupt a bbolt panic left: the store
	// refuses every later catalogue change.
	broken error

	segs   []SegmentInfo // committed, ascending
	tags   []Tag         // ascending Seq
	ranges []Range       // ascending
	state  PairState
	policy Policy

	// the segment being appended, and segments written since the last
	// Commit / Sync
	buf      []byte // encoding buffer, reused by Append (appendBuf)
	act      *activeSeg
	uncommit []*activeSeg
	unsynced []*activeSeg
	nextIdx  uint64

	// pins held and append watchers (pin.go), by id
	pins     map[uint64]*Pin
	npins    atomic.Int32 // len(pins), for Pinned without the lock
	watchers map[uint64]AppendWatcher
	nextPin  uint64
	// sparse retention: what compaction left (see compact.go)
	sparse     SparseState
	gone       []Tag // tags compacted away, ascending Seq
	holds      map[uint64]uint64
	holdN      uint64
	compacting bool
}

type activeSeg struct {
	info SegmentInfo
	f    vfs.File
	off  int64
}

func (s *Store) segPath(index uint64) string {
	return filepath.Join(s.o.Dir, fmt.Sprintf("%016x.undo", index))
}

// segFile is the file of catalogued segment g: a compacted segment's
// name carries its generation (undoSegName).
func (s *Store) segFile(g SegmentInfo) string {
	return filepath.Join(s.o.Dir, undoSegName(g.Index, g.Gen))
}

// undoSegName is NNNNNNNNNNNNNNNN.undo, or NNNNNNNNNNNNNNNN.gG.undo for the
// G-th compaction's rewrite of index N.
func undoSegName(index uint64, gen uint32) string {
	if gen == 0 {
		return fmt.Sprintf("%016x.undo", index)
	}
	return fmt.Sprintf("%016x.g%d.undo", index, gen)
}

// OpenStore opens or creates the store in o.Dir. Undo records written
// after the last commit stay in place for Uncommitted until
// DiscardUncommitted.
func OpenStore(o StoreOptions) (*Store, error) {
	if o.FS == nil {
		o.FS = vfs.OS
	}
	if o.CatalogueDir == "" {
		o.CatalogueDir = o.Dir
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = 64 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if !o.ReadOnly {
		if err := o.FS.MkdirAll(o.Dir, 0o700); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(o.CatalogueDir, 0o700); err != nil {
			return nil, err
		}
	}
	segFiles, err := listSegFiles(o.FS, o.Dir)
	if err != nil && !(o.ReadOnly && errors.Is(err, fs.ErrNotExist)) {
		return nil, fmt.Errorf("retention %s: %w", o.Dir, err)
	}
	db, err := openCatalogue(o.CatalogueDir, o.Pair, o.ReadOnly, len(segFiles))
	if err != nil {
		return nil, err
	}
	path := filepath.Join(o.CatalogueDir, "catalogue.db")
	s := &Store{o: o, db: db, path: path, policy: DefaultPolicy, state: PairState{Pair: o.Pair, State: StateActive}}
	var metaPair string
	err = guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			var err error
			if m := tx.Bucket(bMeta); m != nil {
				metaPair = string(m.Get([]byte("pair")))
			}
			if s.segs, err = loadAll(tx, bSegments, func(g SegmentInfo) []byte { return key(g.Index) }); err != nil {
				return err
			}
			if s.ranges, err = loadAll(tx, bRanges, func(r Range) []byte { return key(r.FirstSeq) }); err != nil {
				return err
			}
			for i := range s.ranges {
				// an older version could record a range ending before it
				// starts (see Commit): it ends where it starts
				s.ranges[i].LastTime = latest(s.ranges[i].LastTime, s.ranges[i].FirstTime)
			}
			if s.tags, err = loadAll(tx, bTags, func(t Tag) []byte { return key(t.Seq) }); err != nil {
				return err
			}
			if ps, err := loadAll(tx, bState, func(PairState) []byte { return []byte("pair") }); err != nil {
				return err
			} else if len(ps) == 1 {
				s.state = ps[0]
			}
			if p, err := loadAll(tx, bPolicy, func(Policy) []byte { return []byte("policy") }); err != nil {
				return err
			} else if len(p) == 1 {
				s.policy = p[0]
			}
			return s.loadSparse(tx)
		})
	})
	if err == nil {
		err = s.checkLoaded(metaPair, segFiles)
	}
	if err != nil && !errors.Is(err, ErrCatalogueCorrupt) {
		err = corrupt(path, "%v", err)
	}
	if err == nil {
		err = s.checkPairFile(metaPair)
	}
	if err != nil {
		guard(path, db.Close)
		return nil, err
	}
	if s.state.Pair == "" {
		s.state.Pair = o.Pair
	}
	if n := len(s.segs); n > 0 {
		s.nextIdx = s.segs[n-1].Index + 1
	}
	if !o.ReadOnly {
		if err := s.removeOrphans(); err != nil {
			guard(path, db.Close)
			return nil, err
		}
	}
	return s, nil
}

// pairFile, beside the undo segments, names the pair whose retention
// directory it is, so that another pair's catalogue copied in is caught
// even by a reader that does not know the pair (mtconsole retention).
const pairFile = "pair.id"

// checkPairFile compares the catalogue's pair with the directory's
// pair.id, and writes pair.id when the store is opened read-write for a
// pair and it is absent (stores made before it).
func (s *Store) checkPairFile(metaPair string) error {
	path := filepath.Join(s.o.Dir, pairFile)
	f, err := s.o.FS.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if s.o.ReadOnly || s.o.Pair == "" {
			return nil
		}
		// An aid to readers, not to the pair: a failure waits for the
		// next open.
		if err := s.writePairFile(path); err != nil {
			s.o.Logger.Warn("retention: cannot record the pair id", "pair", s.o.Pair, "err", err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("retention %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return fmt.Errorf("retention %s: %w", path, err)
	}
	b := make([]byte, min(size, 4096))
	if err := vfs.ReadFull(f, b, 0); err != nil {
		return fmt.Errorf("retention %s: %w", path, err)
	}
	id := strings.TrimSpace(string(b))
	if metaPair != "" && id != metaPair {
		return fmt.Errorf("%w: %s belongs to pair %q but %s says the directory is pair %q's: it is another pair's catalogue; %s",
			ErrCatalogueCorrupt, s.path, metaPair, path, id, catalogueAdvice)
	}
	if s.o.Pair != "" && id != s.o.Pair {
		return fmt.Errorf("retention directory %s is pair %q's (%s), not %q: check the pair's retention_dir", s.o.Dir, id, path, s.o.Pair)
	}
	return nil
}

func (s *Store) writePairFile(path string) error {
	tmp := path + ".tmp"
	f, err := s.o.FS.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("retention %s: %w", tmp, err)
	}
	_, err = f.WriteAt([]byte(s.o.Pair+"\n"), 0)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = s.o.FS.Rename(tmp, path)
	}
	if err == nil {
		err = s.o.FS.SyncDir(s.o.Dir)
	}
	if err != nil {
		s.o.FS.Remove(tmp)
		return fmt.Errorf("retention %s: %w", path, err)
	}
	return nil
}

// checkLoaded verifies what the catalogue holds against itself and against
// the segment files, before anything acts on it: a damaged catalogue, or
// another pair's, must not make OpenStore remove or cut segments.
func (s *Store) checkLoaded(metaPair string, files map[segKey]string) error {
	if p := s.state.Pair; p != "" && metaPair != "" && p != metaPair {
		return fmt.Errorf("its state is of pair %q, its meta of pair %q", p, metaPair)
	}
	for i, g := range s.segs {
		if i > 0 && g.Index <= s.segs[i-1].Index {
			return fmt.Errorf("segment %d follows segment %d", g.Index, s.segs[i-1].Index)
		}
		if g.Bytes < segHeaderSize || g.FirstSeq > g.LastSeq || g.LastSeq > s.state.Applied {
			return fmt.Errorf("segment %d: %d bytes, sequences %d-%d, applied %d: not a committed segment", g.Index, g.Bytes, g.FirstSeq, g.LastSeq, s.state.Applied)
		}
		path, ok := files[segKey{g.Index, g.Gen}]
		if !ok {
			return fmt.Errorf("it lists undo segment %s, which is not in %s (another pair's catalogue, or segments moved away?)", filepath.Base(s.segFile(g)), s.o.Dir)
		}
		if err := checkSegmentFile(s.o.FS, path, g, i == len(s.segs)-1 && g.Gen == 0); err != nil {
			return err
		}
	}
	return nil
}

// checkSegmentFile compares a catalogued segment with its file: a sealed
// segment is exactly as long as its committed bytes (nothing writes to it
// after its last commit), the last one at least as long (a batch a crash
// cut short may follow).
func checkSegmentFile(fsys vfs.FS, path string, g SegmentInfo, last bool) error {
	f, err := fsys.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return err
	}
	idx, first, ok := readSegHeader(f, undoMagic)
	switch {
	case size < g.Bytes || !last && size != g.Bytes:
		return fmt.Errorf("it gives undo segment %s %d committed bytes, the file has %d (another pair's catalogue?)", path, g.Bytes, size)
	case !ok || idx != g.Index || g.FirstSeq != 0 && first != g.FirstSeq:
		return fmt.Errorf("undo segment %s does not match it: header of segment %d from sequence %d, catalogued segment %d from %d (another pair's catalogue?)", path, idx, first, g.Index, g.FirstSeq)
	}
	return nil
}

// segKey names a segment file: its index and compaction generation.
type segKey struct {
	idx uint64
	gen uint32
}

// listSegFiles returns every undo segment file in dir, compacted ones
// (NNNNNNNNNNNNNNNN.gG.undo) too.
func listSegFiles(fsys vfs.FS, dir string) (map[segKey]string, error) {
	names, err := fsys.List(dir)
	if err != nil {
		return nil, err
	}
	out := map[segKey]string{}
	for _, n := range names {
		base, ok := strings.CutSuffix(n, ".undo")
		if !ok {
			continue
		}
		var gen uint64
		if i := strings.Index(base, ".g"); i > 0 {
			g, err := strconv.ParseUint(base[i+2:], 10, 32)
			if err != nil || g == 0 {
				continue
			}
			base, gen = base[:i], g
		}
		idx, err := strconv.ParseUint(base, 16, 64)
		if err == nil {
			out[segKey{idx, uint32(gen)}] = filepath.Join(dir, n)
		}
	}
	return out, nil
}

// listSegments returns the undo segment files in dir as written by the
// appender (generation 0), by index.
func listSegments(fsys vfs.FS, dir string) (map[uint64]string, error) {
	all, err := listSegFiles(fsys, dir)
	if err != nil {
		return nil, err
	}
	out := map[uint64]string{}
	for k, p := range all {
		if k.gen == 0 {
			out[k.idx] = p
		}
	}
	return out, nil
}

// segment files this store knows nothing of, by index
func (s *Store) files() (map[uint64]string, error) { return listSegments(s.o.FS, s.o.Dir) }

// removeOrphans deletes segment files below the first catalogued one (a
// prune committed to the catalogue whose unlink did not happen), and,
// below the last catalogued one, every file the catalogue does not name:
// the segments a committed compaction replaced, or the output of one a
// crash cut short before it switched the catalogue.
func (s *Store) removeOrphans() error {
	files, err := listSegFiles(s.o.FS, s.o.Dir)
	if err != nil {
		return err
	}
	first, last := s.nextIdx, uint64(0)
	named := map[segKey]bool{}
	for _, g := range s.segs {
		named[segKey{g.Index, g.Gen}] = true
	}
	if n := len(s.segs); n > 0 {
		first, last = s.segs[0].Index, s.segs[n-1].Index
	}
	removed := false
	for k, path := range files {
		if k.idx < first && k.gen == 0 || len(s.segs) > 0 && !named[k] && (k.idx < last || k.gen > 0) {
			if err := s.o.FS.Remove(path); err != nil {
				return err
			}
			removed = true
		}
	}
	if removed {
		return s.o.FS.SyncDir(s.o.Dir)
	}
	return nil
}

// Uncommitted returns the undo records written after the last commit (a
// batch a crash cut short), in order, up to the first bad record.
func (s *Store) Uncommitted() ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, err := s.files()
	if err != nil {
		return nil, err
	}
	var out []Record
	scan := func(idx uint64, path string, from int64) (bool, error) {
		f, err := s.o.FS.OpenFile(path, os.O_RDONLY, 0)
		if err != nil {
			return false, err
		}
		defer f.Close()
		if from == 0 {
			if hidx, _, ok := readSegHeader(f, undoMagic); !ok || hidx != idx {
				return false, nil
			}
			from = segHeaderSize
		}
		size, err := f.Size()
		if err != nil {
			return false, err
		}
		sc := newScanner(f, idx, from, size)
		for {
			r, err := sc.next()
			var bad *errBad
			if errors.As(err, &bad) {
				return true, nil
			}
			if err != nil {
				return false, err
			}
			if r.Type != TypeUndo {
				return true, nil
			}
			r.Data = append([]byte(nil), r.Data...)
			out = append(out, r)
		}
	}
	idxs := make([]uint64, 0, len(files))
	for idx := range files {
		idxs = append(idxs, idx)
	}
	sort.Slice(idxs, func(i, j int) bool { return idxs[i] < idxs[j] })
	for _, idx := range idxs {
		var from int64
		if n := len(s.segs); n > 0 && idx == s.segs[n-1].Index {
			from = s.segs[n-1].Bytes
		} else if n > 0 && idx < s.segs[n-1].Index {
			continue // committed whole
		}
		if _, err := scan(idx, files[idx], from); err != nil {
			return nil, err
		}
	}
	applied := s.state.Applied
	kept := out[:0]
	for _, r := range out {
		if r.Seq > applied {
			kept = append(kept, r)
		}
	}
	return kept, nil
}

// DiscardUncommitted cuts every segment back to what the catalogue holds.
func (s *Store) DiscardUncommitted() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	files, err := s.files()
	if err != nil {
		return err
	}
	for idx, path := range files {
		if idx >= s.nextIdx {
			if err := s.o.FS.Remove(path); err != nil {
				return err
			}
		}
	}
	if n := len(s.segs); n > 0 {
		last := s.segs[n-1]
		f, err := s.o.FS.OpenFile(s.segPath(last.Index), os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := f.Truncate(last.Bytes); err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
	}
	return s.o.FS.SyncDir(s.o.Dir)
}

// Append writes before-images (TypeUndo records) to the active segment,
// beginning a new one when it is full. Nothing is durable until Sync.
func (s *Store) Append(recs []Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rest := 0 // bytes of recs[i:] encoded
	for i := range recs {
		rest += recs[i].Len()
	}
	var buf []byte
	if s.act != nil {
		buf = s.appendBuf(s.act.off, rest)
	}
	// told: the records in buf not yet told to the watchers, and where
	// each begins in buf.
	var told []int
	var toldAt []int
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if err := vfs.WriteAppend(s.act.f, buf, s.act.off); err != nil {
			return fmt.Errorf("retention %s: %w", s.act.f.Name(), err)
		}
		for k, i := range told {
			for _, w := range s.watchers {
				w(&recs[i], s.act.info.Index, s.act.off+int64(toldAt[k])+HeaderSize+writeFixed)
			}
		}
		told, toldAt = told[:0], toldAt[:0]
		s.act.off += int64(len(buf))
		buf = buf[:0]
		return nil
	}
	for i := range recs {
		r := &recs[i]
		if s.act == nil || s.act.off+int64(len(buf)+r.Len()) > s.o.SegmentSize && s.act.off+int64(len(buf)) > segHeaderSize {
			if err := flush(); err != nil {
				return err
			}
			if err := s.roll(r); err != nil {
				return err
			}
			buf = s.appendBuf(s.act.off, rest)
		}
		rest -= r.Len()
		at := len(buf)
		var err error
		if buf, err = AppendRecord(buf, s.act.info.Index, r); err != nil {
			return err
		}
		if len(s.watchers) > 0 {
			told, toldAt = append(told, i), append(toldAt, at)
		}
		in := &s.act.info
		if in.FirstSeq == 0 {
			in.FirstSeq, in.FirstTime = r.Seq, r.Time
		}
		in.LastSeq, in.LastTime = r.Seq, r.Time
	}
	return flush()
}

// appendBuf is the encoding buffer for n bytes to be appended at file
// offset off: reused, and placed in memory as the file will hold it, so
// that WriteAppend writes it past the page cache without copying it.
func (s *Store) appendBuf(off int64, n int) []byte {
	if need := n + vfs.DirectBlock; cap(s.buf) < need {
		s.buf = vfs.AlignedBuffer(need)
	}
	at := int(off & (vfs.DirectBlock - 1))
	return s.buf[at:at]
}

// roll opens the segment to append to: the last committed one while it
// has room, else a new file.
func (s *Store) roll(r *Record) error {
	if s.act == nil && len(s.segs) > 0 {
		last := s.segs[len(s.segs)-1]
		if last.Bytes+int64(r.Len()) <= s.o.SegmentSize {
			f, err := s.o.FS.OpenFile(s.segPath(last.Index), os.O_RDWR, 0)
			if err != nil {
				return err
			}
			s.act = &activeSeg{info: last, f: f, off: last.Bytes}
			s.track(s.act)
			return nil
		}
	}
	if s.act != nil {
		// The segment being sealed is durable before the next one holds
		// anything, so a batch a crash cuts short reads back from
		// Uncommitted as a prefix of itself: a gap would put the target
		// back to a state it never had (overlapping before-images carry
		// the batch's earlier writes).
		if err := s.act.f.Sync(); err != nil {
			return fmt.Errorf("retention %s: %w", s.act.f.Name(), err)
		}
		// Synced and sealed: no later Sync needs it, and a commit may
		// close it (CommitStaged, before the next Sync).
		s.unsynced = slices.DeleteFunc(s.unsynced, func(a *activeSeg) bool { return a == s.act })
	}
	idx := s.nextIdx
	path := s.segPath(idx)
	f, err := s.o.FS.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		f.Close()
		s.o.FS.Remove(path)
		return fmt.Errorf("retention %s: %w", path, err)
	}
	if _, err := f.WriteAt(encodeSegHeader(undoMagic, idx, r.Seq), 0); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := s.o.FS.SyncDir(s.o.Dir); err != nil {
		return fail(err)
	}
	prev := s.state.AppliedTime
	if s.act != nil {
		prev = s.act.info.LastTime
	}
	if prev.IsZero() {
		prev = r.Time // nothing before it: the pair's first write
	}
	s.nextIdx++
	s.act = &activeSeg{info: SegmentInfo{Index: idx, PrevTime: prev}, f: f, off: segHeaderSize}
	s.track(s.act)
	return nil
}

func (s *Store) track(a *activeSeg) {
	for _, x := range s.uncommit {
		if x == a {
			return
		}
	}
	s.uncommit = append(s.uncommit, a)
	s.unsynced = append(s.unsynced, a)
}

// Sync makes every appended before-image durable.
func (s *Store) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.unsynced {
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("retention %s: %w", a.f.Name(), err)
		}
	}
	s.unsynced = s.unsynced[:0]
	if s.act != nil {
		s.unsynced = append(s.unsynced, s.act)
	}
	return nil
}

// Commit is what one applied batch changes in the catalogue.
type Commit struct {
	Applied     uint64
	AppliedTime time.Time
	Accuracy    Accuracy // of the points the batch adds
	Tags        []Tag
	// FirstTime is the source time of the batch's first write: where the
	// first recovery range starts when nothing was applied before.
	FirstTime time.Time
}

// Commit records, in one catalogue transaction, the segments appended
// since the last commit, the new applied position, the batch's tags and
// recovery range. Call it only once the before-images and the target
// writes are durable (invariant 2).
func (s *Store) Commit(c Commit) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitLocked(c, s.stagedLocked())
}

// Staged is the end of the before-images appended up to one moment
// (Store.Staged): what CommitStaged records as committed, whatever is
// appended after it.
type Staged struct {
	segs  []*activeSeg
	infos []SegmentInfo // of segs then, Bytes their end
}

// Staged returns where the appended before-images end now, for a
// CommitStaged that runs while the next ones are appended: an applier
// whose commit (the target's fdatasync, then this) overlaps the next
// batch takes it once the batches the commit covers are appended.
func (s *Store) Staged() Staged {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stagedLocked()
}

func (s *Store) stagedLocked() Staged {
	st := Staged{segs: append([]*activeSeg(nil), s.uncommit...), infos: make([]SegmentInfo, 0, len(s.uncommit))}
	for _, a := range s.uncommit {
		in := a.info
		in.Bytes = a.off
		st.infos = append(st.infos, in)
	}
	return st
}

// CommitStaged is Commit of the before-images appended up to at, taken
// by Staged: those appended since stay uncommitted (Uncommitted reads
// them back after a crash) until a later commit. Commits come in the
// order of their Staged points.
func (s *Store) CommitStaged(c Commit, at Staged) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.commitLocked(c, at)
}

func (s *Store) commitLocked(c Commit, at Staged) error {
	prev := s.state
	st := s.state
	// Source times can step back in sequence order (resync data is
	// stamped on arrival here, the writes beside it at the source; a
	// source clock is stepped): a later state is never given an earlier
	// time, so no range ends before it starts.
	first := prev.AppliedTime
	if first.IsZero() {
		first = c.FirstTime
	}
	st.Applied, st.AppliedTime = c.Applied, latest(c.AppliedTime, first)
	ranges := append([]Range(nil), s.ranges...)
	if c.Applied > prev.Applied {
		if n := len(ranges); n > 0 && ranges[n-1].Accuracy == c.Accuracy && ranges[n-1].LastSeq == prev.Applied {
			ranges[n-1].LastSeq, ranges[n-1].LastTime = c.Applied, latest(st.AppliedTime, ranges[n-1].FirstTime)
		} else {
			ranges = append(ranges, Range{FirstSeq: prev.Applied, FirstTime: first,
				LastSeq: c.Applied, LastTime: st.AppliedTime, Accuracy: c.Accuracy})
		}
	}
	infos := at.infos
	err := s.guardedUpdate(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bSegments)
		for _, in := range infos {
			if err := putJSON(sb, key(in.Index), in); err != nil {
				return err
			}
		}
		if err := putJSON(tx.Bucket(bState), []byte("pair"), st); err != nil {
			return err
		}
		tb := tx.Bucket(bTags)
		for _, t := range c.Tags {
			if err := putJSON(tb, key(t.Seq), t); err != nil {
				return err
			}
		}
		if n := len(ranges); n > 0 {
			r := ranges[n-1]
			if err := putJSON(tx.Bucket(bRanges), key(r.FirstSeq), r); err != nil {
				return err
			}
		}
		return s.hook()
	})
	if err != nil {
		return s.wrap(err)
	}
	s.state = st
	s.ranges = ranges
	s.tags = append(s.tags, c.Tags...)
	for _, in := range infos {
		if n := len(s.segs); n > 0 && s.segs[n-1].Index == in.Index {
			s.segs[n-1] = in
		} else {
			s.segs = append(s.segs, in)
		}
	}
	// A segment committed to its end and appended to no more is done
	// with; the rest stay uncommitted: the one appended to, and those
	// holding before-images appended after at.
	for i, a := range at.segs {
		a.info.Bytes = at.infos[i].Bytes
	}
	kept := s.uncommit[:0]
	for _, a := range s.uncommit {
		done := false
		for i, x := range at.segs {
			if x == a {
				done = a.off == at.infos[i].Bytes
			}
		}
		if done && a != s.act {
			a.f.Close()
			continue
		}
		kept = append(kept, a)
	}
	clear(s.uncommit[len(kept):])
	s.uncommit = kept
	return nil
}

func (s *Store) hook() error {
	if s.o.Hook != nil {
		return s.o.Hook()
	}
	return nil
}

// update runs fn in a catalogue transaction with the hook.
func (s *Store) update(fn func(tx *bolt.Tx) error) error {
	err := s.guardedUpdate(func(tx *bolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.hook()
	})
	return s.wrap(err)
}

// guardedUpdate is db.Update with a panic or fault inside bbolt turned
// into ErrCatalogueCorrupt, after which the store changes nothing more.
func (s *Store) guardedUpdate(fn func(tx *bolt.Tx) error) error {
	if s.broken != nil {
		return s.broken
	}
	err := guard(s.path, func() error { return s.db.Update(fn) })
	if errors.Is(err, ErrCatalogueCorrupt) {
		s.broken = err
	}
	return err
}

func (s *Store) wrap(err error) error {
	if err == nil || errors.Is(err, ErrCatalogueCorrupt) {
		return err
	}
	return fmt.Errorf("catalogue %s: %w", s.o.CatalogueDir, err)
}

// SetState records the pair's state and reason.
func (s *Store) SetState(state, reason string, rollbackTo uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	if state != StateRollingBack || st.State != StateRollingBack || st.RollbackTo != rollbackTo {
		// The marks belong to one rollback; a new one keeps them.
		st.RollbackWritten, st.RollbackTracked = false, state == StateRollingBack
	}
	st.State, st.Reason, st.RollbackTo = state, reason, rollbackTo
	if err := s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bState), []byte("pair"), st) }); err != nil {
		return err
	}
	s.state = st
	return nil
}

// SetTarget records the path of the pair's target, for recovery tools.
func (s *Store) SetTarget(path string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Target == path {
		return nil
	}
	st := s.state
	st.Target = path
	if err := s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bState), []byte("pair"), st) }); err != nil {
		return err
	}
	s.state = st
	return nil
}

// SetPolicy records the pair's retention policy.
func (s *Store) SetPolicy(p Policy) error {
	if p.OnFull == "" {
		p.OnFull = Purge
	}
	if p.Window < 0 || p.SizeCap < 0 {
		return fmt.Errorf("retention policy: window and size cap must not be negative")
	}
	if err := ValidateTiers(p.Window, p.Tiers); err != nil {
		return fmt.Errorf("retention policy: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bPolicy), []byte("policy"), p) }); err != nil {
		return err
	}
	s.policy = p
	return nil
}

// SetTagLock locks or unlocks the tag with the given name or id; a
// locked tag survives pruning (and holds back the segments it needs).
func (s *Store) SetTagLock(nameOrID string, locked bool) (Tag, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.tags) - 1; i >= 0; i-- {
		t := s.tags[i]
		if t.Name != nameOrID && t.ID != nameOrID {
			continue
		}
		t.Locked = locked
		if err := s.update(func(tx *bolt.Tx) error { return putJSON(tx.Bucket(bTags), key(t.Seq), t) }); err != nil {
			return Tag{}, err
		}
		s.tags[i] = t
		return t, nil
	}
	return Tag{}, fmt.Errorf("%w: %q", ErrNoTag, nameOrID)
}

// ErrNoTag is a tag that the store does not hold.
var ErrNoTag = errors.New("no such tag")

// State returns the pair's durable state.
func (s *Store) State() PairState { s.mu.Lock(); defer s.mu.Unlock(); return s.state }

// Policy returns the retention policy.
func (s *Store) Policy() Policy { s.mu.Lock(); defer s.mu.Unlock(); return s.policy }

// Tags returns the tags, oldest first.
func (s *Store) Tags() []Tag {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Tag(nil), s.tags...)
}

// latest is the later of a and b.
func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// Ranges returns the recovery ranges, oldest first.
func (s *Store) Ranges() []Range {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Range(nil), s.ranges...)
}

// Segments returns the committed segments, oldest first.
func (s *Store) Segments() []SegmentInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SegmentInfo(nil), s.segs...)
}

// Used is the bytes of committed undo data.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.usedLocked()
}

func (s *Store) usedLocked() int64 {
	var n int64
	for _, g := range s.segs {
		n += g.Bytes
	}
	return n
}

// Earliest is the oldest recoverable point: the state before the first
// write whose before-image is kept.
func (s *Store) Earliest() (uint64, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.earliestLocked()
}

func (s *Store) earliestLocked() (uint64, time.Time) {
	for _, g := range s.segs {
		if g.FirstSeq != 0 {
			return g.FirstSeq - 1, g.PrevTime
		}
	}
	return s.state.Applied, s.state.AppliedTime
}

// Close closes the store's files and catalogue.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range s.uncommit {
		a.f.Close()
	}
	s.uncommit, s.unsynced, s.act = nil, nil, nil
	return guard(s.path, s.db.Close)
}

// Undo calls fn for every committed undo record with after < Seq <= upto,
// in sequence order. Record data is never overwritten by later reads.
func (s *Store) Undo(after, upto uint64, fn func(*Record) error) error {
	segs := s.Segments()
	for _, g := range segs {
		if g.LastSeq <= after || g.FirstSeq > upto || g.FirstSeq == 0 {
			continue
		}
		if err := s.undoSegment(g, after, upto, func(r *Record, _ int64) error { return fn(r) }); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) undoSegment(g SegmentInfo, after, upto uint64, fn func(*Record, int64) error) error {
	path := s.segFile(g)
	damaged := func(off int64, why string) error {
		return &SegmentError{Index: g.Index, Path: path, Offset: off, Why: why, LostFrom: g.FirstSeq, LostTo: g.LastSeq}
	}
	f, err := s.o.FS.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return damaged(0, "the file is missing")
	}
	if err != nil {
		return fmt.Errorf("retention segment %d: %w", g.Index, err)
	}
	defer f.Close()
	if idx, _, ok := readSegHeader(f, undoMagic); !ok || idx != g.Index {
		return damaged(0, "bad segment header")
	}
	sc := newScanner(f, g.Index, segHeaderSize, g.Bytes)
	var last uint64
	for sc.offset() < g.Bytes {
		off := sc.offset()
		r, err := sc.next()
		if err != nil {
			var bad *errBad
			if errors.As(err, &bad) {
				e := damaged(off, bad.why).(*SegmentError)
				if last != 0 {
					e.LostFrom = last + 1
				}
				return e
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				e := damaged(off, fmt.Sprintf("the file ends before the %d bytes catalogued", g.Bytes)).(*SegmentError)
				if last != 0 {
					e.LostFrom = last + 1
				}
				return e
			}
			return fmt.Errorf("%s offset %d: %w", path, off, err)
		}
		last = r.Seq
		if r.Seq <= after {
			continue
		}
		if r.Seq > upto {
			return nil
		}
		if err := fn(&r, off+HeaderSize+writeFixed); err != nil {
			return err
		}
	}
	return nil
}

// UndoAt is Undo that also says where each record's data lies: its
// segment and the file offset of the data's first byte there, so a
// restore can copy it in the kernel (OpenSegment).
func (s *Store) UndoAt(after, upto uint64, fn func(r *Record, seg uint64, off int64) error) error {
	for _, g := range s.Segments() {
		if g.LastSeq <= after || g.FirstSeq > upto || g.FirstSeq == 0 {
			continue
		}
		if err := s.undoSegment(g, after, upto, func(r *Record, off int64) error { return fn(r, g.Index, off) }); err != nil {
			return err
		}
	}
	return nil
}

// OpenSegment opens undo segment idx for reading.
func (s *Store) OpenSegment(idx uint64) (vfs.File, error) {
	path := s.segPath(idx)
	s.mu.Lock()
	for _, g := range s.segs {
		if g.Index == idx {
			path = s.segFile(g)
		}
	}
	s.mu.Unlock()
	return s.o.FS.OpenFile(path, os.O_RDONLY, 0)
}

// SeqAt returns the newest point at or before t: the state after the last
// write whose source time is not later than t.
func (s *Store) SeqAt(t time.Time) (uint64, time.Time, error) {
	st := s.State()
	if !t.Before(st.AppliedTime) {
		return st.Applied, st.AppliedTime, nil
	}
	eSeq, eTime := s.Earliest()
	if t.Before(eTime) {
		return 0, time.Time{}, fmt.Errorf("%s is before the earliest recoverable point (%s)", t.UTC().Format(time.RFC3339Nano), eTime.UTC().Format(time.RFC3339Nano))
	}
	if sp := s.Sparse(); sp.Upto != 0 && t.Before(sp.UptoTime) {
		// Compacted: only the kept tags are points, named by their time.
		s.mu.Lock()
		defer s.mu.Unlock()
		var before *Tag
		for i := range s.tags {
			if s.tags[i].Seq <= sp.Upto && !s.tags[i].Time.After(t) {
				before = &s.tags[i]
			}
		}
		if before != nil && before.Time.Equal(t) {
			return before.Seq, before.Time, nil
		}
		if t.Equal(eTime) {
			return eSeq, eTime, nil
		}
		seq := sp.Upto
		if before != nil {
			seq = before.Seq
		}
		return 0, time.Time{}, fmt.Errorf("%w: %s: %s", ErrCompacted, t.UTC().Format(time.RFC3339Nano), s.nearestLocked(seq))
	}
	seq, at := eSeq, eTime
	stop := errors.New("stop")
	err := s.Undo(eSeq, st.Applied, func(r *Record) error {
		if r.Time.After(t) {
			return stop
		}
		seq, at = r.Seq, r.Time
		return nil
	})
	if err != nil && err != stop {
		return 0, time.Time{}, err
	}
	return seq, at, nil
}

// DropPending forgets before-images appended since the last commit and
// cuts them from disk, after a failed append or sync (ENOSPC): the batch
// is retried from the redo journal.
func (s *Store) DropPending() error {
	s.mu.Lock()
	for _, a := range s.uncommit {
		a.f.Close()
	}
	s.act, s.uncommit, s.unsynced = nil, nil, nil
	s.nextIdx = 0
	if n := len(s.segs); n > 0 {
		s.nextIdx = s.segs[n-1].Index + 1
	}
	s.mu.Unlock()
	return s.DiscardUncommitted()
}
