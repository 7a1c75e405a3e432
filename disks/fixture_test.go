package disks

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/partition/gpt"
)

var update = flag.Bool("update", false, "rewrite the fixture trees in testdata/hosts")

// The fixture trees under testdata/hosts are written by the specs below
// (go test ./disks -run TestFixtureTrees -update) and committed, so that
// each tree can be read as a host would show itself; TestFixtureTrees
// keeps them and the specs in step. Package setup's tests read them too.

const (
	gib = 1 << 30
	mib = 1 << 20
)

type fxPart struct {
	n          int
	start      uint64 // MiB
	size       uint64 // MiB
	typ        string // GPT GUID, or MBR type as "0x83"
	fs         string // signature written at its start: xfs, ext4, swap, pv, vfat, ""
	holders    []string
	mountpoint string
}

type fxDisk struct {
	name, model, vendor string
	majmin              string
	size                uint64 // bytes
	rotational          bool
	table               string // gpt, mbr, ""
	fs                  string // whole-disk signature
	parts               []fxPart
	holders             []string
	naa                 string // hex NAA; by-id links and vpd_pg83 when set
	vpdNoLUN            bool   // vpd_pg83 with only a target-port designator
	mountpoint          string
}

type fxDM struct {
	name, dmName, uuid, majmin string
	size                       uint64
	slaves                     []string
	fs                         string
	mountpoint                 string
}

type fxHost struct {
	disks []fxDisk
	dms   []fxDM
	swaps []string // /proc/swaps lines
	etc   map[string]string
	proc  map[string]string
}

const naaA, naaB, naaC, naaD = "6000c2931a2b3c4d5e6f708192a3b4c5", "6000c29aa1b2c3d4e5f60718293a4b5c", "6000c29bb1b2c3d4e5f60718293a4b5c", "6000c29cc1b2c3d4e5f60718293a4b5c"

func vmwareDisk(name, majmin string, size uint64, naa string) fxDisk {
	return fxDisk{name: name, model: "Virtual disk", vendor: "VMware", majmin: majmin, size: size, rotational: true, naa: naa}
}

var baseEtc = map[string]string{
	"os-release": "NAME=\"Ubuntu\"\nVERSION=\"20.04.6 LTS (Focal Fossa)\"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME=\"Ubuntu 20.04.6 LTS\"\nVERSION_ID=\"20.04\"\n",
	"hostname":   "mt01\n",
	"hosts":      "127.0.0.1 localhost\n10.0.0.5 mt01.example.com mt01\n",
}

var baseProc = map[string]string{
	"meminfo":                   "MemTotal:        8167228 kB\nMemFree:         6000000 kB\n",
	"cpuinfo":                   "processor\t: 0\nprocessor\t: 1\nprocessor\t: 2\nprocessor\t: 3\n",
	"sys/kernel/osrelease":      "5.4.0-150-generic\n",
	"sys/kernel/random/boot_id": "7d3c1b7e-0d39-4a39-9a6b-6d1b0c2b9f10\n",
}

