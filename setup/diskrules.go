package setup

import (
	"fmt"
	"strings"

	"github.com/mtconsole/mtconsole/disks"
)

// MaxDisks is how many disks a master target may have attached.
const MaxDisks = 60

// realDisk: a disk a VM is given (not a loop, RAM, optical or mapper).
func realDisk(d disks.Disk) bool {
	switch d.Kind {
	case disks.KindSCSI, disks.KindVirtio, disks.KindNVMe, disks.KindXen, disks.KindIDE:
		return d.Size > 0
	}
	return false
}

// onLVM reports why a device is LVM, or "": an LVM logical volume, a PV
// label, an LVM partition type, or an LVM holder.
func onLVM(inv *disks.Inventory, name string) string {
	if m := inv.Mapper(name); m != nil {
		if strings.HasPrefix(m.UUID, "LVM-") {
			return fmt.Sprintf("%s is the LVM logical volume %s", name, m.DMName)
		}
		for _, s := range m.Slaves {
			if why := onLVM(inv, s); why != "" {
				return why
			}
		}
		return ""
	}
	if _, p := inv.Partition(name); p != nil {
		switch {
		case p.PV != nil:
			return fmt.Sprintf("%s carries an LVM PV label", name)
		case p.IsLVM():
			return fmt.Sprintf("%s has the LVM partition type %s", name, p.Type)
		}
		if hs := inv.LVMHolders(&p.Block); len(hs) > 0 {
			return fmt.Sprintf("%s is held by LVM (%s)", name, strings.Join(hs, ", "))
		}
		return ""
	}
	if d := inv.Disk(name); d != nil {
		if d.PV != nil {
			return fmt.Sprintf("%s carries an LVM PV label", name)
		}
		if hs := inv.LVMHolders(&d.Block); len(hs) > 0 {
			return fmt.Sprintf("%s is held by LVM (%s)", name, strings.Join(hs, ", "))
		}
	}
	return ""
}

// stableID is a disk's stable SCSI id, or "".
func stableID(d *disks.Disk) string {
	for _, id := range d.ByID {
		if strings.HasPrefix(id, "scsi-3") || strings.HasPrefix(id, "wwn-") {
			return id
		}
	}
	for _, ds := range d.Designators {
		if ds.Stable() {
			return ds.WWID()
		}
	}
	return ""
}

// WWID is the id multipath knows a disk by, or "".
func WWID(d *disks.Disk) string {
	for _, ds := range d.Designators {
		if ds.Stable() {
			return ds.WWID()
		}
	}
	for _, id := range d.ByID {
		if strings.HasPrefix(id, "scsi-3") {
			return strings.TrimPrefix(id, "scsi-")
		}
		if strings.HasPrefix(id, "wwn-0x") {
			return "3" + strings.TrimPrefix(id, "wwn-0x")
		}
	}
	return ""
}

// inUse says why a disk cannot be a target, or "".
func inUse(inv *disks.Inventory, d *disks.Disk, osDisks map[string]bool) string {
	if osDisks[d.Name] {
		return d.Name + " holds / , /boot, swap or the retention volume"
	}
	if len(d.Mountpoints) > 0 {
		return fmt.Sprintf("%s is mounted on %s", d.Name, strings.Join(d.Mountpoints, ", "))
	}
	if len(d.Holders) > 0 {
		return fmt.Sprintf("%s is claimed by %s", d.Name, holderNames(inv, d.Holders))
	}
	for _, p := range d.Partitions {
		if len(p.Mountpoints) > 0 {
			return fmt.Sprintf("%s is mounted on %s", p.Name, strings.Join(p.Mountpoints, ", "))
		}
		if len(p.Holders) > 0 {
			return fmt.Sprintf("%s is claimed by %s", p.Name, holderNames(inv, p.Holders))
		}
	}
	return ""
}

func holderNames(inv *disks.Inventory, hs []string) string {
	var out []string
	for _, h := range hs {
		if m := inv.Mapper(h); m != nil && m.DMName != "" {
			kind := "device mapper"
			switch {
			case strings.HasPrefix(m.UUID, "LVM-"):
				kind = "LVM"
			case strings.HasPrefix(m.UUID, "mpath-"):
				kind = "multipath"
			}
			out = append(out, fmt.Sprintf("%s (%s %s)", h, kind, m.DMName))
			continue
		}
		out = append(out, h)
	}
	return strings.Join(out, ", ")
}

// osDisks are the disks under /, /boot, swap and the retention volume.
func osDisks(e *Env) map[string]bool {
	inv := e.Inventory
	m := map[string]bool{}
	for _, d := range inv.RootDisks {
		m[d] = true
	}
	for _, d := range inv.BootDisks {
		m[d] = true
	}
	for _, s := range inv.Swaps {
		for _, d := range inv.DisksUnder(s.Device) {
			m[d] = true
		}
	}
	if r := inv.MountOf(e.Retention); r != nil && r.Mountpoint != "/" {
		for _, d := range inv.DisksUnder(r.Device) {
			m[d] = true
		}
	}
	return m
}

