package tui

import (
	"fmt"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/internal/units"
)

// bytesText is n in decimal units, as `mtconsole status` prints it.
func bytesText(n int64) string { return units.Bytes(n) }

func rateText(bps float64) string { return bytesText(int64(bps)) + "/s" }

// secondsText is a duration in seconds, short: 0s, 40ms, 0.4s, 42s,
// 3m05s, 2h10m. Under a second it keeps its digits, so a label never says
// 0s of what a bar draws.
func secondsText(s float64) string {
	switch {
	case s <= 0:
		return "0s"
	case s < 0.1:
		return fmt.Sprintf("%.0fms", max(s*1000, 1))
	case s < 0.95:
		return fmt.Sprintf("%.1fs", s)
	case s < 1:
		return "1s"
	}
	return durText(time.Duration(s * float64(time.Second)))
}

// pctText is a percentage without decimals, but never 0% (or 100%) of
// something started (or not done).
func pctText(p float64) string {
	switch {
	case p > 0 && p < 1:
		return "<1%"
	case p > 99 && p < 100:
		return ">99%"
	}
	return fmt.Sprintf("%.0f%%", p)
}

func durText(d time.Duration) string { return units.Duration(d) }

// clockText is a UTC time of day; with the date when it is not today's.
func clockText(t, now time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t, now = t.UTC(), now.UTC()
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04:05")
	}
	return t.Format("2006-01-02 15:04:05")
}

// fit pads or cuts s (display width) to exactly w cells.
func fit(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, "…")
	}
	return s + strings.Repeat(" ", w-sw)
}

// fitRight is fit, aligned right.
func fitRight(s string, w int) string {
	if w <= 0 {
		return ""
	}
	sw := ansi.StringWidth(s)
	if sw > w {
		return ansi.Truncate(s, w, "…")
	}
	return strings.Repeat(" ", w-sw) + s
}

// cut shortens s to at most w cells, without padding.
func cut(s string, w int) string {
	if ansi.StringWidth(s) <= w {
		return s
	}
	return ansi.Truncate(s, max(w, 0), "…")
}

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

// sparkline draws the last w values, scaled to their maximum.
func sparkline(vals []float64, w int) string {
	if len(vals) > w {
		vals = vals[len(vals)-w:]
	}
	hi := 0.0
	for _, v := range vals {
		hi = max(hi, v)
	}
	var b strings.Builder
	for _, v := range vals {
		i := 0
		if hi > 0 {
			i = int(v / hi * float64(len(sparkRunes)-1))
		}
		b.WriteRune(sparkRunes[min(max(i, 0), len(sparkRunes)-1)])
	}
	return b.String()
}

// bar is a w-cell gauge filled to frac (0..1).
func bar(frac float64, w int) string {
	frac = min(max(frac, 0), 1)
	n := int(frac*float64(w) + 0.5)
	return strings.Repeat("█", n) + strings.Repeat("░", w-n)
}

// pct is done of total in percent, 0 when total is unknown.
func pct(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	return 100 * float64(done) / float64(total)
}

// wrap breaks s into lines of at most w cells, each starting with indent.
func wrap(indent, s string, w int) []string {
	return hang(indent, indent, s, w)
}

// hang breaks s into lines of at most w cells: the first starts with
// first, the others with indent. It breaks at spaces only (a command's
// "--flag" stays whole), and a word longer than a line, a path, at the
// width: nothing is cut, so all of it can be read and copied.
func hang(first, indent, s string, w int) []string {
	var out []string
	line, lw := first, ansi.StringWidth(first)
	empty := true // nothing but the prefix on the line yet
	flush := func() {
		out = append(out, strings.TrimRight(line, " "))
		line, lw, empty = indent, ansi.StringWidth(indent), true
	}
	for _, word := range strings.Fields(s) {
		ww := ansi.StringWidth(word)
		if !empty && lw+1+ww > w {
			flush()
		}
		if !empty {
			line, lw = line+" ", lw+1
		}
		for lw+ww > w && w-lw >= 1 {
			// Too long for any line: fill this one and go on.
			n := w - lw
			head := ansi.Cut(word, 0, n)
			line += head
			word = ansi.Cut(word, n, ww)
			ww = ansi.StringWidth(word)
			flush()
		}
		line, lw, empty = line+word, lw+ww, false
	}
	if !empty || len(out) == 0 {
		out = append(out, strings.TrimRight(line, " "))
	}
	return out
}
