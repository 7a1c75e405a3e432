package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/setup"
)

// SetupOptions configure the setup wizard (mtconsole setup).
type SetupOptions struct {
	// Root is "/" or a tree: the state file, the custom changes, the
	// install plan and the host config are all below it.
	Root string
	// Answers pre-fill every step (setup.DefaultAnswers, or --answers);
	// AnswersFrom names their file, "" for the defaults.
	Answers     setup.Answers
	AnswersFrom string
	// Env is the template of the checks: Role, Retention, RetentionBytes
	// and Targets come from the answers; a zero Root is Root.
	Env setup.Env
	// Custom gives the host's custom changes; nil: setup.Custom on Root
	// with the inventory of Env.
	Custom func() (*setup.Custom, error)
	// HostConfig are the registration's files; zero: below Root at
	// hostconfig.DefaultConfigPath.
	HostConfig hostconfig.Paths
	// VSphere runs the readiness checks with the answers' vsphere
	// section; nil: the step only explains `mtconsole vsphere check`.
	VSphere func(ctx context.Context, a setup.Answers) ([]setup.Check, error)
	// Binary is what the install copies ("": this executable), Version
	// the version it records.
	Binary, Version string
	// DryRun makes the whole session a dry run: every action (f, a, v,
	// the install) goes through a dry-run setup.Executor, which shows
	// what it would run and write and changes nothing; the state file
	// and the log are neither read nor written. It cannot be turned off
	// in the session.
	DryRun bool
	// ReadOnly makes a session that only looks: every key that changes
	// the host or a file (the installs, the custom changes, the answers
	// they use, the host config screen) is refused with ReadOnlyReason
	// ("not root", "--readonly"; "" reads "--readonly"), and no state file
	// is written.
	ReadOnly       bool
	ReadOnlyReason string
	Host           string
	NoColor        bool
	Now            func() time.Time
	// StatePath is the wizard's state file; "": <Root>/var/lib/mtconsole/setup-state.json.
	// Not used in a dry run.
	StatePath string
	// LogPath is where actions' output is appended; "": <Root>/var/log/mtconsole/setup.log.
	// Not used in a dry run.
	LogPath string
	// Protector, when set, makes p on the summary ("Protect now", after
	// an install) open the console's Protect screen over the wizard;
	// leaving it comes back to the summary. Nil: p says how to protect.
	Protector Protector
}

// StateFile is where the wizard records the step in progress and its
// answers, below the root, so a dropped SSH session reopens there.
const StateFile = setup.StateRoot + "/setup-state.json"

// SetupLog is where the wizard appends the output of what it runs.
const SetupLog = "/var/log/mtconsole/setup.log"

type suStep int

const (
	suRole suStep = iota
	suPrereq
	suDisks
	suCustom
	suCS
	suVSphere
	suSummary
	suSteps // count
)

var suNames = [suSteps]string{"Role", "Prerequisites", "Disks", "Custom changes", "Configuration server", "vSphere (optional)", "Summary"}

// suIDs name the steps in the state file.
var suIDs = [suSteps]string{"role", "prerequisites", "disks", "custom-changes", "config-server", "vsphere", "summary"}

// suGroups are the check groups of the checking steps.
var suGroups = map[suStep][]string{
	suPrereq: {setup.GroupOS, setup.GroupPackages},
	suDisks:  {setup.GroupDisks},
}

// SetupModel is the setup wizard: Role → Prerequisites → Disks → Custom
// changes → Configuration server → vSphere → Summary. It holds no rules:
// checks, custom changes and the install plan are the setup package's.
type SetupModel struct {
	o    SetupOptions
	ctx  context.Context
	st   Styles
	w, h int

	a       setup.Answers
	step    suStep
	sel     [suSteps]int // selected row of each step
	off     [suSteps]int // first row shown
	help    bool
	helpOff int    // first help line shown
	pressed string // the key being dispatched, for bindings with several

	checks   map[suStep][]setup.Check
	checking map[suStep]bool
	checkErr map[suStep]string
	pm       setup.PackageManager // the checks' package manager
	facts    *setup.Env           // holds the disk facts once read: the custom changes judge on them

	changes   []setup.Change
	reboot    bool
	customErr string
	preview   []setup.FileChange

	hc       hostconfig.Config
	hcStored bool
	hcErr    string
	hcm      *HostConfigModel // the host config screen, while open

	vsChecks  []setup.Check
	vsErr     string
	vsRunning bool
	vsSkipped bool

	review    *suReview
	reviewing bool

	job     *suJob
	jobSeq  int
	confirm string // "custom-apply", "custom-revert", "install": waiting for y
	editing bool
	input   textinput.Model

	// x makes every change the wizard makes: the package install, the
	// custom changes, the install plan. A dry run's records them only.
	x         *setup.Executor
	installed bool // the plan was applied (or dry-run) in this session
	// protectHint shows, on the summary after an install, how to protect
	// a machine (p).
	protectHint bool
	// prot is the console's Protect screen opened from the summary (p),
	// while open.
	prot    *Model
	note    string
	noteErr bool

	shown *suShown // the last screen drawn
}

