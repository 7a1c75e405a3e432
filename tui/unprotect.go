package tui

import (
	"context"
	"fmt"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/tui/action"
)

// RemovePlan is a checked unprotect: a machine (a group) or one pair
// taken out of agent.toml.
type RemovePlan struct {
	Name          string
	Pairs         []string // the pairs that stop
	Summary, Diff string
	// Impl is the implementation's own plan.
	Impl any
}

// RemoveResult is what ApplyRemove did.
type RemoveResult struct {
	Path, Backup string
	Agent        bool     // a running agent took the new file
	Stopped      []string // the pairs it stopped
	Note         string   // e.g. no agent runs: it reads the file when it starts
}

// unprotPage is the unprotect dialog: what PlanRemove plans, keep or
// purge the retention, and the confirmation.
type unprotPage struct {
	name     string // what is unprotected: a group, or a pair's id
	group    bool   // name is a machine (u on its header), else one pair
	machine  string // a pair's machine when it holds others ("" else)
	plan     *RemovePlan
	err      string // a refusal or a failure, on the page
	busy     string
	applying bool
	purge    bool
	typed    textinput.Model // the name, typed to purge
	seq      int
	scroll   int
	over     int
}

type unprotPlanMsg struct {
	seq  int
	plan *RemovePlan
	err  error
}

type unprotApplyMsg struct {
	seq   int
	name  string
	purge bool
	res   *RemoveResult
	err   error
}

var _ page = (*unprotPage)(nil)

// unprotectHere opens the dialog on the dashboard's selection: a
// machine's header unprotects the machine; a pair row the pair alone,
// unless its machine holds no other pair (then the machine, so no empty
// group stays in agent.toml).
func (m *Model) unprotectHere() tea.Cmd {
	p := unprotPage{typed: newInput("Type the name to purge: ")}
	if g := m.selectedGroup(); g != "" {
		p.name, p.group = g, true
	} else if ps := m.selected(); ps != nil {
		g := groupOf(ps)
		others := 0
		for i := range m.status.Pairs {
			if q := &m.status.Pairs[i]; q.ID != ps.ID && groupOf(q) == g {
				others++
			}
		}
		switch {
		case others == 0 && ps.Group != "":
			p.name, p.group = g, true
		case others == 0:
			p.name = ps.ID
		default:
			p.name, p.machine = ps.ID, g
		}
	} else {
		return nil
	}
	p.typed.SetWidth(max(m.w-30, 10))
	p.busy = "planning…"
	m.unprot, m.screen = p, screenUnprotect
	seq, name, pr, ctx := p.seq, p.name, m.o.Protector, m.ctx
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		plan, err := pr.PlanRemove(c, name)
		return unprotPlanMsg{seq: seq, plan: plan, err: err}
	}
}

// unprotDisabled is why u cannot be used now, "" when it can.
func (m *Model) unprotDisabled() string {
	switch {
	case m.o.Protector == nil:
		return "unprotecting is not available in this console: use `mtconsole unprotect`"
	case m.selected() == nil && m.selectedGroup() == "":
		return "no pair is shown"
	}
	return ""
}

// unprotApply writes the plan and asks the agent to stop the pairs.
func (m *Model) unprotApply() tea.Cmd {
	p := &m.unprot
	if m.refuse("unprotect " + p.name) {
		return nil
	}
	if why := m.unprotReady(); why != "" {
		m.setNote(true, why)
		return nil
	}
	p.typed.Blur()
	p.err, p.applying = "", true
	p.busy = "writing agent.toml and asking the agent to stop the pairs…"
	seq, name, purge, plan, pr, ctx := p.seq, p.name, p.purge, p.plan, m.o.Protector, m.ctx
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		res, err := pr.ApplyRemove(c, plan, purge)
		return unprotApplyMsg{seq: seq, name: name, purge: purge, res: res, err: err}
	}
}

// unprotReady is why the plan cannot be applied now, "" when it can.
func (m *Model) unprotReady() string {
	p := &m.unprot
	switch {
	case p.busy != "":
		return strings.TrimSuffix(p.busy, "…") + ": wait for the answer"
	case p.plan == nil:
		return "nothing to unprotect: esc goes back"
	case p.purge && strings.TrimSpace(p.typed.Value()) != p.name:
		return fmt.Sprintf("type %s to purge its retention (esc keeps it)", p.name)
	}
	return ""
}

// unprotBack leaves the dialog, or the purge's typed confirmation.
func (m *Model) unprotBack() tea.Cmd {
	p := &m.unprot
	if p.applying {
		m.setNote(true, "the pairs are being stopped: wait for the result")
		return nil
	}
	if p.purge {
		p.purge = false
		p.typed.SetValue("")
		p.typed.Blur()
		return nil
	}
	p.seq++
	m.screen = screenDashboard
	return nil
}

func (m *Model) unprotScroll(msg tea.KeyPressMsg) tea.Cmd {
	p := &m.unprot
	step := map[string]int{"up": -1, "k": -1, "down": 1, "j": 1, "pgup": -10, "pgdown": 10}[msg.String()]
	p.scroll = min(max(p.scroll+step, 0), p.over)
	return nil
}

// unprotFieldKey takes the keys that belong to the dialog while the
// typed name has the keyboard.
func (m *Model) unprotFieldKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	switch msg.String() {
	case "enter":
		return m.unprotApply(), true
	case "esc":
		return m.unprotBack(), true
	case "up", "down", "pgup", "pgdown":
		return m.unprotScroll(msg), true
	}
	return nil, false
}

