package tui

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/setup"
)

func (m *SetupModel) setRole(r setup.Role) tea.Cmd {
	if m.a.Role == r {
		return nil
	}
	m.a.Role = r
	return m.answersChanged(suPrereq, suDisks)
}

// rows is how many rows the step's list has.
func (m *SetupModel) rows() int {
	switch m.step {
	case suRole:
		return 2
	case suPrereq, suDisks:
		return len(m.checks[m.step])
	case suCustom:
		return len(m.changes)
	case suVSphere:
		return len(m.vsChecks)
	case suSummary:
		if m.review != nil {
			return len(m.review.display())
		}
	}
	return 0
}

func (m *SetupModel) move(d int) {
	if m.step == suRole {
		if d < 0 {
			m.setRole(setup.RoleMT)
		} else {
			m.setRole(setup.RolePS)
		}
		return
	}
	if m.step == suSummary {
		m.off[suSummary] = max(m.off[suSummary]+d, 0)
		return
	}
	n := m.rows()
	if n == 0 {
		return
	}
	m.sel[m.step] = min(max(m.sel[m.step]+d, 0), n-1)
}

// startOver forgets the state file and the answers typed.
func (m *SetupModel) startOver() tea.Cmd {
	if !m.dry() && m.readOnly() == "" {
		if err := os.Remove(m.o.StatePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
			m.setNote(true, "start afresh: "+err.Error())
			return nil
		}
	}
	m.a = m.o.Answers
	m.loadHostConfig()
	m.checks, m.checking, m.checkErr = map[suStep][]setup.Check{}, map[suStep]bool{}, map[suStep]string{}
	m.review, m.job, m.vsChecks, m.vsErr, m.vsSkipped = nil, nil, nil, "", false
	m.sel, m.off = [suSteps]int{}, [suSteps]int{}
	m.step = suRole
	m.saveState()
	m.setNote(false, "started afresh with the answers given")
	return m.enter()
}

func (m *SetupModel) confirmed() tea.Cmd {
	c := m.confirm
	m.confirm = ""
	switch c {
	case "custom-apply":
		cu, err := m.custom()
		if err != nil {
			m.setNote(true, err.Error())
			return nil
		}
		x := m.x
		return m.startJob("custom", m.title("Applying the custom changes"), func(ctx context.Context, line func(string)) error {
			mark := x.Mark()
			changed, err := cu.Apply()
			report(x, mark, "changed", changed, line)
			if err != nil {
				return err
			}
			switch {
			case len(changed) == 0:
				line("every change was already applied: nothing changed")
			case x.Dry():
				line("Dry run: nothing changed.")
				return nil
			default:
				line("backups in " + setup.StateDir)
			}
			if cu.RebootRequired() {
				line("REBOOT IS REQUIRED FOR CUSTOM CHANGES TO TAKE EFFECT")
			}
			return nil
		})
	case "custom-revert":
		cu, err := m.custom()
		if err != nil {
			m.setNote(true, err.Error())
			return nil
		}
		x := m.x
		return m.startJob("custom", m.title("Reverting the custom changes"), func(ctx context.Context, line func(string)) error {
			mark := x.Mark()
			changed, err := cu.Revert()
			report(x, mark, "restored", changed, line)
			if err != nil {
				return err
			}
			switch {
			case len(changed) == 0:
				line("no custom changes to revert: there are no backups")
			case x.Dry():
				line("Dry run: nothing changed.")
			default:
				line("REBOOT IS REQUIRED FOR THE REVERT TO TAKE EFFECT")
			}
			return nil
		})
	case "install":
		return m.install()
	}
	return nil
}

// title is a job's title, marked in a dry run.
func (m *SetupModel) title(s string) string {
	if m.dry() {
		return "Dry run: " + s
	}
	return s
}

// report shows what an action changed: in a dry run, what it would have
// done (x's records since mark); else verb and each file.
func report(x *setup.Executor, mark int, verb string, files []string, line func(string)) {
	if x.Dry() {
		for _, l := range x.Would(mark) {
			line(l)
		}
		return
	}
	for _, f := range files {
		line(verb + " " + f)
	}
}

// ---- the fix-it action: install the missing packages now

func (m *SetupModel) missingPackages() []string {
	var out []string
	for _, c := range m.checks[suPrereq] {
		if c.Status == setup.Fail && strings.HasPrefix(c.ID, "packages.") && !strings.HasPrefix(c.ID, "packages.module-") {
			out = append(out, strings.TrimPrefix(c.ID, "packages."))
		}
	}
	return out
}

