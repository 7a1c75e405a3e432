package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
)

// newUnprotFx is the grouped dashboard (web01: p1, p2, p3) with a
// Protector.
func newUnprotFx(t testing.TB, w, h int, fp *fakeProtector) *Model {
	m := newFx(t, w, h, Options{Actions: groupActions(t), Protector: fp})
	m.Update(StatusMsg{Status: fxGroupStatus(), At: fxNow})
	return m
}

// notHere is the refusal of a group the file no longer has (changed
// since the console read the agent's status).
const notHere = "not protected here: /etc/mtconsole/agent.toml has no [[group]] named \"web01\" and no [[pair]] with that id: " +
	"mtconsole protection list shows what is"

func TestGoldenUnprotect(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(m *Model)
	}{
		// u on web01's header, the retention kept.
		{"Keep", func(m *Model) { press(m, "k"); drive(m, press(m, "u")) }},
		// p: the name to type.
		{"Purge", func(m *Model) { press(m, "k"); drive(m, press(m, "u")); press(m, "p"); typeText(m, "web") }},
		// u on p1, a pair of web01: that pair alone, the prompt says so.
		{"Pair", func(m *Model) { drive(m, press(m, "u")) }},
		{"Refused", func(m *Model) { press(m, "k"); drive(m, press(m, "u")) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sz := range sizes {
				t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
					fp := &fakeProtector{}
					if tc.name == "Refused" {
						fp.refuseRemove = notHere
					}
					m := newUnprotFx(t, sz.w, sz.h, fp)
					tc.setup(m)
					golden.RequireEqual(t, screenText(t, m))
				})
			}
		})
	}
}

// u on a machine's header: the plan shown; keep: y applies, ApplyRemove
// is called without purge and the footer says what stopped. Purge: y and
// enter are refused until the name is typed; then ApplyRemove with purge.
func TestUnprotectFlow(t *testing.T) {
	t.Run("keep", func(t *testing.T) {
		fp := &fakeProtector{}
		m := newUnprotFx(t, 120, 40, fp)
		press(m, "k")
		if g := m.selectedGroup(); g != "web01" {
			t.Fatalf("selected %q, want the header web01", g)
		}
		drive(m, press(m, "u"))
		if m.screen != screenUnprotect || !slices.Equal(fp.removePlans, []string{"web01"}) {
			t.Fatalf("screen %d, plans %q", m.screen, fp.removePlans)
		}
		s := screenText(t, m)
		for _, want := range []string{"Unprotect machine web01", "unprotect web01: 3 pairs leave", "-name = \"web01\"", "y unprotects"} {
			if !strings.Contains(s, want) {
				t.Fatalf("no %q on:\n%s", want, s)
			}
		}
		drive(m, press(m, "y"))
		if !slices.Equal(fp.removes, []fakeRemove{{name: "web01"}}) {
			t.Fatalf("removes %+v", fp.removes)
		}
		if m.screen != screenDashboard {
			t.Fatalf("screen %d after the apply, want the dashboard", m.screen)
		}
		if note := ansi.Strip(m.noteView()); !strings.Contains(note, "unprotected web01: stopped p1, p2, p3") {
			t.Fatalf("note %q", note)
		}
	})
	t.Run("purge", func(t *testing.T) {
		fp := &fakeProtector{}
		m := newUnprotFx(t, 80, 24, fp)
		press(m, "k")
		drive(m, press(m, "u"))
		press(m, "p")
		if m.focused() != &m.unprot.typed {
			t.Fatal("p did not give the keyboard to the typed name")
		}
		typeText(m, "web0")
		drive(m, press(m, "enter"))
		if len(fp.removes) != 0 {
			t.Fatalf("applied with %q typed: %+v", m.unprot.typed.Value(), fp.removes)
		}
		if note := ansi.Strip(m.noteView()); !strings.Contains(note, "type web01 to purge") {
			t.Fatalf("note %q", note)
		}
		// y is typed into the field, it does not apply.
		press(m, "y")
		if len(fp.removes) != 0 || m.unprot.typed.Value() != "web0y" {
			t.Fatalf("y applied or was lost: %+v %q", fp.removes, m.unprot.typed.Value())
		}
		press(m, "ctrl+u")
		typeText(m, "web01")
		drive(m, press(m, "enter"))
		if !slices.Equal(fp.removes, []fakeRemove{{name: "web01", purge: true}}) {
			t.Fatalf("removes %+v", fp.removes)
		}
		if note := ansi.Strip(m.noteView()); !strings.Contains(note, "unprotected web01: stopped p1, p2, p3; retention purged") {
			t.Fatalf("note %q", note)
		}
	})
	t.Run("esc keeps then cancels", func(t *testing.T) {
		fp := &fakeProtector{}
		m := newUnprotFx(t, 80, 24, fp)
		press(m, "k")
		drive(m, press(m, "u"))
		press(m, "p")
		typeText(m, "web01")
		press(m, "esc")
		if m.unprot.purge || m.screen != screenUnprotect {
			t.Fatalf("esc in the typed name: purge %v, screen %d", m.unprot.purge, m.screen)
		}
		press(m, "esc")
		if m.screen != screenDashboard || len(fp.removes) != 0 {
			t.Fatalf("esc: screen %d, removes %+v", m.screen, fp.removes)
		}
	})
	t.Run("pair alone", func(t *testing.T) {
		fp := &fakeProtector{}
		m := newUnprotFx(t, 120, 40, fp)
		drive(m, press(m, "u")) // p1, a pair of web01
		if !slices.Equal(fp.removePlans, []string{"p1"}) {
			t.Fatalf("plans %q, want p1 alone", fp.removePlans)
		}
		if s := screenText(t, m); !strings.Contains(s, "the other disks of web01 stay protected") {
			t.Fatalf("the prompt does not say the pair goes alone:\n%s", s)
		}
		drive(m, press(m, "y"))
		if !slices.Equal(fp.removes, []fakeRemove{{name: "p1"}}) {
			t.Fatalf("removes %+v", fp.removes)
		}
	})
	t.Run("refused", func(t *testing.T) {
		fp := &fakeProtector{refuseRemove: notHere}
		m := newUnprotFx(t, 120, 40, fp)
		press(m, "k")
		drive(m, press(m, "u"))
		s := screenText(t, m)
		if !strings.Contains(s, "no [[group]] named") {
			t.Fatalf("the refusal is not shown:\n%s", s)
		}
		press(m, "y")
		if len(fp.removes) != 0 {
			t.Fatalf("a refused plan was applied: %+v", fp.removes)
		}
		if note := ansi.Strip(m.noteView()); !strings.Contains(note, "nothing to unprotect") {
			t.Fatalf("note %q", note)
		}
	})
	t.Run("no agent", func(t *testing.T) {
		fp := &fakeProtector{noAgent: true}
		m := newUnprotFx(t, 120, 40, fp)
		press(m, "k")
		drive(m, press(m, "u"))
		drive(m, press(m, "y"))
		if note := ansi.Strip(m.noteView()); !strings.Contains(note, "agent.toml written; no agent answers") {
			t.Fatalf("note %q", note)
		}
	})
}

// Without a Protector (a replay) u is disabled with the reason.
func TestUnprotectWithoutProtector(t *testing.T) {
	m := newGroupFx(t, 120, 40, groupActions(t))
	if cmd := press(m, "u"); cmd != nil || m.screen != screenDashboard {
		t.Fatalf("u without a Protector: screen %d", m.screen)
	}
	if note := ansi.Strip(m.noteView()); !strings.Contains(note, "use `mtconsole unprotect`") {
		t.Fatalf("note %q", note)
	}
}
