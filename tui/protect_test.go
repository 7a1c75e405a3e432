package tui

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/mtconsole/mtconsole/replication/writer"
)

const fxFingerprint = "SHA256:3f9a1c44be0d7e2a9b1c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809112"

// fakeProtector is a process server serving three disks (sdc already
// paired) and a host with two free disks; /dev/sde holds a file system
// and needs its name typed, /dev/sda is the OS disk.
type fakeProtector struct {
	untrusted bool   // the certificate is seen for the first time
	refuse    string // Plan refuses with this reason
	noAgent   bool
	defaults  *ProtectDefaults // nil: ps01's, the agent's own policy

	mu           sync.Mutex
	discover     []string // the trust given each time
	plans        []ProtectRequest
	applied      int
	removePlans  []string
	refuseRemove string // PlanRemove refuses with this reason
	removes      []fakeRemove
}

func (f *fakeProtector) Defaults() ProtectDefaults {
	if f.defaults != nil {
		return *f.defaults
	}
	return ProtectDefaults{Addr: "ps01.example.com:9443", PassFile: "/etc/mtconsole/passphrase",
		Retention: 24 * time.Hour, OnFull: "purge", RPOThreshold: 15 * time.Minute}
}

func (f *fakeProtector) Discover(_ context.Context, addr, pass, trust string) (*PSDiscovery, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.discover = append(f.discover, trust)
	switch {
	case pass == "/wrong":
		return nil, errors.New("passphrase refused: the process server at " + addr + " refused the passphrase: give the process server's passphrase")
	case f.untrusted && trust != fxFingerprint:
		return nil, &UntrustedError{Addr: addr, Fingerprint: fxFingerprint, TrustStore: "/var/lib/mtconsole/known_process_servers"}
	}
	return &PSDiscovery{Addr: addr, HostName: "web01", Fingerprint: fxFingerprint, FirstUse: f.untrusted, Disks: []PSDisk{
		{Name: "sda", Size: 64 << 30, BlockSize: 512, AppConsistent: "1h"},
		{Name: "sdb", Size: 32 << 30, BlockSize: 512},
		{Name: "sdc", Size: 16 << 30, BlockSize: 4096, Paired: "web01-sdc"},
	}}, nil
}

func (f *fakeProtector) Suggest(_ context.Context, disks []PSDisk) map[string]string {
	all := map[string]string{"sda": "/dev/sdd", "sdb": "/dev/sde"}
	out := map[string]string{}
	for _, d := range disks {
		if t, ok := all[d.Name]; ok {
			out[d.Name] = t
		}
	}
	return out
}

func (f *fakeProtector) Check(_ context.Context, d PSDisk, target, overwrite string) TargetCheck {
	switch target {
	case "/dev/sda":
		return TargetCheck{Reason: "sda is the OS disk (it holds /): choose a disk given to this VM for replication"}
	case "/dev/sde":
		if overwrite != "sde" {
			return TargetCheck{Reason: "sde holds an ext4 file system: it will be overwritten; type its name, sde, to allow it", Confirm: "sde"}
		}
	case "/dev/sdd", "/dev/sdf":
	default:
		return TargetCheck{Reason: target + " does not exist: give a disk of this host (lsblk lists them)"}
	}
	return TargetCheck{OK: true}
}

