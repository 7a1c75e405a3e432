package soak

import (
	"bytes"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// fakeDisk numbers writes as a process server's stream does in each phase.
type fakeDisk struct {
	img   []byte
	next  uint64
	phase wire.PairState
}

func (d *fakeDisk) Write(off int64, data []byte, _ time.Time) error {
	copy(d.img[off:], data)
	if d.phase == wire.StateDiffSync {
		d.next++ // numbered; in a resync the chunk it dirtied comes later
	}
	return nil
}

func (d *fakeDisk) Status() []ps.StreamStatus {
	return []ps.StreamStatus{{Next: d.next, Phase: d.phase}}
}

func TestHistoryImageAt(t *testing.T) {
	d := &fakeDisk{img: make([]byte, 4), next: 1, phase: wire.StateDiffSync}
	h := newHistory(d, make([]byte, 4))
	w := func(off int64, b byte) {
		t.Helper()
		if err := h.write(off, []byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	want := func(s uint64, img []byte, ok bool) {
		t.Helper()
		got, gotOK := h.imageAt(s)
		if gotOK != ok || ok && !bytes.Equal(got, img) {
			t.Fatalf("image at %d: %v %v, want %v %v", s, got, gotOK, img, ok)
		}
	}
	w(0, 1) // seq 1
	w(1, 2) // seq 2
	want(0, []byte{0, 0, 0, 0}, true)
	want(1, []byte{1, 0, 0, 0}, true)
	want(2, []byte{1, 2, 0, 0}, true)

	// A resync: the write's place is open until Differential Sync again.
	d.phase = wire.StateResync1
	w(2, 3)
	want(2, []byte{1, 2, 0, 0}, true) // before the write: decidable
	want(3, nil, false)
	d.next += 2 // two resync chunks, seqs 3 and 4
	d.phase = wire.StateDiffSync
	w(3, 4) // seq 5; the resync ended at 4
	want(4, []byte{1, 2, 3, 0}, true)
	want(5, []byte{1, 2, 3, 4}, true)

	// Renumbered after 2: everything past it comes again in a resync.
	h.renumbered(2)
	want(2, []byte{1, 2, 0, 0}, true)
	want(5, nil, false)
	d.next, d.phase = 3, wire.StateResync1
	h.observe()
	want(5, nil, false)
	d.next, d.phase = 6, wire.StateDiffSync
	h.observe()
	want(5, []byte{1, 2, 3, 4}, true)

	// Rolled back: later writes belong to no point.
	h.end()
	w(0, 9)
	want(5, []byte{1, 2, 3, 4}, true)
	want(100, []byte{1, 2, 3, 4}, true)
}
