package tui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
	"github.com/mtconsole/mtconsole/tui/action"
)

// Minimum terminal size; below it the console draws one line saying so.
const (
	MinWidth  = 80
	MinHeight = 24
)

const (
	maxEvents  = 2000 // events kept for the logs and alerts
	maxSamples = 240  // status snapshots kept per pair for the sparklines
)

// Options configure the console.
type Options struct {
	Collector Collector // the data; nil shows no data
	Actions   Actions   // the changes; nil makes the console read-only
	// ReadOnly refuses every key that changes something; ReadOnlyReason
	// says why on screen ("not root", "--readonly", "replay").
	ReadOnly       bool
	ReadOnlyReason string
	Host           string           // shown in the header
	Now            func() time.Time // default time.Now (tests fix it)
	NoColor        bool             // default: NO_COLOR is set
	FPS            int              // frame-rate cap, default 10
	// VSphere, when set, offers the failback VM on a rollback's result
	// (v); when nil the result says how to configure it.
	VSphere VSphere
	// Protector, when set, offers the Protect screen (n on the
	// dashboard): a process server's disks to new pairs.
	Protector Protector
}

type screen int

const (
	screenDashboard screen = iota
	screenDetail
	screenLogs
	screenRecover
	screenProtect
	screenUnprotect
	screenFailback
)

// Model is the console's root model: it keeps what the collector said
// and routes keys and drawing to the screen shown.
type Model struct {
	o    Options
	ctx  context.Context
	st   Styles
	ch   chan tea.Msg
	w, h int

	screen screen
	help   bool

	status    api.Status
	statusAt  time.Time // when the shown snapshot was taken
	have      bool
	agentErr  error
	downSince time.Time

	events  []writer.Event
	changes map[string][]writer.Event // per pair: state and health changes seen between snapshots
	hist    map[string]*history
	tags    map[string][]journal.Tag
	jobs    map[string]*jobView

	note    string // the last action's outcome or error, for the footer
	noteErr bool
	noteAt  time.Time

	// The pages: each keeps its own state.
	dash   dashboardPage
	detail detailPage
	logs   logsPage
	wiz    wizard // the recovery wizard's page
	prot   protectPage
	unprot unprotPage // the unprotect dialog
	fb     fbPage     // the failback VM and the unfinished failback runs
}

type history struct{ rpo, bps []float64 }

func (h *history) add(rpo, bps float64) {
	if len(h.rpo) >= maxSamples {
		h.rpo, h.bps = h.rpo[1:], h.bps[1:]
	}
	h.rpo, h.bps = append(h.rpo, rpo), append(h.bps, bps)
}

// collectedMsg carries a collector's message off the channel, so the
// model knows to wait for the next one.
type collectedMsg struct{ msg tea.Msg }

type clockMsg time.Time

// actionMsg is the outcome of an action.
type actionMsg struct {
	what, done string
	err        error
}

// New returns the console's model. ctx bounds the collector and actions.
func New(ctx context.Context, o Options) *Model {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Actions == nil && !o.ReadOnly {
		o.ReadOnly, o.ReadOnlyReason = true, "no agent connection for actions"
	}
	if o.ReadOnly && o.ReadOnlyReason == "" {
		o.ReadOnlyReason = "--readonly"
	}
	m := &Model{o: o, ctx: ctx, st: NewStyles(!o.NoColor),
		ch: make(chan tea.Msg, 256), w: MinWidth, h: MinHeight,
		changes: map[string][]writer.Event{}, hist: map[string]*history{}, tags: map[string][]journal.Tag{}, jobs: map[string]*jobView{}}
	m.dash = newDashboardPage()
	m.detail = detailPage{input: newInput("Tag name: ")}
	m.logs = newLogsPage()
	return m
}

