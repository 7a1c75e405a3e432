package disks

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Designator is one identification descriptor of SCSI VPD page 0x83.
type Designator struct {
	Type        string `json:"type"`        // "naa", "eui64", "t10", "name", "vendor", "md5", or "type-N"
	Association string `json:"association"` // "lun", "port" or "target"
	Value       string `json:"value"`       // hex for binary designators, text for ASCII/UTF-8 ones
}

// Stable reports whether d identifies the logical unit itself in a way
// that survives reboots and re-enumeration: an NAA, EUI-64, SCSI name
// string or T10 vendor id of the LUN. VMware gives a disk an NAA
// designator (6000c29…) only with disk.EnableUUID=TRUE.
func (d Designator) Stable() bool {
	if d.Association != "lun" {
		return false
	}
	switch d.Type {
	case "naa", "eui64", "name", "t10":
		return true
	}
	return false
}

// WWID is the identifier multipath and udev's scsi_id give the device:
// "3" and the hex NAA, "2" and the EUI-64, "8" and a SCSI name, "1" and a
// T10 id.
func (d Designator) WWID() string {
	switch d.Type {
	case "naa":
		return "3" + d.Value
	case "eui64":
		return "2" + d.Value
	case "name":
		return "8" + d.Value
	case "t10":
		return "1" + d.Value
	}
	return ""
}

var designatorTypes = map[byte]string{0: "vendor", 1: "t10", 2: "eui64", 3: "naa", 7: "md5", 8: "name"}

// ParseVPD83 parses the Device Identification VPD page (0x83) as sysfs
// gives it in device/vpd_pg83: a 4-byte header (page code 0x83, length)
// and designation descriptors of 4 header bytes each. Designators that
// run past the page are an error; ones of unknown types are kept by
// number.
func ParseVPD83(b []byte) ([]Designator, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("VPD page 0x83: %d bytes, shorter than its 4-byte header", len(b))
	}
	if b[1] != 0x83 {
		return nil, fmt.Errorf("VPD page 0x83: page code is %#02x", b[1])
	}
	n := int(b[2])<<8 | int(b[3])
	if 4+n > len(b) {
		return nil, fmt.Errorf("VPD page 0x83: says %d bytes, has %d", n, len(b)-4)
	}
	page := b[4 : 4+n]
	var out []Designator
	for len(page) > 0 {
		if len(page) < 4 {
			return out, fmt.Errorf("VPD page 0x83: %d stray bytes after the last designator", len(page))
		}
		codeSet := page[0] & 0x0f
		assoc := (page[1] >> 4) & 0x3
		typ := page[1] & 0x0f
		l := int(page[3])
		if 4+l > len(page) {
			return out, fmt.Errorf("VPD page 0x83: designator of %d bytes runs past the page", l)
		}
		v := page[4 : 4+l]
		d := Designator{Type: designatorTypes[typ], Association: []string{"lun", "port", "target", "reserved"}[assoc]}
		if d.Type == "" {
			d.Type = fmt.Sprintf("type-%d", typ)
		}
		if codeSet == 2 || codeSet == 3 {
			d.Value = strings.TrimRight(string(v), "\x00 ")
		} else {
			d.Value = hex.EncodeToString(v)
		}
		out = append(out, d)
		page = page[4+l:]
	}
	return out, nil
}