var fixtures = map[string]fxHost{
	// A master target as the guide wants it: SCSI disks with
	// disk.EnableUUID, MBR OS disk, GPT retention disk, two free targets.
	"vmware-good": {
		disks: []fxDisk{
			func() fxDisk {
				d := vmwareDisk("sda", "8:0", 120*gib, naaA)
				d.table = "mbr"
				d.parts = []fxPart{
					{n: 1, start: 1, size: 1024, typ: "0x83", fs: "ext4", mountpoint: "/boot"},
					{n: 2, start: 1025, size: 4096, typ: "0x82", fs: "swap"},
					{n: 3, start: 5121, size: 117 * 1024, typ: "0x83", fs: "xfs", mountpoint: "/"},
				}
				return d
			}(),
			func() fxDisk {
				d := vmwareDisk("sdb", "8:16", 1024*gib, naaB)
				d.table = "gpt"
				d.parts = []fxPart{{n: 1, start: 1, size: 1024*1024 - 2, typ: string(gpt.LinuxFilesystem), fs: "ext4", mountpoint: "/mnt/retention"}}
				return d
			}(),
			vmwareDisk("sdc", "8:32", 100*gib, naaC),
			func() fxDisk { d := vmwareDisk("sdd", "8:48", 50*gib, naaD); d.fs = "pv"; return d }(),
			{name: "sr0", majmin: "11:0", size: 0, model: "VMware SATA CD00", vendor: "NECVMWar"},
		},
		swaps: []string{"/dev/sda2                               partition\t4194300\t0\t-2"},
	},
	// This VM's shape: one virtio disk, no partitions, no SCSI ids; too
	// few disks.
	"virtio-one-disk": {
		disks: []fxDisk{{name: "vda", majmin: "254:0", size: 256 * gib, vendor: "0x1af4", rotational: true, fs: "ext4", mountpoint: "/"}},
	},
	// / on LVM (the guide forbids it): GPT with /boot and an LVM PV.
	"lvm-root": {
		disks: []fxDisk{
			func() fxDisk {
				d := vmwareDisk("sda", "8:0", 120*gib, naaA)
				d.table = "gpt"
				d.parts = []fxPart{
					{n: 1, start: 1, size: 1024, typ: string(gpt.LinuxFilesystem), fs: "ext4", mountpoint: "/boot"},
					{n: 2, start: 1025, size: 118 * 1024, typ: GPTTypeLVM, fs: "pv", holders: []string{"dm-0", "dm-1"}},
				}
				return d
			}(),
			func() fxDisk {
				d := vmwareDisk("sdb", "8:16", 1024*gib, naaB)
				d.fs = "ext4"
				d.mountpoint = "/mnt/retention"
				return d
			}(),
		},
		dms: []fxDM{
			{name: "dm-0", dmName: "vg0-root", uuid: "LVM-Xq1W2e3R4t5Y6u7I8o9P0a1S2d3F4g5HJk1L2z3X4c5V6b7N8m9Q0w1E2r3T4y5U", majmin: "253:0", size: 110 * gib, slaves: []string{"sda2"}, fs: "xfs", mountpoint: "/"},
			{name: "dm-1", dmName: "vg0-swap", uuid: "LVM-Xq1W2e3R4t5Y6u7I8o9P0a1S2d3F4g5HJkA1B2C3D4E5F6G7H8I9J0K1L2M3N4O5P", majmin: "253:1", size: 4 * gib, slaves: []string{"sda2"}, fs: "swap"},
		},
		swaps: []string{"/dev/dm-1                               partition\t4194300\t0\t-2"},
	},
	// Retention on LVM: a whole-disk PV under an xfs logical volume.
	"lvm-retention": {
		disks: []fxDisk{
			func() fxDisk {
				d := vmwareDisk("sda", "8:0", 120*gib, naaA)
				d.table = "mbr"
				d.parts = []fxPart{{n: 1, start: 1, size: 120*1024 - 2, typ: "0x83", fs: "ext4", mountpoint: "/"}}
				return d
			}(),
			func() fxDisk {
				d := vmwareDisk("sdb", "8:16", 1024*gib, naaB)
				d.fs, d.holders = "pv", []string{"dm-0"}
				return d
			}(),
		},
		dms: []fxDM{{name: "dm-0", dmName: "vgret-ret", uuid: "LVM-R1e2t3e4n5t6i7o8n9V0G1u2u3i4d5Zz1L2z3X4c5V6b7N8m9Q0w1E2r3T4y5U6i", majmin: "253:0", size: 1000 * gib,
			slaves: []string{"sdb"}, fs: "xfs", mountpoint: "/mnt/retention"}},
	},
	// SCSI disks of a VM without disk.EnableUUID: no by-id scsi-3/wwn
	// links; sdb's VPD page has only a target-port designator.
	"no-scsi-ids": {
		disks: []fxDisk{
			func() fxDisk {
				d := vmwareDisk("sda", "8:0", 120*gib, "")
				d.table = "mbr"
				d.parts = []fxPart{{n: 1, start: 1, size: 120*1024 - 2, typ: "0x83", fs: "xfs", mountpoint: "/"}}
				return d
			}(),
			func() fxDisk {
				d := vmwareDisk("sdb", "8:16", 1024*gib, "")
				d.vpdNoLUN, d.fs, d.mountpoint = true, "ext4", "/mnt/retention"
				return d
			}(),
		},
	},
	// Two paths to one LUN (sdc, sdd) claimed by multipath's mpatha.
	"multipath": {
		disks: []fxDisk{
			func() fxDisk {
				d := vmwareDisk("sda", "8:0", 120*gib, naaA)
				d.table = "mbr"
				d.parts = []fxPart{{n: 1, start: 1, size: 120*1024 - 2, typ: "0x83", fs: "ext4", mountpoint: "/"}}
				return d
			}(),
			func() fxDisk {
				d := vmwareDisk("sdb", "8:16", 1024*gib, naaB)
				d.fs = "ext4"
				d.mountpoint = "/mnt/retention"
				return d
			}(),
			func() fxDisk { d := vmwareDisk("sdc", "8:32", 100*gib, naaC); d.holders = []string{"dm-0"}; return d }(),
			func() fxDisk { d := vmwareDisk("sdd", "8:48", 100*gib, naaC); d.holders = []string{"dm-0"}; return d }(),
		},
		dms: []fxDM{{name: "dm-0", dmName: "mpatha", uuid: "mpath-3" + naaC, majmin: "253:0", size: 100 * gib, slaves: []string{"sdc", "sdd"}}},
	},
}

