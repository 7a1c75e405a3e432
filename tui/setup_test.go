package tui

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/colorprofile"
	"github.com/charmbracelet/x/ansi"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/mtconsole/mtconsole/disks"
	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/setup"
)

// suFakePM is a package manager with a fixed set of installed packages;
// Install streams its lines slowly, honours cancelling, and installs.
type suFakePM struct {
	mu        sync.Mutex
	installed map[string]string
	lines     []string
	delay     time.Duration
	block     bool // wait for the context after the lines
	asked     [][]string
}

func (f *suFakePM) Name() string   { return "fake" }
func (f *suFakePM) Family() string { return "debian" }
func (f *suFakePM) Installed(_ context.Context, p string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.installed[p]
	return v, ok, nil
}
func (f *suFakePM) InstallCommand(p []string) string { return "fake-install " + strings.Join(p, " ") }
func (f *suFakePM) Install(ctx context.Context, p []string, line func(string)) error {
	f.mu.Lock()
	f.asked = append(f.asked, p)
	f.mu.Unlock()
	for _, l := range f.lines {
		select {
		case <-ctx.Done():
			return fmt.Errorf("fake-install: cancelled: %w", ctx.Err())
		case <-time.After(f.delay):
		}
		line(l)
	}
	if f.block {
		<-ctx.Done()
		return fmt.Errorf("fake-install: cancelled: %w", ctx.Err())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, x := range p {
		f.installed[x] = "9.9-fake"
	}
	return nil
}

// newFakePM lacks lsscsi and kpartx of the master target's packages.
func newFakePM() *suFakePM {
	m := map[string]string{}
	for _, p := range setup.MasterTargetPackages("debian") {
		if p != "lsscsi" && p != "kpartx" {
			m[p] = "1.0"
		}
	}
	return &suFakePM{installed: m, lines: []string{"Reading package lists...", "Setting up lsscsi (0.32-1) ...", "Setting up kpartx (0.9.4-3) ..."}}
}

// suRoot is a temporary root whose path has a fixed length, so the
// goldens can name it.
func suRoot(t *testing.T) string {
	t.Helper()
	dir := fmt.Sprintf("/tmp/mtwiz-%08x", rand.Uint32())
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

const suRootShown = "/ROOT/mtwiz-tempdir" // as long as the root, so the columns stay

type suFx struct {
	root string
	pm   *suFakePM
	o    SetupOptions
}

// newSetupFx is the wizard on the fixture host vmware-good (checks) with
// a temporary root (state, custom changes, install) and a fake package
// manager.
func newSetupFx(t *testing.T, host string, a *setup.Answers) *suFx {
	t.Helper()
	root := suRoot(t)
	fxRoot := filepath.Join("..", "disks", "testdata", "hosts", host)
	statfs := func(string) (disks.Space, error) { return disks.Space{Total: 1000e9, Free: 900e9, Avail: 850e9}, nil }
	inv, err := disks.Read(disks.Host{Root: fxRoot, Statfs: statfs})
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "mtconsole.new")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho mtconsole\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	uid := 0
	pm := newFakePM()
	o := SetupOptions{Root: root, Answers: setup.DefaultAnswers(), Binary: bin, Version: "test", Host: "mt01", NoColor: true,
		Now: fxClock,
		Env: setup.Env{Root: fxRoot, UID: &uid, Addrs: []string{"10.0.0.5"}, PM: pm, BootID: "boot-1",
			Modinfo: func(context.Context, string) error { return nil }, Statfs: statfs},
		Custom: func() (*setup.Custom, error) { return &setup.Custom{Root: root, Inv: inv, BootID: "boot-1"}, nil },
	}
	if a != nil {
		o.Answers, o.AnswersFrom = *a, "mt.yaml"
	}
	return &suFx{root: root, pm: pm, o: o}
}

func (fx *suFx) model(t *testing.T, w, h int) *SetupModel {
	t.Helper()
	m := NewSetup(t.Context(), fx.o)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	settle(t, m, m.Init())
	return m
}

// settle runs cmd and what it leads to, feeding the messages back, as
// the program would; a command that does not answer within a second (a
// cursor, a job's wait) is dropped.
func settle(t *testing.T, m tea.Model, cmd tea.Cmd) {
	t.Helper()
	if cmd == nil {
		return
	}
	ch := make(chan tea.Msg, 1)
	go func() { ch <- cmd() }()
	var msg tea.Msg
	select {
	case msg = <-ch:
	case <-time.After(time.Second):
		return
	}
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			settle(t, m, c)
		}
	default:
		_, next := m.Update(msg)
		settle(t, m, next)
	}
}

