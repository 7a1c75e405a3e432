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

// Move, Scroll and Page only name keys in the footer and the help: the
// screens match Up and Down, which hold the same keys.
type dashKeys struct {
	Move, Up, Down, Detail, Sort, Filter, Clear, TagAll key.Binding
}

type detailKeys struct {
	Tag, Pause key.Binding
}

type logsKeys struct {
	Scroll, Page, Up, Down, Follow, Filter, Level key.Binding
}

type wizardKeys struct {
	Move, Up, Down, Toggle, All, Next, Prev, Edit, VSphere key.Binding
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
			Move:   bind("↑↓/jk", "move", "up", "down", "k", "j"),
			Up:     bind("↑/k", "up", "up", "k"),
			Down:   bind("↓/j", "down", "down", "j"),
			Detail: bind("enter", "detail", "enter"),
			Sort:   bind("s", "sort", "s"),
			Filter: bind("/", "filter", "/"),
			Clear:  bind("esc", "clear filter", "esc"),
			TagAll: bind("t", "tag all", "t"),
		},
		Detail: detailKeys{
			Tag:   bind("t", "tag now", "t"),
			Pause: bind("p", "pause/resume", "p"),
		},
		Logs: logsKeys{
			Scroll: bind("↑↓/jk", "scroll", "up", "down", "k", "j"),
			Page:   bind("pgup/pgdn", "page", "pgup", "pgdown"),
			Up:     bind("↑/k", "scroll", "up", "k", "pgup"),
			Down:   bind("↓/j", "scroll", "down", "j", "pgdown"),
			Follow: bind("f", "follow", "f"),
			Filter: bind("/", "filter", "/"),
			Level:  bind("l", "level", "l"),
		},
		Wizard: wizardKeys{
			Move:   bind("↑↓/jk", "move", "up", "down", "k", "j"),
			Up:     bind("↑/k", "up", "up", "k"),
			Down:   bind("↓/j", "down", "down", "j"),
			Toggle: bind("space", "toggle", "space"),
			All:    bind("a", "all/none", "a"),
			Next:   bind("enter", "next", "enter"),
			Prev:   bind("esc", "back", "esc"),
			// Into the field under the cursor (the time, the export
			// path); ↑, shift+tab or esc come back out.
			Edit: bind("tab", "edit", "tab"),
			// Shown on the rollback's result, not in the footer.
			VSphere: bind("v", "failback VM", "v"),
		},
	}
	if readOnly {
		for _, b := range []*key.Binding{&k.Global.Recover, &k.Detail.Tag, &k.Detail.Pause, &k.Dash.TagAll} {
			b.SetEnabled(false)
		}
	}
	return k
}

// screenKeys is the table of a screen, every key that works on it, most
// useful first: the footer shows as many as fit in this order, then help
// and quit, which always show.
func (k keyMap) screenKeys(s screen) []key.Binding {
	g := k.Global
	var own []key.Binding
	switch s {
	case screenDashboard:
		own = []key.Binding{k.Dash.Detail, g.Recover, k.Dash.TagAll, g.Logs, k.Dash.Filter, k.Dash.Sort, k.Dash.Move, k.Dash.Clear}
	case screenDetail:
		own = []key.Binding{k.Detail.Tag, k.Detail.Pause, g.Recover, g.Logs, g.Back, g.Dashboard}
	case screenLogs:
		own = []key.Binding{k.Logs.Scroll, k.Logs.Follow, k.Logs.Filter, k.Logs.Level, g.Back, g.Recover, k.Logs.Page, g.Dashboard}
	case screenRecover:
		own = []key.Binding{k.Wizard.Move, k.Wizard.Toggle, k.Wizard.All, k.Wizard.Next, k.Wizard.Prev, k.Wizard.Edit, g.Logs, g.Dashboard}
	}
	return append(own, g.Redraw, g.Help, g.Quit)
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
