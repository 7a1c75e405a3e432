package tui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/failback"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/setup"
	"github.com/mtconsole/mtconsole/tui/action"
)

// VSphere creates the failback VM from the disks a rollback recovered,
// and finishes or reverses the runs a kill left unfinished: the console's
// twin of mtconsole vsphere create-vm and vsphere failback resume|undo,
// calling the same failback and disks/vsphere functions. Disks are the
// master target's block devices (the pairs' targets).
type VSphere interface {
	// SourceForm is the form prefilled for these disks: the defaults for
	// the name and the disk count, with the firmware, guest id and
	// controller the disks' partition tables show; the notes say where
	// each default came from. It reads the disks (read-only).
	SourceForm(name string, disks []string) (failback.Form, []string)
	// Plan is the dry run of the form: the plan as text and its
	// readiness checks. It changes nothing.
	Plan(ctx context.Context, disks []string, f failback.Form) (string, []setup.Check, error)
	// Create plans again, refuses when a check fails, and runs the plan,
	// calling progress with a line per step as it goes; it returns the
	// report. A failure or a cancel has undone every step begun.
	Create(ctx context.Context, disks []string, f failback.Form, progress func(string)) (string, error)
	// Unfinished are the runs whose plan files are neither done nor
	// undone: killed, or whose undo failed.
	Unfinished() ([]failback.Pending, error)
	// Resume finishes the run of a plan file; Undo reverses it. Both
	// report a line per step as Create does.
	Resume(ctx context.Context, planFile string, progress func(string)) (string, error)
	Undo(ctx context.Context, planFile string, progress func(string)) (string, error)
}

// VSphereHowTo is what the result screen says when the console has no
// vSphere connection.
const VSphereHowTo = "vSphere is not configured for this console: to create the failback VM from here, " +
	"put url, user, password_file and thumbprint in /etc/mtconsole/vsphere.conf (mode 0600) or give " +
	"mtconsole console the --vsphere-* flags; or run mtconsole vsphere create-vm."

type fbStep int

const (
	fbForm    fbStep = iota // the failback VM's fields
	fbPlan                  // the dry run, its checks and the typed confirmation
	fbList                  // the unfinished runs, to resume or undo
	fbUndoAsk               // undo's typed confirmation
	fbRun                   // create, resume or undo under way
	fbDone
)

// fbDisk is a recovered disk with its size, as the form shows it.
type fbDisk struct {
	path  string
	bytes int64
}

// fbPage is the failback screen: the failback VM's form, plan and run
// (opened by v on a rollback's result), and the unfinished runs (f on the
// dashboard).
type fbPage struct {
	step fbStep
	back screen // where esc from the form or the list goes
	job  string // the rollback the disks come from ("" from the list)

	disks  []fbDisk
	form   failback.Form
	fields []failback.Field
	inputs map[string]*textinput.Model // the text fields, by key
	cur    int                         // the field under the cursor
	top    int                         // the first field shown
	errKey string                      // the field the error is about
	err    string                      // the field's, or the form's, error
	notes  []string                    // where the probed defaults came from
	probe  int                         // the source probe whose answer is awaited (seq)

	seq      int
	planning bool
	plan     string
	checks   []setup.Check
	planErr  string
	confirm  textinput.Model

	pending []failback.Pending
	scanErr string
	sel     int // the run under the cursor in the list

	// The run under way or ended: create, resume or undo.
	what     string
	name     string // the VM's
	file     string // the plan file resumed or undone
	progress []string
	report   string
	failed   bool
	runErr   string
	ch       chan tea.Msg
}

type fbPlanMsg struct {
	seq    int
	text   string
	checks []setup.Check
	err    error
}

type fbProgressMsg struct {
	ch   chan tea.Msg
	line string
}

type fbDoneMsg struct {
	ch     chan tea.Msg
	report string
	err    error
}

// fbSourceMsg is SourceForm's answer for the form opened as probe seq.
type fbSourceMsg struct {
	seq   int
	form  failback.Form
	notes []string
}

type fbPendingMsg struct {
	list []failback.Pending
	err  error
}

var _ page = (*fbPage)(nil)

func (p *fbPage) running() bool { return p.step == fbRun }

