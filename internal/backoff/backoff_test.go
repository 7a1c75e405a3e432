package backoff

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"
)

// top draws the highest value allowed: the wait is the bound itself.
type top struct{ asked []int64 }

func (r *top) Int64N(n int64) int64 { r.asked = append(r.asked, n); return n - 1 }

func TestCeilingGrowsToCapAndResets(t *testing.T) {
	r := &top{}
	b := &Backoff{Base: 100 * time.Millisecond, Cap: time.Second, Rand: r}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		w *= time.Millisecond
		if c := b.Ceiling(); c != w {
			t.Fatalf("attempt %d: ceiling %v, want %v", i, c, w)
		}
		if d := b.Next(); d != w {
			t.Fatalf("attempt %d: wait %v, want the ceiling %v", i, d, w)
		}
	}
	if r.asked[0] != int64(100*time.Millisecond)+1 {
		t.Errorf("drew in [0, %d), want [0, ceiling]", r.asked[0])
	}
	b.Reset()
	if d := b.Next(); d != 100*time.Millisecond {
		t.Errorf("after Reset: %v, want Base", d)
	}
}

// Over many draws every wait lies in [0, ceiling] and the waits spread
// over that range: both halves are hit at every attempt.
func TestNextFullJitterBounds(t *testing.T) {
	const base, limit = 10 * time.Millisecond, 5 * time.Second
	b := &Backoff{Base: base, Cap: limit, Rand: rand.New(rand.NewPCG(1, 2))}
	for attempt := range 12 {
		c := min(base<<attempt, limit)
		low, high := 0, 0
		for range 2000 {
			b.n = attempt
			d := b.Next()
			if d < 0 || d > c {
				t.Fatalf("attempt %d: wait %v outside [0, %v]", attempt, d, c)
			}
			if d < c/2 {
				low++
			} else {
				high++
			}
		}
		if low < 800 || high < 800 {
			t.Errorf("attempt %d: %d draws below %v and %d above: not uniform", attempt, low, c/2, high)
		}
	}
}

func TestDefaultRandInBounds(t *testing.T) {
	b := New(time.Millisecond, 8*time.Millisecond)
	for i := range 1000 {
		c := b.Ceiling()
		if d := b.Next(); d < 0 || d > c {
			t.Fatalf("draw %d: %v outside [0, %v]", i, d, c)
		}
	}
}

func TestOddConfigs(t *testing.T) {
	r := &top{}
	for _, tc := range []struct {
		name      string
		base, cap time.Duration
		want      []time.Duration
	}{
		{"zero", 0, 0, []time.Duration{0, 0}},
		{"zero base", 0, time.Second, []time.Duration{0, 0}},
		{"cap below base", time.Second, time.Millisecond, []time.Duration{time.Second, time.Second}},
		{"huge cap", time.Second, 1<<63 - 1, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}},
	} {
		b := &Backoff{Base: tc.base, Cap: tc.cap, Rand: r}
		for i, w := range tc.want {
			if d := b.Next(); d != w {
				t.Errorf("%s: attempt %d: %v, want %v", tc.name, i, d, w)
			}
		}
	}
	// Many attempts at the top of a huge cap: no overflow, no negative wait.
	b := &Backoff{Base: time.Nanosecond, Cap: 1<<63 - 1, Rand: r}
	for i := range 200 {
		if d := b.Next(); d < 0 {
			t.Fatalf("attempt %d: %v", i, d)
		}
	}
	if c := b.Ceiling(); c != 1<<63-1 {
		t.Errorf("ceiling after 200 attempts %v, want the cap", c)
	}
}

func TestWait(t *testing.T) {
	// A zero draw does not wait.
	zero := &Backoff{Base: time.Hour, Cap: time.Hour, Rand: zeroRand{}}
	if !zero.Wait(t.Context()) {
		t.Error("Wait on a live context reported it ended")
	}
	// An hour's wait ends with its context.
	b := &Backoff{Base: time.Hour, Cap: time.Hour, Rand: &top{}}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan bool)
	go func() { done <- b.Wait(ctx) }()
	cancel()
	if <-done {
		t.Error("Wait reported a live context after cancel")
	}
	// An ended context ends even a zero wait.
	if zero.Wait(ctx) {
		t.Error("Wait(0) on an ended context reported it alive")
	}
}

type zeroRand struct{}

func (zeroRand) Int64N(int64) int64 { return 0 }
