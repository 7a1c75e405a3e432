package tui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/failback"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/setup"
)

// fakeVSphere records the forms, plans and runs the console asks for.
type fakeVSphere struct {
	mu      sync.Mutex
	plans   []failback.Form
	creates []failback.Form
	disks   [][]string
	checks  []setup.Check
	fail    error // Plan's
	pending []failback.Pending
	resumes []string
	undos   []string
	runFail error         // Resume's and Undo's
	release chan struct{} // when set, Resume and Undo wait for it after their first two steps
	// SourceForm's: the firmware, guest id and controller the disks show
	// (empty: what DefaultForm says) and the notes; the calls' names and
	// disks.
	firmware, guestID, controller string
	notes                         []string
	sources                       []string
}

func (f *fakeVSphere) SourceForm(name string, disks []string) (failback.Form, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sources = append(f.sources, name+" "+strings.Join(disks, ","))
	fm := failback.DefaultForm(name, len(disks))
	if f.firmware != "" {
		fm.Firmware, fm.GuestID, fm.Controller = f.firmware, f.guestID, f.controller
	}
	return fm, slices.Clone(f.notes)
}

func (f *fakeVSphere) Plan(_ context.Context, disks []string, fm failback.Form) (string, []setup.Check, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fm.NICs = slices.Clone(fm.NICs)
	f.plans = append(f.plans, fm)
	f.disks = append(f.disks, disks)
	name := fm.Name
	text := "1. detach " + disks[0] + " (Hard disk 2) from mt-lab-01\n   undo: attach it again\n" +
		"2. create VM " + name + " on esx-02, [LocalDS_0] " + name + "/" + name + ".vmx\n   undo: destroy it, keeping the disks\n" +
		"3. attach the disk to " + name + "\n4. power on " + name
	return text, f.checks, f.fail
}

func (f *fakeVSphere) Create(_ context.Context, disks []string, fm failback.Form, progress func(string)) (string, error) {
	f.mu.Lock()
	fm.NICs = slices.Clone(fm.NICs)
	f.creates = append(f.creates, fm)
	f.mu.Unlock()
	for _, s := range []string{"done        detach", "done        create", "done        attach", "done        power on"} {
		progress(s + " " + fm.Name)
	}
	return "Failback VM " + fm.Name + " created with 1 disk(s) and powered on.", nil
}

func (f *fakeVSphere) Unfinished() ([]failback.Pending, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.pending), nil
}

func (f *fakeVSphere) again(file string, calls *[]string, progress func(string)) (string, error) {
	f.mu.Lock()
	*calls = append(*calls, file)
	release, fail := f.release, f.runFail
	f.mu.Unlock()
	progress("done        create VM web01")
	progress("running     attach 2 disk(s) to web01")
	if release != nil {
		<-release
	}
	if fail != nil {
		return "", fail
	}
	f.mu.Lock()
	f.pending = slices.DeleteFunc(slices.Clone(f.pending), func(p failback.Pending) bool { return p.File == file })
	f.mu.Unlock()
	progress("done        attach 2 disk(s) to web01")
	return "Failback VM web01 created with 2 disk(s) on [LocalDS_0] web01/web01.vmx and powered on.", nil
}

func (f *fakeVSphere) Resume(_ context.Context, file string, progress func(string)) (string, error) {
	return f.again(file, &f.resumes, progress)
}

func (f *fakeVSphere) Undo(_ context.Context, file string, progress func(string)) (string, error) {
	return f.again(file, &f.undos, progress)
}

func (f *fakeVSphere) calls() (plans, creates []failback.Form) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.plans), slices.Clone(f.creates)
}

var vsChecksOK = []setup.Check{
	{ID: "vm.name", Group: "vsphere", Title: "Failback VM name", Status: setup.Pass, Detail: "p1 is free in DC0"},
	{ID: "mt.snapshots", Group: "vsphere", Title: "Master target snapshots", Status: setup.Pass, Detail: "none"},
	{ID: "ds.space", Group: "vsphere", Title: "Datastore LocalDS_0", Status: setup.Warn, Detail: "12 GiB free after the swap file"},
}

var vsPending = []failback.Pending{
	{File: "/var/lib/mtconsole/failback/web01-5f0c1a2b3c4d5e6f.json", Name: "web01", MT: "mt-lab-01", Status: "running", Disks: 2,
		Step: "attach running"},
	{File: "/var/lib/mtconsole/failback/db01-0a1b2c3d4e5f6071.json", Name: "db01", MT: "mt-lab-01", Status: "undo-failed", Disks: 3,
		Step: "create undo-failed: the VM db01 is powered on"},
}

