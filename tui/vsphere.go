package tui

import (
	"context"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/setup"
)

// VSphere creates the failback VM from the disks a rollback recovered:
// the console's twin of mtconsole vsphere create-vm, calling the same
// disks/vsphere functions. Disks are the master target's block devices
// (the pairs' targets); name is the VM's display name.
type VSphere interface {
	// Hardware is the failback VM's hardware line, prefilled for these
	// disks (cpus=2 mem=2048 guest=… fw=bios scsi=… poweron=yes nic=…):
	// the form's one field the admin edits.
	Hardware(disks []string) string
	// Plan is the dry run: the plan as text and its readiness checks.
	// It changes nothing.
	Plan(ctx context.Context, disks []string, name, hw string) (string, []setup.Check, error)
	// Create plans again, refuses when a check fails, and runs the plan,
	// calling progress with a line per step as it goes; it returns the
	// report. A failure or a cancel has undone every step begun.
	Create(ctx context.Context, disks []string, name, hw string, progress func(string)) (string, error)
}

// VSphereHowTo is what the result screen says when the console has no
// vSphere connection.
const VSphereHowTo = "vSphere is not configured for this console: to create the failback VM from here, " +
	"put url, user, password_file and thumbprint in /etc/mtconsole/vsphere.conf (mode 0600) or give " +
	"mtconsole console the --vsphere-* flags; or run mtconsole vsphere create-vm."

// vsState is the failback VM's part of the recovery wizard.
type vsState struct {
	disks    []string
	name     string
	hw       string
	planning bool
	plan     string
	checks   []setup.Check
	err      string
	progress []string
	report   string
	failed   bool
	ch       chan tea.Msg
}

type vsPlanMsg struct {
	text   string
	checks []setup.Check
	err    error
}

type vsProgressMsg struct {
	ch   chan tea.Msg
	line string
}

type vsDoneMsg struct {
	ch     chan tea.Msg
	report string
	err    error
}

// vsDisks are the disks a finished rollback recovered: its pairs'
// targets. None for an export (images, not disks) or a failed job.
func (m *Model) vsDisks() []string {
	jv := m.jobs[m.wiz.job]
	if jv == nil || jv.job.State != api.JobDone || jv.job.Mode != api.ModeRollback {
		return nil
	}
	var out []string
	for _, id := range jv.job.Pairs {
		if p := m.pair(id); p != nil && p.Target != "" {
			out = append(out, p.Target)
		}
	}
	return out
}

// vsOfferLines are the result screen's lines about the failback VM.
func (m *Model) vsOfferLines(w int) []string {
	jv := m.jobs[m.wiz.job]
	if jv == nil || jv.job.State != api.JobDone {
		return nil
	}
	out := []string{""}
	switch {
	case jv.job.Mode != api.ModeRollback:
		return append(out, styled(m.st.Dim, wrap("   ", "The failback VM is made of disks: an export writes images; "+
			"copy one onto a disk of this master target, then run mtconsole vsphere create-vm.", w))...)
	case m.o.VSphere == nil:
		return append(out, styled(m.st.Dim, wrap("   ", VSphereHowTo, w))...)
	case m.o.ReadOnly:
		return nil
	}
	return append(out, wrap("   ", "v: create the failback VM in vSphere from "+strings.Join(m.vsDisks(), ", "), w)...)
}

// vsStart asks for the failback VM's name, the first pair's id by
// default.
func (m *Model) vsStart() tea.Cmd {
	disks := m.vsDisks()
	if m.o.VSphere == nil || m.o.ReadOnly || len(disks) == 0 {
		return nil
	}
	w := &m.wiz
	name := w.vs.name
	if name == "" {
		name = m.jobs[w.job].job.Pairs[0]
	}
	hw := w.vs.hw
	if hw == "" {
		hw = m.o.VSphere.Hardware(disks)
	}
	w.vs = vsState{disks: disks, name: name, hw: hw}
	w.step = stepVSPlan
	w.vsHW.SetValue(hw)
	w.vsName.SetValue(name)
	w.vsName.CursorEnd()
	return w.vsName.Focus()
}

