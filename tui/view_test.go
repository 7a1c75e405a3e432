package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/writer"
)

var sizes = []struct{ w, h int }{{80, 24}, {120, 40}}

// screenText is the screen as the admin reads it: ANSI stripped, each
// line checked against the width.
func screenText(t *testing.T, m *Model) string {
	t.Helper()
	s := ansi.Strip(m.View().Content)
	lines := strings.Split(s, "\n")
	if len(lines) != m.h {
		t.Errorf("%dx%d: %d lines", m.w, m.h, len(lines))
	}
	for i, l := range lines {
		if w := ansi.StringWidth(l); w > m.w {
			t.Errorf("%dx%d: line %d is %d cells wide: %q", m.w, m.h, i+1, w, l)
		}
	}
	return s
}

// goldenScreens draws a screen, set up by setup, at both sizes.
func goldenScreens(t *testing.T, o Options, setup func(m *Model)) {
	for _, sz := range sizes {
		t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
			m := newFx(t, sz.w, sz.h, o)
			if setup != nil {
				setup(m)
			}
			golden.RequireEqual(t, screenText(t, m))
		})
	}
}

func TestGoldenDashboard(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, nil)
}

func TestGoldenDashboardUnreachable(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) {
		later := fxNow.Add(40e9)
		m.o.Now = func() time.Time { return later }
		m.Update(AgentErrorMsg{Err: errAgentDown, At: fxNow.Add(5e9)})
		m.Update(AgentErrorMsg{Err: errAgentDown, At: later})
	})
}

func TestGoldenDashboardReadOnly(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}, ReadOnly: true, ReadOnlyReason: "not root"}, nil)
}

func TestGoldenDashboardFilteredSorted(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) {
		press(m, "s", "s", "s", "/")
		typeText(m, "diff")
		press(m, "enter")
	})
}

func TestGoldenDetail(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) { press(m, "enter") })
}

func TestGoldenDetailTagPrompt(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) { press(m, "enter", "t") })
}

func TestGoldenLogs(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) { press(m, "L") })
}

func TestGoldenLogsWarnOnly(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) { press(m, "L", "l", "l", "f") })
}

func TestGoldenHelp(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) { press(m, "enter", "?") })
}

func TestGoldenHelpReadOnly(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}, ReadOnly: true, ReadOnlyReason: "--readonly"},
		func(m *Model) { press(m, "enter", "f1") })
}

func TestGoldenTooSmall(t *testing.T) {
	m := newFx(t, 60, 20, Options{})
	golden.RequireEqual(t, ansi.Strip(m.View().Content))
}

// wizardTo walks the wizard for p1 to a step.
// answer runs cmd (a batch: each of its commands) and gives the console
// what it answers, as the program would. Only for commands that answer
// at once (look-ups), never a tick.
func answer(m *Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			answer(m, c)
		}
	case nil:
	default:
		m.Update(msg)
	}
}

func wizardTo(m *Model, step wizStep, export string) {
	press(m, "enter", "r") // p1's detail, then the wizard for p1
	if step == stepPairs {
		return
	}
	press(m, "enter")
	if step == stepPoint {
		return
	}
	if step == stepTag {
		press(m, "down", "down", "down", "enter")
		return
	}
	press(m, "enter")
	if step == stepMode {
		return
	}
	if export != "" {
		press(m, "enter", "ctrl+u") // Export, the default; the field comes filled with a default
		typeText(m, export)
	} else {
		press(m, "down") // Rollback
	}
	// The check asks the agent where the point lies: its answer
	// arrives before the admin reads on.
	answer(m, press(m, "enter"))
	if step == stepCheck {
		return
	}
	press(m, "enter")
}