func newInput(prompt string) textinput.Model {
	ti := textinput.New()
	ti.Prompt = prompt
	ti.CharLimit = 4096
	s := ti.Styles()
	s.Cursor.Blink = false // no cursor timer: idle stays idle
	ti.SetStyles(s)
	// Ctrl+V would read the server's clipboard, absent or wrong over SSH;
	// the terminal's own paste arrives as tea.PasteMsg.
	ti.KeyMap.Paste.SetEnabled(false)
	return ti
}

// Run runs the console on the terminal until the admin quits or ctx ends.
func Run(ctx context.Context, o Options) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !o.NoColor {
		o.NoColor = os.Getenv("NO_COLOR") != ""
	}
	fps := o.FPS
	if fps <= 0 {
		fps = 10
	}
	p := tea.NewProgram(New(ctx, o), tea.WithContext(ctx), tea.WithFPS(fps))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Init starts the collector and the minute clock.
func (m *Model) Init() tea.Cmd {
	cmds := []tea.Cmd{minuteTick(), m.fbScan()}
	if m.o.Collector != nil {
		c, ch, ctx := m.o.Collector, m.ch, m.ctx
		cmds = append(cmds, func() tea.Msg {
			// Runs for the collector's life, in the command's goroutine.
			c.Run(ctx, func(msg tea.Msg) {
				select {
				case ch <- msg:
				case <-ctx.Done():
				}
			})
			return nil
		}, m.wait())
	}
	return tea.Batch(cmds...)
}

func (m *Model) wait() tea.Cmd {
	ch, ctx := m.ch, m.ctx
	return func() tea.Msg {
		select {
		case msg := <-ch:
			return collectedMsg{msg}
		case <-ctx.Done():
			return nil
		}
	}
}

// minuteTick redraws the header clock; it is the only timer when idle.
func minuteTick() tea.Cmd {
	return tea.Every(time.Minute, func(t time.Time) tea.Msg { return clockMsg(t) })
}

// Update implements tea.Model.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		m.resize()
		return m, nil
	case collectedMsg:
		return m, tea.Batch(m.apply(msg.msg), m.wait())
	case StatusMsg, EventMsg, AgentErrorMsg, TagsMsg, jobMsg, jobEventMsg, jobTickMsg:
		return m, m.apply(msg)
	case clockMsg:
		// Plan files left by a run killed elsewhere show within a minute.
		return m, tea.Batch(minuteTick(), m.fbScan())
	case actionMsg:
		return m, m.onAction(msg)
	case protDiscoverMsg, protSuggestMsg, protCheckMsg, protPlanMsg, protApplyMsg:
		return m, m.protUpdate(msg)
	case unprotPlanMsg, unprotApplyMsg:
		return m, m.unprot.update(m, msg)
	case resolvedMsg, recoverStartedMsg, viewOpenedMsg:
		// The wizard's, whichever page is shown.
		return m, m.wiz.update(m, msg)
	case fbPlanMsg, fbProgressMsg, fbDoneMsg, fbPendingMsg, fbSourceMsg:
		return m, m.fb.update(m, msg)
	case tea.PasteMsg:
		// The terminal's paste, which works over SSH; Ctrl+V would read
		// the server's clipboard.
		if ti := m.focused(); ti != nil {
			var cmd tea.Cmd
			*ti, cmd = ti.Update(tea.PasteMsg{Content: strings.TrimRight(msg.Content, "\r\n")})
			return m, tea.Batch(cmd, m.inputChanged())
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	if ti := m.focused(); ti != nil {
		var cmd tea.Cmd
		*ti, cmd = ti.Update(msg)
		return m, cmd
	}
	return m, nil
}

