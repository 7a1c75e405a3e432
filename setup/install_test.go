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
