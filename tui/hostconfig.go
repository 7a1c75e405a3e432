package tui

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// HostConfigOptions configure the host config screen (the hostconfigcli
// replacement).
type HostConfigOptions struct {
	Paths   hostconfig.Paths
	Version string // registered with the host
	SysRoot string // "/" (tests: a fake root)
	Host    string // shown in the header
	NoColor bool
	// Timeout bounds one save (test, register, verify); 30 s if 0.
	Timeout time.Duration
	// RestartAgent, when set, runs after a registration is saved so that
	// a running agent sends heartbeats with it; it says what it did, or
	// what the admin should do.
	RestartAgent func(ctx context.Context) (string, error)
	// Drscout is an original agent's drscout.conf, offered for import when
	// this host names no configuration server and imported none yet
	// (hostconfig.DefaultDrscoutPath when it exists); OldPassphrase its
	// connection.passphrase, taken with it when readable.
	Drscout, OldPassphrase string
	// ReadOnly makes a screen that only looks: saving, registering and
	// editing a field are refused with ReadOnlyReason ("not root",
	// "--readonly"; "" reads "--readonly").
	ReadOnly       bool
	ReadOnlyReason string
}

// The five parts of the original's main dialog.
var hcParts = []string{"Global", "Agent", "NAT", "Logging", "Quit"}

const (
	partGlobal = iota
	partAgent
	partNAT
	partLogging
	partQuit
)

// hcHelp is the ? text of each part.
var hcHelp = []string{
	"Global: the configuration server this host registers with: its FQDN or IP address\n" +
		"(up to 255 characters), port (1-65535, normally 443), HTTPS (leave Yes), and the\n" +
		"passphrase (at least 16 characters; print it on the server with `mtconsole cs init`).\n" +
		"Paste works (Shift+Insert in PuTTY). Save tests the connection, shows the server's\n" +
		"certificate fingerprint on first use for you to confirm, registers and verifies.",
	"Agent: the cache and retention directory. Changing it means moving the data:\n" +
		"stop the agent, create the new directory, move the contents, change it here,\n" +
		"start the agent.",
	"NAT: a fixed host name and/or IP address to advertise instead of this host's own,\n" +
		"when the configuration server reaches it through NAT. Each has an enable switch;\n" +
		"an enabled one must not be empty. Register again (Global, Save) to tell the server.",
	"Logging: the log level (0-7) and the level of what is sent to the configuration\n" +
		"server (0-3). ←/→ change a level.",
	"Quit: leave. Each part is saved when you save it; nothing is kept unsaved.",
}

type fieldKind int

const (
	kindText fieldKind = iota
	kindToggle
	kindLevel
	kindButton
)

type hcField struct {
	label string
	key   string // the config key errors name ("cs.host")
	kind  fieldKind
	input textinput.Model
	on    bool
	level int
	max   int
	err   string
	show  func() bool // nil: always shown
}

func (f *hcField) visible() bool { return f.show == nil || f.show() }

type hcState int

const (
	hcMenu hcState = iota
	hcForm
	hcBusy
	hcConfirm
	hcImport // a drscout.conf is offered
)

// HostConfigModel is the host config screen.
type HostConfigModel struct {
	o       HostConfigOptions
	st      Styles
	w, h    int
	cfg     hostconfig.Config
	stored  bool // a passphrase is stored
	loadErr string

	part   int // selected in the menu
	state  hcState
	help   bool
	fields map[int][]*hcField
	focus  int

	status      string
	statusErr   bool
	confirmFP   wire.Fingerprint
	confirmAddr string
	confirmed   wire.Fingerprint
	pressed     string // the key being dispatched, for bindings with several
	offer       *hostconfig.Drscout
}

