package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/writer"
)

type wizStep int

const (
	stepPairs wizStep = iota
	stepPoint
	stepTag
	stepMode
	stepCheck
	stepConfirm
	stepRun
	stepResult
)

// The point choices, in the order shown; the first is the recommended
// default, as in the original product.
const (
	pointLatestTag = iota
	pointLatestTime
	pointLatestApp
	pointTag
	pointTime
)

var pointNames = []string{
	"Latest tag (recommended)",
	"Latest time",
	"Latest app-consistent tag",
	"A tag from the list",
	"A time (RFC 3339, UTC)",
}

// The modes, in the order shown. Export comes first and is the zero
// value: the default never rewrites a disk.
const (
	modeExport = iota
	modeRollback
	modeView // a point-in-time view over NBD: nothing is written
)

// modeViewName is the request's Mode for a view: the wizard opens it with
// OpenView, never through Recover.
const modeViewName = "view"

// wizard is the recovery wizard's state.
type wizard struct {
	step   wizStep
	pairs  []string
	chosen map[string]bool
	// Machines of several pairs (by group name, their pairs sorted) are
	// choosable as one: group, when set, is chosen instead of pairs and
	// the requests name it, so the agent finds the point common to all
	// its disks.
	groups   map[string][]string
	group    string
	items    []wizItem // step 1's lines
	cur      int
	point    int
	tag      journal.Tag // the tag chosen from the list
	mode     int
	timeIn   textinput.Model
	destIn   textinput.Model
	destAuto string // the default filled into destIn, while the admin keeps it
	confirm  textinput.Model
	fieldErr string
	checks   []check
	pinned   journal.Tag // the tag a "latest" point resolved to in the check: what is recovered
	// The agent's answer to where the chosen point lies (asked on
	// entering the check): the wizard never resolves a point itself.
	asked      api.ResolveRequest
	resolved   *api.Resolution
	resolveErr string
	job        string
	startErr   string
	// opened is the view the wizard opened (mode View), shown on the result.
	opened *api.View
}

// wizItem is a line of step 1: a machine of several pairs, or a pair
// (indented under its machine when member is set).
type wizItem struct {
	group, pair string
	member      bool
}

type check struct {
	level int // checkOK, checkWarn, checkFail
	text  string
}

const (
	checkOK = iota
	checkWarn
	checkFail
)

func (w *wizard) setWidth(n int) {
	w.timeIn.SetWidth(n)
	w.destIn.SetWidth(n)
	w.confirm.SetWidth(n)
}

func (w *wizard) focused() *textinput.Model {
	for _, ti := range []*textinput.Model{&w.timeIn, &w.destIn, &w.confirm} {
		if ti.Focused() {
			return ti
		}
	}
	return nil
}

// openWizard starts the wizard with pairs chosen (none: the admin
// chooses on step 1), or shows the job that is running.
func (m *Model) openWizard(pairs []string) tea.Cmd {
	m.screen = screenRecover
	if m.fb.running() {
		// A failback run under way: its progress, not a new wizard.
		m.screen = screenFailback
		return nil
	}
	for id, j := range m.jobs {
		if j.job.State == api.JobRunning {
			m.wiz.job, m.wiz.step = id, stepRun
			return nil
		}
	}
	if m.o.Actions == nil {
		m.screen = screenDashboard
		m.setNote(true, "recovery needs the agent: this console has no connection for actions")
		return nil
	}
	all := make([]string, 0, len(m.status.Pairs))
	for _, p := range m.status.Pairs {
		all = append(all, p.ID)
	}
	slices.Sort(all)
	groups := map[string][]string{}
	for i := range m.status.Pairs {
		p := &m.status.Pairs[i]
		groups[groupOf(p)] = append(groups[groupOf(p)], p.ID)
	}
	var names []string // the machines of several pairs and the pairs alone
	for g, ids := range groups {
		if len(ids) < 2 {
			delete(groups, g)
			continue
		}
		slices.Sort(ids)
		names = append(names, g)
	}
	for _, id := range all {
		if p := m.pair(id); p == nil || groups[groupOf(p)] == nil {
			names = append(names, id)
		}
	}
	slices.Sort(names)
	var items []wizItem
	for _, n := range names {
		if ids := groups[n]; ids != nil {
			items = append(items, wizItem{group: n})
			for _, id := range ids {
				items = append(items, wizItem{pair: id, member: true})
			}
			continue
		}
		items = append(items, wizItem{pair: n})
	}
	m.wiz = wizard{pairs: all, chosen: map[string]bool{}, groups: groups, items: items,
		timeIn: newInput("Time: "), destIn: newInput("Export to: "), confirm: newInput("Confirm: ")}
	m.wiz.setWidth(max(m.w-20, 10))
	m.wiz.timeIn.Placeholder = m.o.Now().UTC().Truncate(time.Minute).Format(time.RFC3339)
	var cmds []tea.Cmd
	for _, id := range pairs {
		m.wiz.chosen[id] = true
		cmds = append(cmds, m.fetchTags(id))
	}
	return tea.Batch(cmds...)
}

// openGroupWizard starts the wizard with machine g chosen.
func (m *Model) openGroupWizard(g string) tea.Cmd {
	cmd := m.openWizard(nil)
	if m.screen != screenRecover || m.wiz.step != stepPairs || m.wiz.groups[g] == nil {
		return cmd
	}
	m.wiz.cur = max(slices.IndexFunc(m.wiz.items, func(it wizItem) bool { return it.group == g }), 0)
	return tea.Batch(cmd, m.chooseGroup(g))
}

// chooseGroup chooses machine g instead of any pair, and asks for its
// pairs' tags.
func (m *Model) chooseGroup(g string) tea.Cmd {
	w := &m.wiz
	w.group = g
	clear(w.chosen)
	var cmds []tea.Cmd
	for _, id := range w.groups[g] {
		cmds = append(cmds, m.fetchTags(id))
	}
	return tea.Batch(cmds...)
}

// chosenText names what is chosen: "machine web01 (sda, sdb)" or the
// pairs.
func (m *Model) chosenText() string {
	if g := m.wiz.group; g != "" {
		return "machine " + g + " (" + strings.Join(m.wiz.groups[g], ", ") + ")"
	}
	return strings.Join(m.chosenPairs(), ", ")
}

// chosenPairs are the pairs chosen, a chosen machine's.
func (m *Model) chosenPairs() []string {
	if g := m.wiz.group; g != "" {
		return m.wiz.groups[g]
	}
	var out []string
	for _, id := range m.wiz.pairs {
		if m.wiz.chosen[id] {
			out = append(out, id)
		}
	}
	return out
}

