package writer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// handedOver tracks the buffers fed through WriteDirectBuf: how often
// each was given back, and on its return it is overwritten, as a pool
// lending it for the next chunk would.
type handedOver struct {
	mu    sync.Mutex
	freed map[uint64]int
}

func (h *handedOver) free(seq uint64, buf []byte) func() {
	return func() {
		h.mu.Lock()
		h.freed[seq]++
		h.mu.Unlock()
		for i := range buf {
			buf[i] = 0xEE
		}
	}
}

func (h *handedOver) count(seq uint64) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.freed[seq]
}

// feedDirectBuf is feedDirect through WriteDirectBuf: every data chunk in
// memory of its own (aligned unless unaligned is set), handed over.
// pending counts the writes whose memory was still held as
// WriteDirectBuf returned.
func feedDirectBuf(p *Pair, src []byte, h *handedOver, unaligned bool) (taken []uint64, pending int, err error) {
	n := uint64(len(src) / directChunk)
	for seq := uint64(1); seq <= n; seq++ {
		off := int64(seq-1) * directChunk
		data := src[off : off+directChunk]
		t := resyncStart.Add(time.Duration(seq) * time.Millisecond)
		if journal.IsZero(data) {
			if ok, err := p.WriteDirect(context.Background(), seq, off, t, data, true); err != nil || !ok {
				return taken, pending, fmt.Errorf("seq %d: zeros: taken %v, %v", seq, ok, err)
			}
			continue
		}
		b := *alignedBuf(directChunk + 1)
		if unaligned {
			b = b[1:]
		}
		b = b[:directChunk]
		copy(b, data)
		ok, err := p.WriteDirectBuf(context.Background(), seq, off, t, b, h.free(seq, b))
		if ok {
			taken = append(taken, seq)
			if h.count(seq) == 0 {
				pending++
			}
		}
		if err != nil {
			return taken, pending, err
		}
		if !ok {
			return taken, pending, fmt.Errorf("seq %d: not taken directly", seq)
		}
	}
	return taken, pending, p.EndDirect()
}

// Memory handed over by WriteDirectBuf is written from, and given back
// exactly once only after its write landed: overwritten on its return,
// the target still ends equal to the source. Unaligned memory is copied
// and given back at once.
func TestDirectResyncHandedOverBuffers(t *testing.T) {
	for _, unaligned := range []bool{false, true} {
		t.Run(fmt.Sprintf("unaligned=%v", unaligned), func(t *testing.T) {
			withDirectCommit(t, 5*directChunk)
			m := newMemPair(t, nil)
			p, _ := m.open()
			defer func() { p.Close() }()
			src := directSource(11)
			h := &handedOver{freed: map[uint64]int{}}
			taken, pending, err := feedDirectBuf(p, src, h, unaligned)
			if err != nil {
				t.Fatal(err)
			}
			if d := testutil.Diff(m.target(), src); d != "" {
				t.Fatalf("target after the copy: %s (memory given back before its write landed)", d)
			}
			for _, seq := range taken {
				if c := h.count(seq); c != 1 {
					t.Fatalf("chunk %d given back %d times, want 1", seq, c)
				}
			}
			if unaligned && pending != 0 {
				t.Fatalf("%d unaligned chunks held past WriteDirectBuf: they are copied", pending)
			}
			if !unaligned && pending == 0 {
				t.Fatal("every aligned chunk was given back as WriteDirectBuf returned: copied, not written from the memory handed over")
			}
			// Refused (the store now holds recoverable points): the
			// memory stays the caller's.
			w := testutil.NewWorkload(3, diskSize, src)
			w.Seq = uint64(diskSize / directChunk)
			if err := feed(t, p, w.Next()); err != nil {
				t.Fatal(err)
			}
			syncDrain(t, p)
			b := *alignedBuf(directChunk)
			freed := false
			ok, err := p.WriteDirectBuf(context.Background(), w.Seq+1, 0, w.Clock, b, func() { freed = true })
			if ok || err != nil || freed {
				t.Fatalf("refused direct write: taken %v, err %v, memory given back %v", ok, err, freed)
			}
		})
	}
}

// A failed target write gives back every handed-over buffer exactly
// once: those of the failed batch, of the batches beside it and of the
// writes only gathered.
func TestDirectResyncHandedOverBuffersOnFailure(t *testing.T) {
	withDirectCommit(t, 6*directChunk)
	m := newMemPair(t, nil)
	const bad = 40
	m.o.TargetFS = failAtFS{FS: m.fs, name: m.cfg.Target, at: (bad-1)*directChunk + 100}
	p, _ := m.open()
	defer p.Close()
	h := &handedOver{freed: map[uint64]int{}}
	taken, _, err := feedDirectBuf(p, directSource(12), h, false)
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("a direct resync over a failing target write: %v, want EIO", err)
	}
	if len(taken) == 0 {
		t.Fatal("nothing was taken")
	}
	for _, seq := range taken {
		if c := h.count(seq); c != 1 {
			t.Errorf("chunk %d given back %d times, want 1", seq, c)
		}
	}
}
