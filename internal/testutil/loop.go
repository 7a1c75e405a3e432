package testutil

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Real block devices for tests: loop devices over sparse files in the
// test's temporary directory, and LVM labels on them. Every helper undoes
// what it made when the test ends, even on failure, and touches nothing
// else: each LVM command is kept to its one device (--devices) and writes
// no metadata backup under /etc/lvm.

// NeedLoops skips the test unless it runs as root with losetup and tools
// (scripts/test.sh runs as root and installs them with apt).
func NeedLoops(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the real loop-device test needs root (run scripts/test.sh as root, as CI does)")
	}
	for _, tool := range append([]string{"losetup"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIP: %s is not installed (scripts/test.sh installs lvm2, gdisk and xfsprogs with apt)", tool)
		}
	}
}

// Run runs a tool in the C locale and returns its standard output; a
// failure ends the test with the tool's standard error.
func Run(t testing.TB, name string, args ...string) string {
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

// Loop attaches a sparse file of size bytes, prepared by prep (when not
// nil) before it is attached, with losetup's extra args (-P scans
// partitions), and detaches it when the test ends. It returns /dev/loopN.
func Loop(t testing.TB, size int64, prep func(file string), args ...string) string {
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
	dev := strings.TrimSpace(Run(t, "losetup", append(append([]string{"-f", "--show"}, args...), file)...))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "-d", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup -d %s: %v: %s", dev, err, out)
		}
	})
	return dev
}

// LVMArgs keep an LVM command to one device and out of /etc/lvm.
func LVMArgs(dev string, args ...string) []string {
	return append([]string{"--devices", dev, "--config", "backup { backup = 0 archive = 0 }"}, args...)
}

// MakePV puts a PV label on dev, and a volume group vg on it when vg is
// not "", both removed again when the test ends.
func MakePV(t testing.TB, dev, vg string) {
	t.Helper()
	Run(t, "pvcreate", LVMArgs(dev, "-q", "-f", dev)...)
	t.Cleanup(func() {
		if out, err := exec.Command("pvremove", LVMArgs(dev, "-q", "-ff", "-y", dev)...).CombinedOutput(); err != nil {
			t.Errorf("pvremove %s: %v: %s", dev, err, out)
		}
	})
	if vg == "" {
		return
	}
	Run(t, "vgcreate", LVMArgs(dev, "-q", vg, dev)...)
	t.Cleanup(func() {
		if out, err := exec.Command("vgremove", LVMArgs(dev, "-q", "-f", vg)...).CombinedOutput(); err != nil {
			t.Errorf("vgremove %s: %v: %s", vg, err, out)
		}
	})
}
