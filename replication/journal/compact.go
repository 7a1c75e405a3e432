package journal

import (
	"container/heap"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/mtconsole/mtconsole/replication/vfs"
)

// SparseState is what compaction left: at or before sequence Upto only
// the kept tags (and Upto itself) are recoverable points; after it every
// point is.
type SparseState struct {
	Upto     uint64    `json:"upto"`
	UptoTime time.Time `json:"upto_time"`
}

// ErrCompacted is a recovery point that sparse retention compacted away.
var ErrCompacted = errors.New("recovery point compacted away by sparse retention")

// ErrHeld is a compaction that found its segments pinned by a hold.
var ErrHeld = errors.New("retention segments are held by a reader")

func (s *Store) loadSparse(tx *bolt.Tx) error {
	if b := tx.Bucket(bSparse); b != nil {
		if v := b.Get([]byte("state")); v != nil {
			st, err := loadAll(tx, bSparse, func(SparseState) []byte { return []byte("state") })
			if err != nil {
				return err
			}
			if len(st) == 1 {
				s.sparse = st[0]
			}
		}
	}
	var err error
	s.gone, err = loadAll(tx, bGone, func(t Tag) []byte { return key(t.Seq) })
	return err
}

// Sparse returns what compaction left.
func (s *Store) Sparse() SparseState { s.mu.Lock(); defer s.mu.Unlock(); return s.sparse }

// Hold pins every undo record after sequence from: until release is
// called, neither Prune nor Compact removes or rewrites a segment holding
// one. A reader of the point at from (an export, a point-in-time view)
// takes it before it reads the catalogue's segments. Hold(0) pins all.
// release may be called more than once.
func (s *Store) Hold(from uint64) (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds == nil {
		s.holds = map[uint64]uint64{}
	}
	s.holdN++
	id := s.holdN
	s.holds[id] = from
	return func() {
		s.mu.Lock()
		delete(s.holds, id)
		s.mu.Unlock()
	}
}

// heldFromLocked is the lowest held sequence, if any hold is taken.
func (s *Store) heldFromLocked() (uint64, bool) {
	from, any := ^uint64(0), false
	for _, f := range s.holds {
		from, any = min(from, f), true
	}
	return from, any
}

// Reachable refuses a point that compaction removed, naming the nearest
// kept points around it; every other point (at or after the earliest)
// is nil.
func (s *Store) Reachable(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sparse.Upto == 0 || seq >= s.sparse.Upto {
		return nil
	}
	if e, _ := s.earliestLocked(); seq == e {
		return nil
	}
	for _, t := range s.tags {
		if t.Seq == seq {
			return nil
		}
	}
	return fmt.Errorf("%w: sequence %d: %s", ErrCompacted, seq, s.nearestLocked(seq))
}

// nearestLocked names the kept points on either side of seq.
func (s *Store) nearestLocked(seq uint64) string {
	var before, after *Tag
	for i := range s.tags {
		t := &s.tags[i]
		if t.Seq <= seq {
			before = t
		} else if after == nil && t.Seq <= s.sparse.Upto {
			after = t
		}
	}
	name := func(t *Tag) string {
		return fmt.Sprintf("tag %s (sequence %d, %s UTC)", t.Name, t.Seq, t.Time.UTC().Format("2006-01-02 15:04:05"))
	}
	out := "the nearest kept points are "
	if before != nil {
		out += name(before) + " before it and "
	} else {
		out += "none before it and "
	}
	if after != nil {
		out += name(after) + " after it"
	} else {
		out += fmt.Sprintf("sequence %d (%s UTC, where every write is kept from) after it", s.sparse.Upto, s.sparse.UptoTime.UTC().Format("2006-01-02 15:04:05"))
	}
	return out
}

// CompactedTag finds a tag, by name or id, that compaction removed, and
// says which kept points are nearest to it.
func (s *Store) CompactedTag(nameOrID string) (Tag, string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.gone) - 1; i >= 0; i-- {
		if t := s.gone[i]; t.Name == nameOrID || t.ID == nameOrID {
			return t, s.nearestLocked(t.Seq), true
		}
	}
	return Tag{}, "", false
}

// CompactOptions say when a compaction runs.
type CompactOptions struct {
	// Now places the tiers (an injected clock in tests).
	Now time.Time
}

