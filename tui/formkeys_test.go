package tui

import (
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/setup"
	"github.com/mtconsole/mtconsole/tui/action"
)

// pressKey is the key press tea names k ("pgup", "ctrl+s", "Y", "-"); it
// fails the test when the name does not come back, so a test cannot
// press a key other than the one it means.
func pressKey(t *testing.T, k string) tea.KeyPressMsg {
	t.Helper()
	codes := map[string]rune{"enter": tea.KeyEnter, "esc": tea.KeyEscape, "up": tea.KeyUp, "down": tea.KeyDown,
		"left": tea.KeyLeft, "right": tea.KeyRight, "pgup": tea.KeyPgUp, "pgdown": tea.KeyPgDown, "tab": tea.KeyTab,
		"f1": tea.KeyF1, "f5": tea.KeyF5, "f10": tea.KeyF10}
	var msg tea.KeyPressMsg
	switch {
	case k == "space":
		msg = tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	case k == "shift+tab":
		msg = tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case strings.HasPrefix(k, "ctrl+"):
		msg = tea.KeyPressMsg{Code: rune(k[len("ctrl+")]), Mod: tea.ModCtrl}
	case codes[k] != 0:
		msg = tea.KeyPressMsg{Code: codes[k]}
	default:
		r := []rune(k)
		if len(r) != 1 {
			t.Fatalf("no key press for %q", k)
		}
		msg = tea.KeyPressMsg{Code: r[0], Text: k}
	}
	if msg.String() != k {
		t.Fatalf("key %q reads back as %q", k, msg.String())
	}
	return msg
}

// footerKeysWork fails t for a binding the footer may show that no key
// reaches: without keys, without Run, or with a key an earlier binding
// takes first.
func footerKeysWork(t *testing.T, state string, s action.Set) {
	t.Helper()
	shown := 0
	for i := range s.Bindings {
		b := &s.Bindings[i]
		if b.NoFooter || b.Help == "" || (s.Reason(b) != "" && !b.Pin) {
			continue
		}
		shown++
		if b.Run == nil || len(b.Keys) == 0 {
			t.Errorf("%s: the footer shows %q %q, which no key runs", state, b.Label, b.Help)
		}
		for _, k := range b.Keys {
			first := slices.IndexFunc(s.Bindings, func(x action.Binding) bool { return slices.Contains(x.Keys, k) })
			if first != i {
				t.Errorf("%s: %q of %q %q goes to %q first", state, k, b.Label, b.Help, s.Bindings[first].Help)
			}
		}
	}
	if shown == 0 && len(s.Bindings) > 0 {
		t.Errorf("%s: the footer shows no key", state)
	}
}

// labelOf is the keys as the help shows them.
func labelOf(b *action.Binding) string {
	if b.Label == "" && len(b.Keys) > 0 {
		return b.Keys[0]
	}
	return b.Label
}

// setupStates drives a fresh wizard into each of its states: every step
// (and the steps a process server skips), the retention field, a
// confirmation, a running job, the help, a dry run's steps.
var setupStates = []struct {
	name string
	ps   bool // role: process server
	dry  bool
	keys []string
	job  bool
}{
	{name: "role"},
	{name: "prerequisites", keys: []string{"enter"}},
	{name: "disks", keys: []string{"enter", "enter"}},
	{name: "disks_edit", keys: []string{"enter", "enter", "e"}},
	{name: "disks_edit_help", keys: []string{"enter", "enter", "e", "f1"}},
	{name: "custom", keys: []string{"enter", "enter", "enter"}},
	{name: "custom_confirm", keys: []string{"enter", "enter", "enter", "a"}},
	{name: "config_server", keys: []string{"enter", "enter", "enter", "enter"}},
	{name: "config_server_dry", dry: true, keys: []string{"enter", "enter", "enter", "enter"}},
	{name: "vsphere", keys: []string{"enter", "enter", "enter", "enter", "enter"}},
	{name: "summary", keys: []string{"enter", "enter", "enter", "enter", "enter", "enter"}},
	{name: "summary_dry", dry: true, keys: []string{"enter", "enter", "enter", "enter", "enter", "enter"}},
	{name: "summary_help", keys: []string{"enter", "enter", "enter", "enter", "enter", "enter", "?"}},
	{name: "ps_disks", ps: true, keys: []string{"enter", "enter"}},
	{name: "ps_custom", ps: true, keys: []string{"enter", "enter", "enter"}},
	{name: "job", keys: []string{"enter"}, job: true},
}

func (fx *suFx) drive(t *testing.T, ps, job bool, keys []string) *SetupModel {
	t.Helper()
	m := fx.model(t, 100, 30)
	if ps {
		suPress(t, m, "2")
	}
	for _, k := range keys {
		_, cmd := m.Update(pressKey(t, k))
		settle(t, m, cmd)
	}
	if job {
		m.jobSeq++
		m.job = &suJob{id: m.jobSeq, kind: "packages", title: "Installing lsscsi", step: m.step, running: true, cancel: func() {}}
	}
	return m
}

