package tui

import (
	"slices"
	"strings"
	"testing"
)

func TestLineDiff(t *testing.T) {
	lines := func(s ...string) []byte { return []byte(strings.Join(s, "\n") + "\n") }
	for _, tc := range []struct {
		name     string
		old, new []byte
		want     []string
	}{
		{"create", nil, lines("a", "\tb"), []string{"+ a", "+     b"}},
		{"same", lines("a", "b"), lines("a", "b"), nil},
		{"first line", lines("a", "b", "c"), lines("x", "b", "c"), []string{"- a", "+ x", "  b"}},
		{"middle", lines("a", "b", "c", "d"), lines("a", "b", "x", "d"),
			[]string{"@@ line 2", "  b", "- c", "+ x", "  d"}},
		{"appended", lines("a", "b"), lines("a", "b", "c"), []string{"@@ line 2", "  b", "+ c"}},
		{"no final newline", []byte("a\nb"), lines("a", "b"), nil},
		// Two changes far apart are two hunks; the lines between them are
		// not shown as removed and added again (the single-hunk diff did).
		{"two hunks", lines("a", "b", "c", "d", "e", "f", "g"), lines("A", "b", "c", "d", "e", "f", "G"),
			[]string{"- a", "+ A", "  b", "@@ line 6", "  f", "- g", "+ G"}},
		{"near changes join", lines("a", "b", "c", "d"), lines("A", "b", "C", "d"),
			[]string{"- a", "+ A", "  b", "- c", "+ C", "  d"}},
	} {
		if got := lineDiff(tc.old, tc.new); !slices.Equal(got, tc.want) {
			t.Errorf("%s: lineDiff =\n%q\nwant\n%q", tc.name, got, tc.want)
		}
	}
}