// commonTags are the tags every chosen pair has, newest first.
func (m *Model) commonTags() []journal.Tag {
	ids := m.chosenPairs()
	if len(ids) == 0 {
		return nil
	}
	var out []journal.Tag
	first := m.tags[ids[0]]
	for i := len(first) - 1; i >= 0; i-- {
		t := first[i]
		// Two tags of one name (a store from before the agent refused
		// them) are both offered, told apart by their ids.
		if slices.IndexFunc(out, func(o journal.Tag) bool { return tagKey(o) == tagKey(t) }) >= 0 {
			continue
		}
		in := true
		for _, id := range ids[1:] {
			if !slices.ContainsFunc(m.tags[id], func(o journal.Tag) bool { return o.Name == t.Name }) {
				in = false
				break
			}
		}
		if in {
			out = append(out, t)
		}
	}
	return out
}

// listLen is the length of the current step's list.
func (m *Model) listLen() int {
	switch m.wiz.step {
	case stepPairs:
		return len(m.wiz.items)
	case stepPoint:
		return len(pointNames)
	case stepTag:
		return len(m.commonTags())
	case stepMode:
		if m.viewActions() != nil {
			return 3
		}
		return 2
	}
	return 0
}

func (m *Model) wizBack() tea.Cmd {
	w := &m.wiz
	w.fieldErr, w.startErr = "", ""
	switch w.step {
	case stepPairs, stepRun, stepResult:
		m.screen = screenDashboard
		if w.step == stepResult {
			m.wiz = wizard{}
		}
	case stepPoint:
		w.step, w.cur = stepPairs, 0
	case stepTag:
		w.step, w.cur = stepPoint, w.point
	case stepMode:
		// Back where the admin was: in the time field, if they wrote one.
		w.step, w.cur = stepPoint, w.point
		return m.editField()
	case stepCheck:
		// Back in the path field, if it was an export: what is typed
		// next goes into the path, never to the mode list.
		w.step, w.cur = stepMode, w.mode
		return m.editField()
	case stepConfirm:
		w.step = stepCheck
	}
	return nil
}

func (m *Model) wizNext() tea.Cmd {
	w := &m.wiz
	w.fieldErr = ""
	switch w.step {
	case stepPairs:
		if len(m.chosenPairs()) == 0 {
			w.fieldErr = "choose at least one pair (space toggles, a chooses all)"
			return nil
		}
		w.step, w.cur = stepPoint, w.point
	case stepPoint:
		w.point = w.cur
		switch w.point {
		case pointTag:
			w.step, w.cur = stepTag, 0
		case pointTime:
			return m.editField()
		default:
			m.enterMode()
		}
	case stepTag:
		tags := m.commonTags()
		if w.cur >= len(tags) {
			w.fieldErr = "no tag that every chosen pair has: go back and choose another point"
			return nil
		}
		w.tag = tags[w.cur]
		m.enterMode()
	case stepMode:
		if w.cur == modeExport {
			// Enter on Export opens its path; the path's own enter goes on.
			return m.editField()
		}
		w.mode = w.cur
		return m.enterChecks()
	case stepCheck:
		if slices.ContainsFunc(w.checks, func(c check) bool { return c.level == checkFail }) {
			w.fieldErr = "fix what is marked ✗ first: esc goes back"
			return nil
		}
		if w.resolved == nil {
			// What is confirmed is what the agent said it recovers.
			w.fieldErr = "the agent has not said yet where the point lies: wait for its answer"
			return nil
		}
		w.step = stepConfirm
		if w.mode == modeRollback {
			w.confirm.SetValue("")
			return w.confirm.Focus()
		}
	case stepConfirm:
		if w.mode == modeView {
			if m.refuse("open a view") {
				return nil
			}
			return m.openView()
		}
		if w.mode == modeExport {
			return m.startRecovery()
		}
		return w.confirm.Focus()
	case stepResult:
		return m.wizBack()
	}
	return nil
}

// enterMode shows the modes, the cursor on the one chosen before (Export
// at first), the export path filled with its default.
func (m *Model) enterMode() {
	w := &m.wiz
	w.step, w.cur = stepMode, w.mode
	// The default follows the pairs and the point chosen, until the admin
	// writes a path of their own.
	def := m.defaultDest(m.request())
	if v := w.destIn.Value(); v == "" || v == w.destAuto {
		w.destIn.SetValue(def)
		w.destIn.CursorEnd()
	}
	w.destAuto, w.destIn.Placeholder = def, def
}

// listField is the field that belongs to the list item under the cursor:
// the time under "A time", the path under "Export"; nil elsewhere.
func (m *Model) listField() *textinput.Model {
	w := &m.wiz
	switch {
	case w.step == stepPoint && w.cur == pointTime:
		return &w.timeIn
	case w.step == stepMode && w.cur == modeExport:
		return &w.destIn
	}
	return nil
}

// editField gives the keyboard to the field under the cursor (tab or
// enter on its item, or coming back to it). From then on every printable
// key is the field's: nothing typed can move the list, so a path with a
// j or a k in it can never turn an export into a rollback. The field
// fixes its item: the time field means the point is a time, the path
// field that the mode is Export.
func (m *Model) editField() tea.Cmd {
	w := &m.wiz
	ti := m.listField()
	if ti == nil {
		return nil
	}
	if ti == &w.destIn {
		w.mode = modeExport
	} else {
		w.point = pointTime
	}
	return ti.Focus()
}

// leaveField hands the keyboard back from a list's field to its list, the
// cursor on the field's item: ↑, shift+tab or esc.
func (m *Model) leaveField(ti *textinput.Model) {
	ti.Blur()
	m.wiz.fieldErr = ""
}

// wizFieldKey takes the keys that move out of a list's field; false
// leaves the key to the field. Tab and ↓ go nowhere from a field: they
// are swallowed, not typed.
func (m *Model) wizFieldKey(ti *textinput.Model, msg tea.KeyPressMsg) bool {
	w := &m.wiz
	if ti != &w.destIn && ti != &w.timeIn {
		return false
	}
	switch msg.String() {
	case "up", "shift+tab":
		m.leaveField(ti)
		return true
	case "tab", "down":
		return true
	}
	return false
}

// enterChecks runs the readiness check, and again when the chosen pairs'
// tags, asked for afresh, arrive.
func (m *Model) enterChecks() tea.Cmd {
	m.wiz.step = stepCheck
	cmds := []tea.Cmd{m.resolvePoint()}
	m.wiz.checks = m.readiness()
	for _, id := range m.chosenPairs() {
		cmds = append(cmds, m.fetchTags(id))
	}
	return tea.Batch(cmds...)
}

