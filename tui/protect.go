package tui

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/tui/action"
)

// Protector is the Protect screen's business: asking a process server
// which disks it serves, the target rules, the plan (the new agent.toml)
// and its apply. The console holds none of it: cmd/mtconsole implements
// it with package protect, the library behind `mtconsole protect`.
type Protector interface {
	// Defaults are what the form starts from: the process server and
	// the policy a new group inherits, from the agent's configuration.
	Defaults() ProtectDefaults
	// Discover connects to the process server and lists its disks. trust
	// is a first-seen certificate's fingerprint the user accepted ("":
	// none): a first-seen certificate not accepted is an
	// *UntrustedError.
	Discover(ctx context.Context, addr, passFile, trust string) (*PSDiscovery, error)
	// Suggest maps source disks to free local disks that fit them.
	Suggest(ctx context.Context, disks []PSDisk) map[string]string
	// Check judges target for disk; overwrite is the name the user typed
	// to allow overwriting it.
	Check(ctx context.Context, disk PSDisk, target, overwrite string) TargetCheck
	// Plan checks the request: a plan to apply, or one whose Refusals say
	// why not. It writes nothing.
	Plan(ctx context.Context, req ProtectRequest) (*ProtectPlan, error)
	// Apply writes the plan's agent.toml and asks the agent to start the
	// new pairs.
	Apply(ctx context.Context, p *ProtectPlan) (*ProtectResult, error)
	// PlanRemove plans taking name (a group, or a pair by its id) out of
	// agent.toml; it writes nothing. A name not protected, or one
	// holding every pair, is an error that says why.
	PlanRemove(ctx context.Context, name string) (*RemovePlan, error)
	// ApplyRemove writes the plan and asks the agent to stop its pairs
	// (their targets are left as they are); purge also removes their
	// journal and retention once they stopped.
	ApplyRemove(ctx context.Context, p *RemovePlan, purge bool) (*RemoveResult, error)
}

// ProtectDefaults are the Protect screen's starting values: agent.toml's
// process server and its [defaults] (the agent's own where it sets none).
// A new group writes only the policy values changed from them.
type ProtectDefaults struct {
	Addr, PassFile string // "" when unknown
	Retention      time.Duration
	SizeCapMB      int64  // 0: none
	OnFull         string // purge | pause
	RPOThreshold   time.Duration
	AlertPercent   float64 // the low-space trigger, % of the retention volume
	Sparse         string  // sparse tiers as agent.toml writes them; "": none
}

// UntrustedError is a process server's certificate seen for the first
// time: the user compares its fingerprint and answers y or N.
type UntrustedError struct {
	Addr, Fingerprint, TrustStore string
}

func (e *UntrustedError) Error() string {
	return fmt.Sprintf("the process server at %s presents a certificate seen for the first time: %s", e.Addr, e.Fingerprint)
}

// PSDisk is a disk a process server serves.
type PSDisk struct {
	Name      string
	Size      int64
	BlockSize uint32
	// Paired is the pair that protects it already, "" when none.
	Paired string
	// AppConsistent is the source's application-consistent interval as
	// the process server reports it ("1h"; "" none reported).
	AppConsistent string
}

// PSDiscovery is what a process server said of itself.
type PSDiscovery struct {
	Addr, HostName, Fingerprint string
	FirstUse                    bool // the certificate was seen for the first time and trusted
	Disks                       []PSDisk
}

// TargetCheck is the target rules' verdict on one target.
type TargetCheck struct {
	OK     bool
	Reason string // what is wrong and what to do
	// Confirm, when set, is the name to type to allow overwriting it.
	Confirm string
}

// ProtectRequest is the protection the screen asks for.
type ProtectRequest struct {
	Addr, PassFile      string
	Disks               []PSDisk          // the process server's
	Group               string            // the protected machine
	Map                 map[string]string // source disk → target
	Overwrite           map[string]string // target → the name typed
	Retention           string            // "24h", "3d"; "" keeps the [defaults]
	SizeCapMB           string            // "" keeps the [defaults]; "0" none
	OnFull              string            // purge | pause; "" keeps the [defaults]
	RPOThreshold        string            // "15m"; "" keeps the [defaults]
	AlertPercent        string            // "5"; "" keeps the [defaults]
	ConsistencyInterval string            // "15m"; "0" none
	Sparse              string            // sparse tiers, "all 1d; 1 per 1h for 6d"; "none"; "" keeps the [defaults]
}