// vsDisks are the disks a finished rollback recovered: its pairs'
// targets, with their sizes. None for an export (images, not disks) or a
// failed job.
func (m *Model) vsDisks() []fbDisk {
	jv := m.jobs[m.wiz.job]
	if jv == nil || jv.job.State != api.JobDone || jv.job.Mode != api.ModeRollback {
		return nil
	}
	var out []fbDisk
	for _, id := range jv.job.Pairs {
		if p := m.pair(id); p != nil && p.Target != "" {
			out = append(out, fbDisk{path: p.Target, bytes: p.TargetBytes})
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
	var paths []string
	for _, d := range m.vsDisks() {
		paths = append(paths, d.path)
	}
	return append(out, wrap("   ", "v: create the failback VM in vSphere from "+strings.Join(paths, ", "), w)...)
}

// openFailbackForm opens the failback VM's form for the rollback on the
// wizard's result, prefilled from the source: its name (the machine's
// group), its disks (PVSCSI past 15). The form as edited stays for the
// same rollback.
func (m *Model) openFailbackForm() tea.Cmd {
	disks := m.vsDisks()
	if m.o.VSphere == nil || m.o.ReadOnly || len(disks) == 0 {
		return nil
	}
	p := &m.fb
	if p.running() {
		m.screen = screenFailback
		return nil
	}
	var probe tea.Cmd
	if p.job != m.wiz.job || p.inputs == nil {
		name := m.fbSourceName()
		seq := p.seq + 1
		*p = fbPage{job: m.wiz.job, disks: disks, form: failback.DefaultForm(name, len(disks)), pending: p.pending, scanErr: p.scanErr,
			seq: seq, probe: seq}
		p.rebuild()
		// The disks' partition tables are read off the event loop; the
		// defaults they give fill the fields not yet changed.
		vs, paths := m.o.VSphere, make([]string, len(disks))
		for i, d := range disks {
			paths[i] = d.path
		}
		probe = func() tea.Msg {
			f, notes := vs.SourceForm(name, paths)
			return fbSourceMsg{seq: seq, form: f, notes: notes}
		}
	}
	p.step, p.back, p.cur, p.top, p.err, p.errKey = fbForm, screenRecover, 0, 0, "", ""
	p.confirm = newInput("Confirm: ")
	p.setWidth(m.w)
	m.screen = screenFailback
	return tea.Batch(p.focus(), probe)
}

// fbSourceName is the failback VM's default name: the protection group
// of the rolled-back pairs (the first that has one), else the first
// pair's id.
func (m *Model) fbSourceName() string {
	jv := m.jobs[m.wiz.job]
	for _, id := range jv.job.Pairs {
		if pr := m.pair(id); pr != nil && pr.Group != "" {
			return pr.Group
		}
	}
	return jv.job.Pairs[0]
}

// onFBSource takes the probed defaults into the form opened for them:
// firmware, guest id and controller, each only while it still holds the
// plain default (an edit made meanwhile stands), and the notes.
func (m *Model) onFBSource(msg fbSourceMsg) tea.Cmd {
	p := &m.fb
	if msg.seq != p.probe || p.inputs == nil {
		return nil
	}
	p.probe = 0
	// Not rebuild: a text field being typed in keeps what it holds.
	def := failback.DefaultForm(p.form.Name, len(p.disks))
	if p.form.Firmware == def.Firmware && msg.form.Firmware != "" {
		p.form.Firmware = msg.form.Firmware
	}
	if p.form.Controller == def.Controller && msg.form.Controller != "" {
		p.form.Controller = msg.form.Controller
	}
	if ti := p.inputs["guest-id"]; p.form.GuestID == def.GuestID && msg.form.GuestID != "" && (ti == nil || ti.Value() == def.GuestID) {
		p.form.GuestID = msg.form.GuestID
		if ti != nil {
			ti.SetValue(msg.form.GuestID)
		}
	}
	p.notes = msg.notes
	return nil
}

// openFailbackList shows the unfinished runs (read afresh).
func (m *Model) openFailbackList() tea.Cmd {
	if m.o.VSphere == nil {
		m.setNote(true, "vSphere is not configured for this console: mtconsole vsphere failback list|resume|undo --plan-dir DIR")
		return nil
	}
	p := &m.fb
	m.screen = screenFailback
	if p.running() {
		return nil
	}
	p.step, p.back, p.sel, p.err = fbList, screenDashboard, 0, ""
	p.setBlur()
	return m.fbScan()
}

// fbScan reads the unfinished runs' plan files.
func (m *Model) fbScan() tea.Cmd {
	vs := m.o.VSphere
	if vs == nil {
		return nil
	}
	return func() tea.Msg {
		list, err := vs.Unfinished()
		return fbPendingMsg{list: list, err: err}
	}
}

// rebuild makes the form's fields from the form: a NIC added or removed
// adds or removes its fields. The text fields show the form's values.
func (p *fbPage) rebuild() {
	key := ""
	if p.cur < len(p.fields) {
		key = p.fields[p.cur].Key
	}
	p.fields = p.form.Fields()
	inputs := map[string]*textinput.Model{}
	for _, f := range p.fields {
		if f.Choices != nil {
			continue
		}
		ti := newInput(fmt.Sprintf("%-18s ", f.Label+":"))
		ti.Placeholder = f.Hint
		ti.SetValue(p.form.Value(f.Key))
		if old := p.inputs[f.Key]; old != nil {
			ti.SetWidth(old.Width())
		}
		inputs[f.Key] = &ti
	}
	p.inputs = inputs
	if i := slices.IndexFunc(p.fields, func(f failback.Field) bool { return f.Key == key }); i >= 0 {
		p.cur = i
	}
	p.cur = min(p.cur, len(p.fields)-1)
}

func (p *fbPage) setWidth(w int) {
	for _, ti := range p.inputs {
		ti.SetWidth(max(w-28, 10))
	}
	p.confirm.SetWidth(max(w-20, 10))
}

func (p *fbPage) setBlur() {
	for _, ti := range p.inputs {
		ti.Blur()
	}
	p.confirm.Blur()
}

// input is the text field under the cursor, nil on a choice.
func (p *fbPage) input() *textinput.Model {
	if p.step != fbForm || p.cur >= len(p.fields) {
		return nil
	}
	return p.inputs[p.fields[p.cur].Key]
}

func (p *fbPage) focus() tea.Cmd {
	p.setBlur()
	if ti := p.input(); ti != nil {
		ti.CursorEnd()
		return ti.Focus()
	}
	return nil
}

func (p *fbPage) focused() *textinput.Model {
	if ti := p.input(); ti != nil && ti.Focused() {
		return ti
	}
	if p.confirm.Focused() {
		return &p.confirm
	}
	return nil
}

// leave takes the field under the cursor into the form and checks it
// with the fields before it (create-vm's rules); false keeps the cursor
// there with the error shown.
func (p *fbPage) leave() bool {
	f := p.fields[p.cur]
	v := p.form.Value(f.Key)
	if ti := p.inputs[f.Key]; ti != nil {
		v = ti.Value()
	}
	next := p.form
	next.NICs = slices.Clone(p.form.NICs)
	err := next.Set(f.Key, v)
	if err == nil {
		err = next.Check(len(p.disks), f.Key)
	}
	if err != nil {
		if fe, ok := failback.AsFieldError(err); ok && fe.Key != f.Key {
			// An earlier field's rule: go there.
			p.cur = slices.IndexFunc(p.fields, func(x failback.Field) bool { return x.Key == fe.Key })
		}
		p.errKey, p.err = f.Key, err.Error()
		if fe, ok := failback.AsFieldError(err); ok {
			p.errKey = fe.Key
		}
		return false
	}
	p.form, p.errKey, p.err = next, "", ""
	p.rebuild()
	return true
}

// move goes d fields on, leaving the field under the cursor first.
func (m *Model) fbMove(d int) tea.Cmd {
	p := &m.fb
	if !p.leave() {
		return p.focus()
	}
	p.cur = min(max(p.cur+d, 0), len(p.fields)-1)
	return p.focus()
}

// fbEnter is enter on the form: the next field, on the last one the
// whole form checked and planned.
func (m *Model) fbEnter() tea.Cmd {
	p := &m.fb
	if p.cur < len(p.fields)-1 {
		return m.fbMove(1)
	}
	if !p.leave() {
		return p.focus()
	}
	if err := p.form.Check(len(p.disks), ""); err != nil {
		p.err = err.Error()
		if fe, ok := failback.AsFieldError(err); ok {
			p.errKey = fe.Key
			p.cur = slices.IndexFunc(p.fields, func(x failback.Field) bool { return x.Key == fe.Key })
		}
		return p.focus()
	}
	return m.fbPlan()
}

// fbChoose turns a choice field's value: +1 the next, -1 the one before.
func (m *Model) fbChoose(d int) tea.Cmd {
	p := &m.fb
	f := p.fields[p.cur]
	i := slices.Index(f.Choices, p.form.Value(f.Key))
	v := f.Choices[(i+d+len(f.Choices))%len(f.Choices)]
	if err := p.form.Set(f.Key, v); err != nil {
		p.errKey, p.err = f.Key, err.Error()
		return nil
	}
	if p.errKey == f.Key {
		p.errKey, p.err = "", ""
	}
	return nil
}

// fbFieldKey takes the keys that belong to the form while a text field
// has the keyboard: moving between fields, enter and esc.
func (m *Model) fbFieldKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	p := &m.fb
	if p.step != fbForm {
		return nil, false
	}
	switch msg.String() {
	case "up", "shift+tab":
		return m.fbMove(-1), true
	case "down", "tab":
		return m.fbMove(1), true
	case "enter":
		return m.fbEnter(), true
	case "esc":
		return m.fbBack(), true
	}
	return nil, false
}

// fbBack is esc: from the form to where it was opened, from the plan to
// the form, from the undo's confirmation to the list; from a report to
// the dashboard.
func (m *Model) fbBack() tea.Cmd {
	p := &m.fb
	switch p.step {
	case fbForm, fbList:
		p.setBlur()
		p.err, p.errKey = "", ""
		m.screen = p.back
	case fbPlan:
		p.seq++ // a plan still being made is dropped
		p.step, p.planning = fbForm, false
		return p.focus()
	case fbUndoAsk:
		p.step = fbList
		p.err = ""
		p.confirm.Blur()
	case fbRun:
		m.setNote(true, "the failback run goes on: wait for its report")
	case fbDone:
		p.setBlur()
		switch {
		case p.what == "create" && !p.failed:
			// The rollback's failback is made: the wizard is done too.
			m.wiz = wizard{}
			*p = fbPage{pending: p.pending, scanErr: p.scanErr}
			m.screen = screenDashboard
		case p.what == "create":
			// Undone: back to the rollback's result, whose v opens the
			// form as it was.
			p.step, p.report, p.progress = fbForm, "", nil
			m.screen = screenRecover
		default:
			p.step, p.report, p.progress, p.back = fbList, "", nil, screenDashboard
		}
		return m.fbScan()
	}
	return nil
}

// fbPlan runs the dry run.
func (m *Model) fbPlan() tea.Cmd {
	p := &m.fb
	p.setBlur()
	p.seq++
	p.step, p.planning, p.plan, p.checks, p.planErr = fbPlan, true, "", nil, ""
	vs, ctx, disks, f, seq := m.o.VSphere, m.ctx, p.diskPaths(), p.form, p.seq
	f.NICs = slices.Clone(f.NICs)
	return func() tea.Msg {
		text, checks, err := vs.Plan(ctx, disks, f)
		return fbPlanMsg{seq: seq, text: text, checks: checks, err: err}
	}
}

func (p *fbPage) diskPaths() []string {
	out := make([]string, len(p.disks))
	for i, d := range p.disks {
		out[i] = d.path
	}
	return out
}

// vmName is the VM the form makes or fills.
func (p *fbPage) vmName() string {
	if p.form.OntoVM != "" {
		return p.form.OntoVM
	}
	return p.form.Name
}

func (m *Model) onFBPlan(msg fbPlanMsg) tea.Cmd {
	p := &m.fb
	if p.step != fbPlan || msg.seq != p.seq {
		return nil
	}
	p.planning, p.plan, p.checks = false, msg.text, msg.checks
	if msg.err != nil {
		p.planErr = msg.err.Error()
		return nil
	}
	if vsFailed(msg.checks) {
		return nil
	}
	p.confirm.SetValue("")
	return p.confirm.Focus()
}

func vsFailed(cs []setup.Check) bool {
	for _, c := range cs {
		if c.Status == setup.Fail {
			return true
		}
	}
	return false
}

// fbStart runs create, resume or undo; its progress and end arrive
// through a channel.
func (m *Model) fbStart(what string, run func(ctx context.Context, progress func(string)) (string, error)) tea.Cmd {
	p := &m.fb
	p.setBlur()
	ch := make(chan tea.Msg, 64)
	p.ch, p.step, p.what, p.progress, p.report, p.failed, p.runErr, p.err = ch, fbRun, what, nil, "", false, "", ""
	ctx := m.ctx
	go func() {
		report, err := run(ctx, func(line string) { ch <- fbProgressMsg{ch: ch, line: line} })
		ch <- fbDoneMsg{ch: ch, report: report, err: err}
		close(ch)
	}()
	return fbWait(ch)
}

func fbWait(ch chan tea.Msg) tea.Cmd {
	return func() tea.Msg {
		msg, ok := <-ch
		if !ok {
			return nil
		}
		return msg
	}
}

func (m *Model) onFBProgress(msg fbProgressMsg) tea.Cmd {
	if m.fb.ch == msg.ch {
		m.fb.progress = append(m.fb.progress, msg.line)
	}
	return fbWait(msg.ch)
}

func (m *Model) onFBDone(msg fbDoneMsg) tea.Cmd {
	p := &m.fb
	verb := map[string]string{"create": "created", "resume": "resumed", "undo": "undone"}[p.what]
	if msg.err != nil {
		m.setNote(true, "failback VM "+p.name+": "+msg.err.Error())
	} else {
		m.setNote(false, "failback VM "+p.name+" "+verb)
	}
	if p.ch != msg.ch {
		return nil
	}
	p.report, p.step = msg.report, fbDone
	if msg.err != nil {
		p.failed, p.runErr = true, msg.err.Error()
	}
	return m.fbScan()
}

// fbConfirmDone ends the typed confirmation of the plan or of an undo.
func (m *Model) fbConfirmDone(ok bool) tea.Cmd {
	p := &m.fb
	if !ok {
		return m.fbBack()
	}
	v := strings.TrimSpace(p.confirm.Value())
	vs := m.o.VSphere
	switch p.step {
	case fbPlan:
		if m.refuse("create the failback VM") {
			return nil
		}
		if v != p.vmName() {
			p.err = fmt.Sprintf("type %s exactly to go on, or esc to go back", p.vmName())
			return nil
		}
		disks, f := p.diskPaths(), p.form
		f.NICs = slices.Clone(f.NICs)
		p.name, p.file = p.vmName(), ""
		return m.fbStart("create", func(ctx context.Context, progress func(string)) (string, error) {
			return vs.Create(ctx, disks, f, progress)
		})
	case fbUndoAsk:
		if m.refuse("undo the failback run") {
			return nil
		}
		if v != p.name {
			p.err = fmt.Sprintf("type %s exactly to undo the run, or esc to go back", p.name)
			return nil
		}
		file := p.file
		return m.fbStart("undo", func(ctx context.Context, progress func(string)) (string, error) {
			return vs.Undo(ctx, file, progress)
		})
	}
	return nil
}

// fbResume finishes the run under the list's cursor.
func (m *Model) fbResume() tea.Cmd {
	p := &m.fb
	pd := p.pending[p.sel]
	p.name, p.file = pd.Name, pd.File
	vs, file := m.o.VSphere, pd.File
	return m.fbStart("resume", func(ctx context.Context, progress func(string)) (string, error) {
		return vs.Resume(ctx, file, progress)
	})
}

// fbAskUndo asks for the undo's typed confirmation.
func (m *Model) fbAskUndo() tea.Cmd {
	p := &m.fb
	pd := p.pending[p.sel]
	p.step, p.name, p.file, p.err = fbUndoAsk, pd.Name, pd.File, ""
	p.confirm = newInput("Confirm: ")
	p.setWidth(m.w)
	return p.confirm.Focus()
}

func (m *Model) onFBPending(msg fbPendingMsg) tea.Cmd {
	p := &m.fb
	p.pending, p.scanErr = msg.list, ""
	switch {
	case errors.Is(msg.err, fs.ErrPermission):
		p.scanErr = "run the console as root to see them: " + msg.err.Error()
	case msg.err != nil:
		p.scanErr = msg.err.Error()
	}
	p.sel = min(p.sel, max(len(p.pending)-1, 0))
	return nil
}

// fbNotice is the dashboard's line about unfinished runs, "" when none.
func (m *Model) fbNotice(w int) string {
	p := &m.fb
	switch {
	case m.o.VSphere == nil:
		return ""
	case p.scanErr != "":
		return m.st.Err.Render(cut(" ✗ failback plan files: "+p.scanErr, w))
	case len(p.pending) == 0 || p.running():
		return ""
	}
	n := fmt.Sprintf("%d unfinished failback runs", len(p.pending))
	if len(p.pending) == 1 {
		n = "an unfinished failback run (" + p.pending[0].Name + ")"
	}
	return m.st.Warn.Render(cut(" ▲ "+n+": f to resume or undo", w))
}

// keys are the failback screen's bindings for the step shown. The text
// fields' keys are fbFieldKey's; these are the choice fields', the
// plan's, the list's and the report's.
func (p *fbPage) keys(m *Model) []action.Binding {
	g := m.globalKeys()
	back := escKey("back", m.fbBack)
	switch p.step {
	case fbForm:
		return []action.Binding{
			{Keys: []string{"space", "right", "left"}, Label: "space/←→", Help: "choose",
				RunKey: func(msg tea.KeyPressMsg) tea.Cmd {
					if msg.String() == "left" {
						return m.fbChoose(-1)
					}
					return m.fbChoose(1)
				}},
			{Keys: []string{"enter"}, Help: "next (on the last: plan)", Run: m.fbEnter},
			{Keys: []string{"tab", "down", "j"}, Label: "tab/↓", Help: "next field", Run: func() tea.Cmd { return m.fbMove(1) }},
			{Keys: []string{"shift+tab", "up", "k"}, Label: "shift+tab/↑", Help: "previous", Run: func() tea.Cmd { return m.fbMove(-1) }},
			back, g.Logs, g.Dashboard}
	case fbPlan:
		next := action.Binding{Keys: []string{"enter"}, Help: "create",
			Disabled: func() string {
				switch {
				case p.planning:
					return "the plan (a dry run) is being made"
				case p.planErr != "":
					return "the plan failed: esc goes back to the form"
				case vsFailed(p.checks):
					return "a check failed: fix what is marked ✗, then esc and plan again"
				}
				return ""
			},
			Run: func() tea.Cmd { return p.confirm.Focus() }}
		return []action.Binding{next, escKey("back to the form", m.fbBack), g.Logs, g.Dashboard}
	case fbList:
		none := func() string {
			if len(p.pending) == 0 {
				return "no unfinished failback run"
			}
			return ""
		}
		return []action.Binding{
			{Keys: []string{"r"}, Help: "resume", Dangerous: true, What: "resume the failback run", Disabled: none, Run: m.fbResume},
			{Keys: []string{"u"}, Help: "undo", Dangerous: true, What: "undo the failback run", Disabled: none, Run: m.fbAskUndo},
			moveKey("move", func(d int) tea.Cmd {
				p.sel = min(max(p.sel+d, 0), max(len(p.pending)-1, 0))
				return nil
			}),
			back, g.Logs, g.Dashboard}
	case fbRun:
		wait := func() string { return "the failback run is under way: wait for its report" }
		return []action.Binding{{Keys: []string{"enter"}, Help: "next", Disabled: wait}, {Keys: []string{"esc"}, Help: "back", Disabled: wait}}
	case fbDone:
		return []action.Binding{{Keys: []string{"enter"}, Help: "back", Run: m.fbBack}, escKey("back", m.fbBack), g.Logs, g.Dashboard}
	}
	return []action.Binding{back, g.Logs, g.Dashboard}
}

func (p *fbPage) update(m *Model, msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case fbPlanMsg:
		return m.onFBPlan(msg)
	case fbProgressMsg:
		return m.onFBProgress(msg)
	case fbDoneMsg:
		return m.onFBDone(msg)
	case fbPendingMsg:
		return m.onFBPending(msg)
	case fbSourceMsg:
		return m.onFBSource(msg)
	}
	return nil
}

