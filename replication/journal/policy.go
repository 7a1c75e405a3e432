package journal

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FullAction is what a pair does when its retention is full.
type FullAction string

// The actions, as the original named them (CDP_PRUNE, CDP_STOP).
const (
	Purge FullAction = "purge" // drop the oldest data, keep replicating
	Pause FullAction = "pause" // stop the pair, keep the window
)

// Policy is a pair's retention policy.
type Policy struct {
	// Window is how far back points are kept (0: no time limit).
	Window time.Duration `json:"window"`
	// SizeCap bounds the bytes of undo data (0: no cap).
	SizeCap int64 `json:"size_cap"`
	// OnFull applies when SizeCap is reached or the volume runs low.
	OnFull FullAction `json:"on_full"`
	// Tiers, when set, make retention sparse (ValidateTiers): the first
	// keeps every write, the later ones only some tags, and Compact
	// rewrites what they no longer need.
	Tiers []Tier `json:"tiers,omitempty"`
}

// DefaultPolicy is the failback default: 24 hours, purge when full.
var DefaultPolicy = Policy{Window: 24 * time.Hour, OnFull: Purge}

// ParseWindow reads a retention window as "<value> <hours|days>" or in
// the short forms "24h", "3d", "90m".
func ParseWindow(s string) (time.Duration, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	fields := strings.Fields(t)
	var num, unit string
	switch len(fields) {
	case 2:
		num, unit = fields[0], fields[1]
	case 1:
		i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return 0, fmt.Errorf("retention window %q: want a number and a unit, such as 24h or 3 days", s)
		}
		num, unit = t[:i], t[i:]
	default:
		return 0, fmt.Errorf("retention window %q: want a number and a unit, such as 24h or 3 days", s)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("retention window %q: %q is not a positive number", s, num)
	}
	var u time.Duration
	switch unit {
	case "m", "min", "mins", "minute", "minutes":
		u = time.Minute
	case "h", "hr", "hrs", "hour", "hours":
		u = time.Hour
	case "d", "day", "days":
		u = 24 * time.Hour
	default:
		return 0, fmt.Errorf("retention window %q: unit %q is not minutes, hours or days", s, unit)
	}
	// A float past the range of Duration converts to garbage, negative
	// on amd64.
	if v*float64(u) >= math.MaxInt64 {
		return 0, fmt.Errorf("retention window %q: too long (at most %d days)", s, math.MaxInt64/int64(24*time.Hour))
	}
	return time.Duration(v * float64(u)), nil
}

// ParseFullAction reads "purge" or "pause".
func ParseFullAction(s string) (FullAction, error) {
	switch FullAction(strings.ToLower(s)) {
	case Purge:
		return Purge, nil
	case Pause:
		return Pause, nil
	}
	return "", fmt.Errorf("on-full action %q: want purge or pause", s)
}

// LowSpaceTrigger is the free space below which a volume of total bytes
// is short (the original's cdp_alert_threshold): pct percent of it, raised
// to lo but never by the floor past a tenth of the volume (a 256 MiB
// volume is not short at once for want of 1 GiB), and capped at hi (1 GiB
// and 20 GiB in production).
func LowSpaceTrigger(total, lo, hi uint64, pct float64) uint64 {
	t := uint64(float64(total) * pct / 100)
	t = max(t, min(lo, total/10))
	return min(t, hi)
}
