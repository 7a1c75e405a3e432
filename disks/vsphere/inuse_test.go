package vsphere_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks/vsphere"
)

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A disk under a running pair, mounted (through a partition), or held
// by LVM fails its check and names the device and what uses it; free
// disks pass.
func TestInUseChecks(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "proc/self/mountinfo"),
		"22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"+
			"40 22 8:33 / /mnt/with\\040space rw - xfs /dev/sdc1 rw\n")
	for _, d := range []string{"sda", "sdb", "sdc", "sdd"} {
		writeFile(t, filepath.Join(root, "sys/class/block", d, "dev"), map[string]string{"sda": "8:0", "sdb": "8:16", "sdc": "8:32", "sdd": "8:48"}[d]+"\n")
	}
	writeFile(t, filepath.Join(root, "sys/class/block/sdc/sdc1/partition"), "1\n")
	writeFile(t, filepath.Join(root, "sys/class/block/sdc/sdc1/dev"), "8:33\n")
	os.MkdirAll(filepath.Join(root, "sys/class/block/sdd/holders/dm-0"), 0o755)
	os.MkdirAll(filepath.Join(root, "dev/disk/by-id"), 0o755)
	os.Symlink("../../sdb", filepath.Join(root, "dev/disk/by-id/wwn-0x6000c29b"))

	disks := []vsphere.Disk{{File: "[ds] b.vmdk", Device: "/dev/sdb"}, {File: "[ds] c.vmdk", Device: "/dev/sdc"}, {File: "[ds] d.vmdk", Device: "/dev/sdd"}}
	byID := func(cs []vsphere.Check) map[string]vsphere.Check {
		m := map[string]vsphere.Check{}
		for _, c := range cs {
			m[c.ID] = c
		}
		return m
	}
	cs := byID(vsphere.InUseChecks(root, disks, vsphere.PairTargets{Known: true, Socket: "s",
		Targets: map[string]string{"/dev/disk/by-id/wwn-0x6000c29b": "pair-7", "/dev/sdx": "other"}}))
	if c := cs["disks.pairs"]; c.Status != vsphere.Fail || c.Detail != "/dev/sdb is the target of pair pair-7" {
		t.Errorf("pairs: %+v", c)
	}
	if c := cs["disks.mounted"]; c.Status != vsphere.Fail || c.Detail != "/dev/sdc1 on /mnt/with space" {
		t.Errorf("mounted: %+v", c)
	}
	if c := cs["disks.holders"]; c.Status != vsphere.Fail || c.Detail != "/dev/sdd by dm-0" {
		t.Errorf("holders: %+v", c)
	}
	if c := cs["disks.mapped"]; c.Status != vsphere.Pass {
		t.Errorf("mapped: %+v", c)
	}

	// Only sdb, no pairs running: all pass.
	cs = byID(vsphere.InUseChecks(root, disks[:1], vsphere.PairTargets{Socket: "/run/x.sock"}))
	for id, c := range cs {
		if c.Status != vsphere.Pass {
			t.Errorf("%s: %+v", id, c)
		}
	}
	if !strings.Contains(cs["disks.pairs"].Detail, "no replication agent answers on /run/x.sock") {
		t.Errorf("pairs: %+v", cs["disks.pairs"])
	}
	// An agent that cannot be asked, an unmapped disk, no mount table: fail.
	os.Remove(filepath.Join(root, "proc/self/mountinfo"))
	cs = byID(vsphere.InUseChecks(root, []vsphere.Disk{{File: "[ds] e.vmdk"}}, vsphere.PairTargets{Socket: "s", Err: errors.New("permission denied")}))
	for _, id := range []string{"disks.pairs", "disks.mapped", "disks.mounted"} {
		if cs[id].Status != vsphere.Fail || cs[id].Fix == "" {
			t.Errorf("%s: %+v", id, cs[id])
		}
	}
}