// rolledBack is the wizard on the result of p1's finished rollback.
func rolledBack(m *Model) {
	wizardTo(m, stepConfirm, "")
	typeText(m, "p1")
	m.Update(press(m, "enter")())
	m.Update(jobMsg{id: "j1", job: finishedJob(api.RecoverRequest{Mode: "rollback", Point: "latest-tag", Pairs: []string{"p1"}})})
}

// toLast moves the form's cursor to its last field (onto-vm).
func toLast(m *Model) {
	for m.fb.cur < len(m.fb.fields)-1 {
		press(m, "tab")
	}
}

// planned is the form planned as prefilled: enter on the last field.
func planned(m *Model) {
	rolledBack(m)
	press(m, "v")
	toLast(m)
	pump(m, press(m, "enter"))
}

// pump runs a command's message through the model, and the command that
// gives, until one gives no message, or until stop says so.
func pump(m *Model, cmd tea.Cmd, stop ...func(tea.Msg) bool) {
	for cmd != nil {
		msg := cmd()
		if b, ok := msg.(tea.BatchMsg); ok {
			for _, c := range b {
				pump(m, c, stop...)
			}
			return
		}
		if msg == nil {
			return
		}
		_, cmd = m.Update(msg)
		if len(stop) > 0 && stop[0](msg) {
			return
		}
	}
}

// listed is the dashboard with the unfinished runs read.
func listed(m *Model) {
	pump(m, m.fbScan())
}

func TestGoldenVSphere(t *testing.T) {
	afterTwo := func() func(tea.Msg) bool {
		n := 0
		return func(msg tea.Msg) bool {
			if _, ok := msg.(fbProgressMsg); ok {
				n++
			}
			return n == 2
		}
	}
	for _, tc := range []struct {
		name  string
		fv    *fakeVSphere
		after func(m *Model)
	}{
		{name: "Offer", after: func(m *Model) { rolledBack(m) }},
		{name: "Form", after: func(m *Model) { rolledBack(m); press(m, "v") }},
		{name: "FormProbed", fv: probedVSphere(), after: func(m *Model) { rolledBack(m); pump(m, press(m, "v")) }},
		{name: "FormNICs", after: func(m *Model) {
			rolledBack(m)
			press(m, "v")
			for m.fb.fields[m.fb.cur].Key != "nic1-network" {
				press(m, "tab")
			}
			typeText(m, "VM Network")
			press(m, "tab", "right", "tab")
			typeText(m, "00:50:56:0a:0b:0c")
			press(m, "tab")
		}},
		{name: "FormUnfinished", fv: &fakeVSphere{pending: vsPending}, after: func(m *Model) {
			listed(m)
			rolledBack(m)
			press(m, "v")
		}},
		{name: "Form20Disks", after: func(m *Model) {
			rolledBack(m)
			press(m, "v")
			// A machine of 20 disks: PVSCSI on two buses.
			m.fb.disks = nil
			for i := range 20 {
				m.fb.disks = append(m.fb.disks, fbDisk{path: fmt.Sprintf("/dev/disk/by-id/scsi-mt-web01-%02d", i), bytes: int64(i+1) << 30})
			}
			m.fb.form = failback.DefaultForm("web01", 20)
			m.fb.rebuild()
			press(m, "tab")
		}},
		{name: "OntoVM", after: func(m *Model) {
			rolledBack(m)
			press(m, "v")
			toLast(m)
			typeText(m, "web01-old")
			press(m, "shift+tab")
		}},
		{name: "FieldError", after: func(m *Model) {
			rolledBack(m)
			press(m, "v", "tab", "tab", "tab", "ctrl+u")
			typeText(m, "100")
			press(m, "tab")
		}},
		{name: "Plan", fv: &fakeVSphere{checks: vsChecksOK}, after: planned},
		{name: "PlanFailed", fv: &fakeVSphere{checks: append(slices.Clone(vsChecksOK[:1]), setup.Check{ID: "vm.path", Title: "Failback VM path",
			Status: setup.Fail, Detail: "[LocalDS_0] p1/p1.vmx exists", Fix: "choose another name"})}, after: planned},
		{name: "Unfinished", fv: &fakeVSphere{pending: vsPending}, after: listed},
		{name: "UnfinishedList", fv: &fakeVSphere{pending: vsPending}, after: func(m *Model) { listed(m); pump(m, press(m, "f")) }},
		{name: "UndoConfirm", fv: &fakeVSphere{pending: vsPending}, after: func(m *Model) {
			listed(m)
			pump(m, press(m, "f"))
			press(m, "u")
		}},
		{name: "ResumeRunning", fv: &fakeVSphere{pending: vsPending, release: make(chan struct{})}, after: func(m *Model) {
			listed(m)
			pump(m, press(m, "f"))
			pump(m, press(m, "r"), afterTwo())
		}},
		{name: "ResumeDone", fv: &fakeVSphere{pending: vsPending}, after: func(m *Model) {
			listed(m)
			pump(m, press(m, "f"))
			pump(m, press(m, "r"))
		}},
		{name: "ResumeFailed", fv: &fakeVSphere{pending: vsPending, runFail: errors.New(
			"attach disk [LocalDS_0] mt-lab-01/mt-lab-01_1.vmdk to web01: InvalidDeviceSpec; undone: the disks are back on mt-lab-01")},
			after: func(m *Model) {
				listed(m)
				pump(m, press(m, "f"))
				pump(m, press(m, "r"))
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fv := tc.fv
			if fv == nil {
				fv = &fakeVSphere{}
			}
			m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
			tc.after(m)
			golden.RequireEqual(t, screenText(t, m))
			if fv.release != nil {
				close(fv.release)
			}
		})
	}
}

