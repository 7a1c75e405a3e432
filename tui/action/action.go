// Package action is the one key model of every console screen, in the
// style of k9s and lazygit: a screen lists what its user can do now as
// Bindings (the keys, the help text, whether it changes something, why it
// cannot be used now, and what it does), and this package dispatches a key
// press to them and draws the footer and the ? help from the same list.
//
// What it promises:
//
//   - One list per screen and state feeds dispatch, footer and help, so a
//     key that works is shown and a key that is shown works.
//   - A Dangerous binding (it changes the host, a pair or a disk) is
//     refused in read-only mode on every screen: pressed, it runs nothing
//     and its reason is returned for the footer; in the help it stays
//     listed, marked "(disabled: read-only (REASON))", short enough for
//     80 columns.
//   - A binding whose Disabled func returns a reason is refused the same
//     way: it never silently disappears from the help.
//   - The footer fits its width: the pinned bindings (help, quit) always
//     show, the others in list order as long as they fit; disabled ones,
//     pinned or not, are left to the help. F-key twins are left to the help too ("r/F5" shows
//     as "r"), so the letters fit 80 columns.
package action

import (
	"fmt"
	"slices"
	"strings"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

// A Binding is one thing a screen lets its user do.
type Binding struct {
	// Keys are the key presses that trigger it, as tea.KeyPressMsg's
	// String gives them: "r", "f5", "ctrl+s", "enter", "space".
	Keys []string
	// Label is the keys as shown: "r/F5". Empty: the first key.
	Label string
	// Help says what it does, in a few words: "recover".
	Help string
	// Dangerous marks a binding that changes something (the host, a pair,
	// a disk, a file): refused in read-only mode.
	Dangerous bool
	// Disabled, when set and returning a reason, refuses the binding now
	// and says why (in the help, and in the footer when pressed).
	Disabled func() string
	// NoFooter leaves it to the help (moves, twins, rarely used keys).
	NoFooter bool
	// Pin keeps it in the footer whatever the width (help and quit),
	// after the others, unless it is refused now.
	Pin bool
	// Run is what it does. Nil (and no RunKey): the binding only documents
	// keys a screen handles itself (a text field).
	Run func() tea.Cmd
	// RunKey, instead of Run, is given the key pressed: one entry for keys
	// that differ in direction (a list's ↑↓/jk, pgup/pgdn).
	RunKey func(msg tea.KeyPressMsg) tea.Cmd
	// What names the change in the read-only refusal where Help does not
	// say it ("start the recovery" for an "enter next"). Empty: Help.
	What string
}

// Matches reports whether the key press is one of b's keys.
func (b *Binding) Matches(msg tea.KeyPressMsg) bool {
	return slices.Contains(b.Keys, msg.String())
}

func (b *Binding) label() string {
	if b.Label != "" {
		return b.Label
	}
	if len(b.Keys) > 0 {
		return b.Keys[0]
	}
	return ""
}

// short drops an F-key twin: "r/F5" → "r", "?/F1" → "?".
func short(k string) string {
	if i := strings.Index(k, "/F"); i > 0 {
		return k[:i]
	}
	return k
}

// A Set is the bindings of a screen in its current state, most useful
// first, and the mode they run in.
type Set struct {
	Bindings []Binding
	// ReadOnly, when not empty, is why the console is read-only ("not
	// root", "--readonly"): every Dangerous binding is refused.
	ReadOnly string
}

// Reason says why b is refused now, or "" when it may run.
func (s Set) Reason(b *Binding) string {
	if b.Dangerous && s.ReadOnly != "" {
		what := b.What
		if what == "" {
			what = b.Help
		}
		return "read-only (" + s.ReadOnly + "): \"" + what + "\" would change something"
	}
	if b.Disabled != nil {
		return b.Disabled()
	}
	return ""
}

// Result is what Handle did with a key press.
type Result struct {
	// Handled: one of the bindings has this key (it ran, or it was
	// refused). Not handled: the screen may use the key itself.
	Handled bool
	// Cmd is what the binding's Run returned.
	Cmd tea.Cmd
	// Refused is the reason the binding did not run, for the footer.
	Refused string
}

// Handle runs the first binding that has the key, unless it is refused.
// A binding without Run is not handled here: the screen handles the key.
func (s Set) Handle(msg tea.KeyPressMsg) Result {
	for i := range s.Bindings {
		b := &s.Bindings[i]
		if !b.Matches(msg) {
			continue
		}
		if why := s.Reason(b); why != "" {
			return Result{Handled: true, Refused: why}
		}
		switch {
		case b.RunKey != nil:
			return Result{Handled: true, Cmd: b.RunKey(msg)}
		case b.Run != nil:
			return Result{Handled: true, Cmd: b.Run()}
		}
		return Result{}
	}
	return Result{}
}

// Footer draws the key line at width w: as many of the usable bindings as
// fit, in order, then the pinned ones. keyStyle draws the keys.
func (s Set) Footer(w int, keyStyle lipgloss.Style) string {
	var b strings.Builder
	b.WriteByte(' ')
	for _, x := range s.Shown(w) {
		b.WriteString(keyStyle.Render(short(x.label())))
		b.WriteString(" " + x.Help + "  ")
	}
	return strings.TrimRight(b.String(), " ")
}

// Shown is the bindings Footer draws at width w, in its order: the usable
// ones that fit, then the usable pinned ones.
func (s Set) Shown(w int) []*Binding {
	entry := func(b *Binding) string { return short(b.label()) + " " + b.Help }
	room := w - 1 + 2 // the leading space; the last gap is trimmed
	var pinned, out []*Binding
	for i := range s.Bindings {
		if b := &s.Bindings[i]; b.Pin && s.Reason(b) == "" {
			pinned = append(pinned, b)
			room -= ansi.StringWidth(entry(b)) + 2
		}
	}
	for i := range s.Bindings {
		x := &s.Bindings[i]
		if x.Pin || x.NoFooter || s.Reason(x) != "" || x.Help == "" {
			continue
		}
		if n := ansi.StringWidth(entry(x)) + 2; n <= room {
			room -= n
			out = append(out, x)
		}
	}
	return append(out, pinned...)
}

// HelpLines lists every binding with its keys and help, a refused one
// marked "(disabled: reason)", each line cut to width w.
func (s Set) HelpLines(w int, dim lipgloss.Style) []string {
	var out []string
	for i := range s.Bindings {
		b := &s.Bindings[i]
		if b.Help == "" {
			continue
		}
		line := fmt.Sprintf("   %-10s %s", b.label(), b.Help)
		why := s.Reason(b)
		if b.Dangerous && s.ReadOnly != "" {
			// The line names the binding already: the short reason
			// fits 80 columns (the footer says the long one).
			why = "read-only (" + s.ReadOnly + ")"
		}
		if why != "" {
			line = dim.Render(ansi.Truncate(line+"  (disabled: "+why+")", w, "…"))
		} else {
			line = ansi.Truncate(line, w, "…")
		}
		out = append(out, line)
	}
	return out
}

// Find returns the binding with this help text, or nil: screens and tests
// name a binding by what it does.
func (s Set) Find(help string) *Binding {
	for i := range s.Bindings {
		if s.Bindings[i].Help == help {
			return &s.Bindings[i]
		}
	}
	return nil
}
