package tui

import (
	"slices"
	"strings"
	"testing"

	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/setup"
	"github.com/mtconsole/mtconsole/tui/action"
)

// rootScreen is a root screen in one state, set up from the recording.
type rootScreen struct {
	name      string
	setup     func(m *Model)
	dangerous []string // the Help of its Dangerous bindings
}

// rootScreens are the dashboard, the detail, the logs and each step of
// the recovery wizard, the failback VM's included.
func rootScreens() []rootScreen {
	step := func(s wizStep, export string) func(m *Model) {
		return func(m *Model) { wizardTo(m, s, export) }
	}
	return []rootScreen{
		{"dashboard", func(*Model) {}, []string{"recover", "tag all", "new protection", "unprotect"}},
		{"unprotect", func(m *Model) { drive(m, press(m, "u")) }, []string{"unprotect", "purge retention"}},
		{"unprotect refused", func(m *Model) {
			m.o.Protector.(*fakeProtector).refuseRemove = notHere
			drive(m, press(m, "u"))
		}, []string{"unprotect", "purge retention"}},
		{"protect server", func(m *Model) { protectTo(m, protServer) }, nil},
		{"protect trust", func(m *Model) { protectTo(m, protTrust) }, []string{"trust and pin"}},
		{"protect disks", func(m *Model) { protectTo(m, protDisks) }, nil},
		{"protect mapping", func(m *Model) { protectTo(m, protMap) }, nil},
		{"protect policy", func(m *Model) { protectTo(m, protPolicy) }, nil},
		{"protect policy choice", func(m *Model) { protectTo(m, protPolicy); press(m, "down", "down") }, nil},
		{"protect review", func(m *Model) { protectTo(m, protReview) }, []string{"apply"}},
		{"protect progress", func(m *Model) { protectTo(m, protProgress) }, nil},
		{"detail", func(m *Model) { press(m, "enter") }, []string{"tag now", "pause/resume", "recover"}},
		{"logs", func(m *Model) { press(m, "L") }, []string{"recover"}},
		{"wizard pairs", step(stepPairs, ""), nil},
		{"wizard point", step(stepPoint, ""), nil},
		{"wizard tag", step(stepTag, ""), nil},
		{"wizard mode", step(stepMode, ""), nil},
		{"wizard mode on rollback", func(m *Model) { wizardTo(m, stepMode, ""); press(m, "down") }, nil},
		{"wizard check", step(stepCheck, ""), nil},
		{"wizard confirm export", step(stepConfirm, "/mtconsole-keys-test-p1.img"), []string{"next"}},
		{"wizard confirm rollback", step(stepConfirm, ""), []string{"next"}},
		{"wizard run", func(m *Model) {
			wizardTo(m, stepConfirm, "")
			typeText(m, "p1")
			m.Update(press(m, "enter")())
		}, nil},
		{"wizard result", rolledBack, []string{"failback VM"}},
		{"failback VM form", func(m *Model) { rolledBack(m); press(m, "v") }, nil},
		{"failback VM form choice", func(m *Model) {
			rolledBack(m)
			press(m, "v")
			for m.fb.fields[m.fb.cur].Choices == nil {
				press(m, "tab")
			}
		}, nil},
		{"failback VM plan failed", planned, nil},
		{"failback VM creating", func(m *Model) {
			rolledBack(m)
			press(m, "v")
			m.fb.step, m.fb.what = fbRun, "create" // as fbStart leaves it until the report
		}, nil},
		{"failback VM done", func(m *Model) {
			rolledBack(m)
			press(m, "v")
			m.fb.step, m.fb.what = fbDone, "create"
		}, nil},
		{"failback runs", func(m *Model) {
			m.o.VSphere.(*fakeVSphere).pending = vsPending
			listed(m)
			pump(m, press(m, "f"))
		}, []string{"resume", "undo"}},
	}
}

func newRootFx(t *testing.T, w, h int) (*Model, *fakeActions) {
	fa := &fakeActions{}
	fv := &fakeVSphere{checks: []setup.Check{{ID: "vm.path", Title: "Failback VM path", Status: setup.Fail}}}
	return newFx(t, w, h, Options{Actions: fa, VSphere: fv, Protector: &fakeProtector{untrusted: true}}), fa
}

// actionCalls counts what the console asked of the agent.
func actionCalls(fa *fakeActions) int {
	s := fa.snapshot()
	return len(s.tags) + len(s.pauses) + len(s.resumes) + len(s.recs)
}

