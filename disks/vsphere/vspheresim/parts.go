package vspheresim

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
)

// Partition type GUIDs the failback defaults read.
const (
	GPTESP       = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
	GPTMSR       = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE" // Microsoft reserved
	GPTBasicData = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
	GPTLinuxFS   = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	GPTLinuxLVM  = "E6D6D379-F507-44C2-A23C-238F2A3DF928"
	GPTBIOSBoot  = "21686148-6449-6E6F-744E-656564454649"
)

// WriteGPT writes a disk image's first 34 sectors (512 bytes each): a
// protective MBR and a GPT header whose entries (at LBA 2) have these
// type GUIDs, as a source's disk recovered onto the master target has.
// Only what a partition table reader looks at is filled (no CRCs).
func WriteGPT(path string, typeGUIDs ...string) error {
	b := make([]byte, 34*512)
	mbrEntry(b, 0, false, 0xee)
	h := b[512:]
	copy(h, "EFI PART")
	binary.LittleEndian.PutUint64(h[72:], 2)
	binary.LittleEndian.PutUint32(h[80:], 128)
	binary.LittleEndian.PutUint32(h[84:], 128)
	for i, g := range typeGUIDs {
		raw, err := guidBytes(g)
		if err != nil {
			return err
		}
		copy(b[2*512+i*128:], raw)
	}
	return writeHead(path, b)
}

// WriteMBR writes an MBR partition table with partitions of these types,
// the first one marked active when active is set.
func WriteMBR(path string, active bool, types ...byte) error {
	b := make([]byte, 512)
	for i, t := range types {
		mbrEntry(b, i, active && i == 0, t)
	}
	return writeHead(path, b)
}

func mbrEntry(b []byte, i int, active bool, typ byte) {
	e := b[446+16*i:]
	if active {
		e[0] = 0x80
	}
	e[4] = typ
	b[510], b[511] = 0x55, 0xaa
}

func writeHead(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// guidBytes is a GUID's on-disk form: the first three fields little
// endian, the rest as written.
func guidBytes(g string) ([]byte, error) {
	p := strings.Split(g, "-")
	if len(p) != 5 {
		return nil, fmt.Errorf("GUID %q: want 8-4-4-4-12 hex digits", g)
	}
	raw, err := hex.DecodeString(strings.Join(p, ""))
	if err != nil || len(raw) != 16 {
		return nil, fmt.Errorf("GUID %q: want 8-4-4-4-12 hex digits", g)
	}
	out := make([]byte, 16)
	binary.LittleEndian.PutUint32(out[0:], binary.BigEndian.Uint32(raw[0:]))
	binary.LittleEndian.PutUint16(out[4:], binary.BigEndian.Uint16(raw[4:]))
	binary.LittleEndian.PutUint16(out[6:], binary.BigEndian.Uint16(raw[6:]))
	copy(out[8:], raw[8:])
	return out, nil
}
