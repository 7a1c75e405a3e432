package tui

import (
	"cmp"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
	"github.com/mtconsole/mtconsole/tui/action"
)

type sortKey int

const (
	sortPair sortKey = iota
	sortState
	sortHealth
	sortRPO
	sortBacklog
	sortRate
	numSorts
)

var sortNames = [numSorts]string{"pair", "state", "health", "RPO ↓", "backlog ↓", "rate ↓"}

// dashboardPage is the pair table: its selection, sort, filter and the
// tag-all prompt.
type dashboardPage struct {
	sel    string // the selected pair's id: stays put across sorts and updates
	sortBy sortKey
	filter textinput.Model
	tag    textinput.Model // the name of a tag for every pair shown
	rows   []int           // indexes into status.Pairs, filtered and sorted
	// lines are the table's rows: rows, with a header above the pairs of
	// each machine of several pairs (grouped) unless it is collapsed.
	lines     []dashLine
	grouped   bool            // some group holds more than one pair
	collapsed map[string]bool // by group name: kept across refreshes
	selGroup  string          // the selected header's group; "": a pair (sel) is selected
}

// dashLine is one row of the pair table: a pair, or the header of a
// machine of several pairs.
type dashLine struct {
	pair  int            // index into status.Pairs; -1: a header
	group string         // a header's group; a member's group; "" for a pair alone
	n     int            // a header: its pairs shown
	agg   api.PairStatus // a header: the summary of its pairs shown
}

// groupOf is the protected machine a pair belongs to: its group, else
// itself.
func groupOf(p *api.PairStatus) string {
	if p.Group != "" {
		return p.Group
	}
	return p.ID
}

func newDashboardPage() dashboardPage {
	return dashboardPage{filter: newInput("Filter: "), tag: newInput("Tag every pair shown as: ")}
}

// refreshRows filters and sorts the pairs; it runs when they, the filter
// or the sort change, never in View.
func (m *Model) refreshRows() {
	ps := m.status.Pairs
	q := strings.ToLower(strings.TrimSpace(m.dash.filter.Value()))
	rows := m.dash.rows[:0]
	for i := range ps {
		if q == "" || matches(&ps[i], q) {
			rows = append(rows, i)
		}
	}
	by := m.dash.sortBy
	slices.SortStableFunc(rows, func(a, b int) int {
		pa, pb := &ps[a], &ps[b]
		var c int
		switch by {
		case sortState:
			c = cmp.Compare(stateRank(pa.State), stateRank(pb.State))
		case sortHealth:
			c = cmp.Compare(healthRank(pa.Health), healthRank(pb.Health))
		case sortRPO:
			c = cmp.Compare(pb.RPOSeconds, pa.RPOSeconds)
		case sortBacklog:
			c = cmp.Compare(pb.BacklogBytes, pa.BacklogBytes)
		case sortRate:
			c = cmp.Compare(pb.ThroughputBps, pa.ThroughputBps)
		}
		if c == 0 {
			c = cmp.Compare(pa.ID, pb.ID)
		}
		return c
	})
	m.dash.rows = rows
	m.groupLines()
	if m.dash.selGroup == "" && m.selIndex() < 0 {
		// The selected pair folded away: its machine's header.
		if p := m.pair(m.dash.sel); p != nil && m.dash.collapsed[groupOf(p)] {
			m.dash.selGroup = groupOf(p)
		}
	}
	if m.selIndex() < 0 {
		m.dash.selGroup = ""
		if len(m.dash.lines) > 0 {
			m.selectLine(0)
		}
	}
}