func (p *fbPage) view(m *Model, w, h int) string {
	var out []string
	switch p.step {
	case fbForm:
		out = m.fbFormView(w, h)
	case fbPlan:
		out = m.fbPlanView(w, h)
	case fbList, fbUndoAsk:
		out = m.fbListView(w, h)
	case fbRun, fbDone:
		out = m.fbRunView(w, h)
	}
	if len(out) > h {
		out = out[:h]
	}
	return strings.Join(out, "\n")
}

// fbTitle is the screen's first line.
func (m *Model) fbTitle(w int) string {
	p := &m.fb
	t := " Failback VM in vSphere · new VM " + p.form.Name
	if p.form.OntoVM != "" {
		t = " Failback VM in vSphere · onto the existing VM " + p.form.OntoVM
	}
	return m.st.Bold.Render(cut(t, w))
}

// fbDiskLines are the disks with their sizes, in at most two lines.
func (m *Model) fbDiskLines(w int) []string {
	p := &m.fb
	var total int64
	parts := make([]string, len(p.disks))
	for i, d := range p.disks {
		total += d.bytes
		parts[i] = filepath.Base(d.path) + " " + bytesText(d.bytes)
	}
	buses := (len(p.disks) + 14) / 15
	head := fmt.Sprintf("%d disk(s), %s, %d SCSI bus(es): ", len(p.disks), bytesText(total), buses)
	// As many as two lines hold; the plan lists every one.
	for k := len(parts); k > 0; k-- {
		s := strings.Join(parts[:k], " · ")
		if k < len(parts) {
			s += fmt.Sprintf(" · +%d more (the plan lists all)", len(parts)-k)
		}
		if lines := hang("   "+head, "     ", s, w); len(lines) <= 2 {
			return lines
		}
	}
	return hang("   "+head, "     ", fmt.Sprintf("+%d (the plan lists all)", len(parts)), w)
}

