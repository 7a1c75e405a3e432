package agent

import "testing"

// Credit returned by handled messages wakes the acker once a quarter of
// the window waits, so a fast sender is granted more before the acker's
// tick; less waits for the tick.
func TestGrantWakesAckerAtAQuarterOfTheWindow(t *testing.T) {
	s := &session{kick: make(chan struct{}, 1), grantAt: (32 << 20) / 4}
	woken := func() bool {
		select {
		case <-s.kick:
			return true
		default:
			return false
		}
	}
	s.grant(4 << 20)
	if woken() {
		t.Fatal("4 MiB of credit woke the acker: want it to wait for the tick below 8 MiB")
	}
	s.grant(4 << 20)
	if !woken() {
		t.Fatal("8 MiB of credit waiting did not wake the acker")
	}
	if got := s.credit.Load(); got != 8<<20 {
		t.Fatalf("credit waiting %d, want %d (waking grants nothing by itself)", got, 8<<20)
	}
	s.credit.Swap(0) // the acker granted it
	s.grant(1 << 20)
	if woken() {
		t.Fatal("1 MiB after a grant woke the acker")
	}
}