// ProtectRefusal is one reason a plan is refused.
type ProtectRefusal struct {
	Disk, Target, Reason, Confirm string
}

// ProtectPlan is a checked protection.
type ProtectPlan struct {
	Summary, Diff string
	Pairs         []string // the new pairs' ids
	// Refusals, when any, refuse the plan: nothing can be applied.
	Refusals []ProtectRefusal
	// Impl is the implementation's own plan.
	Impl any
}

// ProtectResult is what Apply did.
type ProtectResult struct {
	Path, Backup string
	Agent        bool     // a running agent took the new file
	Started      []string // the pairs it started
	Note         string   // e.g. no agent runs: it picks the file up when it starts
}

type protStep int

const (
	protServer protStep = iota
	protTrust
	protDisks
	protMap
	protPolicy
	protReview
	protProgress
)

var protStepNames = [...]string{"1 Process server", "Certificate", "2 Disks", "3 Mapping", "4 Policy", "5 Review", "Progress"}

// policy rows
const (
	polGroup = iota
	polRetention
	polUnit
	polCap
	polOnFull
	polRPO
	polAlert
	polInterval
	polSparse
	polRows
)

// protectPage is the Protect screen: a process server's disks to new
// pairs, step by step.
type protectPage struct {
	step   protStep
	cur    int    // the row under the cursor
	busy   string // what is being waited for
	err    string // the last failure, on the page
	seq    int    // answers of an older request are dropped
	addr   textinput.Model
	pass   textinput.Model
	disc   *PSDiscovery
	untrus *UntrustedError
	trust  string // the fingerprint accepted
	chosen map[string]bool
	disks  []PSDisk // chosen, in the server's order
	// per chosen disk
	target   []textinput.Model
	confirm  []textinput.Model
	verdict  []*TargetCheck
	pending  []bool // a check of the target as typed now is under way
	pol      [polRows]textinput.Model
	days     bool // retention unit: days, else hours
	pause    bool // on full: pause, else purge
	def      ProtectDefaults
	plan     *ProtectPlan
	scroll   int
	over     int // how many of the review's lines do not fit (set when drawn)
	applying bool
	result   *ProtectResult
}

type protDiscoverMsg struct {
	seq  int
	disc *PSDiscovery
	err  error
}

type protCheckMsg struct {
	seq, i         int
	target, confrm string
	v              TargetCheck
}

type protSuggestMsg struct {
	seq int
	m   map[string]string
}

type protPlanMsg struct {
	seq  int
	plan *ProtectPlan
	err  error
}

type protApplyMsg struct {
	res *ProtectResult
	err error
}

var _ page = (*protectPage)(nil)

func (p *protectPage) setWidth(w int) {
	for _, ti := range p.inputs() {
		ti.SetWidth(w)
	}
	for i := range p.confirm {
		p.confirm[i].SetWidth(max(w-15, 10)) // its prompt is longer
	}
}

func (p *protectPage) inputs() []*textinput.Model {
	out := []*textinput.Model{&p.addr, &p.pass}
	for i := range p.pol {
		out = append(out, &p.pol[i])
	}
	for i := range p.target {
		out = append(out, &p.target[i], &p.confirm[i])
	}
	return out
}

// openProtect opens the Protect screen on step 1 (a run in progress or
// ended stays until it is left).
func (m *Model) openProtect() tea.Cmd {
	if m.o.Protector == nil {
		m.setNote(true, "protection is not available in this console (no agent configuration): use `mtconsole protect`")
		return nil
	}
	m.screen = screenProtect
	if m.prot.step == protProgress && m.prot.applying {
		return nil
	}
	def := m.o.Protector.Defaults()
	if def.RPOThreshold <= 0 {
		def.RPOThreshold = 15 * time.Minute
	}
	if def.OnFull != "pause" {
		def.OnFull = "purge"
	}
	if def.AlertPercent <= 0 {
		def.AlertPercent = 5
	}
	p := protectPage{addr: newInput("Address:         "), pass: newInput("Passphrase file: "), chosen: map[string]bool{}, def: def}
	p.addr.SetValue(def.Addr)
	p.pass.SetValue(def.PassFile)
	p.addr.Placeholder = "HOST:PORT (port 9443 when left out)"
	p.pass.Placeholder = "/etc/mtconsole/passphrase (mode 0600)"
	labels := [polRows]string{"Group name:        ", "Retention value:   ", "", "Size cap MB:       ", "", "RPO threshold:     ", "Alert at % free:   ", "Consistency every: ", "Sparse tiers:      "}
	for i := range p.pol {
		p.pol[i] = newInput(labels[i])
	}
	// The policy starts from the [defaults]: a whole number of days
	// beyond one in days, else in hours.
	if day := 24 * time.Hour; def.Retention > day && def.Retention%day == 0 {
		p.days = true
		p.pol[polRetention].SetValue(strconv.FormatInt(int64(def.Retention/day), 10))
	} else {
		p.pol[polRetention].SetValue(strconv.FormatFloat(def.Retention.Hours(), 'f', -1, 64))
	}
	p.pol[polCap].SetValue(strconv.FormatInt(def.SizeCapMB, 10))
	p.pause = def.OnFull == "pause"
	p.pol[polRPO].SetValue(units.ConfigDuration(def.RPOThreshold))
	p.pol[polAlert].SetValue(strconv.FormatFloat(def.AlertPercent, 'f', -1, 64))
	p.pol[polInterval].SetValue("15m")
	p.pol[polSparse].SetValue(def.Sparse)
	p.pol[polSparse].Placeholder = "none: every write; or all 1d; 1 per 1h for 6d"
	m.prot = p
	m.prot.setWidth(max(m.w-30, 10))
	return m.prot.focus()
}

