package setup

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/disks"
)

const gib = 1 << 30

// fakePM is a package manager with a fixed set of installed packages;
// Install runs a shell script so streaming and cancelling are real.
type fakePM struct {
	installed map[string]string
	script    string // run by Install; "" installs instantly
	asked     []string
}

func (f *fakePM) Name() string   { return "fake" }
func (f *fakePM) Family() string { return "debian" }
func (f *fakePM) Installed(_ context.Context, p string) (string, bool, error) {
	v, ok := f.installed[p]
	return v, ok, nil
}
func (f *fakePM) InstallCommand(p []string) string { return "fake-install " + strings.Join(p, " ") }
func (f *fakePM) Install(ctx context.Context, p []string, line func(string)) error {
	f.asked = append(f.asked, p...)
	return RunStreaming(ctx, []string{"sh", "-c", f.script}, nil, line)
}

func allInstalled() *fakePM {
	m := map[string]string{}
	for _, p := range MasterTargetPackages("debian") {
		m[p] = "1.0"
	}
	return &fakePM{installed: m}
}

func fixtureEnv(t *testing.T, name string) *Env {
	t.Helper()
	root := filepath.Join("..", "disks", "testdata", "hosts", name)
	uid := 0
	return &Env{Root: root, Role: RoleMT, UID: &uid, Addrs: []string{"10.0.0.5"}, PM: allInstalled(),
		Modinfo: func(context.Context, string) error { return nil },
		Statfs: func(mp string) (disks.Space, error) {
			return disks.Space{Total: 1000e9, Free: 900e9, Avail: 850e9}, nil
		}}
}

func byID(cs []Check) map[string]Check {
	m := map[string]Check{}
	for _, c := range cs {
		m[c.ID] = c
	}
	return m
}

func TestDiskRulesOnFixtures(t *testing.T) {
	cases := []struct {
		host    string
		targets []string
		want    map[string]Status
	}{
		{"vmware-good", nil, map[string]Status{"disks.count": Pass, "disks.root-lvm": Pass, "disks.retention": Pass, "disks.scsi-ids": Pass,
			"disks.targets": Pass, "disks.os-size": Pass, "disks.memory": Pass, "disks.cpus": Pass, "disks.retention-space": Pass}},
		{"vmware-good", []string{"sdc"}, map[string]Status{"disks.targets": Pass}},
		// sdd carries a PV label with no volume active on it: still LVM's.
		{"vmware-good", []string{"sdc", "sdd"}, map[string]Status{"disks.targets": Fail}},
		{"vmware-good", []string{"sda", "sdb", "sdz"}, map[string]Status{"disks.targets": Fail}},
		{"virtio-one-disk", nil, map[string]Status{"disks.count": Fail, "disks.retention": Fail, "disks.scsi-ids": Warn, "disks.root-lvm": Pass}},
		{"lvm-root", nil, map[string]Status{"disks.root-lvm": Fail, "disks.retention": Pass, "disks.count": Pass}},
		{"lvm-retention", nil, map[string]Status{"disks.root-lvm": Pass, "disks.retention": Fail}},
		{"no-scsi-ids", nil, map[string]Status{"disks.scsi-ids": Fail, "disks.retention": Pass}},
		{"multipath", []string{"sdc"}, map[string]Status{"disks.targets": Fail, "disks.scsi-ids": Pass}},
	}
	for _, c := range cases {
		e := fixtureEnv(t, c.host)
		e.Targets = c.targets
		cs, err := Run(context.Background(), e, GroupDisks)
		if err != nil {
			t.Fatal(err)
		}
		got := byID(cs)
		for id, want := range c.want {
			g, ok := got[id]
			if !ok || g.Status != want {
				t.Errorf("%s %v: %s = %s (%s), want %s", c.host, c.targets, id, g.Status, g.Detail, want)
			}
			if g.Status == Fail && g.Fix == "" {
				t.Errorf("%s: %s fails without a fix", c.host, id)
			}
		}
	}
	// The reasons name what is wrong.
	cs, _ := Run(context.Background(), fixtureEnv(t, "lvm-root"), GroupDisks)
	if d := byID(cs)["disks.root-lvm"].Detail; !strings.Contains(d, "vg0-root") {
		t.Errorf("root-lvm detail: %s", d)
	}
	e := fixtureEnv(t, "multipath")
	e.Targets = []string{"sdc"}
	cs, _ = Run(context.Background(), e, GroupDisks)
	if d := byID(cs)["disks.targets"].Detail; !strings.Contains(d, "multipath mpatha") {
		t.Errorf("targets detail: %s", d)
	}
	e = fixtureEnv(t, "vmware-good")
	e.RetentionBytes = 900e9
	cs, _ = Run(context.Background(), e, GroupDisks)
	if c := byID(cs)["disks.retention-space"]; c.Status != Fail {
		t.Errorf("retention space with a 900 GB policy on 850 GB free: %+v", c)
	}
}

