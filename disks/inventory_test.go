package disks

import (
	"encoding/binary"
	"reflect"
	"strings"
	"testing"
)

func readFixture(t *testing.T, name string) *Inventory {
	t.Helper()
	inv, err := Read(fixtureHost(t, name))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range inv.Disks {
		if d.Err != "" {
			t.Errorf("%s: %s: %s", name, d.Name, d.Err)
		}
	}
	return inv
}

func TestInventoryVMware(t *testing.T) {
	inv := readFixture(t, "vmware-good")
	var names []string
	for _, d := range inv.Disks {
		names = append(names, d.Name)
	}
	if want := []string{"sda", "sdb", "sdc", "sdd", "sr0"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("disks %v, want %v", names, want)
	}
	sda := inv.Disk("sda")
	if sda.Kind != KindSCSI || sda.Vendor != "VMware" || sda.Model != "Virtual disk" || sda.Size != 120*gib || !sda.Rotational {
		t.Errorf("sda: %+v", sda)
	}
	if sda.Table != "mbr" || len(sda.Partitions) != 3 {
		t.Fatalf("sda table %q, %d partitions", sda.Table, len(sda.Partitions))
	}
	p := sda.Partitions
	if p[0].Type != "0x83" || p[1].TypeName != "swap" || p[2].FSType != FSXFS || p[1].FSType != FSSwap || p[0].FSType != FSExt4 {
		t.Errorf("sda partitions: %+v", p)
	}
	if p[2].Start != 5121*mib || p[2].Size != 117*gib {
		t.Errorf("sda3 start %d size %d", p[2].Start, p[2].Size)
	}
	if inv.RootDevice != "sda3" || !reflect.DeepEqual(inv.RootDisks, []string{"sda"}) || inv.BootDevice != "sda1" {
		t.Errorf("root %q %v boot %q", inv.RootDevice, inv.RootDisks, inv.BootDevice)
	}
	if len(inv.Swaps) != 1 || inv.Swaps[0].Device != "sda2" || inv.Swaps[0].Size != 4194300<<10 {
		t.Errorf("swaps %+v", inv.Swaps)
	}
	sdb := inv.Disk("sdb")
	if sdb.Table != "gpt" || sdb.TableID != "8B3C5E2A-1D4F-4A6B-9C7D-0E1F2A3B4C5D" || sdb.Partitions[0].TypeName != "linux" || sdb.Partitions[0].Label != "part1" {
		t.Errorf("sdb: %+v", sdb)
	}
	if m := inv.Mount("/mnt/retention"); m == nil || m.Device != "sdb1" || m.FSType != "ext4" || m.Space == nil || m.Space.Avail != 55*gib {
		t.Errorf("retention mount %+v", m)
	}
	if m := inv.MountOf("/mnt/retention/mtconsole/p1"); m == nil || m.Mountpoint != "/mnt/retention" {
		t.Errorf("MountOf: %+v", m)
	}
	if want := []string{"scsi-3" + naaA, "wwn-0x" + naaA}; !reflect.DeepEqual(sda.ByID, want) {
		t.Errorf("sda by-id %v", sda.ByID)
	}
	if len(sda.Designators) != 2 || !sda.Designators[0].Stable() || sda.Designators[0].WWID() != "3"+naaA || sda.Designators[1].Stable() {
		t.Errorf("sda designators %+v", sda.Designators)
	}
	sdd := inv.Disk("sdd")
	if sdd.Table != "" || sdd.FSType != FSLVM2 || sdd.PV == nil || sdd.PV.UUID != "Pb0q4M-JB0d-t8i2-mrHR-Pf3P-jUhe-9X2hzM" || sdd.PV.Sector != 1 {
		t.Errorf("sdd: fs %q pv %+v", sdd.FSType, sdd.PV)
	}
	if sr := inv.Disk("sr0"); sr.Size != 0 || sr.Err != "" {
		t.Errorf("empty cd-rom: %+v", sr)
	}
}

