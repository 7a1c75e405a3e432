package ps

import (
	"context"
	"testing"

	"github.com/mtconsole/mtconsole/replication/wire"
)

// Hash answers come out in the order they came in, and only as many as
// were asked for are kept: one nobody asked for is dropped, so a peer
// cannot fill the queue.
func TestHashQueueKeepsOnlyWhatWasAsked(t *testing.T) {
	q := newHashQueue()
	q.put(&wire.HashResponse{Offset: 1}) // not asked: dropped
	q.asking()
	q.asking()
	for _, off := range []int64{2, 3, 4} {
		q.put(&wire.HashResponse{Offset: off})
	}
	for _, want := range []int64{2, 3} {
		m, err := q.take(context.Background())
		if err != nil || m.Offset != want {
			t.Fatalf("take: %+v, %v; want offset %d", m, err, want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if m, err := q.take(ctx); err == nil {
		t.Fatalf("a third answer came out of two asked: %+v", m)
	}
}