func diskChecks(e *Env) []Check {
	inv := e.Inventory
	var real []*disks.Disk
	var names []string
	for i := range inv.Disks {
		if realDisk(inv.Disks[i]) {
			real = append(real, &inv.Disks[i])
			names = append(names, inv.Disks[i].Name)
		}
	}
	var out []Check

	c := Check{ID: "disks.count", Title: "At least two disks (OS and retention)"}
	switch {
	case len(real) < 2 && e.Role == RoleMT:
		c.Status = Fail
		c.Detail = fmt.Sprintf("%d disk (%s): the retention volume needs a disk of its own", len(real), strings.Join(names, ", "))
		c.Fix = "power off, attach a second disk for retention (1 TB recommended), power on; then mkfs.ext4 it and mount it on " + DefaultRetention
	default:
		c.Status, c.Detail = Pass, fmt.Sprintf("%d disks: %s", len(real), strings.Join(names, ", "))
	}
	out = append(out, c)

	c = Check{ID: "disks.max", Title: fmt.Sprintf("At most %d disks attached", MaxDisks)}
	if len(real) > MaxDisks {
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("%d disks attached", len(real)), fmt.Sprintf("detach disks down to %d, or spread the plan over two master targets", MaxDisks)
	} else {
		c.Status, c.Detail = Pass, fmt.Sprintf("%d of %d", len(real), MaxDisks)
	}
	out = append(out, c)

	c = Check{ID: "disks.root-lvm", Title: "/ not on LVM"}
	if why := onLVM(inv, inv.RootDevice); inv.RootDevice == "" {
		c.Status, c.Detail = Skip, "no block device is mounted on /"
	} else if why != "" {
		c.Status, c.Detail = Fail, "/ is on "+inv.RootDevice+": "+why
		c.Fix = "reinstall the OS on plain partitions (no LVM for / or retention: the master target keeps LVM away from replicated disks)"
	} else {
		c.Status, c.Detail = Pass, "/ is on "+inv.RootDevice
	}
	out = append(out, c)

	if e.Role == RoleMT {
		out = append(out, retentionChecks(e)...)
	}

	c = Check{ID: "disks.scsi-ids", Title: "Every SCSI disk has a stable id (disk.EnableUUID)"}
	var scsi, missing []string
	for _, d := range real {
		if d.Kind != disks.KindSCSI {
			continue
		}
		scsi = append(scsi, d.Name)
		if stableID(d) == "" {
			missing = append(missing, d.Name)
		}
	}
	switch {
	case len(scsi) == 0:
		c.Status = Warn
		c.Detail = fmt.Sprintf("no SCSI disks (%s): a master target is a VMware VM with an LSI Logic SCSI controller", strings.Join(names, ", "))
		c.Fix = "in vSphere give the VM an LSI Logic SCSI controller and attach its disks to it"
	case len(missing) > 0:
		c.Status = Fail
		c.Detail = fmt.Sprintf("no scsi-3/wwn id and no LUN designator in VPD page 0x83 for %s", strings.Join(missing, ", "))
		c.Fix = "power off the VM; vSphere: Edit Settings → VM Options → Advanced → Configuration Parameters → add disk.EnableUUID = TRUE; power on"
	default:
		c.Status, c.Detail = Pass, fmt.Sprintf("%d SCSI disks, each with a stable id", len(scsi))
	}
	if e.Role == RoleMT {
		out = append(out, c)
	}

	if e.Role == RoleMT {
		out = append(out, targetCheck(e, real))
	}

	// Sizing from the original's guidance.
	c = Check{ID: "disks.os-size", Title: "OS disk of 100 GB or more"}
	if len(inv.RootDisks) == 0 {
		c.Status, c.Detail = Skip, "the disk under / is not known"
	} else if d := inv.Disk(inv.RootDisks[0]); d.Size < 100e9 {
		c.Status, c.Detail, c.Fix = Warn, fmt.Sprintf("%s is %s", d.Name, gb(d.Size)), "give the OS disk 100 GB or more (vSphere: grow the disk, then the partition and file system)"
	} else {
		c.Status, c.Detail = Pass, fmt.Sprintf("%s is %s", d.Name, gb(d.Size))
	}
	out = append(out, c)

	c = Check{ID: "disks.memory", Title: "Memory of 6 GB or more"}
	if mem := memTotal(e.path("/proc/meminfo")); mem == 0 {
		c.Status, c.Detail = Skip, "/proc/meminfo has no MemTotal"
	} else if mem < 6e9*0.95 { // MemTotal excludes the kernel's own
		c.Status, c.Detail, c.Fix = Warn, fmt.Sprintf("%.1f GB", float64(mem)/1e9), "give the VM 6 GB of memory or more"
	} else {
		c.Status, c.Detail = Pass, fmt.Sprintf("%.1f GB", float64(mem)/1e9)
	}
	out = append(out, c)

	c = Check{ID: "disks.cpus", Title: "4 CPU cores or more"}
	if e.NumCPU < 4 {
		c.Status, c.Detail, c.Fix = Warn, fmt.Sprintf("%d cores", e.NumCPU), "give the VM 4 virtual CPUs or more"
	} else {
		c.Status, c.Detail = Pass, fmt.Sprintf("%d cores", e.NumCPU)
	}
	out = append(out, c)
	for i := range out {
		out[i].Group = GroupDisks
	}
	return out
}