// fbFormView is the form: its fields scrolled to keep the cursor in
// sight, the field's hint and error below.
func (m *Model) fbFormView(w, h int) []string {
	p := &m.fb
	out := append([]string{m.fbTitle(w)}, m.fbDiskLines(w)...)
	for _, n := range p.notes {
		// Where a default came from: the disks' partition tables.
		out = append(out, m.st.Dim.Render(cut("   from the disks: "+n, w)))
	}
	var tail []string
	f := p.fields[p.cur]
	if p.err != "" {
		tail = append(tail, m.errLines("   ✗ ", p.err, w)...)
	} else if f.Hint != "" {
		tail = append(tail, m.st.Dim.Render(cut("   "+f.Label+": "+f.Hint, w)))
	}
	if p.form.OntoVM != "" {
		tail = append(tail, m.st.Dim.Render(cut("   Onto an existing VM: it keeps its own name and hardware.", w)))
	}
	if n := len(p.pending); n > 0 {
		// A run a kill left may hold these very disks: finish it first.
		names := make([]string, n)
		for i, pd := range p.pending {
			names[i] = pd.Name
		}
		tail = append(tail, m.st.Warn.Render(cut("   ▲ First resume or undo the unfinished runs (f on the dashboard): "+
			strings.Join(names, ", "), w)))
	}
	room := max(h-len(out)-1-len(tail)-1, 3)
	if p.cur < p.top {
		p.top = p.cur
	}
	if p.cur >= p.top+room {
		p.top = p.cur - room + 1
	}
	p.top = min(p.top, max(len(p.fields)-room, 0))
	more := ""
	if p.top > 0 {
		more = m.st.Dim.Render(fitRight(fmt.Sprintf("↑ %d more", p.top), w-2))
	}
	out = append(out, more)
	end := min(p.top+room, len(p.fields))
	for i := p.top; i < end; i++ {
		out = append(out, m.fbFieldLine(i, w))
	}
	if end < len(p.fields) {
		out = append(out, m.st.Dim.Render(fitRight(fmt.Sprintf("↓ %d more", len(p.fields)-end), w-2)))
	} else {
		out = append(out, "")
	}
	return append(out, tail...)
}

