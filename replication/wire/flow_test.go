package wire

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	ctx := context.Background()
	w := NewWindow(100)
	if err := w.Take(ctx, 60); err != nil {
		t.Fatal(err)
	}
	// Credit left: a larger message still goes, overdrawing the window.
	if err := w.Take(ctx, 1000); err != nil || w.Available() != -960 {
		t.Fatalf("overdraw: %v, available %d", err, w.Available())
	}
	// Overdrawn: Take waits for enough grants to bring it above zero.
	got := make(chan error, 1)
	go func() { got <- w.Take(ctx, 10) }()
	w.Grant(500)
	select {
	case err := <-got:
		t.Fatalf("took while still overdrawn: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	w.Grant(461)
	select {
	case err := <-got:
		if err != nil || w.Available() != -9 {
			t.Fatalf("after grants: %v, available %d", err, w.Available())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Take did not wake on Grant")
	}
	// Free messages never wait.
	if err := w.Take(ctx, 0); err != nil {
		t.Fatal(err)
	}
	// The context ends a wait.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := w.Take(cctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled take: %v", err)
	}
	// Close wakes waiters.
	go func() { got <- w.Take(ctx, 1) }()
	time.Sleep(10 * time.Millisecond)
	w.Close()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("take on close: %v", err)
	}
	// The zero Window holds nothing and works.
	var z Window
	go func() { got <- z.Take(ctx, 5) }()
	z.Grant(1)
	if err := <-got; err != nil || z.Available() != -4 {
		t.Fatalf("zero window: %v, %d", err, z.Available())
	}
}

func TestCost(t *testing.T) {
	data := make([]byte, 4096)
	for _, tc := range []struct {
		m    Message
		want int64
	}{
		{&Write{Data: data, Compression: CompressZstd}, 4096},
		{&ResyncData{Data: data[:100]}, 100},
		{&ZeroRange{Length: 1 << 30}, 0},
		{&Tag{}, 0},
		{&Heartbeat{}, 0},
		{&Ack{}, 0},
	} {
		if got := Cost(tc.m); got != tc.want {
			t.Errorf("Cost(%v) = %d, want %d", tc.m.Type(), got, tc.want)
		}
	}
}
