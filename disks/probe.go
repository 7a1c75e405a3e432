package disks

import (
	"bytes"
	"encoding/binary"
	"strings"
)

// File-system and volume signatures Probe knows, as blkid names them.
const (
	FSXFS      = "xfs"
	FSExt2     = "ext2"
	FSExt3     = "ext3"
	FSExt4     = "ext4"
	FSBtrfs    = "btrfs"
	FSReiserFS = "reiserfs"
	FSSwap     = "swap"
	FSVFAT     = "vfat"
	FSLVM2     = "LVM2_member"
)

// ProbeSize is how many bytes from the start of a device Probe looks at:
// enough for the btrfs and reiserfs superblocks at 64 KiB.
const ProbeSize = 68 << 10

// PVLabel is an LVM2 physical-volume label.
type PVLabel struct {
	Sector int    `json:"sector"` // the 512-byte sector (0–3) holding LABELONE
	UUID   string `json:"uuid"`   // the PV UUID as pvs prints it (6-4-4-4-4-4-6)
	Size   uint64 `json:"size"`   // device size the label records, bytes
}

// ReadPVLabel finds an LVM2 label in the first four 512-byte sectors of b:
// "LABELONE" at the start of the sector and "LVM2 001" at offset 24, as
// LVM writes it (by default in sector 1).
func ReadPVLabel(b []byte) *PVLabel {
	for s := 0; s < 4; s++ {
		off := s * 512
		if len(b) < off+512 {
			return nil
		}
		sec := b[off : off+512]
		if string(sec[0:8]) != "LABELONE" || string(sec[24:32]) != "LVM2 001" {
			continue
		}
		l := &PVLabel{Sector: s}
		// The PV header follows at offset_xl (bytes 20–23), normally 32.
		ph := int(binary.LittleEndian.Uint32(sec[20:24]))
		if ph >= 32 && ph+40 <= 512 {
			id := sec[ph : ph+32]
			if isPrint(id) {
				l.UUID = lvmUUID(string(id))
			}
			l.Size = binary.LittleEndian.Uint64(sec[ph+32 : ph+40])
		}
		return l
	}
	return nil
}

func isPrint(b []byte) bool {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// lvmUUID formats a 32-character LVM id as pvs shows it.
func lvmUUID(s string) string {
	if len(s) != 32 {
		return s
	}
	parts := []int{6, 4, 4, 4, 4, 4, 6}
	var out []string
	for _, n := range parts {
		out = append(out, s[:n])
		s = s[n:]
	}
	return strings.Join(out, "-")
}

// Probe names the file system or volume signature at the start of b (the
// first ProbeSize bytes of a device; fewer is fine, missing bytes match
// nothing), or "" when it knows none. The names are blkid's TYPE values.
func Probe(b []byte) string {
	at := func(off int, sig string) bool {
		return len(b) >= off+len(sig) && string(b[off:off+len(sig)]) == sig
	}
	if ReadPVLabel(b) != nil {
		return FSLVM2
	}
	if at(0, "XFSB") {
		return FSXFS
	}
	if at(65536+64, "_BHRfS_M") {
		return FSBtrfs
	}
	for _, off := range []int{65536 + 52, 8192 + 52} {
		if at(off, "ReIsErFs") || at(off, "ReIsEr2Fs") || at(off, "ReIsEr3Fs") {
			return FSReiserFS
		}
	}
	// ext2/3/4: magic 0xEF53 at 1024+56; the features tell them apart.
	if len(b) >= 1024+0x68 && binary.LittleEndian.Uint16(b[1024+56:]) == 0xEF53 {
		compat := binary.LittleEndian.Uint32(b[1024+0x5C:])
		incompat := binary.LittleEndian.Uint32(b[1024+0x60:])
		const (
			hasJournal = 0x4
			extents    = 0x40
			bit64      = 0x80
			flexBG     = 0x200
		)
		switch {
		case incompat&(extents|bit64|flexBG) != 0:
			return FSExt4
		case compat&hasJournal != 0:
			return FSExt3
		}
		return FSExt2
	}
	// Swap: the signature ends the first page, whatever the page size.
	for _, page := range []int{4096, 8192, 16384, 65536} {
		if at(page-10, "SWAPSPACE2") || at(page-10, "SWAP-SPACE") {
			return FSSwap
		}
	}
	// FAT: a boot sector (0x55AA) naming its FAT type.
	if len(b) >= 512 && b[510] == 0x55 && b[511] == 0xAA {
		if at(0x36, "FAT12   ") || at(0x36, "FAT16   ") || at(0x52, "FAT32   ") || at(0x36, "FAT     ") {
			return FSVFAT
		}
	}
	return ""
}

// trimNul trims a sysfs value: spaces, newlines and NULs.
func trimNul(b []byte) string {
	return strings.TrimSpace(string(bytes.TrimRight(b, "\x00")))
}
