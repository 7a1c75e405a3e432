package journal

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tier is one sparse-retention tier (the original's cdp_policy): the
// points whose age lies in [Start, Start+Duration). The first tier keeps
// every write (Count 0, Granularity 0); each later one keeps Count tags of
// application App ("" any) per Granularity, the first Count of each
// Granularity-long stretch of UTC time (aligned to the Unix epoch).
type Tier struct {
	Start       time.Duration `json:"start"`
	Duration    time.Duration `json:"duration"`
	Granularity time.Duration `json:"granularity,omitempty"`
	Count       int           `json:"count,omitempty"`
	App         string        `json:"app,omitempty"`
}

// All reports whether the tier keeps every write.
func (t Tier) All() bool { return t.Granularity == 0 }

// End is where the tier ends, as an age.
func (t Tier) End() time.Duration { return t.Start + t.Duration }

// TierError is a tier that breaks a rule; Tier is its number from 1
// (0: the tiers as a whole) and Field the field at fault.
type TierError struct {
	Tier  int
	Field string
	Why   string
}

func (e *TierError) Error() string {
	if e.Tier == 0 {
		return e.Why
	}
	return fmt.Sprintf("tier %d %s: %s", e.Tier, e.Field, e.Why)
}

// ValidateTiers checks tiers against the original's rules: the first keeps
// all writes, the later ones keep Count > 0 tags per Granularity (at most
// their Duration), all of one application type, each starting where the
// one before ends, the last ending at window. No tiers is valid: all
// writes for the whole window.
func ValidateTiers(window time.Duration, tiers []Tier) error {
	if len(tiers) == 0 {
		return nil
	}
	if window <= 0 {
		return &TierError{Why: "sparse retention tiers need a retention window: the last tier ends at it"}
	}
	var end time.Duration
	for i, t := range tiers {
		n := i + 1
		switch {
		case t.Start != end:
			return &TierError{n, "start", fmt.Sprintf("starts at %s but tier %d ends at %s: tiers must be contiguous", FormatAge(t.Start), i, FormatAge(end))}
		case t.Duration <= 0:
			return &TierError{n, "duration", "must be above zero"}
		case i == 0 && !t.All():
			return &TierError{n, "granularity", "the first tier keeps all writes (\"all <duration>\")"}
		case i > 0 && t.All():
			return &TierError{n, "granularity", "only the first tier keeps all writes; later tiers keep N tags per granularity"}
		case i > 0 && t.Count <= 0:
			return &TierError{n, "tagcount", fmt.Sprintf("%d: must be at least 1", t.Count)}
		case i > 0 && t.Granularity > t.Duration:
			return &TierError{n, "granularity", fmt.Sprintf("%s is longer than the tier's duration %s", FormatAge(t.Granularity), FormatAge(t.Duration))}
		case i > 1 && t.App != tiers[1].App:
			return &TierError{n, "app", fmt.Sprintf("%q differs from tier 2's %q: all tiers keep one application type", t.App, tiers[1].App)}
		}
		end = t.End()
	}
	if end != window {
		return &TierError{Why: fmt.Sprintf("the last tier ends at %s but the retention window is %s: they must be equal", FormatAge(end), FormatAge(window))}
	}
	return nil
}

// ParseTiers reads tiers written as the admin would say them, separated
// by ";": first "all <duration>", then "<N> [APP] per <granularity> for
// <duration>", such as "all 1d; 1 per 1h for 6d" or
// "all 1d; 2 FS per 1h for 2d; 1 FS per 1d for 4d". Durations are as
// ParseWindow reads them. Starts follow from the order. It checks the
// syntax only; ValidateTiers checks the rules. "" is no tiers.
func ParseTiers(s string) ([]Tier, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out []Tier
	var start time.Duration
	for i, part := range strings.Split(s, ";") {
		f := strings.Fields(part)
		bad := func(why string) error {
			return fmt.Errorf("tier %d %q: %s (want \"all <duration>\" first, then \"<N> [APP] per <granularity> for <duration>\", separated by \";\")", i+1, strings.TrimSpace(part), why)
		}
		var t Tier
		switch {
		case len(f) == 0:
			return nil, bad("empty")
		case strings.EqualFold(f[0], "all"):
			if len(f) != 2 {
				return nil, bad("\"all\" takes one duration")
			}
			d, err := ParseWindow(f[1])
			if err != nil {
				return nil, bad(err.Error())
			}
			t = Tier{Duration: d}
		default:
			n, err := strconv.Atoi(f[0])
			if err != nil {
				return nil, bad(fmt.Sprintf("%q is not a tag count", f[0]))
			}
			rest := f[1:]
			if len(rest) == 5 {
				t.App = strings.ToUpper(rest[0])
				rest = rest[1:]
			}
			if len(rest) != 4 || !strings.EqualFold(rest[0], "per") || !strings.EqualFold(rest[2], "for") {
				return nil, bad("not \"<N> [APP] per <granularity> for <duration>\"")
			}
			g, err := ParseWindow(rest[1])
			if err != nil {
				return nil, bad("granularity: " + err.Error())
			}
			d, err := ParseWindow(rest[3])
			if err != nil {
				return nil, bad("duration: " + err.Error())
			}
			t.Count, t.Granularity, t.Duration = n, g, d
		}
		t.Start = start
		start += t.Duration
		out = append(out, t)
	}
	return out, nil
}

// FormatTiers writes tiers in the form ParseTiers reads.
func FormatTiers(tiers []Tier) string {
	var parts []string
	for _, t := range tiers {
		if t.All() {
			parts = append(parts, "all "+shortAge(t.Duration))
			continue
		}
		app := ""
		if t.App != "" {
			app = t.App + " "
		}
		parts = append(parts, fmt.Sprintf("%d %sper %s for %s", t.Count, app, shortAge(t.Granularity), shortAge(t.Duration)))
	}
	return strings.Join(parts, "; ")
}

// DescribeTiers is the original's display form: "Retain all data for 1
// day; 1 bookmark(s) per 1 hour for 6 days".
func DescribeTiers(tiers []Tier) string {
	var parts []string
	for _, t := range tiers {
		if t.All() {
			parts = append(parts, "Retain all data for "+FormatAge(t.Duration))
			continue
		}
		app := ""
		if t.App != "" {
			app = t.App + " "
		}
		parts = append(parts, fmt.Sprintf("%d %sbookmark(s) per %s for %s", t.Count, app, FormatAge(t.Granularity), FormatAge(t.Duration)))
	}
	return strings.Join(parts, "; ")
}

// FormatAge writes d as whole days, hours or minutes where it is one
// ("1 day", "6 days", "90 minutes"), else as Go writes it.
func FormatAge(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return fmt.Sprintf("%d %ss", n, one)
	}
	switch {
	case d == 0:
		return "0 minutes"
	case d%(24*time.Hour) == 0:
		return unit(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return unit(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return unit(int64(d/time.Minute), "minute")
	}
	return d.String()
}

func shortAge(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%.6gh", d.Hours())
}

// CheckTiers parses spec (ParseTiers; "none" is no tiers) and checks its
// rules; window 0 means the window is not known yet (set elsewhere), so
// every rule but the last tier's end is checked.
func CheckTiers(spec string, window time.Duration) ([]Tier, error) {
	if strings.EqualFold(strings.TrimSpace(spec), "none") {
		return nil, nil
	}
	tiers, err := ParseTiers(spec)
	if err != nil || len(tiers) == 0 {
		return tiers, err
	}
	if window == 0 {
		window = tiers[len(tiers)-1].End()
	}
	return tiers, ValidateTiers(window, tiers)
}