// NewHostConfig opens the screen on the config at o.Paths (defaults when
// there is none yet). A config that does not parse is shown, with its
// error, over defaults: saving writes a good one.
func NewHostConfig(o HostConfigOptions) *HostConfigModel {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.SysRoot == "" {
		o.SysRoot = "/"
	}
	m := &HostConfigModel{o: o, st: NewStyles(!o.NoColor), w: MinWidth, h: MinHeight}
	if o.ReadOnly && o.ReadOnlyReason == "" {
		m.o.ReadOnlyReason = "--readonly"
	}
	cfg, err := hostconfig.LoadOrDefault(o.Paths.Config)
	if err != nil {
		m.loadErr = err.Error()
		cfg = hostconfig.Default()
	}
	m.cfg = cfg
	if _, err := hostconfig.ReadPassphraseFile(o.Paths.Passphrase); err == nil {
		m.stored = true
	}
	m.build()
	if o.Drscout != "" && cfg.CSHost == "" && cfg.Imported == "" && m.loadErr == "" {
		if d, err := hostconfig.LoadDrscout(o.Drscout); err == nil {
			m.offer, m.state = &d, hcImport
		} else {
			m.status, m.statusErr = "not offered for import: "+err.Error(), true
		}
	}
	return m
}

// importOffer takes the offered drscout.conf's settings (and its
// passphrase, when readable) into the form; nothing is saved until Save.
func (m *HostConfigModel) importOffer() tea.Cmd {
	d := *m.offer
	m.offer, m.state = nil, hcMenu
	d.Apply(&m.cfg)
	m.build()
	m.status, m.statusErr = fmt.Sprintf("imported %s (%d keys missing, left at defaults): check Global, then Save to register", d.File, len(d.Missing)), false
	if m.o.OldPassphrase == "" {
		return nil
	}
	if p, err := hostconfig.ReadPassphraseFile(m.o.OldPassphrase); err == nil {
		if f := m.field(partGlobal, "passphrase"); f != nil && f.visible() {
			f.input.SetValue(string(p))
			m.status += "; its passphrase too"
		}
	}
	return nil
}

func hcInput(value string, width, limit int) textinput.Model {
	ti := newInput("")
	ti.SetValue(value)
	ti.CharLimit = limit
	ti.SetWidth(width)
	return ti
}

// build makes the fields of every part from m.cfg.
func (m *HostConfigModel) build() {
	c := m.cfg
	port := ""
	if c.CSPort > 0 {
		port = strconv.Itoa(c.CSPort)
	}
	pass := hcInput("", 30, hostconfig.MaxPassphraseLength)
	pass.EchoMode = textinput.EchoPassword
	passLabel := "Enter Passphrase:"
	var modify *hcField
	g := []*hcField{
		{label: "FQDN or IP:", key: "cs.host", input: hcInput(c.CSHost, 30, hostconfig.MaxHostLen)},
		{label: "Port:", key: "cs.port", input: hcInput(port, 6, 5)},
		{label: "Use https:", key: "cs.https", kind: kindToggle, on: c.HTTPS},
	}
	if m.stored {
		passLabel = "Existing Passphrase:"
		modify = &hcField{label: "Modify Passphrase:", key: "passphrase.modify", kind: kindToggle}
		g = append(g, modify)
	}
	pf := &hcField{label: passLabel, key: "passphrase", input: pass}
	if modify != nil {
		pf.label = "New Passphrase:"
		pf.show = func() bool { return modify.on }
	}
	g = append(g, pf, &hcField{label: "Save", kind: kindButton})
	m.fields = map[int][]*hcField{
		partGlobal: g,
		partAgent: {
			{label: "Application Cache Directory:", key: "agent.cache_dir", input: hcInput(c.CacheDir, 40, 4096)},
			{label: "Save", kind: kindButton},
		},
		partNAT: {
			{label: "Enable Fixed NAT Hostname:", key: "nat.use_hostname", kind: kindToggle, on: c.UseNATHostname},
			{label: "NAT Hostname:", key: "nat.hostname", input: hcInput(c.NATHostname, 30, hostconfig.MaxHostLen)},
			{label: "Enable Fixed NAT IP Address:", key: "nat.use_ip", kind: kindToggle, on: c.UseNATIP},
			{label: "NAT IP Address:", key: "nat.ip", input: hcInput(c.NATIP, 30, 45)},
			{label: "Save", kind: kindButton},
		},
		partLogging: {
			{label: "Log Level:", key: "logging.level", kind: kindLevel, level: c.LogLevel, max: hostconfig.MaxLogLevel},
			{label: "Remote Log Level:", key: "logging.remote_level", kind: kindLevel, level: c.RemoteLogLevel, max: hostconfig.MaxRemoteLevel},
			{label: "Save", kind: kindButton},
		},
	}
}

