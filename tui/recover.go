package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
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
	stepVSPlan // the failback VM: its name, then the plan and the confirmation
	stepVSRun
	stepVSDone
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
)

// wizard is the recovery wizard's state.
type wizard struct {
	step     wizStep
	pairs    []string
	chosen   map[string]bool
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
	job      string
	startErr string
	// The failback VM, offered on a rollback's result.
	vs        vsState
	vsName    textinput.Model
	vsConfirm textinput.Model
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
	w.vsName.SetWidth(n)
	w.vsConfirm.SetWidth(n)
}

func (w *wizard) focused() *textinput.Model {
	for _, ti := range []*textinput.Model{&w.timeIn, &w.destIn, &w.confirm, &w.vsName, &w.vsConfirm} {
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
	if m.wiz.step == stepVSRun {
		// The failback VM being created: its progress, not a new wizard.
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
	m.wiz = wizard{pairs: all, chosen: map[string]bool{},
		timeIn: newInput("Time: "), destIn: newInput("Export to: "), confirm: newInput("Confirm: "),
		vsName: newInput("VM name: "), vsConfirm: newInput("Confirm: ")}
	m.wiz.setWidth(max(m.w-20, 10))
	m.wiz.timeIn.Placeholder = m.o.Now().UTC().Truncate(time.Minute).Format(time.RFC3339)
	var cmds []tea.Cmd
	for _, id := range pairs {
		m.wiz.chosen[id] = true
		cmds = append(cmds, m.fetchTags(id))
	}
	return tea.Batch(cmds...)
}

func (m *Model) chosenPairs() []string {
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
		return len(m.wiz.pairs)
	case stepPoint:
		return len(pointNames)
	case stepTag:
		return len(m.commonTags())
	case stepMode:
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
	case stepVSPlan:
		w.step = stepResult
	case stepVSRun:
		m.setNote(true, "the failback VM is being created: wait for its report")
	case stepVSDone:
		m.screen = screenDashboard
		m.wiz = wizard{}
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
		w.mode = modeRollback
		return m.enterChecks()
	case stepCheck:
		if slices.ContainsFunc(w.checks, func(c check) bool { return c.level == checkFail }) {
			w.fieldErr = "fix what is marked ✗ first: esc goes back"
			return nil
		}
		w.step = stepConfirm
		if w.mode == modeRollback {
			w.confirm.SetValue("")
			return w.confirm.Focus()
		}
	case stepConfirm:
		if w.mode == modeExport {
			return m.startRecovery()
		}
		return w.confirm.Focus()
	case stepResult, stepVSDone:
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
	m.wiz.checks = m.readiness()
	var cmds []tea.Cmd
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
	if ti == &w.vsName || ti == &w.vsConfirm {
		return m.vsInputDone(ti, ok)
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
// id for one pair, "rollback" for several.
func (m *Model) confirmWord() string {
	if ids := m.chosenPairs(); len(ids) == 1 {
		return ids[0]
	}
	return "rollback"
}

// request is the recovery the wizard describes.
func (m *Model) request() api.RecoverRequest {
	w := &m.wiz
	req := api.RecoverRequest{Mode: api.ModeRollback, Pairs: m.chosenPairs()}
	switch {
	case w.step >= stepCheck && w.pinned.Name != "" && (w.point == pointLatestTag || w.point == pointLatestApp):
		// What the check showed is what is recovered, though a newer
		// tag arrives meanwhile.
		req.Point = m.tagPoint(w.pinned)
	case w.point == pointLatestTag:
		req.Point = "latest-tag"
	case w.point == pointLatestTime:
		req.Point = "latest-time"
	case w.point == pointLatestApp:
		req.Point = "latest-app-consistent"
	case w.point == pointTag:
		req.Point = m.tagPoint(w.tag)
	case w.point == pointTime:
		t, _ := time.Parse(time.RFC3339Nano, strings.TrimSpace(w.timeIn.Value()))
		req.Point = "time:" + t.UTC().Format(time.RFC3339Nano)
	}
	if w.mode == modeExport {
		req.Mode, req.Dest = api.ModeExport, strings.TrimSpace(w.destIn.Value())
	}
	return req
}

// tagPoint names t as the agent finds it: tag:NAME, or tagid:ID where a
// chosen pair holds another tag of that name, which tag:NAME would not
// tell apart (the agent refuses it as ambiguous).
func (m *Model) tagPoint(t journal.Tag) string {
	if t.ID != "" && slices.ContainsFunc(m.chosenPairs(), func(id string) bool { return nameRepeats(m.tags[id], t.Name) }) {
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
	if len(req.Pairs) > 0 {
		if p := m.pair(req.Pairs[0]); p != nil && p.Target != "" {
			if fi, err := os.Stat(p.Target); err == nil && fi.Mode().IsRegular() {
				dir = filepath.Dir(p.Target)
			}
		}
	}
	pt := pointSlug(req.Point)
	if len(req.Pairs) == 1 {
		return filepath.Join(dir, fileSafe(req.Pairs[0])+"-"+pt+".img")
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

// readiness checks the choices against what the status says, so the
// admin learns of a missing point before the agent refuses it. Local
// file checks are a stat each: cheap enough for Update.
func (m *Model) readiness() []check {
	w := &m.wiz
	w.pinned = journal.Tag{}
	req := m.request()
	now := m.o.Now()
	var cs []check
	add := func(level int, format string, a ...any) { cs = append(cs, check{level, fmt.Sprintf(format, a...)}) }
	if m.agentErr != nil {
		add(checkWarn, "the agent does not answer now (%v): the data below is %s old", m.agentErr, durText(now.Sub(m.statusAt)))
	}
	ids := req.Pairs
	group := len(ids) > 1 && (w.point == pointLatestTag || w.point == pointLatestApp)
	if group {
		// As the agent resolves it: the newest tag (by id) every chosen
		// pair holds, so the disks come back at one consistent point.
		var lists [][]journal.Tag
		for _, id := range ids {
			if tags, known := m.tags[id]; known {
				lists = append(lists, tags)
			}
		}
		t, ok := commonTag(lists, w.point == pointLatestApp)
		switch {
		case len(lists) < len(ids):
			add(checkWarn, "%d pairs: their tags have not all arrived: the agent looks for one they share when the job starts", len(ids))
		case !ok:
			add(checkFail, "these %d pairs share no %stag, so they have no common point: tag them together (t on the dashboard) or recover them one at a time",
				len(ids), map[bool]string{true: "app-consistent ", false: ""}[w.point == pointLatestApp])
		default:
			w.pinned = t
			add(checkOK, "%d pairs share tag %s (%s) at %s UTC: one consistent point for all", len(ids), tagName(t, m.tags[ids[0]]), t.App, clockText(t.Time, now))
		}
	}
	for _, id := range ids {
		p := m.pair(id)
		if p == nil {
			add(checkFail, "%s is not in the agent's status any more: go back and unchoose it", id)
			continue
		}
		r := p.Retention
		tags, known := m.tags[id]
		switch {
		case group:
			// the shared point is checked above
		default:
			m.pointCheck(add, w, p, r, tags, known, req, now)
		}
		if req.Mode == api.ModeRollback {
			if p.Health != writer.HealthPaused {
				add(checkWarn, "%s is replicating: the rollback stops it; pause it first (p on its detail screen)", id)
			}
		}
	}
	if req.Mode == api.ModeRollback {
		add(checkWarn, "a rollback rewrites the targets in place and ends their pairs: the source must resync them after")
	} else {
		cs = append(cs, destChecks(req.Dest, len(ids) > 1)...)
	}
	return cs
}

// commonTag is the newest tag (app-consistent only, if app) that every
// list holds, matched by id (or name when a tag has no id) as the agent
// matches them.
func commonTag(lists [][]journal.Tag, app bool) (journal.Tag, bool) {
	count := map[string]int{}
	var best journal.Tag
	found := false
	for i, l := range lists {
		seen := map[string]bool{}
		for _, t := range l {
			k := tagKey(t)
			if (app && !t.AppConsistent()) || seen[k] {
				continue
			}
			seen[k] = true
			count[k]++
			if i == len(lists)-1 && count[k] == len(lists) && (!found || t.Time.After(best.Time)) {
				best, found = t, true
			}
		}
	}
	return best, found
}

// pointCheck checks one pair's own point.
func (m *Model) pointCheck(add func(int, string, ...any), w *wizard, p *api.PairStatus, r writer.RetentionStatus,
	tags []journal.Tag, known bool, req api.RecoverRequest, now time.Time) {
	id := p.ID
	{
		switch w.point {
		case pointLatestTag:
			if t := r.LatestTag; t != nil {
				w.pinned = *t
				add(checkOK, "%s: latest tag %s (%s) at %s UTC", id, tagName(*t, tags), t.App, clockText(t.Time, now))
			} else {
				add(checkFail, "%s has no tag yet: choose Latest time, or tag it first", id)
			}
		case pointLatestTime:
			if !r.To.IsZero() {
				add(checkOK, "%s: latest point %s UTC (sequence %d)", id, clockText(r.To, now), r.ToSeq)
			} else {
				add(checkFail, "%s has no recoverable point yet", id)
			}
		case pointLatestApp:
			i := lastIndexFunc(tags, journal.Tag.AppConsistent)
			switch {
			case !known:
				add(checkWarn, "%s: its tags have not arrived: the agent checks when the job starts", id)
			case i < 0:
				add(checkFail, "%s has no app-consistent tag: choose Latest tag or Latest time", id)
			default:
				t := tags[i]
				w.pinned = t
				add(checkOK, "%s: app-consistent tag %s (%s) at %s UTC", id, tagName(t, tags), t.App, clockText(t.Time, now))
			}
		case pointTag:
			// As the agent will look: by id when the point is tagid:.
			byID := strings.HasPrefix(req.Point, "tagid:")
			i := slices.IndexFunc(tags, func(t journal.Tag) bool { return t.Name == w.tag.Name && (!byID || t.ID == w.tag.ID) })
			name := tagName(w.tag, tags)
			switch {
			case !known:
				add(checkWarn, "%s: its tags have not arrived: the agent checks when the job starts", id)
			case i < 0:
				add(checkFail, "%s has no tag %s", id, name)
			default:
				add(checkOK, "%s: tag %s at %s UTC, %s", id, name, clockText(tags[i].Time, now), tags[i].Accuracy)
			}
		case pointTime:
			t, _ := time.Parse(time.RFC3339Nano, strings.TrimPrefix(req.Point, "time:"))
			if r.To.IsZero() || t.Before(r.From) || t.After(r.To) {
				add(checkFail, "%s: %s is outside its retention window %s → %s UTC", id, clockText(t, now),
					clockText(r.From, now), clockText(r.To, now))
			} else {
				add(checkOK, "%s: %s is inside its retention window", id, clockText(t, now))
			}
		}
	}
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
		for i, id := range wz.pairs {
			mark := "[ ]"
			if wz.chosen[id] {
				mark = "[x]"
			}
			desc := id
			if p := m.pair(id); p != nil {
				desc = fmt.Sprintf("%s → %s · %s", id, p.Target, healthText(p.Health))
			}
			item(i, mark+" "+desc)
		}
	case stepPoint:
		title("Step 2 of 5 · Recover to which point? · " + strings.Join(m.chosenPairs(), ", "))
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
	case stepCheck:
		title("Step 4 of 5 · Readiness check")
		// What is checked is what will run: the mode stands first.
		req := m.request()
		st := m.st.Bold
		if req.Mode == api.ModeRollback {
			st = m.st.Warn
		}
		what := "Export"
		if req.Mode == api.ModeRollback {
			what = "▲ Rollback"
		}
		out = append(out, styled(st, wrap("   ", fmt.Sprintf("%s of %s to %s", what, strings.Join(req.Pairs, ", "), req.Point), w))...)
		out = append(out, "")
		for _, c := range wz.checks {
			out = append(out, m.checkLines(c, w)...)
		}
		out = append(out, "", cut("   enter: continue · esc: change the choices", w))
	case stepConfirm:
		req := m.request()
		title("Step 5 of 5 · Confirm")
		out = append(out, wrap("   ", fmt.Sprintf("%s of %s to %s", req.Mode, strings.Join(req.Pairs, ", "), req.Point), w)...)
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
				strings.Join(req.Pairs, ", "), m.confirmWord()), w) {
				out = append(out, m.st.Warn.Render(l))
			}
			out = append(out, "", "   "+wz.confirm.View())
		} else {
			out = append(out, "   Press enter to start the export.")
		}
		if wz.startErr != "" {
			out = append(out, "")
			out = append(out, m.errLines("   ✗ ", wz.startErr, w)...)
		}
	case stepRun, stepResult:
		out = append(out, m.jobView(wz.job, w)...)
		if wz.step == stepResult {
			out = append(out, m.vsOfferLines(w)...)
		}
	case stepVSPlan, stepVSRun, stepVSDone:
		out = append(out, m.vsView(w, h)...)
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

func lastIndexFunc[T any](s []T, f func(T) bool) int {
	for i := len(s) - 1; i >= 0; i-- {
		if f(s[i]) {
			return i
		}
	}
	return -1
}

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

var jobIDRe = regexp.MustCompile(`^job (\S+): (.*)$`)
var progressRe = regexp.MustCompile(`\((\d+) of (\d+) bytes\)`)

// onJobEvent follows jobs from the event stream, also those started
// before the console: their progress events name them.
func (m *Model) onJobEvent(e writer.Event) tea.Cmd {
	if e.Kind != api.EventJob && e.Kind != api.EventProgress {
		return nil
	}
	sm := jobIDRe.FindStringSubmatch(e.Message)
	if sm == nil {
		return nil
	}
	id, rest := sm[1], sm[2]
	jv := m.jobs[id]
	if jv == nil {
		jv = &jobView{job: api.Job{ID: id, State: api.JobRunning, Started: e.Time}}
		m.jobs[id] = jv
	}
	if !jv.polled {
		// Without the agent (a replay) the events are all there is.
		switch {
		case e.Kind == api.EventJob && rest == "done":
			jv.job.State, jv.job.Finished, jv.job.DoneBytes = api.JobDone, e.Time, jv.job.TotalBytes
		case e.Kind == api.EventJob && strings.HasPrefix(rest, "failed: "):
			jv.job.State, jv.job.Error, jv.job.Finished = api.JobFailed, strings.TrimPrefix(rest, "failed: "), e.Time
		case e.Kind == api.EventJob:
			jv.job.Mode, jv.job.Point = jobStartText(rest)
		}
		if pm := progressRe.FindStringSubmatch(rest); pm != nil {
			done, _ := strconv.ParseInt(pm[1], 10, 64)
			total, _ := strconv.ParseInt(pm[2], 10, 64)
			jv.job.DoneBytes, jv.job.TotalBytes = done, total
			if e.Pair != "" && !slices.Contains(jv.job.Pairs, e.Pair) {
				jv.job.Pairs = append(jv.job.Pairs, e.Pair)
			}
		}
		jv.sample(e.Time)
	}
	if e.Kind == api.EventProgress {
		jv.lastNote = rest
	}
	m.jobSettled(id)
	if m.o.Actions == nil {
		return nil
	}
	if e.Kind == api.EventJob || !jv.polled {
		return tea.Batch(m.pollJob(id), m.jobTick())
	}
	return m.jobTick()
}

// jobStartText reads "rollback of p1,p2 to latest-tag started".
func jobStartText(s string) (mode, point string) {
	f := strings.Fields(s)
	if len(f) >= 5 && f[1] == "of" && f[3] == "to" {
		return f[0], f[4]
	}
	return "", ""
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
	return m.jobTick()
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