func TestGoldenWizard(t *testing.T) {
	for _, tc := range []struct {
		name   string
		step   wizStep
		export string
		after  func(m *Model)
	}{
		{name: "Pairs", step: stepPairs, after: func(m *Model) { press(m, "a", "a", "down", "space") }},
		{name: "Point", step: stepPoint},
		{name: "Tag", step: stepTag},
		{name: "TimeField", step: stepPoint, after: func(m *Model) { press(m, "down", "down", "down", "down", "enter") }},
		{name: "Mode", step: stepMode},
		{name: "Check", step: stepCheck},
		{name: "CheckExportExists", step: stepCheck, export: "/"},
		{name: "ConfirmRollback", step: stepConfirm},
		{name: "ConfirmRollbackWrong", step: stepConfirm, after: func(m *Model) { typeText(m, "p2"); press(m, "enter") }},
		{name: "ConfirmExport", step: stepConfirm, export: "EXPORT"},
		{name: "ConfirmExportLong", step: stepConfirm, export: "/mtconsole-golden-p1-crash-1004-exported-before-the-upgrade-of-the-database-server.img"},
		{name: "CheckExportLongMissing", step: stepCheck, export: "/mtconsole-golden/images-of-this-machine-before-the-upgrade/p1-crash-1004.img"},
		{name: "Progress", step: stepConfirm, after: func(m *Model) {
			typeText(m, "p1")
			m.Update(press(m, "enter")())
			m.Update(jobMsg{id: "j1", job: api.Job{ID: "j1", Mode: "rollback", Point: "latest-tag", Pairs: []string{"p1"},
				State: api.JobRunning, DoneBytes: 16 << 30, TotalBytes: 64 << 30, Started: fxNow.Add(-60e9)}})
			m.jobs["j1"].firstAt, m.jobs["j1"].first = fxNow.Add(-40e9), 8<<30
			m.Update(EventMsg{Event: *ev(1e9, "p1", api.EventProgress, 0, "job j1: rollback p1 25.0% (17179869184 of 68719476736 bytes)"),
				Job: &api.JobEvent{ID: "j1", Kind: api.JobProgress, Pair: "p1", Done: 16 << 30, Total: 64 << 30}})
		}},
		{name: "CheckView", step: stepMode, after: func(m *Model) { press(m, "down", "down"); answer(m, press(m, "enter")) }},
		{name: "ConfirmView", step: stepMode, after: func(m *Model) {
			press(m, "down", "down")
			answer(m, press(m, "enter"))
			press(m, "enter")
		}},
		{name: "ResultView", step: stepMode, after: func(m *Model) {
			press(m, "down", "down")
			answer(m, press(m, "enter"))
			press(m, "enter")
			answer(m, press(m, "enter"))
		}},
		{name: "Result", step: stepConfirm, after: func(m *Model) {
			typeText(m, "p1")
			m.Update(press(m, "enter")())
			m.Update(jobMsg{id: "j1", job: finishedJob(api.RecoverRequest{Mode: "rollback", Point: "latest-tag", Pairs: []string{"p1"}})})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			export := tc.export
			if export == "EXPORT" {
				export = "/mtconsole-golden-p1.img" // parent exists, the file does not
			}
			goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) {
				wizardTo(m, tc.step, export)
				if tc.after != nil {
					tc.after(m)
				}
			})
		})
	}
}

// TestGoldenNoTempPaths keeps machine-specific paths out of the goldens.
func TestGoldenNoTempPaths(t *testing.T) {
	re := regexp.MustCompile(os.TempDir() + `/\S+`)
	_ = filepath.WalkDir("testdata", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(p)
		if re.Match(b) {
			t.Errorf("%s holds a temporary path", p)
		}
		return nil
	})
}

// TestFooterKeys: at 80 columns each screen's footer fits and shows its
// actions first; up and down are one entry.
func TestFooterKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string
		want []string
	}{
		{"dashboard", nil, []string{"enter detail", "r recover", "t tag all", "L logs", "/ filter", "s sort", "? help", "q quit"}},
		{"detail", []string{"enter"}, []string{"t tag now", "p pause/resume", "r recover", "L logs", "esc back", "? help", "q quit"}},
		{"logs", []string{"L"}, []string{"↑↓/jk scroll", "f follow", "/ filter", "l level", "esc back", "r recover", "? help", "q quit"}},
		{"wizard", []string{"r"}, []string{"↑↓/jk move", "space toggle", "a all/none", "enter next", "esc back", "? help", "q quit"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
			press(m, tc.keys...)
			footer := ansi.Strip(m.keysView())
			if w := ansi.StringWidth(footer); w > 80 {
				t.Errorf("footer is %d cells wide: %q", w, footer)
			}
			at := 0
			for _, k := range tc.want {
				i := strings.Index(footer[at:], k)
				if i < 0 {
					t.Errorf("footer %q lacks %q (or has it out of order)", footer, k)
					break
				}
				at += i + len(k)
			}
		})
	}
}

