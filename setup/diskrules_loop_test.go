package setup

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The test below applies CheckTarget to real loop devices: a PV made by
// pvcreate (with and without a volume group), an ext4 mounted in a
// temporary directory, a GPT made by sgdisk, one too small and a clean
// one. It needs root and the tools (scripts/test.sh installs lvm2 and
// gdisk); it touches only the loop devices it attaches (every LVM
// command is limited to that device with --devices, and writes no
// metadata backup under /etc/lvm), and undoes all of it, even on failure.

func needLoops(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the real loop-device test needs root (run scripts/test.sh as root, as CI does)")
	}
	for _, tool := range append([]string{"losetup", "mount", "umount"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (scripts/test.sh installs lvm2, gdisk and e2fsprogs with apt)", tool)
		}
	}
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LVM_SUPPRESS_FD_WARNINGS=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

// lvmArgs keep an LVM command to one device and out of /etc/lvm.
func lvmArgs(dev string, args ...string) []string {
	return append([]string{"--devices", dev, "--config", "backup { backup = 0 archive = 0 }"}, args...)
}

// attachLoop attaches a sparse file of size bytes in a temporary
// directory, prepared by prep first, and detaches it when the test ends.
func attachLoop(t *testing.T, size int64, prep func(file string)) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(file, size); err != nil {
		t.Fatal(err)
	}
	if prep != nil {
		prep(file)
	}
	dev := strings.TrimSpace(runTool(t, "losetup", "-f", "--show", file))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// makePV puts a PV label on dev (and a volume group named vg when not
// ""), removed again when the test ends.
func makePV(t *testing.T, dev, vg string) {
	t.Helper()
	runTool(t, "pvcreate", lvmArgs(dev, "-q", "-f", dev)...)
	t.Cleanup(func() {
		if out, err := exec.Command("pvremove", lvmArgs(dev, "-q", "-ff", "-y", dev)...).CombinedOutput(); err != nil {
			t.Errorf("pvremove %s: %v: %s", dev, err, out)
		}
	})
	if vg == "" {
		return
	}
	runTool(t, "vgcreate", lvmArgs(dev, "-q", vg, dev)...)
	t.Cleanup(func() {
		if out, err := exec.Command("vgremove", lvmArgs(dev, "-q", "-f", vg)...).CombinedOutput(); err != nil {
			t.Errorf("vgremove %s: %v: %s", vg, err, out)
		}
	})
}

// loopTargetEnv reads this host afresh: the test's devices as they are.
func loopTargetEnv() *Env { return &Env{Root: "/"} }

func TestCheckTargetOnRealLoops(t *testing.T) {
	needLoops(t, "pvcreate", "vgcreate", "vgremove", "pvremove", "sgdisk", "mkfs.ext4")
	const size = 64 << 20
	pvOnly := attachLoop(t, size, nil)
	makePV(t, pvOnly, "")
	pvVG := attachLoop(t, size, nil)
	// A name of this run only: the temporary directory's is unique.
	vg := "mtctest" + strings.NewReplacer("/", "", "_", "", "-", "").Replace(filepath.Base(filepath.Dir(t.TempDir())))
	makePV(t, pvVG, vg)
	mounted := attachLoop(t, size, nil)
	runTool(t, "mkfs.ext4", "-q", "-F", mounted)
	mnt := t.TempDir()
	runTool(t, "mount", mounted, mnt)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", mnt, err, out)
		}
	})
	parted := attachLoop(t, size, func(f string) {
		runTool(t, "sgdisk", "-n1:2048:+20M", "-t1:8300", "-c1:data", f)
	})
	small := attachLoop(t, 16<<20, nil)
	clean := attachLoop(t, size, nil)

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
