package tui

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// typeKeys types s key by key, as typeText does, and fails if any key
// quit the console or opened the help: in a field they are text.
func typeKeys(t *testing.T, m *Model, s string) {
	t.Helper()
	for _, r := range s {
		_, cmd := m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
		if cmd != nil {
			if _, quit := cmd().(tea.QuitMsg); quit {
				t.Fatalf("typing %q quit the console", r)
			}
		}
		if m.help {
			t.Fatalf("typing %q opened the help", r)
		}
	}
}

// The mode offered first, and taken by enter, is Export: a rollback is
// always a choice the admin makes.
func TestWizardDefaultsToExport(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	wizardTo(m, stepMode, "")
	if m.wiz.cur != modeExport || m.request().Mode != api.ModeExport {
		t.Fatalf("step 3 opens on mode %d (request %s), want Export", m.wiz.cur, m.request().Mode)
	}
	press(m, "enter")
	if !m.wiz.destIn.Focused() {
		t.Fatal("enter on Export does not open the path")
	}
	press(m, "enter")
	if m.wiz.step != stepCheck || m.request().Mode != api.ModeExport {
		t.Errorf("step %d, mode %s: enter, enter should check an export", m.wiz.step, m.request().Mode)
	}
}

// Issue 11: back on step 3 the path was shown but not focused, so the j
// and k of a path moved the mode to Rollback. A path field that is shown
// for editing has every printable key, and coming back to it focuses it.
func TestWizardPathOwnsEveryKey(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	wizardTo(m, stepMode, "")
	press(m, "enter", "ctrl+u")
	path := "/srv/jk q?/kj 1 tLDr.img"
	typeKeys(t, m, path)
	if got := m.wiz.destIn.Value(); got != path {
		t.Fatalf("the path field holds %q, want %q", got, path)
	}
	if m.screen != screenRecover || m.wiz.step != stepMode || m.wiz.cur != modeExport || m.wiz.mode != modeExport {
		t.Fatalf("typing moved the wizard: screen %d step %d cursor %d mode %d", m.screen, m.wiz.step, m.wiz.cur, m.wiz.mode)
	}
	press(m, "enter")
	if m.wiz.step != stepCheck || m.request().Mode != api.ModeExport || m.request().Dest != path {
		t.Fatalf("step %d, request %+v: want the check of an export to %q", m.wiz.step, m.request(), path)
	}
	// Back from the check: in the path again, the keys still its own.
	press(m, "esc")
	if !m.wiz.destIn.Focused() {
		t.Fatal("back on step 3 the path is shown but not focused")
	}
	typeKeys(t, m, "jjkk")
	press(m, "enter")
	if req := m.request(); req.Mode != api.ModeExport || req.Dest != path+"jjkk" {
		t.Errorf("after going back and typing: request %+v, want an export to %q", req, path+"jjkk")
	}
	// Leaving the field is explicit: ↑ (or shift+tab, esc) gives the
	// keyboard to the list; tab gives it back.
	press(m, "esc")
	press(m, "up")
	if m.wiz.destIn.Focused() || m.wiz.cur != modeExport {
		t.Fatalf("↑ in the path: focused %v cursor %d, want the list on Export", m.wiz.destIn.Focused(), m.wiz.cur)
	}
	press(m, "j")
	if m.wiz.cur != modeRollback || m.listField() != nil {
		t.Errorf("the list's j: cursor %d, field shown %v", m.wiz.cur, m.listField() != nil)
	}
	press(m, "k", "tab")
	if !m.wiz.destIn.Focused() || m.wiz.mode != modeExport {
		t.Errorf("tab on Export: focused %v mode %d", m.wiz.destIn.Focused(), m.wiz.mode)
	}
	press(m, "shift+tab")
	if m.wiz.destIn.Focused() {
		t.Error("shift+tab does not leave the path")
	}
}

