package wire

import "testing"

// TestPairStateNames pins the names every screen and command shows: the
// long names are the agent's status API, the short ones the dashboard's
// STATE column.
func TestPairStateNames(t *testing.T) {
	for _, tc := range []struct {
		s           PairState
		long, short string
	}{
		{StateQueued, "Queued", "Queued"},
		{StateResync1, "Resync Step I", "Resync I"},
		{StateResync2, "Resync Step II", "Resync II"},
		{StateDiffSync, "Differential Sync", "Diff sync"},
		{StateEnded, "Ended", "Ended"},
	} {
		if got := tc.s.String(); got != tc.long {
			t.Errorf("%d.String() = %q, want %q", tc.s, got, tc.long)
		}
		if got := tc.s.Short(); got != tc.short {
			t.Errorf("%d.Short() = %q, want %q", tc.s, got, tc.short)
		}
		if got, ok := ParsePairState(tc.long); !ok || got != tc.s {
			t.Errorf("ParsePairState(%q) = %d, %v; want %d", tc.long, got, ok, tc.s)
		}
	}
	if s, ok := ParsePairState("Diff sync"); ok {
		t.Errorf("ParsePairState(short name) = %d, true; want false", s)
	}
	if got := PairState(7).String(); got != "state(7)" {
		t.Errorf("PairState(7).String() = %q", got)
	}
	// Only the protocol's states go on the wire.
	for _, s := range []PairState{StateQueued, StateEnded} {
		if err := (&State{Disk: 1, State: s}).check(); err == nil {
			t.Errorf("State %s passes check; it must never be sent", s)
		}
	}
}