func (m *SetupModel) fixPackages() tea.Cmd {
	missing := m.missingPackages()
	switch {
	case m.checks[suPrereq] == nil:
		m.setNote(true, "the checks have not run yet")
		return nil
	case len(missing) == 0:
		m.setNote(false, "no package is missing: nothing to install")
		return nil
	case m.pm == nil:
		m.setNote(true, "no package manager found")
		return nil
	case !m.dry() && m.o.Root == "/" && os.Geteuid() != 0:
		m.setNote(true, "installing packages needs root: run mtconsole setup as root, or "+m.pm.InstallCommand(missing))
		return nil
	}
	pm, x := m.pm, m.x
	return m.startJob("packages", m.title("Installing "+strings.Join(missing, " ")), func(ctx context.Context, line func(string)) error {
		if !x.Dry() {
			line("$ " + pm.InstallCommand(missing))
		}
		mark := x.Mark()
		err := x.Install(ctx, pm, missing, line)
		report(x, mark, "", nil, line)
		if err == nil && x.Dry() {
			line("Dry run: nothing changed.")
		}
		return err
	})
}

// ---- the install

func (m *SetupModel) askInstall() tea.Cmd {
	r := m.review
	switch {
	case r == nil:
		m.setNote(true, "the plan is still being worked out")
		return nil
	case r.err != "":
		m.setNote(true, "no plan: "+r.err)
		return nil
	case len(r.refusals) > 0 && !m.dry():
		m.setNote(true, "the plan cannot be applied: fix what it says first")
		return nil
	case !m.dry() && m.o.Root == "/" && os.Geteuid() != 0:
		m.setNote(true, "installing needs root: run mtconsole setup as root (mtconsole setup --dry-run works as anyone)")
		return nil
	}
	m.confirm = "install"
	return nil
}

// install applies the reviewed plan through the wizard's Executor: a
// dry run takes the same steps, and each shows what it would do.
func (m *SetupModel) install() tea.Cmd {
	r, x := m.review, m.x
	title := "Installing"
	if x.Dry() {
		title = "Dry run"
	}
	return m.startJob("install", title, func(ctx context.Context, line func(string)) error {
		if x.Dry() {
			line("Dry run: nothing is changed. A real run would:")
			if len(r.refusals) > 0 { // it stops before its first change
				for _, l := range r.lines() {
					line("  " + l)
				}
				for _, f := range r.refusals {
					line("and stop: " + f)
				}
				line("Dry run: nothing changed.")
				return nil
			}
		}
		if err := r.in.Apply(ctx, x, line); err != nil {
			return err
		}
		if x.Dry() {
			line("Dry run: nothing changed.")
			return nil
		}
		line("Installed. Next: register with the configuration server (step 5), then protect.")
		if r.in.RebootRequired() {
			line("REBOOT IS REQUIRED FOR CUSTOM CHANGES TO TAKE EFFECT")
		}
		return nil
	})
}

// ---- the review: what an install changes

type suReview struct {
	what     string // "Install … as a master target into / (fresh install)"
	in       *setup.InstallReview
	refusals []string // why a real run would stop, as the summary says it
	err      string
}

type suReviewMsg suReview

// lines are the changes, in the order they are made, as `mtconsole
// install --dry-run` prints them.
func (r *suReview) lines() []string {
	if r.in == nil {
		return nil
	}
	return r.in.Lines()
}

// display is the review as the summary shows it.
func (r *suReview) display() []string {
	if r.err != "" {
		return []string{"✗ no plan: " + r.err}
	}
	out := []string{r.what, ""}
	ls := r.lines()
	if len(ls) == 0 {
		out = append(out, "Nothing to change: the install is as it should be.")
	} else {
		out = append(out, fmt.Sprintf("These %d changes, in this order:", len(ls)))
		out = append(out, ls...)
	}
	if r.in != nil && len(r.in.Plan.Unchanged) > 0 {
		out = append(out, "", "Already as they should be:")
		for _, u := range r.in.Plan.Unchanged {
			out = append(out, "keep   "+u)
		}
	}
	if len(r.refusals) > 0 {
		out = append(out, "", "A real run would stop here:")
		for _, f := range r.refusals {
			out = append(out, "✗ "+f)
		}
	}
	return out
}

// PlanLines are the changes the summary lists (for tests).
func (m *SetupModel) PlanLines() []string {
	if m.review == nil {
		return nil
	}
	return m.review.lines()
}