func (f *fakeProtector) Plan(_ context.Context, req ProtectRequest) (*ProtectPlan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans = append(f.plans, req)
	if f.refuse != "" {
		return &ProtectPlan{Refusals: []ProtectRefusal{{Reason: f.refuse}}}, nil
	}
	var pairs []string
	var sum, diff strings.Builder
	fmt.Fprintf(&sum, "protect %s: %d disks from %s (add to /etc/mtconsole/agent.toml)\n", req.Group, len(req.Map), req.Addr)
	diff.WriteString("--- /etc/mtconsole/agent.toml\n+++ /etc/mtconsole/agent.toml\n@@ -12,0 +13,14 @@\n+\n+[[group]]\n")
	fmt.Fprintf(&diff, "+name = %q\n+consistency_interval = %q\n", req.Group, req.ConsistencyInterval)
	if req.Retention != "" {
		fmt.Fprintf(&diff, "+retention = %q\n", req.Retention)
	}
	for _, d := range slices.Sorted(maps.Keys(req.Map)) {
		pairs = append(pairs, d)
		fmt.Fprintf(&sum, "  %-12s -> %s\n", d, req.Map[d])
		fmt.Fprintf(&diff, "+\n+[[pair]]\n+disk = %q\n+target = %q\n+group = %q\n", d, req.Map[d], req.Group)
	}
	or := func(v string) string {
		if v == "" {
			return "the [defaults]"
		}
		return v
	}
	fmt.Fprintf(&sum, "  retention             %s\n  on full               %s\n", or(req.Retention), or(req.OnFull))
	for _, d := range req.Disks {
		if _, ok := req.Map[d.Name]; ok && d.AppConsistent != "" {
			fmt.Fprintf(&sum, "  app-consistent        %s every %s (reported by the process server)\n", d.Name, d.AppConsistent)
		}
	}
	return &ProtectPlan{Summary: sum.String(), Diff: diff.String(), Pairs: pairs}, nil
}

func (f *fakeProtector) Apply(_ context.Context, p *ProtectPlan) (*ProtectResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied++
	r := &ProtectResult{Path: "/etc/mtconsole/agent.toml", Backup: "/etc/mtconsole/agent.toml.bak"}
	if f.noAgent {
		r.Note = "no agent answers on its socket: the agent will pick it up when it starts"
	} else {
		r.Agent, r.Started = true, p.Pairs
	}
	return r, nil
}

func (f *fakeProtector) lastPlan() ProtectRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.plans[len(f.plans)-1]
}

// drive runs cmd and what the console answers to it, as the program
// would, for the Protect screen's messages (the Protector's answers are
// at once in the fake); anything else (a cursor's blink) is dropped.
func drive(m *Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	switch msg := cmd().(type) {
	case tea.BatchMsg:
		for _, c := range msg {
			drive(m, c)
		}
	case protDiscoverMsg, protSuggestMsg, protCheckMsg, protPlanMsg, protApplyMsg, unprotPlanMsg, unprotApplyMsg:
		_, next := m.Update(msg)
		drive(m, next)
	}
}

// protectTo walks the Protect screen to a step: sda and sdb chosen, sdb's
// target typed over (sde needs its name).
func protectTo(m *Model, step protStep) {
	drive(m, press(m, "n"))
	if step == protServer {
		return
	}
	drive(m, press(m, "enter")) // connect
	if m.prot.step == protTrust {
		if step == protTrust {
			return
		}
		drive(m, press(m, "y"))
	}
	if step == protDisks {
		return
	}
	press(m, "space", "down", "space")
	drive(m, press(m, "enter"))
	if step == protMap {
		return
	}
	press(m, "down", "down") // sde's typed name
	typeText(m, "sde")
	drive(m, m.protInputChanged())
	drive(m, press(m, "enter"))
	if step == protPolicy {
		return
	}
	drive(m, press(m, "enter"))
	if step == protReview {
		return
	}
	drive(m, press(m, "enter"))
}

func protFx(t *testing.T, w, h int, fp *fakeProtector) *Model {
	return newFx(t, w, h, Options{Actions: &fakeActions{}, Protector: fp})
}

func TestGoldenProtect(t *testing.T) {
	for _, c := range []struct {
		name  string
		fp    *fakeProtector
		setup func(m *Model)
	}{
		{"Server", &fakeProtector{}, func(m *Model) { protectTo(m, protServer) }},
		{"ServerRefused", &fakeProtector{}, func(m *Model) {
			protectTo(m, protServer)
			press(m, "down", "ctrl+u")
			typeText(m, "/wrong")
			drive(m, press(m, "enter"))
		}},
		{"Trust", &fakeProtector{untrusted: true}, func(m *Model) { protectTo(m, protTrust) }},
		{"Disks", &fakeProtector{untrusted: true}, func(m *Model) { protectTo(m, protDisks); press(m, "space", "down") }},
		{"Mapping", &fakeProtector{}, func(m *Model) { protectTo(m, protMap) }},
		{"MappingRefused", &fakeProtector{}, func(m *Model) {
			protectTo(m, protMap)
			press(m, "ctrl+u")
			typeText(m, "/dev/sda")
			drive(m, m.protInputChanged())
		}},
		{"Policy", &fakeProtector{}, func(m *Model) { protectTo(m, protPolicy) }},
		{"Review", &fakeProtector{}, func(m *Model) { protectTo(m, protReview) }},
		{"ReviewRefused", &fakeProtector{refuse: "group \"web01\" exists in /etc/mtconsole/agent.toml: choose another name (`mtconsole protection list` shows them)"},
			func(m *Model) { protectTo(m, protReview) }},
		{"Progress", &fakeProtector{}, func(m *Model) {
			protectTo(m, protProgress)
			st := fxStatus(1)
			st.Pairs = append(st.Pairs, fxPair("sda", "Resync Step I", writer.HealthOK, "", 0, 0, 0))
			m.Update(StatusMsg{Status: st, At: fxNow})
		}},
		{"ProgressNoAgent", &fakeProtector{noAgent: true}, func(m *Model) { protectTo(m, protProgress) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			goldenScreens(t, Options{Actions: &fakeActions{}, Protector: c.fp}, c.setup)
		})
	}
}

