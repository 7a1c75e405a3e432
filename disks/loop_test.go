package disks

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
)

// The tests below make real block devices: loop devices over sparse
// files, a GPT written by sgdisk, a PV by pvcreate and an xfs by mkfs.xfs,
// and check the inventory against lsblk and blkid on the same devices.
// They need root and the tools (scripts/test.sh installs lvm2, gdisk and
// xfsprogs); they touch nothing but the devices they make, and detach
// every one of them, even on failure.

type lsblkDev struct {
	Name     string     `json:"name"`
	Size     uint64     `json:"size"`
	LogSec   int        `json:"log-sec"`
	PhySec   int        `json:"phy-sec"`
	RO       bool       `json:"ro"`
	RM       bool       `json:"rm"`
	Rota     bool       `json:"rota"`
	MajMin   string     `json:"maj:min"`
	Children []lsblkDev `json:"children"`
}

func lsblk(t *testing.T, dev string) lsblkDev {
	var out struct {
		Blockdevices []lsblkDev `json:"blockdevices"`
	}
	if err := json.Unmarshal([]byte(testutil.Run(t, "lsblk", "-J", "-b", "-o", "NAME,SIZE,LOG-SEC,PHY-SEC,RO,RM,ROTA,MAJ:MIN", dev)), &out); err != nil || len(out.Blockdevices) != 1 {
		t.Fatalf("lsblk -J %s: %v", dev, err)
	}
	return out.Blockdevices[0]
}

// blkid returns blkid's low-level probe of a device as KEY=value pairs.
func blkid(t *testing.T, dev string) map[string]string {
	out, _ := exec.Command("blkid", "-p", "-o", "export", dev).Output() // exit 2: nothing found
	m := map[string]string{}
	for _, l := range strings.Split(string(out), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

func checkAgainstLsblk(t *testing.T, inv *Inventory, dev string) *Disk {
	t.Helper()
	name := filepath.Base(dev)
	d := inv.Disk(name)
	if d == nil {
		t.Fatalf("%s is not in the inventory", dev)
	}
	l := lsblk(t, dev)
	if d.Size != l.Size || d.LogicalSectorSize != l.LogSec || d.PhysicalSectorSize != l.PhySec || d.ReadOnly != l.RO ||
		d.Removable != l.RM || d.Rotational != l.Rota || d.MajMin != l.MajMin || d.Kind != KindLoop {
		t.Errorf("%s: inventory %+v, lsblk %+v", dev, d, l)
	}
	if d.BackingFile == "" {
		t.Errorf("%s: no backing file", dev)
	}
	return d
}

func TestRealLoopDevices(t *testing.T) {
	testutil.NeedLoops(t, "lsblk", "blkid", "sgdisk", "pvcreate", "pvremove", "mkfs.xfs", "partx")
	gptDev := testutil.Loop(t, 64<<20, func(f string) {
		testutil.Run(t, "sgdisk", "-n1:2048:+20M", "-t1:8e00", "-c1:pv", "-n2:0:0", "-t2:8300", "-c2:data", f)
	}, "-P")
	pvDev := testutil.Loop(t, 64<<20, nil, "-P")
	testutil.MakePV(t, pvDev, "")
	xfsDev := testutil.Loop(t, 320<<20, nil, "-P")
	testutil.Run(t, "mkfs.xfs", "-q", "-f", xfsDev)

	inv, err := Read(Host{Root: "/"})
	if err != nil {
		t.Fatal(err)
	}

	g := checkAgainstLsblk(t, inv, gptDev)
	b := blkid(t, gptDev)
	if g.Table != b["PTTYPE"] || !strings.EqualFold(g.TableID, b["PTUUID"]) {
		t.Errorf("%s: table %s %s, blkid %s %s", gptDev, g.Table, g.TableID, b["PTTYPE"], b["PTUUID"])
	}
	// partx reads the table itself, whether or not the kernel scanned it.
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(testutil.Run(t, "partx", "-g", "-r", "-o", "NR,START,SECTORS,TYPE,NAME", gptDev)), "\n") {
		want = append(want, strings.ToUpper(strings.TrimSpace(l)))
	}
	var got []string
	for _, p := range g.Partitions {
		got = append(got, strings.ToUpper(fmt.Sprintf("%d %d %d %s %s", p.Number, p.Start/512, p.Size/512, p.Type, p.Label)))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s partitions:\n%s\npartx:\n%s", gptDev, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !g.Partitions[0].IsLVM() || g.Partitions[1].TypeName != "linux" {
		t.Errorf("%s partition types: %+v", gptDev, g.Partitions)
	}
	// Where the kernel scanned the partitions, they match lsblk's children.
	l := lsblk(t, gptDev)
	if len(l.Children) > 0 {
		for i, c := range l.Children {
			if i >= len(g.Partitions) || g.Partitions[i].Name != c.Name || g.Partitions[i].Size != c.Size || g.Partitions[i].MajMin != c.MajMin {
				t.Errorf("partition %d: inventory %+v, lsblk %+v", i+1, g.Partitions, c)
			}
		}
	} else {
		t.Logf("the kernel did not scan %s's partitions (no partition scanning for loop devices here): compared with partx only", gptDev)
	}

	p := checkAgainstLsblk(t, inv, pvDev)
	b = blkid(t, pvDev)
	if p.FSType != b["TYPE"] || p.FSType != FSLVM2 || p.PV == nil || p.PV.UUID != b["UUID"] || p.Table != "" {
		t.Errorf("%s: fs %q pv %+v table %q, blkid %v", pvDev, p.FSType, p.PV, p.Table, b)
	}
	if p.PV != nil && p.PV.Size != 64<<20 {
		t.Errorf("%s: PV label size %d", pvDev, p.PV.Size)
	}

	x := checkAgainstLsblk(t, inv, xfsDev)
	if b := blkid(t, xfsDev); x.FSType != b["TYPE"] || x.FSType != FSXFS || x.PV != nil {
		t.Errorf("%s: fs %q, blkid %v", xfsDev, x.FSType, b)
	}

	// The host's own root is in the inventory and agrees with lsblk.
	if inv.RootDevice == "" {
		t.Errorf("no root device found in %s", "/proc/self/mountinfo")
	} else if m := inv.Mount("/"); m.Space == nil || m.Space.Total == 0 {
		t.Errorf("root mount without space: %+v", m)
	}
	for _, d := range inv.Disks {
		if d.Kind == KindLoop && d.Size == 0 {
			continue
		}
		if out, err := exec.Command("lsblk", "-J", "-b", "-d", "-o", "NAME,SIZE", d.Path).Output(); err == nil {
			if !strings.Contains(string(out), `"size": `+strconv.FormatUint(d.Size, 10)) {
				t.Errorf("%s: size %d, lsblk %s", d.Name, d.Size, out)
			}
		}
	}
}