func (m *SetupModel) buildReview() tea.Cmd {
	a, e, o, ctx := m.a, m.env(), m.o, m.ctx
	var cu *setup.Custom
	var cuErr error
	if a.Role == setup.RoleMT {
		cu, cuErr = m.custom()
	}
	return func() tea.Msg {
		r := suReview{}
		if cuErr != nil {
			r.err = cuErr.Error()
			return suReviewMsg(r)
		}
		c, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		in, err := setup.Review(c, setup.InstallOptions{Root: o.Root, Answers: a, Binary: o.Binary, Version: o.Version, Env: e, Custom: cu})
		if err != nil {
			r.err = err.Error()
			return suReviewMsg(r)
		}
		r.in = in
		r.what = fmt.Sprintf("Install mtconsole %s as a %s into %s (fresh install)", o.Version, roleName(a.Role), o.Root)
		if up := in.Plan.Upgrade; up != nil {
			r.what = fmt.Sprintf("Install mtconsole %s as a %s into %s (upgrade of the %s install, version %s)",
				o.Version, roleName(a.Role), o.Root, up.Role, up.Version)
		}
		for _, f := range in.Refusals {
			switch f.Code {
			case setup.ExitCustomChanges:
				r.refusals = append(r.refusals, fmt.Sprintf("the custom changes are not applied (exit %d): apply them in step 4, or t there applies them with the install", f.Code))
			default:
				for _, ch := range f.Checks {
					r.refusals = append(r.refusals, fmt.Sprintf("%s: %s (exit %d); fix: %s", ch.Title, ch.Detail, f.Code, ch.Fix))
				}
			}
		}
		return suReviewMsg(r)
	}
}

// ---- jobs: actions whose output streams into the screen

type suJob struct {
	id      int
	kind    string // packages, custom, install
	title   string
	step    suStep
	lines   []string
	running bool
	err     error
	cancel  context.CancelFunc
	ch      chan tea.Msg
}

const maxJobLines = 1000

func (j *suJob) add(l string) {
	j.lines = append(j.lines, strings.ReplaceAll(l, "\t", "    "))
	if len(j.lines) > maxJobLines {
		j.lines = append(j.lines[:0:0], j.lines[len(j.lines)-maxJobLines/2:]...)
	}
}

type suJobLineMsg struct {
	id   int
	line string
}

type suJobDoneMsg struct {
	id  int
	err error
}

// startJob runs f off the event loop; its lines arrive one message each,
// and go to the setup log too. x cancels it (its context ends).
func (m *SetupModel) startJob(kind, title string, f func(ctx context.Context, line func(string)) error) tea.Cmd {
	ctx, cancel := context.WithCancel(m.ctx)
	m.jobSeq++
	j := &suJob{id: m.jobSeq, kind: kind, title: title, step: m.step, running: true, cancel: cancel, ch: make(chan tea.Msg, 64)}
	m.job = j
	m.note = ""
	m.saveStateRunning(kind)
	logPath, now, done, dry := m.o.LogPath, m.o.Now, m.ctx.Done(), m.dry()
	run := func() tea.Msg {
		defer cancel()
		var log *os.File
		if !dry { // a dry run keeps no log: it writes nothing, anywhere
			if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err == nil {
				log, _ = os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
			}
		}
		if log != nil {
			defer log.Close()
			fmt.Fprintf(log, "== %s %s\n", now().UTC().Format(time.RFC3339), title)
		}
		send := func(msg tea.Msg) {
			select {
			case j.ch <- msg:
			case <-done:
			}
		}
		err := f(ctx, func(l string) {
			if log != nil {
				fmt.Fprintln(log, l)
			}
			send(suJobLineMsg{id: j.id, line: l})
		})
		if log != nil {
			if err != nil {
				fmt.Fprintf(log, "== failed: %v\n", err)
			} else {
				fmt.Fprintln(log, "== done")
			}
		}
		send(suJobDoneMsg{id: j.id, err: err})
		return nil
	}
	return tea.Batch(run, m.waitJob(j))
}

func (m *SetupModel) waitJob(j *suJob) tea.Cmd {
	done := m.ctx.Done()
	return func() tea.Msg {
		select {
		case msg := <-j.ch:
			return msg
		case <-done:
			return nil
		}
	}
}