// Every key the setup wizard's footer shows, in every state, is one its
// dispatch runs.
func TestSetupFooterKeysWork(t *testing.T) {
	a := mtAnswers(t)
	for _, c := range setupStates {
		t.Run(c.name, func(t *testing.T) {
			fx := newSetupFx(t, "vmware-good", &a)
			fx.o.DryRun = c.dry
			m := fx.drive(t, c.ps, c.job, c.keys)
			footerKeysWork(t, c.name, m.keys())
			if !m.help {
				// the help lists the same bindings, and the footer draws from them
				for _, b := range m.keys().Bindings {
					if b.Help != "" && !strings.Contains(strings.Join(m.helpLines(200), "\n"), b.Help) {
						t.Errorf("%s: the help does not list %q", c.name, b.Help)
					}
				}
			}
		})
	}
}

// In a read-only session, on every step, the help lists each key that
// changes something as disabled with the reason; pressing it shows the
// reason and changes nothing: not the root's files, not the package
// manager, not the answers, not the screen.
func TestSetupReadOnlyRefusesDangerousKeys(t *testing.T) {
	a := mtAnswers(t)
	const reason = "read-only (not root)"
	var refused []string
	for _, c := range setupStates {
		if c.name == "custom_confirm" || c.name == "disks_edit" || c.name == "disks_edit_help" {
			continue // a read-only session cannot get there: a and e are refused
		}
		t.Run(c.name, func(t *testing.T) {
			fx := newSetupFx(t, "vmware-good", &a)
			fx.o.DryRun = c.dry
			fx.o.ReadOnly, fx.o.ReadOnlyReason = true, "not root"
			before := testutil.Tree(t, fx.root)
			m := fx.drive(t, c.ps, c.job, c.keys)
			m.help = false
			s := m.stateKeys()
			if !strings.Contains(suText(t, m, fx.root), "read-only: not root") {
				t.Errorf("%s: the header does not say read-only", c.name)
			}
			suPress(t, m, "?")
			help := suText(t, m, fx.root)
			if !m.help {
				t.Fatalf("%s: ? opened no help", c.name)
			}
			// the whole help, scrolled
			for range 5 {
				suPress(t, m, "pgdown")
				help += suText(t, m, fx.root)
			}
			suPress(t, m, "esc")
			for i := range s.Bindings {
				b := &s.Bindings[i]
				if !b.Dangerous {
					continue
				}
				want := fmt.Sprintf("%-10s %s  (disabled: %s", labelOf(b), b.Help, reason)
				if !strings.Contains(help, want) {
					t.Errorf("%s: the help does not list %q:\n%s", c.name, want, help)
				}
				for _, k := range b.Keys {
					step, ans, confirm, job := m.step, m.a, m.confirm, m.job
					m.note = ""
					_, cmd := m.Update(pressKey(t, k))
					settle(t, m, cmd)
					if !strings.HasPrefix(m.note, reason) || !m.noteErr {
						t.Errorf("%s: %q (%s): note %q, want the reason", c.name, k, b.Help, m.note)
					}
					if !strings.Contains(ansi.Strip(suText(t, m, fx.root)), "✗ "+reason) {
						t.Errorf("%s: %q: the screen does not show the reason", c.name, k)
					}
					if m.step != step || !reflect.DeepEqual(m.a, ans) || m.confirm != confirm || m.editing || m.hcm != nil || m.job != job {
						t.Errorf("%s: %q (%s) changed the wizard: step %d, confirm %q, editing %v, host config %v, job %v",
							c.name, k, b.Help, m.step, m.confirm, m.editing, m.hcm != nil, m.job != nil)
					}
					refused = append(refused, b.Help)
				}
			}
			if len(fx.pm.asked) != 0 {
				t.Errorf("%s: the package manager was asked to install %v", c.name, fx.pm.asked)
			}
			testutil.SameTree(t, fx.root, before)
		})
	}
	for _, want := range []string{"fix: install missing", "install at apply", "retention dir", "apply…", "revert…",
		"apply at install", "host config screen", "dry run…"} {
		if !slices.Contains(refused, want) {
			t.Errorf("%q was never refused: %q", want, refused)
		}
	}
}

// hcStates drives a fresh host config screen into each of its states.
var hcStates = []struct {
	name string
	keys []string
	msg  tea.Msg
}{
	{name: "menu"},
	{name: "help", keys: []string{"?"}},
	{name: "global_host", keys: []string{"enter"}},
	{name: "global_https", keys: []string{"enter", "down", "down"}},
	{name: "global_passphrase", keys: []string{"enter", "down", "down", "down"}},
	{name: "global_save", keys: []string{"enter", "up"}},
	{name: "global_help", keys: []string{"enter", "f1"}},
	{name: "agent", keys: []string{"right", "enter"}},
	{name: "nat_toggle", keys: []string{"right", "right", "enter"}},
	{name: "logging_level", keys: []string{"right", "right", "right", "enter"}},
	{name: "confirm", msg: hcDoneMsg{part: partGlobal, untrust: wire.Fingerprint{0xde, 0xad}}},
}

