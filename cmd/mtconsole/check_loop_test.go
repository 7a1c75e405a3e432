package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/setup"
)

// `check --targets` on a real loop device with a PV label and a volume
// group (nothing active on it): refused, in text and in --json. The
// test needs root, losetup and lvm2; it touches only the loop devices it
// attaches and undoes everything.
func TestCheckTargetsRefusesPVLoop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the real loop-device test needs root (run scripts/test.sh as root, as CI does)")
	}
	for _, tool := range []string{"losetup", "pvcreate", "vgcreate", "vgremove", "pvremove"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (scripts/test.sh installs lvm2 with apt)", tool)
		}
	}
	sh := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env = append(os.Environ(), "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	attach := func() string {
		f := filepath.Join(t.TempDir(), "disk.img")
		os.WriteFile(f, nil, 0o600)
		os.Truncate(f, 64<<20)
		dev := sh("losetup", "-f", "--show", f)
		t.Cleanup(func() {
			if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
				t.Errorf("losetup -d %s: %v: %s", dev, err, out)
			}
		})
		return dev
	}
	lvm := func(dev string, args ...string) []string {
		return append([]string{"--devices", dev, "--config", "backup { backup = 0 archive = 0 }"}, args...)
	}
	pv := attach()
	vg := "mtctest" + strings.NewReplacer("/", "", "_", "", "-", "").Replace(filepath.Base(filepath.Dir(t.TempDir())))
	sh("pvcreate", lvm(pv, "-q", "-f", pv)...)
	t.Cleanup(func() { exec.Command("pvremove", lvm(pv, "-q", "-ff", "-y", pv)...).Run() })
	sh("vgcreate", lvm(pv, "-q", vg, pv)...)
	t.Cleanup(func() { exec.Command("vgremove", lvm(pv, "-q", "-f", vg)...).Run() })
	clean := attach()
	name := filepath.Base(pv)

	out, code := runSetupCmd(t, "check", "--only", "disks", "--targets", name)
	if code != 1 || !strings.Contains(out, "FAIL  Target disks unmounted and unclaimed: "+name+" carries an LVM PV label") || strings.Contains(out, "are free") {
		t.Errorf("text: exit %d\n%s", code, out)
	}
	out, code = runSetupCmd(t, "check", "--only", "disks", "--json", "--targets", pv)
	var cs []setup.Check
	if err := json.Unmarshal([]byte(strings.SplitN(out, "error:", 2)[0]), &cs); err != nil || code != 1 {
		t.Fatalf("json: %v, exit %d\n%s", err, code, out)
	}
	found := false
	for _, c := range cs {
		if c.ID != "disks.targets" {
			continue
		}
		found = true
		if c.Status != setup.Fail || c.Fix == "" || len(c.Targets) != 1 || c.Targets[0].Code != setup.TargetLVMPV ||
			c.Targets[0].Device != name || c.Targets[0].OK || !strings.Contains(c.Targets[0].Reason, "pvremove "+pv) {
			t.Errorf("json: %+v", c)
		}
	}
	if !found {
		t.Errorf("no disks.targets in\n%s", out)
	}
	// A clean loop is not refused: a warning only, for its missing SCSI id.
	out, _ = runSetupCmd(t, "check", "--only", "disks", "--targets", filepath.Base(clean))
	if !strings.Contains(out, "WARN  Target disks unmounted and unclaimed: "+filepath.Base(clean)+" has no stable SCSI id") {
		t.Errorf("clean loop:\n%s", out)
	}
}
