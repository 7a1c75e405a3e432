package vsphere_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/disks/vsphere/vspheresim"
)

// The firmware and guest family are read from the recovered disks'
// partition tables, and only from what they say.
func TestProbeBoot(t *testing.T) {
	root := t.TempDir()
	dev := func(name string, write func(string) error) string {
		p := filepath.Join(root, "dev", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, make([]byte, 64<<10), 0o600); err != nil {
			t.Fatal(err)
		}
		if write != nil {
			if err := write(p); err != nil {
				t.Fatal(err)
			}
		}
		return "/dev/" + name
	}
	gpt := func(g ...string) func(string) error {
		return func(p string) error { return vspheresim.WriteGPT(p, g...) }
	}
	mbr := func(active bool, ty ...byte) func(string) error {
		return func(p string) error { return vspheresim.WriteMBR(p, active, ty...) }
	}
	winEFI := dev("sdb", gpt(vspheresim.GPTESP, vspheresim.GPTMSR, vspheresim.GPTBasicData))
	data := dev("sdc", nil)
	linBIOS := dev("sdd", gpt(vspheresim.GPTBIOSBoot, vspheresim.GPTLinuxFS, vspheresim.GPTLinuxLVM))
	linMBR := dev("sde", mbr(true, 0x83, 0x8e))
	winMBR := dev("sdf", mbr(true, 0x07))
	dataMBR := dev("sdg", mbr(false, 0x83))
	broken := dev("sdh", mbr(false, 0xee)) // protective MBR, no GPT header
	basic := dev("sdi", gpt(vspheresim.GPTBasicData))
	cases := []struct {
		disks                  []string
		fw, fwFrom, fam, famOf string
		unread                 int
	}{
		{[]string{winEFI, data}, "efi", "/dev/sdb has an EFI system partition (GPT)", "windows", "/dev/sdb Microsoft reserved", 0},
		{[]string{data, linBIOS}, "bios", "/dev/sdd has a BIOS boot partition", "linux", "/dev/sdd Linux filesystem, /dev/sdd Linux LVM", 0},
		{[]string{linMBR}, "bios", "/dev/sde has an active partition", "linux", "/dev/sde Linux, /dev/sde Linux LVM", 0},
		{[]string{winMBR, data}, "bios", "/dev/sdf has an active partition", "windows", "/dev/sdf NTFS", 0},
		// A data disk of MBR with nothing active says no firmware.
		{[]string{dataMBR}, "", "", "linux", "/dev/sdg Linux", 0},
		// The EFI system partition wins over another disk's active MBR.
		{[]string{linMBR, winEFI}, "efi", "/dev/sdb has an EFI system partition", "", "", 0},
		{[]string{data, "[LocalDS_0] recovered/x.vmdk", "Hard disk 3"}, "", "", "", "", 0},
		// Basic data is Windows' and Linux's both: it tells nothing.
		{[]string{basic}, "", "", "", "", 0},
		{[]string{broken, "/dev/sdz", data}, "", "", "", "", 2},
	}
	for _, tc := range cases {
		b := vsphere.ProbeBoot(root, tc.disks)
		if b.Firmware != tc.fw || !strings.Contains(b.FirmwareFrom, tc.fwFrom) || b.Family != tc.fam || !strings.Contains(b.FamilyFrom, tc.famOf) || len(b.Unread) != tc.unread {
			t.Errorf("%v: %+v", tc.disks, b)
		}
	}
	if b := vsphere.ProbeBoot(root, []string{broken}); !strings.Contains(b.Unread[0], "/dev/sdh: protective MBR without a GPT header") {
		t.Errorf("unread: %q", b.Unread)
	}

	// The defaults fill only what the caller did not set, and say where
	// each came from.
	win := vsphere.ProbeBoot(root, []string{winEFI})
	sp := vsphere.FailbackSpec{Name: "w", CPUs: 2, MemoryMB: 2048, Firmware: "bios", Disks: make([]string, 16)}
	sp.SourceDefaults(win, nil)
	if err := sp.Validate(); err != nil {
		t.Fatal(err)
	}
	if sp.Firmware != "efi" || sp.GuestID != "windows9Server64Guest" || !slices.Equal(sp.Controllers, []string{"lsilogic-sas", "lsilogic-sas"}) || len(sp.Defaults) != 3 ||
		!strings.Contains(sp.Defaults[0], "firmware efi: /dev/sdb has an EFI system partition") || !strings.Contains(sp.Defaults[2], "SCSI lsilogic-sas: a windows source with 16 disk(s)") {
		t.Fatalf("defaults: %s %s %v %q", sp.Firmware, sp.GuestID, sp.Controllers, sp.Defaults)
	}
	sp = vsphere.FailbackSpec{Name: "w", CPUs: 2, MemoryMB: 2048, Firmware: "bios", GuestID: "rhel9_64Guest", Disks: make([]string, 2)}
	sp.SourceDefaults(win, map[string]bool{"firmware": true, "guest-id": true, "controller": true})
	if sp.Firmware != "bios" || sp.GuestID != "rhel9_64Guest" || sp.Controllers != nil || len(sp.Defaults) != 0 {
		t.Fatalf("flags overridden: %s %s %v %q", sp.Firmware, sp.GuestID, sp.Controllers, sp.Defaults)
	}
	// Onto an existing VM: its hardware is what it is.
	sp = vsphere.FailbackSpec{OntoVM: "old", CPUs: 2, MemoryMB: 2048, Disks: make([]string, 2)}
	sp.SourceDefaults(win, nil)
	if sp.Firmware != "" || len(sp.Defaults) != 0 {
		t.Fatalf("onto-vm: %s %q", sp.Firmware, sp.Defaults)
	}
	// A Linux source of more than 15 disks gets PVSCSI.
	lin := vsphere.ProbeBoot(root, []string{linBIOS})
	sp = vsphere.FailbackSpec{Name: "l", CPUs: 2, MemoryMB: 2048, Disks: make([]string, 20)}
	sp.SourceDefaults(lin, nil)
	if sp.Firmware != "bios" || sp.GuestID != "otherLinux64Guest" || !slices.Equal(sp.Controllers, []string{"pvscsi", "pvscsi"}) {
		t.Fatalf("linux: %s %s %v", sp.Firmware, sp.GuestID, sp.Controllers)
	}
}