// wizInputDone ends the focused field of the wizard.
func (m *Model) wizInputDone(ok bool) tea.Cmd {
	w := &m.wiz
	ti := w.focused()
	if ti == nil {
		return nil
	}
	if !ok {
		m.leaveField(ti)
		if ti == &w.confirm {
			w.step = stepCheck
		}
		return nil
	}
	v := strings.TrimSpace(ti.Value())
	switch ti {
	case &w.timeIn:
		if v == "" {
			v = w.timeIn.Placeholder
			w.timeIn.SetValue(v)
		}
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			w.fieldErr = "not an RFC 3339 time: write it like 2026-11-26T10:30:00Z"
			return nil
		}
		ti.Blur()
		w.point = pointTime
		m.enterMode()
	case &w.destIn:
		if v == "" {
			v = w.destAuto
			w.destIn.SetValue(v)
		}
		if !filepath.IsAbs(v) {
			w.fieldErr = "give an absolute path: the agent's working directory is not yours"
			return nil
		}
		ti.Blur()
		w.mode = modeExport // the path's enter: an export, whatever the list did
		return m.enterChecks()
	case &w.confirm:
		if m.refuse("roll back") {
			return nil
		}
		if want := m.confirmWord(); v != want {
			w.fieldErr = fmt.Sprintf("type %s exactly to roll back, or esc to go back", want)
			return nil
		}
		ti.Blur()
		return m.startRecovery()
	}
	w.fieldErr = ""
	return nil
}

// confirmWord is what the admin types to confirm a rollback: the pair's
// id for one pair, the machine's name for a machine (as the CLI asks),
// "rollback" for several.
func (m *Model) confirmWord() string {
	if m.wiz.group != "" {
		return m.wiz.group
	}
	if ids := m.chosenPairs(); len(ids) == 1 {
		return ids[0]
	}
	return "rollback"
}

// request is the recovery the wizard describes.
func (m *Model) request() api.RecoverRequest {
	w := &m.wiz
	req := api.RecoverRequest{Mode: api.ModeRollback, Pairs: m.chosenPairs(), Point: m.chosenPoint()}
	if w.group != "" {
		req.Pairs, req.Group = nil, w.group
	}
	if w.step >= stepCheck && w.pinned.Name != "" && (w.point == pointLatestTag || w.point == pointLatestApp) {
		// What the check showed is what is recovered, though a newer
		// tag arrives meanwhile.
		req.Point = m.tagPoint(w.pinned)
	}
	if t, ok := m.pinnedTime(); ok {
		// The latest time the check showed, not a later one: writes
		// that arrive meanwhile are newer than it.
		req.Point = "time:" + t.UTC().Format(time.RFC3339Nano)
	}
	switch w.mode {
	case modeExport:
		req.Mode, req.Dest = api.ModeExport, strings.TrimSpace(w.destIn.Value())
	case modeView:
		req.Mode = modeViewName
	}
	return req
}

// chosenPoint is the point the choices name, as the agent reads it.
func (m *Model) chosenPoint() string {
	w := &m.wiz
	switch w.point {
	case pointLatestTime:
		return "latest-time"
	case pointLatestApp:
		return "latest-app-consistent"
	case pointTag:
		return m.tagPoint(w.tag)
	case pointTime:
		t, _ := time.Parse(time.RFC3339Nano, strings.TrimSpace(w.timeIn.Value()))
		return "time:" + t.UTC().Format(time.RFC3339Nano)
	}
	return "latest-tag"
}

// tagPoint names t as the agent finds it: tag:NAME, or tagid:ID where a
// chosen pair holds another tag of that name, which tag:NAME would not
// tell apart (the agent refuses it as ambiguous), or where a chosen
// pair's tags are not known here.
func (m *Model) tagPoint(t journal.Tag) string {
	if t.ID != "" && slices.ContainsFunc(m.chosenPairs(), func(id string) bool {
		tags, known := m.tags[id]
		return !known || nameRepeats(tags, t.Name)
	}) {
		return "tagid:" + t.ID
	}
	return "tag:" + t.Name
}

// nameRepeats reports whether more than one tag of tags is called name.
func nameRepeats(tags []journal.Tag, name string) bool {
	first := ""
	for _, t := range tags {
		if t.Name != name {
			continue
		}
		if k := tagKey(t); first == "" {
			first = k
		} else if k != first {
			return true
		}
	}
	return false
}

// tagName is t's name, with its id where the name repeats in tags.
func tagName(t journal.Tag, tags []journal.Tag) string {
	if t.ID != "" && nameRepeats(tags, t.Name) {
		return t.Name + " (id " + t.ID + ")"
	}
	return t.Name
}

// tagKey tells tags apart as the agent does: by id, else by name.
func tagKey(t journal.Tag) string {
	if t.ID != "" {
		return t.ID
	}
	return t.Name
}

// defaultExportDir is where exports go when no target is a file to put
// them beside.
const defaultExportDir = "/var/lib/mtconsole/export"

// defaultDest is the export destination offered: for one pair
// <dir>/<pair>-<point>.img, for several a new directory
// <dir>/export-<point>/ that the agent fills with one <pair>.img each.
// <dir> is the directory of the (first) pair's target when that is a
// regular file (a file-backed disk, as in the demo), else
// defaultExportDir. It stats one file: cheap enough for Update.
func (m *Model) defaultDest(req api.RecoverRequest) string {
	dir := defaultExportDir
	ids := req.Pairs
	if req.Group != "" {
		ids = m.wiz.groups[req.Group]
	}
	if len(ids) > 0 {
		if p := m.pair(ids[0]); p != nil && p.Target != "" {
			if fi, err := os.Stat(p.Target); err == nil && fi.Mode().IsRegular() {
				dir = filepath.Dir(p.Target)
			}
		}
	}
	pt := pointSlug(req.Point)
	if req.Group != "" {
		return filepath.Join(dir, fileSafe(req.Group)+"-"+pt) + string(filepath.Separator)
	}
	if len(ids) == 1 {
		return filepath.Join(dir, fileSafe(ids[0])+"-"+pt+".img")
	}
	return filepath.Join(dir, "export-"+pt) + string(filepath.Separator)
}