// rows is how many rows the step's list has.
func (p *protectPage) rows() int {
	switch p.step {
	case protServer:
		return 2
	case protDisks:
		if p.disc != nil {
			return len(p.disc.Disks)
		}
	case protMap:
		return len(p.mapRows())
	case protPolicy:
		return polRows
	}
	return 0
}

type mapRow struct {
	i       int
	confirm bool
}

// mapRows are the mapping's fields: each disk's target, and its typed
// name when the target asks for one.
func (p *protectPage) mapRows() []mapRow {
	var out []mapRow
	for i := range p.disks {
		out = append(out, mapRow{i: i})
		if v := p.verdict[i]; v != nil && v.Confirm != "" || p.confirm[i].Value() != "" {
			out = append(out, mapRow{i: i, confirm: true})
		}
	}
	return out
}

// field is the text field of the row under the cursor, nil on a list or
// a choice.
func (p *protectPage) field() *textinput.Model {
	if p.busy != "" {
		return nil
	}
	switch p.step {
	case protServer:
		if p.cur == 0 {
			return &p.addr
		}
		return &p.pass
	case protMap:
		rs := p.mapRows()
		if p.cur < len(rs) {
			if r := rs[p.cur]; r.confirm {
				return &p.confirm[r.i]
			} else {
				return &p.target[r.i]
			}
		}
	case protPolicy:
		if p.cur != polUnit && p.cur != polOnFull {
			return &p.pol[p.cur]
		}
	}
	return nil
}

// focus gives the keyboard to the row's field, if it has one.
func (p *protectPage) focus() tea.Cmd {
	for _, ti := range p.inputs() {
		ti.Blur()
	}
	if f := p.field(); f != nil {
		f.CursorEnd()
		return f.Focus()
	}
	return nil
}

func (p *protectPage) focused() *textinput.Model {
	if f := p.field(); f != nil && f.Focused() {
		return f
	}
	return nil
}

func (p *protectPage) move(d int) tea.Cmd {
	p.cur = min(max(p.cur+d, 0), max(p.rows()-1, 0))
	return p.focus()
}

// protFieldKey takes the keys that belong to the form while a field has
// the keyboard: moving between rows, next and back.
func (m *Model) protFieldKey(msg tea.KeyPressMsg) (tea.Cmd, bool) {
	p := &m.prot
	switch msg.String() {
	case "up", "shift+tab":
		return p.move(-1), true
	case "down", "tab":
		return p.move(1), true
	case "enter":
		if r := m.keySet().Handle(msg); r.Refused != "" {
			m.setNote(true, r.Refused)
			return nil, true
		} else {
			return r.Cmd, true
		}
	case "esc":
		return m.protBack(), true
	}
	return nil, false
}

func (p *protectPage) keys(m *Model) []action.Binding { return m.protKeys() }

func (p *protectPage) update(m *Model, msg tea.Msg) tea.Cmd { return m.protUpdate(msg) }

func (p *protectPage) view(m *Model, w, h int) string { return m.protView(w, h) }