// RunHostConfig runs the screen on the terminal until Quit.
func RunHostConfig(ctx context.Context, o HostConfigOptions) error {
	p := tea.NewProgram(NewHostConfig(o), tea.WithContext(ctx), tea.WithFPS(10))
	_, err := p.Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil
	}
	return err
}

// Init does nothing: the screen waits for keys.
func (m *HostConfigModel) Init() tea.Cmd { return nil }

// hcDoneMsg is the outcome of a save's background work.
type hcDoneMsg struct {
	part    int
	res     hostconfig.Result
	cfg     hostconfig.Config
	err     error
	untrust wire.Fingerprint // first-use certificate awaiting confirmation
	restart string           // what RestartAgent did or advises
}

func (m *HostConfigModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.w, m.h = msg.Width, msg.Height
		return m, nil
	case hcDoneMsg:
		return m, m.done(msg)
	case tea.PasteMsg:
		// The terminal's paste (PuTTY's Shift+Insert): a copied line's
		// newline is not part of the value.
		if f := m.current(); m.state == hcForm && f != nil && f.kind == kindText {
			if why := m.keys().Reason(m.editBinding()); why != "" {
				m.status, m.statusErr = why, true
				return m, nil
			}
			var cmd tea.Cmd
			f.input, cmd = f.input.Update(tea.PasteMsg{Content: strings.TrimRight(msg.Content, "\r\n")})
			f.err = ""
			return m, cmd
		}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, nil
}

func (m *HostConfigModel) visibleFields() []*hcField {
	var vs []*hcField
	for _, f := range m.fields[m.part] {
		if f.visible() {
			vs = append(vs, f)
		}
	}
	return vs
}

func (m *HostConfigModel) current() *hcField {
	vs := m.visibleFields()
	if len(vs) == 0 {
		return nil
	}
	m.focus = min(max(m.focus, 0), len(vs)-1)
	return vs[m.focus]
}

func (m *HostConfigModel) move(d int) {
	n := len(m.visibleFields())
	m.focus = (m.focus + d + n) % n
}

func (m *HostConfigModel) blurAll() {
	for _, fs := range m.fields {
		for _, f := range fs {
			f.input.Blur()
		}
	}
}

func (m *HostConfigModel) focusCmd() tea.Cmd {
	m.blurAll()
	if f := m.current(); f != nil && f.kind == kindText {
		return f.input.Focus()
	}
	return nil
}

func (m *HostConfigModel) field(part int, k string) *hcField {
	for _, f := range m.fields[part] {
		if f.key == k {
			return f
		}
	}
	return nil
}

// formConfig is m.cfg with part's fields applied; a bad value is marked
// under its field and returns false.
func (m *HostConfigModel) formConfig(part int) (hostconfig.Config, bool) {
	c := m.cfg
	ok := true
	for _, f := range m.fields[part] {
		f.err = ""
	}
	bad := func(k string, err error) {
		if f := m.field(part, k); f != nil {
			f.err = err.Error()
		}
		ok = false
	}
	switch part {
	case partGlobal:
		c.CSHost = strings.TrimSpace(m.field(part, "cs.host").input.Value())
		if err := hostconfig.ValidateHost(c.CSHost); err != nil {
			bad("cs.host", err)
		}
		p, err := hostconfig.ParsePort(m.field(part, "cs.port").input.Value())
		if err != nil {
			bad("cs.port", fmt.Errorf("Error!!! Not a valid Port: want 1-65535"))
		}
		c.CSPort = p
		c.HTTPS = m.field(part, "cs.https").on
	case partAgent:
		c.CacheDir = strings.TrimSpace(m.field(part, "agent.cache_dir").input.Value())
	case partNAT:
		c.UseNATHostname, c.NATHostname = m.field(part, "nat.use_hostname").on, strings.TrimSpace(m.field(part, "nat.hostname").input.Value())
		c.UseNATIP, c.NATIP = m.field(part, "nat.use_ip").on, strings.TrimSpace(m.field(part, "nat.ip").input.Value())
	case partLogging:
		c.LogLevel, c.RemoteLogLevel = m.field(part, "logging.level").level, m.field(part, "logging.remote_level").level
	}
	if !ok {
		return c, false
	}
	if err := c.Validate(); err != nil {
		var fe *hostconfig.FieldError
		if errors.As(err, &fe) && m.field(part, fe.Field) != nil {
			bad(fe.Field, fe.Err)
		} else {
			m.status, m.statusErr = err.Error(), true
			ok = false
		}
	}
	return c, ok
}

