package wire

import (
	"context"
	"sync"
)

// Cost is what sending m takes from the credit window: the uncompressed
// data of a Write or a ResyncData, the bytes the master target will have
// to journal. Every other message is free, so control messages (acks,
// heartbeats, errors) never wait for credit.
func Cost(m Message) int64 {
	switch m := m.(type) {
	case *Write:
		return int64(len(m.Data))
	case *ResyncData:
		return int64(len(m.Data))
	}
	return 0
}

// Window is the sender's side of credit-based flow control. The master
// target grants bytes with Credit messages as its journal and buffers
// drain; the process server feeds them to Grant and calls Take before
// sending each data message. Take waits while the window is empty or
// overdrawn, then takes the whole cost even if that overdraws the window:
// a message larger than the credit granted still goes (no deadlock), and
// what is in flight never exceeds the credit plus one message.
//
// A Window is safe for concurrent use.
type Window struct {
	mu     sync.Mutex
	avail  int64
	closed bool
	wake   chan struct{} // closed (and dropped) when avail or closed change
}

// NewWindow returns a window holding initial bytes of credit. The zero
// Window holds none.
func NewWindow(initial int64) *Window { return &Window{avail: initial} }

// Grant adds n bytes of credit.
func (w *Window) Grant(n int64) {
	w.mu.Lock()
	w.avail += n
	w.signal()
	w.mu.Unlock()
}

// Take waits until the window holds credit, then takes n bytes. It returns
// the context's error if the context ends first, ErrClosed if the window
// is closed.
func (w *Window) Take(ctx context.Context, n int64) error {
	for {
		w.mu.Lock()
		if w.closed {
			w.mu.Unlock()
			return ErrClosed
		}
		if n <= 0 || w.avail > 0 {
			w.avail -= max(n, 0)
			w.mu.Unlock()
			return nil
		}
		if w.wake == nil {
			w.wake = make(chan struct{})
		}
		wake := w.wake
		w.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Available is the credit left; negative while overdrawn.
func (w *Window) Available() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.avail
}

// Close wakes every Take with ErrClosed, now and later.
func (w *Window) Close() {
	w.mu.Lock()
	w.closed = true
	w.signal()
	w.mu.Unlock()
}

func (w *Window) signal() {
	if w.wake != nil {
		close(w.wake)
		w.wake = nil
	}
}
