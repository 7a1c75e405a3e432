package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/setup"
)

// runCmd runs the binary's root command with args and returns its
// output and the exit status main would give.
func runSetupCmd(t *testing.T, args ...string) (string, int) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return out.String(), 0
	}
	out.WriteString("error: " + err.Error())
	var ce codeError
	var ue usageError
	switch {
	case errors.As(err, &ce):
		return out.String(), ce.code
	case errors.As(err, &ue):
		return out.String(), exitUsage
	}
	return out.String(), exitError
}

func TestCheckOnFixtures(t *testing.T) {
	fx := func(n string) string { return filepath.Join("..", "..", "disks", "testdata", "hosts", n) }
	out, code := runSetupCmd(t, "check", "--root", fx("virtio-one-disk"), "--only", "disks")
	if code != 1 || !strings.Contains(out, "FAIL  At least two disks") || !strings.Contains(out, "fix: power off, attach a second disk") {
		t.Errorf("exit %d:\n%s", code, out)
	}
	out, code = runSetupCmd(t, "check", "--root", fx("lvm-root"), "--only", "disks", "--json")
	var cs []setup.Check
	if err := json.Unmarshal([]byte(strings.SplitN(out, "error:", 2)[0]), &cs); err != nil || code != 1 {
		t.Fatalf("json: %v, exit %d\n%s", err, code, out)
	}
	for _, c := range cs {
		if c.ID == "disks.root-lvm" && (c.Status != setup.Fail || c.Fix == "") {
			t.Errorf("%+v", c)
		}
	}
	if _, code := runSetupCmd(t, "check", "--only", "nope"); code != exitUsage {
		t.Errorf("--only nope: exit %d", code)
	}
}

// The real host: a truthful table, and a fail comes with its fix.
func TestCheckThisHost(t *testing.T) {
	out, code := runSetupCmd(t, "check", "--json", "--only", "os,disks")
	var cs []setup.Check
	if err := json.Unmarshal([]byte(strings.SplitN(out, "error:", 2)[0]), &cs); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	fails := 0
	for _, c := range cs {
		if c.Status == setup.Fail {
			fails++
			if c.Fix == "" {
				t.Errorf("%s fails without a fix", c.ID)
			}
		}
	}
	if (fails > 0) != (code == 1) {
		t.Errorf("%d fails, exit %d", fails, code)
	}
}