// groupLines lays the sorted rows out as the table's lines: with no group
// of several pairs, one line a pair; else each such machine's header at
// the place of its first pair, its pairs (in the sort's order) below
// unless collapsed.
func (m *Model) groupLines() {
	ps, d := m.status.Pairs, &m.dash
	lines := d.lines[:0]
	sizes := map[string]int{}
	d.grouped = false
	for i := range ps {
		g := groupOf(&ps[i])
		sizes[g]++
		d.grouped = d.grouped || sizes[g] > 1
	}
	if !d.grouped {
		for _, r := range d.rows {
			lines = append(lines, dashLine{pair: r})
		}
		d.lines = lines
		return
	}
	members := map[string][]int{}
	for _, r := range d.rows {
		if g := groupOf(&ps[r]); sizes[g] > 1 {
			members[g] = append(members[g], r)
		}
	}
	done := map[string]bool{}
	for _, r := range d.rows {
		g := groupOf(&ps[r])
		if sizes[g] <= 1 {
			lines = append(lines, dashLine{pair: r})
			continue
		}
		if done[g] {
			continue
		}
		done[g] = true
		lines = append(lines, dashLine{pair: -1, group: g, n: len(members[g]), agg: groupSummary(ps, members[g])})
		if !d.collapsed[g] {
			for _, r := range members[g] {
				lines = append(lines, dashLine{pair: r, group: g})
			}
		}
	}
	d.lines = lines
}

// groupSummary is a machine's row: its worst state and health (with that
// pair's reason), its largest RPO, its summed backlog, rate and resync.
func groupSummary(ps []api.PairStatus, rows []int) api.PairStatus {
	var s api.PairStatus
	s.RPOUnknown = true
	worst := -1
	var done, total int64
	var eta float64
	for i, r := range rows {
		p := &ps[r]
		if i == 0 || stateRank(p.State) < stateRank(s.State) {
			s.State = p.State
		}
		if worst < 0 || healthRank(p.Health) < healthRank(ps[worst].Health) {
			worst = r
		}
		if !p.RPOUnknown {
			s.RPOUnknown = false
			s.RPOSeconds = max(s.RPOSeconds, p.RPOSeconds)
		}
		s.BacklogBytes += p.BacklogBytes
		s.ThroughputBps += p.ThroughputBps
		if p.Resync != nil && p.Resync.TotalBytes > 0 {
			done, total = done+p.Resync.DoneBytes, total+p.Resync.TotalBytes
			eta = max(eta, p.Resync.ETASeconds)
		}
	}
	if worst >= 0 {
		s.Health = ps[worst].Health
		if ps[worst].Reason != "" {
			s.Reason = ps[worst].ID + ": " + ps[worst].Reason
		}
	}
	if total > 0 {
		s.Resync = &api.ResyncProgress{DoneBytes: done, TotalBytes: total, ETASeconds: eta}
	}
	return s
}

// selectLine selects the table's line i.
func (m *Model) selectLine(i int) {
	l := m.dash.lines[i]
	if l.pair < 0 {
		m.dash.selGroup = l.group
		return
	}
	m.dash.selGroup, m.dash.sel = "", m.status.Pairs[l.pair].ID
}

// selectedGroup is the machine whose header is selected, "" when a pair
// is.
func (m *Model) selectedGroup() string {
	if i := m.selIndex(); i >= 0 && m.dash.lines[i].pair < 0 {
		return m.dash.lines[i].group
	}
	return ""
}

// fold collapses (-1), expands (+1) or toggles (0) the machine of the
// selected line, its header or one of its pairs; collapsed, its header
// is selected.
func (m *Model) fold(how int) {
	i := m.selIndex()
	if i < 0 || m.dash.lines[i].group == "" {
		return
	}
	g := m.dash.lines[i].group
	c := !m.dash.collapsed[g]
	if how != 0 {
		c = how < 0
	}
	if m.dash.collapsed == nil {
		m.dash.collapsed = map[string]bool{}
	}
	m.dash.collapsed[g] = c
	if c {
		m.dash.selGroup = g
	}
	m.refreshRows()
}