// TestVSphereFormValues: the keys that edit each field reach the
// backend as the structured form, and the disks with them.
func TestVSphereFormValues(t *testing.T) {
	fv := &fakeVSphere{checks: vsChecksOK}
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	rolledBack(m)
	press(m, "v")
	set := func(key, text string) {
		t.Helper()
		for m.fb.fields[m.fb.cur].Key != key {
			if press(m, "tab"); m.fb.err != "" {
				t.Fatalf("leaving %s: %s", m.fb.fields[m.fb.cur].Key, m.fb.err)
			}
		}
		press(m, "ctrl+u")
		typeText(m, text)
	}
	choose := func(key string, times int) {
		t.Helper()
		for m.fb.fields[m.fb.cur].Key != key {
			press(m, "tab")
		}
		for range times {
			press(m, "space")
		}
	}
	set("name", "web01")
	set("cpus", "8")
	set("cores-per-socket", "4")
	set("memory-mb", "16384")
	set("guest-id", "rhel9_64Guest")
	choose("firmware", 1)
	choose("secure-boot", 1)
	set("hw-version", "19")
	choose("controller", 2)
	set("nic1-network", "VM Network")
	choose("nic1-adapter", 1)
	set("nic1-mac", "00:50:56:AA:BB:CC")
	choose("nic1-connected", 1)
	set("nic2-network", "Backup Net")
	set("pool", "/DC0/host/DC0_C0/Resources")
	set("folder", "/DC0/vm")
	set("host", "DC0_C0_H0")
	choose("power-on", 1)
	set("onto-vm", "")
	// Up and back down keeps every value.
	press(m, "shift+tab", "up", "down", "tab")
	if m.fb.fields[m.fb.cur].Key != "onto-vm" || m.fb.err != "" {
		t.Fatalf("at %s, error %q", m.fb.fields[m.fb.cur].Key, m.fb.err)
	}
	pump(m, press(m, "enter"))
	plans, _ := fv.calls()
	want := failback.Form{Name: "web01", CPUs: 8, CoresPerSocket: 4, MemoryMB: 16384, GuestID: "rhel9_64Guest", Firmware: "efi", SecureBoot: true,
		HWVersion: 19, Controller: "pvscsi",
		NICs: []vsphere.NIC{{Network: "VM Network", Adapter: "e1000e", MAC: "00:50:56:AA:BB:CC", Disconnected: true},
			{Network: "Backup Net", Adapter: "vmxnet3"}},
		Pool: "/DC0/host/DC0_C0/Resources", Folder: "/DC0/vm", Host: "DC0_C0_H0", NoPowerOn: true}
	if len(plans) != 1 || !reflect.DeepEqual(plans[0], want) {
		t.Fatalf("planned %+v\nwant %+v", plans, want)
	}
	if !slices.Equal(fv.disks[0], []string{"/dev/disk/by-id/scsi-mt-p1"}) {
		t.Fatalf("disks %q", fv.disks[0])
	}
	s := string(screenText(t, m))
	for _, w := range []string{"8 CPU (4 per socket), 16384 MB, rhel9_64Guest, efi + secure boot, vmx-19, pvscsi", "VM Network e1000e", "left powered off", "Type web01"} {
		if !strings.Contains(strings.Join(strings.Fields(s), " "), w) {
			t.Errorf("the plan screen lacks %q:\n%s", w, s)
		}
	}
	// esc: back in the form, as it was.
	press(m, "esc")
	if m.fb.step != fbForm || m.fb.form.CPUs != 8 || len(m.fb.form.NICs) != 2 {
		t.Fatalf("back: step %d form %+v", m.fb.step, m.fb.form)
	}
}