func (m *SetupModel) jobDone(j *suJob, err error) tea.Cmd {
	j.running, j.err = false, err
	m.saveState()
	if err != nil {
		m.setNote(true, j.title+": "+err.Error())
	} else {
		m.setNote(false, j.title+": done")
	}
	switch j.kind {
	case "packages":
		m.review = nil
		delete(m.checks, suPrereq)
		return m.runChecks(suPrereq)
	case "custom":
		m.review = nil
		return m.loadCustom()
	case "install":
		if err == nil && !m.dry() {
			m.installed = true
			if rerr := os.Remove(m.o.StatePath); rerr == nil || errors.Is(rerr, fs.ErrNotExist) {
				note := "installed; the wizard's state file is removed: the setup is done"
				if m.a.Role != setup.RolePS && m.o.Protector != nil {
					note = "installed, the setup is done (state file removed) · p: protect a machine now"
				} else if m.a.Role != setup.RolePS {
					note += " · p: how to protect a machine"
				}
				m.setNote(false, note)
			}
			return m.buildReview() // the plan now: nothing left to change
		}
		if err == nil && m.dry() {
			m.installed = true
		}
	}
	return nil
}

// ---- the state file

type suState struct {
	Version        int       `json:"version"`
	Step           string    `json:"step"`
	Answers        string    `json:"answers"` // the answers file's YAML: no secrets
	VSphereSkipped bool      `json:"vsphere_skipped,omitempty"`
	Running        string    `json:"running,omitempty"` // the action under way when saved
	Saved          time.Time `json:"saved"`
}

func (m *SetupModel) saveState() { m.saveStateRunning("") }

func (m *SetupModel) saveStateRunning(running string) {
	if m.dry() || m.installed || m.readOnly() != "" {
		return // a dry run or a read-only session keeps no state; an install is done: nothing to resume
	}
	y, err := m.a.Marshal()
	if err == nil {
		st := suState{Version: 1, Step: suIDs[m.step], Answers: string(y), VSphereSkipped: m.vsSkipped,
			Running: running, Saved: m.o.Now().UTC()}
		var b []byte
		if b, err = json.MarshalIndent(st, "", "  "); err == nil {
			if err = mkdirPrivate(filepath.Dir(m.o.StatePath)); err == nil {
				err = setup.WriteFileAtomic(m.o.StatePath, append(b, '\n'), 0o600)
			}
		}
	}
	if err != nil && m.note == "" {
		m.setNote(true, "state not saved (a dropped session cannot resume): "+err.Error())
	}
}

// resume reopens the step and answers of the state file; a dry run
// starts from the answers given.
func (m *SetupModel) resume() {
	if m.dry() {
		return
	}
	b, err := os.ReadFile(m.o.StatePath)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var st suState
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	var a setup.Answers
	if err == nil {
		a, err = setup.ParseAnswers(m.o.StatePath+" (answers)", []byte(st.Answers))
	}
	if err != nil {
		m.setNote(true, fmt.Sprintf("state file %s unreadable, starting afresh: %v", m.o.StatePath, err))
		return
	}
	step := suRole
	for i, id := range suIDs {
		if id == st.Step {
			step = suStep(i)
		}
	}
	m.a, m.step, m.vsSkipped = a, step, st.VSphereSkipped
	note := fmt.Sprintf("resumed at %s (saved %s UTC); N starts afresh", suNames[step], st.Saved.UTC().Format("2006-01-02 15:04"))
	if st.Running != "" {
		note = fmt.Sprintf("the last session ended while %s was running: its outcome is checked again; ", jobWhat(st.Running)) + note
	}
	m.setNote(false, note)
}

func jobWhat(kind string) string {
	switch kind {
	case "packages":
		return "the package install"
	case "custom":
		return "the custom changes"
	case "install":
		return "the install"
	}
	return kind
}

// mkdirPrivate makes dir 0700, and its missing parents 0755.
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// protectHintDisabled is why p (how to protect a machine) is not offered
// now, "" when it is: after a real install on a master target.
func (m *SetupModel) protectHintDisabled() string {
	switch {
	case m.a.Role == setup.RolePS:
		return "a process server protects nothing: protect a machine on its master target"
	case m.dry():
		return "a dry run installed nothing: protect a machine after a real install"
	case !m.installed:
		return "install first (a): protecting a machine needs the agent installed"
	}
	return ""
}

// protectHintLines say how to protect a machine once installed: the
// wizard runs outside the console, so it names the two ways that do it.
func protectHintLines() []string {
	return []string{
		"Protect a machine now: run mtconsole (the console) and press n on the dashboard: New protection asks the process server for its disks, maps each to a disk of this host, and starts the pairs.",
		"Or from a shell: mtconsole protect --ps HOST:9443 --passphrase-file FILE --group NAME --map sda=/dev/sdX (--dry-run shows the change to agent.toml first).",
	}
}
