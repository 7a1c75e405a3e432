package tui

import (
	"fmt"
	"path/filepath"
	"strings"

	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/setup"
	"github.com/mtconsole/mtconsole/tui/action"
)

// The setup wizard's keys. One action.Set per state (the help, a small
// terminal, the retention field, a running job, a confirmation, each
// step) is the dispatch, the footer and the ? help: a key shown works, a
// key that works is listed, and a key refused (read-only, a dry run, a
// process server's step) says why instead of vanishing.

// key dispatches a key press through the current state's bindings; a key
// none of them has goes to the retention field while it is edited.
func (m *SetupModel) key(msg tea.KeyPressMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		m.saveState()
		return tea.Quit
	}
	m.pressed = msg.String()
	r := m.keys().Handle(msg)
	switch {
	case r.Refused != "":
		m.setNote(true, r.Refused)
		return nil
	case r.Handled:
		return r.Cmd
	case m.editing && !m.help && !m.small():
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return cmd
	}
	return nil
}

func (m *SetupModel) small() bool { return m.w < MinWidth || m.h < MinHeight }

// readOnly is why the session may change nothing, or "".
func (m *SetupModel) readOnly() string {
	if m.o.ReadOnly {
		return m.o.ReadOnlyReason
	}
	return ""
}

// keys are the bindings of what is on screen now.
func (m *SetupModel) keys() action.Set {
	switch {
	case m.help:
		return action.Set{ReadOnly: m.readOnly(), Bindings: []action.Binding{
			{Keys: []string{"?", "f1", "esc", "b"}, Label: "?/esc", Help: "close help", Pin: true,
				Run: func() tea.Cmd { m.help = false; return nil }},
			m.quitKey(),
			{Keys: moveKeys, Label: "↑↓", Help: "scroll", NoFooter: true,
				Run: func() tea.Cmd { m.helpOff = max(m.helpOff+moveBy(m.pressed), 0); return nil }},
		}}
	case m.small():
		return action.Set{Bindings: []action.Binding{m.quitKey()}}
	}
	return m.stateKeys()
}

// moveKeys move a selection or scroll; moveBy is how far the key moves.
var moveKeys = []string{"up", "k", "down", "j", "pgup", "pgdown"}

func moveBy(k string) int {
	switch k {
	case "up", "k":
		return -1
	case "pgup":
		return -10
	case "pgdown":
		return 10
	}
	return 1
}

func (m *SetupModel) quitKey() action.Binding {
	return action.Binding{Keys: []string{"q", "f10"}, Label: "q/F10", Help: "quit", Pin: true,
		Run: func() tea.Cmd { m.saveState(); return tea.Quit }}
}

func (m *SetupModel) helpKey() action.Binding {
	return action.Binding{Keys: []string{"?", "f1"}, Label: "?/F1", Help: "help", Pin: true,
		Run: func() tea.Cmd { m.help, m.helpOff = true, 0; return nil }}
}

// stateKeys are the bindings of the screen under the help: the ? help
// lists them.
func (m *SetupModel) stateKeys() action.Set {
	s := action.Set{ReadOnly: m.readOnly()}
	switch j := m.job; {
	case m.editing:
		// The field takes every printable key: help and quit are the
		// F-keys here.
		s.Bindings = []action.Binding{
			{Keys: []string{"enter"}, Help: "done", Run: m.editDone},
			{Keys: []string{"esc"}, Help: "cancel", Run: func() tea.Cmd { m.editing = false; m.input.Blur(); return nil }},
			{Keys: []string{"ctrl+u"}, Help: "clear", Run: func() tea.Cmd { m.input.SetValue(""); return nil }},
			{Keys: []string{"f1"}, Label: "F1", Help: "help", Pin: true, Run: m.helpKey().Run},
			{Keys: []string{"f10"}, Label: "F10", Help: "quit", Pin: true, Run: m.quitKey().Run},
		}
	case j != nil && j.running:
		quit := m.quitKey()
		quit.Disabled = func() string { return j.title + " is running: x cancels it first" }
		s.Bindings = []action.Binding{
			{Keys: []string{"x", "esc"}, Label: "x", Help: "cancel",
				Run: func() tea.Cmd { j.cancel(); j.add("cancelling…"); return nil }},
			m.helpKey(), quit,
		}
	case m.confirm != "":
		what := map[string]string{"custom-apply": "apply these changes", "custom-revert": "revert", "install": "apply the plan"}[m.confirm]
		if m.confirm == "install" && m.dry() {
			what = "show the dry run"
		}
		s.Bindings = []action.Binding{
			{Keys: []string{"y", "Y"}, Help: what, Dangerous: true, Run: m.confirmed},
			{Keys: []string{"n", "N", "esc", "b"}, Label: "n/esc", Help: "cancel", Run: func() tea.Cmd {
				m.confirm = ""
				m.setNote(false, "cancelled: nothing was changed")
				return nil
			}},
			{Keys: moveKeys, Label: "↑↓", Help: "scroll", Run: func() tea.Cmd {
				m.off[m.step] = max(m.off[m.step]+moveBy(m.pressed), 0)
				return nil
			}},
			m.helpKey(), m.quitKey(),
		}
	default:
		if m.step < suSummary {
			s.Bindings = append(s.Bindings, action.Binding{Keys: []string{"enter", "n"}, Label: "enter", Help: "next", Run: m.next})
		}
		s.Bindings = append(s.Bindings, m.stepKeys()...)
		if m.step > suRole {
			s.Bindings = append(s.Bindings, action.Binding{Keys: []string{"esc", "b"}, Label: "esc", Help: "back", Run: m.back})
		}
		s.Bindings = append(s.Bindings,
			action.Binding{Keys: []string{"N"}, Help: "start afresh", NoFooter: true, Run: m.startOver},
			action.Binding{Keys: []string{"ctrl+l"}, Help: "redraw", NoFooter: true, Run: func() tea.Cmd { return tea.ClearScreen }},
			m.helpKey(), m.quitKey())
	}
	return s
}

