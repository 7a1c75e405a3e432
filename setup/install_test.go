package setup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestInstallUpgradeUninstall(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "mtconsole")
	os.WriteFile(bin, []byte("binary v1"), 0o755)
	a := DefaultAnswers()
	o := InstallOptions{Root: root, Answers: a, Binary: bin, Version: "1"}

	p, err := PlanInstall(o)
	if err != nil {
		t.Fatal(err)
	}
	if p.Upgrade != nil {
		t.Error("fresh root seen as an upgrade")
	}
	var out bytes.Buffer
	p.Print(&out)
	for _, want := range []string{"mkdir  /etc/mtconsole", "copy   /usr/local/bin/mtconsole", "mkdir  /mnt/retention/mtconsole", "write  " + UnitPath,
		"run    systemctl daemon-reload  (skipped: the root is"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan lacks %q:\n%s", want, out.String())
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Fatal("planning wrote files")
	}
	if err := p.Execute(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	unit, _ := os.ReadFile(filepath.Join(root, UnitPath))
	if !bytes.Contains(unit, []byte("ExecStart=/usr/local/bin/mtconsole agent --config /etc/mtconsole/agent.toml")) {
		t.Errorf("unit:\n%s", unit)
	}
	if fi, err := os.Stat(filepath.Join(root, ConfigDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("config dir: %v %v", fi, err)
	}
	if _, err := LoadAnswers(filepath.Join(root, UsedPath)); err != nil {
		t.Errorf("the answers written back do not load: %v", err)
	}

	// Same binary again: nothing to change.
	p, _ = PlanInstall(o)
	if p.Upgrade == nil || p.Upgrade.Version != "1" {
		t.Errorf("existing install not found: %+v", p.Upgrade)
	}
	for _, a := range p.Actions {
		if a.Kind != "run" {
			t.Errorf("re-install changes %s", a)
		}
	}

	// A new binary: an upgrade that replaces the binary and the record.
	os.WriteFile(bin, []byte("binary v2"), 0o755)
	o.Version = "2"
	p, _ = PlanInstall(o)
	out.Reset()
	p.Print(&out)
	if !strings.Contains(out.String(), "upgrades the binary there") || !strings.Contains(out.String(), "write  "+RecordPath) {
		t.Errorf("upgrade plan:\n%s", out.String())
	}
	if err := p.Execute(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "/usr/local/bin/mtconsole")); string(b) != "binary v2" {
		t.Errorf("binary after upgrade: %q", b)
	}

	// Uninstall keeps the retention data; --purge-data removes it.
	os.WriteFile(filepath.Join(root, "/mnt/retention/mtconsole/keep"), []byte("data"), 0o600)
	u, err := PlanUninstall(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Execute(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"/usr/local/bin/mtconsole", ConfigDir, StateRoot, UnitPath} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s left after uninstall", gone)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "/mnt/retention/mtconsole/keep")); err != nil {
		t.Errorf("retention data removed without --purge-data: %v", err)
	}
	if _, err := PlanUninstall(root, true); err == nil || !strings.Contains(err.Error(), "not installed") {
		t.Errorf("uninstall twice: %v", err)
	}
	// Install again, then purge.
	p, _ = PlanInstall(o)
	p.Execute(context.Background(), nil, &out)
	u, _ = PlanUninstall(root, true)
	u.Execute(context.Background(), nil, &out)
	if _, err := os.Stat(filepath.Join(root, "/mnt/retention/mtconsole")); err == nil {
		t.Error("--purge-data left the retention data")
	}
	if _, err := os.Stat(filepath.Join(root, "/mnt/retention")); err != nil {
		t.Error("--purge-data removed the retention mount point itself")
	}
}

// TestInstallFromPackage: run from the package's /usr/bin/mtconsole with
// the package's unit in /usr/lib/systemd/system, the install copies no
// binary and writes no unit, removes an earlier bare install's binary
// and unit (they would shadow the package's), and, as a bare install
// does, writes the drop-in that makes the retention data writable to the
// agent's ProtectSystem=strict unit. Uninstall leaves the package's files.
func TestInstallFromPackage(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "mtconsole")
	os.WriteFile(bin, []byte("binary v1"), 0o755)
	a := DefaultAnswers()
	o := InstallOptions{Root: root, Answers: a, Binary: bin, Version: "1"}
	p, err := PlanInstall(o) // a bare install first
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.Execute(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	data := "/mnt/retention/mtconsole"
	if b, err := os.ReadFile(filepath.Join(root, DropInPath)); err != nil || !bytes.Contains(b, []byte("\nReadWritePaths="+data+"\n")) {
		t.Fatalf("bare install's drop-in: %q, %v", b, err)
	}

	// Then the package: its binary and unit under the root.
	pkgBin := filepath.Join(root, PackagedBinary)
	os.MkdirAll(filepath.Dir(pkgBin), 0o755)
	os.WriteFile(pkgBin, []byte("binary v2"), 0o755)
	os.MkdirAll(filepath.Join(root, filepath.Dir(PackagedUnit)), 0o755)
	os.WriteFile(filepath.Join(root, PackagedUnit), []byte("[Service]\n"), 0o644)
	if Packaged(root, bin) {
		t.Fatal("a binary other than the package's is seen as packaged")
	}
	if !Packaged(root, pkgBin) {
		t.Fatal("the package's binary is not seen as packaged")
	}
	o.Binary, o.Version = pkgBin, "2"
	p, err = PlanInstall(o)
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	p.Print(&out)
	for _, a := range p.Actions {
		if a.Kind == "copy" || a.Kind == "write" && a.Path == UnitPath {
			t.Errorf("a packaged install does %s", a)
		}
	}
	for _, want := range []string{"remove /usr/local/bin/mtconsole", "remove " + UnitPath, "keep   " + DropInPath, "keep   /usr/bin/mtconsole (the package's)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("packaged plan lacks %q:\n%s", want, out.String())
		}
	}
	if err := p.Execute(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	rec, _ := ReadRecord(root)
	if rec == nil || rec.Binary != PackagedBinary || rec.Version != "2" {
		t.Fatalf("record after the packaged install: %+v", rec)
	}
	for _, gone := range []string{"/usr/local/bin/mtconsole", UnitPath} {
		if _, err := os.Stat(filepath.Join(root, gone)); err == nil {
			t.Errorf("%s is left to shadow the package's", gone)
		}
	}

	u, err := PlanUninstall(root, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.Execute(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	for _, kept := range []string{PackagedBinary, PackagedUnit} {
		if _, err := os.Stat(filepath.Join(root, kept)); err != nil {
			t.Errorf("uninstall removed the package's %s", kept)
		}
	}
	if _, err := os.Stat(filepath.Join(root, filepath.Dir(DropInPath))); err == nil {
		t.Error("uninstall left the drop-in")
	}
}

func TestDropInOnlyOutsideState(t *testing.T) {
	root := t.TempDir()
	bin := filepath.Join(t.TempDir(), "mtconsole")
	os.WriteFile(bin, []byte("b"), 0o755)
	a := DefaultAnswers()
	a.Disks.Retention = StateRoot // the data under /var/lib/mtconsole: the unit's StateDirectory covers it
	p, err := PlanInstall(InstallOptions{Root: root, Answers: a, Binary: bin, Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range p.Actions {
		if a.Path == DropInPath {
			t.Fatalf("a drop-in for data under %s: %s", StateRoot, a)
		}
	}
}
