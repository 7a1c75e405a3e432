package vsphere

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
)

// Boot is what the recovered disks' partition tables say of the source
// machine: its firmware (bios or efi) and its guest family (linux or
// windows), each with where it was read, or "" when they do not tell.
// The replication protocol carries neither (the process server lists
// only each disk's name, size and block size), so the disks themselves
// are read: an EFI system partition means the source booted by UEFI.
type Boot struct {
	Firmware     string `json:"firmware,omitempty"`
	FirmwareFrom string `json:"firmwareFrom,omitempty"`
	Family       string `json:"family,omitempty"`
	FamilyFrom   string `json:"familyFrom,omitempty"`
	// Unread are the disks that could not be read, with why.
	Unread []string `json:"unread,omitempty"`
}

// GuestFamilies' default guest ids and SCSI controllers: Windows has no
// in-box PVSCSI driver, LSI Logic SAS it has.
const (
	FamilyLinux   = "linux"
	FamilyWindows = "windows"
)

// DefaultGuestID is the guest id a failback VM of the family gets when
// none is given.
func DefaultGuestID(family string) string {
	if family == FamilyWindows {
		return string(types.VirtualMachineGuestOsIdentifierWindows9Server64Guest)
	}
	return string(types.VirtualMachineGuestOsIdentifierOtherLinux64Guest)
}

// DefaultController is the SCSI controller a failback VM of the family
// and disk count gets when none is given: LSI Logic SAS for Windows (its
// in-box driver), PVSCSI for Linux past one controller's 15 disks (LSI
// Logic's queue depth holds many disks back), else LSI Logic.
func DefaultController(family string, disks int) string {
	switch {
	case family == FamilyWindows:
		return "lsilogic-sas"
	case disks > SlotsPerController:
		return "pvscsi"
	}
	return "lsilogic"
}

// Partition type GUIDs (as text, upper case) and MBR types that tell.
var (
	gptESP      = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	gptBIOSBoot = "21686148-6449-6E6F-744E-656564454649"
	gptWindows  = map[string]string{
		"E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
		"DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery",
		"5808C8AA-7E8F-42E0-85D2-E1E90434CFB3": "Windows LDM metadata",
		"AF9B60A0-1431-4F62-BC68-3311714A69AD": "Windows LDM data",
	}
	gptLinux = map[string]string{
		"0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
		"E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
		"0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
		"A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
		"4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
		"BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
		"933AC7E1-2EB4-4F13-B844-0E14E2AEF915": "Linux home",
	}
	mbrWindows = map[byte]string{0x07: "NTFS", 0x27: "Windows recovery"}
	mbrLinux   = map[byte]string{0x83: "Linux", 0x8e: "Linux LVM", 0x82: "Linux swap", 0xfd: "Linux RAID"}
)

// table is one disk's partition table as ProbeBoot reads it.
type table struct {
	kind    string   // gpt or mbr
	types   []string // GPT type GUIDs
	mbr     []byte   // MBR partition types
	active  bool     // an MBR partition marked active
	sector  int      // logical sector size the GPT was found at
	esp     bool
	biosGPT bool
}

// ProbeBoot reads the partition tables of the disks given by device path
// (/dev/sdb, /dev/disk/by-id/…; under devRoot, "/" when empty): the
// first 1 MiB of each, read-only. Disks named otherwise (a VMDK file, a
// label) are not read. Any EFI system partition makes the firmware efi;
// else an active MBR partition or a GPT BIOS boot partition makes it
// bios. Windows partitions (Microsoft reserved, recovery, NTFS) make the
// family windows, Linux ones (filesystem, LVM, swap, RAID) linux; both
// kinds leave it unknown.
func ProbeBoot(devRoot string, disks []string) Boot {
	if devRoot == "" {
		devRoot = "/"
	}
	var b Boot
	var win, lin []string
	for _, d := range disks {
		if !strings.HasPrefix(d, "/dev/") {
			continue
		}
		t, err := readTable(filepath.Join(devRoot, d))
		if err != nil {
			b.Unread = append(b.Unread, fmt.Sprintf("%s: %v", d, err))
			continue
		}
		if t == nil {
			continue // no partition table: a data disk as a whole
		}
		switch {
		case t.esp && b.Firmware != "efi":
			b.Firmware, b.FirmwareFrom = "efi", fmt.Sprintf("%s has an EFI system partition (%s)", d, strings.ToUpper(t.kind))
		case b.Firmware == "" && t.biosGPT:
			b.Firmware, b.FirmwareFrom = "bios", fmt.Sprintf("%s has a BIOS boot partition and no EFI system partition (GPT)", d)
		case b.Firmware == "" && t.active:
			b.Firmware, b.FirmwareFrom = "bios", fmt.Sprintf("%s has an active partition and no EFI system partition (MBR)", d)
		}
		for _, g := range t.types {
			if n, ok := gptWindows[g]; ok {
				win = append(win, d+" "+n)
			}
			if n, ok := gptLinux[g]; ok {
				lin = append(lin, d+" "+n)
			}
		}
		for _, m := range t.mbr {
			if n, ok := mbrWindows[m]; ok {
				win = append(win, d+" "+n)
			}
			if n, ok := mbrLinux[m]; ok {
				lin = append(lin, d+" "+n)
			}
		}
	}
	switch {
	case len(win) > 0 && len(lin) == 0:
		b.Family, b.FamilyFrom = FamilyWindows, "partitions: "+strings.Join(win, ", ")
	case len(lin) > 0 && len(win) == 0:
		b.Family, b.FamilyFrom = FamilyLinux, "partitions: "+strings.Join(lin, ", ")
	}
	return b
}