// stepKeys are the current step's own bindings.
func (m *SetupModel) stepKeys() []action.Binding {
	step := m.step
	notNeeded := func() string {
		if m.skipped(step) {
			return "not needed for a process server"
		}
		return ""
	}
	move := func(help string) action.Binding {
		return action.Binding{Keys: moveKeys, Label: "↑↓", Help: help, Disabled: notNeeded,
			Run: func() tea.Cmd { m.move(moveBy(m.pressed)); return nil }}
	}
	recheck := func(help string, run func() tea.Cmd) action.Binding {
		return action.Binding{Keys: []string{"r", "f5"}, Label: "r/F5", Help: help, Disabled: notNeeded, Run: run}
	}
	switch step {
	case suRole:
		return []action.Binding{
			{Keys: []string{"up", "k", "1", "down", "j", "2"}, Label: "↑↓/1/2", Help: "role", Run: func() tea.Cmd {
				switch m.pressed {
				case "up", "k", "1":
					return m.setRole(setup.RoleMT)
				}
				return m.setRole(setup.RolePS)
			}},
			{Keys: []string{"space"}, Help: "switch role", NoFooter: true, Run: func() tea.Cmd {
				if m.a.Role == setup.RoleMT {
					return m.setRole(setup.RolePS)
				}
				return m.setRole(setup.RoleMT)
			}},
		}
	case suPrereq:
		return []action.Binding{
			{Keys: []string{"f"}, Help: "fix: install missing", Dangerous: true, Run: m.fixPackages},
			{Keys: []string{"i"}, Help: "install at apply", Dangerous: true, Run: func() tea.Cmd {
				m.a.Prerequisites.InstallPackages = !m.a.Prerequisites.InstallPackages
				m.setNote(false, "install missing packages when applying: "+units.YesNo(m.a.Prerequisites.InstallPackages))
				return m.answersChanged()
			}},
			recheck("re-check", func() tea.Cmd { m.job = nil; return m.answersChanged(suPrereq) }),
			move("check"),
		}
	case suDisks:
		return []action.Binding{
			{Keys: []string{"e"}, Help: "retention dir", Dangerous: true, Disabled: notNeeded, Run: func() tea.Cmd {
				m.editing = true
				m.input.SetValue(m.a.Disks.Retention)
				m.input.CursorEnd()
				return m.input.Focus()
			}},
			recheck("re-check", func() tea.Cmd { return m.answersChanged(suDisks) }),
			move("check"),
		}
	case suCustom:
		return []action.Binding{
			{Keys: []string{"a"}, Help: "apply…", Dangerous: true, Disabled: notNeeded, Run: func() tea.Cmd {
				if len(m.preview) == 0 && m.customErr == "" {
					m.setNote(false, "every custom change is applied: nothing to do")
					return nil
				}
				m.confirm, m.off[suCustom] = "custom-apply", 0
				return nil
			}},
			{Keys: []string{"v"}, Help: "revert…", Dangerous: true, Disabled: notNeeded,
				Run: func() tea.Cmd { m.confirm = "custom-revert"; return nil }},
			{Keys: []string{"t"}, Help: "apply at install", Dangerous: true, Disabled: notNeeded, Run: func() tea.Cmd {
				m.a.CustomChanges.Apply = !m.a.CustomChanges.Apply
				m.setNote(false, "apply the custom changes when installing: "+units.YesNo(m.a.CustomChanges.Apply))
				return m.answersChanged()
			}},
			move("change"),
			func() action.Binding { b := recheck("reload", m.loadCustom); b.NoFooter = true; return b }(),
		}
	case suCS:
		return []action.Binding{
			{Keys: []string{"o"}, Help: "host config screen", Dangerous: true, Disabled: func() string {
				if m.dry() {
					// Its saves and registrations do not go through the
					// Executor: closed, not half a dry run.
					return "not in a dry run: run mtconsole setup without --dry-run to open it"
				}
				return ""
			}, Run: m.openHostConfig},
		}
	case suVSphere:
		return []action.Binding{
			{Keys: []string{"s"}, Help: "skip", Run: func() tea.Cmd {
				m.vsSkipped = !m.vsSkipped
				m.saveState()
				if !m.vsSkipped {
					return m.enter()
				}
				return nil
			}},
			{Keys: []string{"r", "f5"}, Label: "r/F5", Help: "run checks", Disabled: func() string {
				switch {
				case m.a.VSphere == nil:
					return "no vsphere section in the answers"
				case m.o.VSphere == nil:
					return "this build cannot reach vSphere from the wizard"
				}
				return ""
			}, Run: func() tea.Cmd { m.vsSkipped = false; return m.runVSphere() }},
			func() action.Binding { b := move("check"); b.NoFooter = true; return b }(),
		}
	case suSummary:
		apply := "apply…"
		if m.dry() {
			apply = "dry run…"
		}
		return []action.Binding{
			{Keys: []string{"a", "enter"}, Label: "a", Help: apply, Dangerous: true, Run: m.askInstall},
			{Keys: []string{"r", "f5"}, Label: "r/F5", Help: "plan again", NoFooter: true,
				Run: func() tea.Cmd { m.review = nil; return m.buildReview() }},
			m.protectKey(),
			move("scroll"),
		}
	}
	return nil
}