// apply takes in what the collector (or a look-up) said.
func (m *Model) apply(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case StatusMsg:
		if m.have {
			m.noteChanges(msg.Status.Pairs, msg.At)
		}
		m.status, m.statusAt, m.have = msg.Status, msg.At, true
		m.agentErr, m.downSince = nil, time.Time{}
		for _, p := range msg.Status.Pairs {
			h := m.hist[p.ID]
			if h == nil {
				h = &history{}
				m.hist[p.ID] = h
			}
			h.add(p.RPOSeconds, p.ThroughputBps)
		}
		m.refreshRows()
	case AgentErrorMsg:
		if m.agentErr == nil {
			m.downSince = msg.At
		}
		m.agentErr = msg.Err
	case EventMsg:
		m.events = append(m.events, msg.Event)
		if len(m.events) > maxEvents {
			m.events = append(m.events[:0:0], m.events[len(m.events)-maxEvents/2:]...)
		}
		if e := msg.Event; e.Kind == writer.EventTag && m.screen == screenDetail && e.Pair == m.detail.pair {
			// The tags table follows new tags while it is shown.
			return tea.Batch(m.fetchTags(e.Pair), m.onJobEvent(msg))
		}
		return m.onJobEvent(msg)
	case TagsMsg:
		if msg.Err != nil {
			m.setNote(true, fmt.Sprintf("tags of %s: %v", msg.Pair, msg.Err))
			return nil
		}
		m.tags[msg.Pair] = msg.Tags
		if m.screen == screenRecover && m.wiz.step == stepCheck {
			m.wiz.checks = m.readiness()
		}
	case jobMsg:
		return m.onJob(msg)
	case jobEventMsg:
		return m.onJobEventMsg(msg)
	case jobTickMsg:
		return m.pollJobs()
	}
	return nil
}

// maxChanges is how many state and health changes a pair keeps.
const maxChanges = 100

// noteChanges records, for the timeline, each pair whose replication
// state or health differs from the snapshot before: the agent tells of
// some changes as events, of others (Queued → Resync Step I → …) only in
// its status.
func (m *Model) noteChanges(pairs []api.PairStatus, at time.Time) {
	before := make(map[string]*api.PairStatus, len(m.status.Pairs))
	for i := range m.status.Pairs {
		before[m.status.Pairs[i].ID] = &m.status.Pairs[i]
	}
	for i := range pairs {
		p, was := &pairs[i], before[pairs[i].ID]
		if was == nil {
			continue
		}
		add := func(level slog.Level, msg string) {
			cs := append(m.changes[p.ID], writer.Event{Time: at, Pair: p.ID, Kind: writer.EventState, Level: level, Message: msg})
			if len(cs) > maxChanges {
				cs = cs[len(cs)-maxChanges:]
			}
			m.changes[p.ID] = cs
		}
		if p.State != was.State {
			add(slog.LevelInfo, stateText(was.State)+" → "+stateText(p.State))
		}
		if p.Health != was.Health {
			msg := healthText(was.Health) + " → " + healthText(p.Health)
			if p.Reason != "" {
				msg += ": " + p.Reason
			}
			level := slog.LevelInfo
			switch p.Health {
			case writer.HealthError:
				level = slog.LevelError
			case writer.HealthRPO:
				level = slog.LevelWarn
			}
			add(level, msg)
		}
	}
}

func (m *Model) setNote(isErr bool, s string) {
	m.note, m.noteErr, m.noteAt = s, isErr, m.o.Now()
}

// act runs f as a command with a timeout; its outcome lands in the
// footer.
func (m *Model) act(what string, f func(ctx context.Context) (string, error)) tea.Cmd {
	ctx := m.ctx
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		done, err := f(c)
		return actionMsg{what: what, done: done, err: err}
	}
}

func (m *Model) onAction(msg actionMsg) tea.Cmd {
	if msg.err != nil {
		m.setNote(true, msg.what+": "+actionErrText(msg.err))
		return nil
	}
	m.setNote(false, msg.done)
	if m.screen == screenDetail {
		return m.fetchTags(m.detail.pair)
	}
	return nil
}

