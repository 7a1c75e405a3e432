package tui

import (
	"strings"
)

// helpView lists the screen's keys, from the same Set as the footer: a
// key refused now (read-only, or not usable in this state) is listed,
// marked disabled with the reason.
func (m *Model) helpView(w, h int) string {
	out := []string{m.st.Bold.Render(" Keys on this screen"), ""}
	out = append(out, m.keySet().HelpLines(w, m.st.Dim)...)
	out = append(out, "")
	out = append(out, wrap(" ", "In a text field every key typed is text, j, k, q and ? too: enter done · esc cancel · ctrl+u clears the field · the terminal's paste works "+
		"(ctrl+v does not: it would read the server's clipboard).", w)...)
	out = append(out, "")
	if ro := m.readOnly(); ro != "" {
		out = append(out, wrap(" ", "Read-only ("+ro+"): the keys that change something are refused, marked disabled above.", w)...)
	}
	out = append(out, wrap(" ", "F-keys have letter twins for terminals that lose them. The mouse is left to the "+
		"terminal, so select and paste work as usual. ? or esc closes this help.", w)...)
	if len(out) > h {
		out = out[:h]
	}
	return strings.Join(out, "\n")
}