func suPress(t *testing.T, m *SetupModel, keys ...string) {
	t.Helper()
	for _, k := range keys {
		_, cmd := m.Update(keyMsg(k))
		settle(t, m, cmd)
	}
}

func suText(t *testing.T, m *SetupModel, root string) string {
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
	return strings.ReplaceAll(s, root, suRootShown)
}

func mtAnswers(t *testing.T) setup.Answers {
	t.Helper()
	a, err := setup.LoadAnswers("../scripts/examples/mt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestGoldenSetup(t *testing.T) {
	a := mtAnswers(t)
	cases := []struct {
		name    string
		host    string
		answers *setup.Answers
		drive   func(t *testing.T, m *SetupModel, fx *suFx)
	}{
		{"role", "vmware-good", nil, nil},
		{"prerequisites", "vmware-good", nil, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "enter", "j", "j", "j") }},
		{"prerequisites_fixing", "vmware-good", nil, func(t *testing.T, m *SetupModel, _ *suFx) {
			suPress(t, m, "enter")
			m.jobSeq++
			m.job = &suJob{id: m.jobSeq, kind: "packages", title: "Installing lsscsi kpartx", step: suPrereq, running: true,
				cancel: func() {}, lines: []string{"$ fake-install lsscsi kpartx", "Reading package lists...", "Setting up lsscsi (0.32-1) ..."}}
		}},
		{"disks", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "enter", "enter", "j", "j", "j") }},
		{"disks_fail", "virtio-one-disk", nil, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "enter", "enter") }},
		{"disks_edit", "vmware-good", nil, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "enter", "enter", "e") }},
		{"custom", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "enter", "enter", "enter") }},
		{"custom_review", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "enter", "enter", "enter", "a") }},
		{"custom_applied", "vmware-good", &a, func(t *testing.T, m *SetupModel, fx *suFx) {
			cu, _ := fx.o.Custom()
			if _, err := cu.Apply(); err != nil {
				t.Fatal(err)
			}
			suPress(t, m, "enter", "enter", "enter")
		}},
		{"config_server", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "enter", "enter", "enter", "enter") }},
		{"vsphere", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) {
			suPress(t, m, "enter", "enter", "enter", "enter", "enter")
		}},
		{"vsphere_checks", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) {
			suPress(t, m, "enter", "enter", "enter", "enter", "enter")
		}},
		{"summary", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) {
			suPress(t, m, "enter", "enter", "enter", "enter", "enter", "enter")
		}},
		{"summary_dry_run", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) {
			suPress(t, m, "enter", "enter", "enter", "enter", "enter", "enter", "a", "y")
			waitJob(t, m)
		}},
		{"summary_protect_now", "vmware-good", &a, func(t *testing.T, m *SetupModel, _ *suFx) {
			suPress(t, m, "enter", "enter", "enter", "enter", "enter", "enter", "a", "y")
			waitJob(t, m)
		}},
		{"summary_refused", "vmware-good", nil, func(t *testing.T, m *SetupModel, _ *suFx) {
			suPress(t, m, "enter", "enter", "enter", "enter", "enter", "enter")
		}},
		{"process_server", "vmware-good", nil, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "2", "enter", "enter") }},
		{"help", "vmware-good", nil, func(t *testing.T, m *SetupModel, _ *suFx) { suPress(t, m, "?") }},
	}
	for _, c := range cases {
		for _, sz := range sizes {
			t.Run(fmt.Sprintf("%s/%dx%d", c.name, sz.w, sz.h), func(t *testing.T) {
				fx := newSetupFx(t, c.host, c.answers)
				fx.o.DryRun = c.name == "summary_dry_run"
				if c.name == "summary_protect_now" {
					fx.o.Protector = &fakeProtector{}
				}
				if c.name == "vsphere_checks" {
					fx.o.Answers.VSphere = &struct {
						Address      string `yaml:"address"`
						User         string `yaml:"user"`
						PasswordFile string `yaml:"password_file"`
						Insecure     bool   `yaml:"insecure"`
					}{Address: "vcenter.example.com", User: "administrator@vsphere.local", PasswordFile: "/root/vsphere-password"}
					fx.o.VSphere = func(context.Context, setup.Answers) ([]setup.Check, error) {
						return []setup.Check{
							{ID: "vsphere.connection", Title: "Connection to vcenter.example.com", Status: setup.Pass, Detail: "VM mt01 on esx1"},
							{ID: "vm.enableuuid", Title: "disk.EnableUUID", Status: setup.Fail, Detail: "not set: the guest sees no stable SCSI ids",
								Fix: "power off mt01, then: mtconsole vsphere enable-uuid --vm mt01, power on"},
							{ID: "vm.snapshots", Title: "No snapshots", Status: setup.Pass, Detail: "none"},
						}, nil
					}
				}
				m := fx.model(t, sz.w, sz.h)
				if c.drive != nil {
					c.drive(t, m, fx)
				}
				golden.RequireEqual(t, suText(t, m, fx.root))
			})
		}
	}
}

