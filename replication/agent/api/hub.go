package api

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/writer"
)

// DefaultBuffer is the events a subscriber may fall behind by before the
// oldest are dropped.
const DefaultBuffer = 1024

// Hub fans events out to subscribers. Publish never blocks: feed it from
// writer.Options.OnEvent.
type Hub struct {
	size int
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	hist []Event // a ring of the last HistorySize events
	next int     // where the next event goes, once the ring is full
}

// HistorySize is how many recent events a hub keeps for subscribers that
// ask for them (a console opened late sees what just happened).
const HistorySize = 256

type subscriber struct {
	mu      sync.Mutex
	buf     []Event
	dropped int
	wake    chan struct{} // capacity 1
}

// NewHub returns a hub with DefaultBuffer events per subscriber.
func NewHub() *Hub { return NewHubSize(DefaultBuffer) }

// NewHubSize returns a hub with n events (at least 1) per subscriber.
func NewHubSize(n int) *Hub {
	return &Hub{size: max(n, 1), subs: map[*subscriber]struct{}{}}
}

// Publish gives e to every subscriber. A subscriber whose buffer is full
// loses its oldest event instead of making the publisher (the writer's
// applier) wait.
func (h *Hub) Publish(e writer.Event) { h.PublishEvent(Event{Event: e}) }

// PublishEvent is Publish for an event of the API's own (a job's).
func (h *Hub) PublishEvent(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.hist) < HistorySize {
		h.hist = append(h.hist, e)
	} else {
		h.hist[h.next] = e
		h.next = (h.next + 1) % HistorySize
	}
	for s := range h.subs {
		s.mu.Lock()
		if len(s.buf) >= h.size {
			s.buf = s.buf[1:]
			s.dropped++
		}
		s.buf = append(s.buf, e)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Subscribe returns the last history events published (at most
// HistorySize and the subscriber's buffer), then those published from now
// until ctx ends; then the channel is closed. A subscriber that fell
// behind first receives an EventDropped event saying how many it lost.
func (h *Hub) Subscribe(ctx context.Context, history int) <-chan Event {
	s := &subscriber{wake: make(chan struct{}, 1)}
	h.mu.Lock()
	if n := min(max(history, 0), len(h.hist), h.size); n > 0 {
		// oldest first: the ring from next on, then from its start
		ordered := append(append([]Event(nil), h.hist[h.next:]...), h.hist[:h.next]...)
		s.buf = append(s.buf, ordered[len(ordered)-n:]...)
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	out := make(chan Event)
	go func() {
		defer close(out)
		defer func() {
			h.mu.Lock()
			delete(h.subs, s)
			h.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			var e Event
			ok := true
			switch {
			case s.dropped > 0:
				e = Event{Event: writer.Event{Time: time.Now().UTC(), Kind: EventDropped, Level: slog.LevelWarn,
					Message: fmt.Sprintf("dropped %d events", s.dropped)}}
				s.dropped = 0
			case len(s.buf) > 0:
				e = s.buf[0]
				s.buf[0] = Event{}
				s.buf = s.buf[1:]
			default:
				ok = false
			}
			s.mu.Unlock()
			if !ok {
				select {
				case <-s.wake:
					continue
				case <-ctx.Done():
					return
				}
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}