func TestOSChecksOnFixture(t *testing.T) {
	e := fixtureEnv(t, "vmware-good")
	cs, err := Run(context.Background(), e, GroupOS)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(cs)
	for id, want := range map[string]Status{"os.release": Pass, "os.kernel": Pass, "os.root": Pass, "os.hostname": Pass, "os.free-space": Pass, "os.time-sync": Warn} {
		if got[id].Status != want {
			t.Errorf("%s = %s (%s), want %s", id, got[id].Status, got[id].Detail, want)
		}
	}
	uid := 1000
	e = fixtureEnv(t, "vmware-good")
	e.UID, e.Addrs = &uid, []string{"10.0.0.5", "192.168.1.5"}
	cs, _ = Run(context.Background(), e, GroupOS)
	got = byID(cs)
	if got["os.root"].Status != Fail || !strings.Contains(got["os.root"].Fix, "sudo") {
		t.Errorf("non-root: %+v", got["os.root"])
	}
	if c := got["os.hostname"]; c.Status != Fail || !strings.Contains(c.Fix, "192.168.1.5 mt01") {
		t.Errorf("hostname with an unmapped address: %+v", c)
	}
}

func TestPackagesAgainstRealDpkg(t *testing.T) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("SKIP: no dpkg-query on this host")
	}
	ctx := context.Background()
	v, ok, err := Dpkg{}.Installed(ctx, "dpkg")
	if err != nil || !ok || v == "" {
		t.Errorf("dpkg itself: %q %v %v", v, ok, err)
	}
	out, _ := exec.Command("dpkg-query", "-W", "-f=${Version}", "dpkg").Output()
	if v != string(out) {
		t.Errorf("version %q, dpkg-query says %q", v, out)
	}
	if _, ok, err := (Dpkg{}).Installed(ctx, "mtconsole-no-such-package"); ok || err != nil {
		t.Errorf("missing package: %v %v", ok, err)
	}
}

func TestPackageChecksAndInstallThroughFake(t *testing.T) {
	pm := allInstalled()
	delete(pm.installed, "kpartx")
	delete(pm.installed, "lsscsi")
	pm.script = `for p in one two three; do echo "unpacking $p"; done; echo "to stderr" >&2`
	e := fixtureEnv(t, "vmware-good")
	e.PM = pm
	e.Modinfo = func(_ context.Context, m string) error {
		if m == "reiserfs" {
			return errors.New("no reiserfs")
		}
		return nil
	}
	cs, err := Run(context.Background(), e, GroupPackages)
	if err != nil {
		t.Fatal(err)
	}
	got := byID(cs)
	if got["packages.kpartx"].Status != Fail || got["packages.xfsprogs"].Status != Pass || got["packages.module-reiserfs"].Status != Warn || got["packages.module-xfs"].Status != Pass {
		t.Errorf("checks: %+v", cs)
	}
	if !strings.Contains(got["packages.kpartx"].Fix, "fake-install kpartx") {
		t.Errorf("fix: %q", got["packages.kpartx"].Fix)
	}
	missing, err := MissingPackages(context.Background(), pm, RoleMT)
	if err != nil || strings.Join(missing, " ") != "lsscsi kpartx" {
		t.Fatalf("missing %v %v", missing, err)
	}
	var lines []string
	if err := pm.Install(context.Background(), missing, func(l string) { lines = append(lines, l) }); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 4 || lines[0] != "unpacking one" || strings.Join(pm.asked, " ") != "lsscsi kpartx" {
		t.Errorf("lines %q asked %v", lines, pm.asked)
	}
	// A failing install says its exit status.
	pm.script = "echo broken; exit 100"
	if err := pm.Install(context.Background(), missing, nil); err == nil || !strings.Contains(err.Error(), "exit status 100") {
		t.Errorf("failing install: %v", err)
	}
	// Cancelling stops it: lines seen so far arrived before the end.
	pm.script = "echo started; sleep 30; echo never"
	ctx, cancel := context.WithCancel(context.Background())
	got2 := make(chan string, 4)
	start := time.Now()
	go func() {
		<-got2
		cancel()
	}()
	err = pm.Install(ctx, missing, func(l string) { got2 <- l })
	if err == nil || !strings.Contains(err.Error(), "cancelled") || time.Since(start) > 10*time.Second {
		t.Errorf("cancelled install: %v after %s", err, time.Since(start))
	}
}