func TestInventoryVirtioOneDisk(t *testing.T) {
	inv := readFixture(t, "virtio-one-disk")
	if len(inv.Disks) != 1 {
		t.Fatalf("%d disks", len(inv.Disks))
	}
	d := inv.Disks[0]
	if d.Kind != KindVirtio || d.Table != "" || d.FSType != FSExt4 || len(d.Designators) != 0 || len(d.ByID) != 0 {
		t.Errorf("vda %+v", d)
	}
	if inv.RootDevice != "vda" || !reflect.DeepEqual(inv.RootDisks, []string{"vda"}) || inv.BootDevice != "" {
		t.Errorf("root %q %v boot %q", inv.RootDevice, inv.RootDisks, inv.BootDevice)
	}
}

func TestInventoryLVMRoot(t *testing.T) {
	inv := readFixture(t, "lvm-root")
	_, p := inv.Partition("sda2")
	if p == nil || !p.IsLVM() || p.PV == nil || p.FSType != FSLVM2 {
		t.Fatalf("sda2: %+v", p)
	}
	if got := inv.LVMHolders(&p.Block); !reflect.DeepEqual(got, []string{"dm-0", "dm-1"}) {
		t.Errorf("LVM holders of sda2: %v", got)
	}
	if inv.RootDevice != "dm-0" || !reflect.DeepEqual(inv.RootDisks, []string{"sda"}) {
		t.Errorf("root %q on %v", inv.RootDevice, inv.RootDisks)
	}
	if m := inv.Mapper("vg0-root"); m == nil || m.FSType != FSXFS || !strings.HasPrefix(m.UUID, "LVM-") {
		t.Errorf("vg0-root: %+v", m)
	}
	if len(inv.Swaps) != 1 || inv.Swaps[0].Device != "dm-1" {
		t.Errorf("swaps %+v", inv.Swaps)
	}
	if _, p1 := inv.Partition("sda1"); p1.IsLVM() || p1.TypeName != "linux" {
		t.Errorf("sda1 %+v", p1)
	}
}

func TestInventoryLVMRetention(t *testing.T) {
	inv := readFixture(t, "lvm-retention")
	m := inv.Mount("/mnt/retention")
	if m == nil || m.Device != "dm-0" || m.Source != "/dev/mapper/vgret-ret" {
		t.Fatalf("retention mount %+v", m)
	}
	if got := inv.DisksUnder(m.Device); !reflect.DeepEqual(got, []string{"sdb"}) {
		t.Errorf("disks under retention: %v", got)
	}
	sdb := inv.Disk("sdb")
	if sdb.PV == nil || len(inv.LVMHolders(&sdb.Block)) != 1 {
		t.Errorf("sdb pv %+v holders %v", sdb.PV, sdb.Holders)
	}
}

func TestInventoryNoSCSIIDs(t *testing.T) {
	inv := readFixture(t, "no-scsi-ids")
	for _, d := range inv.Disks {
		if len(d.ByID) != 0 {
			t.Errorf("%s by-id %v", d.Name, d.ByID)
		}
		for _, ds := range d.Designators {
			if ds.Stable() {
				t.Errorf("%s: %+v is not a LUN designator", d.Name, ds)
			}
		}
	}
	if ds := inv.Disk("sdb").Designators; len(ds) != 1 || ds[0].Association != "port" || ds[0].Type != "type-4" {
		t.Errorf("sdb designators %+v", ds)
	}
}

func TestInventoryMultipath(t *testing.T) {
	inv := readFixture(t, "multipath")
	m := inv.Mapper("mpatha")
	if m == nil || !reflect.DeepEqual(m.Slaves, []string{"sdc", "sdd"}) || !strings.HasPrefix(m.UUID, "mpath-") {
		t.Fatalf("mpatha %+v", m)
	}
	for _, n := range []string{"sdc", "sdd"} {
		if d := inv.Disk(n); !reflect.DeepEqual(d.Holders, []string{"dm-0"}) || len(inv.LVMHolders(&d.Block)) != 0 {
			t.Errorf("%s holders %v", n, d.Holders)
		}
	}
}