// readTable reads a disk's partition table: nil, nil when it has none.
func readTable(path string) (*table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	buf = buf[:n]
	if len(buf) < 512 || buf[510] != 0x55 || buf[511] != 0xaa {
		return nil, nil
	}
	t := &table{kind: "mbr"}
	gpt := false
	for i := range 4 {
		e := buf[446+16*i:]
		if e[4] == 0 {
			continue
		}
		if e[4] == 0xee {
			gpt = true
		}
		if e[4] == 0xef {
			t.esp = true
		}
		t.active = t.active || e[0] == 0x80
		t.mbr = append(t.mbr, e[4])
	}
	if !gpt {
		return t, nil
	}
	for _, ss := range []int{512, 4096} {
		if len(buf) < 2*ss || string(buf[ss:ss+8]) != "EFI PART" {
			continue
		}
		h := buf[ss:]
		lba := binary.LittleEndian.Uint64(h[72:])
		count := binary.LittleEndian.Uint32(h[80:])
		size := binary.LittleEndian.Uint32(h[84:])
		if size < 128 || count > 1024 || lba > uint64(len(buf)/ss) {
			return nil, fmt.Errorf("GPT header: entries at LBA %d, %d of %d bytes: not a GPT this reads", lba, count, size)
		}
		t2 := &table{kind: "gpt", sector: ss}
		for i := range int(count) {
			off := int(lba)*ss + i*int(size)
			if off+16 > len(buf) {
				break
			}
			g := guidText(buf[off : off+16])
			if g == "00000000-0000-0000-0000-000000000000" {
				continue
			}
			t2.types = append(t2.types, g)
			t2.esp = t2.esp || g == gptESP
			t2.biosGPT = t2.biosGPT || g == gptBIOSBoot
		}
		return t2, nil
	}
	return nil, errors.New("protective MBR without a GPT header at LBA 1")
}

// guidText is a GPT GUID (mixed endian) as text, upper case.
func guidText(b []byte) string {
	return fmt.Sprintf("%08X-%04X-%04X-%X-%X", binary.LittleEndian.Uint32(b[0:]), binary.LittleEndian.Uint16(b[4:]),
		binary.LittleEndian.Uint16(b[6:]), b[8:10], b[10:16])
}

// SourceDefaults fills the spec's firmware, guest id and controllers from
// what the source's disks say, where the caller has not set them (set
// names the fields given: "firmware", "guest-id", "controller"), and
// records each default and where it came from in spec.Defaults.
func (spec *FailbackSpec) SourceDefaults(b Boot, set map[string]bool) {
	if b.Firmware != "" && !set["firmware"] && spec.OntoVM == "" {
		spec.Firmware = b.Firmware
		spec.Defaults = append(spec.Defaults, fmt.Sprintf("firmware %s: %s", b.Firmware, b.FirmwareFrom))
	}
	if b.Family == "" {
		return
	}
	if !set["guest-id"] && spec.OntoVM == "" {
		spec.GuestID = DefaultGuestID(b.Family)
		spec.Defaults = append(spec.Defaults, fmt.Sprintf("guest id %s: a %s source (%s)", spec.GuestID, b.Family, b.FamilyFrom))
	}
	if !set["controller"] && spec.OntoVM == "" && len(spec.Controllers) == 0 && len(spec.DiskBus) == 0 {
		ctl := DefaultController(b.Family, len(spec.Disks))
		for range (len(spec.Disks) + SlotsPerController - 1) / SlotsPerController {
			spec.Controllers = append(spec.Controllers, ctl)
		}
		spec.Defaults = append(spec.Defaults, fmt.Sprintf("SCSI %s: a %s source with %d disk(s)", ctl, b.Family, len(spec.Disks)))
	}
}