// writeTree writes a fixture's tree into dir.
func writeTree(t *testing.T, dir string, h fxHost) {
	t.Helper()
	put := func(rel string, b []byte) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	puts := func(rel, s string) { put(rel, []byte(s+"\n")) }
	link := func(rel, target string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if _, err := os.Lstat(p); err == nil {
			return // a second path to one LUN: udev keeps one link
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	var mountinfo []string
	mountID := 20
	mount := func(mp, majmin, fstype, src string) {
		mountID++
		mountinfo = append(mountinfo, fmt.Sprintf("%d 1 %s / %s rw,relatime shared:1 - %s %s rw", mountID, majmin, mp, fstype, src))
	}
	mount("/proc", "0:20", "proc", "proc")
	mount("/sys", "0:21", "sysfs", "sysfs")
	for _, d := range h.disks {
		sb := "sys/block/" + d.name + "/"
		puts(sb+"dev", d.majmin)
		puts(sb+"size", fmt.Sprint(d.size/512))
		puts(sb+"removable", "0")
		puts(sb+"ro", "0")
		puts(sb+"queue/logical_block_size", "512")
		puts(sb+"queue/physical_block_size", "512")
		puts(sb+"queue/rotational", map[bool]string{true: "1", false: "0"}[d.rotational])
		if d.model != "" {
			puts(sb+"device/model", d.model)
		}
		if d.vendor != "" {
			puts(sb+"device/vendor", d.vendor)
		}
		for _, ho := range d.holders {
			put(sb+"holders/"+ho, nil)
		}
		if d.naa != "" {
			put(sb+"device/vpd_pg83", vpd83(d.naa))
			link("dev/disk/by-id/scsi-3"+d.naa, "../../"+d.name)
			link("dev/disk/by-id/wwn-0x"+d.naa, "../../"+d.name)
		} else if d.vpdNoLUN {
			put(sb+"device/vpd_pg83", []byte{0, 0x83, 0, 8, 0x61, 0x94, 0, 4, 0, 0, 0, 1})
		}
		if d.size == 0 {
			continue
		}
		var img []byte
		switch d.table {
		case "mbr":
			img = mbrImage(d.parts)
		case "gpt":
			img = gptImage(t, d.size, d.parts)
		default:
			img = fsImage(d.fs)
		}
		put("dev/"+d.name, img)
		if d.mountpoint != "" {
			mount(d.mountpoint, d.majmin, d.fs, "/dev/"+d.name)
		}
		maj := strings.Split(d.majmin, ":")[0]
		var min int
		fmt.Sscanf(strings.Split(d.majmin, ":")[1], "%d", &min)
		for _, p := range d.parts {
			pn := d.name + fmt.Sprint(p.n)
			pm := fmt.Sprintf("%s:%d", maj, min+p.n)
			ps := sb + pn + "/"
			puts(ps+"partition", fmt.Sprint(p.n))
			puts(ps+"start", fmt.Sprint(p.start*mib/512))
			puts(ps+"size", fmt.Sprint(p.size*mib/512))
			puts(ps+"dev", pm)
			for _, ho := range p.holders {
				put(ps+"holders/"+ho, nil)
			}
			put("dev/"+pn, fsImage(p.fs))
			if p.mountpoint != "" {
				mount(p.mountpoint, pm, p.fs, "/dev/"+pn)
			}
		}
	}
	for _, m := range h.dms {
		sb := "sys/block/" + m.name + "/"
		puts(sb+"dev", m.majmin)
		puts(sb+"size", fmt.Sprint(m.size/512))
		puts(sb+"dm/name", m.dmName)
		puts(sb+"dm/uuid", m.uuid)
		for _, s := range m.slaves {
			put(sb+"slaves/"+s, nil)
		}
		put("dev/"+m.name, fsImage(m.fs))
		link("dev/mapper/"+m.dmName, "../"+m.name)
		if m.mountpoint != "" {
			mount(m.mountpoint, m.majmin, m.fs, "/dev/mapper/"+m.dmName)
		}
	}
	puts("proc/self/mountinfo", strings.Join(mountinfo, "\n"))
	puts("proc/swaps", strings.Join(append([]string{"Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority"}, h.swaps...), "\n"))
	for _, kv := range []struct {
		dir string
		m   map[string]string
	}{{"etc", baseEtc}, {"etc", h.etc}, {"proc", baseProc}, {"proc", h.proc}} {
		for k, v := range kv.m {
			put(kv.dir+"/"+k, []byte(v))
		}
	}
}

// vpd83 is a VPD page 0x83 as VMware gives it with disk.EnableUUID: an
// NAA designator of the LUN and a relative target port.
func vpd83(naaHex string) []byte {
	var naa []byte
	fmt.Sscanf(naaHex, "%x", &naa)
	d := append([]byte{0x01, 0x03, 0, byte(len(naa))}, naa...)
	d = append(d, 0x61, 0x94, 0, 4, 0, 0, 0, 1)
	return append([]byte{0, 0x83, 0, byte(len(d))}, d...)
}

func fsImage(fs string) []byte {
	switch fs {
	case "xfs":
		b := make([]byte, 512)
		copy(b, "XFSB")
		return b
	case "ext4", "ext3", "ext2":
		b := make([]byte, 2048)
		binary.LittleEndian.PutUint16(b[1024+56:], 0xEF53)
		switch fs {
		case "ext4":
			binary.LittleEndian.PutUint32(b[1024+0x60:], 0x2c2) // extents, 64bit, flex_bg
			fallthrough
		case "ext3":
			binary.LittleEndian.PutUint32(b[1024+0x5C:], 0x4) // has_journal
		}
		return b
	case "swap":
		b := make([]byte, 4096)
		copy(b[4086:], "SWAPSPACE2")
		return b
	case "pv":
		b := make([]byte, 2048)
		s := b[512:]
		copy(s, "LABELONE")
		binary.LittleEndian.PutUint64(s[8:], 1)
		binary.LittleEndian.PutUint32(s[20:], 32)
		copy(s[24:], "LVM2 001")
		copy(s[32:], "Pb0q4MJB0dt8i2mrHRPf3PjUhe9X2hzM")
		binary.LittleEndian.PutUint64(s[64:], 64*mib)
		return b
	case "vfat":
		b := make([]byte, 512)
		copy(b[0x52:], "FAT32   ")
		b[510], b[511] = 0x55, 0xAA
		return b
	}
	return make([]byte, 512)
}

func mbrImage(parts []fxPart) []byte {
	b := make([]byte, 512)
	binary.LittleEndian.PutUint32(b[440:], 0x1a2b3c4d)
	for _, p := range parts {
		e := b[446+16*(p.n-1):]
		var typ byte
		fmt.Sscanf(p.typ, "0x%x", &typ)
		e[4] = typ
		binary.LittleEndian.PutUint32(e[8:], uint32(p.start*mib/512))
		binary.LittleEndian.PutUint32(e[12:], uint32(p.size*mib/512))
	}
	b[510], b[511] = 0x55, 0xAA
	return b
}

// gptImage writes a GPT with go-diskfs into a sparse file of the disk's
// size and keeps its first 34 sectors: the protective MBR, the primary
// header and the partition array, all a reader of the primary needs.
func gptImage(t *testing.T, size uint64, parts []fxPart) []byte {
	f, err := os.CreateTemp(t.TempDir(), "gpt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Truncate(int64(size))
	tb := &gpt.Table{LogicalSectorSize: 512, PhysicalSectorSize: 512, ProtectiveMBR: true, GUID: "8B3C5E2A-1D4F-4A6B-9C7D-0E1F2A3B4C5D"}
	for _, p := range parts {
		tb.Partitions = append(tb.Partitions, &gpt.Partition{Index: p.n, Start: p.start * mib / 512, End: (p.start+p.size)*mib/512 - 1,
			Type: gpt.Type(p.typ), Name: fmt.Sprintf("part%d", p.n), GUID: fmt.Sprintf("0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F%d", p.n)})
	}
	if err := tb.Write(f, int64(size)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 34*512)
	if _, err := f.ReadAt(b, 0); err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshot lists a tree's files, links and contents for comparison.
func snapshot(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type()&fs.ModeSymlink != 0 {
			l, _ := os.Readlink(p)
			out[rel] = "-> " + l
			return nil
		}
		b, _ := os.ReadFile(p)
		out[rel] = string(b)
		return nil
	})
	return out
}

func TestFixtureTrees(t *testing.T) {
	names := make([]string, 0, len(fixtures))
	for n := range fixtures {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		want := filepath.Join("testdata", "hosts", name)
		tmp := t.TempDir()
		writeTree(t, tmp, fixtures[name])
		if *update {
			os.RemoveAll(want)
			if err := os.CopyFS(want, os.DirFS(tmp)); err != nil {
				// CopyFS does not copy symlinks: write the tree in place.
				os.RemoveAll(want)
				writeTree(t, want, fixtures[name])
			}
			continue
		}
		got, have := snapshot(t, tmp), snapshot(t, want)
		for k, v := range got {
			if have[k] != v {
				t.Errorf("%s: %s differs from its spec: go test ./disks -run TestFixtureTrees -update", want, k)
			}
		}
		for k := range have {
			if _, ok := got[k]; !ok {
				t.Errorf("%s: %s is not in its spec: go test ./disks -run TestFixtureTrees -update", want, k)
			}
		}
	}
}

// fixtureHost is a committed fixture tree with a fixed statfs: 40 % used.
func fixtureHost(t *testing.T, name string) Host {
	t.Helper()
	root := filepath.Join("testdata", "hosts", name)
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("fixture %s: %v (go test ./disks -run TestFixtureTrees -update)", name, err)
	}
	return Host{Root: root, Statfs: func(mp string) (Space, error) {
		return Space{Total: 100 * gib, Free: 60 * gib, Avail: 55 * gib}, nil
	}}
}
