package tui

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
	"github.com/mtconsole/mtconsole/tui/action"
)

// detailPage is one pair: its numbers, timeline, tags and events, and
// the tag name prompt.
type detailPage struct {
	pair  string
	input textinput.Model // the tag name prompt
}

func (m *Model) openDetail(id string) tea.Cmd {
	m.screen, m.detail.pair = screenDetail, id
	return m.fetchTags(id)
}

func (d *detailPage) keys(m *Model) []action.Binding {
	g := m.globalKeys()
	gone := func() string {
		if m.pair(d.pair) == nil {
			return "pair " + d.pair + " is not in the agent's status (any more)"
		}
		return ""
	}
	return []action.Binding{
		{Keys: []string{"t"}, Help: "tag now", Dangerous: true, Disabled: gone, Run: func() tea.Cmd {
			d.input.SetValue("manual-" + m.o.Now().UTC().Format("20060102-150405"))
			d.input.CursorEnd()
			return d.input.Focus()
		}},
		{Keys: []string{"p"}, Help: "pause/resume", Dangerous: true, Disabled: gone, Run: func() tea.Cmd {
			p := m.pair(d.pair)
			id, a := p.ID, m.o.Actions
			if p.Health == writer.HealthPaused {
				return m.act("resume "+id, func(ctx context.Context) (string, error) {
					_, err := a.Resume(ctx, id)
					return "resumed " + id, err
				})
			}
			return m.act("pause "+id, func(ctx context.Context) (string, error) {
				_, err := a.Pause(ctx, id, "paused from the console")
				return "paused " + id + " (p again resumes it)", err
			})
		}},
		g.Recover,
		g.Logs,
		escKey("back", func() tea.Cmd { m.screen = screenDashboard; return nil }),
		g.Dashboard,
	}
}

func (d *detailPage) update(*Model, tea.Msg) tea.Cmd { return nil }

func (d *detailPage) view(m *Model, w, h int) string { return m.detailView(w, h) }

func (d *detailPage) focused() *textinput.Model {
	if d.input.Focused() {
		return &d.input
	}
	return nil
}

// tagPromptDone ends the tag name prompt; ok tags the pair now.
func (m *Model) tagPromptDone(ok bool) tea.Cmd {
	return m.tagDone(&m.detail.input, ok, []string{m.detail.pair})
}

// tagDone ends a tag name prompt; ok tags the pairs with one tag now.
func (m *Model) tagDone(ti *textinput.Model, ok bool, ids []string) tea.Cmd {
	ti.Blur()
	if !ok {
		return nil
	}
	if m.refuse("tag") {
		return nil
	}
	name := strings.TrimSpace(ti.Value())
	what := "tag " + strings.Join(ids, ",")
	if name == "" {
		m.setNote(true, what+": a tag needs a name: press t and type one")
		return nil
	}
	a := m.o.Actions
	return m.act(what, func(ctx context.Context) (string, error) {
		_, err := a.Tag(ctx, api.TagRequest{Name: name, Pairs: ids})
		if len(ids) == 1 {
			return "tagged " + ids[0] + " as " + name, err
		}
		return fmt.Sprintf("tagged %d pairs as %s (one point for all)", len(ids), name), err
	})
}

// detailView is one pair: numbers, sparklines, retention, timeline, tags
// and events.
func (m *Model) detailView(w, h int) string {
	p := m.pair(m.detail.pair)
	if p == nil {
		return cut(fmt.Sprintf(" Pair %s is not in the agent's status (any more): esc goes back.", m.detail.pair), w)
	}
	now := m.o.Now()
	head := fmt.Sprintf(" State: %s · Health: %s", stateText(p.State), healthText(p.Health))
	if p.Reason != "" {
		head += ": " + p.Reason
	}
	if r := p.Resync; r != nil && r.TotalBytes > 0 {
		head += " · resync " + resyncText(p)
	}
	out := []string{
		m.st.Bold.Render(cut(fmt.Sprintf(" %s → %s (%s)", p.ID, p.Target, bytesText(p.TargetBytes)), w)),
		m.st.health(p.Health, cut(head, w)),
		cut(fmt.Sprintf(" RPO %s (threshold %s) · backlog %s (%s) · %s · applied seq %d, durable %d",
			rpoText(p), secondsText(p.RPOThreshold), bytesText(p.BacklogBytes),
			secondsText(p.BacklogSeconds), rateText(p.ThroughputBps), p.AppliedSeq, p.DurableSeq), w),
	}
	var rpo, bps []float64
	if hi := m.hist[p.ID]; hi != nil {
		rpo, bps = hi.rpo, hi.bps
	}
	sw := max(w-36, 10)
	out = append(out,
		cut(fmt.Sprintf(" Throughput %s max %s", fit(sparkline(bps, sw), sw), rateText(maxOf(bps))), w),
		cut(fmt.Sprintf(" RPO        %s max %s", fit(sparkline(rpo, sw), sw), secondsText(maxOf(rpo))), w),
		cut(" "+retentionGauge(p.Retention, max(w/4, 10)), w),
		cut(" "+retentionPoints(p.Retention, now), w),
	)
	if len(p.Fsync) > 0 {
		out = append(out, cut(" "+fsyncText(p.Fsync), w))
	}
	for _, v := range m.status.Views {
		if slices.Contains(v.Pairs, p.ID) {
			out = append(out, m.st.Warn.Render(cut(fmt.Sprintf(" View %s at %s on %s · %d client(s) · its retention is kept, rollback refused",
				v.ID, v.Point, v.Listen, v.Clients), w)))
		}
	}
	rest := h - len(out) - 3
	tl := max(rest/4, 1)
	tg := max(rest/2, 1)
	ev := max(rest-tl-tg, 1)
	out = append(out, m.st.Bold.Render(" Timeline"))
	out = append(out, m.timeline(p.ID, w, tl, now)...)
	out = append(out, m.tagsTable(p, w, tg, now)...)
	out = append(out, m.st.Bold.Render(" Events"))
	out = append(out, m.pairEvents(p.ID, w, ev, now)...)
	if m.detail.input.Focused() {
		out = append(out[:min(len(out), h-1)], " "+m.detail.input.View())
	}
	return strings.Join(out, "\n")
}

