package tui

import "testing"

func TestSecondsText(t *testing.T) {
	for _, tc := range []struct {
		s    float64
		want string
	}{
		{0, "0s"}, {0.0004, "1ms"}, {0.04, "40ms"}, {0.4, "0.4s"}, {0.96, "1s"}, {42, "42s"}, {185, "3m05s"},
	} {
		if got := secondsText(tc.s); got != tc.want {
			t.Errorf("secondsText(%v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

func TestPctText(t *testing.T) {
	for _, tc := range []struct {
		p    float64
		want string
	}{
		{0, "0%"}, {0.3, "<1%"}, {45.4, "45%"}, {99.6, ">99%"}, {100, "100%"},
	} {
		if got := pctText(tc.p); got != tc.want {
			t.Errorf("pctText(%v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}