// TestLogsWholeMessages: at 80 columns a long message wraps onto
// continuation lines, and follow mode keeps the newest at the bottom.
func TestLogsWholeMessages(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	press(m, "L")
	long := "tag CRASH_1_0003 (CRASH) applied at sequence 123456 on every pair of the group, verified"
	for i := range 30 {
		m.Update(EventMsg{Event: *ev(-time.Duration(i+1)*time.Second, "p1", "tag", 0, fmt.Sprintf("%s #%d", long, i))})
	}
	s := screenText(t, m)
	if strings.Contains(s, "…") {
		t.Errorf("a message is cut:\n%s", s)
	}
	flat := strings.Join(strings.Fields(s), " ")
	if !strings.Contains(flat, long+" #29") {
		t.Errorf("the newest message is not whole on screen:\n%s", s)
	}
	lines := strings.Split(s, "\n")
	body := lines[:len(lines)-2]
	for strings.TrimSpace(body[len(body)-1]) == "" {
		body = body[:len(body)-1]
	}
	if last := body[len(body)-1]; !strings.Contains(last, "#29") || len(lines)-len(body) > 3 {
		t.Errorf("follow mode: the newest event's last line is %q, want it at the bottom:\n%s", last, s)
	}
}

// TestTimelineFromSnapshots: state and health changes that only the
// status tells of reach the detail's timeline, newest first.
func TestTimelineFromSnapshots(t *testing.T) {
	m := newFx(t, 120, 40, Options{Actions: &fakeActions{}})
	health, reason := writer.HealthOK, ""
	for i, state := range []string{"Queued", "Resync Step I", "Resync Step II", "Differential Sync"} {
		st := fxStatus(0)
		if i == 2 {
			health, reason = writer.HealthRPO, "RPO 2m05s exceeds the threshold of 30s"
		}
		st.Pairs[3].State, st.Pairs[3].Health, st.Pairs[3].Reason = state, health, reason
		m.Update(StatusMsg{Status: st, At: fxNow.Add(time.Duration(i+1) * time.Second)})
	}
	press(m, "j", "j", "j", "enter")
	s := screenText(t, m)
	want := []string{
		"Resync Step II → Differential Sync",
		"✓ OK → ▲ RPO breach: RPO 2m05s exceeds the threshold of 30s",
		"Resync Step I → Resync Step II",
		"Queued → Resync Step I",
		"Resync Step I → Queued",
	}
	at := strings.Index(s, "Timeline")
	if at < 0 {
		t.Fatalf("no timeline:\n%s", s)
	}
	for _, w := range want {
		i := strings.Index(s[at:], w)
		if i < 0 {
			t.Fatalf("timeline lacks %q (or has it out of order):\n%s", w, s)
		}
		at += i
	}
}

// TestDefaultExportDest: the export path offered is named after the pair
// and the point, beside a file target; a directory for several pairs.
func TestDefaultExportDest(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	dir := t.TempDir()
	target := filepath.Join(dir, "disk0.img")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	m.status.Pairs[0].Target = target // p1: a file-backed disk
	for _, tc := range []struct {
		pairs []string
		point string
		want  string
	}{
		{[]string{"p1"}, "latest-tag", filepath.Join(dir, "p1-latest-tag.img")},
		{[]string{"p1"}, "tag:CRASH_1_0005", filepath.Join(dir, "p1-CRASH_1_0005.img")},
		{[]string{"p1"}, "tag:before patch/2", filepath.Join(dir, "p1-before_patch_2.img")},
		{[]string{"p1"}, "time:2026-11-26T10:30:00Z", filepath.Join(dir, "p1-20261126T103000Z.img")},
		{[]string{"p2"}, "latest-time", "/var/lib/mtconsole/export/p2-latest-time.img"},
		{[]string{"p1", "p2"}, "tag:CRASH_1_0005", filepath.Join(dir, "export-CRASH_1_0005") + "/"},
		{[]string{"p2", "p3"}, "latest-app-consistent", "/var/lib/mtconsole/export/export-latest-app-consistent/"},
	} {
		if got := m.defaultDest(api.RecoverRequest{Pairs: tc.pairs, Point: tc.point}); got != tc.want {
			t.Errorf("%v %s: %q, want %q", tc.pairs, tc.point, got, tc.want)
		}
	}
	// The wizard fills it in; enter takes it; it follows a new point
	// until the admin writes their own.
	wizardTo(m, stepMode, "")
	press(m, "enter")
	if got := m.wiz.destIn.Value(); got != filepath.Join(dir, "p1-latest-tag.img") {
		t.Fatalf("export field holds %q", got)
	}
	press(m, "esc", "esc", "down", "enter", "enter") // back to the point: latest time; export
	if got := m.wiz.destIn.Value(); got != filepath.Join(dir, "p1-latest-time.img") {
		t.Errorf("after a new point the field holds %q", got)
	}
	press(m, "enter")
	if m.wiz.step != stepCheck || m.request().Dest != filepath.Join(dir, "p1-latest-time.img") {
		t.Errorf("step %d, dest %q: enter should take the default", m.wiz.step, m.request().Dest)
	}
	for _, c := range m.wiz.checks {
		if c.level == checkFail {
			t.Errorf("the default fails a check: %s", c.text)
		}
	}
}