// The whole screen with a fake Protector: the defaults, a first-seen
// certificate trusted with y, two disks (the paired one refused), the
// suggested targets, a target that needs its name typed, the policy, the
// review, the apply and the progress until each new pair resyncs.
func TestProtectFlow(t *testing.T) {
	fp := &fakeProtector{untrusted: true}
	m := protFx(t, 80, 24, fp)
	drive(m, press(m, "n"))
	if m.screen != screenProtect || m.prot.addr.Value() != "ps01.example.com:9443" || m.prot.pass.Value() != "/etc/mtconsole/passphrase" {
		t.Fatalf("n: screen %d, address %q, passphrase %q: want the Protect screen with the agent's defaults",
			m.screen, m.prot.addr.Value(), m.prot.pass.Value())
	}
	drive(m, press(m, "enter"))
	if m.prot.step != protTrust || !strings.Contains(screenText(t, m), fxFingerprint) {
		t.Fatalf("a first-seen certificate: step %d, want its fingerprint asked about:\n%s", m.prot.step, screenText(t, m))
	}
	drive(m, press(m, "y"))
	if m.prot.step != protDisks || !slices.Equal(fp.discover, []string{"", fxFingerprint}) {
		t.Fatalf("y: step %d, discover trusts %q: want the disks, asked again trusting that fingerprint", m.prot.step, fp.discover)
	}
	// sdc is paired: it cannot be chosen
	press(m, "down", "down", "space")
	if m.prot.chosen["sdc"] || !strings.Contains(m.note, "already protected (pair web01-sdc)") {
		t.Fatalf("space on a paired disk: chosen %v, note %q", m.prot.chosen, m.note)
	}
	press(m, "enter")
	if m.prot.step != protDisks {
		t.Fatal("enter with no disk chosen went on")
	}
	press(m, "up", "space", "up", "space")
	drive(m, press(m, "enter"))
	if m.prot.step != protMap || m.prot.target[0].Value() != "/dev/sdd" || m.prot.target[1].Value() != "/dev/sde" {
		t.Fatalf("step %d: the targets are not the suggested ones", m.prot.step)
	}
	if v := m.prot.verdict[1]; v == nil || v.OK || v.Confirm != "sde" {
		t.Fatalf("sde's verdict %+v: want a typed name asked", v)
	}
	press(m, "enter")
	if m.prot.step != protMap || !strings.Contains(m.note, "sdb: sde holds an ext4 file system") {
		t.Fatalf("enter with a refused target: step %d, note %q", m.prot.step, m.note)
	}
	press(m, "down", "down")
	typeText(m, "sde")
	drive(m, m.protInputChanged())
	if v := m.prot.verdict[1]; v == nil || !v.OK {
		t.Fatalf("sde with its name typed: %+v", v)
	}
	drive(m, press(m, "enter"))
	if m.prot.step != protPolicy || m.prot.pol[polGroup].Value() != "web01" {
		t.Fatalf("step %d, group %q: want the policy, the group named after the process server's host", m.prot.step, m.prot.pol[polGroup].Value())
	}
	// retention 3 days, pause when full, a 2048 MB cap
	press(m, "down", "ctrl+u")
	typeText(m, "3")
	press(m, "down", "space", "down", "ctrl+u")
	typeText(m, "2048")
	press(m, "down", "l")
	drive(m, press(m, "enter"))
	if m.prot.step != protReview {
		t.Fatalf("step %d, err %q: want the review", m.prot.step, m.prot.err)
	}
	req := fp.lastPlan()
	want := ProtectRequest{Addr: "ps01.example.com:9443", PassFile: "/etc/mtconsole/passphrase", Group: "web01",
		Map: map[string]string{"sda": "/dev/sdd", "sdb": "/dev/sde"}, Overwrite: map[string]string{"/dev/sde": "sde"},
		Retention: "3d", SizeCapMB: "2048", OnFull: "pause", ConsistencyInterval: "15m"}
	req.Disks = nil
	if fmt.Sprint(req) != fmt.Sprint(want) {
		t.Fatalf("plan request\n%+v\nwant\n%+v", req, want)
	}
	if s := screenText(t, m); !strings.Contains(s, "protect web01: 2 disks") || !strings.Contains(s, "+[[group]]") {
		t.Fatalf("review lacks the summary or the diff:\n%s", s)
	}
	drive(m, press(m, "enter"))
	if fp.applied != 1 || m.prot.step != protProgress {
		t.Fatalf("apply: %d applies, step %d, err %q", fp.applied, m.prot.step, m.prot.err)
	}
	if s := screenText(t, m); !strings.Contains(s, "Waiting for each new pair") {
		t.Fatalf("progress before the pairs show:\n%s", s)
	}
	st := fxStatus(1)
	st.Pairs = append(st.Pairs, fxPair("sda", "Resync Step I", writer.HealthOK, "", 0, 0, 0), fxPair("sdb", "Queued", writer.HealthOK, "", 0, 0, 0))
	m.Update(StatusMsg{Status: st, At: fxNow})
	if s := screenText(t, m); strings.Contains(s, "Every new pair has started") {
		t.Fatalf("sdb is Queued but the progress says done:\n%s", s)
	}
	st.Pairs[len(st.Pairs)-1].State = "Resync Step II"
	m.Update(StatusMsg{Status: st, At: fxNow})
	if s := screenText(t, m); !strings.Contains(s, "Every new pair has started") {
		t.Fatalf("both resync but the progress waits:\n%s", s)
	}
	press(m, "enter")
	if m.screen != screenDashboard {
		t.Fatalf("enter on the progress: screen %d", m.screen)
	}
}