// vsPlan runs the dry run.
func (m *Model) vsPlan() tea.Cmd {
	vs, ctx, disks, name, hw := m.o.VSphere, m.ctx, m.wiz.vs.disks, m.wiz.vs.name, m.wiz.vs.hw
	m.wiz.vs.planning, m.wiz.vs.plan, m.wiz.vs.checks, m.wiz.vs.err = true, "", nil, ""
	return func() tea.Msg {
		text, checks, err := vs.Plan(ctx, disks, name, hw)
		return vsPlanMsg{text: text, checks: checks, err: err}
	}
}

func (m *Model) onVSPlan(msg vsPlanMsg) tea.Cmd {
	w := &m.wiz
	if w.step != stepVSPlan || !w.vs.planning {
		return nil
	}
	w.vs.planning, w.vs.plan, w.vs.checks = false, msg.text, msg.checks
	if msg.err != nil {
		w.vs.err = msg.err.Error()
		return nil
	}
	if vsFailed(msg.checks) {
		return nil
	}
	w.vsConfirm.SetValue("")
	return w.vsConfirm.Focus()
}

func vsFailed(cs []setup.Check) bool {
	for _, c := range cs {
		if c.Status == setup.Fail {
			return true
		}
	}
	return false
}

// vsCreate runs the plan; its progress and end arrive through a channel.
func (m *Model) vsCreate() tea.Cmd {
	w := &m.wiz
	vs, ctx, disks, name, hw := m.o.VSphere, m.ctx, w.vs.disks, w.vs.name, w.vs.hw
	ch := make(chan tea.Msg, 64)
	w.vs.ch, w.step = ch, stepVSRun
	go func() {
		report, err := vs.Create(ctx, disks, name, hw, func(line string) { ch <- vsProgressMsg{ch: ch, line: line} })
		ch <- vsDoneMsg{ch: ch, report: report, err: err}
		close(ch)
	}()
	return vsWait(ch)
}

func vsWait(ch chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-ch
		if !ok {
			return nil
		}
		return msg
	}
}

func (m *Model) onVSProgress(msg vsProgressMsg) tea.Cmd {
	if m.wiz.vs.ch == msg.ch {
		m.wiz.vs.progress = append(m.wiz.vs.progress, msg.line)
	}
	return vsWait(msg.ch)
}

func (m *Model) onVSDone(msg vsDoneMsg) tea.Cmd {
	if msg.err != nil {
		m.setNote(true, "failback VM: "+msg.err.Error())
	} else {
		m.setNote(false, "failback VM created and powered on")
	}
	w := &m.wiz
	if w.vs.ch != msg.ch {
		return nil
	}
	w.vs.report, w.step = msg.report, stepVSDone
	if msg.err != nil {
		w.vs.failed, w.vs.err = true, msg.err.Error()
	}
	return nil
}

// vsInputDone ends the name or the confirmation field.
func (m *Model) vsInputDone(ti *textinput.Model, ok bool) tea.Cmd {
	w := &m.wiz
	ti.Blur()
	w.fieldErr = ""
	if !ok {
		w.step = stepResult
		return nil
	}
	v := strings.TrimSpace(ti.Value())
	if ti == &w.vsName {
		if v == "" {
			w.fieldErr = "give the failback VM a name"
			return w.vsName.Focus()
		}
		w.vs.name = v
		w.vsHW.CursorEnd()
		return w.vsHW.Focus()
	}
	if ti == &w.vsHW {
		if v == "" {
			w.fieldErr = "give the hardware: cpus=N mem=MB guest=ID fw=bios|efi scsi=TYPE poweron=yes|no nic=NETWORK"
			return w.vsHW.Focus()
		}
		w.vs.hw = v
		return m.vsPlan()
	}
	if m.refuse("create the failback VM") {
		return nil
	}
	if v != w.vs.name {
		w.fieldErr = fmt.Sprintf("type %s exactly to create the VM, or esc to go back", w.vs.name)
		return w.vsConfirm.Focus()
	}
	return m.vsCreate()
}