// pointSlug names a point in a file name: the tag's name, the time as
// 20261126T103000Z, or the point's keyword (latest-tag, ...).
func pointSlug(point string) string {
	switch {
	case strings.HasPrefix(point, "tag:"):
		point = strings.TrimPrefix(point, "tag:")
	case strings.HasPrefix(point, "time:"):
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(point, "time:")); err == nil {
			point = t.UTC().Format("20060102T150405Z")
		}
	}
	return fileSafe(point)
}

// fileSafe keeps letters, digits, '.', '_' and '-'; anything else, a '/'
// or a space, becomes '_'.
func fileSafe(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	s = strings.TrimLeft(string(b), ".-")
	if s == "" {
		return "point"
	}
	return s
}

// cliTwin is the command that does the same from a script.
func cliTwin(req api.RecoverRequest) string {
	if req.Mode == modeViewName {
		if req.Group != "" {
			return fmt.Sprintf("mtconsole view open --group %s --point %s", shellQuote(req.Group), shellQuote(req.Point))
		}
		return fmt.Sprintf("mtconsole view open --pair %s --point %s", shellQuote(strings.Join(req.Pairs, ",")), shellQuote(req.Point))
	}
	if req.Group != "" {
		s := fmt.Sprintf("mtconsole recover --group %s --point %s --mode %s", shellQuote(req.Group), shellQuote(req.Point), req.Mode)
		if req.Dest != "" {
			s += " --dest " + shellQuote(req.Dest)
		}
		return s
	}
	s := fmt.Sprintf("mtconsole recover --point %s --mode %s", shellQuote(req.Point), req.Mode)
	if req.Dest != "" {
		s += " --dest " + shellQuote(req.Dest)
	}
	return s + " --pairs " + shellQuote(strings.Join(req.Pairs, ","))
}

// shellQuote quotes s for a POSIX shell when it needs it, so the twin can
// be pasted as it is.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;!#~") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

type recoverStartedMsg struct {
	job api.Job
	err error
}

func (m *Model) startRecovery() tea.Cmd {
	req, a, ctx := m.request(), m.o.Actions, m.ctx
	m.wiz.startErr = ""
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		j, err := a.Recover(c, req)
		return recoverStartedMsg{job: j, err: err}
	}
}

type resolvedMsg struct {
	req api.ResolveRequest
	res api.Resolution
	err error
}

// resolvePoint asks the agent where the chosen point lies in the chosen
// pairs; until it answers the check says it asked.
func (m *Model) resolvePoint() tea.Cmd {
	w, a, ctx := &m.wiz, m.o.Actions, m.ctx
	req := api.ResolveRequest{Point: m.chosenPoint(), Pairs: m.chosenPairs()}
	if w.group != "" {
		req.Pairs, req.Group = nil, w.group
	}
	w.asked, w.resolved, w.resolveErr, w.pinned = req, nil, "", journal.Tag{}
	if a == nil {
		return nil
	}
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		res, err := a.Resolve(c, req)
		return resolvedMsg{req: req, res: res, err: err}
	}
}

// onResolved takes the agent's answer, while the check it was asked for
// is shown.
func (m *Model) onResolved(msg resolvedMsg) tea.Cmd {
	w := &m.wiz
	if m.screen != screenRecover || w.step != stepCheck || msg.req.Point != w.asked.Point || msg.req.Group != w.asked.Group ||
		!slices.Equal(msg.req.Pairs, w.asked.Pairs) {
		return nil
	}
	if msg.err != nil {
		w.resolveErr = actionErrText(msg.err)
	} else {
		w.resolved = &msg.res
	}
	w.checks = m.readiness()
	return nil
}

// readiness checks the choices: the point where the agent finds it, the
// rest against what the status says, so the admin learns of a missing
// point before the agent refuses it. Local file checks are a stat each:
// cheap enough for Update.
func (m *Model) readiness() []check {
	w := &m.wiz
	w.pinned = m.pin()
	req := m.request()
	now := m.o.Now()
	var cs []check
	add := func(level int, format string, a ...any) { cs = append(cs, check{level, fmt.Sprintf(format, a...)}) }
	if m.agentErr != nil {
		add(checkWarn, "the agent does not answer now (%v): the data below is %s old", m.agentErr, durText(now.Sub(m.statusAt)))
	}
	ids := m.chosenPairs()
	cs = append(cs, m.pointChecks(ids, now)...)
	for _, id := range ids {
		p := m.pair(id)
		if p == nil {
			add(checkFail, "%s is not in the agent's status any more: go back and unchoose it", id)
			continue
		}
		if req.Mode == api.ModeRollback && p.Health != writer.HealthPaused {
			add(checkWarn, "%s is replicating: the rollback stops it; pause it first (p on its detail screen)", id)
		}
	}
	switch req.Mode {
	case api.ModeRollback:
		for _, id := range ids {
			if v := m.viewOf(id); v != "" {
				add(checkFail, "%s has view %s open: close it first (mtconsole view close %s)", id, v, v)
			}
		}
		add(checkWarn, "a rollback rewrites the targets in place and ends their pairs: the source must resync them after")
	case modeViewName:
		for _, id := range ids {
			if v := m.viewOf(id); v != "" {
				add(checkFail, "%s has view %s open already: use it, or close it first (mtconsole view close %s)", id, v, v)
			}
		}
		add(checkOK, "a view is read-only and copies nothing; the pairs keep replicating")
		add(checkWarn, "while it is open its retention is kept (pruning waits) and a rollback is refused: close it when done")
	default:
		cs = append(cs, destChecks(req.Dest, len(ids) > 1)...)
	}
	return cs
}

// pin is the tag a latest-tag or latest-app point resolved to, the same
// in every pair (a group's shared tag): the recovery asks for it by name
// or id, so a tag placed after the check does not move the point. A tag
// without an id is not pinned: its name may repeat.
func (m *Model) pin() journal.Tag {
	w := &m.wiz
	if w.resolved == nil || (w.point != pointLatestTag && w.point != pointLatestApp) {
		return journal.Tag{}
	}
	var t *journal.Tag
	for _, id := range m.askedPairs() {
		r, ok := w.resolved.Points[id]
		if !ok || r.Tag == nil || r.Tag.ID == "" || t != nil && r.Tag.ID != t.ID {
			return journal.Tag{}
		}
		t = r.Tag
	}
	if t == nil {
		return journal.Tag{}
	}
	return *t
}