func maxOf(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	return slices.Max(v)
}

// timeline is the pair's state and health changes, from the status
// snapshots and from its state and alert events, newest first.
func (m *Model) timeline(pair string, w, n int, now time.Time) []string {
	var out []string
	cs := m.changes[pair]
	c, i := len(cs)-1, len(m.events)-1
	for len(out) < n && (c >= 0 || i >= 0) {
		if i >= 0 {
			if e := m.events[i]; e.Pair != pair || e.Kind != writer.EventState && e.Kind != writer.EventAlert {
				i--
				continue
			}
		}
		var e writer.Event
		if c >= 0 && (i < 0 || !cs[c].Time.Before(m.events[i].Time)) {
			e, c = cs[c], c-1
		} else {
			e, i = m.events[i], i-1
		}
		out = append(out, m.eventLine(e, now, w))
	}
	if len(out) == 0 {
		out = append(out, m.st.Dim.Render(" No state changes since the console started."))
	}
	return out
}

func (m *Model) pairEvents(pair string, w, n int, now time.Time) []string {
	var out []string
	for i := len(m.events) - 1; i >= 0 && len(out) < n; i-- {
		if e := m.events[i]; e.Pair == pair {
			out = append(out, m.eventLine(e, now, w))
		}
	}
	if len(out) == 0 {
		out = append(out, m.st.Dim.Render(" No events for this pair yet."))
	}
	return out
}

// tagsTable is the pair's tags, newest first, with a title line.
func (m *Model) tagsTable(p *api.PairStatus, w, n int, now time.Time) []string {
	tags, known := m.tags[p.ID]
	title := fmt.Sprintf(" Tags (%d)", p.Retention.Tags)
	if !known {
		if p.Retention.LatestTag != nil {
			tags = []journal.Tag{*p.Retention.LatestTag}
		}
		title += " · only the latest shown: the list has not arrived"
	}
	out := []string{m.st.Bold.Render(cut(title, w))}
	if len(tags) == 0 {
		return append(out, m.st.Dim.Render(" No tags yet: t tags the pair now."))
	}
	nameW := max(w-59, 12)
	out = append(out, m.st.Dim.Render(cut(fmt.Sprintf(" %-19s %-14s %-12s %s %s", "TIME (UTC)", "ACCURACY", "APPLICATION",
		fit("NAME", nameW), "LOCKED"), w)))
	for i := len(tags) - 1; i >= 0 && len(out) < n+1; i-- {
		t := tags[i]
		out = append(out, cut(fmt.Sprintf(" %-19s %-14s %-12s %s %s", t.Time.UTC().Format("2006-01-02 15:04:05"),
			cut(string(t.Accuracy), 14), cut(t.App, 12), fit(tagName(t, tags), nameW), units.YesNo(t.Locked)), w))
	}
	if more := len(tags) - (len(out) - 2); more > 0 {
		out[len(out)-1] = m.st.Dim.Render(fmt.Sprintf(" … %d older tags", more+1))
	}
	return out
}

// fsyncText is the pair's fdatasync latency by file, median and 99th
// percentile: "fsync p50/p99 journal 0.8/6.4ms · retention …".
func fsyncText(ls []writer.FsyncLatency) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s %s/%s", l.File, latencyText(l.P50Seconds), latencyText(l.P99Seconds)))
	}
	return "fsync p50/p99 " + strings.Join(parts, " · ")
}

// latencyText is a latency, short: 0.05ms, 6.4ms, 26ms, 1.6s.
func latencyText(s float64) string {
	switch ms := s * 1000; {
	case ms < 1:
		return fmt.Sprintf("%.2gms", ms)
	case ms < 10:
		return fmt.Sprintf("%.1fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0fms", ms)
	}
	return fmt.Sprintf("%.1fs", s)
}