// CompactResult says what a compaction did.
type CompactResult struct {
	Segments    int   // segments rewritten
	Written     int   // segments they became
	BytesBefore int64 // of the rewritten segments
	BytesAfter  int64 // of what replaced them
	Reclaimed   int64
	Dropped     []Tag       // tags compacted away
	Kept        int         // tags kept in the compacted stretch
	Sparse      SparseState // after it
	// Held: a hold kept segments from being compacted.
	Held bool
}

// Compact rewrites the segments older than the first tier (all writes)
// so that only the before-images needed to reach the tags the later tiers
// keep remain. Crash-safe: the new segments are written under new names
// and synced, the directory synced, the catalogue switched to them in one
// transaction, and only then the old files removed; a crash before the
// switch leaves the old segments catalogued and the new ones orphans, one
// after it leaves the old ones orphans (OpenStore removes orphans).
//
// What is kept: the image of point p is the target now with, for every
// byte, the oldest before-image of that byte among the records after p
// laid over it (recovery's plan). With the kept points p0 < p1 < … < pk
// (pk+1 = the last sequence compacted, Upto), the oldest before-image of
// a byte after pi is its oldest in (pi, pi+1] when any record there
// covers it, else its oldest after pi+1, which the same rule keeps for
// pi+1 (or the uncompacted segments hold). So per stretch (pi, pi+1] only
// the oldest before-image of each byte is needed, and records at or
// before p0 are needed by no kept point. A stretch of an earlier
// compaction is a union of finer stretches, each kept as its oldest per
// byte, so compacting again keeps the oldest of the union: the same bytes.
// A run rewrites only from the first segment that a new selection or the
// newly aged segments change: a compacted segment that ends at a kept
// point and lost no tag is what a rewrite would write, and stays.
func (s *Store) Compact(o CompactOptions) (CompactResult, error) {
	var res CompactResult
	s.mu.Lock()
	if s.compacting {
		s.mu.Unlock()
		return res, nil
	}
	pol := s.policy
	if len(pol.Tiers) < 2 || o.Now.IsZero() {
		s.mu.Unlock()
		return res, nil
	}
	boundary := o.Now.Add(-pol.Tiers[0].Duration)
	pending := map[uint64]bool{}
	for _, a := range s.uncommit {
		pending[a.info.Index] = true
	}
	held, anyHold := s.heldFromLocked()
	n := 0
	for n < len(s.segs)-1 {
		g := s.segs[n]
		if pending[g.Index] || !g.LastTime.Before(boundary) {
			break
		}
		if anyHold && g.LastSeq > held || s.heldByLocked(g) != "" {
			// an export's hold, or an open view's pin (pin.go)
			res.Held = true
			break
		}
		n++
	}
	if n == 0 {
		s.mu.Unlock()
		return res, nil
	}
	region := append([]SegmentInfo(nil), s.segs[:n]...)
	upto := region[n-1].LastSeq
	sp := SparseState{Upto: upto, UptoTime: region[n-1].LastTime}
	earliest, _ := s.earliestLocked()
	var inRegion []Tag
	for _, t := range s.tags {
		if t.Seq <= upto && t.Seq >= earliest {
			inRegion = append(inRegion, t)
		}
	}
	keep := keptTags(pol.Tiers, inRegion, o.Now)
	var points []uint64
	var pointTime []time.Time
	var dropped []Tag
	for _, t := range inRegion {
		if !keep[t.Seq] {
			dropped = append(dropped, t)
			continue
		}
		if len(points) == 0 || points[len(points)-1] != t.Seq {
			points = append(points, t.Seq)
			pointTime = append(pointTime, t.Time)
		}
	}
	allDone := s.sparse.Upto == upto && len(dropped) == 0
	for _, g := range region {
		allDone = allDone && g.Gen > 0
	}
	if allDone {
		s.mu.Unlock()
		return res, nil
	}
	// A compacted segment at the front that ends at a kept point and
	// lost no tag holds exactly what a rewrite would write: only the
	// segments after such a prefix are rewritten.
	skip := 0
	for skip < n-1 && region[skip].Gen > 0 && keep[region[skip].LastSeq] {
		g, ok := region[skip], true
		for _, t := range dropped {
			if t.Seq+1 >= g.FirstSeq && t.Seq <= g.LastSeq {
				ok = false
			}
		}
		if !ok {
			break
		}
		skip++
	}
	if skip > 0 {
		from := region[skip].FirstSeq - 1 // the prefix's last kept point
		i := sort.Search(len(points), func(i int) bool { return points[i] >= from })
		points, pointTime = points[i:], pointTime[i:]
	}
	rewrite := region[skip:]
	s.compacting = true
	s.mu.Unlock()
	defer func() { s.mu.Lock(); s.compacting = false; s.mu.Unlock() }()

	out, err := s.writeCompacted(rewrite, points, pointTime, sp)
	if err != nil {
		// A prune that removed the region's oldest segments meanwhile is
		// no damage: the next run starts from what is left.
		s.mu.Lock()
		pruned := len(s.segs) == 0 || s.segs[0].Index != region[0].Index || s.segs[0].Gen != region[0].Gen
		s.mu.Unlock()
		if pruned {
			return res, nil
		}
		return res, err
	}
	cleanup := func() {
		for _, g := range out {
			s.o.FS.Remove(s.segFile(g))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// The segments are still the catalogue's first, nothing pins them, and
	// no tag to drop was locked meanwhile.
	same := len(s.segs) > n
	for i := 0; same && i < n; i++ {
		same = s.segs[i].Index == region[i].Index && s.segs[i].Gen == region[i].Gen
	}
	if !same {
		cleanup()
		return res, nil // a prune got there first; the next run starts afresh
	}
	if p := s.lowestPinLocked(); p != nil && p.Seq < upto {
		cleanup() // a view opened meanwhile reads these segments
		res.Held = true
		return res, nil
	}
	if h, any := s.heldFromLocked(); any && h < upto {
		cleanup()
		res.Held = true
		return res, nil
	}
	locked := map[uint64]bool{}
	for _, t := range s.tags {
		if t.Locked {
			locked[t.Seq] = true
		}
	}
	for _, t := range dropped {
		if locked[t.Seq] {
			cleanup()
			return res, nil
		}
	}
	drop := map[uint64]bool{}
	for _, t := range dropped {
		drop[t.Seq] = true
	}
	err = s.update(func(tx *bolt.Tx) error {
		sb := tx.Bucket(bSegments)
		for _, g := range rewrite {
			if err := sb.Delete(key(g.Index)); err != nil {
				return err
			}
		}
		for _, g := range out {
			if err := putJSON(sb, key(g.Index), g); err != nil {
				return err
			}
		}
		gb, err := tx.CreateBucketIfNotExists(bGone)
		if err != nil {
			return err
		}
		tb := tx.Bucket(bTags)
		for _, t := range dropped {
			if err := tb.Delete(key(t.Seq)); err != nil {
				return err
			}
			if err := putJSON(gb, key(t.Seq), t); err != nil {
				return err
			}
		}
		b, err := tx.CreateBucketIfNotExists(bSparse)
		if err != nil {
			return err
		}
		if err := putJSON(b, []byte("state"), sp); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put([]byte("version"), key(catalogueVersion))
	})
	if err != nil {
		cleanup()
		return res, err
	}
	res.Segments, res.Written = len(rewrite), len(out)
	for _, g := range rewrite {
		res.BytesBefore += g.Bytes
	}
	for _, g := range out {
		res.BytesAfter += g.Bytes
	}
	res.Reclaimed = res.BytesBefore - res.BytesAfter
	res.Dropped, res.Kept, res.Sparse = dropped, len(points), sp
	s.segs = append(append(append([]SegmentInfo(nil), region[:skip]...), out...), s.segs[n:]...)
	var tags []Tag
	for _, t := range s.tags {
		if !drop[t.Seq] {
			tags = append(tags, t)
		}
	}
	s.tags = tags
	s.gone = append(s.gone, dropped...)
	sort.Slice(s.gone, func(i, j int) bool { return s.gone[i].Seq < s.gone[j].Seq })
	s.sparse = sp
	// The catalogue no longer names the old files: a crash before these
	// unlinks leaves orphans OpenStore removes.
	for _, g := range rewrite {
		if err := s.o.FS.Remove(s.segFile(g)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("retention: remove compacted segment: %w", err)
		}
	}
	return res, s.o.FS.SyncDir(s.o.Dir)
}

// keptTags chooses, among tags (ascending), the ones the tiers keep at
// now: locked ones, those in the first tier (or past the last: pruning's
// business), and in each later tier the first Count of its application
// per Granularity-long stretch of time.
func keptTags(tiers []Tier, tags []Tag, now time.Time) map[uint64]bool {
	keep := map[uint64]bool{}
	type bucket struct {
		tier int
		at   int64
	}
	count := map[bucket]int{}
	for _, t := range tags {
		age := now.Sub(t.Time)
		tier := -1
		for i, tr := range tiers {
			if age >= tr.Start && age < tr.End() {
				tier = i
			}
		}
		if t.Locked || tier <= 0 {
			keep[t.Seq] = true
			continue
		}
		tr := tiers[tier]
		if tr.App != "" && t.App != tr.App {
			continue
		}
		b := bucket{tier, t.Time.Truncate(tr.Granularity).UnixNano()}
		if count[b] < tr.Count {
			count[b]++
			keep[t.Seq] = true
		}
	}
	return keep
}

// span is one before-image of the region: its record's sequence and
// time, the bytes [off, end) it covers, where its data lies, its age.
type span struct {
	seq      uint64
	t        time.Time
	off, end int64
	seg      SegmentInfo
	segOff   int64
	zero     bool
	age      int
}

// cut is the stretch [off, off+n) of span sp that a kept point needs.
type cut struct {
	sp  *span
	off int64
	n   int64
}

// writeCompacted reads the region's records, keeps per stretch between
// kept points the oldest before-image of each byte, and writes them to
// new segment files (synced, the directory synced), at most as many as
// the region had, under the region's indices with a new generation.
func (s *Store) writeCompacted(region []SegmentInfo, points []uint64, pointTime []time.Time, sp SparseState) ([]SegmentInfo, error) {
	if len(points) == 0 {
		return nil, nil
	}
	// stretch i is (points[i], points[i+1]], the last (points[k], Upto]
	ends := append(append([]uint64(nil), points[1:]...), sp.Upto)
	endTime := append(append([]time.Time(nil), pointTime[1:]...), sp.UptoTime)
	stretches := make([][]*span, len(points))
	age := 0
	for _, g := range region {
		if g.FirstSeq == 0 {
			continue
		}
		err := s.undoSegment(g, points[0], sp.Upto, func(r *Record, off int64) error {
			i := sort.Search(len(ends), func(i int) bool { return ends[i] >= r.Seq })
			if i == len(ends) || len(r.Data) == 0 {
				return nil
			}
			age++
			stretches[i] = append(stretches[i], &span{seq: r.Seq, t: r.Time, off: r.Offset, end: r.Offset + int64(len(r.Data)),
				seg: g, segOff: off, zero: r.Flags&FlagZero != 0, age: age})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	gen := uint32(0)
	for _, g := range region {
		gen = max(gen, g.Gen)
	}
	gen++
	var out []SegmentInfo
	var w *segWriter
	files := map[uint64]vfs.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	fail := func(err error) ([]SegmentInfo, error) {
		if w != nil {
			w.f.Close()
			s.o.FS.Remove(w.path)
		}
		for _, g := range out {
			s.o.FS.Remove(s.segFile(g))
		}
		return nil, err
	}
	closeSeg := func() error {
		if w == nil {
			return nil
		}
		if err := w.flush(); err != nil {
			return err
		}
		if err := w.f.Sync(); err != nil {
			return fmt.Errorf("retention %s: %w", w.path, err)
		}
		if err := w.f.Close(); err != nil {
			return fmt.Errorf("retention %s: %w", w.path, err)
		}
		out = append(out, w.info)
		w = nil
		return nil
	}
	for i, st := range stretches {
		if ends[i] <= points[i] {
			continue // the last kept point is Upto itself
		}
		if w != nil && w.info.Bytes+int64(len(w.buf)) >= s.o.SegmentSize && len(out)+1 < len(region) {
			if err := closeSeg(); err != nil {
				return fail(err)
			}
		}
		if w == nil {
			idx := region[len(out)].Index
			info := SegmentInfo{Index: idx, Gen: gen, FirstSeq: points[i] + 1, PrevTime: pointTime[i], FirstTime: pointTime[i]}
			f, err := s.o.FS.OpenFile(s.segFile(info), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return fail(err)
			}
			w = &segWriter{f: f, path: s.segFile(info), info: info}
			if _, err := f.WriteAt(encodeSegHeader(undoMagic, idx, info.FirstSeq), 0); err != nil {
				return fail(fmt.Errorf("retention %s: %w", w.path, err))
			}
			w.info.Bytes = segHeaderSize
		}
		for _, c := range oldestPerByte(st) {
			r := Record{Type: TypeUndo, Seq: c.sp.seq, Time: c.sp.t, Offset: c.off}
			if c.sp.zero {
				r.Flags = FlagZero
				r.Data = zeroData()[:c.n:c.n]
			} else {
				f := files[c.sp.seg.Index]
				if f == nil {
					var err error
					if f, err = s.o.FS.OpenFile(s.segFile(c.sp.seg), os.O_RDONLY, 0); err != nil {
						return fail(err)
					}
					files[c.sp.seg.Index] = f
				}
				r.Data = make([]byte, c.n)
				if err := vfs.ReadFull(f, r.Data, c.sp.segOff+c.off-c.sp.off); err != nil {
					return fail(fmt.Errorf("retention segment %d: %w", c.sp.seg.Index, err))
				}
			}
			if err := w.add(&r); err != nil {
				return fail(err)
			}
		}
		w.info.LastSeq, w.info.LastTime = ends[i], endTime[i]
		if w.info.LastTime.Before(w.info.FirstTime) {
			w.info.LastTime = w.info.FirstTime
		}
	}
	if err := closeSeg(); err != nil {
		return fail(err)
	}
	if err := s.o.FS.SyncDir(s.o.Dir); err != nil {
		return fail(err)
	}
	return out, nil
}

// segWriter writes one compacted segment.
type segWriter struct {
	f    vfs.File
	path string
	info SegmentInfo
	buf  []byte
}

func (w *segWriter) add(r *Record) error {
	var err error
	if w.buf, err = AppendRecord(w.buf, w.info.Index, r); err != nil {
		return err
	}
	if len(w.buf) >= 4<<20 {
		return w.flush()
	}
	return nil
}

func (w *segWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	if err := vfs.WriteAppend(w.f, w.buf, w.info.Bytes); err != nil {
		return fmt.Errorf("retention %s: %w", w.path, err)
	}
	w.info.Bytes += int64(len(w.buf))
	w.buf = w.buf[:0]
	return nil
}

// oldestPerByte returns, for every byte any span covers, the stretch of
// the oldest span covering it, ordered by sequence then offset: a sweep
// by offset with the spans active at each boundary in a heap by age.
func oldestPerByte(spans []*span) []cut {
	if len(spans) == 0 {
		return nil
	}
	byOff := slices.Clone(spans)
	sort.Slice(byOff, func(i, j int) bool { return byOff[i].off < byOff[j].off })
	pts := make([]int64, 0, 2*len(spans))
	for _, sp := range spans {
		pts = append(pts, sp.off, sp.end)
	}
	slices.Sort(pts)
	pts = slices.Compact(pts)
	var h spanHeap
	var cuts []cut
	k := 0
	for i := 0; i+1 < len(pts); i++ {
		x, y := pts[i], pts[i+1]
		for k < len(byOff) && byOff[k].off <= x {
			heap.Push(&h, byOff[k])
			k++
		}
		for h.Len() > 0 && h[0].end <= x {
			heap.Pop(&h)
		}
		if h.Len() == 0 {
			continue
		}
		top := h[0]
		if n := len(cuts); n > 0 && cuts[n-1].sp == top && cuts[n-1].off+cuts[n-1].n == x && cuts[n-1].n+(y-x) <= maxCut {
			cuts[n-1].n += y - x
			continue
		}
		cuts = append(cuts, cut{sp: top, off: x, n: y - x})
	}
	sort.Slice(cuts, func(i, j int) bool {
		if cuts[i].sp.seq != cuts[j].sp.seq {
			return cuts[i].sp.seq < cuts[j].sp.seq
		}
		return cuts[i].off < cuts[j].off
	})
	return cuts
}

// maxCut bounds one rewritten record's data (a before-image is never
// longer than a record can carry, and pieces of one are shorter).
const maxCut = MaxPayload - writeFixed

type spanHeap []*span

func (h spanHeap) Len() int           { return len(h) }
func (h spanHeap) Less(i, j int) bool { return h[i].age < h[j].age }
func (h spanHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *spanHeap) Push(x any)        { *h = append(*h, x.(*span)) }
func (h *spanHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
