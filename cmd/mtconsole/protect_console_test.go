package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/protect/console"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/tui"
)

// The console's Protector on package protect, against a process server
// on loopback: the agent's defaults, a first-seen certificate handed to
// the screen (nothing pinned) then trusted by its fingerprint, the
// target rules, a refused plan, the plan, and the apply with no agent.
func TestConsoleProtector(t *testing.T) {
	h := newProtectHost(t)
	ctx := context.Background()
	var reloads []string
	c := &console.Protector{Config: h.conf, Socket: h.sock, AllowFiles: true,
		Reload: func(_ context.Context, socket string) ([]string, error) {
			reloads = append(reloads, socket)
			return nil, api.ErrNoAgent
		}}
	if d := c.Defaults(); d != (tui.ProtectDefaults{Addr: h.addr, PassFile: h.pass, Retention: 24 * time.Hour, OnFull: "purge", RPOThreshold: 15 * time.Minute, AlertPercent: 5}) {
		t.Fatalf("defaults %+v, want agent.toml's %q %q and the agent's own policy", d, h.addr, h.pass)
	}
	trust := filepath.Join(h.etc, "known_process_servers")
	_, err := c.Discover(ctx, h.addr, h.pass, "")
	var ue *tui.UntrustedError
	if !errors.As(err, &ue) || ue.Fingerprint != h.fp.String() || ue.TrustStore != trust {
		t.Fatalf("first use: %v, want an UntrustedError with %s", err, h.fp)
	}
	if _, err := os.Stat(trust); err == nil {
		t.Fatal("a certificate not trusted was pinned")
	}
	d, err := c.Discover(ctx, h.addr, h.pass, h.fp.String())
	if err != nil {
		t.Fatal(err)
	}
	if d.HostName != "web01" || len(d.Disks) != 1 || d.Disks[0].Name != "sda" || d.Disks[0].Size != 1<<20 || d.Disks[0].Paired != "" || !d.FirstUse {
		t.Fatalf("discovery %+v", d)
	}
	if st, err := wire.OpenTrustStore(trust); err != nil {
		t.Fatal(err)
	} else if fp, ok, _ := st.Lookup(h.addr); !ok || fp != h.fp {
		t.Fatal("the trusted certificate is not pinned")
	}
	if v := c.Check(ctx, d.Disks[0], h.small, ""); v.OK || !strings.Contains(v.Reason, "smaller") {
		t.Fatalf("small target: %+v", v)
	}
	if v := c.Check(ctx, d.Disks[0], h.big, ""); !v.OK {
		t.Fatalf("big target: %+v", v)
	}
	// The demo's file targets: NAME.img in fileTargets is suggested when
	// it may be used, not when it is too small.
	c.FileTargets = h.dir
	if s := c.Suggest(ctx, d.Disks); s["sda"] != "" {
		t.Fatalf("suggested %q with no sda.img there", s["sda"])
	}
	sdaImg := filepath.Join(h.dir, "sda.img")
	if err := os.WriteFile(sdaImg, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	if s := c.Suggest(ctx, d.Disks); s["sda"] != sdaImg {
		t.Fatalf("suggested %q, want %s", s["sda"], sdaImg)
	}
	if err := os.Truncate(sdaImg, 4096); err != nil {
		t.Fatal(err)
	}
	if s := c.Suggest(ctx, d.Disks); s["sda"] != "" {
		t.Fatalf("suggested a too small %q", s["sda"])
	}
	c.FileTargets = ""
	req := tui.ProtectRequest{Addr: h.addr, PassFile: h.pass, Disks: d.Disks, Group: "web01", Map: map[string]string{"sda": h.small},
		Retention: "3d", SizeCapMB: "2048", OnFull: "pause", RPOThreshold: "15m", ConsistencyInterval: "15m"}
	before, _ := os.ReadFile(h.conf)
	p, err := c.Plan(ctx, req)
	if err != nil || len(p.Refusals) != 1 || !strings.Contains(p.Refusals[0].Reason, "smaller than source sda") {
		t.Fatalf("plan with a small target: %+v, %v", p, err)
	}
	req.SizeCapMB = "lots"
	if p, err := c.Plan(ctx, req); err != nil || len(p.Refusals) != 1 || !strings.Contains(p.Refusals[0].Reason, "whole number") {
		t.Fatalf("plan with a bad cap: %+v, %v", p, err)
	}
	req.SizeCapMB, req.Map["sda"] = "2048", h.big
	if p, err = c.Plan(ctx, req); err != nil || len(p.Refusals) != 0 {
		t.Fatalf("plan: %+v, %v", p, err)
	}
	if !strings.Contains(p.Summary, "protect web01: 1 disk") || !strings.Contains(p.Diff, `+retention = "3d"`) ||
		!strings.Contains(p.Diff, "+size_cap_mb = 2048") || len(p.Pairs) != 1 || p.Pairs[0] != "sda" {
		t.Fatalf("plan:\n%s\n%s\n%v", p.Summary, p.Diff, p.Pairs)
	}
	if after, _ := os.ReadFile(h.conf); string(after) != string(before) {
		t.Fatal("a plan changed agent.toml")
	}
	res, err := c.Apply(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Agent || res.Note != protect.NoAgentNote || res.Backup != h.conf+".bak" || len(reloads) != 1 || reloads[0] != h.sock {
		t.Fatalf("apply %+v, reloads %q", res, reloads)
	}
	fc, err := agent.LoadConfig(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.Groups) != 1 || fc.Groups[0].Name != "web01" || len(fc.Pairs) != 2 {
		t.Fatalf("config %+v", fc)
	}
	// sda is protected now: the disks step marks it
	if d, err = c.Discover(ctx, h.addr, h.pass, ""); err != nil || d.Disks[0].Paired != "sda" {
		t.Fatalf("after the apply: %+v, %v", d, err)
	}
}

// noActions is an agent connection the Protect screen never uses.
type noActions struct{ tui.Actions }

// drive runs cmd and what the console answers, as the program would (a
// bounded depth: a cursor's blink would go on forever).
func drive(m tea.Model, cmd tea.Cmd, depth int) {
	if cmd == nil || depth > 8 {
		return
	}
	switch msg := cmd().(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			drive(m, c, depth+1)
		}
	default:
		_, next := m.Update(msg)
		drive(m, next, depth+1)
	}
}

func keys(m tea.Model, ks ...string) {
	for _, k := range ks {
		var msg tea.KeyPressMsg
		switch k {
		case "enter":
			msg = tea.KeyPressMsg{Code: tea.KeyEnter}
		case "space":
			msg = tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
		case "down":
			msg = tea.KeyPressMsg{Code: tea.KeyDown}
		case "ctrl+u":
			msg = tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
		default:
			for _, r := range k {
				_, cmd := m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
				drive(m, cmd, 0)
			}
			continue
		}
		_, cmd := m.Update(msg)
		drive(m, cmd, 0)
	}
}

func screen(m tea.Model) string { return ansi.Strip(m.View().Content) }

// The Protect screen end to end on package protect, against a process
// server on loopback, with no agent running: n, connect, the first-seen
// certificate's fingerprint trusted with y, the disk, its target, the
// policy's defaults, the review, enter: agent.toml has the group, and the
// screen says the agent will pick it up when it starts.
func TestConsoleProtectScreen(t *testing.T) {
	h := newProtectHost(t)
	m := tui.New(t.Context(), tui.Options{Actions: noActions{}, NoColor: true, Host: "mt01",
		Protector: &console.Protector{Config: h.conf, Socket: h.sock, AllowFiles: true}})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	keys(m, "n", "enter")
	if s := screen(m); !strings.Contains(s, h.fp.String()) || !strings.Contains(s, "[y/N]") {
		t.Fatalf("connect, first use: want the fingerprint asked about:\n%s", s)
	}
	keys(m, "y")
	if s := screen(m); !strings.Contains(s, "sda") || !strings.Contains(s, "1.0 MB") && !strings.Contains(s, "1.05 MB") {
		t.Fatalf("y: want the disks:\n%s", s)
	}
	keys(m, "space", "enter", h.big)
	if s := screen(m); !strings.Contains(s, "✓ can be used") {
		t.Fatalf("the target: want it accepted:\n%s", s)
	}
	keys(m, "enter", "enter")
	if s := screen(m); !strings.Contains(s, "protect web01: 1 disk") || !strings.Contains(s, "+++ "+h.conf) {
		t.Fatalf("review:\n%s", s)
	}
	keys(m, "enter")
	if s := screen(m); !strings.Contains(s, "the agent will pick it up when it starts") {
		t.Fatalf("apply:\n%s", s)
	}
	fc, err := agent.LoadConfig(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	if len(fc.Groups) != 1 || fc.Groups[0].Name != "web01" || len(fc.Pairs) != 2 || fc.Pairs[1].Target != h.big {
		t.Fatalf("config %+v", fc)
	}
}

// The policy form starts from agent.toml's [defaults], and a group
// applied with them unchanged writes none of them: it inherits them.
func TestConsoleProtectScreenDefaults(t *testing.T) {
	h := newProtectHost(t)
	conf, err := os.ReadFile(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	withDefaults := strings.Replace(string(conf), "[[pair]]", "[defaults]\nrpo_threshold = \"1m\"\nretention = \"3 days\"\nsize_cap_mb = 64\non_full = \"pause\"\nalert_threshold_percent = 12.5\n\n[[pair]]", 1)
	if err := os.WriteFile(h.conf, []byte(withDefaults), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &console.Protector{Config: h.conf, Socket: h.sock, AllowFiles: true}
	if d := c.Defaults(); d != (tui.ProtectDefaults{Addr: h.addr, PassFile: h.pass, Retention: 72 * time.Hour, SizeCapMB: 64, OnFull: "pause", RPOThreshold: time.Minute, AlertPercent: 12.5}) {
		t.Fatalf("defaults %+v", d)
	}
	m := tui.New(t.Context(), tui.Options{Actions: noActions{}, NoColor: true, Host: "mt01", Protector: c})
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 24})
	keys(m, "n", "enter", "y", "space", "enter", h.big, "enter")
	s := screen(m)
	for _, w := range []string{"Retention value:   3", "( ) hours  (•) days", "Size cap MB:       64", "( ) purge  (•) pause", "RPO threshold:     1m", "Alert at % free:   12.5"} {
		if !strings.Contains(s, w) {
			t.Errorf("the policy form lacks %q:\n%s", w, s)
		}
	}
	keys(m, "enter")
	if s := screen(m); !strings.Contains(s, "retention             the [defaults] (72h)") || !strings.Contains(s, "RPO threshold         the [defaults] (1m)") ||
		!strings.Contains(s, "alert threshold       the [defaults] (12.5 %)") {
		t.Errorf("review: the retention is not the [defaults]':\n%s", s)
	}
	keys(m, "enter")
	if s := screen(m); !strings.Contains(s, "the agent will pick it up when it starts") {
		t.Fatalf("apply:\n%s", s)
	}
	b, err := os.ReadFile(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	_, group, ok := strings.Cut(string(b), "[[group]]")
	group, _, _ = strings.Cut(group, "[[pair]]")
	if !ok || !strings.Contains(group, `name = "web01"`) {
		t.Fatalf("no [[group]] web01:\n%s", b)
	}
	for _, k := range []string{"rpo_threshold", "retention", "size_cap_mb", "on_full", "alert_threshold_percent"} {
		if strings.Contains(group, k) {
			t.Errorf("the [[group]] sets %s, the [defaults] unchanged:\n%s", k, group)
		}
	}
	fc, err := agent.LoadConfig(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range fc.ClientConfig().Pairs {
		if p.Disk == "sda" && (p.Policy.Window != 72*time.Hour || p.RPOThreshold != time.Minute || p.Policy.SizeCap != 64<<20 || p.Policy.OnFull != "pause") {
			t.Errorf("sda runs with %+v, RPO threshold %s: want the [defaults]", p.Policy, p.RPOThreshold)
		}
	}

	// Changed on the form, a value is the group's own.
	h2 := newProtectHost(t)
	os.WriteFile(h2.conf, []byte(strings.ReplaceAll(withDefaults, h.dir, h2.dir)), 0o600)
	m = tui.New(t.Context(), tui.Options{Actions: noActions{}, NoColor: true, Host: "mt01", Protector: &console.Protector{Config: h2.conf, Socket: h2.sock, AllowFiles: true}})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 60})
	keys(m, "n", "enter", "y", "space", "enter", h2.big, "enter", "down", "down", "space", "down", "down", "space", "down", "ctrl+u", "5m", "enter")
	if s := screen(m); !strings.Contains(s, `+retention = "3h"`) || !strings.Contains(s, `+rpo_threshold = "5m"`) ||
		!strings.Contains(s, `+on_full = "purge"`) || strings.Contains(s, "+size_cap_mb") {
		t.Errorf("review of a changed policy:\n%s", s)
	}
}