// TestDetailTagsFollowTagEvents: a new tag of the pair shown fetches its
// tags again, so the table agrees with the count.
func TestDetailTagsFollowTagEvents(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	press(m, "enter")
	_, cmd := m.Update(EventMsg{Event: *ev(0, "p1", writer.EventTag, 0, "tag crash-1005 (CRASH) applied at sequence 1001")})
	var msgs []any
	var run func(c tea.Cmd)
	run = func(c tea.Cmd) {
		if c == nil {
			return
		}
		switch msg := c().(type) {
		case tea.BatchMsg:
			for _, c := range msg {
				run(c)
			}
		default:
			msgs = append(msgs, msg)
		}
	}
	run(cmd)
	if !slices.ContainsFunc(msgs, func(msg any) bool { tm, ok := msg.(TagsMsg); return ok && tm.Pair == "p1" }) {
		t.Errorf("a tag event of the pair shown fetched no tags: %v", msgs)
	}
}

// withCS feeds the console a status whose registration is cs.
func withCS(cs *api.CSStatus) func(m *Model) {
	return func(m *Model) {
		st := fxStatus(0)
		st.CS = cs
		m.Update(StatusMsg{Status: st, At: fxNow})
	}
}

func TestGoldenDashboardRegistered(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, withCS(&api.CSStatus{Server: "cs01.example.com:443", HostID: "h",
		OK: true, LastHeartbeat: fxNow.Add(-12 * time.Second), LastAttempt: fxNow.Add(-12 * time.Second)}))
}

func TestGoldenDashboardCSUnreachable(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}, ReadOnly: true, ReadOnlyReason: "not root"},
		withCS(&api.CSStatus{Server: "cs01.example.com:8443", HostID: "h", LastHeartbeat: fxNow.Add(-5 * time.Minute),
			FailingSince: fxNow.Add(-3*time.Minute - 10*time.Second), LastAttempt: fxNow.Add(-10 * time.Second),
			Problem: "unreachable", Error: "configuration server unreachable: cannot reach cs01.example.com:8443: connection refused"}))
}

// The title line's registration, in each state; at 80 columns it fits
// beside the longest title and the read-only note: the server's name is
// cut first, then the read-only reason, so the state stays whole.
func TestCSView(t *testing.T) {
	long := "configuration-server.datacenter-east.example.com:443"
	for _, tc := range []struct {
		name   string
		cs     *api.CSStatus
		want   string // at 160 columns
		narrow string // the end of the title line at 80, with the longest title and --readonly
	}{
		{"not registered", nil, "CS: not registered", "read-only: --readonly · CS: not registered"},
		{"ok", &api.CSStatus{Server: "10.0.0.4:443", OK: true, LastHeartbeat: fxNow.Add(-12 * time.Second)},
			"CS: 10.0.0.4 ✓ 12s ago", "read-only: --readonly · CS: 10.0.0.4 ✓ 12s ago"},
		{"ok, other port", &api.CSStatus{Server: "10.0.0.4:8443", OK: true, LastHeartbeat: fxNow.Add(-2 * time.Hour)},
			"CS: 10.0.0.4:8443 ✓ 2h ago", "read-only: --readonly · CS: 10.0.0.4:8443 ✓ 2h ago"},
		{"starting", &api.CSStatus{Server: "10.0.0.4:443"}, "CS: 10.0.0.4 … connecting", "read-only: --readonly · CS: 10.0.0.4 … connecting"},
		{"unreachable", &api.CSStatus{Server: "10.0.0.4:443", Problem: "unreachable", FailingSince: fxNow.Add(-3 * time.Minute)},
			"CS: 10.0.0.4 ✗ unreachable 3m", "read-only · CS: 10.0.0.4 ✗ unreachable 3m"},
		{"passphrase", &api.CSStatus{Server: "10.0.0.4:443", Problem: "passphrase rejected", FailingSince: fxNow.Add(-5 * time.Second)},
			"CS: 10.0.0.4 ✗ passphrase rejected 5s", "read-only · CS: 10.0.0.4 ✗ passphrase rejected 5s"},
		{"long host", &api.CSStatus{Server: long, OK: true, LastHeartbeat: fxNow},
			"CS: configuration-server.datace… ✓ 0s ago", "read-only: --readonly · CS: configuration… ✓ 0s ago"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFx(t, 80, 24, Options{ReadOnly: true, ReadOnlyReason: "--readonly"})
			withCS(tc.cs)(m)
			press(m, "enter", "?") // the longest title: Dashboard › Pair p1 › Help
			lines := strings.Split(screenText(t, m), "\n")
			title := strings.TrimRight(lines[1], " ")
			if !strings.HasPrefix(strings.TrimSpace(title), "Dashboard › Pair p1 › Help") {
				t.Errorf("the title gave way: %q", title)
			}
			if !strings.HasSuffix(title, tc.narrow) {
				t.Errorf("title line at 80 columns %q, want it to end %q", title, tc.narrow)
			}
			m.Update(tea.WindowSizeMsg{Width: 160, Height: 40})
			lines = strings.Split(screenText(t, m), "\n")
			if title := strings.TrimRight(lines[1], " "); !strings.HasSuffix(title, "read-only: --readonly · "+tc.want) {
				t.Errorf("title line at 160 columns %q, want it to end %q", title, tc.want)
			}
		})
	}
	// before the agent answered, nothing is claimed
	m := New(t.Context(), Options{Now: fxClock, NoColor: true})
	if _, state, _ := m.csView(); state != "unknown" {
		t.Errorf("before any status: %q", state)
	}
}