// A refused plan cannot be applied: enter says why and nothing is
// written; esc goes back to the policy to fix it.
func TestProtectRefusedPlanNotApplied(t *testing.T) {
	fp := &fakeProtector{refuse: "group \"web01\" exists"}
	m := protFx(t, 80, 24, fp)
	protectTo(m, protReview)
	press(m, "enter")
	if fp.applied != 0 || !strings.Contains(m.note, "the plan is refused") {
		t.Fatalf("enter on a refused plan: %d applies, note %q", fp.applied, m.note)
	}
	press(m, "esc")
	if m.prot.step != protPolicy {
		t.Fatalf("esc: step %d, want the policy", m.prot.step)
	}
}

// Not trusting a first-seen certificate pins nothing and goes back to
// step 1 with the reason.
func TestProtectUntrustedRefused(t *testing.T) {
	fp := &fakeProtector{untrusted: true}
	m := protFx(t, 80, 24, fp)
	protectTo(m, protTrust)
	press(m, "n")
	if m.prot.step != protServer || !strings.Contains(m.prot.err, "was not trusted") || len(fp.discover) != 1 {
		t.Fatalf("n: step %d, err %q, %d discoveries", m.prot.step, m.prot.err, len(fp.discover))
	}
}

// In read-only mode n is refused with the reason and nothing is asked
// of the process server; without a Protector it says what to use.
func TestProtectReadOnly(t *testing.T) {
	fp := &fakeProtector{}
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, Protector: fp, ReadOnly: true, ReadOnlyReason: "not root"})
	if cmd := press(m, "n"); cmd != nil {
		t.Fatal("a refused n returned a command")
	}
	if m.screen != screenDashboard || len(fp.discover) != 0 {
		t.Fatalf("read-only n: screen %d, %d discoveries", m.screen, len(fp.discover))
	}
	if note := ansi.Strip(m.noteView()); !strings.Contains(note, `read-only (not root): "new protection" would change something`) {
		t.Fatalf("note %q", note)
	}
	m = newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	press(m, "n")
	if m.screen != screenDashboard || !strings.Contains(m.note, "mtconsole protect") {
		t.Fatalf("no Protector: screen %d, note %q", m.screen, m.note)
	}
}

