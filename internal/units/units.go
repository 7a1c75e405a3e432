// Package units formats sizes, durations and yes/no answers as the CLI and
// the console show them, so both say the same thing of the same figure.
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Bytes is n in decimal units: 999 B, 1.5 kB, 67.1 MB, 1.0 TB.
func Bytes(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, []string{"B", "kB", "MB", "GB", "TB"}[i])
}

// Duration is d short, to the second: 0s (under a second), 42s, 3m05s,
// 2h10m, and whole days from two days on.
func Duration(d time.Duration) string {
	switch {
	case d < time.Second:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// YesNo is b as the CLI and the console show a flag: "yes" or "no".
func YesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// ParseBytes reads a size as an admin types it: a number of bytes (1048576)
// or a number with K, M, G or T (512M, 1.5G, 20GiB, 1TB), in any case.
// The units are binary whatever the spelling (1G = 1GiB = 2^30 bytes), as
// vSphere counts disk and datastore sizes. A fraction of a byte is dropped.
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B")
	if n := len(t); n >= 2 && t[n-1] == 'I' && strings.IndexByte("KMGT", t[n-2]) >= 0 {
		t = t[:n-1] // GiB, Gi: the same as G
	}
	shift := 0
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			shift, t = 10*(i+1), strings.TrimSpace(t[:n-1])
		}
	}
	bad := func(why string) error {
		return fmt.Errorf("size %q: %s; want a number of bytes or one with K, M, G or T (binary), e.g. 512M or 40G", s, why)
	}
	whole, frac, dot := strings.Cut(t, ".")
	if whole == "" && frac == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" || dot && frac == "" {
		return 0, bad("not a number")
	}
	if !dot {
		n, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || n > math.MaxInt64>>shift {
			return 0, bad("too large")
		}
		return n << shift, nil
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, bad("not a number")
	}
	f = math.Ldexp(f, shift)
	if f >= math.MaxInt64 {
		return 0, bad("too large")
	}
	return int64(f), nil
}

// ConfigDuration is d as a configuration file spells it: 15m, 24h,
// 1h30m, 45s (time.Duration's String without its zero minutes and
// seconds).
func ConfigDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