func (p *unprotPage) focused() *textinput.Model {
	if p.typed.Focused() {
		return &p.typed
	}
	return nil
}

func (p *unprotPage) update(m *Model, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case unprotPlanMsg:
		if msg.seq != p.seq {
			return nil
		}
		p.busy = ""
		if msg.err != nil {
			p.err = msg.err.Error()
			return nil
		}
		p.plan = msg.plan
	case unprotApplyMsg:
		if msg.seq != p.seq {
			return nil
		}
		p.busy, p.applying = "", false
		if msg.err != nil {
			p.err = msg.err.Error()
			if msg.res != nil && msg.res.Path != "" {
				// Written, but the agent did not take it: nothing to
				// apply again.
				p.plan = nil
			}
			return nil
		}
		m.screen = screenDashboard
		m.setNote(false, removeNote(msg.name, msg.purge, msg.res))
	}
	return nil
}

// removeNote is the footer's line on an unprotect done.
func removeNote(name string, purge bool, r *RemoveResult) string {
	s := "unprotected " + name
	switch {
	case r == nil:
	case r.Agent && len(r.Stopped) > 0:
		s += ": stopped " + strings.Join(r.Stopped, ", ")
	case r.Agent:
		s += ": the agent stopped no pair"
	case r.Note != "":
		s += ": " + r.Path + " written; " + r.Note
	}
	if purge && r != nil && r.Agent {
		s += "; retention purged"
	}
	return s
}

func (p *unprotPage) keys(m *Model) []action.Binding {
	g := m.globalKeys()
	apply := action.Binding{Keys: []string{"y"}, Help: "unprotect", Dangerous: true,
		What: "unprotect " + p.name, Disabled: m.unprotReady, Run: m.unprotApply}
	purge := action.Binding{Keys: []string{"p"}, Help: "purge retention", Dangerous: true,
		What: "purge the retention of " + p.name,
		Disabled: func() string {
			if p.plan == nil || p.busy != "" {
				return "nothing to unprotect: esc goes back"
			}
			return ""
		},
		Run: func() tea.Cmd {
			p.purge = true
			p.typed.SetValue("")
			p.typed.CursorEnd()
			return p.typed.Focus()
		}}
	scroll := action.Binding{Keys: []string{"up", "down", "k", "j", "pgup", "pgdown"}, Label: "↑↓/pgup/pgdn", Help: "scroll",
		RunKey: m.unprotScroll,
		Disabled: func() string {
			if p.over == 0 {
				return "the plan fits the screen"
			}
			return ""
		}}
	back := escKey("cancel", m.unprotBack)
	return []action.Binding{apply, purge, scroll, back, g.Logs, g.Dashboard}
}

func (p *unprotPage) view(m *Model, w, h int) string {
	var out []string
	out = append(out, "")
	if p.group {
		out = append(out, wrap(" ", "Unprotect machine "+p.name+": every pair of it stops.", w)...)
	} else if p.machine != "" {
		out = append(out, wrap(" ", "Unprotect pair "+p.name+" alone: the other disks of "+p.machine+
			" stay protected (u on the machine's header unprotects it all).", w)...)
	} else {
		out = append(out, wrap(" ", "Unprotect pair "+p.name+".", w)...)
	}
	out = append(out, wrap(" ", "The target disks are left as they are: nothing is wiped or re-partitioned. The previous agent.toml is kept as agent.toml.bak.", w)...)
	switch {
	case p.plan == nil:
	case p.purge:
		out = append(out, "", cut(" Retention: ( ) keep  (•) purge", w))
		for _, l := range wrap(" ", "Their journal and retention are removed once they stopped: no point of them can be recovered after.", w) {
			out = append(out, m.st.Err.Render(l))
		}
		out = append(out, cut(" "+p.typed.View(), w))
	default:
		out = append(out, "", cut(" Retention: (•) keep  ( ) purge (p)", w))
		out = append(out, wrap(" ", "Their journal and retention stay: mtconsole retention --dir recovers from them.", w)...)
	}
	out = append(out, "")
	var lines []string
	if p.plan != nil {
		lines = planLines(p.plan.Summary, p.plan.Diff, w)
	}
	var tail []string
	if p.busy != "" {
		tail = append(tail, "", cut(" … "+p.busy, w))
	}
	if p.err != "" {
		tail = append(tail, "")
		for _, l := range hang(" ✗ ", "   ", p.err, w) {
			tail = append(tail, m.st.Err.Render(l))
		}
	}
	if p.plan != nil && p.busy == "" && p.err == "" {
		prompt := fmt.Sprintf("Unprotect %s, keeping its retention? y unprotects, esc cancels.", p.name)
		if p.purge {
			prompt = fmt.Sprintf("Type %s and enter to unprotect it and purge its retention; esc keeps the retention.", p.name)
		}
		tail = append(tail, "")
		tail = append(tail, wrap(" ", prompt, w)...)
	}
	room := max(h-len(out)-len(tail)-1, 3)
	p.over = max(len(lines)-room, 0)
	p.scroll = min(p.scroll, p.over)
	end := min(p.scroll+room, len(lines))
	out = append(out, lines[p.scroll:end]...)
	if end < len(lines) || p.scroll > 0 {
		out = append(out, m.st.Dim.Render(cut(fmt.Sprintf(" lines %d-%d of %d (↑↓ pgup pgdn scroll)", p.scroll+1, end, len(lines)), w)))
	}
	out = append(out, tail...)
	if len(out) > h {
		out = out[:h]
	}
	return strings.Join(out, "\n")
}