// fbFieldLine is field i: the cursor's mark, the label, the value (a
// choice's values with the one chosen marked).
func (m *Model) fbFieldLine(i, w int) string {
	p := &m.fb
	f := p.fields[i]
	mark := "   "
	if i == p.cur {
		mark = " ▶ "
	}
	if p.errKey == f.Key {
		mark = " ✗ "
	}
	var s string
	switch ti := p.inputs[f.Key]; {
	case p.form.OntoVM != "" && f.NewVM && i != p.cur:
		// Not used: said in words, not by the dim colour alone.
		s = fmt.Sprintf("%-18s %s", f.Label+":", "(the existing VM's own)")
	case ti != nil && ti.Focused():
		s = ti.View()
	case ti != nil:
		v := ti.Value()
		if v == "" {
			v = m.st.Dim.Render("(" + f.Hint + ")")
		}
		s = fmt.Sprintf("%-18s %s", f.Label+":", v)
	default:
		var cs []string
		for _, c := range f.Choices {
			if c == p.form.Value(f.Key) {
				cs = append(cs, "(•) "+c)
			} else {
				cs = append(cs, "( ) "+c)
			}
		}
		s = fmt.Sprintf("%-18s %s", f.Label+":", strings.Join(cs, "  "))
	}
	line := cut(mark+s, w)
	switch {
	case p.errKey == f.Key:
		return m.st.Err.Render(line)
	case p.form.OntoVM != "" && f.NewVM:
		return m.st.Dim.Render(line)
	}
	return line
}

