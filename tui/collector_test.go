package tui

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// flakySource fails its first polls, then answers.
type flakySource struct {
	mu    sync.Mutex
	fails int
	polls int
}

func (s *flakySource) Status(context.Context) (api.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.polls++
	if s.polls <= s.fails {
		return api.Status{}, errAgentDown
	}
	return fxStatus(0), nil
}

func (s *flakySource) Events(ctx context.Context) (<-chan api.Event, error) {
	ch := make(chan api.Event, 1)
	ch <- api.Event{Event: *ev(0, "p1", writer.EventLog, 0, "hello")}
	close(ch)
	return ch, nil
}

func TestLiveBacksOffThenRecovers(t *testing.T) {
	src := &flakySource{fails: 2}
	l := &Live{Source: src, Interval: time.Second, MaxBackoff: 2 * time.Second}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var got []string
	var at []time.Time
	go l.Run(ctx, func(msg tea.Msg) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, fmt.Sprintf("%T", msg))
		at = append(at, time.Now())
		if _, ok := msg.(StatusMsg); ok {
			cancel()
		}
	})
	<-ctx.Done()
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	var polls []string
	for _, g := range got {
		if g != "tui.EventMsg" {
			polls = append(polls, g)
		}
	}
	want := []string{"tui.AgentErrorMsg", "tui.AgentErrorMsg", "tui.StatusMsg"}
	if !reflect.DeepEqual(polls, want) {
		t.Fatalf("messages %v, want %v", polls, want)
	}
	if !strings.Contains(strings.Join(got, " "), "tui.EventMsg") {
		t.Errorf("no event forwarded: %v", got)
	}
}

func TestReplayRoundTrip(t *testing.T) {
	want := fxEntries()
	got := fxReplay(t).Entries
	if len(got) != len(want) {
		t.Fatalf("%d entries back, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i].Msg(), want[i].Msg()) {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i].Msg(), want[i].Msg())
		}
	}
}

func TestReplayBadLine(t *testing.T) {
	_, err := ReadReplay(strings.NewReader("{\"at\":\"2026-11-26T10:00:00Z\",\"error\":\"x\"}\n{\"at\":1}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("error %v does not name line 2", err)
	}
	_, err = ReadReplay(strings.NewReader("{\"at\":\"2026-11-26T10:00:00Z\"}\n"))
	if err == nil || !strings.Contains(err.Error(), "line 1: want one of") {
		t.Errorf("an empty entry: %v", err)
	}
}

func TestRecordTees(t *testing.T) {
	var buf strings.Builder
	rc := Record(fxReplay(t), &buf)
	n := 0
	if err := rc.Run(t.Context(), func(tea.Msg) { n++ }); err != nil {
		t.Fatal(err)
	}
	rp, err := ReadReplay(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	if n != len(fxEntries()) || len(rp.Entries) != n {
		t.Errorf("sent %d, recorded %d, want %d", n, len(rp.Entries), len(fxEntries()))
	}
}

func TestUnreachableKeepsLastData(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	later := fxNow.Add(90 * time.Second)
	m.o.Now = func() time.Time { return later }
	m.Update(AgentErrorMsg{Err: errAgentDown, At: later})
	s := ansi.Strip(m.render())
	for _, want := range []string{"agent ✗ unreachable 0s", "showing the last data, from 10:05:30 UTC (1m30s old)",
		"p2 → /dev/disk", "is mtconsole agent running?"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	m.Update(StatusMsg{Status: fxStatus(1), At: later})
	if s := ansi.Strip(m.render()); strings.Contains(s, "unreachable") || !strings.Contains(s, "agent ✓ connected") {
		t.Errorf("a fresh snapshot did not clear the error:\n%s", s)
	}
}

func TestNoAgentAtStart(t *testing.T) {
	m := New(t.Context(), Options{Now: fxClock, NoColor: true})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	m.Update(AgentErrorMsg{Err: errAgentDown, At: fxNow})
	s := ansi.Strip(m.render())
	if !strings.Contains(s, "No data: no agent at") || !strings.Contains(s, "read-only: no agent connection") {
		t.Errorf("screen:\n%s", s)
	}
}

func TestNoColor(t *testing.T) {
	m := newFx(t, 120, 40, Options{Actions: &fakeActions{}})
	plain := m.View().Content
	m.st = NewStyles(true)
	colored := m.View().Content
	isColor := func(s string) bool {
		return strings.Contains(s, "\x1b[3") || strings.Contains(s, "\x1b[9") || strings.Contains(s, ";3")
	}
	if isColor(plain) {
		t.Errorf("NO_COLOR rendering has colour escapes")
	}
	if !isColor(colored) {
		t.Errorf("colour rendering has no colour")
	}
	if ansi.Strip(plain) != ansi.Strip(colored) {
		t.Errorf("colour changes the words on screen: a state must never be said by colour alone")
	}
}

func TestResizeBelowMinimumAndBack(t *testing.T) {
	m := newFx(t, 80, 24, Options{})
	m.Update(tea.WindowSizeMsg{Width: 79, Height: 30})
	if s := ansi.Strip(m.View().Content); s != "terminal too small: need 80x24, have 79x30; resize it, or q to quit" {
		t.Errorf("below minimum: %q", s)
	}
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	if s := ansi.Strip(m.View().Content); !strings.Contains(s, "p5 → ") {
		t.Errorf("after growing back:\n%s", s)
	}
}

func TestJobSeenFromEvents(t *testing.T) {
	// A console opened while a job runs learns of it from its progress:
	// the typed event, not the log line (which says otherwise here).
	m := newFx(t, 80, 24, Options{})
	m.Update(EventMsg{Event: *ev(2e9, "p1", api.EventProgress, 0, "job j9: export p2 10.0% (1 of 10 bytes)"),
		Job: &api.JobEvent{ID: "j7", Kind: api.JobProgress, Pair: "p1", Done: 400, Total: 1000}})
	s := ansi.Strip(m.render())
	if !strings.Contains(s, "⟳ job j7: ? of p1 40%") {
		t.Errorf("running job not on the dashboard:\n%s", s)
	}
	if m.jobs["j9"] != nil {
		t.Error("a job was read from a log line")
	}
	m.Update(EventMsg{Event: *ev(0, "", api.EventJob, 8, "job j7: failed: something else"),
		Job: &api.JobEvent{ID: "j7", Kind: api.JobFailed, Done: 400, Total: 1000, Err: "pair p1: disk full"}})
	if m.jobs["j7"].job.State != api.JobFailed || m.jobs["j7"].job.Error != "pair p1: disk full" {
		t.Errorf("job after its failure event: %+v", m.jobs["j7"].job)
	}
}
