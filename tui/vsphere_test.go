package tui

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
	"github.com/charmbracelet/x/exp/teatest/v2"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/setup"
)

// fakeVSphere records the plans and creations the console asks for.
type fakeVSphere struct {
	mu      sync.Mutex
	plans   []string // name: disks
	creates []string
	checks  []setup.Check
	fail    error
}

func (f *fakeVSphere) Hardware(disks []string) string {
	return "cpus=2 mem=2048 guest=otherLinux64Guest fw=bios scsi=lsilogic poweron=yes nic="
}

func (f *fakeVSphere) Plan(_ context.Context, disks []string, name, hw string) (string, []setup.Check, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.plans = append(f.plans, name+": "+strings.Join(disks, ",")+" "+hw)
	text := "1. detach " + disks[0] + " (Hard disk 2) from mt-lab-01\n   undo: attach it again\n" +
		"2. create VM " + name + " on esx-02, [LocalDS_0] " + name + "/" + name + ".vmx, 2 CPU, 2048 MB\n   undo: destroy it, keeping the disks\n" +
		"3. attach the disk to " + name + "\n4. power on " + name
	return text, f.checks, f.fail
}

func (f *fakeVSphere) Create(_ context.Context, disks []string, name, hw string, progress func(string)) (string, error) {
	f.mu.Lock()
	f.creates = append(f.creates, name+": "+strings.Join(disks, ",")+" "+hw)
	f.mu.Unlock()
	for _, s := range []string{"done        detach", "done        create", "done        attach", "done        power on"} {
		progress(s + " " + name)
	}
	return "Failback VM " + name + " created with 1 disk(s) and powered on.", nil
}

func (f *fakeVSphere) calls() (plans, creates []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.plans), slices.Clone(f.creates)
}

var vsChecksOK = []setup.Check{
	{ID: "vm.name", Group: "vsphere", Title: "Failback VM name", Status: setup.Pass, Detail: "p1 is free in DC0"},
	{ID: "mt.snapshots", Group: "vsphere", Title: "Master target snapshots", Status: setup.Pass, Detail: "none"},
	{ID: "ds.space", Group: "vsphere", Title: "Datastore LocalDS_0", Status: setup.Warn, Detail: "12 GiB free after the swap file"},
}

// rolledBack is the wizard on the result of p1's finished rollback.
func rolledBack(m *Model) {
	wizardTo(m, stepConfirm, "")
	typeText(m, "p1")
	m.Update(press(m, "enter")())
	m.Update(jobMsg{id: "j1", job: finishedJob(api.RecoverRequest{Mode: "rollback", Point: "latest-tag", Pairs: []string{"p1"}})})
}

func TestGoldenVSphere(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks []setup.Check
		after  func(m *Model)
	}{
		{name: "Offer", after: func(m *Model) {}},
		{name: "Name", after: func(m *Model) { press(m, "v") }},
		{name: "Hardware", after: func(m *Model) { press(m, "v"); press(m, "enter") }},
		{name: "Plan", checks: vsChecksOK, after: func(m *Model) { press(m, "v"); press(m, "enter"); m.Update(press(m, "enter")()) }},
		{name: "PlanFailed", checks: append(slices.Clone(vsChecksOK[:1]), setup.Check{ID: "vm.path", Title: "Failback VM path",
			Status: setup.Fail, Detail: "[LocalDS_0] p1/p1.vmx exists", Fix: "choose another name"}),
			after: func(m *Model) { press(m, "v"); press(m, "enter"); m.Update(press(m, "enter")()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: &fakeVSphere{checks: tc.checks}})
			rolledBack(m)
			tc.after(m)
			golden.RequireEqual(t, screenText(t, m))
		})
	}
}

// TestVSphereNotConfigured: no hook, no key; a line says how.
func TestVSphereNotConfigured(t *testing.T) {
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}})
	rolledBack(m)
	if cmd := press(m, "v"); cmd != nil || m.wiz.step != stepResult {
		t.Fatalf("v without vSphere: step %d", m.wiz.step)
	}
	s := screenText(t, m)
	if !strings.Contains(s, "vSphere is not configured") || strings.Contains(s, "v: create") {
		t.Fatalf("no how-to line, or a v key:\n%s", s)
	}
	// Read-only: no key either.
	m = newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: &fakeVSphere{}})
	rolledBack(m)
	m.o.ReadOnly = true
	if press(m, "v"); m.wiz.step != stepResult || strings.Contains(screenText(t, m), "v: create") {
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
		teatest.WithDuration(5*time.Second))
	// The name (p1 by default), the hardware (edited), then the dry run.
	send(tm, "v", "enter", "ctrl+u")
	tm.Type("cpus=4 mem=4096 guest=rhel9_64Guest fw=efi scsi=pvscsi poweron=yes nic=VM Network")
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("Plan (a dry run")) })
	if _, creates := fv.calls(); len(creates) != 0 {
		t.Fatal("the dry run created the VM")
	}
	// A wrong confirmation changes nothing.
	tm.Type("p2")
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("type p1 exactly")) })
	send(tm, "ctrl+u")
	tm.Type("p1")
	send(tm, "enter")
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool { return bytes.Contains(b, []byte("created with 1 disk(s) and powered on")) },
		teatest.WithDuration(5*time.Second))
	m := final(t, tm)
	plans, creates := fv.calls()
	want := "p1: /dev/disk/by-id/scsi-mt-p1 cpus=4 mem=4096 guest=rhel9_64Guest fw=efi scsi=pvscsi poweron=yes nic=VM Network"
	if !slices.Equal(plans, []string{want}) || !slices.Equal(creates, []string{want}) {
		t.Errorf("plans %q creates %q, want one each of %q", plans, creates, want)
	}
	if m.wiz.step != stepVSDone || len(m.wiz.vs.progress) != 4 || m.wiz.vs.failed {
		t.Errorf("step %d progress %q failed %v", m.wiz.step, m.wiz.vs.progress, m.wiz.vs.failed)
	}
}

// TestVSpherePlanErrorAndBack: a plan that cannot be made is shown; esc
// goes back to the result, and nothing is created.
func TestVSpherePlanErrorAndBack(t *testing.T) {
	fv := &fakeVSphere{fail: errors.New("vSphere login refused: 10.0.0.5:443 refused user \"mt\"")}
	m := newFx(t, 80, 24, Options{Actions: &fakeActions{}, VSphere: fv})
	rolledBack(m)
	press(m, "v")
	press(m, "enter")
	m.Update(press(m, "enter")())
	if s := screenText(t, m); !strings.Contains(s, "login refused") {
		t.Fatalf("no error on screen:\n%s", s)
	}
	press(m, "esc")
	if m.wiz.step != stepResult {
		t.Fatalf("esc: step %d, want the result", m.wiz.step)
	}
	if _, creates := fv.calls(); len(creates) != 0 {
		t.Fatal("created after a failed plan")
	}
}
