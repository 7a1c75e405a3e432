package tui

import (
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/tui/action"
)

// The recovery wizard as a page: its step decides its bindings. The
// wizard's state is the wizard type (recover.go); its steps' logic
// (wizNext, wizBack, editField) stays there.

var _ page = (*wizard)(nil)

// keys are the bindings of the step shown. Starting the recovery (enter on
// the confirmation) and the failback VM (v on a rollback's result) are
// Dangerous; a rollback's typed confirmation and the VM's are refused in
// read-only mode where they are typed (wizInputDone, fbConfirmDone).
func (w *wizard) keys(m *Model) []action.Binding {
	g := m.globalKeys()
	move := moveKey("move", func(d int) tea.Cmd {
		w.cur = min(max(w.cur+d, 0), max(m.listLen()-1, 0))
		return nil
	})
	toggle := action.Binding{Keys: []string{"space"}, Help: "toggle", Run: func() tea.Cmd {
		if w.cur >= len(w.items) {
			return nil
		}
		it := w.items[w.cur]
		if it.group != "" {
			// A machine is chosen alone: the requests name it.
			if w.group == it.group {
				w.group = ""
				return nil
			}
			return m.chooseGroup(it.group)
		}
		id := it.pair
		if w.group != "" {
			w.group = "" // a pair instead of the machine
		}
		w.chosen[id] = !w.chosen[id]
		if w.chosen[id] {
			return m.fetchTags(id)
		}
		return nil
	}}
	all := action.Binding{Keys: []string{"a"}, Help: "all/none", Run: func() tea.Cmd {
		all := w.group != "" || len(m.chosenPairs()) < len(w.pairs)
		w.group = ""
		for _, id := range w.pairs {
			w.chosen[id] = all
		}
		return nil
	}}
	next := action.Binding{Keys: []string{"enter"}, Help: "next", Run: m.wizNext}
	switch w.step {
	case stepPairs:
		next.Disabled = func() string {
			if len(m.chosenPairs()) == 0 {
				return "choose at least one pair (space toggles, a chooses all)"
			}
			return ""
		}
	case stepTag:
		next.Disabled = func() string {
			if w.cur >= len(m.commonTags()) {
				return "no tag that every chosen pair has: go back and choose another point"
			}
			return ""
		}
	case stepConfirm:
		next.Dangerous, next.What = true, "start the export"
		if w.mode == modeRollback {
			next.What = "roll back"
		}
	case stepRun:
		// The step turns into the result when the job ends; until then
		// there is no next.
		next.Disabled = func() string {
			return "the job is still running: its result shows here when it ends (esc: back to the dashboard, the job goes on)"
		}
	}
	back := escKey("back", m.wizBack)
	// Into the field under the cursor (the time, the export path); ↑,
	// shift+tab or esc come back out.
	edit := action.Binding{Keys: []string{"tab"}, Help: "edit", Run: m.editField,
		Disabled: func() string {
			switch {
			case m.listField() != nil:
				return ""
			case w.step == stepMode:
				return "only Export has a field, its path: move to it"
			}
			return `only "A time" has a field: move to it`
		}}
	var own []action.Binding
	switch w.step {
	case stepPairs:
		own = []action.Binding{move, toggle, all, next, back}
	case stepPoint, stepMode:
		own = []action.Binding{move, next, back, edit}
	case stepCheck, stepConfirm, stepRun:
		own = []action.Binding{next, back}
	case stepResult:
		own = []action.Binding{next, back, w.vsKey(m)}
	case stepTag:
		own = []action.Binding{move, next, back}
	}
	return append(own, g.Logs, g.Dashboard)
}

// vsKey is the failback VM on a rollback's result: the result's own text
// offers it, so it is left out of the footer.
func (w *wizard) vsKey(m *Model) action.Binding {
	return action.Binding{Keys: []string{"v"}, Help: "failback VM", Dangerous: true, NoFooter: true,
		Disabled: func() string {
			jv := m.jobs[w.job]
			switch {
			case m.o.VSphere == nil:
				return "vSphere is not configured for this console: the result says how"
			case jv == nil || jv.job.State != api.JobDone || jv.job.Mode != api.ModeRollback:
				return "the failback VM is made of the disks of a finished rollback"
			case len(m.vsDisks()) == 0:
				return "the rolled-back pairs' disks are not in the agent's status"
			}
			return ""
		},
		Run: m.openFailbackForm}
}

// update takes the wizard's messages, whichever page is shown: the
// agent's answer where the point lies, the recovery's start and the
// failback VM's plan, progress and end. Jobs are the root's: the console
// shows them on every screen.
func (w *wizard) update(m *Model, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case resolvedMsg:
		return m.onResolved(msg)
	case recoverStartedMsg:
		return m.onRecoverStarted(msg)
	case viewOpenedMsg:
		return m.onViewOpened(msg)
	}
	return nil
}

func (w *wizard) view(m *Model, width, h int) string { return m.wizView(width, h) }