func matches(p *api.PairStatus, q string) bool {
	for _, s := range []string{p.ID, p.Target, p.State, p.Health, p.Reason, p.Group} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// stateRank puts resyncing pairs first, then queued, then in sync.
func stateRank(s string) int {
	st, ok := wire.ParsePairState(s)
	switch {
	case !ok:
		return 4
	case st == wire.StateResync1:
		return 0
	case st == wire.StateResync2:
		return 1
	case st == wire.StateQueued:
		return 2
	case st == wire.StateDiffSync:
		return 3
	}
	return 4
}

// healthRank puts the worst first.
func healthRank(h string) int {
	switch h {
	case writer.HealthError:
		return 0
	case writer.HealthRPO:
		return 1
	case writer.HealthPaused:
		return 2
	case writer.HealthOK:
		return 4
	}
	return 3
}

// selIndex is the selected line, -1 when it is not shown.
func (m *Model) selIndex() int {
	for i, l := range m.dash.lines {
		if l.pair < 0 {
			if m.dash.selGroup != "" && l.group == m.dash.selGroup {
				return i
			}
		} else if m.dash.selGroup == "" && m.status.Pairs[l.pair].ID == m.dash.sel {
			return i
		}
	}
	return -1
}

// selected is the selected pair, nil when none is shown (or a machine's
// header is selected).
func (m *Model) selected() *api.PairStatus {
	if i := m.selIndex(); i >= 0 && m.dash.lines[i].pair >= 0 {
		return &m.status.Pairs[m.dash.lines[i].pair]
	}
	return nil
}

func (m *Model) pair(id string) *api.PairStatus {
	for i := range m.status.Pairs {
		if m.status.Pairs[i].ID == id {
			return &m.status.Pairs[i]
		}
	}
	return nil
}

func (p *dashboardPage) keys(m *Model) []action.Binding {
	g := m.globalKeys()
	// esc with no filter has nothing to clear: refused, so the help still
	// says what esc is for.
	clearFilter := escKey("clear filter", func() tea.Cmd {
		p.filter.SetValue("")
		m.refreshRows()
		return nil
	})
	clearFilter.Disabled = func() string {
		if p.filter.Value() == "" {
			return "no filter is set (/ sets one)"
		}
		return ""
	}
	bs := []action.Binding{
		{Keys: []string{"enter"}, Help: "detail",
			Disabled: func() string {
				if m.selected() == nil && m.selectedGroup() == "" {
					return "no pair is shown"
				}
				return ""
			},
			Run: func() tea.Cmd {
				if m.selectedGroup() != "" {
					m.fold(0)
					return nil
				}
				return m.openDetail(m.selected().ID)
			}},
		g.Recover,
		{Keys: []string{"t"}, Help: "tag all", Dangerous: true,
			Disabled: func() string {
				if len(p.rows) == 0 {
					return "no pair is shown to tag"
				}
				return ""
			},
			Run: func() tea.Cmd {
				p.tag.SetValue("manual-" + m.o.Now().UTC().Format("20060102-150405"))
				p.tag.CursorEnd()
				return p.tag.Focus()
			}},
		{Keys: []string{"n"}, Help: "new protection", Dangerous: true,
			Disabled: func() string {
				if m.o.Protector == nil {
					return "protection is not available in this console: use `mtconsole protect`"
				}
				return ""
			},
			Run: m.openProtect},
		{Keys: []string{"u"}, Help: "unprotect", Dangerous: true, Disabled: m.unprotDisabled, Run: m.unprotectHere},
		// The footer names it while a run is unfinished (the notice
		// line says so too); the help always lists it.
		{Keys: []string{"f"}, Help: "failback runs", NoFooter: len(m.fb.pending) == 0,
			Disabled: func() string {
				if m.o.VSphere == nil {
					return "vSphere is not configured for this console: mtconsole vsphere failback list|resume|undo"
				}
				return ""
			},
			Run: m.openFailbackList},
		g.Logs,
		{Keys: []string{"/"}, Help: "filter", Run: func() tea.Cmd { return p.filter.Focus() }},
		{Keys: []string{"s"}, Help: "sort", Run: func() tea.Cmd {
			p.sortBy = (p.sortBy + 1) % numSorts
			m.refreshRows()
			return nil
		}},
		moveKey("move", func(d int) tea.Cmd {
			i := m.selIndex()
			switch {
			case d < 0 && i > 0:
				m.selectLine(i - 1)
			case d > 0 && i+1 < len(p.lines):
				m.selectLine(i + 1)
			}
			return nil
		}),
		clearFilter,
	}
	if !p.grouped {
		return bs
	}
	// Machines of several pairs: their headers fold (enter too).
	return slices.Insert(bs, 1, action.Binding{Keys: []string{"space", "right", "left"}, Label: "space/←→", Help: "fold",
		Disabled: func() string {
			if i := m.selIndex(); i < 0 || p.lines[i].group == "" {
				return "a pair alone: only a machine of several pairs folds"
			}
			return ""
		},
		RunKey: func(msg tea.KeyPressMsg) tea.Cmd {
			switch msg.String() {
			case "left":
				m.fold(-1)
			case "right":
				m.fold(1)
			default:
				m.fold(0)
			}
			return nil
		}})
}

func (p *dashboardPage) update(*Model, tea.Msg) tea.Cmd { return nil }

func (p *dashboardPage) view(m *Model, w, h int) string { return m.dashView(w, h) }

func (p *dashboardPage) focused() *textinput.Model {
	switch {
	case p.filter.Focused():
		return &p.filter
	case p.tag.Focused():
		return &p.tag
	}
	return nil
}

// column is one column of the pair table.
type column struct {
	title string
	width int // 0: takes the room left
	right bool
	cell  func(p *api.PairStatus) string
}

func (m *Model) columns(w int) []column {
	wide := w >= 120
	cols := []column{
		{title: "PAIR → TARGET", cell: func(p *api.PairStatus) string { return p.ID + " → " + p.Target }},
		{title: "STATE", width: 10, cell: func(p *api.PairStatus) string { return shortState(p.State) }},
		{title: "HEALTH", width: 12, cell: func(p *api.PairStatus) string { return healthText(p.Health) }},
		{title: "RPO", width: 6, right: true, cell: func(p *api.PairStatus) string { return rpoText(p) }},
		{title: "BACKLOG", width: 8, right: true, cell: func(p *api.PairStatus) string { return bytesText(p.BacklogBytes) }},
		{title: "RATE", width: 10, right: true, cell: func(p *api.PairStatus) string { return rateText(p.ThroughputBps) }},
		{title: "RESYNC", width: 9, right: true, cell: resyncText},
	}
	if wide {
		cols[0].width = 30
		cols[1].width = 17
		cols[1].cell = func(p *api.PairStatus) string { return stateText(p.State) }
		cols[6].width = 13
		cols = append(cols, column{title: "REASON", cell: func(p *api.PairStatus) string { return p.Reason }})
	}
	return cols
}

func stateText(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shortState(s string) string {
	if st, ok := wire.ParsePairState(s); ok {
		return st.Short()
	}
	return stateText(s)
}

func resyncText(p *api.PairStatus) string {
	r := p.Resync
	if r == nil || r.TotalBytes <= 0 {
		return "-"
	}
	s := pctText(pct(r.DoneBytes, r.TotalBytes))
	if r.ETASeconds > 0 {
		s += " " + secondsText(r.ETASeconds)
	}
	return s
}

// dashView is the pair table, the selected pair's retention and the
// alerts.
func (m *Model) dashView(w, h int) string {
	var out []string
	if m.agentErr != nil && m.have {
		out = append(out, m.st.Err.Render(cut(fmt.Sprintf(" ✗ agent unreachable: showing the last data, from %s UTC (%s old)",
			clockText(m.statusAt, m.o.Now()), durText(m.o.Now().Sub(m.statusAt))), w)))
	}
	if n := m.fbNotice(w); n != "" {
		out = append(out, n)
	}
	if !m.have {
		msg := " Waiting for the agent…"
		if m.agentErr != nil {
			msg = " ✗ No data: " + m.agentErr.Error()
		}
		return strings.Join(append(out, cut(msg, w)), "\n")
	}
	if len(m.status.Pairs) == 0 {
		return strings.Join(append(out, " The agent has no pairs yet."), "\n")
	}
	jobs := m.jobLines(w)
	// The table takes what it needs up to what leaves the panel (3), the
	// filter line and at least 3 alerts; the alerts get the rest.
	tableH := h - len(out) - 3 - 1 - 4 - len(jobs)
	out = append(out, m.tableView(w, max(tableH, 3))...)
	out = append(out, m.filterLine(w))
	out = append(out, m.retentionPanel(w)...)
	out = append(out, jobs...)
	out = append(out, m.alertsView(w, max(h-len(out)-1, 3))...)
	return strings.Join(out, "\n")
}

// tagAllDone ends the dashboard's tag prompt; ok tags every pair shown
// with one tag: one id, so together they are a multi-disk consistent
// point the recovery wizard can take for all of them.
func (m *Model) tagAllDone(ok bool) tea.Cmd {
	ids := make([]string, 0, len(m.dash.rows))
	for _, i := range m.dash.rows {
		ids = append(ids, m.status.Pairs[i].ID)
	}
	return m.tagDone(&m.dash.tag, ok, ids)
}

func (m *Model) filterLine(w int) string {
	if m.dash.tag.Focused() {
		return " " + m.dash.tag.View()
	}
	if m.dash.filter.Focused() {
		return " " + m.dash.filter.View()
	}
	info := fmt.Sprintf(" %d of %d pairs · sort: %s", len(m.dash.rows), len(m.status.Pairs), sortNames[m.dash.sortBy])
	if f := m.dash.filter.Value(); f != "" {
		info += fmt.Sprintf(" · filter %q (esc clears)", f)
	}
	return m.st.Dim.Render(cut(info, w))
}

func (m *Model) tableView(w, rows int) []string {
	cols := m.columns(w)
	fixed, flex := 2, 0
	for i, c := range cols {
		fixed += c.width + 1
		if c.width == 0 {
			flex = i
		}
	}
	cols[flex].width = max(w-fixed, 12)
	var hdr strings.Builder
	hdr.WriteString("  ")
	for _, c := range cols {
		if c.right {
			hdr.WriteString(fitRight(c.title, c.width))
		} else {
			hdr.WriteString(fit(c.title, c.width))
		}
		hdr.WriteByte(' ')
	}
	out := []string{m.st.Bold.Render(cut(hdr.String(), w))}
	sel := m.selIndex()
	lines := m.dash.lines
	start := 0
	if sel >= rows {
		start = sel - rows + 1
	}
	end := min(start+rows-1, len(lines))
	if len(lines) <= rows {
		end = len(lines)
	}
	if len(lines) == 0 {
		return append(out, " No pair matches the filter: esc clears it.")
	}
	for i := start; i < end; i++ {
		l := &lines[i]
		var p *api.PairStatus
		if l.pair >= 0 {
			p = &m.status.Pairs[l.pair]
		} else {
			p = &l.agg
		}
		var b strings.Builder
		mark := "  "
		if i == sel {
			mark = "▶ "
		}
		b.WriteString(mark)
		for ci, c := range cols {
			var s string
			switch {
			case ci == 0 && l.pair < 0:
				fold := "▾ "
				if m.dash.collapsed[l.group] {
					fold = "▸ "
				}
				s = fmt.Sprintf("%s%s (%d)", fold, l.group, l.n)
			case ci == 0 && l.group != "":
				s = "  " + c.cell(p)
			default:
				s = c.cell(p)
			}
			if c.right {
				s = fitRight(s, c.width)
			} else {
				s = fit(s, c.width)
			}
			if ci == 2 && i != sel {
				s = m.st.health(p.Health, s)
			}
			b.WriteString(s)
			b.WriteByte(' ')
		}
		line := b.String()
		if i == sel {
			line = m.st.Selected.Render(line)
		}
		out = append(out, line)
	}
	if end < len(lines) {
		out = append(out, m.st.Dim.Render(fmt.Sprintf("  … %d more (↓ to scroll)", len(lines)-end)))
	}
	return out
}

// retentionPanel is three lines on the selected pair.
func (m *Model) retentionPanel(w int) []string {
	p := m.selected()
	if g := m.selectedGroup(); g != "" {
		return m.groupPanel(g, w)
	}
	if p == nil {
		return []string{"", "", ""}
	}
	now := m.o.Now()
	head := fmt.Sprintf(" %s → %s · %s", p.ID, p.Target, healthText(p.Health))
	if p.Reason != "" {
		head += ": " + p.Reason
	}
	r := p.Retention
	return []string{
		m.st.health(p.Health, cut(head, w)),
		cut(" "+retentionGauge(r, max(w/4, 10)), w),
		cut(" "+retentionPoints(r, now), w),
	}
}

// groupPanel is three lines on the selected machine.
func (m *Model) groupPanel(g string, w int) []string {
	l := m.dash.lines[m.selIndex()]
	var ids []string
	for _, r := range m.dash.rows {
		if p := &m.status.Pairs[r]; groupOf(p) == g {
			ids = append(ids, p.ID)
		}
	}
	head := fmt.Sprintf(" machine %s · %d pairs: %s · %s", g, len(ids), strings.Join(ids, ", "), healthText(l.agg.Health))
	if l.agg.Reason != "" {
		head += " (" + l.agg.Reason + ")"
	}
	fold := "space folds it"
	if m.dash.collapsed[g] {
		fold = "space unfolds it"
	}
	return []string{
		m.st.health(l.agg.Health, cut(head, w)),
		cut(" "+fold+" · r recovers the machine, its disks to one point common to all", w),
		"",
	}
}

func retentionGauge(r writer.RetentionStatus, bw int) string {
	window := "all"
	if r.Window > 0 {
		window = durText(r.Window)
	}
	if r.CapBytes <= 0 {
		return fmt.Sprintf("Retention %s used, no size cap · window %s · on full: %s", bytesText(r.UsedBytes), window, onFull(r.OnFull))
	}
	f := float64(r.UsedBytes) / float64(r.CapBytes)
	return fmt.Sprintf("Retention [%s] %s of %s (%s) · window %s · on full: %s", bar(f, bw), bytesText(r.UsedBytes),
		bytesText(r.CapBytes), pctText(100*f), window, onFull(r.OnFull))
}

func onFull(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func retentionPoints(r writer.RetentionStatus, now time.Time) string {
	if r.To.IsZero() {
		return "Points: none yet"
	}
	s := fmt.Sprintf("Points %s → %s UTC (%s) · %d tags", clockText(r.From, now), clockText(r.To, now),
		durText(r.To.Sub(r.From)), r.Tags)
	if t := r.LatestTag; t != nil {
		s += fmt.Sprintf(" · latest %s (%s) %s", t.Name, t.App, clockText(t.Time, now))
	}
	return s
}

// alertsView is the newest warnings and errors, newest first.
func (m *Model) alertsView(w, n int) []string {
	out := []string{m.st.Bold.Render(" Alerts")}
	now := m.o.Now()
	for i := len(m.events) - 1; i >= 0 && len(out) <= n; i-- {
		e := m.events[i]
		if e.Level < slog.LevelWarn {
			continue
		}
		out = append(out, m.eventLine(e, now, w))
	}
	if len(out) == 1 {
		out = append(out, m.st.Dim.Render(" No warnings or errors."))
	}
	return out
}

// eventLine is one event on one line: time, level in words, pair, kind,
// message, cut to the width.
func (m *Model) eventLine(e writer.Event, now time.Time, w int) string {
	return m.eventStyle(e.Level, cut(eventHead(e, now)+e.Message, w))
}

// eventLines is one event with its whole message, wrapped onto
// continuation lines indented to the message's column.
func (m *Model) eventLines(e writer.Event, now time.Time, w int) []string {
	head := eventHead(e, now)
	lines := hang(head, strings.Repeat(" ", ansi.StringWidth(head)), e.Message, w)
	for i := range lines {
		lines[i] = m.eventStyle(e.Level, lines[i])
	}
	return lines
}

func eventHead(e writer.Event, now time.Time) string {
	pair := e.Pair
	if pair == "" {
		pair = "-"
	}
	return fmt.Sprintf(" %s %-5s %-8s %-8s ", clockText(e.Time, now), levelText(e.Level), cut(pair, 8), e.Kind)
}

func (m *Model) eventStyle(l slog.Level, s string) string {
	switch {
	case l >= slog.LevelError:
		return m.st.Err.Render(s)
	case l >= slog.LevelWarn:
		return m.st.Warn.Render(s)
	}
	return s
}

func levelText(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

// rpoText is a pair's RPO, or "—" while it is unknown (restarted, the
// source not yet heard from).
func rpoText(p *api.PairStatus) string {
	if p.RPOUnknown {
		return "—"
	}
	return secondsText(p.RPOSeconds)
}
