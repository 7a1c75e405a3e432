package tui

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/replication/writer"
)

type logsState struct {
	follow bool
	off    int // lines scrolled up from the newest
	filter textinput.Model
	level  slog.Level
}

func newLogsState() logsState {
	return logsState{follow: true, filter: newInput("Filter: "), level: slog.LevelDebug}
}

func (m *Model) logsKey(msg tea.KeyPressMsg) tea.Cmd {
	k := m.keys.Logs
	step := 1
	if s := msg.String(); s == "pgup" || s == "pgdown" {
		step = max(m.h-8, 1)
	}
	switch {
	case key.Matches(msg, m.keys.Global.Back):
		m.screen = screenDashboard
	case key.Matches(msg, k.Up):
		m.logs.follow = false
		m.logs.off += step
	case key.Matches(msg, k.Down):
		m.logs.off = max(m.logs.off-step, 0)
	case key.Matches(msg, k.Follow):
		m.logs.follow = !m.logs.follow
		if m.logs.follow {
			m.logs.off = 0
		}
	case key.Matches(msg, k.Level):
		switch {
		case m.logs.level < slog.LevelInfo:
			m.logs.level = slog.LevelInfo
		case m.logs.level < slog.LevelWarn:
			m.logs.level = slog.LevelWarn
		case m.logs.level < slog.LevelError:
			m.logs.level = slog.LevelError
		default:
			m.logs.level = slog.LevelDebug
		}
		m.logs.off = 0
	case key.Matches(msg, k.Filter):
		return m.logs.filter.Focus()
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