// withoutNote is the screen but its last line, the note.
func withoutNote(m *Model) string {
	s := ansi.Strip(m.render())
	return s[:strings.LastIndex(s, "\n")]
}

// In read-only mode every screen's Dangerous keys are listed in the help
// as disabled with the reason; pressed, they change nothing, ask nothing
// of the agent, and say the reason in the footer. The wizard cannot be
// opened read-only (r is refused), so its steps are walked writable and
// then turned read-only: its own dangerous keys are guarded too.
func TestReadOnlyDangerousKeys(t *testing.T) {
	for _, sc := range rootScreens() {
		t.Run(sc.name, func(t *testing.T) {
			m, fa := newRootFx(t, 120, 40)
			sc.setup(m)
			m.o.ReadOnly, m.o.ReadOnlyReason = true, "not root"
			set := m.keySet()
			var got []string
			for _, b := range set.Bindings {
				if b.Dangerous {
					got = append(got, b.Help)
				}
			}
			if !slices.Equal(got, sc.dangerous) {
				t.Fatalf("dangerous keys %q, want %q", got, sc.dangerous)
			}
			help := ansi.Strip(m.helpView(300, 80))
			for _, b := range set.Bindings {
				if !b.Dangerous {
					continue
				}
				why := set.Reason(&b)
				if !strings.HasPrefix(why, "read-only (not root): ") {
					t.Fatalf("%s: reason %q", b.Help, why)
				}
				// The help's line names the binding: it gives the short
				// reason, the footer the long one.
				if line := b.Help + "  (disabled: read-only (not root))"; !strings.Contains(help, line) {
					t.Errorf("help lacks %q:\n%s", line, help)
				}
				calls, screen, step, before := actionCalls(fa), m.screen, m.wiz.step, withoutNote(m)
				cmd := press(m, b.Keys[0])
				if cmd != nil {
					t.Errorf("%s (%s): a refused key returned a command", b.Help, b.Keys[0])
				}
				if n := actionCalls(fa); n != calls || m.screen != screen || m.wiz.step != step {
					t.Errorf("%s (%s): read-only acted: %d agent calls, screen %d → %d, step %d → %d",
						b.Help, b.Keys[0], n-calls, screen, m.screen, step, m.wiz.step)
				}
				if after := withoutNote(m); after != before {
					t.Errorf("%s (%s): the screen changed:\n%s", b.Help, b.Keys[0], after)
				}
				if note := ansi.Strip(m.noteView()); !strings.Contains(note, "✗ "+why) {
					t.Errorf("%s (%s): footer note %q, want the reason %q", b.Help, b.Keys[0], note, why)
				}
			}
		})
	}
}

// Every key the footer shows, on every screen and at both sizes, is
// handled: the binding that has the key runs (no other binding shadows
// it), it is not refused, and one of its keys changes the screen or
// returns a command.
func TestFooterKeysAreHandled(t *testing.T) {
	screens := append(rootScreens(), rootScreen{name: "help", setup: func(m *Model) { press(m, "?") }})
	for _, sc := range screens {
		for _, sz := range sizes {
			m, _ := newRootFx(t, sz.w, sz.h)
			sc.setup(m)
			if m.focused() != nil {
				continue // a text field's footer: its keys are the field's
			}
			set := m.keySet()
			if m.help {
				set = m.helpKeys()
			}
			for _, b := range set.Shown(m.w) {
				t.Run(sc.name+"/"+b.Help, func(t *testing.T) {
					reacted := false
					for _, k := range b.Keys {
						msg := keyMsg(k)
						if msg.String() != k {
							continue // no way to type it here (ctrl+c is the root's)
						}
						m, _ := newRootFx(t, sz.w, sz.h)
						sc.setup(m)
						set := m.keySet()
						if m.help {
							set = m.helpKeys()
						}
						first := slices.IndexFunc(set.Bindings, func(x action.Binding) bool { return x.Matches(msg) })
						if set.Bindings[first].Help != b.Help {
							t.Fatalf("%s is shadowed by %q", k, set.Bindings[first].Help)
						}
						before, note := ansi.Strip(m.render()), m.note
						_, cmd := m.Update(msg)
						if m.note != note && m.noteErr {
							t.Fatalf("%s %s refused: %s", k, b.Help, m.note)
						}
						reacted = reacted || cmd != nil || ansi.Strip(m.render()) != before
					}
					if !reacted {
						t.Errorf("%s is shown in the footer but does nothing", b.Label+" "+b.Help)
					}
				})
			}
		}
	}
}