// suShown keeps the last screen drawn, for Screen.
type suShown struct {
	mu sync.Mutex
	s  string
}

// Screen is the text of the last screen drawn, without styles: what the
// admin reads. It is safe to call while the program runs (tests).
func (m *SetupModel) Screen() string {
	m.shown.mu.Lock()
	defer m.shown.mu.Unlock()
	return m.shown.s
}

// NewSetup opens the wizard: on the step and answers of the state file
// when there is one (a session that dropped), else on Role with o.Answers.
func NewSetup(ctx context.Context, o SetupOptions) *SetupModel {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Env.Root == "" {
		o.Env.Root = o.Root
	}
	if o.HostConfig.Config == "" {
		o.HostConfig = hostconfig.PathsFor(rootJoin(o.Root, hostconfig.DefaultConfigPath))
	}
	if o.StatePath == "" {
		o.StatePath = rootJoin(o.Root, StateFile)
	}
	if o.LogPath == "" {
		o.LogPath = rootJoin(o.Root, SetupLog)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Answers.Version == 0 {
		o.Answers = setup.DefaultAnswers()
	}
	if o.ReadOnly && o.ReadOnlyReason == "" {
		o.ReadOnlyReason = "--readonly"
	}
	m := &SetupModel{o: o, ctx: ctx, st: NewStyles(!o.NoColor), w: MinWidth, h: MinHeight,
		a: o.Answers, x: &setup.Executor{}, shown: &suShown{},
		checks: map[suStep][]setup.Check{}, checking: map[suStep]bool{}, checkErr: map[suStep]string{}}
	if o.DryRun {
		m.x = setup.DryRun(o.Root)
	}
	m.input = newInput("Retention directory: ")
	m.loadHostConfig()
	m.resume()
	return m
}

func rootJoin(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

// RunSetup runs the wizard on the terminal until the admin quits.
func RunSetup(ctx context.Context, o SetupOptions) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !o.NoColor {
		o.NoColor = os.Getenv("NO_COLOR") != ""
	}
	m := NewSetup(ctx, o)
	p := tea.NewProgram(m, tea.WithContext(ctx), tea.WithFPS(10))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Answers are the answers as the wizard has them now.
func (m *SetupModel) Answers() setup.Answers { return m.a }

// Init runs the current step's look-ups.
func (m *SetupModel) Init() tea.Cmd { return m.enter() }

// enter starts what the current step shows: its checks, the custom
// changes' state, the readiness, the plan.
func (m *SetupModel) enter() tea.Cmd {
	switch m.step {
	case suPrereq, suDisks:
		if _, ok := m.checks[m.step]; !ok && !m.checking[m.step] {
			return m.runChecks(m.step)
		}
	case suCustom:
		return m.loadCustom()
	case suCS:
		m.loadHostConfig()
	case suVSphere:
		if m.vsReady() && m.vsChecks == nil && m.vsErr == "" && !m.vsRunning && !m.vsSkipped {
			return m.runVSphere()
		}
	case suSummary:
		return m.buildReview()
	}
	return nil
}

// mtOnly says whether a step applies to the role chosen.
func (m *SetupModel) mtOnly(s suStep) bool { return s == suDisks || s == suCustom }

func (m *SetupModel) skipped(s suStep) bool { return m.a.Role == setup.RolePS && m.mtOnly(s) }

func (m *SetupModel) vsReady() bool { return m.a.VSphere != nil && m.o.VSphere != nil }

// env is the checks' environment for the answers.
func (m *SetupModel) env() *setup.Env {
	e := m.o.Env
	e.Role = m.a.Role
	e.Retention = m.a.Disks.Retention
	e.RetentionBytes = uint64(m.a.Disks.RetentionSizeGB) * 1e9
	e.Targets = m.a.Disks.Targets
	return &e
}

type suChecksMsg struct {
	step   suStep
	checks []setup.Check
	pm     setup.PackageManager
	facts  *setup.Env // the checks' env, its disk facts read
	err    error
}

func (m *SetupModel) runChecks(s suStep) tea.Cmd {
	if m.skipped(s) {
		return nil
	}
	m.checking[s] = true
	e, ctx, groups := m.env(), m.ctx, suGroups[s]
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		cs, err := setup.Run(c, e, groups...)
		return suChecksMsg{step: s, checks: cs, pm: e.PM, facts: e, err: err}
	}
}

// dry says whether the session is a dry run.
func (m *SetupModel) dry() bool { return m.x.Dry() }

// custom is the host's custom changes, made through the wizard's
// Executor.
func (m *SetupModel) custom() (*setup.Custom, error) {
	if m.o.Custom != nil {
		cu, err := m.o.Custom()
		if cu != nil {
			cu.Exec = m.x
		}
		return cu, err
	}
	if m.facts == nil {
		m.facts = &setup.Env{Root: m.o.Env.Root, Statfs: m.o.Env.Statfs, Inventory: m.o.Env.Inventory}
	}
	cu, err := setup.EnvCustom(m.o.Root, m.facts)
	if err != nil {
		return nil, err
	}
	cu.BootID, cu.Exec = m.o.Env.BootID, m.x
	return cu, nil
}

type suCustomMsg struct {
	changes []setup.Change
	preview []setup.FileChange
	reboot  bool
	err     error
}

func (m *SetupModel) loadCustom() tea.Cmd {
	if m.skipped(suCustom) {
		return nil
	}
	cu, err := m.custom()
	return func() tea.Msg {
		if err != nil {
			return suCustomMsg{err: err}
		}
		cs, err := cu.Status()
		if err != nil {
			return suCustomMsg{err: err}
		}
		pv, err := cu.Preview()
		return suCustomMsg{changes: cs, preview: pv, reboot: cu.RebootRequired(), err: err}
	}
}

// loadHostConfig reads the registration; an answers file without a
// configuration server takes the one registered.
func (m *SetupModel) loadHostConfig() {
	m.hcErr = ""
	cfg, err := hostconfig.LoadOrDefault(m.o.HostConfig.Config)
	if err != nil {
		m.hcErr = err.Error()
	}
	m.hc = cfg
	_, perr := hostconfig.ReadPassphraseFile(m.o.HostConfig.Passphrase)
	m.hcStored = perr == nil
	if m.a.ConfigServer.Address == "" && cfg.CSHost != "" {
		m.a.ConfigServer.Address, m.a.ConfigServer.Port, m.a.ConfigServer.HTTPS = cfg.CSHost, cfg.CSPort, cfg.HTTPS
	}
}

func (m *SetupModel) registered() bool { return m.hc.CSHost != "" && m.hc.HostID != "" && m.hcStored }

type suVSphereMsg struct {
	checks []setup.Check
	err    error
}

func (m *SetupModel) runVSphere() tea.Cmd {
	m.vsRunning, m.vsErr, m.vsChecks = true, "", nil
	f, a, ctx := m.o.VSphere, m.a, m.ctx
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		cs, err := f(c, a)
		return suVSphereMsg{checks: cs, err: err}
	}
}