func hcDrive(t *testing.T, o HostConfigOptions, keys []string, msg tea.Msg) *HostConfigModel {
	t.Helper()
	m := NewHostConfig(o)
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	for _, k := range keys {
		m.Update(pressKey(t, k))
	}
	if msg != nil {
		m.Update(msg)
	}
	return m
}

// Every key the host config screen's footer shows, in every state and on
// every kind of field, is one its dispatch runs.
func TestHostConfigFooterKeysWork(t *testing.T) {
	for _, c := range hcStates {
		t.Run(c.name, func(t *testing.T) {
			paths := hostconfig.PathsFor(filepath.Join(t.TempDir(), "etc", "host.conf"))
			m := hcDrive(t, HostConfigOptions{Paths: paths, Host: "mt01", NoColor: true}, c.keys, c.msg)
			footerKeysWork(t, c.name, m.keys())
		})
	}
}

// In read-only mode the host config screen's help lists save, register,
// toggle, level and typing as disabled with the reason; pressing them,
// typing or pasting shows the reason and writes nothing.
func TestHostConfigReadOnlyRefusesDangerousKeys(t *testing.T) {
	const reason = "read-only (--readonly)"
	var refused []string
	for _, c := range hcStates {
		if c.name == "help" || c.name == "global_help" || c.name == "menu" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			paths := hostconfig.PathsFor(filepath.Join(dir, "etc", "host.conf"))
			before := testutil.Tree(t, dir)
			m := hcDrive(t, HostConfigOptions{Paths: paths, Host: "mt01", NoColor: true, ReadOnly: true}, c.keys, c.msg)
			if !strings.Contains(hcText(t, m), "read-only: --readonly") {
				t.Errorf("%s: the header does not say read-only", c.name)
			}
			s := m.stateKeys()
			m.help = true
			help := hcText(t, m)
			m.help = false
			for i := range s.Bindings {
				b := &s.Bindings[i]
				if !b.Dangerous {
					continue
				}
				want := fmt.Sprintf("%-10s %s  (disabled: %s", labelOf(b), b.Help, reason)
				if !strings.Contains(help, want) {
					t.Errorf("%s: the help does not list %q:\n%s", c.name, want, help)
				}
				keys := b.Keys
				if len(keys) == 0 { // typing into a text field
					keys = []string{"x", "7", "space"}
				}
				for _, k := range keys {
					f := m.current()
					val, on, level, state := f.input.Value(), f.on, f.level, m.state
					m.status = ""
					_, cmd := m.Update(pressKey(t, k))
					settle(t, m, cmd)
					if !strings.HasPrefix(m.status, reason) || !m.statusErr {
						t.Errorf("%s: %q (%s): status %q, want the reason", c.name, k, b.Help, m.status)
					}
					if !strings.Contains(hcText(t, m), "✗ "+reason) {
						t.Errorf("%s: %q: the screen does not show the reason", c.name, k)
					}
					if f.input.Value() != val || f.on != on || f.level != level || m.state != state {
						t.Errorf("%s: %q (%s) changed the screen", c.name, k, b.Help)
					}
					refused = append(refused, b.Help)
				}
			}
			if f := m.current(); m.state == hcForm && f.kind == kindText {
				m.Update(tea.PasteMsg{Content: "pasted"})
				if f.input.Value() != "" && strings.Contains(f.input.Value(), "pasted") || !strings.HasPrefix(m.status, reason) {
					t.Errorf("%s: paste: %q, status %q", c.name, f.input.Value(), m.status)
				}
			}
			testutil.SameTree(t, dir, before)
		})
	}
	for _, want := range []string{"save", "trust and register", "toggle", "level", "edit the field"} {
		if !slices.Contains(refused, want) {
			t.Errorf("%q was never refused: %q", want, refused)
		}
	}
}

// A read-only session keeps no state file: changing the role, walking,
// starting afresh and quitting leave the root as it was.
func TestSetupReadOnlyKeepsNoState(t *testing.T) {
	fx := newSetupFx(t, "vmware-good", nil)
	fx.o.ReadOnly = true
	before := testutil.Tree(t, fx.root)
	m := fx.model(t, 100, 30)
	suPress(t, m, "2", "enter", "enter", "N", "q")
	if m.readOnly() != "--readonly" {
		t.Errorf("reason %q, want --readonly by default", m.readOnly())
	}
	if m.a.Role != setup.RoleMT || m.step != suRole {
		t.Errorf("N did not start afresh: role %v, step %d", m.a.Role, m.step)
	}
	testutil.SameTree(t, fx.root, before)
}
