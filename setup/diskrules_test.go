package setup

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks"
)

const naaC = "6000c29bb1b2c3d4e5f60718293a4b5c" // sdc of vmware-good (disks/fixture_test.go)

// targetEnv is a fixture host's Env whose inventory a case may change
// first (a file system, a 4096-byte disk, no SCSI ids, more disks).
func targetEnv(t *testing.T, host string, change func(inv *disks.Inventory)) *Env {
	t.Helper()
	e := fixtureEnv(t, host)
	inv, err := disks.Read(disks.Host{Root: e.Root, Statfs: e.Statfs})
	if err != nil {
		t.Fatal(err)
	}
	if change != nil {
		change(inv)
	}
	e.Inventory = inv
	return e
}

// addDisk copies vmware-good's sdc as a new clean disk of that size.
func addDisk(inv *disks.Inventory, name string, size uint64) {
	d := *inv.Disk("sdc")
	d.Name, d.Path, d.Size = name, "/dev/"+name, size
	d.ByID = []string{"scsi-36000c29" + name + "00000000000000000000000"}
	inv.Disks = append(inv.Disks, d)
}

func TestCheckTargetOnFixtures(t *testing.T) {
	withFS := func(inv *disks.Inventory) { inv.Disk("sdc").FSType = disks.FSExt4 }
	cases := []struct {
		name   string
		host   string
		change func(*disks.Inventory)
		req    TargetRequest
		code   string // "" for OK
		reason []string
	}{
		{"clean disk", "vmware-good", nil, TargetRequest{Path: "/dev/sdc", SourceName: "sda", SourceSize: 100 * gib, SourceBlockSize: 512}, "", nil},
		{"kernel name", "vmware-good", nil, TargetRequest{Path: "sdc"}, "", nil},
		{"by-id path", "vmware-good", nil, TargetRequest{Path: "/dev/disk/by-id/wwn-0x" + naaC}, "", nil},
		{"root disk", "vmware-good", nil, TargetRequest{Path: "/dev/sda"}, TargetOSDisk, []string{"/ is on sda3", "choose another disk"}},
		{"root disk, virtio", "virtio-one-disk", nil, TargetRequest{Path: "/dev/vda"}, TargetOSDisk, []string{"/ is on vda"}},
		{"root on LVM", "lvm-root", nil, TargetRequest{Path: "sda"}, TargetOSDisk, []string{"/ is on dm-0"}},
		{"retention disk", "vmware-good", nil, TargetRequest{Path: "/dev/sdb"}, TargetRetention, []string{"/mnt/retention is on sdb1"}},
		{"retention dirs of the agent", "vmware-good", nil, TargetRequest{Path: "/dev/sdb", RetentionDirs: []string{"/mnt/retention/journal"}}, TargetRetention, []string{"/mnt/retention/journal"}},
		{"retention on a PV", "lvm-retention", nil, TargetRequest{Path: "/dev/sdb"}, TargetRetention, []string{"sdb holds the retention volume"}},
		{"PV label, nothing active", "vmware-good", nil, TargetRequest{Path: "/dev/sdd"}, TargetLVMPV, []string{"sdd carries an LVM PV label", "Pb0q4M-JB0d", "pvremove /dev/sdd"}},
		{"multipath path", "multipath", nil, TargetRequest{Path: "/dev/sdd"}, TargetHolders, []string{"dm-0 (multipath mpatha)", "multipath -f"}},
		{"in use by a pair", "vmware-good", nil, TargetRequest{Path: "/dev/sdc", InUse: map[string]string{"/dev/disk/by-id/scsi-3" + naaC: "p7"}}, TargetInUse, []string{"pair p7", "unprotect p7"}},
		{"too small", "vmware-good", nil, TargetRequest{Path: "/dev/sdc", SourceName: "sdb", SourceSize: 100*gib + 1}, TargetTooSmall, []string{"smaller than source sdb", "grow sdc"}},
		{"block size", "vmware-good", nil, TargetRequest{Path: "/dev/sdc", SourceName: "sdb", SourceBlockSize: 4096}, TargetBlockSize, []string{"512-byte logical blocks", "4096-byte"}},
		{"no such disk", "vmware-good", nil, TargetRequest{Path: "/dev/sdz"}, TargetNotFound, []string{"/dev/sdz is not a disk of this host"}},
		{"no such by-id", "vmware-good", nil, TargetRequest{Path: "/dev/disk/by-id/scsi-3nope"}, TargetNotFound, []string{"does not exist"}},
		{"partition", "vmware-good", nil, TargetRequest{Path: "/dev/sdb1"}, TargetNotADisk, []string{"partition 1 of sdb"}},
		{"mapper", "multipath", nil, TargetRequest{Path: "/dev/mapper/mpatha"}, TargetNotADisk, []string{"mpatha"}},
		{"cd-rom", "vmware-good", nil, TargetRequest{Path: "/dev/sr0"}, TargetNotADisk, nil},
		{"empty path", "vmware-good", nil, TargetRequest{}, TargetNotFound, nil},
		{"file without AllowFiles", "vmware-good", nil, TargetRequest{Path: "/var/lib/t.img"}, TargetFileNotAllowed, []string{"--allow-files"}},
		{"no SCSI id", "vmware-good", func(inv *disks.Inventory) { d := inv.Disk("sdc"); d.ByID, d.Designators = nil, nil },
			TargetRequest{Path: "/dev/sdc"}, TargetNoSCSIID, []string{"disk.EnableUUID = TRUE", "--allow-no-scsi-id"}},
		{"no SCSI id allowed", "vmware-good", func(inv *disks.Inventory) { d := inv.Disk("sdc"); d.ByID, d.Designators = nil, nil },
			TargetRequest{Path: "/dev/sdc", AllowNoSCSIID: true}, "", nil},
		{"SCSI id from VPD only", "vmware-good", func(inv *disks.Inventory) { inv.Disk("sdc").ByID = nil }, TargetRequest{Path: "/dev/sdc"}, "", nil},
		{"file system, not confirmed", "vmware-good", withFS, TargetRequest{Path: "/dev/sdc"}, TargetNeedsConfirm, []string{"ext4", "type sdc"}},
		{"file system, wrong name typed", "vmware-good", withFS, TargetRequest{Path: "/dev/sdc", Overwrite: "sdd"}, TargetNeedsConfirm, []string{`"sdd" was typed`}},
		{"file system, confirmed", "vmware-good", withFS, TargetRequest{Path: "/dev/sdc", Overwrite: "sdc"}, "", nil},
		{"partition table", "vmware-good", func(inv *disks.Inventory) {
			d := inv.Disk("sdc")
			d.Table, d.Partitions = "gpt", []disks.Partition{{Block: disks.Block{Name: "sdc1", FSType: "xfs"}, Number: 1}}
		}, TargetRequest{Path: "/dev/sdc"}, TargetNeedsConfirm, []string{"a gpt partition table (sdc1 xfs)"}},
		{"mounted partition", "vmware-good", func(inv *disks.Inventory) {
			d := inv.Disk("sdc")
			d.Table, d.Partitions = "gpt", []disks.Partition{{Block: disks.Block{Name: "sdc1", FSType: "xfs", Mountpoints: []string{"/data"}}, Number: 1}}
		}, TargetRequest{Path: "/dev/sdc", Overwrite: "sdc"}, TargetMounted, []string{"sdc1 mounted on /data", "umount"}},
		{"PV on a partition", "vmware-good", func(inv *disks.Inventory) {
			d := inv.Disk("sdc")
			d.Table, d.Partitions = "gpt", []disks.Partition{{Block: disks.Block{Name: "sdc1", PV: &disks.PVLabel{Sector: 1}}, Number: 1}}
		}, TargetRequest{Path: "/dev/sdc", Overwrite: "sdc"}, TargetLVMPV, []string{"sdc1 carries an LVM PV label"}},
		{"md member", "vmware-good", func(inv *disks.Inventory) {
			inv.Disk("sdc").Holders = []string{"md0"}
			inv.Disks = append(inv.Disks, disks.Disk{Block: disks.Block{Name: "md0", Size: gib}, Kind: disks.KindMD})
		}, TargetRequest{Path: "/dev/sdc"}, TargetHolders, []string{"md0 (software RAID)", "mdadm --stop"}},
		{"unreadable", "vmware-good", func(inv *disks.Inventory) { inv.Disk("sdc").Err = "open /dev/sdc: permission denied" },
			TargetRequest{Path: "/dev/sdc"}, TargetUnreadable, []string{"permission denied", "run as root"}},
		{"a VPD error is not unreadable", "vmware-good", func(inv *disks.Inventory) { inv.Disk("sdc").Err = "VPD page 0x83: says 9 bytes, has 8" },
			TargetRequest{Path: "/dev/sdc"}, "", nil},
		{"read-only", "vmware-good", func(inv *disks.Inventory) { inv.Disk("sdc").ReadOnly = true }, TargetRequest{Path: "/dev/sdc"}, TargetReadOnly, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := targetEnv(t, c.host, c.change)
			v := CheckTarget(e, c.req)
			if v.Code != c.code || v.OK != (c.code == "") || (v.Reason == "") != v.OK {
				t.Fatalf("%s: code %q ok %v reason %q, want code %q", c.req.Path, v.Code, v.OK, v.Reason, c.code)
			}
			for _, r := range c.reason {
				if !strings.Contains(v.Reason, r) {
					t.Errorf("reason %q lacks %q", v.Reason, r)
				}
			}
			if !v.OK && !strings.Contains(v.Reason, ":") {
				t.Errorf("reason %q does not say what to do", v.Reason)
			}
		})
	}
	// With the retention directory elsewhere, the same disks are refused
	// for what they are: a mounted disk; a PV under an active volume.
	e := targetEnv(t, "lvm-root", nil)
	e.Retention = "/srv/retention"
	if v := CheckTarget(e, TargetRequest{Path: "sdb"}); v.Code != TargetMounted || !strings.Contains(v.Reason, "sdb is mounted on /mnt/retention") {
		t.Errorf("mounted whole disk: %+v", v)
	}
	e = targetEnv(t, "lvm-retention", nil)
	e.Retention = "/srv/retention"
	if v := CheckTarget(e, TargetRequest{Path: "sdb"}); v.Code != TargetLVMPV || !strings.Contains(v.Reason, "sdb carries an LVM PV label") {
		t.Errorf("PV under an active volume: %+v", v)
	}

	// What an OK verdict carries.
	e = targetEnv(t, "vmware-good", nil)
	v := CheckTarget(e, TargetRequest{Path: "/dev/disk/by-id/scsi-3" + naaC})
	if !v.OK || v.Device != "sdc" || v.Size != 100*gib || v.StablePath != "/dev/disk/by-id/scsi-3"+naaC || v.Confirm != "" {
		t.Errorf("%+v", v)
	}
	e = targetEnv(t, "vmware-good", func(inv *disks.Inventory) { inv.Disk("sdc").FSType = disks.FSXFS })
	v = CheckTarget(e, TargetRequest{Path: "sdc", Overwrite: "sdc"})
	if !v.OK || v.Confirm != "sdc" || !strings.Contains(v.Detail, "xfs") || !strings.Contains(v.Detail, "overwritten") {
		t.Errorf("confirmed overwrite: %+v", v)
	}
}