func retentionChecks(e *Env) []Check {
	inv := e.Inventory
	c := Check{ID: "disks.retention", Title: "Retention volume " + e.Retention}
	m := inv.MountOf(e.Retention)
	fix := fmt.Sprintf("on the second disk (say sdb): mkfs.ext4 /dev/sdb; mkdir -p %s; mount /dev/sdb %s; add \"/dev/sdb %s ext4 defaults 0 0\" to /etc/fstab (use its /dev/disk/by-id name)",
		e.Retention, e.Retention, e.Retention)
	if m == nil || m.Mountpoint == "/" || m.Device == "" {
		c.Status, c.Detail, c.Fix = Fail, e.Retention+" is not a mounted file system of its own (it would fill /)", fix
		return []Check{c}
	}
	out := []Check{}
	under := inv.DisksUnder(m.Device)
	shared := false
	for _, d := range under {
		for _, r := range inv.RootDisks {
			shared = shared || d == r
		}
	}
	fs := m.FSType
	switch {
	case fs == "vfat" || fs == "msdos" || fs == "exfat":
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("%s on %s is %s: FAT cannot hold the retention files", m.Mountpoint, m.Device, fs), fix
	case onLVM(inv, m.Device) != "":
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("%s is on LVM: %s", m.Mountpoint, onLVM(inv, m.Device)), "move retention to a plain disk: "+fix
	case shared:
		c.Status, c.Detail, c.Fix = Warn, fmt.Sprintf("%s (%s) shares a disk with /", m.Mountpoint, m.Device), "give retention a disk of its own: "+fix
	default:
		c.Status, c.Detail = Pass, fmt.Sprintf("%s on %s (%s, disk %s)", m.Mountpoint, m.Device, fs, strings.Join(under, ", "))
	}
	out = append(out, c)

	c = Check{ID: "disks.retention-space", Title: "Room on the retention volume"}
	switch {
	case m.Space == nil:
		c.Status, c.Detail = Skip, "free space unknown: "+m.SpaceErr
	case e.RetentionBytes > 0 && m.Space.Avail < e.RetentionBytes:
		c.Status, c.Detail = Fail, fmt.Sprintf("%s free, the policy needs %s", gb(m.Space.Avail), gb(e.RetentionBytes))
		c.Fix = "grow the retention disk or lower retention.size_gb in the answers"
	case m.Space.Total < 1e12*0.9:
		c.Status, c.Detail, c.Fix = Warn, fmt.Sprintf("%s free of %s (1 TB recommended)", gb(m.Space.Avail), gb(m.Space.Total)), "a retention disk of 1 TB is the original's guidance"
	default:
		c.Status, c.Detail = Pass, fmt.Sprintf("%s free of %s", gb(m.Space.Avail), gb(m.Space.Total))
	}
	return append(out, c)
}

func targetCheck(e *Env, real []*disks.Disk) Check {
	inv := e.Inventory
	c := Check{ID: "disks.targets", Title: "Target disks unmounted and unclaimed"}
	used := osDisks(e)
	if len(e.Targets) == 0 {
		var free []string
		for _, d := range real {
			if inUse(inv, d, used) == "" {
				free = append(free, d.Name)
			}
		}
		if len(free) == 0 {
			c.Status, c.Detail = Skip, "no targets chosen, and no disk is free to be one yet (vContinuum attaches them at protection)"
		} else {
			c.Status, c.Detail = Pass, "no targets chosen; free for targets: "+strings.Join(free, ", ")
		}
		return c
	}
	var bad []string
	for _, t := range e.Targets {
		d := inv.Disk(t)
		if d == nil {
			bad = append(bad, t+" is not a disk of this host")
			continue
		}
		if why := inUse(inv, d, used); why != "" {
			bad = append(bad, why)
		}
	}
	if len(bad) > 0 {
		c.Status, c.Detail = Fail, strings.Join(bad, "; ")
		c.Fix = "choose disks that nothing mounts or holds (umount; multipath -f NAME; vgchange -an VG) or remove them from targets in the answers"
		return c
	}
	c.Status, c.Detail = Pass, strings.Join(e.Targets, ", ")+" are free"
	return c
}