// pinnedTime is the time a latest-time point resolved to at the check:
// the newest of the pairs' points (for a group the agent already chose
// one common time; each pair's point is its last write at or before it,
// so resolving time:T again finds the same writes).
func (m *Model) pinnedTime() (time.Time, bool) {
	w := &m.wiz
	if w.step < stepCheck || w.point != pointLatestTime || w.resolved == nil || w.resolveErr != "" {
		return time.Time{}, false
	}
	var t time.Time
	for _, id := range m.askedPairs() {
		r, ok := w.resolved.Points[id]
		if !ok || r.Time.IsZero() {
			return time.Time{}, false
		}
		if r.Time.After(t) {
			t = r.Time
		}
	}
	return t, !t.IsZero()
}

// askedPairs are the pairs the agent was asked about: a machine's pairs
// when it was asked about the machine.
func (m *Model) askedPairs() []string {
	if g := m.wiz.asked.Group; g != "" {
		return m.wiz.groups[g]
	}
	return m.wiz.asked.Pairs
}

// pointChecks show where the agent finds the point in each pair: what a
// recovery started now recovers.
func (m *Model) pointChecks(ids []string, now time.Time) []check {
	w := &m.wiz
	switch {
	case w.resolveErr != "":
		hint := "go back and choose another point"
		if len(ids) > 1 && (w.point == pointLatestTag || w.point == pointLatestApp) {
			hint = "tag the pairs together (t on the dashboard), or recover them one at a time"
		}
		return []check{{checkFail, w.resolveErr + ": " + hint}}
	case w.resolved == nil:
		return []check{{checkWarn, fmt.Sprintf("asking the agent where %s lies in %s…", w.asked.Point, m.chosenText())}}
	}
	var cs []check
	if t := w.pinned; w.group != "" && t.Name != "" {
		cs = append(cs, check{checkOK, fmt.Sprintf("machine %s: its %d disks share tag %s (%s) at %s UTC, the point common to all",
			w.group, len(ids), tagName(t, m.tags[ids[0]]), t.App, clockText(t.Time, now))})
	} else if len(ids) > 1 && t.Name != "" {
		cs = append(cs, check{checkOK, fmt.Sprintf("%d pairs share tag %s (%s) at %s UTC: one consistent point for all",
			len(ids), tagName(t, m.tags[ids[0]]), t.App, clockText(t.Time, now))})
	}
	for _, id := range ids {
		r, ok := w.resolved.Points[id]
		if !ok {
			cs = append(cs, check{checkFail, id + ": the agent did not say where the point lies in it: go back and choose again"})
			continue
		}
		cs = append(cs, check{checkOK, id + ": " + resolvedText(r, m.tags[id], now)})
	}
	return cs
}

// resolvedText is a point the agent resolved: "tag NAME (APP) at TIME
// UTC, sequence N, accuracy", or without a tag "TIME UTC, sequence N,
// accuracy".
func resolvedText(r recovery.Resolved, tags []journal.Tag, now time.Time) string {
	s := fmt.Sprintf("%s UTC, sequence %d, %s", clockText(r.Time, now), r.Seq, r.Accuracy)
	if t := r.Tag; t != nil {
		s = fmt.Sprintf("tag %s (%s) at %s", tagName(*t, tags), t.App, s)
	}
	return s
}

// destChecks checks an export destination: for one pair a new file whose
// directory exists; for several a new or empty directory, which the agent
// creates when it is missing.
func destChecks(dest string, group bool) []check {
	dest = filepath.Clean(dest)
	parent := filepath.Dir(dest)
	fi, err := os.Stat(dest)
	switch {
	case errors.Is(err, os.ErrNotExist) && group:
		return []check{{checkOK, dest + " is free: the agent creates it and writes one <pair>.img in it per pair"}}
	case errors.Is(err, os.ErrNotExist):
		if pi, err := os.Stat(parent); err != nil || !pi.IsDir() {
			return []check{{checkFail, parent + " is not a directory: create it first or choose another path"}}
		}
		return []check{{checkOK, dest + " is free; " + parent + " exists"}}
	case err != nil:
		return []check{{checkFail, dest + ": " + err.Error()}}
	case !group:
		return []check{{checkFail, dest + " exists: give a new path, the export never overwrites"}}
	case !fi.IsDir():
		return []check{{checkFail, dest + " exists and is not a directory: give a new or empty directory"}}
	}
	if ents, err := os.ReadDir(dest); err != nil || len(ents) > 0 {
		return []check{{checkFail, dest + " is not empty: give a new or empty directory"}}
	}
	return []check{{checkOK, dest + " is an empty directory: the agent writes one <pair>.img in it per pair"}}
}

