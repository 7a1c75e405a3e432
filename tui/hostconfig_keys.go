package tui

import (
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/tui/action"
)

// The host config screen's keys: one action.Set per state (the help, the
// drscout.conf offer, the certificate question, the menu, a form and its
// focused field) is the dispatch, the footer and the ? help.

// key dispatches a key press through the current state's bindings; in a
// form, a key none of them has goes to the focused text field.
func (m *HostConfigModel) key(msg tea.KeyPressMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	m.pressed = msg.String()
	s := m.keys()
	r := s.Handle(msg)
	switch {
	case r.Refused != "":
		m.status, m.statusErr = r.Refused, true
		return nil
	case r.Handled:
		return r.Cmd
	case m.help:
		m.help = false // any key closes the help
		return nil
	}
	if f := m.current(); m.state == hcForm && f != nil && f.kind == kindText {
		if why := s.Reason(m.editBinding()); why != "" {
			m.status, m.statusErr = why, true
			return nil
		}
		var cmd tea.Cmd
		f.input, cmd = f.input.Update(msg)
		f.err = ""
		return cmd
	}
	return nil
}

func (m *HostConfigModel) readOnly() string {
	if m.o.ReadOnly {
		return m.o.ReadOnlyReason
	}
	return ""
}

// editBinding documents typing into a text field: the field takes the
// keys itself, so it has none here, but read-only mode refuses it.
func (m *HostConfigModel) editBinding() *action.Binding {
	return &action.Binding{Label: "type", Help: "edit the field", Dangerous: true, NoFooter: true}
}

// keys are the bindings of what is on screen now.
func (m *HostConfigModel) keys() action.Set {
	if m.help {
		return action.Set{Bindings: []action.Binding{
			{Keys: []string{"esc", "?", "f1", "q", "enter", "space"}, Label: "any key", Help: "close help",
				Run: func() tea.Cmd { m.help = false; return nil }},
		}}
	}
	return m.stateKeys()
}

// stateKeys are the bindings of the screen under the help.
func (m *HostConfigModel) stateKeys() action.Set {
	s := action.Set{ReadOnly: m.readOnly()}
	switch m.state {
	case hcBusy:
		// nothing until the save's outcome (ctrl+c quits)
	case hcImport:
		s.Bindings = []action.Binding{
			{Keys: []string{"y", "Y"}, Help: "import", Run: m.importOffer},
			{Keys: []string{"n", "N", "esc"}, Label: "n", Help: "keep this host's settings", Run: func() tea.Cmd {
				m.offer, m.state, m.status, m.statusErr = nil, hcMenu, "not imported", false
				return nil
			}},
		}
	case hcConfirm:
		s.Bindings = []action.Binding{
			{Keys: []string{"y", "Y"}, Help: "trust and register", Dangerous: true, Run: func() tea.Cmd {
				m.confirmed = m.confirmFP
				return m.save(partGlobal)
			}},
			{Keys: []string{"n", "N", "esc"}, Label: "n", Help: "refuse", Run: func() tea.Cmd {
				m.state, m.status, m.statusErr = hcForm, "certificate not trusted: nothing was saved", true
				return nil
			}},
		}
	case hcMenu:
		s.Bindings = []action.Binding{
			{Keys: []string{"left", "h", "shift+tab", "right", "l", "tab"}, Label: "←/→", Help: "choose", Run: func() tea.Cmd {
				switch m.pressed {
				case "left", "h", "shift+tab":
					m.part = (m.part + len(hcParts) - 1) % len(hcParts)
				default:
					m.part = (m.part + 1) % len(hcParts)
				}
				return nil
			}},
			{Keys: []string{"enter"}, Help: "open", Run: func() tea.Cmd {
				if m.part == partQuit {
					return tea.Quit
				}
				m.state, m.focus, m.status = hcForm, 0, ""
				return m.focusCmd()
			}},
			{Keys: []string{"?", "f1"}, Label: "?/F1", Help: "help", Pin: true, Run: m.openHelp},
			{Keys: []string{"q", "f10"}, Label: "q/F10", Help: "quit", Pin: true, Run: func() tea.Cmd { return tea.Quit }},
		}
	case hcForm:
		s.Bindings = m.formKeys()
	}
	return s
}

func (m *HostConfigModel) openHelp() tea.Cmd { m.help = true; return nil }

// formKeys are a form's bindings for its focused field.
func (m *HostConfigModel) formKeys() []action.Binding {
	f := m.current()
	if f == nil {
		return nil
	}
	move := []string{"down", "tab", "up", "shift+tab"}
	save := []string{"ctrl+s"}
	help := []string{"f1"}
	if f.kind == kindButton {
		save = append(save, "enter", "space")
	} else {
		move = append(move, "enter")
	}
	if f.kind != kindText {
		help = append(help, "?")
	}
	bs := []action.Binding{{Keys: move, Label: "↑/↓", Help: "field", Run: func() tea.Cmd {
		if m.pressed == "up" || m.pressed == "shift+tab" {
			m.move(-1)
		} else {
			m.move(1)
		}
		return m.focusCmd()
	}}}
	switch f.kind {
	case kindToggle:
		bs = append(bs, action.Binding{Keys: []string{"space", "left", "right", "y", "n"}, Label: "space", Help: "toggle", Dangerous: true,
			Run: func() tea.Cmd {
				switch m.pressed {
				case "y", "n":
					f.on = m.pressed == "y"
				default:
					f.on = !f.on
				}
				f.err = ""
				return nil
			}})
	case kindLevel:
		bs = append(bs, action.Binding{Keys: []string{"left", "-", "right", "+"}, Label: "←/→", Help: "level", Dangerous: true,
			Run: func() tea.Cmd {
				if m.pressed == "left" || m.pressed == "-" {
					f.level = max(0, f.level-1)
				} else {
					f.level = min(f.max, f.level+1)
				}
				return nil
			}})
	case kindText:
		bs = append(bs, *m.editBinding())
	}
	return append(bs,
		action.Binding{Keys: save, Label: "ctrl+s", Help: "save", Dangerous: true, Run: func() tea.Cmd { return m.save(m.part) }},
		action.Binding{Keys: help, Label: "F1", Help: "help", Run: m.openHelp},
		action.Binding{Keys: []string{"esc"}, Help: "back", Run: func() tea.Cmd {
			m.state = hcMenu
			m.blurAll()
			return nil
		}},
	)
}

// footer is the keys of what is on screen.
func (m *HostConfigModel) footer() string {
	if !m.help && m.state == hcBusy {
		return " working…"
	}
	return m.keys().Footer(m.w, m.st.Key)
}
