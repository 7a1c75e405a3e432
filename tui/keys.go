package tui

import "charm.land/bubbles/v2/key"

// A key table per screen feeds the footer and the ? help. Keys that change
// something are built with action(): in read-only mode they are disabled,
// which both refuses them and drops them from the footer and the help.
// Every F-key has a letter twin: PuTTY and serial consoles lose F-keys.

func bind(help, desc string, keys ...string) key.Binding {
	return key.NewBinding(key.WithKeys(keys...), key.WithHelp(help, desc))
}

type globalKeys struct {
	Help, Quit, Back, Dashboard, Logs, Recover, Redraw key.Binding
}

type dashKeys struct {
	Up, Down, Detail, Sort, Filter key.Binding
}

type detailKeys struct {
	Tag, Pause key.Binding
}

type logsKeys struct {
	Up, Down, Follow, Filter, Level key.Binding
}

type wizardKeys struct {
	Up, Down, Toggle, All, Next, Prev key.Binding
}

type keyMap struct {
	Global globalKeys
	Dash   dashKeys
	Detail detailKeys
	Logs   logsKeys
	Wizard wizardKeys
}

func newKeyMap(readOnly bool) keyMap {
	k := keyMap{
		Global: globalKeys{
			Help:      bind("?/F1", "help", "?", "f1"),
			Quit:      bind("q/F10", "quit", "q", "f10", "ctrl+c"),
			Back:      bind("esc", "back", "esc"),
			Dashboard: bind("D/F2", "dashboard", "D", "f2"),
			Logs:      bind("L/F3", "logs", "L", "f3"),
			Recover:   bind("r/F5", "recover", "r", "f5"),
			Redraw:    bind("ctrl+l", "redraw", "ctrl+l"),
		},
		Dash: dashKeys{
			Up:     bind("↑/k", "up", "up", "k"),
			Down:   bind("↓/j", "down", "down", "j"),
			Detail: bind("enter", "detail", "enter"),
			Sort:   bind("s", "sort", "s"),
			Filter: bind("/", "filter", "/"),
		},
		Detail: detailKeys{
			Tag:   bind("t", "tag now", "t"),
			Pause: bind("p", "pause/resume", "p"),
		},
		Logs: logsKeys{
			Up:     bind("↑/k", "scroll", "up", "k", "pgup"),
			Down:   bind("↓/j", "scroll", "down", "j", "pgdown"),
			Follow: bind("f", "follow", "f"),
			Filter: bind("/", "filter", "/"),
			Level:  bind("l", "level", "l"),
		},
		Wizard: wizardKeys{
			Up:     bind("↑/k", "up", "up", "k"),
			Down:   bind("↓/j", "down", "down", "j"),
			Toggle: bind("space", "toggle", "space"),
			All:    bind("a", "all/none", "a"),
			Next:   bind("enter", "next", "enter"),
			Prev:   bind("esc", "previous step", "esc"),
		},
	}
	if readOnly {
		for _, b := range []*key.Binding{&k.Global.Recover, &k.Detail.Tag, &k.Detail.Pause} {
			b.SetEnabled(false)
		}
	}
	return k
}

// screenKeys is the table of a screen, its own keys first.
func (k keyMap) screenKeys(s screen) []key.Binding {
	g := k.Global
	var own []key.Binding
	switch s {
	case screenDashboard:
		own = []key.Binding{k.Dash.Up, k.Dash.Down, k.Dash.Detail, k.Dash.Sort, k.Dash.Filter, g.Recover, g.Logs}
	case screenDetail:
		own = []key.Binding{k.Detail.Tag, k.Detail.Pause, g.Recover, g.Back, g.Logs}
	case screenLogs:
		own = []key.Binding{k.Logs.Up, k.Logs.Down, k.Logs.Follow, k.Logs.Filter, k.Logs.Level, g.Back}
	case screenRecover:
		own = []key.Binding{k.Wizard.Up, k.Wizard.Down, k.Wizard.Toggle, k.Wizard.All, k.Wizard.Next, k.Wizard.Prev}
	}
	return append(own, g.Dashboard, g.Help, g.Quit, g.Redraw)
}

// enabled drops the disabled bindings.
func enabled(bs []key.Binding) []key.Binding {
	out := bs[:0:0]
	for _, b := range bs {
		if b.Enabled() {
			out = append(out, b)
		}
	}
	return out
}