// wizView draws the current step.
func (m *Model) wizView(w, h int) string {
	wz := &m.wiz
	var out []string
	title := func(s string) { out = append(out, m.st.Bold.Render(cut(" "+s, w)), "") }
	item := func(i int, s string) {
		line := cut("   "+s, w)
		if i == wz.cur {
			line = m.st.Selected.Render(fit(" ▶ "+s, min(w, ansiWidth(s)+4)))
		}
		out = append(out, line)
	}
	switch wz.step {
	case stepPairs:
		title("Step 1 of 5 · Which pairs? (space toggles, a all/none)")
		for i, it := range wz.items {
			if it.group != "" {
				mark := "[ ]"
				if wz.group == it.group {
					mark = "[x]"
				}
				ids := wz.groups[it.group]
				item(i, fmt.Sprintf("%s %s (machine, %d disks: %s)", mark, it.group, len(ids), strings.Join(ids, ", ")))
				continue
			}
			id := it.pair
			mark := "[ ]"
			if wz.chosen[id] || wz.group != "" && slices.Contains(wz.groups[wz.group], id) {
				mark = "[x]"
			}
			desc := id
			if p := m.pair(id); p != nil {
				desc = fmt.Sprintf("%s → %s · %s", id, p.Target, healthText(p.Health))
			}
			if it.member {
				mark = "  " + mark
			}
			item(i, mark+" "+desc)
		}
	case stepPoint:
		title("Step 2 of 5 · Recover to which point? · " + m.chosenText())
		for i, s := range pointNames {
			mark := "( )"
			if i == wz.cur {
				mark = "(•)"
			}
			item(i, mark+" "+s)
		}
		out = append(out, m.fieldLines(w)...)
	case stepTag:
		title("Step 2 of 5 · Which tag? (tags every chosen pair has, newest first)")
		tags := m.commonTags()
		for i, t := range tags {
			item(i, fmt.Sprintf("%s  %-12s %-14s %s", t.Time.UTC().Format("2006-01-02 15:04:05"), t.App, t.Accuracy, tagName(t, tags)))
		}
		if len(tags) == 0 {
			out = append(out, m.st.Dim.Render("   No tag that every chosen pair has (yet): esc goes back."))
		}
	case stepMode:
		title("Step 3 of 5 · How?")
		item(modeExport, "Export: write an image to a new path, the pairs keep replicating")
		out = append(out, m.fieldLines(w)...)
		item(modeRollback, "Rollback: rewrite the targets in place (ends the pairs)")
		if m.viewActions() != nil {
			item(modeView, "View (test): serve the point over NBD to attach, nothing is written")
		}
	case stepCheck:
		title("Step 4 of 5 · Readiness check")
		// What is checked is what will run: the mode stands first.
		req := m.request()
		st := m.st.Bold
		if req.Mode == api.ModeRollback {
			st = m.st.Warn
		}
		what := "Export"
		switch req.Mode {
		case api.ModeRollback:
			what = "▲ Rollback"
		case modeViewName:
			what = "View"
		}
		to := "to"
		if req.Mode == modeViewName {
			to = "at"
		}
		out = append(out, styled(st, wrap("   ", fmt.Sprintf("%s of %s %s %s", what, m.chosenText(), to, req.Point), w))...)
		out = append(out, "")
		for _, c := range wz.checks {
			out = append(out, m.checkLines(c, w)...)
		}
		out = append(out, "", cut("   enter: continue · esc: change the choices", w))
	case stepConfirm:
		req := m.request()
		title("Step 5 of 5 · Confirm")
		to := "to"
		if req.Mode == modeViewName {
			to = "at"
		}
		out = append(out, wrap("   ", fmt.Sprintf("%s of %s %s %s", req.Mode, m.chosenText(), to, req.Point), w)...)
		if req.Dest != "" {
			out = append(out, hang("   into ", "        ", req.Dest, w)...)
		}
		// Paths and the command are there to be copied: wrapped, never cut.
		for _, l := range hang("   script twin: ", "     ", cliTwin(req), w) {
			out = append(out, m.st.Dim.Render(l))
		}
		out = append(out, "")
		if req.Mode == api.ModeRollback {
			for _, l := range wrap("   ", fmt.Sprintf("▲ This rewrites %s in place. Type %s and press enter.",
				m.chosenText(), m.confirmWord()), w) {
				out = append(out, m.st.Warn.Render(l))
			}
			out = append(out, "", "   "+wz.confirm.View())
		} else if req.Mode == modeViewName {
			out = append(out, "   Press enter to open the view.")
		} else {
			out = append(out, "   Press enter to start the export.")
		}
		if wz.startErr != "" {
			out = append(out, "")
			out = append(out, m.errLines("   ✗ ", wz.startErr, w)...)
		}
	case stepRun, stepResult:
		if wz.opened != nil {
			out = append(out, m.viewLines(*wz.opened, w)...)
			break
		}
		out = append(out, m.jobView(wz.job, w)...)
		if wz.step == stepResult {
			out = append(out, m.vsOfferLines(w)...)
		}
	}
	if wz.fieldErr != "" {
		out = append(out, "")
		out = append(out, m.errLines("   ✗ ", wz.fieldErr, w)...)
	}
	if len(out) > h {
		// Keep the cursor's line in sight on a long list.
		start := min(max(wz.cur+2-h/2, 0), len(out)-h)
		out = append(out[:1:1], out[start+1:start+h]...)
	}
	return strings.Join(out, "\n")
}

// fieldLines is the field under the list's cursor, just below its item:
// with the cursor when it has the keyboard, else dim and saying how to
// reach it, so the admin sees whether a key goes to the list or the text.
func (m *Model) fieldLines(w int) []string {
	ti := m.listField()
	switch {
	case ti == nil:
		return nil
	case ti.Focused():
		return []string{"     " + ti.View()}
	}
	v := ti.Value()
	if v == "" {
		v = ti.Placeholder
	}
	const hint = "  (tab edits)"
	return []string{m.st.Dim.Render(cut("     "+ti.Prompt+v, w-len(hint)) + hint)}
}

func ansiWidth(s string) int { return len([]rune(s)) }

// errLines is an error, wrapped under its text, in the error style.
func (m *Model) errLines(first, s string, w int) []string {
	lines := hang(first, strings.Repeat(" ", ansi.StringWidth(first)), s, w)
	for i := range lines {
		lines[i] = m.st.Err.Render(lines[i])
	}
	return lines
}

// styled renders each line in st.
func styled(st lipgloss.Style, lines []string) []string {
	for i := range lines {
		lines[i] = st.Render(lines[i])
	}
	return lines
}

// checkLines is a check, wrapped, its symbol on the first line.
func (m *Model) checkLines(c check, w int) []string {
	sym, st := "✓", m.st.OK
	switch c.level {
	case checkFail:
		sym, st = "✗", m.st.Err
	case checkWarn:
		sym, st = "!", m.st.Warn
	}
	lines := wrap("     ", c.text, w)
	lines[0] = "   " + sym + " " + strings.TrimPrefix(lines[0], "     ")
	for i := range lines {
		lines[i] = st.Render(lines[i])
	}
	return lines
}

// jobView is a job's progress, or its result once it has ended.
type jobView struct {
	job      api.Job
	polled   bool // the agent answered about it at least once
	firstAt  time.Time
	first    int64
	lastNote string // the newest progress event
}

type jobMsg struct {
	id  string
	job api.Job
	err error
}

type jobTickMsg struct{}

// onJobEvent follows jobs from the event stream, also those started
// before the console: their typed events (EventMsg.Job) name them.
func (m *Model) onJobEvent(msg EventMsg) tea.Cmd {
	if msg.Job == nil {
		return nil
	}
	je := *msg.Job
	jv := m.applyJobEvent(je, msg.Event.Time)
	if m.o.Actions == nil {
		return nil
	}
	if je.Kind == api.JobStarted || je.Ended() || !jv.polled {
		return tea.Batch(m.pollJob(je.ID), m.jobTick())
	}
	return m.jobTick()
}

// applyJobEvent records a job's event in its view. Until the agent has
// answered for the job (a replay: never) the events are all there is;
// after, the progress still moves the bar between two polls.
func (m *Model) applyJobEvent(je api.JobEvent, at time.Time) *jobView {
	jv := m.jobs[je.ID]
	if jv == nil {
		jv = &jobView{job: api.Job{ID: je.ID, State: api.JobRunning, Started: at}}
		m.jobs[je.ID] = jv
	}
	j := &jv.job
	switch {
	case je.Kind == api.JobStarted && !jv.polled:
		j.Mode, j.Point, j.Pairs = je.Mode, je.Point, slices.Clone(je.Pairs)
	case je.Kind == api.JobProgress && j.State == api.JobRunning:
		j.DoneBytes, j.TotalBytes = je.Done, je.Total
		if je.Pair != "" && !slices.Contains(j.Pairs, je.Pair) {
			j.Pairs = append(j.Pairs, je.Pair)
		}
		jv.lastNote = progressNote(*j, je.Pair)
	case je.Ended() && !jv.polled:
		j.State, j.Error, j.Finished = je.Kind, je.Err, at
		j.DoneBytes, j.TotalBytes = je.Done, je.Total
	}
	jv.sample(at)
	m.jobSettled(je.ID)
	return jv
}