// A key that cannot be used now stays in the help, disabled with the
// reason, and pressed says the reason in the footer: the wizard's next
// with no pair chosen, the failback VM without vSphere.
func TestDisabledKeysSayWhy(t *testing.T) {
	m := newFx(t, 120, 40, Options{Actions: &fakeActions{}})
	wizardTo(m, stepPairs, "")
	press(m, "a", "a") // all, then none
	const why = "choose at least one pair (space toggles, a chooses all)"
	if help := ansi.Strip(m.helpView(200, 60)); !strings.Contains(help, "next  (disabled: "+why+")") {
		t.Errorf("help does not list next as disabled:\n%s", help)
	}
	if footer := ansi.Strip(m.keysView()); strings.Contains(footer, "enter next") {
		t.Errorf("footer offers a disabled next: %q", footer)
	}
	press(m, "enter")
	if m.wiz.step != stepPairs || !strings.Contains(ansi.Strip(m.noteView()), "✗ "+why) {
		t.Errorf("enter with no pair: step %d, note %q", m.wiz.step, m.noteView())
	}

	m = newFx(t, 120, 40, Options{Actions: &fakeActions{}})
	rolledBack(m)
	press(m, "v")
	if m.wiz.step != stepResult || !strings.Contains(ansi.Strip(m.noteView()), "vSphere is not configured") {
		t.Errorf("v without vSphere: step %d, note %q", m.wiz.step, m.noteView())
	}
}

// A key with nothing to do in a state is refused with the reason (listed
// disabled in the help, out of the footer, the reason in the footer when
// pressed), and a key with no meaning there is not listed at all.
func TestKeysWithNothingToDoSayWhy(t *testing.T) {
	screens := map[string]rootScreen{}
	for _, sc := range rootScreens() {
		screens[sc.name] = sc
	}
	for _, tc := range []struct {
		screen, key, help, why string
		unlisted               []string
	}{
		{screen: "dashboard", key: "esc", help: "clear filter", why: "no filter is set (/ sets one)"},
		{screen: "wizard point", key: "tab", help: "edit", why: `only "A time" has a field: move to it`},
		{screen: "wizard mode on rollback", key: "tab", help: "edit", why: "only Export has a field, its path: move to it"},
		{screen: "wizard run", key: "enter", help: "next",
			why: "the job is still running: its result shows here when it ends (esc: back to the dashboard, the job goes on)"},
		{screen: "failback VM plan failed", key: "enter", help: "create",
			why: "a check failed: fix what is marked ✗, then esc and plan again", unlisted: []string{"move"}},
		{screen: "failback VM creating", key: "enter", help: "next",
			why: "the failback run is under way: wait for its report", unlisted: []string{"move"}},
		{screen: "failback VM creating", key: "esc", help: "back",
			why: "the failback run is under way: wait for its report"},
		{screen: "failback VM creating", key: "q", help: "quit",
			why: "a failback run is under way: q waits for its report (ctrl+c cuts it)"},
		{screen: "failback VM done", unlisted: []string{"move"}},
	} {
		t.Run(tc.screen+"/"+tc.key, func(t *testing.T) {
			m, _ := newRootFx(t, 120, 40)
			screens[tc.screen].setup(m)
			set := m.keySet()
			for _, h := range tc.unlisted {
				if set.Find(h) != nil {
					t.Errorf("%q is listed", h)
				}
			}
			if tc.key == "" {
				return
			}
			if help := ansi.Strip(m.helpView(300, 80)); !strings.Contains(help, tc.help+"  (disabled: "+tc.why+")") {
				t.Errorf("help does not list %s as disabled with %q:\n%s", tc.help, tc.why, help)
			}
			if footer := ansi.Strip(m.keysView()); strings.Contains(footer, tc.key+" "+tc.help) {
				t.Errorf("footer offers %s %s: %q", tc.key, tc.help, footer)
			}
			screen, step, before := m.screen, m.wiz.step, withoutNote(m)
			if cmd := press(m, tc.key); cmd != nil {
				t.Errorf("%s returned a command", tc.key)
			}
			if m.screen != screen || m.wiz.step != step || withoutNote(m) != before {
				t.Errorf("%s changed the screen", tc.key)
			}
			if note := ansi.Strip(m.noteView()); !strings.Contains(note, "✗ "+tc.why) {
				t.Errorf("%s: footer note %q, want %q", tc.key, note, tc.why)
			}
		})
	}
}
