package setup

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
)

// The test below applies CheckTarget to real loop devices: a PV made by
// pvcreate (with and without a volume group), an ext4 mounted in a
// temporary directory, a GPT made by sgdisk, one too small and a clean
// one. It needs root and the tools (scripts/test.sh installs lvm2 and
// gdisk); it touches only the loop devices it attaches (every LVM
// command is limited to that device with --devices, and writes no
// metadata backup under /etc/lvm), and undoes all of it, even on failure.

// loopTargetEnv reads this host afresh: the test's devices as they are.
func loopTargetEnv() *Env { return &Env{Root: "/"} }

func TestCheckTargetOnRealLoops(t *testing.T) {
	testutil.NeedLoops(t, "mount", "umount", "pvcreate", "vgcreate", "vgremove", "pvremove", "sgdisk", "mkfs.ext4")
	const size = 64 << 20
	pvOnly := testutil.Loop(t, size, nil)
	testutil.MakePV(t, pvOnly, "")
	pvVG := testutil.Loop(t, size, nil)
	// A name of this run only: the temporary directory's is unique.
	vg := "mtctest" + strings.NewReplacer("/", "", "_", "", "-", "").Replace(filepath.Base(filepath.Dir(t.TempDir())))
	testutil.MakePV(t, pvVG, vg)
	mounted := testutil.Loop(t, size, nil)
	testutil.Run(t, "mkfs.ext4", "-q", "-F", mounted)
	mnt := t.TempDir()
	testutil.Run(t, "mount", mounted, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	parted := testutil.Loop(t, size, func(f string) {
		testutil.Run(t, "sgdisk", "-n1:2048:+20M", "-t1:8300", "-c1:data", f)
	})
	small := testutil.Loop(t, 16<<20, nil)
	clean := testutil.Loop(t, size, nil)

	e := loopTargetEnv()
	req := func(dev string) TargetRequest {
		return TargetRequest{Path: dev, SourceName: "sda", SourceSize: 32 << 20, SourceBlockSize: 512, AllowNoSCSIID: true}
	}
	name := filepath.Base
	cases := []struct {
		dev, code string
		reason    []string
	}{
		{pvOnly, TargetLVMPV, []string{name(pvOnly) + " carries an LVM PV label", "pvremove " + pvOnly}},
		{pvVG, TargetLVMPV, []string{name(pvVG) + " carries an LVM PV label"}},
		{mounted, TargetMounted, []string{name(mounted) + " is mounted on " + mnt, "umount"}},
		{parted, TargetNeedsConfirm, []string{"a gpt partition table", "type " + name(parted)}},
		{small, TargetTooSmall, []string{"16 MB", "smaller than source sda"}},
		{clean, "", nil},
	}
	for _, c := range cases {
		v := CheckTarget(e, req(c.dev))
		if v.Code != c.code || v.OK != (c.code == "") || v.Device != name(c.dev) {
			t.Errorf("%s: %+v, want code %q", c.dev, v, c.code)
			continue
		}
		for _, r := range c.reason {
			if !strings.Contains(v.Reason, r) {
				t.Errorf("%s: reason %q lacks %q", c.dev, v.Reason, r)
			}
		}
	}
	// The partitioned loop passes once its name is typed.
	r := req(parted)
	r.Overwrite = name(parted)
	if v := CheckTarget(e, r); !v.OK || v.Confirm != name(parted) || !strings.Contains(v.Detail, "gpt") {
		t.Errorf("%s confirmed: %+v", parted, v)
	}
	// A loop has no SCSI id: refused unless allowed.
	r = req(clean)
	r.AllowNoSCSIID = false
	if v := CheckTarget(e, r); v.Code != TargetNoSCSIID {
		t.Errorf("%s without --allow-no-scsi-id: %+v", clean, v)
	}
	// And once it is the target of a pair, it is in use.
	r = req(clean)
	r.InUse = map[string]string{clean: "p1"}
	if v := CheckTarget(e, r); v.Code != TargetInUse {
		t.Errorf("%s in use: %+v", clean, v)
	}
}