// progressNote says which pair a job is at.
func progressNote(j api.Job, pair string) string {
	if pair == "" {
		return ""
	}
	if i := slices.Index(j.Pairs, pair); i >= 0 && len(j.Pairs) > 1 {
		return fmt.Sprintf("recovering %s (pair %d of %d)", pair, i+1, len(j.Pairs))
	}
	return "recovering " + pair
}

// jobEventMsg is a step of the job the wizard follows; next waits for
// the one after.
type jobEventMsg struct {
	ev   api.JobEvent
	at   time.Time
	next tea.Cmd
}

// followJob follows job id through Actions.FollowJob: its events as
// jobEventMsg, then its end as a jobMsg. The end does not depend on the
// event stream: FollowJob asks for the job when the stream drops.
func (m *Model) followJob(id string) tea.Cmd {
	a, ctx, now := m.o.Actions, m.ctx, m.o.Now
	if a == nil {
		return nil
	}
	ch := make(chan tea.Msg, 64)
	go func() {
		j, err := a.FollowJob(ctx, id, func(je api.JobEvent) {
			select {
			case ch <- jobEventMsg{ev: je, at: now()}:
			case <-ctx.Done():
			}
		})
		if ctx.Err() == nil {
			ch <- jobMsg{id: id, job: j, err: err}
		}
		close(ch)
	}()
	var next tea.Cmd
	next = func() tea.Msg {
		msg, ok := <-ch
		if !ok {
			return nil
		}
		if em, ok := msg.(jobEventMsg); ok {
			em.next = next
			return em
		}
		return msg
	}
	return next
}

// onJobEventMsg shows a step of the followed job and waits for the next.
func (m *Model) onJobEventMsg(msg jobEventMsg) tea.Cmd {
	m.applyJobEvent(msg.ev, msg.at)
	return msg.next
}

func (jv *jobView) sample(now time.Time) {
	if jv.firstAt.IsZero() && jv.job.DoneBytes > 0 {
		jv.firstAt, jv.first = now, jv.job.DoneBytes
	}
}

// eta estimates the time left from the rate since the first sample.
func (jv *jobView) eta(now time.Time) (time.Duration, bool) {
	j := jv.job
	el := now.Sub(jv.firstAt)
	if jv.firstAt.IsZero() || el <= 0 || j.DoneBytes <= jv.first || j.TotalBytes <= 0 {
		return 0, false
	}
	rate := float64(j.DoneBytes-jv.first) / el.Seconds()
	return time.Duration(float64(j.TotalBytes-j.DoneBytes) / rate * float64(time.Second)), true
}

func (m *Model) pollJob(id string) tea.Cmd {
	a, ctx := m.o.Actions, m.ctx
	if a == nil {
		return nil
	}
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		j, err := a.Job(c, id)
		return jobMsg{id: id, job: j, err: err}
	}
}

// jobTick polls running jobs once a second; only while one runs.
func (m *Model) jobTick() tea.Cmd {
	return tea.Tick(time.Second, func(time.Time) tea.Msg { return jobTickMsg{} })
}

func (m *Model) pollJobs() tea.Cmd {
	var cmds []tea.Cmd
	for id, jv := range m.jobs {
		if jv.job.State == api.JobRunning {
			cmds = append(cmds, m.pollJob(id))
		}
	}
	if len(cmds) > 0 {
		cmds = append(cmds, m.jobTick())
	}
	return tea.Batch(cmds...)
}

func (m *Model) onJob(msg jobMsg) tea.Cmd {
	jv := m.jobs[msg.id]
	if jv == nil {
		jv = &jobView{}
		m.jobs[msg.id] = jv
	}
	if msg.err != nil {
		if errors.Is(msg.err, api.ErrUnknownJob) {
			delete(m.jobs, msg.id)
			return nil
		}
		m.setNote(true, "job "+msg.id+": "+actionErrText(msg.err))
		return nil
	}
	jv.job, jv.polled = msg.job, true
	jv.sample(m.o.Now())
	m.jobSettled(msg.id)
	return nil
}

// jobSettled moves the wizard to the result once its job has ended.
func (m *Model) jobSettled(id string) {
	if m.wiz.job == id && m.wiz.step == stepRun && m.jobs[id].job.State != api.JobRunning {
		m.wiz.step = stepResult
	}
}

// onRecoverStarted follows the job the wizard started.
func (m *Model) onRecoverStarted(msg recoverStartedMsg) tea.Cmd {
	if msg.err != nil {
		m.wiz.startErr = actionErrText(msg.err)
		m.setNote(true, "recover: "+m.wiz.startErr)
		if m.wiz.mode == modeRollback {
			m.wiz.confirm.SetValue("")
			return m.wiz.confirm.Focus()
		}
		return nil
	}
	id := msg.job.ID
	jv := m.jobs[id]
	if jv == nil {
		jv = &jobView{}
		m.jobs[id] = jv
	}
	jv.job, jv.polled = msg.job, true
	m.wiz.job, m.wiz.step = id, stepRun
	m.setNote(false, fmt.Sprintf("job %s started: %s of %s", id, msg.job.Mode, strings.Join(msg.job.Pairs, ",")))
	m.jobSettled(id)
	return tea.Batch(m.jobTick(), m.followJob(id))
}