// Update implements tea.Model.
func (m *SetupModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	if m.prot != nil {
		return m, m.protUpdate(msg)
	}
	if m.hcm != nil {
		switch msg := msg.(type) {
		case tea.WindowSizeMsg:
			m.w, m.h = msg.Width, msg.Height
		case suHCClosedMsg:
			m.hcm = nil
			m.loadHostConfig()
			m.saveState()
			return m, nil
		case suJobLineMsg, suJobDoneMsg, suChecksMsg, suCustomMsg, suVSphereMsg, suReviewMsg:
			return m, m.handle(msg)
		}
		_, cmd := m.hcm.Update(msg)
		return m, closeOnQuit(cmd)
	}
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		m.input.SetWidth(max(m.w-50, 20))
		return m, nil
	case tea.PasteMsg:
		if m.editing {
			var cmd tea.Cmd
			m.input, cmd = m.input.Update(tea.PasteMsg{Content: strings.TrimRight(msg.Content, "\r\n")})
			return m, cmd
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	if cmd := m.handle(msg); cmd != nil {
		return m, cmd
	}
	if m.editing {
		var cmd tea.Cmd
		m.input, cmd = m.input.Update(msg)
		return m, cmd
	}
	return m, nil
}

// handle takes in the outcome of background work.
func (m *SetupModel) handle(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case suChecksMsg:
		m.checking[msg.step] = false
		if msg.err != nil {
			m.checkErr[msg.step] = msg.err.Error()
			m.checks[msg.step] = nil
			return nil
		}
		delete(m.checkErr, msg.step)
		m.checks[msg.step] = msg.checks
		if msg.pm != nil {
			m.pm = msg.pm
		}
		if msg.facts != nil && msg.facts.Inventory != nil && m.facts == nil {
			m.facts = msg.facts
		}
		m.sel[msg.step] = min(m.sel[msg.step], max(len(msg.checks)-1, 0))
	case suCustomMsg:
		m.changes, m.preview, m.reboot = msg.changes, msg.preview, msg.reboot
		m.customErr = ""
		if msg.err != nil {
			m.customErr = msg.err.Error()
		}
	case suVSphereMsg:
		m.vsRunning = false
		m.vsChecks = msg.checks
		if msg.err != nil {
			m.vsErr = msg.err.Error()
		}
	case suReviewMsg:
		r := suReview(msg)
		m.review = &r
	case suJobLineMsg:
		if j := m.job; j != nil && j.id == msg.id {
			j.add(msg.line)
			return m.waitJob(j)
		}
	case suJobDoneMsg:
		if j := m.job; j != nil && j.id == msg.id {
			return m.jobDone(j, msg.err)
		}
	default:
		return nil
	}
	return nil
}

