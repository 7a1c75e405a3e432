package tui

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/replication/writer"
	"github.com/mtconsole/mtconsole/tui/action"
)

// logsPage is the agent's events, filtered and scrolled.
type logsPage struct {
	follow bool
	off    int // lines scrolled up from the newest
	filter textinput.Model
	level  slog.Level
}

func newLogsPage() logsPage {
	return logsPage{follow: true, filter: newInput("Filter: "), level: slog.LevelDebug}
}

func (l *logsPage) keys(m *Model) []action.Binding {
	g := m.globalKeys()
	// scroll moves by step lines: up (-1) stops following.
	scroll := func(dir, step int) tea.Cmd {
		if dir < 0 {
			l.follow = false
			l.off += step
		} else {
			l.off = max(l.off-step, 0)
		}
		return nil
	}
	return []action.Binding{
		moveKey("scroll", func(d int) tea.Cmd { return scroll(d, 1) }),
		{Keys: []string{"f"}, Help: "follow", Run: func() tea.Cmd {
			l.follow = !l.follow
			if l.follow {
				l.off = 0
			}
			return nil
		}},
		{Keys: []string{"/"}, Help: "filter", Run: func() tea.Cmd { return l.filter.Focus() }},
		{Keys: []string{"l"}, Help: "level", Run: func() tea.Cmd {
			switch {
			case l.level < slog.LevelInfo:
				l.level = slog.LevelInfo
			case l.level < slog.LevelWarn:
				l.level = slog.LevelWarn
			case l.level < slog.LevelError:
				l.level = slog.LevelError
			default:
				l.level = slog.LevelDebug
			}
			l.off = 0
			return nil
		}},
		escKey("back", func() tea.Cmd { m.screen = screenDashboard; return nil }),
		g.Recover,
		{Keys: []string{"pgup", "pgdown"}, Label: "pgup/pgdn", Help: "page", RunKey: func(msg tea.KeyPressMsg) tea.Cmd {
			dir := 1
			if msg.String() == "pgup" {
				dir = -1
			}
			return scroll(dir, max(m.h-8, 1))
		}},
		g.Dashboard,
	}
}

func (l *logsPage) update(*Model, tea.Msg) tea.Cmd { return nil }

func (l *logsPage) view(m *Model, w, h int) string { return m.logsView(w, h) }

func (l *logsPage) focused() *textinput.Model {
	if l.filter.Focused() {
		return &l.filter
	}
	return nil
}

func (m *Model) logsView(w, h int) string {
	q := strings.ToLower(strings.TrimSpace(m.logs.filter.Value()))
	var shown []writer.Event
	for _, e := range m.events {
		if e.Level < m.logs.level {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(e.Pair+" "+e.Kind+" "+e.Message), q) {
			continue
		}
		shown = append(shown, e)
	}
	follow := "on"
	if !m.logs.follow {
		follow = "off"
	}
	level := "all"
	if m.logs.level > slog.LevelDebug {
		level = "≥ " + levelText(m.logs.level)
	}
	info := fmt.Sprintf(" %d of %d events · follow %s · level %s", len(shown), len(m.events), follow, level)
	if q != "" {
		info += fmt.Sprintf(" · filter %q", q)
	}
	out := []string{m.st.Dim.Render(cut(info, w))}
	if m.logs.filter.Focused() {
		out[0] = " " + m.logs.filter.View()
	}
	// Each event takes as many lines as its whole message needs, wrapped
	// under its message column: nothing is cut.
	rows := h - 1
	now := m.o.Now()
	lines := make([][]string, len(shown))
	get := func(i int) []string {
		if lines[i] == nil {
			lines[i] = m.eventLines(shown[i], now, w)
		}
		return lines[i]
	}
	off := 0
	if !m.logs.follow {
		// Scrolled back at most until the oldest event is at the top.
		first, used := 0, 0
		for first < len(shown) && used+len(get(first)) <= rows {
			used += len(get(first))
			first++
		}
		off = min(m.logs.off, len(shown)-first)
	}
	var body []string
	for i := len(shown) - off - 1; i >= 0; i-- {
		ls := get(i)
		if len(body)+len(ls) > rows {
			if len(body) == 0 {
				body = ls[:rows]
			}
			break
		}
		body = append(slices.Clone(ls), body...)
	}
	out = append(out, body...)
	if len(shown) == 0 {
		out = append(out, m.st.Dim.Render(" No events match: the agent's events appear here as they happen."))
	}
	return strings.Join(out, "\n")
}