// TestVSphereFieldErrors: a wrong value keeps the cursor on its field
// with the error naming it and what it takes; nothing is planned. A rule
// broken between fields shows on the whole form's check.
func TestVSphereFieldErrors(t *testing.T) {
	fv := &fakeVSphere{checks: vsChecksOK}
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	rolledBack(m)
	press(m, "v", "tab", "ctrl+u")
	typeText(m, "two")
	press(m, "tab")
	if k := m.fb.fields[m.fb.cur].Key; k != "cpus" || !strings.Contains(m.fb.err, `CPUs: "two" is not a whole number: 1 to 768`) {
		t.Fatalf("at %s, error %q", k, m.fb.err)
	}
	if s := string(screenText(t, m)); !strings.Contains(s, "✗ CPUs: \"two\"") {
		t.Fatalf("no error on screen:\n%s", s)
	}
	press(m, "ctrl+u")
	typeText(m, "3")
	press(m, "tab") // cores: one per socket, fine with 3
	if m.fb.err != "" || m.fb.fields[m.fb.cur].Key != "cores-per-socket" {
		t.Fatalf("3 CPUs refused: %q", m.fb.err)
	}
	typeText(m, "2")
	press(m, "tab")
	if !strings.Contains(m.fb.err, "Cores per socket: 2 does not divide CPUs 3") || m.fb.fields[m.fb.cur].Key != "cores-per-socket" {
		t.Fatalf("cores: %q at %s", m.fb.err, m.fb.fields[m.fb.cur].Key)
	}
	// Secure boot on BIOS: refused as it is left.
	press(m, "ctrl+u", "tab", "tab", "tab", "tab", "space", "tab")
	if !strings.Contains(m.fb.err, "Secure boot: needs Firmware efi") {
		t.Fatalf("secure boot on bios: %q", m.fb.err)
	}
	// A NIC's MAC.
	press(m, "space")
	for m.fb.fields[m.fb.cur].Key != "nic1-network" {
		press(m, "tab")
	}
	typeText(m, "VM Network")
	press(m, "tab", "tab")
	typeText(m, "00:50:56")
	press(m, "tab")
	if !strings.Contains(m.fb.err, "NIC 1 MAC: mac \"00:50:56\" is not a MAC address") {
		t.Fatalf("mac: %q", m.fb.err)
	}
	// esc leaves the form; nothing was planned.
	press(m, "esc")
	if m.screen != screenRecover {
		t.Fatalf("esc: screen %d", m.screen)
	}
	if plans, _ := fv.calls(); len(plans) != 0 {
		t.Fatalf("planned %+v", plans)
	}
}

// TestVSpherePlanFailedCheck: a failed check leaves no confirmation;
// enter is refused with the reason; nothing is created.
func TestVSpherePlanFailedCheck(t *testing.T) {
	fv := &fakeVSphere{checks: []setup.Check{{ID: "host.cpu", Title: "Host CPUs", Status: setup.Fail, Detail: "64 vCPUs on a 2-core host", Fix: "give fewer CPUs"}}}
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	planned(m)
	if m.focused() != nil {
		t.Fatal("a confirmation after a failed check")
	}
	press(m, "enter")
	if !m.noteErr || !strings.Contains(m.note, "a check failed") {
		t.Fatalf("enter: note %q", m.note)
	}
	if _, creates := fv.calls(); len(creates) != 0 {
		t.Fatal("created after a failed check")
	}
	// The plan's own failure: shown, however long, with the way back;
	// esc back to the form.
	fv.fail = errors.New("vSphere login refused: 10.0.0.5:443 refused user \"mt\"" + strings.Repeat("; disk-202-1 /dev/sdb [LocalDS_0] mt01/mt01_1.vmdk", 40))
	press(m, "esc")
	toLast(m)
	pump(m, press(m, "enter"))
	if s := string(screenText(t, m)); !strings.Contains(s, "login refused") || !strings.Contains(s, "esc: back to the form") {
		t.Fatalf("no error or no way back on screen:\n%s", s)
	}
	press(m, "esc")
	if m.fb.step != fbForm || m.screen != screenFailback {
		t.Fatalf("esc: step %d screen %d", m.fb.step, m.screen)
	}
}

