package tui

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// startFlow runs the console in a real tea.Program fed by the replay, and
// waits until the pairs are on screen.
func startFlow(t *testing.T, fa *fakeActions, o Options) *teatest.TestModel {
	t.Helper()
	o.Collector, o.Now, o.NoColor = fxReplay(t), fxClock, true
	if fa != nil {
		fa.bind(t)
		o.Actions = fa
	}
	tm := teatest.NewTestModel(t, New(t.Context(), o), teatest.WithInitialTermSize(100, 30),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("p5")) },
		teatest.WithDuration(waitLong))
	return tm
}

// waitAnswer waits until the readiness check shows the agent's answer:
// until then enter does not go on.
func waitAnswer(t *testing.T, tm *teatest.TestModel) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte(" UTC, sequence ")) },
		teatest.WithDuration(waitLong))
}

// pressUntil presses key until want shows: for a key the screen may
// refuse for a moment (enter at the check before the agent's answer),
// where the answer itself may not be drawn again (the renderer sends only
// what changed, and going back and forth leaves the line as it was).
func pressUntil(t *testing.T, tm *teatest.TestModel, key, want string) {
	t.Helper()
	var seen []byte
	buf := make([]byte, 4096)
	out := tm.Output()
	for range 10 {
		send(tm, key)
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			n, _ := out.Read(buf)
			seen = append(seen, buf[:n]...)
			if bytes.Contains(seen, []byte(want)) {
				return
			}
			if n == 0 {
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
	t.Fatalf("%q never showed after pressing %s; last output:\n%s", want, key, seen[max(len(seen)-2000, 0):])
}

func send(tm *teatest.TestModel, keys ...string) {
	for _, k := range keys {
		tm.Send(keyMsg(k))
	}
}

func final(t *testing.T, tm *teatest.TestModel) *Model {
	t.Helper()
	send(tm, "q")
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*Model)
}

// eventually polls cond, for calls that land from a command's goroutine.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 200 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFlowNavigation(t *testing.T) {
	tm := startFlow(t, &fakeActions{}, Options{})
	send(tm, "j", "j", "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Pair p3")) }, teatest.WithDuration(waitLong))
	send(tm, "esc", "L")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("follow on")) }, teatest.WithDuration(waitLong))
	send(tm, "f1")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Keys on this screen")) }, teatest.WithDuration(waitLong))
	send(tm, "esc", "D")
	m := final(t, tm)
	if m.screen != screenDashboard || m.help || m.dash.sel != "p3" {
		t.Errorf("screen %d help %v selected %q, want the dashboard on p3", m.screen, m.help, m.dash.sel)
	}
}

func TestFlowFilterAndSort(t *testing.T) {
	tm := startFlow(t, &fakeActions{}, Options{})
	send(tm, "/")
	tm.Type("error")
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("1 of 5 pairs")) }, teatest.WithDuration(waitLong))
	send(tm, "esc") // clears the filter
	send(tm, "s", "s", "s")
	m := final(t, tm)
	if m.dash.filter.Value() != "" || len(m.dash.rows) != 5 {
		t.Fatalf("filter %q, %d rows: esc should have cleared it", m.dash.filter.Value(), len(m.dash.rows))
	}
	var order []string
	for _, r := range m.dash.rows {
		order = append(order, m.status.Pairs[r].ID)
	}
	if want := []string{"p5", "p3", "p2", "p1", "p4"}; !slices.Equal(order, want) {
		t.Errorf("sorted by %s: %v, want %v", sortNames[m.dash.sortBy], order, want)
	}
	if s := ansi.Strip(m.render()); !strings.Contains(s, "sort: RPO ↓") {
		t.Errorf("the sort is not named on screen:\n%s", s)
	}
}