func TestCheckTargetFiles(t *testing.T) {
	// A root of our own with the fixture's inventory: files live below it.
	e := targetEnv(t, "vmware-good", nil)
	e.Root = t.TempDir()
	os.MkdirAll(filepath.Join(e.Root, "demo/ret"), 0o755)
	os.WriteFile(filepath.Join(e.Root, "demo/t1.img"), make([]byte, 4096), 0o600)
	os.WriteFile(filepath.Join(e.Root, "demo/ret/t.img"), make([]byte, 4096), 0o600)
	cases := []struct {
		req  TargetRequest
		code string
	}{
		{TargetRequest{Path: "/demo/t1.img", AllowFiles: true, SourceSize: 4096}, ""},
		{TargetRequest{Path: "/demo/t1.img", SourceSize: 4096}, TargetFileNotAllowed},
		{TargetRequest{Path: "/demo/t1.img", AllowFiles: true, SourceSize: 4097}, TargetTooSmall},
		{TargetRequest{Path: "/demo/nope.img", AllowFiles: true, SourceSize: 4096}, TargetNotFound},
		{TargetRequest{Path: "demo/t1.img", AllowFiles: true}, TargetNotFound},
		{TargetRequest{Path: "/demo", AllowFiles: true}, TargetNotRegular},
		{TargetRequest{Path: "/demo/ret/t.img", AllowFiles: true, RetentionDirs: []string{"/demo/ret"}}, TargetRetention},
		{TargetRequest{Path: "/demo/t1.img", AllowFiles: true, InUse: map[string]string{"/demo/./t1.img": "p1"}}, TargetInUse},
	}
	for _, c := range cases {
		v := CheckTarget(e, c.req)
		if v.Code != c.code || v.OK != (c.code == "") || v.Device != "" {
			t.Errorf("%+v: %+v, want code %q", c.req, v, c.code)
		}
		if c.code == TargetNotFound && c.req.SourceSize > 0 && !strings.Contains(v.Reason, "truncate -s 4096 /demo/nope.img") {
			t.Errorf("not found says how to make it: %s", v.Reason)
		}
	}
}

