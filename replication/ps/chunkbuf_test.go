package ps

import (
	"bytes"
	"context"
	"testing"

	"github.com/mtconsole/mtconsole/replication/wire"
)

// A chunk's pooled buffer is lent again only once the unacknowledged
// buffer dropped it (acked) and every sender that took it is done: a
// message acked while a sender still holds it (a resend on a newer
// connection acked before the old one's Send returned) keeps its bytes
// while the rest of the resync reads chunk after chunk through the pool.
func TestChunkBufferNotReusedWhileSending(t *testing.T) {
	const chunk, nchunks = 64 << 10, 8
	d, src := testDisk(t, chunk, nchunks, 2)
	s := d.stream("mt")
	s.mu.Lock()
	s.gen, s.fresh = 1, false
	s.beginResyncLocked(false)
	s.mu.Unlock()
	a := attachment{gen: 1}
	produce := func() {
		t.Helper()
		if err := s.produce(context.Background(), nil, a); err != nil {
			t.Fatal(err)
		}
	}
	// take sends what is buffered as run does: every entry taken, the
	// one for chunk 0 kept held, the others released once "sent" and
	// acknowledged, so their buffers go back to the pool at once.
	var held entry
	var heldData *wire.ResyncData
	take := func() {
		t.Helper()
		s.mu.Lock()
		var sent []entry
		for s.sendIdx < len(s.log) {
			e := s.takeLocked()
			if m, ok := e.msg.(*wire.ResyncData); ok && m.Offset == 0 && heldData == nil {
				held, heldData = e, m
				continue
			}
			sent = append(sent, e)
		}
		last := s.next - 1
		s.mu.Unlock()
		for _, e := range sent {
			e.buf.release()
		}
		s.ack(&wire.Ack{Seq: last})
	}

	for range 3 * nchunks {
		s.mu.Lock()
		done := s.rs == nil
		s.mu.Unlock()
		if done {
			break
		}
		produce()
		take()
		if heldData != nil && !bytes.Equal(heldData.Data, src[:chunk]) {
			t.Fatal("chunk 0's message changed while a sender held it: its buffer was lent again")
		}
	}
	if s.rs != nil {
		t.Fatal("the resync did not end")
	}
	if heldData == nil || held.buf == nil {
		t.Fatal("chunk 0 did not go out as ResyncData in a pooled buffer")
	}
	if got := held.buf.refs.Load(); got != 1 {
		t.Fatalf("chunk 0's buffer, acked, sender still holding: %d references, want 1", got)
	}
	for _, e := range s.log {
		if e.data {
			t.Fatalf("data entry %d unacknowledged after the last ack", e.seq)
		}
	}
	held.buf.release()
	if got := held.buf.refs.Load(); got != 0 {
		t.Fatalf("chunk 0's buffer after the sender released it: %d references, want 0 (back in the pool)", got)
	}
}

// A resync renumbered by a new connection drops the old buffer: its
// entries' buffers are released, and a sender still holding one keeps
// it until it is done.
func TestChunkBufferReleasedOnRenumber(t *testing.T) {
	const chunk = 64 << 10
	d, src := testDisk(t, chunk, 4, 3)
	s := d.stream("mt")
	at := s.attach(wire.Pair{Disk: 1, Start: wire.StartFull})
	t.Cleanup(func() {
		// The chunk read ahead is never taken: its read ends before the
		// next test (readAheadHook).
		s.mu.Lock()
		a := s.ahead
		s.mu.Unlock()
		if a != nil {
			<-a.done
		}
	})
	for range 2 {
		if err := s.produce(context.Background(), nil, at); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	var bufs []*chunkBuf
	for _, e := range s.log {
		if e.buf != nil {
			bufs = append(bufs, e.buf)
		}
	}
	s.sendIdx = 0
	sending := s.takeLocked()
	for sending.buf == nil {
		sending = s.takeLocked()
	}
	s.mu.Unlock()
	if len(bufs) != 2 {
		t.Fatalf("%d pooled buffers in the log after two chunks, want 2", len(bufs))
	}
	s.attach(wire.Pair{Disk: 1, Start: wire.StartFull}) // a new connection starts over
	for i, cb := range bufs {
		want := int32(0)
		if cb == sending.buf {
			want = 1
		}
		if got := cb.refs.Load(); got != want {
			t.Errorf("buffer %d after the renumbering: %d references, want %d", i, got, want)
		}
	}
	if m := sending.msg.(*wire.ResyncData); !bytes.Equal(m.Data, src[m.Offset:m.Offset+chunk]) {
		t.Error("the message being sent changed")
	}
	sending.buf.release()
	if got := sending.buf.refs.Load(); got != 0 {
		t.Errorf("the sent buffer after its release: %d references, want 0", got)
	}
}