// save saves a part: Global registers (test, confirm, register, verify);
// the others write the local config.
func (m *HostConfigModel) save(part int) tea.Cmd {
	c, ok := m.formConfig(part)
	var pass hostconfig.Passphrase
	if pf := m.field(part, "passphrase"); pf != nil && pf.visible() {
		p, err := hostconfig.CleanPassphrase(pf.input.Value())
		if err != nil {
			pf.err, ok = err.Error(), false
		}
		pass = p
	}
	if !ok {
		m.state = hcForm
		return nil
	}
	if part != partGlobal {
		paths := m.o.Paths
		m.state, m.status, m.statusErr = hcBusy, "Saving…", false
		return func() tea.Msg {
			saved, err := hostconfig.Update(paths.Config, func(old *hostconfig.Config) error { *old = c; return nil })
			return hcDoneMsg{part: part, cfg: saved, err: err}
		}
	}
	confirmed := m.confirmed
	s := hostconfig.Setup{Paths: m.o.Paths, Passphrase: pass, Version: m.o.Version, SysRoot: m.o.SysRoot}
	var seen wire.Fingerprint
	s.Confirm = func(_ string, fp wire.Fingerprint) bool {
		seen = fp
		return fp == confirmed
	}
	m.state, m.status, m.statusErr = hcBusy, "Testing the connection to "+c.CSAddr()+"…", false
	m.confirmAddr = c.CSAddr()
	timeout, restart := m.o.Timeout, m.o.RestartAgent
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		res, err := hostconfig.Register(ctx, c, s)
		if errors.Is(err, hostconfig.ErrUntrusted) && !seen.IsZero() && seen != confirmed {
			// the server proved it holds the passphrase: ask the admin
			return hcDoneMsg{part: part, untrust: seen}
		}
		d := hcDoneMsg{part: part, res: res, cfg: res.Config, err: err}
		if err == nil && restart != nil {
			rctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if msg, err := restart(rctx); err != nil {
				d.restart = "✗ the agent was not restarted: " + err.Error()
			} else {
				d.restart = msg
			}
		}
		return d
	}
}

func (m *HostConfigModel) done(d hcDoneMsg) tea.Cmd {
	if !d.untrust.IsZero() {
		m.state, m.confirmFP, m.status = hcConfirm, d.untrust, ""
		return nil
	}
	m.state = hcForm
	if d.err != nil {
		m.statusErr = true
		m.status = "Not saved."
		if f := m.errField(d.part, d.err); f != nil {
			f.err = d.err.Error()
		} else {
			m.status = "Not saved: " + d.err.Error()
		}
		return nil
	}
	m.cfg, m.statusErr = d.cfg, false
	if d.part == partGlobal {
		m.stored = true
		m.build()
		m.focus = len(m.visibleFields()) - 1
		m.status = fmt.Sprintf("✓ registered and verified: host %s (%s)", d.res.Host.ID, d.res.Host.State)
		if d.restart != "" {
			m.status += "; " + d.restart
		}
		return m.focusCmd()
	}
	m.status = "✓ saved"
	if d.part == partNAT {
		m.status += ": register again (Global, Save) to tell the configuration server"
	}
	return nil
}