func TestSuggestTargets(t *testing.T) {
	e := targetEnv(t, "vmware-good", func(inv *disks.Inventory) {
		addDisk(inv, "sde", 200*gib)
		addDisk(inv, "sdf", 100*gib)
		addDisk(inv, "sdg", 80*gib)
		addDisk(inv, "sdh", 300*gib)
		inv.Disk("sdh").FSType = disks.FSExt4 // needs a typed confirmation: never suggested
	})
	src := func(name string, size int64) TargetRequest {
		return TargetRequest{SourceName: name, SourceSize: size, SourceBlockSize: 512}
	}
	got := SuggestTargets(e, []TargetRequest{src("a", 90*gib), src("b", 60*gib), src("c", 150*gib), src("d", 250*gib), src("a", gib)})
	// Largest first, each the smallest free disk that fits: c→sde, a→sdc
	// (sdc before sdf by name), b→sdg; d fits only sdh, which holds ext4;
	// the second "a" is ignored; sda (OS), sdb (retention), sdd (PV) and
	// sr0 are never offered.
	want := map[string]string{"a": "/dev/sdc", "b": "/dev/sdg", "c": "/dev/sde"}
	if !equalMaps(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	// A disk in use by a pair is skipped; the next one takes its place.
	a := src("a", 90*gib)
	a.InUse = map[string]string{"/dev/sdc": "p1"}
	if got := SuggestTargets(e, []TargetRequest{a}); !equalMaps(got, map[string]string{"a": "/dev/sdf"}) {
		t.Errorf("in use: %v", got)
	}
	// Stable: the same answer every time.
	for i := 0; i < 5; i++ {
		if g := SuggestTargets(e, []TargetRequest{src("a", 90*gib), src("b", 60*gib), src("c", 150*gib)}); !equalMaps(g, want) {
			t.Fatalf("run %d: %v", i, g)
		}
	}
	// Every suggestion passes CheckTarget.
	for s, p := range want {
		if v := CheckTarget(e, TargetRequest{Path: p, SourceName: s}); !v.OK {
			t.Errorf("%s → %s: %+v", s, p, v)
		}
	}
	// The good host as it is: one free disk.
	if got := SuggestTargets(targetEnv(t, "vmware-good", nil), []TargetRequest{src("x", 10*gib), src("y", 10*gib)}); len(got) != 1 || got["x"] != "/dev/sdc" {
		t.Errorf("vmware-good: %v", got)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// disks.targets lists the free disks without the PV-labelled one.
func TestTargetCheckListsFreeDisks(t *testing.T) {
	cs, err := Run(context.Background(), fixtureEnv(t, "vmware-good"), GroupDisks)
	if err != nil {
		t.Fatal(err)
	}
	if c := byID(cs)["disks.targets"]; c.Status != Pass || c.Detail != "no targets chosen; free for targets: sdc" {
		t.Errorf("%+v", c)
	}
	e := fixtureEnv(t, "vmware-good")
	e.Targets = []string{"sdc", "sdd"}
	cs, _ = Run(context.Background(), e, GroupDisks)
	c := byID(cs)["disks.targets"]
	if c.Status != Fail || !strings.Contains(c.Detail, "sdd carries an LVM PV label") || strings.Contains(c.Detail, "are free") ||
		len(c.Targets) != 2 || !c.Targets[0].OK || c.Targets[1].Code != TargetLVMPV {
		t.Errorf("%+v", c)
	}
}
