// Package backoff spaces out retries: the bound grows exponentially and
// each wait is drawn uniformly below it ("full jitter"), so that many
// clients that lost the same server (master targets and a restarted
// process server) do not all come back in the same instant.
//
// A Backoff is not safe for concurrent use: each retry loop owns its own.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Rand draws a uniform integer in [0, n); *rand.Rand of math/rand/v2
// is one.
type Rand interface {
	Int64N(n int64) int64
}

// Backoff is the wait before each attempt after a failure: attempt n
// (from 0 after New or Reset) waits a uniform draw in
// [0, min(Cap, Base·2ⁿ)].
type Backoff struct {
	Base, Cap time.Duration // Cap below Base counts as Base
	// Rand draws the jitter; nil is math/rand/v2's (safe to share).
	// Tests set one to see exact waits.
	Rand Rand
	n    int
}

// New returns a Backoff from base up to limit, with math/rand/v2's jitter.
func New(base, limit time.Duration) *Backoff {
	return &Backoff{Base: base, Cap: limit}
}

// Ceiling is the bound the next wait is drawn under: min(Cap, Base·2ⁿ).
func (b *Backoff) Ceiling() time.Duration {
	c := max(b.Base, 0)
	limit := max(b.Cap, c)
	for i := 0; i < b.n && 0 < c && c < limit; i++ {
		if c > limit/2 {
			return limit // doubling would pass it (or overflow)
		}
		c *= 2
	}
	return c
}

// Next draws the wait before the next attempt and counts the attempt: the
// next draw's bound is twice as high, up to Cap.
func (b *Backoff) Next() time.Duration {
	c := b.Ceiling()
	if c < b.Cap {
		b.n++ // once at the cap the count stops: it cannot overflow
	}
	if c <= 0 {
		return 0
	}
	n := int64(c)
	if n < math.MaxInt64 {
		n++ // [0, c], c included
	}
	if b.Rand != nil {
		return time.Duration(b.Rand.Int64N(n))
	}
	return time.Duration(rand.Int64N(n))
}

// Reset starts again from Base: call it after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Wait sleeps for Next() or until ctx ends; it reports whether ctx is
// still alive.
func (b *Backoff) Wait(ctx context.Context) bool {
	return Sleep(ctx, b.Next())
}

// Sleep waits d or until ctx ends; it reports whether ctx is still alive.
// A d of zero or less does not wait.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