// The time field, like the path: its keys are its own, and coming back
// to the point step puts the admin in it again.
func TestWizardTimeFieldOwnsKeys(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	wizardTo(m, stepPoint, "")
	press(m, "down", "down", "down", "down", "enter", "ctrl+u")
	typeKeys(t, m, "2026-11-26T10:04:00Zjk")
	if m.wiz.cur != pointTime || !m.wiz.timeIn.Focused() {
		t.Fatalf("typing in the time moved the list: cursor %d", m.wiz.cur)
	}
	press(m, "enter")
	if m.wiz.fieldErr == "" || m.wiz.step != stepPoint {
		t.Fatalf("a bad time was taken: step %d", m.wiz.step)
	}
	press(m, "ctrl+u")
	typeKeys(t, m, "2026-11-26T10:04:00Z")
	press(m, "enter")
	if m.wiz.step != stepMode || m.request().Point != "time:2026-11-26T10:04:00Z" {
		t.Fatalf("step %d point %q", m.wiz.step, m.request().Point)
	}
	press(m, "esc")
	if !m.wiz.timeIn.Focused() {
		t.Fatal("back on step 2 the time is shown but not focused")
	}
	typeKeys(t, m, "k")
	if m.wiz.cur != pointTime || m.wiz.timeIn.Value() != "2026-11-26T10:04:00Zk" {
		t.Errorf("k went to the list: cursor %d, time %q", m.wiz.cur, m.wiz.timeIn.Value())
	}
}

// Every text field, while it has the keyboard, takes every printable key
// as text: none moves, quits, opens help or switches screens.
func TestTextFieldsOwnPrintableKeys(t *testing.T) {
	const typed = "jkq?/ 1 tLDrpsavf"
	for _, tc := range []struct {
		name  string
		open  func(m *Model)
		field func(m *Model) string
	}{
		{"detail tag", func(m *Model) { press(m, "enter", "t") }, func(m *Model) string { return m.detail.input.Value() }},
		{"dashboard tag", func(m *Model) { press(m, "t") }, func(m *Model) string { return m.dash.tag.Value() }},
		{"dashboard filter", func(m *Model) { press(m, "/") }, func(m *Model) string { return m.dash.filter.Value() }},
		{"logs filter", func(m *Model) { press(m, "L", "/") }, func(m *Model) string { return m.logs.filter.Value() }},
		{"wizard time", func(m *Model) { wizardTo(m, stepPoint, ""); press(m, "down", "down", "down", "down", "tab") },
			func(m *Model) string { return m.wiz.timeIn.Value() }},
		{"wizard path", func(m *Model) { wizardTo(m, stepMode, ""); press(m, "tab") }, func(m *Model) string { return m.wiz.destIn.Value() }},
		{"wizard confirmation", func(m *Model) { wizardTo(m, stepConfirm, "") }, func(m *Model) string { return m.wiz.confirm.Value() }},
		{"failback VM name", func(m *Model) { rolledBack(m); press(m, "v") }, func(m *Model) string { return m.fb.inputs["name"].Value() }},
		{"failback VM undo confirmation", func(m *Model) {
			m.o.VSphere.(*fakeVSphere).pending = vsPending
			listed(m)
			pump(m, press(m, "f"))
			press(m, "u")
		}, func(m *Model) string { return m.fb.confirm.Value() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: &fakeVSphere{}})
			tc.open(m)
			if m.focused() == nil {
				t.Fatal("no field has the keyboard")
			}
			press(m, "ctrl+u")
			scr, step, cur := m.screen, m.wiz.step, m.wiz.cur
			typeKeys(t, m, typed)
			if got := tc.field(m); got != typed {
				t.Errorf("field holds %q, want %q", got, typed)
			}
			if m.screen != scr || m.wiz.step != step || m.wiz.cur != cur || m.focused() == nil {
				t.Errorf("typing moved the console: screen %d→%d step %d→%d cursor %d→%d", scr, m.screen, step, m.wiz.step, cur, m.wiz.cur)
			}
		})
	}
}

// r preselects the pair in view: the dashboard's selected one, or the
// detail's; the demo's pairs, tagged one by one, share no point.
func TestRecoverPreselectsPairInView(t *testing.T) {
	for _, tc := range []struct {
		keys []string
		want []string
	}{
		{[]string{"r"}, []string{"p1"}},
		{[]string{"j", "r"}, []string{"p2"}},
		{[]string{"j", "j", "enter", "r"}, []string{"p3"}},
		{[]string{"j", "L", "r"}, []string{"p2"}},
		{[]string{"/", "zzz", "enter", "r"}, nil}, // none shown: step 1 asks
	} {
		m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
		for _, k := range tc.keys {
			if len(k) > 1 && k != "enter" {
				typeText(m, k)
				continue
			}
			press(m, k)
		}
		if got := m.chosenPairs(); m.screen != screenRecover || !slices.Equal(got, tc.want) {
			t.Errorf("%v: screen %d, chosen %v, want %v", tc.keys, m.screen, got, tc.want)
		}
	}
}