// actionErrText says what went wrong and what to do.
func actionErrText(err error) string {
	switch {
	case errors.Is(err, api.ErrNoAgent):
		return err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return "the agent did not answer in time: check `systemctl status mtconsole-agent` and try again"
	}
	var ae *api.APIError
	if errors.As(err, &ae) && ae.Code == 403 {
		return ae.Msg + ": run the console as root to change things"
	}
	return err.Error()
}

func (m *Model) fetchTags(pair string) tea.Cmd {
	if m.o.Actions == nil || pair == "" {
		return nil
	}
	a, ctx := m.o.Actions, m.ctx
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		tags, err := a.Tags(c, pair)
		return TagsMsg{Pair: pair, Tags: tags, Err: err}
	}
}

// focused is the text field that has the keyboard, if any.
func (m *Model) focused() *textinput.Model { return m.page().focused() }

// inputChanged lets the screen react to a field's new value.
func (m *Model) inputChanged() tea.Cmd {
	switch m.screen {
	case screenDashboard:
		m.refreshRows()
	case screenLogs:
		m.logs.off = 0
	case screenProtect:
		return m.protInputChanged()
	}
	return nil
}

func (m *Model) tooSmall() bool { return m.w < MinWidth || m.h < MinHeight }

// key routes a key press: to the text field that has the keyboard, else
// to the help's keys or the screen's Set; a key no binding takes goes to
// the page. A refused binding says why in the footer.
func (m *Model) key(msg tea.KeyPressMsg) tea.Cmd {
	if msg.String() == "ctrl+c" {
		return tea.Quit
	}
	if ti := m.focused(); ti != nil {
		return m.inputKey(ti, msg)
	}
	var set action.Set
	switch {
	case m.help:
		set = m.helpKeys()
	case m.tooSmall():
		g := m.globalKeys()
		set = action.Set{Bindings: []action.Binding{g.Redraw, g.Quit}}
	default:
		set = m.keySet()
	}
	r := set.Handle(msg)
	switch {
	case r.Refused != "":
		m.setNote(true, r.Refused)
		return nil
	case r.Handled:
		return r.Cmd
	case m.help || m.tooSmall():
		return nil
	}
	return m.page().update(m, msg)
}

// inputKey handles a key while a text field has the keyboard: enter and
// esc belong to the screen, everything else to the field.
func (m *Model) inputKey(ti *textinput.Model, msg tea.KeyPressMsg) tea.Cmd {
	if m.screen == screenRecover && m.wizFieldKey(ti, msg) {
		return nil
	}
	if m.screen == screenProtect {
		if cmd, ok := m.protFieldKey(msg); ok {
			return cmd
		}
	}
	if m.screen == screenUnprotect {
		if cmd, ok := m.unprotFieldKey(msg); ok {
			return cmd
		}
	}
	if m.screen == screenFailback {
		if cmd, ok := m.fbFieldKey(msg); ok {
			return cmd
		}
	}
	switch msg.String() {
	case "enter":
		return m.inputDone(ti, true)
	case "esc":
		return m.inputDone(ti, false)
	case "ctrl+u":
		// The whole field, wherever the cursor is: a filled-in default
		// goes with one key.
		ti.SetValue("")
		return m.inputChanged()
	}
	var cmd tea.Cmd
	*ti, cmd = ti.Update(msg)
	return tea.Batch(cmd, m.inputChanged())
}

func (m *Model) inputDone(ti *textinput.Model, ok bool) tea.Cmd {
	switch m.screen {
	case screenDashboard, screenLogs:
		if ti == &m.dash.tag {
			return m.tagAllDone(ok)
		}
		ti.Blur()
		if !ok {
			ti.SetValue("")
			m.inputChanged()
		}
		return nil
	case screenDetail:
		return m.tagPromptDone(ok)
	case screenRecover:
		return m.wizInputDone(ok)
	case screenFailback:
		return m.fbConfirmDone(ok)
	}
	return nil
}