func TestReadNoSysfs(t *testing.T) {
	_, err := Read(Host{Root: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no /sys/block") {
		t.Fatalf("err %v", err)
	}
}

func TestProbe(t *testing.T) {
	mk := func(n int, f func(b []byte)) []byte { b := make([]byte, n); f(b); return b }
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, ""},
		{"zeros", make([]byte, ProbeSize), ""},
		{"xfs", fsImage("xfs"), FSXFS},
		{"ext2", fsImage("ext2"), FSExt2},
		{"ext3", fsImage("ext3"), FSExt3},
		{"ext4", fsImage("ext4"), FSExt4},
		{"swap 4k", fsImage("swap"), FSSwap},
		{"swap 64k", mk(65536, func(b []byte) { copy(b[65526:], "SWAPSPACE2") }), FSSwap},
		{"pv", fsImage("pv"), FSLVM2},
		{"pv sector 0", mk(512, func(b []byte) { copy(b, "LABELONE"); copy(b[24:], "LVM2 001") }), FSLVM2},
		{"LABELONE without LVM2", mk(1024, func(b []byte) { copy(b[512:], "LABELONE") }), ""},
		{"vfat", fsImage("vfat"), FSVFAT},
		{"btrfs", mk(ProbeSize, func(b []byte) { copy(b[65536+64:], "_BHRfS_M") }), FSBtrfs},
		{"reiserfs 3.6", mk(ProbeSize, func(b []byte) { copy(b[65536+52:], "ReIsEr2Fs") }), FSReiserFS},
		{"reiserfs old", mk(9000, func(b []byte) { copy(b[8192+52:], "ReIsErFs") }), FSReiserFS},
		{"short ext", mk(1100, func(b []byte) { binary.LittleEndian.PutUint16(b[1080:], 0xEF53) }), ""},
	}
	for _, c := range cases {
		if got := Probe(c.b); got != c.want {
			t.Errorf("%s: Probe = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestParseVPD83(t *testing.T) {
	ds, err := ParseVPD83(vpd83(naaA))
	if err != nil || len(ds) != 2 || ds[0] != (Designator{Type: "naa", Association: "lun", Value: naaA}) {
		t.Fatalf("%+v %v", ds, err)
	}
	ascii := []byte{0, 0x83, 0, 12, 0x02, 0x01, 0, 8, 'V', 'M', 'w', 'a', 'r', 'e', ' ', ' '}
	if ds, err := ParseVPD83(ascii); err != nil || ds[0].Type != "t10" || ds[0].Value != "VMware" || ds[0].WWID() != "1VMware" {
		t.Errorf("t10: %+v %v", ds, err)
	}
	for name, b := range map[string][]byte{
		"short":      {0, 0x83},
		"wrong page": {0, 0x80, 0, 0},
		"length":     {0, 0x83, 0, 20, 1, 3, 0, 8},
		"runs past":  {0, 0x83, 0, 6, 1, 3, 0, 8, 1, 2},
		"stray":      {0, 0x83, 0, 2, 1, 3},
	} {
		if _, err := ParseVPD83(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestParseMountinfo(t *testing.T) {
	ms, err := ParseMountinfo([]byte("36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue\n"))
	if err != nil || len(ms) != 1 || ms[0].Mountpoint != "/mnt/with space" || ms[0].FSType != "ext3" || ms[0].MajMin != "98:0" {
		t.Fatalf("%+v %v", ms, err)
	}
	if _, err := ParseMountinfo([]byte("1 2 3\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("bad line: %v", err)
	}
}

func FuzzParseVPD83(f *testing.F) {
	f.Add(vpd83(naaA))
	f.Add([]byte{0, 0x83, 0, 2, 1, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		ds, _ := ParseVPD83(b)
		for _, d := range ds {
			_ = d.WWID()
		}
	})
}

func FuzzProbe(f *testing.F) {
	f.Add(fsImage("pv"))
	f.Add(fsImage("ext4"))
	f.Fuzz(func(t *testing.T, b []byte) {
		Probe(b)
		ReadPVLabel(b)
	})
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("36 35 98:0 /mnt1 /mnt/a\\040b rw - ext3 /dev/root rw\n"))
	f.Fuzz(func(t *testing.T, b []byte) { ParseMountinfo(b) })
}