// suHCClosedMsg says the host config screen quit.
type suHCClosedMsg struct{}

// closeOnQuit turns the host config screen's quit into closing it: the
// wizard goes on.
func closeOnQuit(cmd tea.Cmd) tea.Cmd {
	if cmd == nil {
		return nil
	}
	return func() tea.Msg {
		switch msg := cmd().(type) {
		case tea.QuitMsg:
			return suHCClosedMsg{}
		case tea.BatchMsg:
			out := make(tea.BatchMsg, len(msg))
			for i, c := range msg {
				out[i] = closeOnQuit(c)
			}
			return out
		default:
			return msg
		}
	}
}

func (m *SetupModel) setNote(isErr bool, s string) { m.note, m.noteErr = s, isErr }

// View implements tea.Model.
func (m *SetupModel) View() tea.View {
	var v tea.View
	switch {
	case m.prot != nil:
		v = m.prot.View()
	case m.hcm != nil:
		v = m.hcm.View()
	default:
		v = tea.NewView(m.render())
	}
	v.AltScreen = true
	v.MouseMode = tea.MouseModeNone
	v.WindowTitle = "mtconsole setup " + m.o.Host
	m.shown.mu.Lock()
	m.shown.s = ansi.Strip(v.Content)
	m.shown.mu.Unlock()
	return v
}

// go moves to step s.
func (m *SetupModel) goTo(s suStep) tea.Cmd {
	if s < 0 || s >= suSteps {
		return nil
	}
	m.step, m.confirm, m.reviewing, m.help = s, "", false, false
	m.note = ""
	m.saveState()
	return m.enter()
}

func (m *SetupModel) next() tea.Cmd {
	if m.step == suSummary {
		return nil
	}
	return m.goTo(m.step + 1)
}

func (m *SetupModel) back() tea.Cmd {
	if m.step == suRole {
		return nil
	}
	return m.goTo(m.step - 1)
}

// answersChanged drops what depended on the old answers.
func (m *SetupModel) answersChanged(recheck ...suStep) tea.Cmd {
	m.review = nil
	m.saveState()
	var cmds []tea.Cmd
	for _, s := range recheck {
		delete(m.checks, s)
		if s == m.step {
			cmds = append(cmds, m.enter())
		}
	}
	return tea.Batch(cmds...)
}

func roleName(r setup.Role) string {
	if r == setup.RolePS {
		return "process server"
	}
	return "master target"
}

func (m *SetupModel) rootNote() string {
	if m.o.Root == "/" {
		return ""
	}
	return fmt.Sprintf(" (under %s)", m.o.Root)
}

// openProtect opens the console's Protect screen over the summary, as n
// does on the dashboard: the same Protector, the same steps.
func (m *SetupModel) openProtect() tea.Cmd {
	pm := New(m.ctx, Options{Protector: m.o.Protector, Host: m.o.Host, NoColor: m.o.NoColor, Now: m.o.Now})
	// New makes a console without Actions read-only; the Protect screen
	// needs none, only the wizard's own rule.
	pm.o.ReadOnly, pm.o.ReadOnlyReason = m.o.ReadOnly, m.o.ReadOnlyReason
	pm.Update(tea.WindowSizeMsg{Width: m.w, Height: m.h})
	cmd := pm.openProtect()
	if pm.screen != screenProtect {
		m.setNote(true, pm.note)
		return nil
	}
	m.prot, m.protectHint = pm, false
	return cmd
}

// protUpdate gives msg to the Protect screen; when it leaves (esc on its
// first step, or enter once the pairs started), the summary is back with
// the screen's last note. The wizard's own jobs keep their answers.
func (m *SetupModel) protUpdate(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		m.input.SetWidth(max(m.w-50, 20))
	case suJobLineMsg, suJobDoneMsg, suChecksMsg, suCustomMsg, suVSphereMsg, suReviewMsg:
		return m.handle(msg)
	}
	_, cmd := m.prot.Update(msg)
	if m.prot.screen == screenProtect {
		return cmd
	}
	note, isErr := m.prot.note, m.prot.noteErr
	m.prot = nil
	if note == "" {
		note = "back from Protect"
	}
	m.setNote(isErr, note)
	return nil
}