// TestVSphereUnfinished: the dashboard says so; the list resumes one and
// undoes another after the typed name; a failing resume shows its error
// and keeps the run listed.
func TestVSphereUnfinished(t *testing.T) {
	fv := &fakeVSphere{pending: slices.Clone(vsPending)}
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	listed(m)
	if s := string(screenText(t, m)); !strings.Contains(s, "▲ 2 unfinished failback runs: f to resume or undo") {
		t.Fatalf("no notice:\n%s", s)
	}
	pump(m, press(m, "f"))
	// A failing resume.
	fv.runFail = errors.New("vSphere login refused")
	pump(m, press(m, "r"))
	if m.fb.step != fbDone || !m.fb.failed || !strings.Contains(string(screenText(t, m)), "✗ vSphere login refused") {
		t.Fatalf("failed resume: step %d failed %v\n%s", m.fb.step, m.fb.failed, screenText(t, m))
	}
	pump(m, press(m, "enter"))
	if m.fb.step != fbList || len(m.fb.pending) != 2 {
		t.Fatalf("after the failure: step %d, %d listed", m.fb.step, len(m.fb.pending))
	}
	// Resume web01.
	fv.runFail = nil
	pump(m, press(m, "r"))
	if m.fb.failed || !strings.Contains(m.fb.report, "powered on") || len(m.fb.progress) != 3 {
		t.Fatalf("resume: %q %q", m.fb.report, m.fb.progress)
	}
	pump(m, press(m, "enter"))
	if len(m.fb.pending) != 1 || m.fb.pending[0].Name != "db01" {
		t.Fatalf("listed after the resume: %+v", m.fb.pending)
	}
	// Undo db01: a wrong name changes nothing.
	press(m, "u")
	typeText(m, "web01")
	press(m, "enter")
	if !strings.Contains(m.fb.err, "type db01 exactly") || len(fv.undos) != 0 {
		t.Fatalf("wrong name: %q, undos %q", m.fb.err, fv.undos)
	}
	press(m, "ctrl+u")
	typeText(m, "db01")
	pump(m, press(m, "enter"))
	if !slices.Equal(fv.resumes, []string{vsPending[0].File, vsPending[0].File}) || !slices.Equal(fv.undos, []string{vsPending[1].File}) {
		t.Fatalf("resumes %q undos %q", fv.resumes, fv.undos)
	}
	pump(m, press(m, "enter"))
	if len(m.fb.pending) != 0 || !strings.Contains(string(screenText(t, m)), "No unfinished failback run") {
		t.Fatalf("after the undo:\n%s", screenText(t, m))
	}
	press(m, "esc")
	if m.screen != screenDashboard || strings.Contains(string(screenText(t, m)), "unfinished") {
		t.Fatalf("the dashboard still says so:\n%s", screenText(t, m))
	}
}

// TestVSphereScanError: plan files that cannot be read are said on the
// dashboard, with what to do when it is permissions.
func TestVSphereScanError(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: &fakeVSphere{}})
	m.Update(fbPendingMsg{err: fmt.Errorf("plan directory: %w", &fs.PathError{Op: "open", Path: "/var/lib/mtconsole/failback", Err: fs.ErrPermission})})
	s := strings.Join(strings.Fields(string(screenText(t, m))), " ")
	if !strings.Contains(s, "✗ failback plan files: run the console as root to see them: plan directory") {
		t.Fatalf("no error line:\n%s", screenText(t, m))
	}
}

// TestVSphereNotConfigured: no hook, no key; a line says how.
func TestVSphereNotConfigured(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	rolledBack(m)
	if cmd := press(m, "v"); cmd != nil || m.screen != screenRecover {
		t.Fatalf("v without vSphere: screen %d", m.screen)
	}
	s := string(screenText(t, m))
	if !strings.Contains(s, "vSphere is not configured") || strings.Contains(s, "v: create") {
		t.Fatalf("no how-to line, or a v key:\n%s", s)
	}
	// Read-only: no key either.
	m = newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: &fakeVSphere{}})
	rolledBack(m)
	m.o.ReadOnly = true
	if press(m, "v"); m.screen != screenRecover || strings.Contains(string(screenText(t, m)), "v: create") {
		t.Fatal("read-only offers the failback VM")
	}
}