// enter on the mapping waits for the check of the target as typed: a
// verdict on what was there before does not let it through.
func TestProtectMappingWaitsForCheck(t *testing.T) {
	m := protFx(t, 80, 24, &fakeProtector{})
	protectTo(m, protMap)
	press(m, "down", "down")
	typeText(m, "sde") // sdb's target may now be overwritten, once checked
	drive(m, m.protInputChanged())
	press(m, "up", "up", "ctrl+u")
	typeText(m, "/dev/sdf") // being checked: the answer is not run
	press(m, "enter")
	if m.prot.step != protMap || !strings.Contains(m.note, "the target of sda is being checked") {
		t.Fatalf("enter while sda's new target is checked: step %d, note %q", m.prot.step, m.note)
	}
	drive(m, m.protInputChanged())
	drive(m, press(m, "enter"))
	if m.prot.step != protPolicy {
		t.Fatalf("enter once checked: step %d, note %q", m.prot.step, m.note)
	}
}

// PlanRemove knows machine web01 (p1, p2, p3) and the pairs p1..p5.
func (f *fakeProtector) PlanRemove(_ context.Context, name string) (*RemovePlan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removePlans = append(f.removePlans, name)
	if f.refuseRemove != "" {
		return nil, errors.New(f.refuseRemove)
	}
	var pairs []string
	switch name {
	case "web01":
		pairs = []string{"p1", "p2", "p3"}
	case "p1", "p2", "p3", "p4", "p5":
		pairs = []string{name}
	default:
		return nil, errors.New("not protected here: /etc/mtconsole/agent.toml has no [[group]] named \"" + name + "\" and no [[pair]] with that id")
	}
	var sum, diff strings.Builder
	fmt.Fprintf(&sum, "unprotect %s: %d pairs leave /etc/mtconsole/agent.toml\n", name, len(pairs))
	diff.WriteString("--- /etc/mtconsole/agent.toml\n+++ /etc/mtconsole/agent.toml\n@@ -20,14 +20,0 @@\n")
	if len(pairs) > 1 {
		fmt.Fprintf(&diff, "-\n-[[group]]\n-name = %q\n", name)
	}
	for _, id := range pairs {
		fmt.Fprintf(&sum, "  %-12s (disk %s) -> /dev/disk/by-id/scsi-%s: left as it is\n", id, id, id)
		fmt.Fprintf(&diff, "-\n-[[pair]]\n-id = %q\n-disk = %q\n-target = \"/dev/disk/by-id/scsi-%s\"\n", id, id, id)
	}
	return &RemovePlan{Name: name, Pairs: pairs, Summary: sum.String(), Diff: diff.String()}, nil
}

func (f *fakeProtector) ApplyRemove(_ context.Context, p *RemovePlan, purge bool) (*RemoveResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removes = append(f.removes, fakeRemove{name: p.Name, purge: purge})
	r := &RemoveResult{Path: "/etc/mtconsole/agent.toml", Backup: "/etc/mtconsole/agent.toml.bak"}
	if f.noAgent {
		r.Note = "no agent answers on its socket: the agent will pick it up when it starts"
	} else {
		r.Agent, r.Stopped = true, p.Pairs
	}
	return r, nil
}

type fakeRemove struct {
	name  string
	purge bool
}