// vsView draws the failback VM's steps in h lines: on the plan, the
// checks and the confirmation always show, the plan's steps get the room
// left.
func (m *Model) vsView(w, h int) []string {
	wz := &m.wiz
	vs := &wz.vs
	head := []string{m.st.Bold.Render(cut(" Failback VM in vSphere · "+vs.name, w)), ""}
	head = append(head, hang("   disks: ", "          ", strings.Join(vs.disks, ", "), w)...)
	if wz.step != stepVSPlan || (!wz.vsName.Focused() && !wz.vsHW.Focused()) {
		head = append(head, hang("   hardware: ", "             ", vs.hw, w)...)
	}
	var tail []string
	switch wz.step {
	case stepVSPlan:
		if wz.vsName.Focused() || wz.vsHW.Focused() {
			hw := "   " + wz.vsHW.View()
			if !wz.vsHW.Focused() {
				hw = m.st.Dim.Render(cut("   Hardware: "+wz.vsHW.Value(), w))
			}
			return append(head, "", "   "+wz.vsName.View(), hw, "",
				cut("   enter: next field, then plan it (a dry run: nothing changes) · esc: back", w))
		}
		if vs.planning {
			return append(head, "", "   Planning (dry run)…")
		}
		if vs.err != "" {
			head = append(head, "")
			head = append(head, m.errLines("   ✗ ", vs.err, w)...)
			return append(head, "", cut("   esc: back", w))
		}
		head = append(head, m.st.Bold.Render(cut("   Plan (a dry run: nothing changes until you confirm)", w)))
		var plan []string
		for _, l := range strings.Split(strings.TrimRight(vs.plan, "\n"), "\n") {
			t := strings.TrimLeft(l, " ")
			if t == "" {
				continue
			}
			ind := strings.Repeat(" ", 3+len(l)-len(t))
			plan = append(plan, hang(ind, ind+"  ", t, w)...)
		}
		if len(vs.checks) > 0 {
			tail = append(tail, m.st.Bold.Render("   Readiness"))
			for _, c := range vs.checks {
				tail = append(tail, m.checkLines(vsCheck(c), w)...)
			}
		}
		tail = append(tail, "")
		if vsFailed(vs.checks) {
			tail = append(tail, m.errLines("   ", "A check failed: fix what is marked ✗, then v again. esc: back", w)...)
		} else {
			for _, l := range wrap("   ", fmt.Sprintf("▲ This detaches the disks from this master target. Type %s and press enter.", vs.name), w) {
				tail = append(tail, m.st.Warn.Render(l))
			}
			tail = append(tail, "   "+wz.vsConfirm.View())
		}
		room := h - len(head) - len(tail)
		if wz.fieldErr != "" {
			room -= 1 + len(m.errLines("   ✗ ", wz.fieldErr, w))
		}
		if len(plan) > room {
			more := len(plan) - max(room-1, 0)
			plan = append(plan[:max(room-1, 0)], m.st.Dim.Render(cut(fmt.Sprintf(
				"   … %d more lines: mtconsole vsphere create-vm --dry-run shows the whole plan", more), w)))
		}
		return append(append(head, plan...), tail...)
	case stepVSRun, stepVSDone:
		head = append(head, "")
		for _, l := range vs.progress {
			head = append(head, hang("   ", "     ", l, w)...)
		}
		if wz.step == stepVSRun {
			return append(head, "", "   ⟳ Creating… (the console waits for the report)")
		}
		head = append(head, "")
		if vs.failed {
			head = append(head, m.errLines("   ✗ ", vs.err, w)...)
		}
		for _, l := range strings.Split(strings.TrimRight(vs.report, "\n"), "\n") {
			if l != "" {
				head = append(head, hang("   ", "     ", l, w)...)
			}
		}
		head = append(head, "", "   enter or esc: back to the dashboard")
	}
	return head
}

// vsCheck is a readiness check as the wizard's checks show it.
func vsCheck(c setup.Check) check {
	level := checkOK
	switch c.Status {
	case setup.Fail:
		level = checkFail
	case setup.Warn:
		level = checkWarn
	}
	text := c.Title
	if c.Detail != "" {
		text += ": " + c.Detail
	}
	if c.Status == setup.Fail && c.Fix != "" {
		text += " (fix: " + c.Fix + ")"
	}
	return check{level, text}
}
