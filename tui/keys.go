package tui

import (
	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/tui/action"
)

// The root console's keys are tui/action bindings: each page lists its
// own for the state it is in, the root adds redraw, help and quit, and
// the same Set dispatches a key, draws the footer and lists the ? help.
// A Dangerous binding is refused in read-only mode with its reason in the
// footer, and listed in the help as disabled. Every F-key has a letter
// twin: PuTTY and serial consoles lose F-keys.

// page is one screen of the root console, as crush splits its pages: its
// own state, the bindings of the state it is in, what it does with a key
// no binding takes and with its own messages, and its drawing. The root
// Model keeps what the pages share (the agent's status, events, tags and
// jobs, the footer's note, the global keys) and passes itself in.
type page interface {
	// keys are the page's bindings now, most useful first: the footer
	// shows as many as fit in this order.
	keys(m *Model) []action.Binding
	// update takes a key press no binding took, and the page's messages.
	update(m *Model, msg tea.Msg) tea.Cmd
	// view draws the page's body in w x h.
	view(m *Model, w, h int) string
	// focused is the page's text field that has the keyboard, if any.
	focused() *textinput.Model
}

// page is the page shown.
func (m *Model) page() page {
	switch m.screen {
	case screenDetail:
		return &m.detail
	case screenLogs:
		return &m.logs
	case screenRecover:
		return &m.wiz
	case screenProtect:
		return &m.prot
	case screenUnprotect:
		return &m.unprot
	case screenFailback:
		return &m.fb
	}
	return &m.dash
}

// globalKeys are the bindings every page may list.
type globalKeys struct {
	Help, Quit, Dashboard, Logs, Recover, Redraw action.Binding
}

func (m *Model) globalKeys() globalKeys {
	return globalKeys{
		Help: action.Binding{Keys: []string{"?", "f1"}, Label: "?/F1", Help: "help", Pin: true,
			Run: func() tea.Cmd { m.help = true; return nil }},
		Quit: action.Binding{Keys: []string{"q", "f10", "ctrl+c"}, Label: "q/F10", Help: "quit", Pin: true,
			Disabled: func() string {
				if m.fb.running() {
					// Quitting would cut the run between two of its steps.
					return "a failback run is under way: q waits for its report (ctrl+c cuts it)"
				}
				return ""
			},
			Run: func() tea.Cmd { return tea.Quit }},
		Dashboard: action.Binding{Keys: []string{"D", "f2"}, Label: "D/F2", Help: "dashboard",
			Run: func() tea.Cmd { m.screen = screenDashboard; return nil }},
		Logs: action.Binding{Keys: []string{"L", "f3"}, Label: "L/F3", Help: "logs",
			Run: func() tea.Cmd { m.screen = screenLogs; return nil }},
		Recover: action.Binding{Keys: []string{"r", "f5"}, Label: "r/F5", Help: "recover", Dangerous: true,
			Run: m.recoverHere},
		Redraw: action.Binding{Keys: []string{"ctrl+l"}, Help: "redraw",
			Run: func() tea.Cmd { return tea.ClearScreen }},
	}
}

// recoverHere opens the wizard with one pair chosen, the one in view: the
// detail's, else the dashboard's selected. Pairs tagged one by one share
// no point, so choosing them all would only fail the readiness check;
// step 1 adds the others. On a machine's header it chooses the machine.
func (m *Model) recoverHere() tea.Cmd {
	if g := m.selectedGroup(); g != "" && m.screen != screenDetail {
		return m.openGroupWizard(g)
	}
	var pairs []string
	if m.screen == screenDetail {
		pairs = []string{m.detail.pair}
	} else if p := m.selected(); p != nil {
		pairs = []string{p.ID}
	}
	return m.openWizard(pairs)
}

// readOnly is why the console is read-only, "" when it is not.
func (m *Model) readOnly() string {
	if !m.o.ReadOnly {
		return ""
	}
	if m.o.ReadOnlyReason == "" {
		return "--readonly"
	}
	return m.o.ReadOnlyReason
}

// keySet is what can be done on the screen shown: the page's bindings,
// then redraw, help and quit.
func (m *Model) keySet() action.Set {
	g := m.globalKeys()
	return action.Set{ReadOnly: m.readOnly(),
		Bindings: append(m.page().keys(m), g.Redraw, g.Help, g.Quit)}
}

// helpKeys are the keys while the help is shown.
func (m *Model) helpKeys() action.Set {
	return action.Set{ReadOnly: m.readOnly(), Bindings: []action.Binding{
		{Keys: []string{"?", "f1", "esc"}, Label: "?/esc", Help: "close help", Pin: true,
			Run: func() tea.Cmd { m.help = false; return nil }},
		m.globalKeys().Quit,
	}}
}

// refuse refuses a change that a typed confirmation or a prompt would
// start, in read-only mode, as a Dangerous binding is refused: the reason
// goes to the footer. It reports whether it refused.
func (m *Model) refuse(what string) bool {
	why := action.Set{ReadOnly: m.readOnly()}.Reason(&action.Binding{Help: what, Dangerous: true})
	if why != "" {
		m.setNote(true, why)
	}
	return why != ""
}

// moveKey is a list's ↑↓/jk: one entry, told the direction (-1 up, +1
// down).
func moveKey(help string, move func(delta int) tea.Cmd) action.Binding {
	return action.Binding{Keys: []string{"up", "down", "k", "j"}, Label: "↑↓/jk", Help: help,
		RunKey: func(msg tea.KeyPressMsg) tea.Cmd {
			if s := msg.String(); s == "up" || s == "k" {
				return move(-1)
			}
			return move(1)
		}}
}

// escKey is a page's esc.
func escKey(help string, run func() tea.Cmd) action.Binding {
	return action.Binding{Keys: []string{"esc"}, Help: help, Run: run}
}

// bind is a bubbles key binding, for the host config screen's table until
// it moves onto tui/action too.
func bind(help, desc string, keys ...string) key.Binding {
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
}