func TestCustomChangesCLI(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/lvm"), 0o755)
	orig := []byte("devices {\n\tdir = \"/dev\"\n}\n")
	os.WriteFile(filepath.Join(root, "etc/lvm/lvm.conf"), orig, 0o644)
	if out, code := runSetupCmd(t, "custom-changes", "status", "--root", root); code != 1 || !strings.Contains(out, "no   multipath") {
		t.Errorf("status before: exit %d\n%s", code, out)
	}
	if out, code := runSetupCmd(t, "custom-changes", "apply", "--root", root); code != 0 || !strings.Contains(out, "changed /etc/multipath.conf") || !strings.Contains(out, "REBOOT IS REQUIRED") {
		t.Errorf("apply: exit %d\n%s", code, out)
	}
	if out, code := runSetupCmd(t, "custom-changes", "apply", "--root", root); code != 0 || !strings.Contains(out, "nothing changed") {
		t.Errorf("apply twice: exit %d\n%s", code, out)
	}
	if out, code := runSetupCmd(t, "custom-changes", "status", "--root", root); code != 0 || !strings.Contains(out, "All custom changes are applied") {
		t.Errorf("status after: exit %d\n%s", code, out)
	}
	if out, code := runSetupCmd(t, "custom-changes", "revert", "--root", root); code != 0 || !strings.Contains(out, "restored /etc/lvm/lvm.conf") {
		t.Errorf("revert: exit %d\n%s", code, out)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/lvm/lvm.conf")); !bytes.Equal(b, orig) {
		t.Errorf("lvm.conf after revert:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(root, setup.Marker)); err == nil {
		t.Error("marker left after revert")
	}
}

func TestInstallCLI(t *testing.T) {
	root := t.TempDir()
	answers := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(answers, []byte("version: 1\nrole: mt\ncustom_changes:\n  apply: false\n"), 0o600)
	// A master target without the custom changes: 175, with the fix.
	out, code := runSetupCmd(t, "install", "--root", root, "--answers", answers, "--skip-checks")
	if code != exitNoCustom || !strings.Contains(out, "mtconsole custom-changes apply") {
		t.Errorf("exit %d\n%s", code, out)
	}
	// Dry run with the custom changes in the answers: the plan, no change.
	out, code = runSetupCmd(t, "install", "--root", root, "--answers", "../../scripts/examples/mt.yaml", "--skip-checks", "--dry-run")
	if code != 0 || !strings.Contains(out, "custom create /etc/multipath.conf") || !strings.Contains(out, "copy   /usr/local/bin/mtconsole") {
		t.Errorf("dry run: exit %d\n%s", code, out)
	}
	if es, _ := os.ReadDir(root); len(es) != 0 {
		t.Errorf("dry run changed %s", root)
	}
	// The real run, then a second that finds it.
	out, code = runSetupCmd(t, "install", "--root", root, "--answers", "../../scripts/examples/mt.yaml", "--skip-checks")
	if code != 0 || !strings.Contains(out, "Installed.") {
		t.Fatalf("install: exit %d\n%s", code, out)
	}
	out, code = runSetupCmd(t, "install", "--root", root, "--answers", "../../scripts/examples/mt.yaml", "--skip-checks", "--dry-run")
	if code != 0 || !strings.Contains(out, "upgrade of the mt install") || strings.Contains(out, "custom create") {
		t.Errorf("re-run: exit %d\n%s", code, out)
	}
	// A bad answers file is a usage error naming line and key.
	os.WriteFile(answers, []byte("version: 1\nrole: mt\nretention: /x\n"), 0o600)
	if out, code := runSetupCmd(t, "install", "--root", root, "--answers", answers); code != exitUsage || !strings.Contains(out, "a.yaml:3: retention: unknown key") {
		t.Errorf("bad answers: exit %d\n%s", code, out)
	}
	out, code = runSetupCmd(t, "uninstall", "--root", root)
	if code != 0 || !strings.Contains(out, "retention data; --purge-data removes it") {
		t.Errorf("uninstall: exit %d\n%s", code, out)
	}
	if _, code := runSetupCmd(t, "uninstall", "--root", root); code != 1 {
		t.Errorf("uninstall twice: exit %d", code)
	}
}

// mtconsole setup checks its answers, then wants a terminal.
func TestSetupCmd(t *testing.T) {
	answers := filepath.Join(t.TempDir(), "a.yaml")
	os.WriteFile(answers, []byte("version: 1\nrole: mt\nretention: /x\n"), 0o600)
	if out, code := runSetupCmd(t, "setup", "--root", t.TempDir(), "--answers", answers); code != exitUsage || !strings.Contains(out, "a.yaml:3: retention: unknown key") {
		t.Errorf("bad answers: exit %d\n%s", code, out)
	}
	if out, code := runSetupCmd(t, "setup", "--root", t.TempDir(), "--answers", "../../scripts/examples/mt.yaml"); code != exitUsage || !strings.Contains(out, "setup needs a terminal") {
		t.Errorf("no terminal: exit %d\n%s", code, out)
	}
	if _, code := runSetupCmd(t, "setup", "--role", "nope"); code != exitUsage {
		t.Errorf("--role nope: exit %d", code)
	}
}

// A root that is a host tree gives its own disks and host name; a root
// of files only takes this host's disks (as custom-changes does).
func TestSetupOptionsRoots(t *testing.T) {
	fx := filepath.Join("..", "..", "disks", "testdata", "hosts", "vmware-good")
	o, err := setupOptions(fx, setup.DefaultAnswers(), "", true, "")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	if err := o.Env.PM.Install(t.Context(), []string{"lsscsi"}, func(l string) { lines = append(lines, l) }); err != nil || len(lines) != 1 || !strings.Contains(lines[0], "skipped: the root is") {
		t.Errorf("a tree's package install: %v %q", err, lines)
	}
	if o.Host != "mt01" || o.Env.Inventory != nil || o.Env.Root != fx || !o.DryRun || o.Custom == nil || o.VSphere == nil {
		t.Errorf("fixture root: %+v", o)
	}
	if _, err := os.Stat("/sys/block"); err != nil {
		t.Skip("this host has no /sys/block")
	}
	o, err = setupOptions(t.TempDir(), setup.DefaultAnswers(), "", false, "")
	if err != nil || o.Env.Inventory == nil {
		t.Errorf("empty root: %v, inventory %v", err, o.Env.Inventory)
	}
	if _, err := o.VSphere(t.Context(), setup.DefaultAnswers()); err == nil || !strings.Contains(err.Error(), "no vsphere section") {
		t.Errorf("vSphere without answers: %v", err)
	}
}

// Every --dry-run of the commands leaves the root as it was, file for
// file: custom-changes apply and revert, install (with the custom changes
// and packages in its answers), uninstall (of a real install, with
// --purge-data); each prints what it would do.
func TestDryRunCommandsChangeNothing(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/lvm"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/lvm/lvm.conf"), []byte("devices {\n\tdir = \"/dev\"\n}\n"), 0o644)
	dry := func(want string, args ...string) {
		t.Helper()
		before := testutil.Tree(t, root)
		out, code := runSetupCmd(t, append(args, "--root", root, "--dry-run")...)
		if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "Dry run: nothing changed.") {
			t.Errorf("%v: exit %d, want %q:\n%s", args, code, want, out)
		}
		testutil.SameTree(t, root, before)
	}
	dry("would write /etc/multipath.conf", "custom-changes", "apply")
	dry("would write /etc/.appliedmtcustomchanges", "install", "--answers", "../../scripts/examples/mt.yaml", "--skip-checks")
	if out, code := runSetupCmd(t, "custom-changes", "apply", "--root", root); code != 0 {
		t.Fatalf("apply: exit %d\n%s", code, out)
	}
	dry("would write /etc/lvm/lvm.conf", "custom-changes", "revert")
	dry("would write /etc/mtconsole/install.yaml", "install", "--answers", "../../scripts/examples/mt.yaml", "--skip-checks")
	if out, code := runSetupCmd(t, "install", "--root", root, "--answers", "../../scripts/examples/mt.yaml", "--skip-checks"); code != 0 {
		t.Fatalf("install: exit %d\n%s", code, out)
	}
	dry("would remove /etc/mtconsole (and what it holds)", "uninstall", "--purge-data")
}

