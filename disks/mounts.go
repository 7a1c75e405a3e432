package disks

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// readMountinfo parses /proc/self/mountinfo: "id parent maj:min root
// mountpoint options [optional…] - fstype source superoptions", with
// spaces, tabs, newlines and backslashes in paths escaped as octal.
func readMountinfo(h Host, inv *Inventory) ([]Mount, error) {
	path := h.Path("/proc/self/mountinfo")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the mounts: %w", err)
	}
	ms, err := ParseMountinfo(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for i := range ms {
		m := &ms[i]
		m.Device = inv.byMajMin(m.MajMin)
		if m.Device == "" {
			continue // proc, tmpfs, overlay, …: no device of ours
		}
		sp, err := h.statfs(m.Mountpoint)
		if err != nil {
			m.SpaceErr = err.Error()
		} else {
			m.Space = &sp
		}
	}
	return ms, nil
}

// ParseMountinfo parses the text of /proc/<pid>/mountinfo.
func ParseMountinfo(b []byte) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 6 || sep < 0 || sep+2 >= len(f) {
			return out, fmt.Errorf("line %d: not a mountinfo line (%d fields, no \" - \" separator)", n, len(f))
		}
		out = append(out, Mount{MajMin: f[2], Mountpoint: unescapeOctal(f[4]), Options: f[5],
			FSType: f[sep+1], Source: unescapeOctal(f[sep+2])})
	}
	return out, sc.Err()
}

// unescapeOctal undoes the kernel's \ooo escapes in mountinfo and swaps.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// readSwaps parses /proc/swaps; a missing file is no swap.
func readSwaps(h Host, inv *Inventory) []Swap {
	b, err := os.ReadFile(h.Path("/proc/swaps"))
	if err != nil {
		return nil
	}
	var out []Swap
	for i, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if i == 0 || len(f) < 3 {
			continue // the header
		}
		kib, _ := strconv.ParseUint(f[2], 10, 64)
		s := Swap{Filename: unescapeOctal(f[0]), Type: f[1], Size: kib << 10}
		if s.Type == "partition" {
			s.Device = inv.deviceOf(s.Filename)
		}
		out = append(out, s)
	}
	return out
}

// deviceOf maps a /dev path (/dev/sda2, /dev/dm-1, /dev/mapper/vg-swap)
// to a kernel name in the inventory.
func (inv *Inventory) deviceOf(path string) string {
	if strings.HasPrefix(path, "/dev/mapper/") {
		if m := inv.Mapper(strings.TrimPrefix(path, "/dev/mapper/")); m != nil {
			return m.Name
		}
		return ""
	}
	if b := inv.Block(filepath.Base(path)); b != nil {
		return b.Name
	}
	return ""
}