func TestFlowTagAndPaste(t *testing.T) {
	fa := &fakeActions{}
	tm := startFlow(t, fa, Options{})
	send(tm, "enter", "t", "enter") // the default name
	eventually(t, "the first tag", func() bool { return len(fa.snapshot().tags) == 1 })
	send(tm, "t", "ctrl+u")
	tm.Send(tea.PasteMsg{Content: "before-upgrade\n"})
	send(tm, "enter")
	eventually(t, "the pasted tag", func() bool { return len(fa.snapshot().tags) == 2 })
	m := final(t, tm)
	got := fa.snapshot().tags
	if got[0].Name != "manual-20261126-100530" || !slices.Equal(got[0].Pairs, []string{"p1"}) {
		t.Errorf("first tag %+v, want manual-20261126-100530 on p1", got[0])
	}
	if got[1].Name != "before-upgrade" {
		t.Errorf("pasted tag name %q, want before-upgrade", got[1].Name)
	}
	if s := ansi.Strip(m.noteView()); !strings.Contains(s, "tagged p1 as before-upgrade") {
		t.Errorf("footer %q does not say the tag was made", s)
	}
}

func TestFlowActionErrorInFooter(t *testing.T) {
	fa := &fakeActions{fail: errors.New("pair \"p1\": conflict: the pair has ended")}
	tm := startFlow(t, fa, Options{})
	send(tm, "enter", "p")
	eventually(t, "the pause", func() bool { return len(fa.snapshot().pauses) == 1 })
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("the pair has ended")) }, teatest.WithDuration(waitLong))
	m := final(t, tm)
	if s := ansi.Strip(m.noteView()); !strings.Contains(s, "✗ pause p1: pair \"p1\": conflict: the pair has ended (0s ago)") {
		t.Errorf("footer %q does not carry the error with its age", s)
	}
}

func TestFlowPauseResume(t *testing.T) {
	fa := &fakeActions{}
	tm := startFlow(t, fa, Options{})
	send(tm, "enter", "p", "esc", "j", "j", "enter", "p") // p1 is OK: pause; p3 is paused: resume
	eventually(t, "pause and resume", func() bool {
		s := fa.snapshot()
		return len(s.pauses) == 1 && len(s.resumes) == 1
	})
	final(t, tm)
	s := fa.snapshot()
	if s.pauses[0] != "p1" || s.resumes[0] != "p3" {
		t.Errorf("paused %v resumed %v, want p1 and p3", s.pauses, s.resumes)
	}
}

func TestFlowRecoverRollback(t *testing.T) {
	fa := &fakeActions{}
	tm := startFlow(t, fa, Options{})
	// p1's detail, the wizard, pairs (p1), point (latest tag), mode
	// (down to rollback), readiness, then the typed confirmation: wrong
	// first.
	send(tm, "enter", "r", "enter", "enter", "j", "enter")
	waitAnswer(t, tm)
	send(tm, "enter")
	tm.Type("p2")
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("type p1 exactly")) }, teatest.WithDuration(waitLong))
	if n := len(fa.snapshot().recs); n != 0 {
		t.Fatalf("a wrong confirmation started %d recoveries", n)
	}
	send(tm, "ctrl+u")
	tm.Type("p1")
	send(tm, "enter")
	eventually(t, "the recovery", func() bool { return len(fa.snapshot().recs) == 1 })
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Job j1 running")) }, teatest.WithDuration(waitLong))
	fa.mu.Lock()
	fa.job = finishedJob(fa.recs[0])
	fa.mu.Unlock()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Job j1 done")) },
		teatest.WithDuration(waitLong))
	m := final(t, tm)
	req := fa.snapshot().recs[0]
	// "Latest tag" is pinned to the tag the check showed: what was
	// confirmed is what is recovered, though a newer tag comes meanwhile.
	if req.Mode != api.ModeRollback || req.Point != "tag:crash-1004" || !slices.Equal(req.Pairs, []string{"p1"}) || req.Dest != "" {
		t.Errorf("recover request %+v, want a rollback of p1 to tag:crash-1004, its latest tag", req)
	}
	if m.wiz.step != stepResult {
		t.Errorf("wizard at step %d, want the result", m.wiz.step)
	}
}