// The flow, in a real program: an export, back from the check to
// change the path, which has j, k and q in it; the export is what runs.
func TestFlowExportBackKeepsExport(t *testing.T) {
	fa := &fakeActions{}
	tm := startFlow(t, fa, Options{})
	dir := t.TempDir()
	send(tm, "r", "enter", "enter", "enter", "ctrl+u") // p1, latest tag, Export's path
	tm.Type(filepath.Join(dir, "first.img"))
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Readiness check")) }, teatest.WithDuration(waitLong))
	send(tm, "esc", "ctrl+u") // back: the path has the keyboard
	dest := filepath.Join(dir, "jk-quick-kj.img")
	tm.Type(dest)
	send(tm, "enter")
	pressUntil(t, tm, "enter", "5 of 5 · Confirm") // the check, once the agent answered
	send(tm, "enter")                              // start
	eventually(t, "the export", func() bool { return len(fa.snapshot().recs) == 1 })
	final(t, tm)
	req := fa.snapshot().recs[0]
	if req.Mode != api.ModeExport || req.Dest != dest || !slices.Equal(req.Pairs, []string{"p1"}) {
		t.Errorf("recover request %+v, want an export of p1 to %s", req, dest)
	}
}

// Issue 11: two tags of one name (a store from before the agent refused
// them) were both in the detail, one in the wizard, and tag:NAME took the
// newer. Both show with their ids, in the detail and the wizard, and the
// one chosen is asked for by id.
func TestRepeatedTagNamesShowIDs(t *testing.T) {
	m := newFx(t, 120, 40, Options{Actions: &fakeActions{}})
	tags := fxTags("p1")
	last := tags[len(tags)-1]
	tags = append(tags, journal.Tag{Seq: last.Seq + 100, Time: last.Time.Add(time.Minute), Name: "before-patch", App: journal.AppUser,
		ID: "p1-dup", Accuracy: journal.Exact})
	m.tags["p1"] = tags
	m.o.Actions.(*fakeActions).stores = map[string]*journal.Store{"p1": buildStore(t, "p1", tags, 1000, fxNow)}
	press(m, "enter")
	s := screenText(t, m)
	for _, w := range []string{"before-patch (id p1-4)", "before-patch (id p1-dup)"} {
		if !strings.Contains(s, w) {
			t.Errorf("the detail does not show %q:\n%s", w, s)
		}
	}
	if strings.Contains(s, "crash-1004 (id") {
		t.Errorf("an id where the name does not repeat:\n%s", s)
	}
	press(m, "r", "enter", "down", "down", "down", "enter") // p1, a tag from the list
	list := m.commonTags()
	older := slices.IndexFunc(list, func(tg journal.Tag) bool { return tg.ID == "p1-4" })
	if older < 0 || !slices.ContainsFunc(list, func(tg journal.Tag) bool { return tg.ID == "p1-dup" }) {
		t.Fatalf("the wizard offers %v, want both before-patch tags", list)
	}
	if s := screenText(t, m); !strings.Contains(s, "before-patch (id p1-4)") || !strings.Contains(s, "before-patch (id p1-dup)") {
		t.Errorf("the wizard's list does not tell them apart:\n%s", s)
	}
	for range older {
		press(m, "down")
	}
	press(m, "enter", "enter", "ctrl+u")
	typeText(m, "/p1.img")
	answer(m, press(m, "enter"))
	if p := m.request().Point; p != "tagid:p1-4" {
		t.Errorf("point %q, want tagid:p1-4", p)
	}
	if !slices.ContainsFunc(m.wiz.checks, func(c check) bool {
		return c.level == checkOK && strings.Contains(c.text, "p1: tag before-patch (id p1-4) (USERDEFINED) at 09:53:30 UTC, sequence 500")
	}) {
		t.Errorf("the check does not find the tag by id: %+v", m.wiz.checks)
	}
	// A name that does not repeat is asked for by name.
	m.wiz.tag = last
	if p := m.request().Point; p != "tag:crash-1004" {
		t.Errorf("point %q, want tag:crash-1004", p)
	}
}
