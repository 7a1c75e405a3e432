package soak

import (
	"math"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// open is the upper bound of an op whose place in the stream is not known
// yet (written while the stream was resyncing).
const open = math.MaxUint64

// op is one write to a source disk and where it lies in the stream's
// sequence: a point s holds it when s >= hi, does not when s < lo, and is
// not decidable in between (the write fell inside a resync, where no
// point is exact anyway).
type op struct {
	off    int64
	data   []byte
	t      time.Time
	lo, hi uint64
}

// history is the oracle of one source disk: its first image and every
// write since, each placed in the process server's sequence.
type history struct {
	disk source

	mu      sync.Mutex
	initial []byte
	ops     []op
	gen     int    // renumberings seen
	lastA   uint64 // the resume point of the last renumbering
	nextObs uint64 // the highest Next seen in Differential Sync
	ended   bool   // the pair was rolled back: no later write is in any of its points
}

// source is what the oracle needs of a served disk (a *ps.Disk).
type source interface {
	Write(off int64, data []byte, t time.Time) error
	Status() []ps.StreamStatus
}

func newHistory(d source, initial []byte) *history {
	return &history{disk: d, initial: initial}
}

// streamNow is the stream's next sequence and whether it is in
// Differential Sync (one master target per disk in a soak).
func (h *history) streamNow() (uint64, bool) {
	st := h.disk.Status()
	if len(st) == 0 {
		return 1, false
	}
	return st[0].Next, st[0].Phase == wire.StateDiffSync
}

// write writes data at off to the source and records it. It is called
// by the disk's only writer.
func (h *history) write(off int64, data []byte) error {
	h.mu.Lock()
	gen := h.gen
	h.mu.Unlock()
	// Status takes the disk's locks; never call it holding h.mu (the
	// process server calls renumbered holding its stream's lock).
	n0, diff0 := h.streamNow()
	t := time.Now()
	if err := h.disk.Write(off, data, t); err != nil {
		return err
	}
	n1, diff1 := h.streamNow()
	o := op{off: off, data: data, t: t, lo: n0, hi: n0}
	if !diff0 || !diff1 || n1 != n0+1 {
		// A resync ran around it (or a chunk took the sequence): its
		// place is known once the stream is back in Differential Sync.
		o.hi = open
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ended {
		o.lo, o.hi = open, open // in no point: s < lo always
	}
	if h.gen != gen && !h.ended {
		o.lo, o.hi = min(o.lo, h.lastA+1), open
	}
	if diff0 && h.gen == gen {
		h.settleLocked(n0) // what was open before this write
	}
	h.ops = append(h.ops, o)
	if diff1 {
		h.settleLocked(n1)
	}
	return nil
}

// settleLocked places every open op: the stream is in Differential Sync
// at next, so the resync that covered them ended before it.
func (h *history) settleLocked(next uint64) {
	if next <= h.nextObs {
		return
	}
	h.nextObs = next
	for i := len(h.ops) - 1; i >= 0; i-- {
		if h.ops[i].hi == open {
			h.ops[i].hi = next - 1
			if h.ops[i].hi < h.ops[i].lo {
				h.ops[i].hi = h.ops[i].lo
			}
		}
	}
}

// observe lets the oracle settle open ops when the disk is idle.
func (h *history) observe() {
	n, diff := h.streamNow()
	if diff {
		h.mu.Lock()
		h.settleLocked(n)
		h.mu.Unlock()
	}
}

// end marks the pair rolled back: its stream is gone, and the writes
// that follow belong to none of its points.
func (h *history) end() {
	h.mu.Lock()
	h.ended = true
	h.mu.Unlock()
}

// renumbered is the process server's word that the stream resumed after
// a and dropped what it had numbered past it: those writes come again in
// the resync that begins.
func (h *history) renumbered(a uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gen++
	h.lastA = a
	h.nextObs = 0
	for i := range h.ops {
		if h.ops[i].hi > a {
			h.ops[i].lo, h.ops[i].hi = min(h.ops[i].lo, a+1), open
		}
	}
}

// imageAt is the source as it was at sequence s, or false when a write
// lies undecidably close to s.
func (h *history) imageAt(s uint64) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	img := append([]byte(nil), h.initial...)
	for _, o := range h.ops {
		switch {
		case s >= o.hi:
			copy(img[o.off:], o.data)
		case s < o.lo:
		default:
			return nil, false
		}
	}
	return img, true
}

// times returns the write times, for time: points.
func (h *history) times() []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]time.Time, len(h.ops))
	for i, o := range h.ops {
		out[i] = o.t
	}
	return out
}
