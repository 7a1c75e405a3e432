package journal

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseTiers(t *testing.T) {
	const day = 24 * time.Hour
	tiers, err := ParseTiers("all 1d; 1 per 1h for 6d")
	if err != nil {
		t.Fatal(err)
	}
	want := []Tier{{Start: 0, Duration: day}, {Start: day, Duration: 6 * day, Granularity: time.Hour, Count: 1}}
	if len(tiers) != 2 || tiers[0] != want[0] || tiers[1] != want[1] {
		t.Fatalf("ParseTiers = %+v, want %+v", tiers, want)
	}
	if err := ValidateTiers(7*day, tiers); err != nil {
		t.Fatal(err)
	}
	if got := DescribeTiers(tiers); got != "Retain all data for 1 day; 1 bookmark(s) per 1 hour for 6 days" {
		t.Fatalf("DescribeTiers = %q", got)
	}
	if got := FormatTiers(tiers); got != "all 1d; 1 per 1h for 6d" {
		t.Fatalf("FormatTiers = %q", got)
	}
	three, err := ParseTiers("all 12h; 2 fs per 1h for 36h; 1 FS per 1d for 5d")
	if err != nil {
		t.Fatal(err)
	}
	if three[1].App != "FS" || three[2].Start != 48*time.Hour || three[1].Count != 2 {
		t.Fatalf("ParseTiers = %+v", three)
	}
	if err := ValidateTiers(7*day, three); err != nil {
		t.Fatal(err)
	}
	if got := DescribeTiers(three); got != "Retain all data for 12 hours; 2 FS bookmark(s) per 1 hour for 36 hours; 1 FS bookmark(s) per 1 day for 5 days" {
		t.Fatalf("DescribeTiers = %q", got)
	}
	if tiers, err := ParseTiers(" "); err != nil || tiers != nil {
		t.Fatalf("ParseTiers(blank) = %v %v", tiers, err)
	}
	for _, bad := range []string{"all", "all 1d;", "1 per 1h for 6d x", "x per 1h for 1d", "all 1d; 1 per 1q for 6d", "all 1d; 1 per 1h during 6d"} {
		if _, err := ParseTiers(bad); err == nil || !strings.Contains(err.Error(), "tier ") {
			t.Errorf("ParseTiers(%q) = %v, want an error naming the tier", bad, err)
		}
	}
}

func TestValidateTiers(t *testing.T) {
	const day = 24 * time.Hour
	all := Tier{Duration: day}
	for _, c := range []struct {
		name   string
		window time.Duration
		tiers  []Tier
		want   string
	}{
		{"not contiguous", 7 * day, []Tier{all, {Start: 2 * day, Duration: 5 * day, Granularity: time.Hour, Count: 1}}, "tier 2 start: starts at 2 days but tier 1 ends at 1 day"},
		{"end not the window", 8 * day, []Tier{all, {Start: day, Duration: 6 * day, Granularity: time.Hour, Count: 1}}, "the last tier ends at 7 days but the retention window is 8 days"},
		{"tagcount 0", 7 * day, []Tier{all, {Start: day, Duration: 6 * day, Granularity: time.Hour}}, "tier 2 tagcount: 0: must be at least 1"},
		{"granularity over duration", 2 * day, []Tier{all, {Start: day, Duration: day, Granularity: 2 * day, Count: 1}}, "tier 2 granularity: 2 days is longer than the tier's duration 1 day"},
		{"first not all", 7 * day, []Tier{{Duration: 7 * day, Granularity: time.Hour, Count: 1}}, "tier 1 granularity: the first tier keeps all writes"},
		{"later all", 7 * day, []Tier{all, {Start: day, Duration: 6 * day}}, "tier 2 granularity: only the first tier"},
		{"apps differ", 7 * day, []Tier{all, {Start: day, Duration: day, Granularity: time.Hour, Count: 1, App: "FS"}, {Start: 2 * day, Duration: 5 * day, Granularity: day, Count: 1, App: "SQL"}}, "tier 3 app"},
		{"no window", 0, []Tier{all}, "need a retention window"},
		{"zero duration", 0 + day, []Tier{{Duration: 0}}, "tier 1 duration: must be above zero"},
	} {
		err := ValidateTiers(c.window, c.tiers)
		var te *TierError
		if err == nil || !errors.As(err, &te) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: ValidateTiers = %v, want %q", c.name, err, c.want)
		}
	}
	e := newStoreEnv(t)
	s := e.open()
	defer s.Close()
	err := s.SetPolicy(Policy{Window: 8 * day, Tiers: []Tier{all, {Start: day, Duration: 6 * day, Granularity: time.Hour, Count: 1}}})
	if err == nil || !strings.Contains(err.Error(), "retention window") {
		t.Fatalf("SetPolicy with bad tiers: %v", err)
	}
	if len(s.Policy().Tiers) != 0 {
		t.Fatal("a refused policy was kept")
	}
}