// snapshotTree is every file and link under dir with its bytes and mode.
func snapshotTree(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := os.Lstat(p)
		if d.Type()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			out[rel] = "-> " + l
			return nil
		}
		b, _ := os.ReadFile(p)
		out[rel] = fi.Mode().String() + " " + string(b)
		return nil
	})
	return out
}

func diffTrees(a, b map[string]string) []string {
	var d []string
	for k, v := range a {
		if b[k] != v {
			d = append(d, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			d = append(d, k)
		}
	}
	return d
}

const origLVM = `# This is an example configuration file for the LVM2 system.
config {
	checks = 1
}

devices {
	dir = "/dev"
	# global_filter = [ "a|.*|" ]
	global_filter = [ "a|.*|" ]
	scan = [ "/dev" ]
}

global {
	umask = 077
	use_lvmetad = 1
}
`

func TestCustomChangesRoundTrip(t *testing.T) {
	inv, err := disks.Read(disks.Host{Root: filepath.Join("..", "disks", "testdata", "hosts", "lvm-root"),
		Statfs: func(string) (disks.Space, error) { return disks.Space{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	write := func(p, s string, mode os.FileMode) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("/etc/lvm/lvm.conf", origLVM, 0o640)
	write("/etc/multipath.conf", "defaults {\n\tuser_friendly_names yes\n}\n", 0o600)
	write("/lib/systemd/system/lvm2-lvmetad.service", "[Unit]\n", 0o644)
	write("/proc/sys/kernel/random/boot_id", "boot-1\n", 0o644)
	before := snapshotTree(t, root)

	cu := &Custom{Root: root, Inv: inv}
	if ok, _ := cu.Applied(); ok {
		t.Fatal("applied before apply")
	}
	plan, err := cu.Plan()
	if err != nil || len(plan) != 5 {
		t.Fatalf("plan %q %v", plan, err)
	}
	if d := diffTrees(before, snapshotTree(t, root)); len(d) > 0 {
		t.Fatalf("Plan changed %v", d)
	}
	changed, err := cu.Apply()
	if err != nil || len(changed) != 5 {
		t.Fatalf("apply: %v %v", changed, err)
	}
	if ok, _ := cu.Applied(); !ok || !cu.RebootRequired() {
		t.Errorf("after apply: applied %v, reboot %v", ok, cu.RebootRequired())
	}
	lvm, _ := os.ReadFile(filepath.Join(root, "/etc/lvm/lvm.conf"))
	for _, want := range []string{`global_filter = [ "a|^/dev/sda2$|", "r|.*|" ]`, "\t# mtconsole: global_filter = [ \"a|.*|\" ]", "\t# global_filter = [ \"a|.*|\" ]", "use_lvmetad = 0", "\t# mtconsole: use_lvmetad = 1"} {
		if !strings.Contains(string(lvm), want) {
			t.Errorf("lvm.conf lacks %q:\n%s", want, lvm)
		}
	}
	mp, _ := os.ReadFile(filepath.Join(root, "/etc/multipath.conf"))
	if !strings.Contains(string(mp), "find_multipaths no") || !strings.Contains(string(mp), `wwid "36000c2931a2b3c4d5e6f708192a3b4c5" # sda`) {
		t.Errorf("multipath.conf:\n%s", mp)
	}
	if fi, _ := os.Stat(filepath.Join(root, "/etc/lvm/lvm.conf")); fi.Mode().Perm() != 0o640 {
		t.Errorf("lvm.conf mode %v", fi.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(root, "/etc/systemd/system/lvm2-lvmetad.socket")); l != "/dev/null" {
		t.Errorf("lvmetad socket not masked: %q", l)
	}
	if _, err := os.Stat(filepath.Join(root, Marker)); err != nil {
		t.Error(err)
	}

	// Apply twice = no change.
	applied := snapshotTree(t, root)
	if changed, err := cu.Apply(); err != nil || len(changed) != 0 {
		t.Errorf("second apply changed %v %v", changed, err)
	}
	if d := diffTrees(applied, snapshotTree(t, root)); len(d) > 0 {
		t.Errorf("second apply changed %v", d)
	}

	// After a reboot, no reboot is required.
	write("/proc/sys/kernel/random/boot_id", "boot-2\n", 0o644)
	if (&Custom{Root: root, Inv: inv}).RebootRequired() {
		t.Error("reboot still required after a reboot")
	}

	// Revert: byte-identical files, modes and no backups left.
	cu = &Custom{Root: root, Inv: inv}
	if _, err := cu.Revert(); err != nil {
		t.Fatal(err)
	}
	after := snapshotTree(t, root)
	delete(after, "var/lib/mtconsole/custom-changes/changed-in-boot")
	before["proc/sys/kernel/random/boot_id"] = after["proc/sys/kernel/random/boot_id"]
	if d := diffTrees(before, after); len(d) > 0 {
		t.Errorf("after revert these differ from before apply: %v", d)
	}
	if !cu.RebootRequired() {
		t.Error("a revert needs a reboot too")
	}

	// Re-apply gives the same files as the first apply.
	if _, err := cu.Apply(); err != nil {
		t.Fatal(err)
	}
	again := snapshotTree(t, root)
	for _, k := range []string{"etc/lvm/lvm.conf", "etc/multipath.conf", Marker[1:]} {
		if again[k] != applied[k] {
			t.Errorf("re-apply: %s differs", k)
		}
	}
	if !bytes.Contains([]byte(again["etc/lvm/lvm.conf"]), []byte("r|.*|")) {
		t.Error("re-apply lost the filter")
	}
}

func TestCustomChangesOnEmptyRoot(t *testing.T) {
	inv, _ := disks.Read(disks.Host{Root: filepath.Join("..", "disks", "testdata", "hosts", "vmware-good"),
		Statfs: func(string) (disks.Space, error) { return disks.Space{}, nil }})
	root := t.TempDir()
	cu := &Custom{Root: root, Inv: inv, BootID: "b"}
	st, _ := cu.Status()
	if st[2].ID != "lvmetad" || st[2].Applicable {
		t.Errorf("lvmetad without its unit: %+v", st[2])
	}
	if _, err := cu.Apply(); err != nil {
		t.Fatal(err)
	}
	lvm, _ := os.ReadFile(filepath.Join(root, "etc/lvm/lvm.conf"))
	if string(lvm) != "devices {\n\t"+blockBegin+"\n\tglobal_filter = [ \"r|.*|\" ]\n\t"+blockEnd+"\n}\n" {
		t.Errorf("new lvm.conf:\n%s", lvm)
	}
	if _, err := cu.Revert(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"etc/lvm/lvm.conf", "etc/multipath.conf", Marker[1:]} {
		if _, err := os.Stat(filepath.Join(root, p)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left after revert: %v", p, err)
		}
	}
}

func TestLVMConfIdempotent(t *testing.T) {
	sets := map[string]string{"devices": `global_filter = [ "r|.*|" ]`, "global": "use_lvmetad = 0"}
	once := lvmConf([]byte(origLVM), sets)
	if twice := lvmConf(once, sets); !bytes.Equal(once, twice) {
		t.Errorf("lvmConf twice differs:\n%s\n---\n%s", once, twice)
	}
}

// Preview shows, without changing anything, exactly the bytes and links
// Apply then writes; once applied there is nothing to preview.
func TestCustomChangesPreview(t *testing.T) {
	inv, err := disks.Read(disks.Host{Root: filepath.Join("..", "disks", "testdata", "hosts", "lvm-root"),
		Statfs: func(string) (disks.Space, error) { return disks.Space{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/lvm"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/lvm/lvm.conf"), []byte(origLVM), 0o644)
	os.MkdirAll(filepath.Join(root, "lib/systemd/system"), 0o755)
	os.WriteFile(filepath.Join(root, "lib/systemd/system/lvm2-lvmetad.service"), []byte("[Unit]\n"), 0o644)
	cu := &Custom{Root: root, Inv: inv, BootID: "b"}
	before := snapshotTree(t, root)
	pv, err := cu.Preview()
	if err != nil {
		t.Fatal(err)
	}
	if d := diffTrees(before, snapshotTree(t, root)); len(d) > 0 {
		t.Fatalf("Preview changed %v", d)
	}
	plan, _ := cu.Plan()
	if len(pv) != len(plan) {
		t.Fatalf("%d previews for a plan of %d: %q", len(pv), len(plan), plan)
	}
	if _, err := cu.Apply(); err != nil {
		t.Fatal(err)
	}
	for _, fc := range pv {
		p := filepath.Join(root, fc.Path)
		if fc.Link != "" {
			if got, _ := os.Readlink(p); got != fc.Link {
				t.Errorf("%s links to %q, the preview said %q", fc.Path, got, fc.Link)
			}
			continue
		}
		if got, _ := os.ReadFile(p); !bytes.Equal(got, fc.New) {
			t.Errorf("%s after apply differs from the preview", fc.Path)
		}
		if fc.Path == "/etc/lvm/lvm.conf" && string(fc.Old) != origLVM {
			t.Errorf("the preview's old lvm.conf:\n%s", fc.Old)
		}
		if fc.Path == "/etc/multipath.conf" && fc.Old != nil {
			t.Errorf("multipath.conf did not exist, the preview has %q", fc.Old)
		}
	}
	if pv, _ := cu.Preview(); len(pv) != 0 {
		t.Errorf("after apply: %+v", pv)
	}
}
