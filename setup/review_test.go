package setup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks"
)

// reviewFx is an install into an empty temporary root, judged on the
// vmware-good fixture's disks with a fake package manager.
func reviewFx(t *testing.T, host string, missing ...string) (InstallOptions, *fakePM) {
	t.Helper()
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "mtconsole")
	if err := os.WriteFile(bin, []byte("binary v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := fixtureEnv(t, host)
	pm := allInstalled()
	for _, p := range missing {
		delete(pm.installed, p)
	}
	e.PM = pm
	inv, err := disks.Read(disks.Host{Root: e.Root, Statfs: e.Statfs})
	if err != nil {
		t.Fatal(err)
	}
	return InstallOptions{Root: root, Answers: DefaultAnswers(), Binary: bin, Version: "1", Env: e,
		Custom: &Custom{Root: root, Inv: inv, BootID: "boot-1"}}, pm
}

func codes(rs []Refusal) []int {
	var out []int
	for _, r := range rs {
		out = append(out, r.Code)
	}
	return out
}

// TestReview: the install decision of `mtconsole install` and the
// wizard, each refusal with its exit code in the installer's order, the
// missing packages and the custom changes it would make first.
func TestReview(t *testing.T) {
	for _, tc := range []struct {
		name        string
		host        string
		missing     []string // packages not installed
		edit        func(o *InstallOptions)
		codes       []int
		failed      []string // the failed checks of the 99 refusal
		wantMissing []string
		customPlan  bool // the custom changes are made first
	}{
		{name: "custom changes not applied", host: "vmware-good", codes: []int{175}},
		{name: "ready, custom changes with the install", host: "vmware-good", customPlan: true,
			edit: func(o *InstallOptions) { o.Answers.CustomChanges.Apply = true }},
		{name: "custom changes first, then prerequisites", host: "vmware-good", missing: []string{"kpartx", "lsscsi"},
			codes: []int{175, 99}, failed: []string{"packages.lsscsi", "packages.kpartx"}},
		{name: "missing packages installed with it", host: "vmware-good", missing: []string{"kpartx", "lsscsi"},
			edit: func(o *InstallOptions) {
				o.Answers.CustomChanges.Apply = true
				o.Answers.Prerequisites.InstallPackages = true
			}, wantMissing: []string{"lsscsi", "kpartx"}, customPlan: true},
		{name: "disk rules refuse a master target", host: "lvm-root", codes: []int{99}, failed: []string{"disks.root-lvm"},
			edit: func(o *InstallOptions) {
				o.Answers.CustomChanges.Apply = true
				o.Answers.Prerequisites.InstallPackages = true
			}, customPlan: true},
		{name: "skip checks: only the custom changes", host: "lvm-root", missing: []string{"kpartx"}, codes: []int{175},
			edit: func(o *InstallOptions) { o.SkipChecks = true }},
		{name: "process server: no custom changes, no disk rules", host: "lvm-root", missing: []string{"rsync"},
			codes: []int{99}, failed: []string{"packages.rsync"},
			edit: func(o *InstallOptions) { o.Answers.Role = RolePS }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, _ := reviewFx(t, tc.host, tc.missing...)
			if tc.edit != nil {
				tc.edit(&o)
			}
			r, err := Review(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(r.Refusals); !slices.Equal(got, tc.codes) {
				t.Fatalf("refusals %v (%v), want %v", got, r.Refusals, tc.codes)
			}
			for _, f := range r.Refusals {
				switch f.Code {
				case ExitCustomChanges:
					if !errors.Is(f, ErrNotApplied) || !strings.Contains(f.Error(), "mtconsole custom-changes apply") {
						t.Errorf("175: %v", f)
					}
				case ExitPrerequisites:
					var ids []string
					for _, c := range f.Checks {
						if c.Status != Fail || c.Fix == "" {
							t.Errorf("refused on %+v", c)
						}
						ids = append(ids, c.ID)
					}
					if !slices.Equal(ids, tc.failed) {
						t.Errorf("99 on %v, want %v", ids, tc.failed)
					}
				}
			}
			if !slices.Equal(r.Missing, tc.wantMissing) {
				t.Errorf("missing %v, want %v", r.Missing, tc.wantMissing)
			}
			if (len(r.CustomPlan) > 0) != tc.customPlan {
				t.Errorf("custom plan %q", r.CustomPlan)
			}
			if o.Answers.Role == RolePS && r.Custom != nil {
				t.Error("a process server reviewed the custom changes")
			}
			// The order of the changes: packages, custom changes, plan.
			ls := r.Lines()
			if len(tc.wantMissing) > 0 && ls[0] != "run    fake-install "+strings.Join(tc.wantMissing, " ") {
				t.Errorf("first change %q", ls[0])
			}
			if tc.customPlan && !strings.HasPrefix(ls[len(r.Missing)], "custom ") {
				t.Errorf("changes %q", ls)
			}
			if len(r.Refusals) > 0 {
				var rf Refusal
				if err := r.Apply(context.Background(), DryRun(o.Root), func(string) {}); !errors.As(err, &rf) || rf.Code != tc.codes[0] {
					t.Errorf("Apply of a refused review: %v", err)
				}
			}
		})
	}
}

// TestReviewDryRunChangesNothing: the review and a dry run of it read the
// root and leave every file as it was; the real run then makes what the
// dry run said, and a second review has nothing left to do.
func TestReviewDryRunChangesNothing(t *testing.T) {
	o, pm := reviewFx(t, "vmware-good", "kpartx")
	o.Answers.CustomChanges.Apply = true
	o.Answers.Prerequisites.InstallPackages = true
	pm.script = "echo unpacking kpartx"
	// Something there already, to see it kept.
	if err := os.MkdirAll(filepath.Join(o.Root, "etc", "lvm"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.Root, "etc", "lvm", "lvm.conf"), []byte(origLVM), 0o644); err != nil {
		t.Fatal(err)
	}
	before := snapshotTree(t, o.Root)

	r, err := Review(context.Background(), o)
	if err != nil || len(r.Refusals) != 0 {
		t.Fatalf("%v %v", err, r.Refusals)
	}
	var lines []string
	if err := r.Apply(context.Background(), DryRun(o.Root), func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	if d := diffTrees(before, snapshotTree(t, o.Root)); len(d) > 0 {
		t.Fatalf("the dry run changed %v", d)
	}
	if len(pm.asked) != 0 {
		t.Fatalf("the dry run installed %v", pm.asked)
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{"would run: fake-install kpartx", "/etc/lvm/lvm.conf", "/etc/mtconsole/install.yaml"} {
		if !strings.Contains(text, want) {
			t.Errorf("dry run lacks %q:\n%s", want, text)
		}
	}

	lines = nil
	if err := r.Apply(context.Background(), &Executor{}, func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pm.asked, []string{"kpartx"}) || !slices.Contains(lines, "    unpacking kpartx") ||
		!slices.Contains(lines, "  done  custom change /etc/lvm/lvm.conf") {
		t.Errorf("asked %v, lines:\n%s", pm.asked, strings.Join(lines, "\n"))
	}
	if _, err := os.Stat(filepath.Join(o.Root, RecordPath)); err != nil {
		t.Error(err)
	}
	delete(pm.installed, "kpartx") // the fake does not install: installed now
	pm.installed["kpartx"] = "1.0"
	r, err = Review(context.Background(), o)
	if err != nil || len(r.Refusals) != 0 || len(r.Missing) != 0 || len(r.CustomPlan) != 0 {
		t.Fatalf("again: %v %+v", err, r)
	}
	for _, a := range r.Plan.Actions {
		if a.Kind != "run" {
			t.Errorf("again changes %s", a)
		}
	}
}

// TestReviewPackageInstallFails: a failed package install is
// ErrPackages (the installer exits 99) and nothing after it is made.
func TestReviewPackageInstallFails(t *testing.T) {
	o, pm := reviewFx(t, "vmware-good", "kpartx")
	o.Answers.CustomChanges.Apply = true
	o.Answers.Prerequisites.InstallPackages = true
	pm.script = "echo broken; exit 100"
	before := snapshotTree(t, o.Root)
	r, err := Review(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Apply(context.Background(), &Executor{}, func(string) {})
	if !errors.Is(err, ErrPackages) || !strings.Contains(err.Error(), "install the packages: ") {
		t.Fatalf("%v", err)
	}
	if d := diffTrees(before, snapshotTree(t, o.Root)); len(d) > 0 {
		t.Fatalf("changed %v after the failed package install", d)
	}
}

// TestCustomOnDiskFacts: the custom changes are judged on the disk facts
// of the tree (read once, kept in the Env), not on this host's disks.
func TestCustomOnDiskFacts(t *testing.T) {
	fx := filepath.Join("..", "disks", "testdata", "hosts", "lvm-root")
	e := &Env{Root: fx, Statfs: func(string) (disks.Space, error) { return disks.Space{}, nil }, BootID: "boot-1"}
	root := t.TempDir()
	cu, err := EnvCustom(root, e)
	if err != nil || cu.Inv == nil || cu.Inv != e.Inventory || cu.Root != root || cu.BootID != "boot-1" {
		t.Fatalf("%v %+v", err, cu)
	}
	again, _ := EnvCustom(root, e)
	if again.Inv != cu.Inv {
		t.Error("the disks were read twice")
	}
	host, err := HostCustom(fx)
	if err != nil || host.Inv == nil || host.Root != fx {
		t.Fatalf("%v %+v", err, host)
	}
	if len(host.Inv.Disks) != len(cu.Inv.Disks) {
		t.Errorf("HostCustom read %d disks, the fixture has %d", len(host.Inv.Disks), len(cu.Inv.Disks))
	}
}
