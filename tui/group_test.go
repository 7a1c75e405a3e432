package tui

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// fxGroupStatus is the fixture's pairs with p1, p2 and p3 the disks of
// one machine, web01; p4 is a group of its own (named by its id), p5
// has no group (no network layer filled it).
func fxGroupStatus() api.Status {
	st := fxStatus(19)
	for i := range st.Pairs {
		p := &st.Pairs[i]
		switch p.ID {
		case "p1", "p2", "p3":
			p.Group = "web01"
		case "p4":
			p.Group = "p4"
		}
	}
	return st
}

// groupActions is an agent that knows machine web01 (p1, p2, p3). Its
// disks were tagged together (shared tag ids), except that p3 lacks the
// newest tag: the point common to all is before-patch, not crash-1004.
func groupActions(t testing.TB) *fakeActions {
	fa := &fakeActions{groups: map[string][]string{"web01": {"p1", "p2", "p3"}, "p4": {"p4"}, "p5": {"p5"}},
		stores: map[string]*journal.Store{}}
	fa.bind(t)
	for _, id := range []string{"p1", "p2", "p3"} {
		tags := fxTags("web01")
		if id == "p3" {
			tags = tags[:len(tags)-1]
		}
		fa.stores[id] = buildStore(t, id, tags, 1000, fxNow.Add(-time.Second))
	}
	return fa
}

// newGroupFx is the console on the grouped fixture.
func newGroupFx(t testing.TB, w, h int, fa *fakeActions) *Model {
	m := newFx(t, w, h, Options{Actions: fa})
	m.Update(StatusMsg{Status: fxGroupStatus(), At: fxNow})
	return m
}

func TestGoldenDashboardGroups(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys []string
	}{
		{"Expanded", []string{"k"}},             // the machine's header selected
		{"Collapsed", []string{"k", "space"}},   // folded on its header
		{"CollapsedFromPair", []string{"left"}}, // ← on one of its pairs
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sz := range sizes {
				t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
					m := newGroupFx(t, sz.w, sz.h, groupActions(t))
					press(m, tc.keys...)
					golden.RequireEqual(t, screenText(t, m))
				})
			}
		})
	}
}

func TestGoldenWizardGroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(m *Model)
	}{
		{"Pairs", func(m *Model) {}},
		{"Check", func(m *Model) { groupToCheck(m, "/mtconsole-golden-web01") }},
		{"ConfirmExport", func(m *Model) { groupToCheck(m, "/mtconsole-golden-web01"); press(m, "enter") }},
		{"ConfirmRollback", func(m *Model) { groupToCheck(m, ""); press(m, "enter") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sz := range sizes {
				t.Run(fmt.Sprintf("%dx%d", sz.w, sz.h), func(t *testing.T) {
					m := newGroupFx(t, sz.w, sz.h, groupActions(t))
					answer(m, press(m, "k", "r"))
					tc.setup(m)
					golden.RequireEqual(t, screenText(t, m))
				})
			}
		})
	}
}

// groupToCheck goes from step 1 to the readiness check at the latest
// tag: an export to dest, or a rollback for none.
func groupToCheck(m *Model, dest string) {
	press(m, "enter", "enter") // the machine chosen; latest tag
	if dest != "" {
		press(m, "enter", "ctrl+u")
		typeText(m, dest)
	} else {
		press(m, "down")
	}
	answer(m, press(m, "enter"))
}

