package vsphere

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// PairTargets is what the replication agent says of its pairs: the
// target devices of the pairs still running (not ended). Known is false
// when no agent answered; Err is why the agent could not be asked, when
// one seems to be there.
type PairTargets struct {
	Known   bool
	Socket  string
	Targets map[string]string // target path -> pair id
	Err     error
}

// InUseChecks judges, for each disk to move, whether this master target
// still uses it: the target of a running pair (pairs), mounted
// (root/proc/self/mountinfo, the disk or one of its partitions), or held
// by another block device (root/sys/block/DEV/holders: LVM, md,
// multipath, dm-crypt). A disk without a block device here (not mapped
// through by-id) cannot be judged: the check fails and says why. It
// changes nothing.
func InUseChecks(root string, disks []Disk, pairs PairTargets) []Check {
	var out []Check
	// The pairs' targets as block device names.
	targets := map[string]string{}
	for t, id := range pairs.Targets {
		p := filepath.Join(root, t)
		if r, err := filepath.EvalSymlinks(p); err == nil {
			p = r
		} else if l, err := os.Readlink(p); err == nil {
			p = l
		}
		targets[filepath.Base(p)] = id
	}
	ck := Check{ID: "disks.pairs", Group: GroupVSphere, Title: "No running pair writes to the disks", Status: Pass}
	switch {
	case pairs.Err != nil:
		ck.Status, ck.Detail = Fail, fmt.Sprintf("could not ask the replication agent on %s: %v", pairs.Socket, pairs.Err)
		ck.Fix = "start the agent (systemctl start mtconsole-agent) so it can say which pairs run, or stop it if no pair must run"
	case !pairs.Known:
		ck.Detail = "no replication agent answers on " + pairs.Socket + ": no pair runs here"
	default:
		var busy []string
		for _, d := range disks {
			if d.Device == "" {
				continue
			}
			if id, ok := targets[filepath.Base(d.Device)]; ok {
				busy = append(busy, fmt.Sprintf("%s is the target of pair %s", d.Device, id))
			}
		}
		if len(busy) > 0 {
			ck.Status, ck.Detail = Fail, strings.Join(busy, "; ")
			ck.Fix = "finish the recovery and stop these pairs first (mtconsole unprotect, or the console's Unprotect): detaching a disk under a running pair loses its writes"
		} else {
			ck.Detail = fmt.Sprintf("%d pair(s) run, none on these disks", len(pairs.Targets))
		}
	}
	out = append(out, ck)

	mounts, merr := readMountinfo(filepath.Join(root, "proc", "self", "mountinfo"))
	var unmapped, mounted, held []string
	for _, d := range disks {
		if d.Device == "" {
			unmapped = append(unmapped, d.File)
			continue
		}
		name := filepath.Base(d.Device)
		devs := append([]string{name}, partitions(root, name)...)
		for _, dev := range devs {
			num := readTrim(filepath.Join(root, "sys", "class", "block", dev, "dev"))
			for _, m := range mounts {
				if (num != "" && m.devNum == num) || filepath.Base(m.source) == dev && strings.HasPrefix(m.source, "/dev/") {
					mounted = append(mounted, fmt.Sprintf("/dev/%s on %s", dev, m.point))
				}
			}
			ents, _ := os.ReadDir(filepath.Join(root, "sys", "class", "block", dev, "holders"))
			for _, e := range ents {
				held = append(held, fmt.Sprintf("/dev/%s by %s", dev, e.Name()))
			}
		}
	}
	ck = Check{ID: "disks.mapped", Group: GroupVSphere, Title: "Each disk has its block device here", Status: Pass, Detail: fmt.Sprintf("%d disk(s)", len(disks))}
	if len(unmapped) > 0 {
		ck.Status, ck.Detail = Fail, "no block device for "+strings.Join(unmapped, ", ")+": whether it is mounted or held cannot be told"
		ck.Fix = "check disk.EnableUUID is TRUE on the master target and it was power-cycled since, then `mtconsole vsphere check`"
	}
	out = append(out, ck)
	ck = Check{ID: "disks.mounted", Group: GroupVSphere, Title: "No disk mounted here", Status: Pass, Detail: "none"}
	switch {
	case merr != nil:
		ck.Status, ck.Detail, ck.Fix = Fail, merr.Error(), "run as root on the master target"
	case len(mounted) > 0:
		ck.Status, ck.Detail = Fail, strings.Join(mounted, "; ")
		ck.Fix = "unmount them (umount MOUNTPOINT) first"
	}
	out = append(out, ck)
	ck = Check{ID: "disks.holders", Group: GroupVSphere, Title: "No disk held by LVM, md, multipath or dm", Status: Pass, Detail: "none"}
	if len(held) > 0 {
		ck.Status, ck.Detail = Fail, strings.Join(held, "; ")
		ck.Fix = "deactivate what holds them first (vgchange -an VG, mdadm --stop, dmsetup remove, multipath -f)"
	}
	return append(out, ck)
}

type mountEntry struct{ devNum, point, source string }

// readMountinfo reads the major:minor, mount point and source of each
// line of a mountinfo file (proc(5)).
func readMountinfo(path string) ([]mountEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("mount table: %w", err)
	}
	defer f.Close()
	var out []mountEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if len(fields) < 5 || sep < 0 || sep+2 >= len(fields) {
			return nil, fmt.Errorf("%s:%d: not a mountinfo line", path, n)
		}
		out = append(out, mountEntry{devNum: fields[2], point: unescape(fields[4]), source: unescape(fields[sep+2])})
	}
	return out, sc.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range s[i+1 : i+4] {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + byte(c-'0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// partitions lists a disk's partitions (root/sys/class/block/DEV/DEVN).
func partitions(root, dev string) []string {
	ents, _ := os.ReadDir(filepath.Join(root, "sys", "class", "block", dev))
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), dev) {
			if _, err := os.Stat(filepath.Join(root, "sys", "class", "block", dev, e.Name(), "partition")); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