// waitJob lets a job started by keys run to its end, outside a program.
func waitJob(t *testing.T, m *SetupModel) {
	t.Helper()
	j := m.job
	if j == nil {
		t.Fatal("no job started")
	}
	deadline := time.After(10 * time.Second)
	for j.running {
		select {
		case msg := <-j.ch:
			_, cmd := m.Update(msg)
			if _, done := msg.(suJobDoneMsg); done {
				settle(t, m, cmd)
			}
		case <-deadline:
			t.Fatal("the job did not end")
		}
	}
}

func TestSetupSmallTerminal(t *testing.T) {
	fx := newSetupFx(t, "vmware-good", nil)
	m := fx.model(t, 70, 20)
	if s := ansi.Strip(m.View().Content); !strings.Contains(s, "need 80x24, have 70x20") || ansi.StringWidth(s) > 70 {
		t.Errorf("%q", s)
	}
}

// TestSetupAnswersSameAsInteractive: the wizard driven by an answers
// file reaches the same answers and the same plan as an admin pressing
// the keys of each step from the defaults.
func TestSetupAnswersSameAsInteractive(t *testing.T) {
	a, err := setup.ParseAnswers("a.yaml", []byte("version: 1\nrole: mt\nprerequisites:\n  install_packages: true\n"+
		"disks:\n  retention: /srv/retention\ncustom_changes:\n  apply: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	fromFile := newSetupFx(t, "vmware-good", &a)
	mf := fromFile.model(t, 80, 24)
	suPress(t, mf, "enter", "enter", "enter", "enter", "enter", "enter")

	typed := newSetupFx(t, "vmware-good", nil)
	mi := typed.model(t, 80, 24)
	suPress(t, mi, "2", "1", "enter", "i", "enter", "e", "ctrl+u")
	mi.Update(tea.PasteMsg{Content: "/srv/retention\n"})
	suPress(t, mi, "enter", "enter", "t", "enter", "enter", "enter")

	if mf.step != suSummary || mi.step != suSummary {
		t.Fatalf("steps %d and %d, want the summary", mf.step, mi.step)
	}
	ya, _ := mf.Answers().Marshal()
	yi, _ := mi.Answers().Marshal()
	if !bytes.Equal(ya, yi) {
		t.Errorf("answers differ:\nfile:\n%s\ntyped:\n%s", ya, yi)
	}
	norm := func(fx *suFx, ls []string) []string {
		out := make([]string, len(ls))
		for i, l := range ls {
			out[i] = strings.ReplaceAll(l, fx.root, suRootShown)
		}
		return out
	}
	pf, pi := norm(fromFile, mf.PlanLines()), norm(typed, mi.PlanLines())
	if len(pf) == 0 || !slices.Equal(pf, pi) {
		t.Errorf("plans differ:\nfile:\n%s\ntyped:\n%s", strings.Join(pf, "\n"), strings.Join(pi, "\n"))
	}
	for _, want := range []string{"run    fake-install lsscsi kpartx", "custom create /etc/multipath.conf", "mkdir  /srv/retention/mtconsole"} {
		if !slices.ContainsFunc(pf, func(l string) bool { return strings.HasPrefix(l, want) }) {
			t.Errorf("plan lacks %q:\n%s", want, strings.Join(pf, "\n"))
		}
	}
}

// startSetupFlow runs the wizard in a real program; wait waits for a
// text on the screen as last drawn.
func startSetupFlow(t *testing.T, fx *suFx) (*teatest.TestModel, func(string)) {
	t.Helper()
	m := NewSetup(t.Context(), fx.o)
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(100, 30),
		teatest.WithProgramOptions(tea.WithColorProfile(colorprofile.Ascii)))
	go io.Copy(io.Discard, tm.Output())
	wait := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(m.Screen(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q on screen after 10s; the screen:\n%s", what, m.Screen())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	wait(" of 7 · ")
	return tm, wait
}

func finalSetup(t *testing.T, tm *teatest.TestModel) *SetupModel {
	t.Helper()
	tm.Send(keyMsg("q"))
	return tm.FinalModel(t, teatest.WithFinalTimeout(5*time.Second)).(*SetupModel)
}

// TestFlowSetupWalk walks every step to the summary and back.
func TestFlowSetupWalk(t *testing.T) {
	a := mtAnswers(t)
	fx := newSetupFx(t, "vmware-good", &a)
	tm, wait := startSetupFlow(t, fx)
	for i, title := range []string{"Prerequisites", "Disks", "Custom changes", "Configuration server", "vSphere (optional)", "Summary"} {
		tm.Send(keyMsg("enter"))
		wait(fmt.Sprintf("Step %d of 7 · %s", i+2, title))
	}
	wait("These 13 changes")
	tm.Send(keyMsg("esc"))
	wait("Step 6 of 7")
	tm.Send(keyMsg("n"))
	wait("Step 7 of 7")
	m := finalSetup(t, tm)
	if m.step != suSummary || m.review == nil || len(m.review.refusals) != 0 {
		t.Errorf("step %d, review %+v", m.step, m.review)
	}
}

// TestFlowSetupFixPackages: f on the prerequisites installs the missing
// packages through the package manager, its output streams on screen,
// and the checks run again.
func TestFlowSetupFixPackages(t *testing.T) {
	fx := newSetupFx(t, "vmware-good", nil)
	fx.pm.delay = 100 * time.Millisecond
	tm, wait := startSetupFlow(t, fx)
	tm.Send(keyMsg("enter"))
	wait("Missing packages: lsscsi kpartx")
	tm.Send(keyMsg("f"))
	wait("$ fake-install lsscsi kpartx")
	wait("Reading package lists")
	wait("Setting up kpartx")
	wait("Installing lsscsi kpartx · ✓ done")
	wait("9.9-fake")
	m := finalSetup(t, tm)
	if len(fx.pm.asked) != 1 || !slices.Equal(fx.pm.asked[0], []string{"lsscsi", "kpartx"}) {
		t.Errorf("asked %v", fx.pm.asked)
	}
	if miss := m.missingPackages(); len(miss) != 0 {
		t.Errorf("still missing after the install: %v", miss)
	}
	log, _ := os.ReadFile(filepath.Join(fx.root, SetupLog))
	if !bytes.Contains(log, []byte("Setting up lsscsi")) || !bytes.Contains(log, []byte("== done")) {
		t.Errorf("setup log:\n%s", log)
	}
}

// TestFlowSetupFixCancel: x cancels an install that hangs.
func TestFlowSetupFixCancel(t *testing.T) {
	fx := newSetupFx(t, "vmware-good", nil)
	fx.pm.block = true
	tm, wait := startSetupFlow(t, fx)
	tm.Send(keyMsg("enter"))
	wait("Missing packages")
	tm.Send(keyMsg("f"))
	wait("Setting up kpartx")
	wait("x cancels")
	tm.Send(keyMsg("x"))
	wait("cancelled")
	wait("✗ failed") // the job's end, then the checks run again
	wait("Missing packages: lsscsi kpartx")
	m := finalSetup(t, tm)
	if m.job == nil || m.job.running || m.job.err == nil {
		t.Errorf("job %+v", m.job)
	}
	if miss := m.missingPackages(); len(miss) != 2 {
		t.Errorf("missing %v, want lsscsi and kpartx still", miss)
	}
}

// TestFlowSetupCustomChanges: a shows the review, y applies: the files
// appear under the root; v and y put them back.
func TestFlowSetupCustomChanges(t *testing.T) {
	fx := newSetupFx(t, "vmware-good", nil)
	tm, wait := startSetupFlow(t, fx)
	tm.Send(keyMsg("enter"))
	tm.Send(keyMsg("enter"))
	tm.Send(keyMsg("enter"))
	wait("Step 4 of 7")
	wait("✗ no")
	tm.Send(keyMsg("a"))
	wait("Review: apply the custom changes")
	wait("find_multipaths no")
	if _, err := os.Stat(filepath.Join(fx.root, "etc/multipath.conf")); err == nil {
		t.Fatal("the review changed a file")
	}
	tm.Send(keyMsg("y"))
	wait("changed /etc/multipath.conf")
	wait("Applying the custom changes · ✓ done")
	wait("REBOOT IS REQUIRED")
	wait("✓ yes  marker")
	wait("! reboot needed")
	for _, f := range []string{"etc/multipath.conf", "etc/lvm/lvm.conf", "etc/.appliedmtcustomchanges"} {
		if _, err := os.Stat(filepath.Join(fx.root, f)); err != nil {
			t.Errorf("after apply: %v", err)
		}
	}
	tm.Send(keyMsg("v"))
	wait("Revert the custom changes?")
	tm.Send(keyMsg("y"))
	wait("restored /etc/multipath.conf")
	wait("Reverting the custom changes · ✓ done") // q waits for no running action
	m := finalSetup(t, tm)
	if _, err := os.Stat(filepath.Join(fx.root, "etc/multipath.conf")); err == nil {
		t.Error("multipath.conf left after the revert")
	}
	if len(m.preview) == 0 {
		t.Error("after the revert the changes show as applied")
	}
}

// TestFlowSetupResume: a session that ends (q, or a dropped SSH
// session) leaves the step and answers in the state file, 0600; the next
// opens there.
func TestFlowSetupResume(t *testing.T) {
	fx := newSetupFx(t, "vmware-good", nil)
	tm, wait := startSetupFlow(t, fx)
	tm.Send(keyMsg("enter"))
	tm.Send(keyMsg("i"))
	tm.Send(keyMsg("enter"))
	wait("Step 3 of 7 · Disks")
	tm.Send(keyMsg("e"))
	tm.Send(keyMsg("ctrl+u"))
	tm.Send(tea.PasteMsg{Content: "/data/retention"})
	tm.Send(keyMsg("enter"))
	wait("/data/retention (e edits)")
	finalSetup(t, tm)

	st := filepath.Join(fx.root, StateFile)
	fi, err := os.Stat(st)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %o", fi.Mode().Perm())
	}
	if di, _ := os.Stat(filepath.Dir(st)); di.Mode().Perm() != 0o700 {
		t.Errorf("state dir mode %o", di.Mode().Perm())
	}

	tm, wait = startSetupFlow(t, fx)
	wait("Step 3 of 7 · Disks")
	wait("resumed at Disks")
	m := finalSetup(t, tm)
	if m.a.Disks.Retention != "/data/retention" || !m.a.Prerequisites.InstallPackages {
		t.Errorf("answers after resume: %+v", m.a)
	}

	// A session cut during an action says so when it reopens.
	b, _ := os.ReadFile(st)
	os.WriteFile(st, bytes.Replace(b, []byte(`"saved"`), []byte(`"running": "packages", "saved"`), 1), 0o600)
	m2 := fx.model(t, 80, 24)
	if !strings.Contains(m2.note, "ended while the package install was running") || m2.step != suDisks {
		t.Errorf("note %q step %d", m2.note, m2.step)
	}
	// N starts afresh from the answers given.
	suPress(t, m2, "N")
	if m2.step != suRole || m2.a.Disks.Retention != setup.DefaultRetention {
		t.Errorf("after N: step %d, retention %s", m2.step, m2.a.Disks.Retention)
	}
}

// TestSetupInstallOnTempRoot: the summary's apply runs the plan on the
// root: packages through the package manager, the custom changes, the
// files; the state file is gone after.
func TestSetupInstallOnTempRoot(t *testing.T) {
	a := mtAnswers(t)
	fx := newSetupFx(t, "vmware-good", &a)
	m := fx.model(t, 100, 30)
	suPress(t, m, "enter", "enter", "enter", "enter", "enter", "enter", "a", "y")
	waitJob(t, m)
	if m.job.err != nil {
		t.Fatalf("install: %v\n%s", m.job.err, strings.Join(m.job.lines, "\n"))
	}
	for _, f := range []string{setup.RecordPath, setup.UsedPath, setup.UnitPath, "/usr/local/bin/mtconsole", "/etc/multipath.conf"} {
		if _, err := os.Stat(filepath.Join(fx.root, f)); err != nil {
			t.Errorf("after the install: %v", err)
		}
	}
	if len(fx.pm.asked) != 1 {
		t.Errorf("package installs: %v", fx.pm.asked)
	}
	if _, err := os.Stat(filepath.Join(fx.root, StateFile)); err == nil {
		t.Error("the state file is left after the install")
	}
	used, err := setup.LoadAnswers(filepath.Join(fx.root, setup.UsedPath))
	if err != nil || used.Disks.Retention != a.Disks.Retention {
		t.Errorf("answers used: %v %+v", err, used)
	}
	if s := suText(t, m, fx.root); !strings.Contains(s, "✓ installed") || !strings.Contains(m.review.what, "upgrade of the mt install") {
		t.Errorf("screen:\n%s", s)
	}
}

// TestSetupConfigServerFromHostConfig: a registration in the host config
// is shown, and fills the answers' configuration server.
func TestSetupConfigServerFromHostConfig(t *testing.T) {
	fx := newSetupFx(t, "vmware-good", nil)
	paths := hostconfig.PathsFor(filepath.Join(fx.root, hostconfig.DefaultConfigPath))
	c := hostconfig.Default()
	c.CSHost, c.HostID = "cs.example.com", hostconfig.NewHostID()
	if err := hostconfig.Save(paths.Config, c); err != nil {
		t.Fatal(err)
	}
	if err := hostconfig.SavePassphrase(paths.Passphrase, "0123456789abcdef0123"); err != nil {
		t.Fatal(err)
	}
	m := fx.model(t, 80, 24)
	suPress(t, m, "enter", "enter", "enter", "enter")
	s := suText(t, m, fx.root)
	if !strings.Contains(s, "✓ yes, host id") || !m.registered() || !strings.Contains(s, "cs.example.com:443") || m.a.ConfigServer.Address != "cs.example.com" {
		t.Errorf("screen:\n%s", s)
	}
	// o opens the host config screen; its quit comes back here.
	suPress(t, m, "o")
	if m.hcm == nil || !strings.Contains(ansi.Strip(m.View().Content), "Host Config Interface") {
		t.Fatal("o did not open the host config screen")
	}
	_, cmd := m.Update(keyMsg("q"))
	settle(t, m, cmd)
	if m.hcm != nil || m.step != suCS {
		t.Errorf("after q in the host config screen: open %v, step %d", m.hcm != nil, m.step)
	}
}

// TestSetupDryRunChangesNothing walks a whole dry run, pressing every key
// that changes something (f, a y, v y, d, o, the install's a y, N), and
// reads the host before and after: the package manager is never asked
// to install, the root is the same file for file, and the state file
// and the log go nowhere (their paths are in a directory that stays
// empty, or, by default, below the root).
func TestSetupDryRunChangesNothing(t *testing.T) {
	for _, injected := range []bool{true, false} {
		t.Run(fmt.Sprintf("state_and_log_injected=%v", injected), func(t *testing.T) {
			a := mtAnswers(t)
			fx := newSetupFx(t, "vmware-good", &a)
			fx.o.DryRun = true
			varDir := t.TempDir()
			if injected {
				fx.o.StatePath = filepath.Join(varDir, "lib", "setup-state.json")
				fx.o.LogPath = filepath.Join(varDir, "log", "setup.log")
			}
			before := testutil.Tree(t, fx.root)
			m := fx.model(t, 100, 30)

			suPress(t, m, "enter")
			if miss := m.missingPackages(); len(miss) != 2 {
				t.Fatalf("missing %v, want lsscsi and kpartx", miss)
			}
			suPress(t, m, "f")
			waitJob(t, m)
			wantLines(t, m, "would run: fake-install lsscsi kpartx", "Dry run: nothing changed.")

			suPress(t, m, "enter", "enter")
			if m.step != suCustom || len(m.preview) == 0 {
				t.Fatalf("step %d, preview %d", m.step, len(m.preview))
			}
			suPress(t, m, "a", "y")
			waitJob(t, m)
			wantLines(t, m, "would write /etc/multipath.conf", "would write /etc/lvm/lvm.conf", "would write "+setup.Marker)
			suPress(t, m, "v", "y")
			waitJob(t, m)

			suPress(t, m, "enter", "o")
			if m.step != suCS || m.hcm != nil || !strings.Contains(m.note, "dry run") {
				t.Errorf("o in a dry run: step %d, screen open %v, note %q", m.step, m.hcm != nil, m.note)
			}
			suPress(t, m, "enter", "enter", "d")
			if m.step != suSummary || !m.dry() {
				t.Fatalf("d on the summary: step %d, dry run %v", m.step, m.dry())
			}
			suPress(t, m, "a", "y")
			waitJob(t, m)
			if m.job.err != nil {
				t.Fatalf("dry run: %v", m.job.err)
			}
			wantLines(t, m, "  would run: fake-install", "would write /etc/mtconsole/install.yaml", "would write /usr/local/bin/mtconsole", "Dry run: nothing changed.")
			if s := suText(t, m, fx.root); !strings.Contains(s, "DRY RUN") || !strings.Contains(s, "✓ dry run shown") {
				t.Errorf("screen:\n%s", s)
			}
			suPress(t, m, "N", "q")

			if len(fx.pm.asked) != 0 {
				t.Errorf("the package manager was asked to install %v", fx.pm.asked)
			}
			testutil.SameTree(t, fx.root, before)
			if es, _ := os.ReadDir(varDir); len(es) != 0 {
				t.Errorf("the dry run wrote into the state and log directory: %v", testutil.Tree(t, varDir))
			}
		})
	}
}

// wantLines fails unless the last job's output has a line containing
// each of want.
func wantLines(t *testing.T, m *SetupModel, want ...string) {
	t.Helper()
	all := strings.Join(m.job.lines, "\n")
	for _, w := range want {
		if !strings.Contains(all, w) {
			t.Errorf("%s: no %q in its output:\n%s", m.job.title, w, all)
		}
	}
}

// p on the summary says how to protect a machine, once a real install on
// a master target is done: before it, and in a dry run, it is refused
// with the reason.
func TestSetupProtectNow(t *testing.T) {
	a := mtAnswers(t)
	fx := newSetupFx(t, "vmware-good", &a)
	m := fx.model(t, 80, 24)
	suPress(t, m, "enter", "enter", "enter", "enter", "enter", "enter", "p")
	if m.protectHint || !strings.Contains(m.note, "install first") {
		t.Fatalf("p before the install: hint %v, note %q", m.protectHint, m.note)
	}
	suPress(t, m, "a", "y")
	waitJob(t, m)
	if m.job.err != nil {
		t.Fatalf("install: %v", m.job.err)
	}
	if !strings.Contains(m.note, "p: how to protect a machine") {
		t.Errorf("note after the install %q", m.note)
	}
	suPress(t, m, "p")
	s := suText(t, m, fx.root)
	for _, want := range []string{"press n on the dashboard", "mtconsole protect --ps HOST:9443"} {
		if !strings.Contains(s, want) {
			t.Fatalf("no %q after p:\n%s", want, s)
		}
	}
	suPress(t, m, "p")
	if s := suText(t, m, fx.root); strings.Contains(s, "press n on the dashboard") {
		t.Fatalf("p did not hide the hint:\n%s", s)
	}

	dry := newSetupFx(t, "vmware-good", &a)
	dry.o.DryRun = true
	d := dry.model(t, 80, 24)
	suPress(t, d, "enter", "enter", "enter", "enter", "enter", "enter", "a", "y")
	waitJob(t, d)
	suPress(t, d, "p")
	if d.protectHint || !strings.Contains(d.note, "a dry run installed nothing") {
		t.Fatalf("p after a dry run: hint %v, note %q", d.protectHint, d.note)
	}
}

// With a Protector, p on the summary after an install opens the Protect
// screen (the dashboard's n: the same steps, the same Protector); esc on
// its first step comes back to the summary, and so does enter once the
// new pairs started, with the screen's note.
func TestSetupProtectNowOpensProtect(t *testing.T) {
	a := mtAnswers(t)
	fx := newSetupFx(t, "vmware-good", &a)
	fp := &fakeProtector{}
	fx.o.Protector = fp
	m := fx.model(t, 80, 24)
	suPress(t, m, "enter", "enter", "enter", "enter", "enter", "enter", "p")
	if m.prot != nil || !strings.Contains(m.note, "install first") {
		t.Fatalf("p before the install: open %v, note %q", m.prot != nil, m.note)
	}
	suPress(t, m, "a", "y")
	waitJob(t, m)
	if !strings.Contains(m.note, "p: protect a machine now") {
		t.Errorf("note after the install %q", m.note)
	}
	suPress(t, m, "p")
	if s := suText(t, m, fx.root); m.prot == nil || !strings.Contains(s, "Protect › 1 Process server") || !strings.Contains(s, "ps01.example.com:9443") {
		t.Fatalf("p did not open the Protect screen:\n%s", s)
	}
	suPress(t, m, "esc")
	if s := suText(t, m, fx.root); m.prot != nil || m.step != suSummary || !strings.Contains(s, "Summary: what the install changes") {
		t.Fatalf("esc on step 1: open %v, step %d:\n%s", m.prot != nil, m.step, s)
	}
	// the whole way: connect, choose sda, its suggested target, the
	// policy as it is, apply; enter on the progress comes back
	suPress(t, m, "p", "enter", "space", "enter", "enter", "enter", "enter")
	if m.prot == nil || m.prot.prot.step != protProgress || fp.applied != 1 {
		t.Fatalf("not applied: open %v, applied %d\n%s", m.prot != nil, fp.applied, suText(t, m, fx.root))
	}
	suPress(t, m, "enter")
	if s := suText(t, m, fx.root); m.prot != nil || m.step != suSummary || !strings.Contains(m.note, "protected sda") {
		t.Fatalf("enter on the progress: open %v, note %q:\n%s", m.prot != nil, m.note, s)
	}
}
