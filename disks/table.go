package disks

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/diskfs/go-diskfs/partition/gpt"
	"github.com/diskfs/go-diskfs/partition/mbr"
)

// Partition types that mean LVM.
const (
	GPTTypeLVM = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	MBRTypeLVM = 0x8e
)

var gptNames = map[string]string{
	string(gpt.LinuxFilesystem):            "linux",
	GPTTypeLVM:                             "lvm",
	string(gpt.LinuxSwap):                  "swap",
	string(gpt.EFISystemPartition):         "efi",
	string(gpt.BIOSBoot):                   "bios-boot",
	string(gpt.LinuxRAID):                  "raid",
	string(gpt.MicrosoftBasicData):         "microsoft-basic-data",
	"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "linux-root-x86-64",
	"BC13C2FF-59E6-4262-A352-B275FD6F7172": "linux-extended-boot",
}

var mbrNames = map[mbr.Type]string{
	0x83: "linux", MBRTypeLVM: "lvm", 0x82: "swap", 0xef: "efi", 0xfd: "raid",
	0x05: "extended", 0x0f: "extended", 0x85: "extended", 0xee: "gpt-protective",
	0x07: "ntfs", 0x0b: "fat32", 0x0c: "fat32", 0x06: "fat16", 0x0e: "fat16",
}

// IsLVM reports whether the partition's type says LVM.
func (p Partition) IsLVM() bool {
	return p.Type == GPTTypeLVM || p.Type == fmt.Sprintf("0x%02x", MBRTypeLVM)
}

// readTable reads the partition table with go-diskfs and gives each
// sysfs partition its type. An unpartitioned disk has Table "".
func readTable(h Host, d *Disk) {
	f, err := os.Open(h.Path(d.Path))
	if err != nil {
		d.Err = joinErr(d.Err, fmt.Sprintf("open %s: %v", d.Path, errors.Unwrap(err)))
		return
	}
	defer f.Close()
	// GPT first: a GPT disk also carries a protective MBR.
	if t, err := gpt.Read(f, d.LogicalSectorSize, d.PhysicalSectorSize); err == nil {
		d.Table, d.TableID = "gpt", t.UUID()
		for _, p := range t.Partitions {
			typ := strings.ToUpper(string(p.Type))
			d.setType(p.Index, p.Start*uint64(d.LogicalSectorSize), p.Size, typ, gptNames[typ], p.Name)
		}
		sortPartitions(d)
		return
	}
	t, err := mbr.Read(f, d.LogicalSectorSize, d.PhysicalSectorSize)
	if err != nil {
		return // no table: a whole-disk file system, a PV, or empty
	}
	if !hasMBRPartitions(t) && len(d.Partitions) == 0 {
		// A boot sector signature with no partitions: a FAT file system
		// or an empty MBR, not a partitioned disk.
		return
	}
	d.Table, d.TableID = "mbr", t.UUID()
	for _, p := range t.Partitions {
		if p.Type == mbr.Empty || p.Size == 0 {
			continue // an empty slot
		}
		d.setType(p.Index, uint64(p.Start)*uint64(d.LogicalSectorSize), uint64(p.Size)*uint64(d.LogicalSectorSize),
			fmt.Sprintf("0x%02x", byte(p.Type)), mbrNames[p.Type], "")
	}
	sortPartitions(d)
}

func hasMBRPartitions(t *mbr.Table) bool {
	for _, p := range t.Partitions {
		if p.Type != mbr.Empty && p.Size > 0 {
			return true
		}
	}
	return false
}

// setType records a table entry's type on the sysfs partition of that
// number. A partition the kernel does not list (it has not re-read the
// table, or partition scanning is off for a loop device) is added with
// its place from the table and no kernel name.
func (d *Disk) setType(n int, start, size uint64, typ, name, label string) {
	for i := range d.Partitions {
		if d.Partitions[i].Number == n {
			d.Partitions[i].Type, d.Partitions[i].TypeName, d.Partitions[i].Label = typ, name, label
			return
		}
	}
	d.Partitions = append(d.Partitions, Partition{Block: Block{Size: size,
		Err: fmt.Sprintf("in the %s table but not known to the kernel (partx -a %s, or a reboot)", d.Table, d.Path)},
		Number: n, Start: start, Type: typ, TypeName: name, Label: label})
}

func sortPartitions(d *Disk) {
	sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Number < d.Partitions[j].Number })
}
