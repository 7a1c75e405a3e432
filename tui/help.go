package tui

import (
	"fmt"
	"strings"
)

// helpView lists the screen's keys, from the same table as the footer.
func (m *Model) helpView(w, h int) string {
	out := []string{m.st.Bold.Render(" Keys on this screen"), ""}
	for _, b := range m.screenKeys() {
		hp := b.Help()
		out = append(out, cut(fmt.Sprintf("   %-10s %s", hp.Key, hp.Desc), w))
	}
	out = append(out, "")
	out = append(out, wrap(" ", "In a text field every key typed is text, j, k, q and ? too: enter done · esc cancel · ctrl+u clears the field · the terminal's paste works "+
		"(ctrl+v does not: it would read the server's clipboard).", w)...)
	out = append(out, "")
	if m.o.ReadOnly {
		out = append(out, wrap(" ", "Read-only ("+m.o.ReadOnlyReason+"): the keys that change something are not offered.", w)...)
	}
	out = append(out, wrap(" ", "F-keys have letter twins for terminals that lose them. The mouse is left to the "+
		"terminal, so select and paste work as usual. ? or esc closes this help.", w)...)
	if len(out) > h {
		out = out[:h]
	}
	return strings.Join(out, "\n")
}