// fbSummary is the form in a line or two, as the plan shows it.
func (m *Model) fbSummary(w int) []string {
	f := &m.fb.form
	var s string
	if f.OntoVM != "" {
		s = "onto the existing VM " + f.OntoVM + " (its own hardware)"
	} else {
		cores := ""
		if f.CoresPerSocket > 0 {
			cores = fmt.Sprintf(" (%d per socket)", f.CoresPerSocket)
		}
		fw := f.Firmware
		if f.SecureBoot {
			fw += " + secure boot"
		}
		hw := "host default"
		if f.HWVersion > 0 {
			hw = fmt.Sprintf("vmx-%02d", f.HWVersion)
		}
		nics := "no NIC"
		if len(f.NICs) > 0 {
			var ns []string
			for _, n := range f.NICs {
				x := n.Network + " " + n.Adapter
				if n.MAC != "" {
					x += " " + n.MAC
				}
				if n.Disconnected {
					x += " (not connected)"
				}
				ns = append(ns, x)
			}
			nics = "NIC " + strings.Join(ns, ", ")
		}
		s = fmt.Sprintf("%d CPU%s, %d MB, %s, %s, %s, %s, %s", f.CPUs, cores, f.MemoryMB, f.GuestID, fw, hw, f.Controller, nics)
	}
	if f.NoPowerOn {
		s += "; left powered off"
	}
	return hang("   VM: ", "       ", s, w)
}