func TestFlowRecoverExportPastedPath(t *testing.T) {
	fa := &fakeActions{}
	tm := startFlow(t, fa, Options{})
	dest := t.TempDir() + "/p2.img"
	// Dashboard wizard: the selected pair (p1) chosen; p2 instead.
	send(tm, "r", "space", "j", "space", "enter")
	send(tm, "j", "j", "j", "enter") // a tag from the list
	send(tm, "j", "enter")           // the second newest tag p2 has
	send(tm, "enter", "ctrl+u")      // export, the default; clear the default path
	tm.Send(tea.PasteMsg{Content: dest + "\r\n"})
	send(tm, "enter")
	waitAnswer(t, tm)
	send(tm, "enter", "enter") // confirm, start
	eventually(t, "the export", func() bool { return len(fa.snapshot().recs) == 1 })
	final(t, tm)
	req := fa.snapshot().recs[0]
	want := api.RecoverRequest{Point: "tag:before-patch", Mode: api.ModeExport, Dest: dest, Pairs: []string{"p2"}}
	if req.Point != want.Point || req.Mode != want.Mode || req.Dest != want.Dest || !slices.Equal(req.Pairs, want.Pairs) {
		t.Errorf("recover request %+v, want %+v", req, want)
	}
}

func TestFlowReadOnly(t *testing.T) {
	fa := &fakeActions{}
	tm := startFlow(t, fa, Options{ReadOnly: true, ReadOnlyReason: "not root"})
	send(tm, "enter", "t", "p", "r")
	m := final(t, tm)
	s := fa.snapshot()
	if len(s.tags)+len(s.pauses)+len(s.resumes)+len(s.recs) != 0 || m.screen != screenDetail {
		t.Errorf("read-only console acted: tags %v pauses %v resumes %v recoveries %v, screen %d", s.tags, s.pauses, s.resumes, s.recs, m.screen)
	}
	screen := ansi.Strip(m.render())
	footer := ansi.Strip(m.keysView())
	for _, gone := range []string{"t tag now", "pause/resume", "recover"} {
		if strings.Contains(footer, gone) {
			t.Errorf("read-only footer still offers %q: %q", gone, footer)
		}
	}
	// The last key refused says why, on the note line.
	if note := ansi.Strip(m.noteView()); !strings.Contains(note, "✗ read-only (not root): \"recover\" would change something") {
		t.Errorf("the refused r does not say why: %q", note)
	}
	if !strings.Contains(screen, "read-only: not root") {
		t.Errorf("read-only console does not say why:\n%s", screen)
	}
}

func TestFlowQuit(t *testing.T) {
	tm := startFlow(t, nil, Options{})
	send(tm, "f10")
	tm.WaitFinished(t, teatest.WithFinalTimeout(5*time.Second))
	out, err := io.ReadAll(tm.FinalOutput(t))
	if err != nil {
		t.Fatal(err)
	}
	// The alt screen is left on the way out.
	if !bytes.Contains(out, []byte("\x1b[?1049l")) {
		t.Errorf("the console did not leave the alternate screen: %q", out[max(len(out)-200, 0):])
	}
}

// t on the dashboard tags every pair shown (the filter narrows them) with
// one request: one tag id, a point the pairs share.
func TestFlowTagAllShown(t *testing.T) {
	fa := &fakeActions{}
	tm := startFlow(t, fa, Options{})
	send(tm, "t", "ctrl+u")
	tm.Send(tea.PasteMsg{Content: "before-patch\n"})
	send(tm, "enter")
	eventually(t, "the group tag", func() bool { return len(fa.snapshot().tags) == 1 })
	send(tm, "/", "p2", "enter", "t", "enter")
	eventually(t, "the filtered tag", func() bool { return len(fa.snapshot().tags) == 2 })
	m := final(t, tm)
	got := fa.snapshot().tags
	all := []string{}
	for _, p := range m.status.Pairs {
		all = append(all, p.ID)
	}
	if got[0].Name != "before-patch" || len(got[0].Pairs) != len(all) || len(all) < 2 {
		t.Errorf("group tag %+v, want before-patch on every pair %v", got[0], all)
	}
	if !slices.Equal(got[1].Pairs, []string{"p2"}) || got[1].Name != "manual-20261126-100530" {
		t.Errorf("filtered tag %+v, want the default name on p2 alone", got[1])
	}
	if s := ansi.Strip(m.noteView()); !strings.Contains(s, "tagged p2 as manual-20261126-100530") {
		t.Errorf("footer %q does not say the tag was made", s)
	}
}