func (m *Model) resize() {
	w := max(m.w-20, 10)
	m.dash.filter.SetWidth(w)
	m.logs.filter.SetWidth(w)
	m.detail.input.SetWidth(w)
	m.dash.tag.SetWidth(w)
	m.wiz.setWidth(w)
	m.prot.setWidth(max(m.w-30, 10))
	m.fb.setWidth(m.w)
}

// View implements tea.Model.
func (m *Model) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	v.MouseMode = tea.MouseModeNone
	v.WindowTitle = "mtconsole " + m.o.Host
	return v
}

// render is the whole screen as text.
func (m *Model) render() string {
	if m.tooSmall() {
		return cut(fmt.Sprintf("terminal too small: need %dx%d, have %dx%d; resize it, or q to quit",
			MinWidth, MinHeight, m.w, m.h), m.w)
	}
	bodyH := m.h - 4
	var body string
	if m.help {
		body = m.helpView(m.w, bodyH)
	} else {
		body = m.page().view(m, m.w, bodyH)
	}
	lines := strings.Split(body, "\n")
	if len(lines) > bodyH {
		lines = lines[:bodyH]
	}
	for len(lines) < bodyH {
		lines = append(lines, "")
	}
	var b strings.Builder
	b.Grow((m.w + 16) * m.h)
	b.WriteString(m.headerView())
	b.WriteByte('\n')
	b.WriteString(m.titleView())
	b.WriteByte('\n')
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	b.WriteString(m.keysView())
	b.WriteByte('\n')
	b.WriteString(m.noteView())
	return b.String()
}

func (m *Model) headerView() string {
	now := m.o.Now()
	host := m.o.Host
	if host == "" {
		host = m.status.Host
	}
	if host == "" {
		host = "localhost"
	}
	var agent string
	switch {
	case m.agentErr != nil:
		agent = "agent ✗ unreachable " + durText(now.Sub(m.downSince))
	case m.have:
		agent = "agent ✓ connected"
		if age := now.Sub(m.statusAt); age >= 5*time.Second {
			agent += ", data " + durText(age) + " old"
		}
	default:
		agent = "agent … connecting"
	}
	if n := len(m.status.Views); n > 0 {
		// An open view holds retention and refuses rollbacks: in sight.
		ids := make([]string, n)
		for i, v := range m.status.Views {
			ids[i] = v.ID
		}
		word := "view"
		if n > 1 {
			word = "views"
		}
		agent += " │ " + word + " " + strings.Join(ids, ",") + " open"
	}
	clock := now.UTC().Format("15:04") + " UTC"
	left := " " + cut(host, 24) + " · master target │ " + agent
	return m.st.Header.Render(fit(left, m.w-len(clock)-1)) + clock + " "
}

func (m *Model) titleView() string {
	var title string
	switch m.screen {
	case screenDashboard:
		title = "Dashboard"
	case screenDetail:
		title = "Dashboard › Pair " + m.detail.pair
	case screenLogs:
		title = "Logs"
	case screenRecover:
		title = "Recovery"
	case screenProtect:
		title = "Protect › " + protStepNames[m.prot.step]
	case screenUnprotect:
		title = "Dashboard › Unprotect " + m.unprot.name
	case screenFailback:
		title = "Failback VM"
		if m.fb.step == fbList || m.fb.step == fbUndoAsk || m.fb.what != "create" && m.fb.step >= fbRun {
			title = "Dashboard › Failback runs"
		}
	}
	if m.help {
		title += " › Help"
	}
	left := " " + title
	var ro string
	if m.o.ReadOnly {
		ro = cut("read-only: "+m.o.ReadOnlyReason, m.w/2) + " · "
	}
	host, state, style := m.csView()
	// The registration gives way to the title: first the server's name
	// is cut, then the read-only reason, then the state's end.
	room := m.w - ansi.StringWidth(left) - 2
	cs := func(hostW int) string {
		if host == "" {
			return "CS: " + state
		}
		return "CS: " + cut(host, hostW) + " " + state
	}
	minHost := min(ansi.StringWidth(host), 8)
	text := cs(28)
	if w := ansi.StringWidth(ro + text); w > room {
		text = cs(max(minHost, 28-(w-room)))
	}
	if ro != "" && ansi.StringWidth(ro+text) > room {
		ro = "read-only · "
	}
	text = cut(text, max(room-ansi.StringWidth(ro), len("CS: …")))
	right := ro + text + " "
	return m.st.Title.Render(fit(left, m.w-ansi.StringWidth(right))) + m.st.Warn.Render(ro) + style.Render(text+" ")
}