// The wizard only looks for --readonly, and for a user other than root
// who does not own the root, unless the session is a dry run (it changes
// nothing, so anyone may walk it).
func TestSetupReadOnly(t *testing.T) {
	root := t.TempDir()
	owner := os.Getuid()
	other := owner + 4242
	if owner == 0 {
		other = 4242
	}
	for _, c := range []struct {
		flag, dry bool
		euid      int
		want      string
	}{
		{true, false, 0, "--readonly"},
		{true, true, 0, "--readonly"},
		{false, false, 0, ""},
		{false, false, other, "not root"},
		{false, true, other, ""},
	} {
		if got := setupReadOnly(c.flag, c.dry, c.euid, root); got != c.want {
			t.Errorf("flag %v, dry run %v, euid %d: %q, want %q", c.flag, c.dry, c.euid, got, c.want)
		}
	}
	if got := setupReadOnly(false, false, other, "/"); got != "not root" {
		t.Errorf("a user on /: %q", got)
	}
	if owner == 0 { // a user who owns it may change it
		if err := os.Chown(root, other, -1); err != nil {
			t.Fatal(err)
		}
		owner = other
	}
	if got := setupReadOnly(false, false, owner, root); got != "" {
		t.Errorf("the owner of the root: %q", got)
	}
}

// A read-only wizard's vSphere readiness check pins no certificate: the
// options' hook runs in the mode the options say, whoever sets it.
func TestSetupReadOnlyVSpherePinsNothing(t *testing.T) {
	e := newVSEnv(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, setup.ConfigDir), 0o755)
	a := setup.DefaultAnswers()
	a.VSphere = &struct {
		Address      string `yaml:"address"`
		User         string `yaml:"user"`
		PasswordFile string `yaml:"password_file"`
		Insecure     bool   `yaml:"insecure"`
	}{Address: e.s.URL, User: "admin", PasswordFile: e.pwFile}
	o, err := setupOptions(root, a, "", false, "--readonly")
	if err != nil {
		t.Fatal(err)
	}
	if !o.ReadOnly || o.ReadOnlyReason != "--readonly" {
		t.Fatalf("read-only options: %v %q", o.ReadOnly, o.ReadOnlyReason)
	}
	before := testutil.Tree(t, root)
	o.VSphere(t.Context(), a) // the check may fail (this is no VM of the simulator's): it must write nothing
	testutil.SameTree(t, root, before)
}