// fbPlanView is the plan: the checks and the confirmation always show,
// the plan's steps get the room left.
func (m *Model) fbPlanView(w, h int) []string {
	p := &m.fb
	head := append([]string{m.fbTitle(w)}, m.fbDiskLines(w)...)
	head = append(head, m.fbSummary(w)...)
	if p.planning {
		return append(head, "", "   Planning (dry run)…")
	}
	if p.planErr != "" {
		// A long error (a disk vSphere does not know lists all it has)
		// keeps the way back in sight.
		e := m.errLines("   ✗ ", p.planErr, w)
		if room := max(h-len(head)-3, 2); len(e) > room {
			e = append(e[:room-1], m.st.Dim.Render(cut("     … (all of it: mtconsole vsphere create-vm --dry-run)", w)))
		}
		head = append(append(head, ""), e...)
		return append(head, "", cut("   esc: back to the form", w))
	}
	head = append(head, m.st.Bold.Render(cut("   Plan (a dry run: nothing changes until you confirm)", w)))
	var plan []string
	for _, l := range strings.Split(strings.TrimRight(p.plan, "\n"), "\n") {
		t := strings.TrimLeft(l, " ")
		if t == "" {
			continue
		}
		ind := strings.Repeat(" ", 3+len(l)-len(t))
		plan = append(plan, hang(ind, ind+"  ", t, w)...)
	}
	var tail []string
	if len(p.checks) > 0 {
		tail = append(tail, m.st.Bold.Render("   Readiness"))
		for _, c := range p.checks {
			tail = append(tail, m.checkLines(vsCheck(c), w)...)
		}
	}
	tail = append(tail, "")
	if vsFailed(p.checks) {
		tail = append(tail, m.errLines("   ", "A check failed: fix what is marked ✗ (esc: back to the form), then plan again.", w)...)
	} else {
		for _, l := range wrap("   ", fmt.Sprintf("▲ This detaches the disks from this master target. Type %s and press enter.", p.vmName()), w) {
			tail = append(tail, m.st.Warn.Render(l))
		}
		tail = append(tail, "   "+p.confirm.View())
	}
	if p.err != "" {
		tail = append(tail, m.errLines("   ✗ ", p.err, w)...)
	}
	room := h - len(head) - len(tail)
	if len(plan) > room {
		more := len(plan) - max(room-1, 0)
		plan = append(plan[:max(room-1, 0)], m.st.Dim.Render(cut(fmt.Sprintf(
			"   … %d more lines: mtconsole vsphere create-vm --dry-run shows the whole plan", more), w)))
	}
	return append(append(head, plan...), tail...)
}