// protBack goes one step back; from step 1, to the dashboard.
func (m *Model) protBack() tea.Cmd {
	p := &m.prot
	p.err = ""
	p.seq++
	if p.busy != "" && !p.applying {
		// esc cancels the wait: its answer is dropped.
		p.busy = ""
		return p.focus()
	}
	switch p.step {
	case protServer, protProgress:
		m.screen = screenDashboard
		p.setBlur()
		return nil
	case protTrust:
		p.step = protServer
	case protDisks:
		p.step = protServer
	case protMap:
		p.step = protDisks
	case protPolicy:
		p.step, p.cur = protMap, 0
	case protReview:
		p.step, p.cur = protPolicy, 0
	}
	p.cur = 0
	return p.focus()
}

func (p *protectPage) setBlur() {
	for _, ti := range p.inputs() {
		ti.Blur()
	}
}

// protNext is enter: the step's work, then the next step.
func (m *Model) protNext() tea.Cmd {
	p, pr := &m.prot, m.o.Protector
	p.err = ""
	p.seq++
	seq, ctx := p.seq, m.ctx
	switch p.step {
	case protServer:
		addr, pass, trust := strings.TrimSpace(p.addr.Value()), strings.TrimSpace(p.pass.Value()), p.trust
		p.busy = "connecting to " + addr + "…"
		p.setBlur()
		return func() tea.Msg {
			c, cancel := context.WithTimeout(ctx, 40*time.Second)
			defer cancel()
			d, err := pr.Discover(c, addr, pass, trust)
			return protDiscoverMsg{seq: seq, disc: d, err: err}
		}
	case protTrust:
		p.trust = p.untrus.Fingerprint
		p.step = protServer
		return m.protNext()
	case protDisks:
		p.disks = nil
		for _, d := range p.disc.Disks {
			if p.chosen[d.Name] && d.Paired == "" {
				p.disks = append(p.disks, d)
			}
		}
		p.target = make([]textinput.Model, len(p.disks))
		p.confirm = make([]textinput.Model, len(p.disks))
		p.verdict = make([]*TargetCheck, len(p.disks))
		p.pending = make([]bool, len(p.disks))
		for i, d := range p.disks {
			p.target[i] = newInput(fit(d.Name, 8) + " → ")
			p.target[i].Placeholder = "/dev/sdX"
			p.confirm[i] = newInput("  its name, to overwrite it: ")
		}
		p.setWidth(max(m.w-30, 10))
		p.step, p.cur = protMap, 0
		p.busy = "suggesting targets…"
		disks := p.disks
		return func() tea.Msg {
			return protSuggestMsg{seq: seq, m: pr.Suggest(ctx, disks)}
		}
	case protMap:
		p.step, p.cur = protPolicy, 0
		if p.pol[polGroup].Value() == "" {
			name := p.disc.HostName
			if name == "" && len(p.disks) > 0 {
				name = p.disks[0].Name
			}
			p.pol[polGroup].SetValue(name)
		}
		return p.focus()
	case protPolicy:
		req := m.protRequest()
		p.busy = "checking the plan…"
		p.setBlur()
		return func() tea.Msg {
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			plan, err := pr.Plan(c, req)
			return protPlanMsg{seq: seq, plan: plan, err: err}
		}
	case protReview:
		plan := p.plan
		p.busy, p.applying = "writing agent.toml and asking the agent to start the pairs…", true
		return func() tea.Msg {
			c, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			res, err := pr.Apply(c, plan)
			return protApplyMsg{res: res, err: err}
		}
	case protProgress:
		m.screen = screenDashboard
	}
	return nil
}

