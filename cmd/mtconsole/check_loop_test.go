package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/setup"
)

// `check --targets` on a real loop device with a PV label and a volume
// group (nothing active on it): refused, in text and in --json. The
// test needs root, losetup and lvm2; it touches only the loop devices it
// attaches and undoes everything.
func TestCheckTargetsRefusesPVLoop(t *testing.T) {
	testutil.NeedLoops(t, "pvcreate", "vgcreate", "vgremove", "pvremove")
	pv := testutil.Loop(t, 64<<20, nil)
	vg := "mtctest" + strings.NewReplacer("/", "", "_", "", "-", "").Replace(filepath.Base(filepath.Dir(t.TempDir())))
	testutil.MakePV(t, pv, vg)
	clean := testutil.Loop(t, 64<<20, nil)
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