// The dashboard folds a machine and keeps it folded across refreshes;
// r on its header opens the wizard with the machine chosen; the check
// shows the point the agent finds common to all its disks; the export
// asks for the machine (Group), not its pairs.
func TestFlowRecoverGroup(t *testing.T) {
	fa := groupActions(t)
	m := newGroupFx(t, 100, 30, fa)
	if !m.dash.grouped || len(m.dash.lines) != 6 {
		t.Fatalf("grouped %v, %d lines, want a header, 3 pairs under it and 2 alone", m.dash.grouped, len(m.dash.lines))
	}
	press(m, "left") // on p1: folds web01, its header selected
	m.Update(StatusMsg{Status: fxGroupStatus(), At: fxNow.Add(time.Second)})
	if got := m.selectedGroup(); got != "web01" || !m.dash.collapsed["web01"] || len(m.dash.lines) != 3 {
		t.Fatalf("after ← and a refresh: selected group %q, collapsed %v, %d lines; want web01 folded, 3 lines",
			got, m.dash.collapsed, len(m.dash.lines))
	}
	s := screenText(t, m)
	if !strings.Contains(s, "▸ web01 (3)") || strings.Contains(s, "p2 →") {
		t.Fatalf("web01 not folded on screen:\n%s", s)
	}
	if enter := m.keySet().Find("detail"); enter == nil || m.keySet().Reason(enter) != "" {
		t.Fatal("enter on a header is refused; it should unfold it")
	}
	answer(m, press(m, "r"))
	if m.screen != screenRecover || m.wiz.group != "web01" || !slices.Equal(m.chosenPairs(), []string{"p1", "p2", "p3"}) {
		t.Fatalf("screen %d group %q pairs %v: want the wizard with web01 chosen", m.screen, m.wiz.group, m.chosenPairs())
	}
	if s := screenText(t, m); !strings.Contains(s, "▶ [x] web01 (machine, 3 disks: p1, p2, p3)") {
		t.Fatalf("step 1 does not show the machine chosen:\n%s", s)
	}
	dest := t.TempDir() + "/web01"
	groupToCheck(m, dest)
	if m.wiz.asked.Group != "web01" || len(m.wiz.asked.Pairs) != 0 {
		t.Errorf("resolve request %+v, want the group alone", m.wiz.asked)
	}
	s = screenText(t, m)
	for _, want := range []string{"Export of machine web01 (p1, p2, p3) to tag:before-patch",
		"machine web01: its 3 disks share tag before-patch", "p3: tag before-patch"} {
		if !strings.Contains(s, want) {
			t.Errorf("check lacks %q:\n%s", want, s)
		}
	}
	press(m, "enter")
	if s := screenText(t, m); !strings.Contains(s, "mtconsole recover --group web01 --point tag:before-patch --mode export") {
		t.Errorf("confirm lacks the script twin with --group:\n%s", s)
	}
	answer(m, press(m, "enter"))
	recs := fa.snapshot().recs
	if len(recs) != 1 {
		t.Fatalf("%d recover requests, want 1", len(recs))
	}
	want := api.RecoverRequest{Point: "tag:before-patch", Mode: api.ModeExport, Dest: dest, Group: "web01"}
	if r := recs[0]; r.Point != want.Point || r.Mode != want.Mode || r.Dest != want.Dest || r.Group != want.Group || len(r.Pairs) != 0 {
		t.Errorf("recover request %+v, want %+v", r, want)
	}
	if m.wiz.step != stepRun || !slices.Equal(m.jobs["j1"].job.Pairs, []string{"p1", "p2", "p3"}) {
		t.Errorf("step %d, job %+v: want the job of web01's pairs running", m.wiz.step, m.jobs["j1"])
	}
}

// A machine's rollback is confirmed by typing its name, as the CLI asks;
// choosing a pair after the machine chooses the pair alone.
func TestWizardGroupRollbackConfirmAndToggle(t *testing.T) {
	fa := groupActions(t)
	m := newGroupFx(t, 100, 30, fa)
	answer(m, press(m, "k", "r"))
	groupToCheck(m, "")
	press(m, "enter")
	typeText(m, "rollback")
	press(m, "enter")
	if n := len(fa.snapshot().recs); n != 0 || !strings.Contains(m.wiz.fieldErr, "type web01 exactly") {
		t.Fatalf("typing rollback: %d recoveries, error %q; want none and to type web01", n, m.wiz.fieldErr)
	}
	press(m, "ctrl+u")
	typeText(m, "web01")
	answer(m, press(m, "enter"))
	recs := fa.snapshot().recs
	if len(recs) != 1 || recs[0].Group != "web01" || recs[0].Mode != api.ModeRollback || len(recs[0].Pairs) != 0 {
		t.Fatalf("recover requests %+v, want one rollback of group web01", recs)
	}

	m = newGroupFx(t, 100, 30, groupActions(t))
	answer(m, press(m, "k", "r"))
	answer(m, press(m, "down", "down", "space")) // p2, under web01
	if m.wiz.group != "" || !slices.Equal(m.chosenPairs(), []string{"p2"}) {
		t.Errorf("group %q pairs %v, want p2 alone", m.wiz.group, m.chosenPairs())
	}
	if req := m.request(); req.Group != "" || !slices.Equal(req.Pairs, []string{"p2"}) {
		t.Errorf("request %+v, want pair p2", req)
	}
}

// Filtering by a machine's name shows its pairs; sorting orders pairs
// within their machine.
func TestDashboardGroupFilterSort(t *testing.T) {
	m := newGroupFx(t, 100, 30, groupActions(t))
	press(m, "/")
	typeText(m, "web")
	press(m, "enter")
	if len(m.dash.rows) != 3 || len(m.dash.lines) != 4 || m.dash.lines[0].group != "web01" || m.dash.lines[0].pair >= 0 {
		t.Fatalf("filter web: %d rows, lines %+v; want web01's header and its 3 pairs", len(m.dash.rows), m.dash.lines)
	}
	press(m, "esc", "s", "s", "s") // RPO ↓: p5 3600, p3 600, p2 125, p1 2..4, p4 1
	var got []string
	for _, l := range m.dash.lines {
		if l.pair < 0 {
			got = append(got, "["+l.group+"]")
		} else {
			got = append(got, m.status.Pairs[l.pair].ID)
		}
	}
	if want := []string{"p5", "[web01]", "p3", "p2", "p1", "p4"}; !slices.Equal(got, want) {
		t.Errorf("sorted by RPO: %v, want %v", got, want)
	}
}