// protRequest is the request the steps made.
func (m *Model) protRequest() ProtectRequest {
	p := &m.prot
	req := ProtectRequest{Addr: strings.TrimSpace(p.addr.Value()), PassFile: strings.TrimSpace(p.pass.Value()),
		Disks: p.disc.Disks, Group: strings.TrimSpace(p.pol[polGroup].Value()),
		Map: map[string]string{}, Overwrite: map[string]string{},
		ConsistencyInterval: strings.TrimSpace(p.pol[polInterval].Value())}
	// Only what differs from the [defaults] is the group's own: the rest
	// it inherits (and follows when the [defaults] change).
	if c := strings.TrimSpace(p.pol[polCap].Value()); c != strconv.FormatInt(p.def.SizeCapMB, 10) {
		req.SizeCapMB = c
	}
	if onFull := map[bool]string{false: "purge", true: "pause"}[p.pause]; onFull != p.def.OnFull {
		req.OnFull = onFull
	}
	if r := strings.TrimSpace(p.pol[polRPO].Value()); r != "" {
		if d, err := time.ParseDuration(r); err != nil || d != p.def.RPOThreshold {
			req.RPOThreshold = r
		}
	}
	if a := strings.TrimSpace(p.pol[polAlert].Value()); a != "" {
		if v, err := strconv.ParseFloat(a, 64); err != nil || v != p.def.AlertPercent {
			req.AlertPercent = a
		}
	}
	if v := strings.TrimSpace(p.pol[polSparse].Value()); v != strings.TrimSpace(p.def.Sparse) {
		req.Sparse = v
		if v == "" {
			req.Sparse = "none"
		}
	}
	unit, per := "h", time.Hour
	if p.days {
		unit, per = "d", 24*time.Hour
	}
	if v := strings.TrimSpace(p.pol[polRetention].Value()); v != "" {
		if n, err := strconv.ParseFloat(v, 64); err != nil || time.Duration(n*float64(per)) != p.def.Retention {
			req.Retention = v + unit
		}
	} else {
		req.Retention = unit // refused by the plan, with the reason
	}
	for i, d := range p.disks {
		t := strings.TrimSpace(p.target[i].Value())
		req.Map[d.Name] = t
		if c := strings.TrimSpace(p.confirm[i].Value()); c != "" && t != "" {
			req.Overwrite[t] = c
		}
	}
	return req
}

// protCheck asks the rules about row i's target.
func (m *Model) protCheck(i int) tea.Cmd {
	p, pr, ctx := &m.prot, m.o.Protector, m.ctx
	if i < 0 || i >= len(p.disks) {
		return nil
	}
	d, t, c, seq := p.disks[i], strings.TrimSpace(p.target[i].Value()), strings.TrimSpace(p.confirm[i].Value()), p.seq
	if t == "" {
		p.verdict[i], p.pending[i] = &TargetCheck{Reason: "no target: type one, e.g. /dev/sdc"}, false
		return nil
	}
	p.pending[i] = true
	return func() tea.Msg {
		return protCheckMsg{seq: seq, i: i, target: t, confrm: c, v: pr.Check(ctx, d, t, c)}
	}
}

// protInputChanged rechecks the mapping's target being typed.
func (m *Model) protInputChanged() tea.Cmd {
	p := &m.prot
	if p.step != protMap {
		return nil
	}
	rs := p.mapRows()
	if p.cur < len(rs) {
		return m.protCheck(rs[p.cur].i)
	}
	return nil
}

func (m *Model) protUpdate(msg tea.Msg) tea.Cmd {
	p := &m.prot
	switch msg := msg.(type) {
	case protDiscoverMsg:
		if msg.seq != p.seq {
			return nil
		}
		p.busy = ""
		var ue *UntrustedError
		switch {
		case errors.As(msg.err, &ue):
			p.untrus, p.step = ue, protTrust
			return nil
		case msg.err != nil:
			p.err, p.step = msg.err.Error(), protServer
			return p.focus()
		}
		if p.disc == nil || p.disc.Addr != msg.disc.Addr {
			p.chosen = map[string]bool{}
		}
		p.disc, p.step, p.cur = msg.disc, protDisks, 0
		return nil
	case protSuggestMsg:
		if msg.seq != p.seq {
			return nil
		}
		p.busy = ""
		var cmds []tea.Cmd
		for i, d := range p.disks {
			if t := msg.m[d.Name]; t != "" && p.target[i].Value() == "" {
				p.target[i].SetValue(t)
			}
			cmds = append(cmds, m.protCheck(i))
		}
		return tea.Batch(append(cmds, p.focus())...)
	case protCheckMsg:
		if msg.seq != p.seq || msg.i >= len(p.disks) || strings.TrimSpace(p.target[msg.i].Value()) != msg.target ||
			strings.TrimSpace(p.confirm[msg.i].Value()) != msg.confrm {
			return nil
		}
		v := msg.v
		p.verdict[msg.i], p.pending[msg.i] = &v, false
		return nil
	case protPlanMsg:
		if msg.seq != p.seq {
			return nil
		}
		p.busy = ""
		if msg.err != nil {
			p.err = msg.err.Error()
			return p.focus()
		}
		p.plan, p.step, p.scroll = msg.plan, protReview, 0
		return nil
	case protApplyMsg:
		p.busy = ""
		if msg.err != nil {
			p.applying = false
			p.err = msg.err.Error()
			if msg.res != nil && msg.res.Path != "" {
				p.result = msg.res
			}
			return nil
		}
		p.result, p.step = msg.res, protProgress
		m.setNote(false, "protected "+strings.Join(p.plan.Pairs, ", "))
		return nil
	}
	return nil
}