// fxView is an open view of p1, as the agent's status reports it.
func fxView() api.View {
	sock := "/run/mtconsole/views/v1.sock"
	return api.View{ID: "v1", Point: "tag:crash-1004", Pairs: []string{"p1"}, Listen: "unix:" + sock, Clients: 1, Opened: fxNow,
		Exports: []api.ViewExport{{Pair: "p1", Name: "p1", URI: "nbd+unix:///p1?socket=" + sock, Size: 64 << 30}}}
}

// An open view shows in the dashboard's header and on its pair's detail.
func TestGoldenDashboardView(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) { m.status.Views = []api.View{fxView()} })
}

func TestGoldenDetailView(t *testing.T) {
	goldenScreens(t, Options{Actions: &fakeActions{}}, func(m *Model) {
		m.status.Views = []api.View{fxView()}
		press(m, "enter")
	})
}

// A rollback of a pair with a view open fails its check, naming the view;
// a second view of it too. Nothing is asked of the agent.
func TestWizardViewBlocksRollback(t *testing.T) {
	for _, mode := range []string{"rollback", "view"} {
		fa := &fakeActions{}
		m := newFx(t, 80, 24, Options{Actions: fa})
		m.status.Views = []api.View{fxView()}
		wizardTo(m, stepMode, "")
		press(m, "down")
		if mode == "view" {
			press(m, "down")
		}
		answer(m, press(m, "enter"))
		if m.wiz.step != stepCheck {
			t.Fatalf("%s: step %d, want the check", mode, m.wiz.step)
		}
		found := false
		for _, c := range m.wiz.checks {
			if c.level == checkFail && strings.Contains(c.text, "view v1") {
				found = true
			}
		}
		if !found {
			t.Fatalf("%s with view v1 open: checks %+v, want a failure naming it", mode, m.wiz.checks)
		}
		press(m, "enter")
		if m.wiz.step != stepCheck || len(fa.recs) != 0 || len(fa.views) != 0 {
			t.Fatalf("%s went on past a failed check (step %d, %d recovers, %d views)", mode, m.wiz.step, len(fa.recs), len(fa.views))
		}
	}
}

// The View mode opens the view through the agent with the point the
// check showed, and its result is the attach lines.
func TestWizardOpensView(t *testing.T) {
	fa := &fakeActions{}
	m := newFx(t, 80, 24, Options{Actions: fa})
	wizardTo(m, stepMode, "")
	press(m, "down", "down")
	answer(m, press(m, "enter"))
	press(m, "enter")
	answer(m, press(m, "enter"))
	if len(fa.views) != 1 || fa.views[0].Point != "tag:crash-1004" || !slices.Equal(fa.views[0].Pairs, []string{"p1"}) || fa.views[0].Writable {
		t.Fatalf("views asked: %+v", fa.views)
	}
	if len(fa.recs) != 0 {
		t.Fatal("a view started a recovery job")
	}
	s := screenText(t, m)
	for _, want := range []string{"View v1", "nbd-client -unix /run/mtconsole/views/v1.sock", "qemu-img convert", "nbdfuse", "mtconsole view close v1"} {
		if !strings.Contains(s, want) {
			t.Errorf("result screen lacks %q:\n%s", want, s)
		}
	}
}