func TestFlowVSphereCreate(t *testing.T) {
	fa, fv := &fakeActions{}, &fakeVSphere{checks: vsChecksOK}
	tm := startFlow(t, fa, Options{VSphere: fv})
	send(tm, "enter", "r", "enter", "enter", "j", "enter") // p1, latest tag, rollback
	waitAnswer(t, tm)
	send(tm, "enter")
	tm.Type("p1")
	send(tm, "enter")
	eventually(t, "the recovery", func() bool { return len(fa.snapshot().recs) == 1 })
	fa.mu.Lock()
	fa.job = finishedJob(fa.recs[0])
	fa.mu.Unlock()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("v: create the failback VM")) },
		teatest.WithDuration(waitLong))
	// The form: the name kept, 4 CPUs, EFI, then to the last field and
	// the dry run.
	send(tm, "v", "tab", "ctrl+u")
	tm.Type("4")
	send(tm, "tab", "tab", "tab", "tab", "space")
	for range 14 {
		send(tm, "tab")
	}
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Plan (a dry run")) }, teatest.WithDuration(waitLong))
	if _, creates := fv.calls(); len(creates) != 0 {
		t.Fatal("the dry run created the VM")
	}
	// A wrong confirmation changes nothing.
	tm.Type("p2")
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("type p1 exactly")) }, teatest.WithDuration(waitLong))
	send(tm, "ctrl+u")
	tm.Type("p1")
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("created with 1 disk(s) and powered on")) },
		teatest.WithDuration(waitLong))
	m := final(t, tm)
	plans, creates := fv.calls()
	want := failback.DefaultForm("p1", 1)
	want.CPUs, want.Firmware = 4, "efi"
	if len(plans) != 1 || len(creates) != 1 || !reflect.DeepEqual(plans[0], want) || !reflect.DeepEqual(creates[0], want) {
		t.Errorf("plans %+v creates %+v, want one each of %+v", plans, creates, want)
	}
	if m.fb.step != fbDone || len(m.fb.progress) != 4 || m.fb.failed {
		t.Errorf("step %d progress %q failed %v", m.fb.step, m.fb.progress, m.fb.failed)
	}
}

// TestFlowVSphereResume: in a console started with an unfinished run, f
// and r resume it through a real program, its steps
// and report drawn, and the dashboard's line goes.
func TestFlowVSphereResume(t *testing.T) {
	fv := &fakeVSphere{pending: slices.Clone(vsPending[:1])}
	// The dashboard's line is drawn with the first frames, which
	// startFlow reads; the goldens show it.
	tm := startFlow(t, &fakeActions{}, Options{VSphere: fv})
	send(tm, "f")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("web01-5f0c1a2b3c4d5e6f.json")) }, teatest.WithDuration(waitLong))
	send(tm, "r")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("and powered on.")) },
		teatest.WithDuration(waitLong))
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("No unfinished failback run")) }, teatest.WithDuration(waitLong))
	send(tm, "esc")
	m := final(t, tm)
	if !slices.Equal(fv.resumes, []string{vsPending[0].File}) || len(fv.undos) != 0 {
		t.Fatalf("resumes %q undos %q", fv.resumes, fv.undos)
	}
	if m.screen != screenDashboard || len(m.fb.pending) != 0 || strings.Contains(string(screenText(t, m)), "unfinished") {
		t.Fatalf("screen %d, pending %+v", m.screen, m.fb.pending)
	}
}

// TestGoldenVSphereWide: at 120x40 the form shows every field and the
// plan its steps whole.
func TestGoldenVSphereWide(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(m *Model)
	}{
		{"Form", func(m *Model) { rolledBack(m); press(m, "v") }},
		{"Plan", planned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFx(t, 120, 40, Options{Actions: &fakeActions{}, VSphere: &fakeVSphere{checks: vsChecksOK}})
			tc.after(m)
			golden.RequireEqual(t, screenText(t, m))
		})
	}
}