// protDone says whether pair id reached Resync Step I or later.
func protDone(state string) bool {
	s, ok := wire.ParsePairState(state)
	return ok && (s == wire.StateResync1 || s == wire.StateResync2 || s == wire.StateDiffSync)
}

// protKeys are the bindings of the step shown.
func (m *Model) protKeys() []action.Binding {
	p := &m.prot
	g := m.globalKeys()
	busy := func() string {
		if p.busy != "" {
			return strings.TrimSuffix(p.busy, "…") + ": wait for the answer (esc cancels)"
		}
		return ""
	}
	next := action.Binding{Keys: []string{"enter"}, Help: "next", Run: m.protNext, Disabled: busy}
	back := escKey("back", m.protBack)
	move := moveKey("move", func(d int) tea.Cmd { return p.move(d) })
	var own []action.Binding
	switch p.step {
	case protServer:
		next.Help = "connect"
		next.Disabled = func() string {
			switch {
			case p.busy != "":
				return busy()
			case strings.TrimSpace(p.addr.Value()) == "":
				return "give the process server's address, HOST:PORT"
			case strings.TrimSpace(p.pass.Value()) == "":
				return "give the process server's passphrase file"
			}
			return ""
		}
		back.Help = "dashboard"
		own = []action.Binding{next, move, back}
	case protTrust:
		own = []action.Binding{
			{Keys: []string{"y"}, Help: "trust and pin", Dangerous: true, Run: m.protNext},
			{Keys: []string{"n", "N"}, Help: "do not trust", Run: func() tea.Cmd {
				p.err = "the certificate " + p.untrus.Fingerprint + " was not trusted: nothing was pinned; " +
					"compare it with the fingerprint `mtconsole ps` prints on the process server"
				p.step, p.cur = protServer, 0
				return p.focus()
			}},
			back}
	case protDisks:
		toggle := action.Binding{Keys: []string{"space"}, Help: "toggle",
			Disabled: func() string {
				if p.cur >= len(p.disc.Disks) {
					return "no disk"
				}
				if d := p.disc.Disks[p.cur]; d.Paired != "" {
					return d.Name + " is already protected (pair " + d.Paired + "): leave it out"
				}
				return ""
			},
			Run: func() tea.Cmd {
				n := p.disc.Disks[p.cur].Name
				p.chosen[n] = !p.chosen[n]
				return nil
			}}
		next.Disabled = func() string {
			for _, d := range p.disc.Disks {
				if p.chosen[d.Name] && d.Paired == "" {
					return ""
				}
			}
			return "choose at least one disk (space toggles)"
		}
		own = []action.Binding{move, toggle, next, back}
	case protMap:
		next.Disabled = func() string {
			if why := busy(); why != "" {
				return why
			}
			for i, d := range p.disks {
				switch v := p.verdict[i]; {
				case v == nil || p.pending[i]:
					return "the target of " + d.Name + " is being checked"
				case !v.OK:
					return d.Name + ": " + v.Reason
				}
			}
			return ""
		}
		own = []action.Binding{next, move, back}
	case protPolicy:
		next.Help = "review"
		choose := action.Binding{Keys: []string{"space", "left", "right", "h", "l"}, Label: "space/←→", Help: "choose",
			Disabled: func() string {
				if p.cur != polUnit && p.cur != polOnFull {
					return "only the retention unit and on full are choices: move to them"
				}
				return ""
			},
			Run: func() tea.Cmd {
				if p.cur == polUnit {
					p.days = !p.days
				} else {
					p.pause = !p.pause
				}
				return nil
			}}
		own = []action.Binding{next, move, choose, back}
	case protReview:
		next.Help, next.Dangerous, next.What = "apply", true, "write agent.toml and start the pairs"
		next.Disabled = func() string {
			switch {
			case p.busy != "":
				return busy()
			case p.plan == nil || len(p.plan.Refusals) > 0:
				return "the plan is refused: esc goes back to fix what is listed"
			}
			return ""
		}
		scroll := action.Binding{Keys: []string{"up", "down", "k", "j", "pgup", "pgdown"}, Label: "↑↓/pgup/pgdn", Help: "scroll",
			RunKey: func(msg tea.KeyPressMsg) tea.Cmd {
				step := map[string]int{"up": -1, "k": -1, "down": 1, "j": 1, "pgup": -10, "pgdown": 10}[msg.String()]
				p.scroll = min(max(p.scroll+step, 0), p.over)
				return nil
			},
			Disabled: func() string {
				if p.over == 0 {
					return "the plan fits the screen"
				}
				return ""
			}}
		back.Disabled = func() string {
			if p.applying {
				return "the plan is being applied: wait for its result"
			}
			return ""
		}
		own = []action.Binding{next, scroll, back}
	case protProgress:
		next.Help = "dashboard"
		back.Help, back.NoFooter = "dashboard", true
		own = []action.Binding{next, back}
	}
	return append(own, g.Logs, g.Dashboard)
}