// jobView renders a job: progress while it runs, the result after.
func (m *Model) jobView(id string, w int) []string {
	jv := m.jobs[id]
	if jv == nil {
		return []string{cut(" Job "+id+" is unknown to the agent (it restarted?): esc goes back.", w)}
	}
	j := jv.job
	now := m.o.Now()
	what := fmt.Sprintf("%s of %s to %s", orDash(j.Mode), orDash(strings.Join(j.Pairs, ", ")), orDash(j.Point))
	var out []string
	// Paths, points and errors wrap: the admin may need all of them.
	into := func() {
		if j.Dest != "" {
			out = append(out, hang("   into ", "        ", j.Dest, w)...)
		}
	}
	switch j.State {
	case api.JobRunning:
		out = append(out, styled(m.st.Bold, hang(" ⟳ Job "+id+" running: ", "   ", what, w))...)
		into()
		out = append(out, "")
		p := pct(j.DoneBytes, j.TotalBytes)
		eta := "ETA estimating…"
		if d, ok := jv.eta(now); ok {
			eta = "ETA " + durText(d)
		}
		out = append(out, cut(fmt.Sprintf("   [%s] %4s  %s of %s · %s", bar(p/100, max(w/3, 20)), pctText(p),
			bytesText(j.DoneBytes), bytesText(j.TotalBytes), eta), w))
		if jv.lastNote != "" {
			out = append(out, styled(m.st.Dim, wrap("   ", jv.lastNote, w))...)
		}
		out = append(out, "")
		out = append(out, wrap("   ", "The job runs in the agent: leaving this screen, or losing the SSH session, does not stop it.", w)...)
		out = append(out, cut("   esc: back to the dashboard (the job goes on; r shows it again)", w))
	case api.JobDone:
		took := ""
		if !j.Finished.IsZero() && !j.Started.IsZero() {
			took = " in " + secondsText(j.Finished.Sub(j.Started).Seconds())
		}
		out = append(out, styled(m.st.OK, hang(" ✓ Job "+id+" done: ", "   ", what+took, w))...)
		into()
		out = append(out, "")
		for _, pid := range j.Pairs {
			r, ok := j.Results[pid]
			if !ok {
				continue
			}
			out = append(out, hang("   "+pid+": ", "      ", r.Point.String(), w)...)
			if j.Mode == api.ModeExport && len(j.Pairs) > 1 && j.Dest != "" {
				out = append(out, hang("      image ", "      ", filepath.Join(j.Dest, pid+".img"), w)...)
			}
			out = append(out, wrap("      ", fmt.Sprintf("restored %s from %d undo records, copied %s, in %s", bytesText(r.Restored),
				r.Records, bytesText(r.Copied), secondsText(r.Duration.Seconds())), w)...)
		}
		if j.Mode == api.ModeRollback {
			out = append(out, "")
			out = append(out, wrap("   ", "The pairs rolled back have ended: protect the machine again to resync them.", w)...)
		}
		out = append(out, "", "   enter or esc: back to the dashboard")
	default:
		out = append(out, styled(m.st.Err, hang(" ✗ Job "+id+" failed: ", "   ", what, w))...)
		into()
		out = append(out, "")
		out = append(out, m.errLines("   ", j.Error, w)...)
		out = append(out, "")
		out = append(out, wrap("   ", "See the agent's log (L) for details; the recovery can be started again.", w)...)
		out = append(out, "   enter or esc: back to the dashboard")
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "?"
	}
	return s
}

// jobLines are the running jobs, for the dashboard.
func (m *Model) jobLines(w int) []string {
	var out []string
	now := m.o.Now()
	ids := make([]string, 0, len(m.jobs))
	for id := range m.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		jv := m.jobs[id]
		if jv.job.State != api.JobRunning {
			continue
		}
		eta := ""
		if d, ok := jv.eta(now); ok {
			eta = " ETA " + durText(d)
		}
		out = append(out, m.st.Warn.Render(cut(fmt.Sprintf(" ⟳ job %s: %s of %s %s%s · recovery screen shows it", id,
			orDash(jv.job.Mode), orDash(strings.Join(jv.job.Pairs, ",")), pctText(pct(jv.job.DoneBytes, jv.job.TotalBytes)), eta), w)))
	}
	return out
}

// ViewActions is Actions that also open point-in-time views (the agent's
// API does): the wizard offers its View mode only with them.
type ViewActions interface {
	OpenView(ctx context.Context, req api.ViewRequest) (api.View, error)
}

func (m *Model) viewActions() ViewActions {
	va, _ := m.o.Actions.(ViewActions)
	return va
}

// viewOf is the id of the open view of pair in the status, or "".
func (m *Model) viewOf(pair string) string {
	for _, v := range m.status.Views {
		if slices.Contains(v.Pairs, pair) {
			return v.ID
		}
	}
	return ""
}

type viewOpenedMsg struct {
	view api.View
	err  error
}

// openView asks the agent for the view the wizard describes.
func (m *Model) openView() tea.Cmd {
	req, va, ctx := m.request(), m.viewActions(), m.ctx
	m.wiz.startErr = ""
	if va == nil {
		m.wiz.startErr = "this console cannot open views: it has no agent connection for them"
		return nil
	}
	vr := api.ViewRequest{Pairs: req.Pairs, Group: req.Group, Point: req.Point}
	return func() tea.Msg {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		v, err := va.OpenView(c, vr)
		return viewOpenedMsg{view: v, err: err}
	}
}

// onViewOpened shows the view opened, with how to attach it.
func (m *Model) onViewOpened(msg viewOpenedMsg) tea.Cmd {
	if msg.err != nil {
		m.wiz.startErr = actionErrText(msg.err)
		m.setNote(true, "view: "+m.wiz.startErr)
		return nil
	}
	v := msg.view
	m.wiz.opened, m.wiz.step = &v, stepResult
	m.status.Views = append(m.status.Views, v) // until the next status
	m.setNote(false, fmt.Sprintf("view %s of %s opened", v.ID, strings.Join(v.Pairs, ",")))
	return nil
}

// viewLines shows an open view: what and where, and the commands that
// attach each disk (wrapped, never cut: they are there to be copied).
func (m *Model) viewLines(v api.View, w int) []string {
	mode := "read-only"
	if v.Writable {
		mode = "writable, overlay discarded on close"
	}
	out := []string{m.st.Title.Render(cut(fmt.Sprintf(" View %s · %s at %s", v.ID, strings.Join(v.Pairs, ","), v.Point), w)), ""}
	out = append(out, wrap("   ", fmt.Sprintf("Serving %s over NBD on %s, %d client(s).", mode, v.Listen, v.Clients), w)...)
	for _, e := range v.Exports {
		out = append(out, "", cut(fmt.Sprintf("   %s (%s) — attach with one of:", e.Pair, bytesText(e.Size)), w))
		for _, l := range api.AttachLines(v, e) {
			out = append(out, hang("   ", "     ", l, w)...)
		}
	}
	out = append(out, "")
	for _, l := range hang("   Close it when done: ", "     ", "mtconsole view close "+v.ID, w) {
		out = append(out, m.st.Dim.Render(l))
	}
	out = append(out, cut("   enter/esc: back to the dashboard", w))
	return out
}