// csView is the host's registration with the configuration server, as
// the agent's heartbeats see it, for the title line "CS: <host> <state>":
// "cs01 ✓ 12s ago", "cs01 ✗ unreachable 3m", or no host and "not
// registered".
func (m *Model) csView() (host, state string, style lipgloss.Style) {
	if !m.have {
		return "", "unknown", m.st.Dim
	}
	cs := m.status.CS
	if cs == nil {
		return "", "not registered", m.st.Warn
	}
	now := m.o.Now()
	host = cs.Server
	if h, port, err := net.SplitHostPort(cs.Server); err == nil && port == "443" {
		host = h
	}
	switch {
	case cs.OK:
		return host, "✓ " + shortAge(now.Sub(cs.LastHeartbeat)) + " ago", m.st.OK
	case cs.Problem == "":
		return host, "… connecting", m.st.Dim
	}
	return host, "✗ " + cs.Problem + " " + shortAge(now.Sub(cs.FailingSince)), m.st.Err
}

// shortAge is a duration in one unit: 12s, 3m, 5h, 2d.
func shortAge(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", max(int(d/time.Second), 0))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
}

// keysView is the footer's key line: a text field's keys while one has
// the keyboard, else the screen's Set as its footer draws it (the
// bindings in order as long as they fit, then help and quit).
func (m *Model) keysView() string {
	if ti := m.focused(); ti != nil {
		if ti == &m.wiz.destIn || ti == &m.wiz.timeIn {
			return fit(" enter next · ↑/shift+tab/esc back to the list · ctrl+u clear · paste works", m.w)
		}
		if m.screen == screenProtect {
			return fit(" enter next · ↑↓/tab move · esc back · ctrl+u clear · paste works", m.w)
		}
		if m.screen == screenUnprotect {
			return fit(" enter unprotect and purge · esc keep the retention · ↑↓ scroll · ctrl+u clear", m.w)
		}
		if m.screen == screenFailback && ti != &m.fb.confirm {
			return fit(" tab/↓ next · shift+tab/↑ back · enter next, on the last: plan · esc back", m.w)
		}
		if m.screen == screenFailback {
			return fit(" enter confirm · esc back · ctrl+u clear · paste works (terminal paste)", m.w)
		}
		return fit(" enter done · esc cancel · ctrl+u clear · paste works (terminal paste)", m.w)
	}
	if m.help {
		return m.helpKeys().Footer(m.w, m.st.Key)
	}
	return m.keySet().Footer(m.w, m.st.Key)
}

// noteView is the footer's second line: the last action's outcome or
// error with its age, else the agent's error.
func (m *Model) noteView() string {
	now := m.o.Now()
	switch {
	case m.note != "" && m.noteErr:
		return m.st.Err.Render(cut(" ✗ "+m.note+" ("+durText(now.Sub(m.noteAt))+" ago)", m.w))
	case m.note != "":
		return cut(" ✓ "+m.note+" ("+durText(now.Sub(m.noteAt))+" ago)", m.w)
	case m.agentErr != nil:
		return m.st.Err.Render(cut(" ✗ "+m.agentErr.Error(), m.w))
	}
	return ""
}