// errField is the field an error concerns.
func (m *HostConfigModel) errField(part int, err error) *hcField {
	var fe *hostconfig.FieldError
	if errors.As(err, &fe) {
		return m.field(part, fe.Field)
	}
	switch {
	case errors.Is(err, hostconfig.ErrPassphraseShort), errors.Is(err, hostconfig.ErrPassphraseRejected), errors.Is(err, hostconfig.ErrPassphraseFile):
		if f := m.field(part, "passphrase"); f != nil && f.visible() {
			return f
		}
		return m.field(part, "passphrase.modify")
	case errors.Is(err, hostconfig.ErrBadPort):
		return m.field(part, "cs.port")
	case errors.Is(err, hostconfig.ErrUnreachable), errors.Is(err, hostconfig.ErrCertChanged), errors.Is(err, hostconfig.ErrBadReply), errors.Is(err, hostconfig.ErrBadHost):
		return m.field(part, "cs.host")
	}
	return nil
}

// View draws the screen.
func (m *HostConfigModel) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = true
	return v
}

func (m *HostConfigModel) render() string {
	if m.w < MinWidth || m.h < MinHeight {
		return ansi.Truncate(fmt.Sprintf("needs at least %dx%d (now %dx%d)", MinWidth, MinHeight, m.w, m.h), m.w, "…")
	}
	st := m.st
	var lines []string
	add := func(s ...string) { lines = append(lines, s...) }
	title := " Host Config Interface"
	right := m.o.Host + " "
	if ro := m.readOnly(); ro != "" {
		right = "read-only: " + ro + " · " + right
	}
	add(st.Header.Render(title+strings.Repeat(" ", max(1, m.w-ansi.StringWidth(title)-ansi.StringWidth(right)))+right), strings.Repeat("─", m.w))
	add(" Pick the command you wish to run.   Press ? for help", "")
	var menu strings.Builder
	menu.WriteString("  ")
	for i, p := range hcParts {
		label := "  " + p + "  "
		if i == m.part {
			label = "[ " + p + " ]"
			if m.state == hcMenu {
				label = st.Selected.Render(label)
			} else {
				label = st.Bold.Render(label)
			}
		}
		menu.WriteString(label + "  ")
	}
	add(menu.String(), "")
	switch {
	case m.help:
		add(" "+st.Title.Render("Help: "+hcParts[m.part]), "")
		add(wrap("   ", strings.ReplaceAll(hcHelp[m.part], "\n", " "), m.w)...)
		add("")
		if ro := m.readOnly(); ro != "" {
			add(wrap("   ", "Read-only ("+ro+"): the keys that change something are listed disabled, and refused.", m.w)...)
		}
		add(m.stateKeys().HelpLines(m.w, st.Dim)...)
	case m.state == hcMenu:
		add(m.summary()...)
	case m.state == hcImport:
		d := m.offer
		id := d.HostID
		if id == "" {
			id = "none (a new one is made)"
		}
		add(" "+st.Title.Render("Settings of the original agent found"), "",
			"   "+cut(d.File, m.w-4), "",
			"     Configuration server:  "+cut(net.JoinHostPort(d.CSHost, strconv.Itoa(d.CSPort)), m.w-30)+", https "+units.YesNo(d.HTTPS),
			"     Host id:               "+id, "")
		if len(d.Missing) > 0 {
			add(wrap("   ", "Missing (left at defaults): "+strings.Join(d.Missing, ", "), m.w)...)
			add("")
		}
		add("   Import them (and its passphrase, if found)?  " + st.Key.Render("y") + " yes   " + st.Key.Render("n") + " no")
	case m.state == hcConfirm:
		add(" "+st.Title.Render("First connection to "+m.confirmAddr), "",
			"   The server proved it holds the passphrase and saw this certificate:", "",
			"     "+st.Bold.Render(m.confirmFP.String()), "",
			"   Compare it with what `mtconsole cs serve` printed on the server.",
			"   Trust this certificate and register?  "+st.Key.Render("y")+" yes   "+st.Key.Render("n")+" no")
	default:
		add(m.form()...)
	}
	if m.status != "" {
		s := m.status
		if m.statusErr {
			s = "✗ " + s
		}
		sl := wrap(" ", s, m.w)
		for len(lines) < m.h-2-len(sl) {
			add("")
		}
		for _, l := range sl {
			if m.statusErr {
				l = st.Err.Render(l)
			}
			add(l)
		}
	}
	for len(lines) < m.h-2 {
		add("")
	}
	add(strings.Repeat("─", m.w), m.footer())
	if len(lines) > m.h {
		lines = append(lines[:m.h-2], lines[len(lines)-2:]...)
	}
	for i, l := range lines {
		lines[i] = ansi.Truncate(l, m.w, "…")
	}
	return strings.Join(lines, "\n")
}

