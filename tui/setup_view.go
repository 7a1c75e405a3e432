package tui

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/aymanbagabas/go-udiff"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/setup"
)

// A step's or check's state, always as a symbol and a word.
type suMark int

const (
	markTodo suMark = iota
	markBusy
	markOK
	markWarn
	markFail
	markSkip
)

func (m *SetupModel) markStyle(k suMark, s string) string {
	switch k {
	case markOK:
		return m.st.OK.Render(s)
	case markWarn:
		return m.st.Warn.Render(s)
	case markFail:
		return m.st.Err.Render(s)
	case markSkip, markTodo:
		return m.st.Dim.Render(s)
	}
	return s
}

func statusMark(s setup.Status) suMark {
	switch s {
	case setup.Pass:
		return markOK
	case setup.Warn:
		return markWarn
	case setup.Fail:
		return markFail
	}
	return markSkip
}

// statusCell is a check's status, six cells wide.
func statusCell(s setup.Status) string {
	switch s {
	case setup.Pass:
		return "✓ ok  "
	case setup.Warn:
		return "! WARN"
	case setup.Fail:
		return "✗ FAIL"
	}
	return "– skip"
}

// checksStatus sums up checks; package fails the install will fix count
// as "to install".
func (m *SetupModel) checksStatus(cs []setup.Check, installs bool) (suMark, string) {
	fail, warn, inst := 0, 0, 0
	for _, c := range cs {
		switch {
		case c.Status == setup.Fail && installs && strings.HasPrefix(c.ID, "packages.") && !strings.HasPrefix(c.ID, "packages.module-"):
			inst++
		case c.Status == setup.Fail:
			fail++
		case c.Status == setup.Warn:
			warn++
		}
	}
	switch {
	case fail > 0:
		return markFail, fmt.Sprintf("✗ %d failed", fail)
	case inst > 0:
		return markWarn, fmt.Sprintf("! %d to install", inst)
	case warn > 0:
		return markWarn, fmt.Sprintf("! %d warning%s", warn, plural(warn))
	}
	return markOK, "✓ ok"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// stepStatus is a step's state for the step list.
func (m *SetupModel) stepStatus(s suStep) (suMark, string) {
	if m.skipped(s) {
		return markSkip, "– not for a " + strings.Split(roleName(m.a.Role), " ")[0] + " server"
	}
	if j := m.job; j != nil && j.step == s && j.running {
		return markBusy, "… running"
	}
	switch s {
	case suRole:
		return markOK, "✓ " + roleName(m.a.Role)
	case suPrereq, suDisks:
		if m.checking[s] {
			return markBusy, "… checking"
		}
		if e := m.checkErr[s]; e != "" {
			return markFail, "✗ error"
		}
		cs, ok := m.checks[s]
		if !ok {
			return markTodo, "· not checked"
		}
		return m.checksStatus(cs, s == suPrereq && m.a.Prerequisites.InstallPackages)
	case suCustom:
		if m.customErr != "" {
			return markFail, "✗ error"
		}
		if m.changes == nil {
			return markTodo, "· not looked at"
		}
		if len(m.preview) > 0 {
			if m.a.CustomChanges.Apply {
				return markWarn, "! at install"
			}
			return markFail, "✗ not applied"
		}
		if m.reboot {
			return markWarn, "! reboot needed"
		}
		return markOK, "✓ applied"
	case suCS:
		if m.registered() {
			return markOK, "✓ registered"
		}
		return markWarn, "! not registered"
	case suVSphere:
		switch {
		case m.vsSkipped:
			return markSkip, "– skipped"
		case m.vsRunning:
			return markBusy, "… checking"
		case m.vsErr != "":
			return markFail, "✗ error"
		case m.vsChecks != nil:
			return m.checksStatus(m.vsChecks, false)
		}
		return markSkip, "– optional"
	case suSummary:
		switch {
		case m.installed && m.dry():
			return markOK, "✓ dry run shown"
		case m.installed:
			return markOK, "✓ installed"
		case m.job != nil && m.job.kind == "install" && m.job.err != nil:
			return markFail, "✗ failed"
		case m.review != nil && len(m.review.refusals) > 0:
			return markFail, "✗ would stop"
		case m.review != nil:
			return markTodo, "· ready to apply"
		}
		return markTodo, "· review"
	}
	return markTodo, ""
}

func (m *SetupModel) render() string {
	if m.w < MinWidth || m.h < MinHeight {
		return cut(fmt.Sprintf("terminal too small: need %dx%d, have %dx%d; resize it, or q to quit",
			MinWidth, MinHeight, m.w, m.h), m.w)
	}
	bodyH := m.h - 4
	var body []string
	if m.help {
		body = m.helpLines(m.w)
		m.helpOff = min(m.helpOff, max(len(body)-bodyH, 0))
		body = body[m.helpOff:]
		if len(body) > bodyH {
			body = append(body[:bodyH-1:bodyH-1], m.st.Dim.Render(fmt.Sprintf("   ↓ %d more lines (↑↓ scroll)", len(body)-bodyH+1)))
		}
	} else {
		lw := 22
		if m.w >= 120 {
			lw = 26
		}
		rw := m.w - lw - 3
		left := m.stepList(lw)
		right := m.pane(rw, bodyH)
		for i := range bodyH {
			l, r := "", ""
			if i < len(left) {
				l = left[i]
			}
			if i < len(right) {
				r = right[i]
			}
			body = append(body, fit(l, lw)+" "+m.st.Dim.Render("│")+" "+cut(r, rw))
		}
	}
	for len(body) < bodyH {
		body = append(body, "")
	}
	body = body[:bodyH]

	var b strings.Builder
	left := " mtconsole setup · " + orDefault(m.o.Host, "this host") + " · " + roleName(m.a.Role)
	right := ""
	if m.o.Root != "/" {
		right = "root " + m.o.Root + " "
	}
	if ro := m.readOnly(); ro != "" {
		if right == "" {
			right = "read-only: " + ro + " "
		} else {
			right = "read-only: " + ro + " · " + right
		}
	}
	if m.dry() {
		right = "DRY RUN · " + right
		if m.o.Root == "/" {
			right += " "
		}
	}
	right = cut(right, m.w/2)
	b.WriteString(m.st.Header.Render(fit(cut(left, m.w-ansi.StringWidth(right)), m.w-ansi.StringWidth(right))) + m.st.Warn.Render(right))
	b.WriteByte('\n')
	title := fmt.Sprintf(" Step %d of %d · %s", m.step+1, suSteps, suNames[m.step])
	if m.help {
		title += " › Help"
	}
	ans := "answers: defaults "
	if m.o.AnswersFrom != "" {
		ans = "answers: " + m.o.AnswersFrom + " "
	}
	ans = cut(ans, m.w/2)
	b.WriteString(m.st.Title.Render(fit(title, m.w-ansi.StringWidth(ans))) + m.st.Dim.Render(ans))
	b.WriteByte('\n')
	for _, l := range body {
		b.WriteString(cut(l, m.w))
		b.WriteByte('\n')
	}
	b.WriteString(m.footer())
	b.WriteByte('\n')
	b.WriteString(m.noteLine())
	return b.String()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func (m *SetupModel) stepList(lw int) []string {
	var out []string
	for s := range suSteps {
		name := suNames[s]
		if lw < 26 && s == suCS {
			name = "Config server"
		}
		line := fmt.Sprintf("  %d %s", s+1, name)
		if s == m.step {
			line = m.st.Selected.Render(fit(fmt.Sprintf("› %d %s", s+1, name), lw))
		}
		k, word := m.stepStatus(s)
		out = append(out, line, "    "+m.markStyle(k, cut(word, lw-4)))
	}
	return out
}

func (m *SetupModel) noteLine() string {
	switch {
	case m.note != "" && m.noteErr:
		return m.st.Err.Render(cut(" ✗ "+m.note, m.w))
	case m.note != "":
		return cut(" "+m.note, m.w)
	}
	return ""
}

// pane is the right side: the current step.
func (m *SetupModel) pane(w, h int) []string {
	if m.skipped(m.step) {
		return []string{m.st.Title.Render(suNames[m.step]), "",
			"Not needed for a process server: it only sends this host's disks.",
			"The master target's disks and custom changes are checked on the",
			"master target. enter goes on."}
	}
	switch m.step {
	case suRole:
		return m.rolePane(w)
	case suPrereq:
		return m.checkPane(suPrereq, "Operating system and packages", w, h)
	case suDisks:
		return m.checkPane(suDisks, "Disks", w, h)
	case suCustom:
		return m.customPane(w, h)
	case suCS:
		return m.csPane(w)
	case suVSphere:
		return m.vspherePane(w, h)
	case suSummary:
		return m.summaryPane(w, h)
	}
	return nil
}

func (m *SetupModel) rolePane(w int) []string {
	st := m.st
	radio := func(r setup.Role, n, name, what string) string {
		mark, dot := "  ", "( )"
		if m.a.Role == r {
			mark, dot = st.Key.Render("› "), "(•)"
		}
		line := fmt.Sprintf("%s %s  %-15s", dot, n, name)
		if m.a.Role == r {
			line = st.Selected.Render(line)
		}
		return mark + line + " " + what
	}
	bin := filepath.Join(m.a.InstallDir, "bin", "mtconsole")
	out := []string{st.Title.Render("Role of this host"), "",
		radio(setup.RoleMT, "1", "Master target", "receive and retain"),
		radio(setup.RolePS, "2", "Process server", "send this host's disks"),
		""}
	kv := func(k, v string) {
		out = append(out, hang(fmt.Sprintf("%-18s", k), strings.Repeat(" ", 18), v, w)...)
	}
	kv("Install directory", m.a.InstallDir+" (the binary: "+bin+")")
	from := "the defaults (mtconsole setup --answers FILE pre-fills every step)"
	if m.o.AnswersFrom != "" {
		from = m.o.AnswersFrom
	}
	kv("Answers", from)
	kv("State file", StateFile+m.rootNote()+": a dropped session reopens on the step it was on")
	out = append(out, "")
	out = append(out, wrap("", "Nothing changes on this host until the summary's apply; the checks only look.", w)...)
	return out
}

// checkPane is a step of checks: the list, the chosen check's detail and
// fix, and the output of its fix-it action.
func (m *SetupModel) checkPane(s suStep, title string, w, h int) []string {
	st := m.st
	out := []string{st.Title.Render(title)}
	cs := m.checks[s]
	switch {
	case m.checking[s]:
		return append(out, "", "… checking")
	case m.checkErr[s] != "":
		return append(out, "", st.Err.Render("✗ the checks could not run:"), "", strings.Join(wrap("  ", m.checkErr[s], w), "\n"), "", "r tries again")
	case cs == nil:
		return append(out, "", "· not checked yet")
	}
	n := setup.Count(cs)
	out = append(out, fmt.Sprintf("%d ok · %d warning%s · %d failed · %d skipped", n[setup.Pass], n[setup.Warn], plural(n[setup.Warn]), n[setup.Fail], n[setup.Skip]))

	var extra []string
	if s == suPrereq {
		if miss := m.missingPackages(); len(miss) > 0 {
			extra = append(extra, hang("Missing packages: ", "  ", strings.Join(miss, " ")+" · f installs them now", w)...)
		}
		extra = append(extra, "Install missing packages when applying: "+units.YesNo(m.a.Prerequisites.InstallPackages)+" (i)")
	}
	if s == suDisks {
		if m.editing {
			extra = append(extra, m.input.View())
		} else {
			extra = append(extra, hang("Retention directory: ", "  ", m.a.Disks.Retention+" (e edits)", w)...)
		}
		size := "no size check"
		if m.a.Disks.RetentionSizeGB > 0 {
			size = fmt.Sprintf("%d GB", m.a.Disks.RetentionSizeGB)
		}
		targets := "none yet (chosen when protecting)"
		if len(m.a.Disks.Targets) > 0 {
			targets = strings.Join(m.a.Disks.Targets, ", ")
		}
		extra = append(extra, cut("Room for the policy: "+size+" · targets: "+targets, w))
	}

	var lower []string
	if j := m.job; j != nil && j.step == s {
		lower = m.jobPane(j, w, max(h/2, 8))
	} else if sel := m.sel[s]; sel < len(cs) {
		c := cs[sel]
		lower = append(lower, st.Dim.Render(fit("── "+c.Title+" ", w)))
		lower = append(lower, hang(statusCell(c.Status)+"  ", "        ", c.Detail, w)...)
		if c.Fix != "" && c.Status != setup.Pass {
			lower = append(lower, hang("fix:    ", "        ", c.Fix, w)...)
		}
	}
	listH := h - len(out) - 1 - len(lower) - len(extra) - 1
	listH = max(listH, 3)
	tw := min(30, w/3)
	rows := make([]string, len(cs))
	for i, c := range cs {
		rest := "  " + fit(c.Title, tw) + "  " + c.Detail
		if i == m.sel[s] {
			rows[i] = st.Key.Render("›") + st.Selected.Render(fit(cut(statusCell(c.Status)+rest, w-1), w-1))
		} else {
			rows[i] = " " + m.markStyle(statusMark(c.Status), statusCell(c.Status)) + cut(rest, w-7)
		}
	}
	out = append(out, "")
	out = append(out, m.window(s, rows, listH)...)
	out = append(out, "")
	out = append(out, extra...)
	out = append(out, lower...)
	return out
}

// window is the part of rows that fits in h, keeping the selection in
// sight.
func (m *SetupModel) window(s suStep, rows []string, h int) []string {
	if len(rows) <= h {
		return rows
	}
	off := m.off[s]
	sel := m.sel[s]
	if sel < off+1 {
		off = max(sel-1, 0)
	}
	if sel > off+h-2 {
		off = sel - h + 2
	}
	off = min(max(off, 0), len(rows)-h)
	m.off[s] = off
	out := append([]string{}, rows[off:off+h]...)
	if off > 0 {
		out[0] = m.st.Dim.Render(fmt.Sprintf("  ↑ %d more", off))
	}
	if off+h < len(rows) {
		out[h-1] = m.st.Dim.Render(fmt.Sprintf("  ↓ %d more", len(rows)-off-h))
	}
	return out
}

// jobPane is an action's live output: its last lines that fit.
func (m *SetupModel) jobPane(j *suJob, w, h int) []string {
	state := "running · x cancels"
	switch {
	case j.running:
	case j.err != nil:
		state = "✗ failed"
	default:
		state = "✓ done"
	}
	head := "── " + j.title + " · " + state + " "
	out := []string{m.st.Bold.Render(fit(cut(head, w), w))}
	var lines []string
	for _, l := range j.lines {
		lines = append(lines, hang("", "    ", l, w)...)
	}
	if j.err != nil {
		lines = append(lines, wrap("", "✗ "+j.err.Error(), w)...)
	}
	if n := h - 1; len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return append(out, lines...)
}

func (m *SetupModel) customPane(w, h int) []string {
	st := m.st
	out := []string{st.Title.Render("Custom changes (what ApplyCustomChanges.sh did)")}
	if m.customErr != "" {
		return append(append(out, ""), wrap("", "✗ "+m.customErr, w)...)
	}
	if m.changes == nil {
		return append(out, "", "… looking")
	}
	switch m.confirm {
	case "custom-apply":
		return m.customReview(w, h)
	case "custom-revert":
		return append(out, "", st.Bold.Render("Revert the custom changes?"), "",
			strings.Join(wrap("", "Every file the custom changes touched is put back byte for byte as it was before the first apply, from the backups in "+setup.StateDir+m.rootNote()+". A reboot is needed for it to take effect; the install refuses a master target without the changes (exit 175).", w), "\n"),
			"", "y reverts · n cancels")
	}
	out = append(out, wrap("", "They keep multipath and LVM away from replicated target disks. Applied once, they take effect at the next boot.", w)...)
	out = append(out, "")
	for i, c := range m.changes {
		word, k := "✗ no ", markFail
		switch {
		case !c.Applicable:
			word, k = "– n/a", markSkip
		case c.Applied:
			word, k = "✓ yes", markOK
		}
		row := fit(c.ID, 11) + " " + c.Title
		if i == m.sel[suCustom] {
			out = append(out, st.Key.Render("›")+st.Selected.Render(fit(cut(word+"  "+row, w-1), w-1)))
		} else {
			out = append(out, " "+m.markStyle(k, word)+"  "+cut(row, w-8))
		}
	}
	out = append(out, "")
	if sel := m.sel[suCustom]; sel < len(m.changes) {
		c := m.changes[sel]
		if len(c.Files) > 0 {
			out = append(out, hang("files:  ", "        ", strings.Join(c.Files, ", "), w)...)
		}
		out = append(out, hang("state:  ", "        ", c.Detail, w)...)
		out = append(out, "reboot: "+map[bool]string{true: "needed after applying", false: "not needed"}[c.NeedsReboot])
		out = append(out, "")
	}
	if j := m.job; j != nil && j.step == suCustom {
		out = append(out, m.jobPane(j, w, max(h-len(out)-2, 4))...)
		out = append(out, "")
	}
	out = append(out, "Apply with the install: "+units.YesNo(m.a.CustomChanges.Apply)+" (t) · a applies now, after a review")
	if m.reboot {
		out = append(out, st.Warn.Render("! REBOOT IS REQUIRED FOR CUSTOM CHANGES TO TAKE EFFECT"))
	}
	return out
}

// customReview lists the exact changes before they are applied: each
// file, and its lines removed and added.
func (m *SetupModel) customReview(w, h int) []string {
	st := m.st
	head := []string{st.Title.Render("Review: apply the custom changes"),
		cut("Backups of every file go to "+setup.StateDir+" first.", w)}
	var body []string
	for _, fc := range m.preview {
		verb := "write"
		switch {
		case fc.Link != "":
			verb = "link → " + fc.Link
		case fc.Old == nil:
			verb = "create"
		}
		body = append(body, st.Bold.Render(cut(fmt.Sprintf("%s %s", verb, fc.Path), w)), st.Dim.Render(cut("  "+fc.Title, w)))
		if fc.Link == "" {
			for _, l := range lineDiff(fc.Old, fc.New) {
				body = append(body, wrapRaw("  ", "      ", l, w)...)
			}
		}
		body = append(body, "")
	}
	room := h - len(head) - 2
	off := min(m.off[suCustom], max(len(body)-room, 0))
	m.off[suCustom] = off
	shown := body[off:]
	if len(shown) > room {
		shown = shown[:room]
	}
	out := append(head, "")
	out = append(out, shown...)
	for len(out) < h-1 {
		out = append(out, "")
	}
	more := ""
	if off+room < len(body) {
		more = fmt.Sprintf(" (↓ %d more lines)", len(body)-off-room)
	}
	return append(out, st.Bold.Render(cut("y applies these changes · n cancels"+more, w)))
}

// lineDiff is the change from old to new as removed (-) and added (+)
// lines, hunk by hunk with a line of context each side; a hunk that starts
// on a context line is headed by its line number. A missing final newline
// is not a change worth a line of its own.
func lineDiff(old, new []byte) []string {
	text := func(b []byte) string {
		if len(b) > 0 && b[len(b)-1] != '\n' {
			return string(b) + "\n"
		}
		return string(b)
	}
	a, b := text(old), text(new)
	d, err := udiff.ToUnifiedDiff("old", "new", a, udiff.Lines(a, b), 1)
	if err != nil { // cannot happen: the edits are udiff's own
		return []string{"(no diff: " + err.Error() + ")"}
	}
	var out []string
	for _, h := range d.Hunks {
		if len(h.Lines) > 0 && h.Lines[0].Kind == udiff.Equal {
			out = append(out, fmt.Sprintf("@@ line %d", h.FromLine))
		}
		for _, l := range h.Lines {
			mark := "  "
			switch l.Kind {
			case udiff.Delete:
				mark = "- "
			case udiff.Insert:
				mark = "+ "
			}
			out = append(out, mark+strings.ReplaceAll(strings.TrimSuffix(l.Content, "\n"), "\t", "    "))
		}
	}
	return out
}

func (m *SetupModel) csPane(w int) []string {
	st := m.st
	out := []string{st.Title.Render("Configuration server"), ""}
	kv := func(k, v string) {
		out = append(out, hang(fmt.Sprintf("%-14s", k), strings.Repeat(" ", 14), v, w)...)
	}
	kv("Host config", hostconfigPathShown(m)+m.rootNote())
	server := "not set"
	if m.hc.CSHost != "" {
		proto := "https"
		if !m.hc.HTTPS {
			proto = "http"
		}
		server = fmt.Sprintf("%s (%s)", m.hc.CSAddr(), proto)
	}
	kv("Server", server)
	switch {
	case m.registered():
		kv("Registered", "✓ yes, host id "+m.hc.HostID)
	case m.hc.CSHost != "":
		kv("Registered", "! no: save Global in the host config screen to register")
	default:
		kv("Registered", "! no")
	}
	kv("Passphrase", map[bool]string{true: "stored (0600)", false: "none stored"}[m.hcStored])
	if m.hcErr != "" {
		out = append(out, wrap("", "✗ "+m.hcErr, w)...)
	}
	cs := m.a.ConfigServer
	ans := "no address"
	if cs.Address != "" {
		ans = fmt.Sprintf("%s:%d, https %s", cs.Address, cs.Port, units.YesNo(cs.HTTPS))
	}
	if cs.PassphraseFile != "" {
		ans += ", passphrase_file " + cs.PassphraseFile
	}
	kv("Answers", ans)
	out = append(out, "")
	out = append(out, wrap("", "Registering is not part of the install plan and can come after it. o opens the host config screen here (Global, Save: test, confirm the certificate, register, verify); q there comes back. Later: mtconsole hostconfig, or mtconsole register for scripts.", w)...)
	return out
}

func hostconfigPathShown(m *SetupModel) string {
	p := m.o.HostConfig.Config
	if m.o.Root != "/" {
		if rel, err := filepath.Rel(m.o.Root, p); err == nil && !strings.HasPrefix(rel, "..") {
			return "/" + rel
		}
	}
	return p
}

func (m *SetupModel) vspherePane(w, h int) []string {
	st := m.st
	out := []string{st.Title.Render("vSphere (optional)"), ""}
	para := func(s string) { out = append(out, wrap("", s, w)...) }
	if m.vsSkipped {
		para("Skipped. s takes it back. The install does not need vSphere; recovery to a failback VM does.")
		return out
	}
	if !m.vsReady() {
		if m.a.VSphere != nil {
			para("The answers name " + m.a.VSphere.Address + ", but this build cannot reach vSphere from the wizard.")
		} else {
			para("No vsphere section in the answers: nothing to check here.")
		}
		out = append(out, "")
		para("The master target's VM needs disk.EnableUUID=TRUE (stable SCSI ids), an LSI Logic controller, no snapshots and at most 60 disks. Check it with:")
		out = append(out, "")
		out = append(out, hang("  ", "      ", "mtconsole vsphere check --url https://VCENTER --user USER --password-file FILE", w)...)
		out = append(out, "")
		para("or add a vsphere: section (address, user, password_file) to the answers file and open the wizard with it. enter goes on; s marks the step skipped.")
		return out
	}
	out[0] = st.Title.Render("vSphere (optional): " + m.a.VSphere.Address)
	switch {
	case m.vsRunning:
		return append(out, "… connecting and checking")
	case m.vsErr != "":
		out = append(out, wrap("", "✗ "+m.vsErr, w)...)
		return append(out, "", "r tries again · s skips")
	}
	rows := make([]string, len(m.vsChecks))
	for i, c := range m.vsChecks {
		row := cut(statusCell(c.Status)+"  "+fit(c.Title, min(30, w/3))+"  "+c.Detail, w-1)
		if i == m.sel[suVSphere] {
			row = st.Key.Render("›") + st.Selected.Render(fit(row, w-1))
		} else {
			row = " " + row
		}
		rows[i] = row
	}
	var lower []string
	if sel := m.sel[suVSphere]; sel < len(m.vsChecks) {
		c := m.vsChecks[sel]
		lower = append(lower, "", st.Dim.Render(fit("── "+c.Title+" ", w)))
		lower = append(lower, hang(statusCell(c.Status)+"  ", "        ", c.Detail, w)...)
		if c.Fix != "" && c.Status != setup.Pass {
			lower = append(lower, hang("fix:    ", "        ", c.Fix, w)...)
		}
	}
	out = append(out, m.window(suVSphere, rows, max(h-len(out)-len(lower), 3))...)
	return append(out, lower...)
}

func (m *SetupModel) summaryPane(w, h int) []string {
	st := m.st
	out := []string{st.Title.Render("Summary: what the install changes")}
	r := m.review
	if r == nil {
		return append(out, "", "… working out the plan")
	}
	var lower []string
	hint := m.protectHint && m.confirm != "install"
	if j := m.job; j != nil && j.step == suSummary && !hint {
		lower = m.jobPane(j, w, max(h/2, 8))
	}
	if hint {
		for _, l := range protectHintLines() {
			lower = append(lower, "")
			lower = append(lower, hang("", "  ", l, w)...)
		}
	} else if m.confirm == "install" {
		q := fmt.Sprintf("Apply these %d changes to %s now?  y yes · n no", len(r.lines()), m.o.Root)
		if m.dry() {
			q = "Show what a real run would do, changing nothing?  y yes · n no"
		}
		lower = append(lower, "", st.Bold.Render(cut(q, w)))
	} else if lower == nil {
		if m.dry() {
			lower = append(lower, "", st.Warn.Render(cut("DRY RUN for the whole session: a shows what would happen, changes nothing", w)))
		} else {
			lower = append(lower, "", cut("a applies the plan after a last confirmation", w))
		}
	}
	var rows []string
	for _, l := range r.display() {
		switch {
		case strings.HasPrefix(l, "✗ "):
			for _, x := range hang("", "  ", l, w) {
				rows = append(rows, st.Err.Render(x))
			}
		case l == r.what:
			rows = append(rows, hang("", "  ", l, w)...)
		case len(l) > 7 && l[6] == ' ' && !strings.HasPrefix(l, "These"):
			// "kind   path (detail)": the kind column stays aligned
			rows = append(rows, hang(l[:7], "       ", l[7:], w)...)
		default:
			rows = append(rows, hang("", "  ", l, w)...)
		}
	}
	room := max(h-len(out)-len(lower)-1, 3)
	off := min(m.off[suSummary], max(len(rows)-room, 0))
	m.off[suSummary] = off
	shown := rows[off:]
	if len(shown) > room {
		shown = append(append([]string{}, shown[:room-1]...), st.Dim.Render(fmt.Sprintf("  ↓ %d more lines (↑↓ scroll)", len(shown)-room+1)))
	}
	out = append(out, "")
	out = append(out, shown...)
	for len(out) < h-len(lower) {
		out = append(out, "")
	}
	return append(out, lower...)
}

// wrapRaw breaks s at the width, keeping its spaces: a file's line as it
// is, indentation and all.
func wrapRaw(first, indent string, s string, w int) []string {
	line := first + s
	var out []string
	for ansi.StringWidth(line) > w && w > ansi.StringWidth(indent) {
		out = append(out, ansi.Cut(line, 0, w))
		line = indent + ansi.Cut(line, w, ansi.StringWidth(line))
	}
	return append(out, line)
}
