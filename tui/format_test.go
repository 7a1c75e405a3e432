package tui

import (
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/writer"
)

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

func TestHang(t *testing.T) {
	cmd := "mtconsole recover --point tag:CRASH_1_0005 --mode export --dest /tmp/dx/targets/a-very-long-directory-name-that-goes-on/disk0-CRASH_1_0005.img --pairs disk0"
	lines := hang("   script twin: ", "     ", cmd, 40)
	var words []string
	for i, l := range lines {
		if w := len([]rune(l)); w > 40 {
			t.Errorf("line %d is %d wide: %q", i, w, l)
		}
		if strings.Contains(l, "…") {
			t.Errorf("line %d is cut: %q", i, l)
		}
		if i > 0 && !strings.HasPrefix(l, "     ") {
			t.Errorf("line %d is not indented: %q", i, l)
		}
		words = append(words, strings.TrimSpace(strings.TrimPrefix(l, "   script twin: ")))
	}
	// Joined without the breaks, the command comes back whole.
	if got := strings.Join(words, " "); strings.ReplaceAll(got, " ", "") != strings.ReplaceAll(cmd, " ", "") {
		t.Errorf("lost text:\n%q\n%q", got, cmd)
	}
	for _, l := range lines {
		if strings.HasSuffix(l, "-") || strings.HasPrefix(strings.TrimSpace(l), "-point") {
			t.Errorf("a flag is split: %q", l)
		}
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/var/lib/x.img": "/var/lib/x.img", "tag:before patch": "'tag:before patch'", "it's": `'it'\''s'`, "": "''",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// A pair rolled back is shown ended, not as an unknown health.
func TestHealthTextEnded(t *testing.T) {
	if got := healthText(writer.HealthEnded); got != "■ Ended" {
		t.Errorf("healthText(%q) = %q, want ■ Ended", writer.HealthEnded, got)
	}
}

// A restarted pair whose source is not yet heard from shows its RPO as
// unknown, not as 0 or as the age of its last applied write.
func TestRPOTextUnknown(t *testing.T) {
	p := &api.PairStatus{PairStatus: writer.PairStatus{RPOSeconds: 42}}
	if got := rpoText(p); got != "42s" {
		t.Errorf("known: %q", got)
	}
	p.RPOSeconds, p.RPOUnknown = 0, true
	if got := rpoText(p); got != "—" {
		t.Errorf("unknown: %q, want —", got)
	}
}
