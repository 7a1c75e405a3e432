package action

import (
	"strings"
	"testing"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
)

func press(s string) tea.KeyPressMsg {
	switch s {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "f5":
		return tea.KeyPressMsg{Code: tea.KeyF5}
	}
	r := []rune(s)[0]
	return tea.KeyPressMsg{Code: r, Text: s}
}

type quitMsg struct{}

func testSet(readOnly string, busy *bool, ran *[]string) Set {
	run := func(name string) func() tea.Cmd {
		return func() tea.Cmd {
			*ran = append(*ran, name)
			return func() tea.Msg { return quitMsg{} }
		}
	}
	return Set{ReadOnly: readOnly, Bindings: []Binding{
		{Keys: []string{"enter"}, Help: "detail", Run: run("detail")},
		{Keys: []string{"r", "f5"}, Label: "r/F5", Help: "recover", Dangerous: true, Run: run("recover")},
		{Keys: []string{"t"}, Help: "tag all", Dangerous: true, Run: run("tag"),
			Disabled: func() string {
				if *busy {
					return "a tag is being written"
				}
				return ""
			}},
		{Keys: []string{"up", "k"}, Label: "↑/k", Help: "move", NoFooter: true},
		{Keys: []string{"?", "f1"}, Label: "?/F1", Help: "help", Pin: true, Run: run("help")},
		{Keys: []string{"q"}, Help: "quit", Pin: true, Run: run("quit")},
	}}
}

func TestHandleRunsRefusesAndPassesOn(t *testing.T) {
	busy := false
	var ran []string
	s := testSet("", &busy, &ran)
	if r := s.Handle(press("f5")); !r.Handled || r.Cmd == nil || r.Refused != "" {
		t.Fatalf("f5: %+v", r)
	}
	busy = true
	r := s.Handle(press("t"))
	if !r.Handled || r.Cmd != nil || r.Refused != "a tag is being written" {
		t.Fatalf("t while busy: %+v", r)
	}
	// A binding without Run documents a key the screen handles itself.
	if r := s.Handle(press("k")); r.Handled {
		t.Fatalf("k: %+v", r)
	}
	if r := s.Handle(press("x")); r.Handled {
		t.Fatalf("x: %+v", r)
	}
	if strings.Join(ran, ",") != "recover" {
		t.Fatalf("ran %v", ran)
	}

	ro := testSet("not root", &busy, &ran)
	ran = nil
	r = ro.Handle(press("r"))
	if !r.Handled || r.Cmd != nil || !strings.Contains(r.Refused, "read-only (not root)") {
		t.Fatalf("r read-only: %+v", r)
	}
	if r := ro.Handle(press("enter")); r.Cmd == nil {
		t.Fatalf("enter read-only: %+v", r)
	}
	if strings.Join(ran, ",") != "detail" {
		t.Fatalf("read-only ran %v", ran)
	}
}

func TestFooterFitsAndLeavesRefusedToHelp(t *testing.T) {
	busy := false
	var ran []string
	plain := lipgloss.NewStyle()
	s := testSet("", &busy, &ran)
	if got, want := s.Footer(80, plain), " enter detail  r recover  t tag all  ? help  q quit"; got != want {
		t.Fatalf("footer\n got %q\nwant %q", got, want)
	}
	// Narrow: the pinned ones stay, the others in order while they fit.
	if got, want := s.Footer(30, plain), " enter detail  ? help  q quit"; got != want {
		t.Fatalf("narrow footer\n got %q\nwant %q", got, want)
	}
	ro := testSet("not root", &busy, &ran)
	if got, want := ro.Footer(80, plain), " enter detail  ? help  q quit"; got != want {
		t.Fatalf("read-only footer\n got %q\nwant %q", got, want)
	}
	help := strings.Join(ro.HelpLines(120, plain), "\n")
	for _, want := range []string{
		"r/F5       recover  (disabled: read-only (not root))",
		"t          tag all  (disabled: read-only (not root))",
		"↑/k        move",
		"enter      detail\n",
	} {
		if !strings.Contains(help, want) {
			t.Errorf("help lacks %q:\n%s", want, help)
		}
	}
	if b := ro.Find("recover"); b == nil || ro.Reason(b) == "" {
		t.Fatalf("Find(recover) = %+v", b)
	}
}

func TestRunKeyWhatAndShown(t *testing.T) {
	var got []string
	s := Set{ReadOnly: "not root", Bindings: []Binding{
		{Keys: []string{"up", "k", "down", "j"}, Label: "↑↓/jk", Help: "move",
			RunKey: func(msg tea.KeyPressMsg) tea.Cmd { got = append(got, msg.String()); return nil }},
		{Keys: []string{"enter"}, Help: "next", Dangerous: true, What: "start the export", Run: func() tea.Cmd { return nil }},
		{Keys: []string{"q"}, Help: "quit", Pin: true, Run: func() tea.Cmd { return nil }},
	}}
	// RunKey is told which key it was: one entry, two directions.
	for _, k := range []string{"k", "j"} {
		if r := s.Handle(press(k)); !r.Handled || r.Refused != "" {
			t.Fatalf("%s: %+v", k, r)
		}
	}
	if strings.Join(got, ",") != "k,j" {
		t.Fatalf("RunKey got %v", got)
	}
	// What names the change where Help does not.
	if r := s.Handle(press("enter")); r.Refused != `read-only (not root): "start the export" would change something` {
		t.Fatalf("enter read-only: %+v", r)
	}
	// Shown is what Footer draws: the refused one is left to the help.
	var shown []string
	for _, b := range s.Shown(80) {
		shown = append(shown, b.Help)
	}
	if strings.Join(shown, ",") != "move,quit" {
		t.Fatalf("shown %v", shown)
	}
	if got, want := s.Footer(80, lipgloss.NewStyle()), " ↑↓/jk move  q quit"; got != want {
		t.Fatalf("footer %q, want %q", got, want)
	}
	// A pinned binding refused now is left to the help too: a key that
	// is shown works.
	s.Bindings[2].Disabled = func() string { return "a VM is being created" }
	if got, want := s.Footer(80, lipgloss.NewStyle()), " ↑↓/jk move"; got != want {
		t.Fatalf("footer with quit disabled %q, want %q", got, want)
	}
}