// The policy form starts from the Protector's defaults (agent.toml's
// [defaults]); the request carries only what differs from them, compared
// by value: 72 hours is the [defaults]' 3 days.
func TestProtectPolicyFromDefaults(t *testing.T) {
	fp := &fakeProtector{defaults: &ProtectDefaults{Addr: "ps01.example.com:9443", PassFile: "/etc/mtconsole/passphrase",
		Retention: 72 * time.Hour, SizeCapMB: 0, OnFull: "purge", RPOThreshold: time.Minute, AlertPercent: 7, Sparse: "all 1d; 1 per 1h for 2d"}}
	m := protFx(t, 80, 24, fp)
	protectTo(m, protPolicy)
	s := screenText(t, m)
	for _, w := range []string{"Retention value:   3", "( ) hours  (•) days", "RPO threshold:     1m", "Size cap MB:       0", "(•) purge  ( ) pause", "Alert at % free:   7",
		"Sparse tiers:      all 1d; 1 per 1h for 2d"} {
		if !strings.Contains(s, w) {
			t.Errorf("the policy form lacks %q:\n%s", w, s)
		}
	}
	drive(m, press(m, "enter"))
	if req := fp.lastPlan(); req.Retention != "" || req.RPOThreshold != "" || req.SizeCapMB != "" || req.OnFull != "" || req.AlertPercent != "" || req.ConsistencyInterval != "15m" {
		t.Fatalf("unchanged policy: request %+v, want the [defaults] left to inherit", req)
	}
	// 72 hours, 60s: the same values, still inherited; a changed RPO is
	// the group's own.
	press(m, "esc", "down", "ctrl+u")
	typeText(m, "72")
	press(m, "down", "space", "down", "down", "down", "ctrl+u")
	typeText(m, "60s")
	drive(m, press(m, "enter"))
	if req := fp.lastPlan(); req.Retention != "" || req.RPOThreshold != "" {
		t.Fatalf("72 hours, 60s: request %+v, want the [defaults]", req)
	}
	press(m, "esc", "down", "down", "down", "down", "down", "ctrl+u")
	typeText(m, "5m")
	drive(m, press(m, "enter"))
	if req := fp.lastPlan(); req.Retention != "" || req.RPOThreshold != "5m" {
		t.Fatalf("RPO 5m: request %+v", req)
	}
	// 7.0 is the [defaults]' 7; 20 is the group's own.
	press(m, "esc", "down", "down", "down", "down", "down", "down", "ctrl+u")
	typeText(m, "7.0")
	drive(m, press(m, "enter"))
	if req := fp.lastPlan(); req.AlertPercent != "" {
		t.Fatalf("alert 7.0: request %+v, want the [defaults]", req)
	}
	press(m, "esc", "down", "down", "down", "down", "down", "down", "ctrl+u")
	typeText(m, "20")
	drive(m, press(m, "enter"))
	if req := fp.lastPlan(); req.AlertPercent != "20" || req.Sparse != "" {
		t.Fatalf("alert 20: request %+v", req)
	}
	// sparse tiers: other ones are the group's own; none cleared is "none"
	press(m, "esc", "down", "down", "down", "down", "down", "down", "down", "down", "ctrl+u")
	typeText(m, "all 12h; 2 FS per 1h for 60h")
	drive(m, press(m, "enter"))
	if req := fp.lastPlan(); req.Sparse != "all 12h; 2 FS per 1h for 60h" {
		t.Fatalf("sparse typed: request %+v", req)
	}
	press(m, "esc", "down", "down", "down", "down", "down", "down", "down", "down", "ctrl+u")
	drive(m, press(m, "enter"))
	if req := fp.lastPlan(); req.Sparse != "none" {
		t.Fatalf("sparse cleared: request %+v", req)
	}
}

// The disk step shows each disk's application-consistent interval as the
// process server reports it ("none" when it reports none), and the
// request carries it to the plan, whose review shows it.
func TestProtectAppConsistentShown(t *testing.T) {
	fp := &fakeProtector{}
	m := protFx(t, 80, 24, fp)
	protectTo(m, protDisks)
	s := screenText(t, m)
	for _, w := range []string{"APP", "sda", "1h", "none", "already protected (pair web01-sdc)"} {
		if !strings.Contains(s, w) {
			t.Errorf("the disk step lacks %q:\n%s", w, s)
		}
	}
	press(m, "space", "down", "space")
	drive(m, press(m, "enter"))
	press(m, "down", "down")
	typeText(m, "sde")
	drive(m, m.protInputChanged())
	drive(m, press(m, "enter"))
	drive(m, press(m, "enter"))
	if s := screenText(t, m); m.prot.step != protReview || !strings.Contains(s, "app-consistent        sda every 1h (reported by the process server)") {
		t.Fatalf("review, step %d:\n%s", m.prot.step, s)
	}
}