// fbListView is the unfinished runs, and the undo's confirmation.
func (m *Model) fbListView(w, h int) []string {
	p := &m.fb
	out := []string{m.st.Bold.Render(cut(" Unfinished failback runs", w)), ""}
	if p.scanErr != "" {
		out = append(out, m.errLines("   ✗ ", p.scanErr, w)...)
	}
	if len(p.pending) == 0 && p.scanErr == "" {
		out = append(out, "   No unfinished failback run: every plan file is done or undone.")
	}
	var tail []string
	if p.step == fbUndoAsk {
		pd := p.pending[p.sel]
		for _, l := range wrap("   ", fmt.Sprintf("▲ Undo reverses every step the run did: a VM it created is destroyed (its disks kept), "+
			"the disks go back on %s. Type %s and press enter.", pd.MT, pd.Name), w) {
			tail = append(tail, m.st.Warn.Render(l))
		}
		tail = append(tail, "   "+p.confirm.View())
		if p.err != "" {
			tail = append(tail, m.errLines("   ✗ ", p.err, w)...)
		}
	} else if len(p.pending) > 0 {
		tail = append(tail, wrap("   ", "A run killed or cut off stopped between its steps: r resumes it (the VM as planned), "+
			"u undoes it (as before the run). A run still going elsewhere shows as running: let it end first.", w)...)
	}
	room := max(h-len(out)-len(tail)-1, 3)
	var rows []string
	start := 0 // the cursor's run's first row
	for i, pd := range p.pending {
		mark := "   "
		if i == p.sel {
			mark = " ▶ "
		}
		line := cut(fmt.Sprintf("%s%-16s %-11s %d disk(s) from %s", mark, pd.Name, pd.Status, pd.Disks, pd.MT), w)
		if i == p.sel {
			line = m.st.Selected.Render(line)
		}
		// Three lines a run: where it stopped (cut: a step may name 20
		// disks), and its plan file (whole: it is there to be copied).
		if i == p.sel {
			start = len(rows)
		}
		rows = append(rows, line, m.st.Dim.Render(cut("     "+pd.Step, w)))
		rows = append(rows, styled(m.st.Dim, wrapRaw("     ", "     ", pd.File, w))...)
	}
	if len(rows) > room {
		// Keep the cursor's run in sight.
		start = min(start, max(len(rows)-room, 0))
		rows = rows[start:min(start+room, len(rows))]
	}
	out = append(out, rows...)
	return append(append(out, ""), tail...)
}

// fbRunView is a run under way and its report.
func (m *Model) fbRunView(w, h int) []string {
	p := &m.fb
	verb := map[string]string{"create": "Creating the failback VM ", "resume": "Resuming the failback run of ", "undo": "Undoing the failback run of "}[p.what]
	out := []string{m.st.Bold.Render(cut(" "+verb+p.name, w))}
	if p.file != "" {
		out = append(out, styled(m.st.Dim, hang("   plan file: ", "     ", p.file, w))...)
	}
	var tail []string
	if p.step == fbRun {
		tail = []string{"", "   ⟳ Running… (the console waits for the report)"}
	} else {
		tail = append(tail, "")
		if p.failed {
			tail = append(tail, m.errLines("   ✗ ", p.runErr, w)...)
		}
		for _, l := range strings.Split(strings.TrimRight(p.report, "\n"), "\n") {
			if l != "" {
				tail = append(tail, hang("   ", "     ", l, w)...)
			}
		}
		tail = append(tail, "", "   enter or esc: back")
	}
	// A step a line, its status in a column (a step that names 20 disks
	// is cut: the plan file has it whole); the latest steps when they do
	// not all fit.
	steps := make([]string, len(p.progress))
	for i, l := range p.progress {
		steps[i] = cut("   "+l, w)
	}
	if room := max(h-len(out)-1-len(tail), 1); len(steps) > room {
		steps = append([]string{m.st.Dim.Render(fmt.Sprintf("   … %d steps before", len(steps)-room+1))}, steps[len(steps)-room+1:]...)
	}
	out = append(out, "")
	out = append(out, steps...)
	return append(out, tail...)
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