// summary is the menu's view of the current settings.
func (m *HostConfigModel) summary() []string {
	c := m.cfg
	cs := "not set"
	if c.CSHost != "" {
		proto := "https"
		if !c.HTTPS {
			proto = "http"
		}
		cs = fmt.Sprintf("%s (%s)", c.CSAddr(), proto)
	}
	pass := "none stored"
	if m.stored {
		pass = "stored (0600)"
	}
	id := c.HostID
	if id == "" {
		id = "made on first save"
	}
	nat := "off"
	switch {
	case c.UseNATHostname && c.UseNATIP:
		nat = c.NATHostname + ", " + c.NATIP
	case c.UseNATHostname:
		nat = c.NATHostname
	case c.UseNATIP:
		nat = c.NATIP
	}
	out := []string{
		"   Configuration server:  " + cs,
		"   Passphrase:            " + pass,
		"   Host id:               " + id,
		"   Role:                  " + c.Role,
		"   Cache directory:       " + c.CacheDir,
		"   NAT:                   " + nat,
		fmt.Sprintf("   Logging:               level %d, remote %d", c.LogLevel, c.RemoteLogLevel),
	}
	if m.loadErr != "" {
		out = append(out, "", " "+m.st.Err.Render("✗ "+m.loadErr), "   (defaults shown; saving writes a good file)")
	}
	return out
}

var hcTitles = []string{"CX Server settings", "VX Agent", "NAT Hostname /IP address configuration", "Logging Options"}

func (m *HostConfigModel) form() []string {
	st := m.st
	out := []string{" " + st.Title.Render(hcTitles[m.part]), ""}
	cur := m.current()
	lw := 0
	for _, f := range m.visibleFields() {
		lw = max(lw, ansi.StringWidth(f.label))
	}
	for _, f := range m.visibleFields() {
		mark := "  "
		if f == cur {
			mark = st.Key.Render("› ")
		}
		var val string
		switch f.kind {
		case kindText:
			val = "[" + f.input.View() + "]"
			if f.key == "passphrase" && !f.input.Focused() && f.input.Value() == "" && !m.stored {
				val = "[" + st.Dim.Render("paste or type, at least 16 characters") + "]"
			}
		case kindToggle:
			val = "< No  >"
			if f.on {
				val = "< Yes >"
			}
			if f == cur {
				val = st.Selected.Render(val)
			}
		case kindLevel:
			val = fmt.Sprintf("◂ %d ▸  (0-%d)", f.level, f.max)
			if f == cur {
				val = st.Selected.Render(fmt.Sprintf("◂ %d ▸", f.level)) + fmt.Sprintf("  (0-%d)", f.max)
			}
		case kindButton:
			b := "[ Save ]"
			if f == cur {
				b = st.Selected.Render(b)
			}
			out = append(out, "", " "+mark+b+"  "+st.Dim.Render(m.saveNote()))
			continue
		}
		out = append(out, " "+mark+fmt.Sprintf("%-*s ", lw, f.label)+val)
		if f.err != "" {
			for _, l := range wrap("   "+strings.Repeat(" ", lw)+" ", "✗ "+f.err, m.w) {
				out = append(out, st.Err.Render(l))
			}
		}
	}
	if m.part == partAgent {
		out = append(out, "", st.Dim.Render("   Changing it means moving the data: stop the agent, create the new"),
			st.Dim.Render("   directory, move the contents, save here, start the agent."))
	}
	if m.part == partGlobal && m.stored && !m.field(partGlobal, "passphrase").visible() {
		out = append(out, "", st.Dim.Render("   Existing Passphrase: ******** (stored root-only)"))
	}
	return out
}

func (m *HostConfigModel) saveNote() string {
	if m.part == partGlobal {
		return "test connection → confirm certificate → register → verify"
	}
	return "writes the host config"
}