// protView draws the step shown.
func (m *Model) protView(w, h int) string {
	p := &m.prot
	var bar []string
	cur := p.step
	if cur == protTrust {
		cur = protServer
	}
	for _, s := range []protStep{protServer, protDisks, protMap, protPolicy, protReview} {
		n := protStepNames[s]
		if s == cur {
			n = "[" + n + "]"
		}
		bar = append(bar, n)
	}
	out := []string{cut(" "+strings.Join(bar, " › "), w), ""}
	row := func(i int, s string) string {
		mark := "  "
		if i == p.cur {
			mark = "▶ "
		}
		return cut(" "+mark+s, w)
	}
	switch p.step {
	case protServer:
		out = append(out, wrap(" ", "The process server that serves the protected machine's disks, and its passphrase file (the agent's, when it has one).", w)...)
		out = append(out, "", row(0, p.addr.View()), row(1, p.pass.View()))
	case protTrust:
		u := p.untrus
		out = append(out, wrap(" ", "The process server at "+u.Addr+" presents a certificate seen for the first time:", w)...)
		out = append(out, "", cut("   "+u.Fingerprint, w), "")
		out = append(out, wrap(" ", "Compare it with the fingerprint `mtconsole ps` printed on the process server.", w)...)
		out = append(out, wrap(" ", "Trust it and pin it in "+u.TrustStore+"? [y/N]", w)...)
	case protDisks:
		d := p.disc
		first := ""
		if d.FirstUse {
			first = ", first use"
		}
		out = append(out, wrap(" ", fmt.Sprintf("Process server %s (%s), certificate %s%s. Choose the disks to protect:", d.Addr, d.HostName, d.Fingerprint, first), w)...)
		out = append(out, m.st.Bold.Render(cut(fmt.Sprintf("     %-3s %-12s %10s %6s  %-5s %s", "", "DISK", "SIZE", "BLOCK", "APP", "STATUS"), w)))
		rows := max(h-len(out)-3, 3)
		start := max(p.cur-rows+1, 0)
		for i := start; i < len(d.Disks) && i < start+rows; i++ {
			x := d.Disks[i]
			box, status := "[ ]", ""
			if p.chosen[x.Name] {
				box = "[x]"
			}
			if x.Paired != "" {
				box, status = " - ", "already protected (pair "+x.Paired+")"
			}
			app := x.AppConsistent
			if app == "" {
				app = "none"
			}
			line := row(i, fmt.Sprintf("%s %-12s %10s %6d  %-5s %s", box, x.Name, bytesText(x.Size), x.BlockSize, app, status))
			if x.Paired != "" {
				line = m.st.Dim.Render(line)
			}
			out = append(out, line)
		}
		if len(d.Disks) == 0 {
			out = append(out, "   The process server serves no disk.")
		}
		n := 0
		for _, x := range d.Disks {
			if p.chosen[x.Name] && x.Paired == "" {
				n++
			}
		}
		out = append(out, "", m.st.Dim.Render(cut(fmt.Sprintf(" %d of %d chosen · space toggles · APP: app-consistent tags (process server)", n, len(d.Disks)), w)))
	case protMap:
		out = append(out, wrap(" ", "Each disk goes to a disk of this host, which will be overwritten: suggested are free disks that fit.", w)...)
		for ri, r := range p.mapRows() {
			if r.confirm {
				out = append(out, row(ri, p.confirm[r.i].View()))
				continue
			}
			out = append(out, row(ri, p.target[r.i].View()))
			switch v := p.verdict[r.i]; {
			case v == nil || p.pending[r.i]:
				out = append(out, cut("       … checking", w))
			case v.OK:
				out = append(out, m.st.OK.Render(cut("       ✓ can be used", w)))
			default:
				for _, l := range hang("       ✗ ", "         ", v.Reason, w) {
					out = append(out, m.st.Err.Render(l))
				}
			}
		}
	case protPolicy:
		choice := func(a, b string, second bool) string {
			if second {
				return "( ) " + a + "  (•) " + b
			}
			return "(•) " + a + "  ( ) " + b
		}
		for i := range p.pol {
			switch i {
			case polUnit:
				out = append(out, row(i, "Retention unit:    "+choice("hours", "days", p.days)))
			case polOnFull:
				out = append(out, row(i, "On full:           "+choice("purge", "pause", p.pause)))
			default:
				out = append(out, row(i, p.pol[i].View()))
			}
		}
		out = append(out, "")
		out = append(out, wrap(" ", "Size cap 0: none. Alert: the retention volume is low below this % free (the group purges or pauses). The consistency interval asks the process server for a tag common to all the group's disks that often (0: none). Sparse tiers keep every write for the first, then N tags per granularity; the last ends at the retention.", w)...)
	case protReview:
		var lines []string
		if p.plan != nil && len(p.plan.Refusals) > 0 {
			lines = append(lines, m.st.Err.Render(" ✗ The plan is refused, nothing was written:"))
			for _, r := range p.plan.Refusals {
				lines = append(lines, hang("   - ", "     ", r.Reason, w)...)
			}
		} else if p.plan != nil {
			lines = planLines(p.plan.Summary, p.plan.Diff, w)
		}
		room := max(h-len(out)-3, 3)
		p.over = max(len(lines)-room, 0)
		p.scroll = min(p.scroll, p.over)
		end := min(p.scroll+room, len(lines))
		out = append(out, lines[p.scroll:end]...)
		if end < len(lines) || p.scroll > 0 {
			out = append(out, m.st.Dim.Render(cut(fmt.Sprintf(" lines %d-%d of %d (↑↓ pgup pgdn scroll)", p.scroll+1, end, len(lines)), w)))
		}
	case protProgress:
		out = append(out, m.protProgressView(w)...)
	}
	if p.busy != "" {
		out = append(out, "", cut(" … "+p.busy, w))
	}
	if p.err != "" {
		out = append(out, "")
		for _, l := range hang(" ✗ ", "   ", p.err, w) {
			out = append(out, m.st.Err.Render(l))
		}
	}
	if len(out) > h {
		out = out[:h]
	}
	return strings.Join(out, "\n")
}

