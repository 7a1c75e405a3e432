package setup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks"
	"github.com/mtconsole/mtconsole/internal/testutil"
)

// A dry-run Executor performs nothing, whoever calls it: the custom
// changes' apply and revert (with lvmetad's links), an install plan and
// an uninstall plan, a command and a package install leave the tree as
// it was, and each says what it would do, naming paths as the host has
// them.
func TestDryRunExecutorChangesNothing(t *testing.T) {
	inv, err := disks.Read(disks.Host{Root: filepath.Join("..", "disks", "testdata", "hosts", "lvm-root"),
		Statfs: func(string) (disks.Space, error) { return disks.Space{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for p, s := range map[string]string{"/etc/lvm/lvm.conf": origLVM, "/lib/systemd/system/lvm2-lvmetad.service": "[Unit]\n"} {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(t.TempDir(), "mtconsole")
	os.WriteFile(bin, []byte("binary"), 0o755)
	before := testutil.Tree(t, root)
	x := DryRun(root)

	cu := &Custom{Root: root, Inv: inv, BootID: "b", Exec: x}
	changed, err := cu.Apply()
	if err != nil || len(changed) != 5 {
		t.Fatalf("dry apply: %v %v", changed, err)
	}
	if _, err := cu.Revert(); err != nil { // no backups: nothing to say
		t.Fatal(err)
	}
	p, err := PlanInstall(InstallOptions{Root: root, Answers: DefaultAnswers(), Binary: bin, Version: "1"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := p.Execute(context.Background(), x, &out); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "done") || !strings.Contains(out.String(), "would write "+UnitPath) {
		t.Errorf("dry Execute said:\n%s", out.String())
	}
	pm := allInstalled()
	if err := x.Install(context.Background(), pm, []string{"lsscsi"}, nil); err != nil || len(pm.asked) != 0 {
		t.Errorf("dry install: %v, asked %v", err, pm.asked)
	}
	if err := x.Run(context.Background(), []string{"touch", filepath.Join(root, "ran")}, nil, nil); err != nil {
		t.Fatal(err)
	}
	testutil.SameTree(t, root, before)

	would := strings.Join(x.Would(0), "\n")
	for _, w := range []string{
		"would write /etc/multipath.conf (", "would write /etc/lvm/lvm.conf (", "replaces " + strconv.Itoa(len(origLVM)) + " bytes",
		"would link /etc/systemd/system/lvm2-lvmetad.service → /dev/null", "would write " + Marker,
		"would write " + StateDir + "/changed-in-boot", "would mkdir /etc/mtconsole (0700)",
		"would run: fake-install lsscsi", "would run: touch " + root + "/ran",
	} {
		if !strings.Contains(would, w) {
			t.Errorf("no %q in what the dry run would do:\n%s", w, would)
		}
	}
	if strings.Count(would, "would mkdir "+StateDir+"/backup/etc (") != 1 {
		t.Errorf("a directory made twice:\n%s", would)
	}

	// Uninstall: really install, then a dry uninstall removes nothing.
	if err := p.Execute(context.Background(), nil, &out); err != nil {
		t.Fatal(err)
	}
	u, err := PlanUninstall(root, true)
	if err != nil {
		t.Fatal(err)
	}
	installed := testutil.Tree(t, root)
	x = DryRun(root)
	if err := u.Execute(context.Background(), x, &out); err != nil {
		t.Fatal(err)
	}
	testutil.SameTree(t, root, installed)
	if w := strings.Join(x.Would(0), "\n"); !strings.Contains(w, "would remove "+ConfigDir+" (and what it holds)") {
		t.Errorf("dry uninstall would:\n%s", w)
	}
	// The zero Executor performs.
	if err := (&Executor{}).WriteFile(filepath.Join(root, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "f")); string(b) != "x" {
		t.Errorf("zero Executor wrote %q", b)
	}
}