// openHostConfig opens the host config screen over the wizard; q there
// comes back.
func (m *SetupModel) openHostConfig() tea.Cmd {
	o := HostConfigOptions{Paths: m.o.HostConfig, Version: m.o.Version, SysRoot: m.o.Root, Host: m.o.Host, NoColor: m.o.NoColor,
		ReadOnly: m.o.ReadOnly, ReadOnlyReason: m.o.ReadOnlyReason}
	m.hcm = NewHostConfig(o)
	m.hcm.Update(tea.WindowSizeMsg{Width: m.w, Height: m.h})
	return nil
}

// editDone takes the retention directory typed.
func (m *SetupModel) editDone() tea.Cmd {
	v := filepath.Clean(strings.TrimSpace(m.input.Value()))
	if !filepath.IsAbs(v) {
		m.setNote(true, fmt.Sprintf("%q is not an absolute path (disks.retention)", m.input.Value()))
		return nil
	}
	m.editing = false
	m.input.Blur()
	if v == m.a.Disks.Retention {
		return nil
	}
	m.a.Disks.Retention = v
	m.setNote(false, "retention directory: "+v)
	return m.answersChanged(suDisks)
}

// footer is the keys of what is on screen.
func (m *SetupModel) footer() string { return m.keys().Footer(m.w, m.st.Key) }

// helpLines are the ? help: the keys of the screen under it (a refused
// one with its reason), then what the wizard does.
func (m *SetupModel) helpLines(w int) []string {
	what := fmt.Sprintf("Step %d · %s", m.step+1, suNames[m.step])
	switch j := m.job; {
	case m.editing:
		what = "the retention directory field"
	case j != nil && j.running:
		what = j.title
	case m.confirm != "":
		what += ", confirming"
	}
	out := []string{cut(" Keys now ("+what+"):", w)}
	if ro := m.readOnly(); ro != "" {
		out = append(out, wrap(" ", "Read-only ("+ro+"): the keys that change something are listed disabled, and refused.", w)...)
	}
	out = append(out, m.stateKeys().HelpLines(w, m.st.Dim)...)
	out = append(out, "")
	for _, l := range []string{
		"The setup wizard walks the steps of a master target's (or a process server's)",
		"setup: Role → Prerequisites → Disks → Custom changes → Configuration server →",
		"vSphere (optional) → Summary. The checks only look; nothing changes until an",
		"action you confirm: f installs missing packages, a applies the custom changes",
		"after showing every file and line, the summary's a applies the install plan",
		"after listing each change. Their output streams here and into the setup log",
		"(" + SetupLog + "); x cancels a running one.",
		"--dry-run makes the whole session a dry run (no key turns it off): f, a, v and",
		"the install show what they would run and write, and change nothing; no state",
		"file or log is kept, and the host config screen stays closed.",
		"A dropped SSH session loses nothing: mtconsole setup reopens at its step, with",
		"its answers (" + StateFile + ").",
	} {
		out = append(out, cut(" "+l, w))
	}
	return out
}

// protectKey is p on the summary: with a Protector, "protect now" opens
// the Protect screen; without one it says how to protect a machine.
func (m *SetupModel) protectKey() action.Binding {
	if m.o.Protector != nil {
		return action.Binding{Keys: []string{"p"}, Help: "protect now", Dangerous: true, Disabled: m.protectHintDisabled, Run: m.openProtect}
	}
	return action.Binding{Keys: []string{"p"}, Help: "how to protect a machine", Disabled: m.protectHintDisabled,
		Run: func() tea.Cmd { m.protectHint = !m.protectHint; return nil }}
}