// protProgressView is the new pairs' states, from the collector, until
// each reaches Resync Step I.
func (m *Model) protProgressView(w int) []string {
	p := &m.prot
	r := p.result
	var out []string
	if r.Backup != "" {
		out = append(out, wrap(" ", "Wrote "+r.Path+" (the previous file is "+r.Backup+").", w)...)
	} else {
		out = append(out, wrap(" ", "Wrote "+r.Path+".", w)...)
	}
	if !r.Agent {
		note := r.Note
		if note == "" {
			note = "the agent will pick it up when it starts"
		}
		return append(out, wrap(" ", note+".", w)...)
	}
	out = append(out, "", m.st.Bold.Render(cut(fmt.Sprintf("   %-24s %-18s %s", "PAIR", "STATE", ""), w)))
	all := true
	for _, id := range p.plan.Pairs {
		state, mark := "waiting for the agent", "…"
		if ps := m.pair(id); ps != nil {
			state = stateText(ps.State)
			if protDone(ps.State) {
				mark = "✓"
			}
		}
		if mark != "✓" {
			all = false
		}
		out = append(out, cut(fmt.Sprintf("   %-24s %-18s %s", id, state, mark), w))
	}
	out = append(out, "")
	if all {
		out = append(out, wrap(" ", "Every new pair has started (Resync Step I or later): the dashboard follows them to Differential Sync (enter).", w)...)
	} else {
		out = append(out, wrap(" ", "Waiting for each new pair to reach Resync Step I…", w)...)
	}
	return out
}

// planLines are a plan's summary (long lines hang) and its diff (cut at
// w), for the review of a protect or an unprotect.
func planLines(summary, diff string, w int) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimRight(summary, "\n"), "\n") {
		if ansi.StringWidth(l) < w {
			lines = append(lines, " "+l)
		} else {
			lines = append(lines, hang(" ", "     ", l, w)...)
		}
	}
	lines = append(lines, "")
	for _, l := range strings.Split(strings.TrimRight(diff, "\n"), "\n") {
		lines = append(lines, cut(" "+l, w))
	}
	return lines
}