// probedVSphere is a backend whose disks show a Windows UEFI source.
func probedVSphere() *fakeVSphere {
	return &fakeVSphere{checks: vsChecksOK, firmware: "efi", guestID: "windows9Server64Guest", controller: "lsilogic-sas",
		notes: []string{"firmware efi: /dev/disk/by-id/scsi-mt-p1 has an EFI system partition (GPT)",
			"guest id windows9Server64Guest: a windows source (Microsoft reserved partition on /dev/disk/by-id/scsi-mt-p1)",
			"SCSI lsilogic-sas: a windows source with 1 disk(s)"}}
}

// The form is prefilled through the backend's SourceForm, off the event
// loop: the firmware, guest id and controller the disks show reach the
// form, the screen with where they came from, and the plan; an edit made
// before the answer stands, and a stale answer changes nothing.
func TestVSphereSourceForm(t *testing.T) {
	fv := probedVSphere()
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	rolledBack(m)
	probe := press(m, "v")
	if m.fb.form.Firmware != "bios" {
		t.Fatalf("probed on the event loop: %+v", m.fb.form)
	}
	pump(m, probe)
	f := m.fb.form
	if f.Firmware != "efi" || f.GuestID != "windows9Server64Guest" || f.Controller != "lsilogic-sas" ||
		m.fb.inputs["guest-id"].Value() != "windows9Server64Guest" {
		t.Fatalf("the probed defaults did not reach the form: %+v guest field %q", f, m.fb.inputs["guest-id"].Value())
	}
	if !slices.Equal(fv.sources, []string{"p1 /dev/disk/by-id/scsi-mt-p1"}) {
		t.Fatalf("SourceForm calls %q", fv.sources)
	}
	s := string(screenText(t, m))
	for _, want := range []string{"from the disks: firmware efi: /dev/disk/by-id/scsi-mt-p1 has an EFI", "(•) efi", "(•) lsilogic-sas",
		"Guest OS id:       windows9Server64Guest"} {
		if !strings.Contains(s, want) {
			t.Fatalf("no %q on the form:\n%s", want, s)
		}
	}
	toLast(m)
	pump(m, press(m, "enter"))
	if plans, _ := fv.calls(); len(plans) != 1 || plans[0].Firmware != "efi" || plans[0].GuestID != "windows9Server64Guest" ||
		plans[0].Controller != "lsilogic-sas" {
		t.Fatalf("the plan was not asked with the probed form: %+v", plans)
	}

	// A guest id typed before the probe answers stands; the other
	// defaults are taken. A stale answer is dropped.
	fv = probedVSphere()
	m = newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	rolledBack(m)
	probe = press(m, "v")
	for m.fb.fields[m.fb.cur].Key != "guest-id" {
		press(m, "tab")
	}
	press(m, "ctrl+u")
	typeText(m, "rhel9_64Guest")
	pump(m, probe)
	if got := m.fb.inputs["guest-id"].Value(); got != "rhel9_64Guest" || m.fb.form.Firmware != "efi" || m.fb.form.Controller != "lsilogic-sas" {
		t.Fatalf("guest field %q, form %+v", got, m.fb.form)
	}
	m.fb.form.Firmware = "bios"
	m.Update(fbSourceMsg{seq: m.fb.seq + 7, form: failback.Form{Firmware: "efi"}})
	if m.fb.form.Firmware != "bios" {
		t.Fatal("a stale probe changed the form")
	}
}

// The failback VM is named after the rolled-back pairs' protection group
// (the first pair that has one), else after the first pair.
func TestVSphereNameFromGroup(t *testing.T) {
	fv := &fakeVSphere{}
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	rolledBack(m)
	m.jobs["j1"].job.Pairs = []string{"p1", "p2"}
	m.pair("p2").Group = "erp-db"
	pump(m, press(m, "v"))
	if m.fb.form.Name != "erp-db" || len(fv.sources) != 1 || !strings.HasPrefix(fv.sources[0], "erp-db /dev/disk/by-id/scsi-mt-p1,") {
		t.Fatalf("name %q, SourceForm calls %q", m.fb.form.Name, fv.sources)
	}

	fv = &fakeVSphere{}
	m = newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	rolledBack(m)
	pump(m, press(m, "v"))
	if m.fb.form.Name != "p1" || !slices.Equal(fv.sources, []string{"p1 /dev/disk/by-id/scsi-mt-p1"}) {
		t.Fatalf("no group: name %q, SourceForm calls %q", m.fb.form.Name, fv.sources)
	}
}
