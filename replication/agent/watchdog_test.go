package agent

import (
	"testing"
	"time"
)

func TestStalledError(t *testing.T) {
	if err := stalledError(nil); err != nil {
		t.Fatalf("no stalled pair: %v", err)
	}
	err := stalledError(map[string]time.Duration{"p2": 95 * time.Second, "p1": 2*time.Minute + 400*time.Millisecond})
	if err == nil || err.Error() != "applier stuck in one batch: p1 for 2m0s, p2 for 1m35s" {
		t.Fatalf("stalledError = %v", err)
	}
}
