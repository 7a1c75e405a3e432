package journal

import (
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string // in the message, with the input quoted
	}{
		{"24h", 24 * time.Hour, ""},
		{"3d", 72 * time.Hour, ""},
		{"90m", 90 * time.Minute, ""},
		{"1.5h", 90 * time.Minute, ""},
		{"0h", 0, ""},
		{"24 hours", 24 * time.Hour, ""},
		{"  3 Days ", 72 * time.Hour, ""},
		{"1 day", 24 * time.Hour, ""},
		{"2hrs", 2 * time.Hour, ""},
		{"45 min", 45 * time.Minute, ""},
		{"10 minutes", 10 * time.Minute, ""},
		{"7 D", 7 * 24 * time.Hour, ""},
		{"", 0, "want a number and a unit"},
		{"   ", 0, "want a number and a unit"},
		{"24", 0, "want a number and a unit"},
		{"h", 0, "want a number and a unit"},
		{"-1h", 0, "want a number and a unit"},
		{"24 hours ago", 0, "want a number and a unit"},
		{"-1 days", 0, `"-1" is not a positive number`},
		{"1..5h", 0, `"1..5" is not a positive number`},
		{"x days", 0, `"x" is not a positive number`},
		{"3w", 0, `unit "w" is not minutes, hours or days`},
		{"3 weeks", 0, `unit "weeks" is not minutes, hours or days`},
		{"1e3h", 0, `unit "e3h"`},
		{"nan hours", 0, `"nan" is not a positive number`},
		{"inf days", 0, `"inf" is not a positive number`},
		{"+Inf d", 0, `"+inf" is not a positive number`},
		{"1e300 days", 0, "too long"},
		{"200000 days", 0, "too long"},
	} {
		got, err := ParseWindow(tc.in)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("ParseWindow(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseWindow(%q) = %v, want an error saying %s", tc.in, got, tc.err)
			continue
		}
		if !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
			t.Errorf("ParseWindow(%q) error %q: want it to quote the input and say %s", tc.in, err, tc.err)
		}
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"24h", "3 days", "1.5h", "90m", "", "nan h", "1e300 d", "-1h", "9999999999 days"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWindow(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "retention window ") {
				t.Fatalf("error %q does not say what it is about", err)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseWindow(%q) = %v, negative", s, d)
		}
	})
}

func TestParseFullAction(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want FullAction
		err  bool
	}{
		{"purge", Purge, false},
		{"pause", Pause, false},
		{"PURGE", Purge, false},
		{"Pause", Pause, false},
		{"", "", true},
		{"stop", "", true},
		{"purge ", "", true},
	} {
		got, err := ParseFullAction(tc.in)
		if tc.err {
			if err == nil || !strings.Contains(err.Error(), "want purge or pause") || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
				t.Errorf("ParseFullAction(%q) = %q, %v; want an error quoting it and saying what is valid", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseFullAction(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestLowSpaceTrigger(t *testing.T) {
	const gib = 1 << 30
	for _, tc := range []struct {
		total, lo, hi, want uint64
	}{
		{100 * gib, gib, 20 * gib, 5 * gib},   // 5 %
		{10 * gib, gib, 20 * gib, gib},        // 512 MiB: raised to the floor
		{1024 * gib, gib, 20 * gib, 20 * gib}, // 51.2 GiB: capped
		{400 * gib, gib, 20 * gib, 20 * gib},  // exactly the cap
		{20 * gib, gib, 20 * gib, gib},        // exactly the floor
		{0, gib, 20 * gib, 0},
		{2000, 10, 1000, 100}, // small test volumes
		// Small volumes: the 1 GiB floor stops at a tenth of the volume.
		{256 << 20, gib, 20 * gib, 256 << 20 / 10},
		{64 << 20, gib, 20 * gib, 64 << 20 / 10},
	} {
		if got := LowSpaceTrigger(tc.total, tc.lo, tc.hi, 5); got != tc.want {
			t.Errorf("LowSpaceTrigger(%d, %d, %d) = %d, want %d", tc.total, tc.lo, tc.hi, got, tc.want)
		}
	}
}

func TestLowSpaceTriggerPercent(t *testing.T) {
	const gib = 1 << 30
	if got := LowSpaceTrigger(100*gib, gib, 20*gib, 10); got != 10*gib {
		t.Errorf("10 %% of 100 GiB = %d", got)
	}
	// An admin's percent above a tenth is the admin's: only the floor is
	// held to a tenth.
	if got := LowSpaceTrigger(100<<20, gib, 20*gib, 30); got != 30<<20 {
		t.Errorf("30 %% of 100 MiB = %d", got)
	}
}
