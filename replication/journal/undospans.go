package journal

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// UndoSpans is UndoAt for a reader that keeps only where each record's
// data lies (a restore plan), not the data itself: r.Data is valid only
// during fn, and the read buffers (large sequential reads) are reused from
// record to record and segment to segment instead of allocated afresh.
// Damage is reported exactly as UndoAt reports it (*SegmentError).
func (s *Store) UndoSpans(after, upto uint64, fn func(r *Record, seg uint64, off int64) error) error {
	var pool [][]byte
	for _, g := range s.Segments() {
		if g.LastSeq <= after || g.FirstSeq > upto || g.FirstSeq == 0 {
			continue
		}
		var err error
		pool, err = s.undoSpansSegment(g, after, upto, pool, fn)
		if err != nil {
			return err
		}
	}
	return nil
}

// undoSpansSegment is undoSegment with the scanner's buffers released
// after every record and handed on to the next segment in pool.
func (s *Store) undoSpansSegment(g SegmentInfo, after, upto uint64, pool [][]byte, fn func(*Record, uint64, int64) error) (kept [][]byte, err error) {
	path := s.segFile(g)
	damaged := func(off int64, why string) *SegmentError {
		return &SegmentError{Index: g.Index, Path: path, Offset: off, Why: why, LostFrom: g.FirstSeq, LostTo: g.LastSeq}
	}
	f, err := s.o.FS.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, os.ErrNotExist) {
		return pool, damaged(0, "the file is missing")
	}
	if err != nil {
		return pool, fmt.Errorf("retention segment %d: %w", g.Index, err)
	}
	defer f.Close()
	if idx, _, ok := readSegHeader(f, undoMagic); !ok || idx != g.Index {
		return pool, damaged(0, "bad segment header")
	}
	sc := newScanner(f, g.Index, segHeaderSize, g.Bytes)
	sc.pool = pool
	defer func() {
		// fn keeps no record: every buffer may serve the next segment.
		kept = sc.pool
		for _, h := range sc.old {
			kept = append(kept, h.b)
		}
		if sc.buf != nil {
			kept = append(kept, sc.buf)
		}
		if len(kept) > 3 {
			kept = kept[len(kept)-3:]
		}
	}()
	var last uint64
	for sc.offset() < g.Bytes {
		off := sc.offset()
		r, err := sc.next()
		if err != nil {
			var bad *errBad
			e := damaged(off, "")
			switch {
			case errors.As(err, &bad):
				e.Why = bad.why
			case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
				e.Why = fmt.Sprintf("the file ends before the %d bytes catalogued", g.Bytes)
			default:
				return pool, fmt.Errorf("%s offset %d: %w", path, off, err)
			}
			if last != 0 {
				e.LostFrom = last + 1
			}
			return pool, e
		}
		last = r.Seq
		if r.Seq <= after {
			sc.release()
			continue
		}
		if r.Seq > upto {
			return pool, nil
		}
		if err := fn(&r, g.Index, off+HeaderSize+writeFixed); err != nil {
			return pool, err
		}
		sc.release()
	}
	return pool, nil
}
