package setup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
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
		if d := inv.Disk(h); d != nil && d.Kind == disks.KindMD {
			out = append(out, h+" (software RAID)")
			continue
		}
		out = append(out, h)
	}
	return strings.Join(out, ", ")
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

// targetCheck applies CheckTarget to the targets the answers name (or,
// with none, lists the disks that could be one). The SCSI id and an
// existing file system are warnings here: disks.scsi-ids reports the
// ids, and protect asks for the typed confirmation.
func targetCheck(e *Env, real []*disks.Disk) Check {
	c := Check{ID: "disks.targets", Title: "Target disks unmounted and unclaimed"}
	if len(e.Targets) == 0 {
		var free []string
		for _, d := range real {
			v := CheckTarget(e, TargetRequest{Path: d.Name, AllowNoSCSIID: true, Overwrite: d.Name})
			if v.OK {
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
	var bad, warn []string
	for _, t := range e.Targets {
		v := CheckTarget(e, TargetRequest{Path: t})
		c.Targets = append(c.Targets, v)
		switch v.Code {
		case "":
		case TargetNoSCSIID, TargetNeedsConfirm:
			warn = append(warn, v.Reason)
		default:
			bad = append(bad, v.Reason)
		}
	}
	switch {
	case len(bad) > 0:
		c.Status, c.Detail = Fail, strings.Join(bad, "; ")
		c.Fix = "each reason says what to do: free those disks or choose others (and change targets in the answers)"
	case len(warn) > 0:
		c.Status, c.Detail = Warn, strings.Join(warn, "; ")
		c.Fix = "protect refuses these until fixed or confirmed: each reason says how"
	default:
		c.Status, c.Detail = Pass, strings.Join(e.Targets, ", ")+" are free"
	}
	return c
}

// TargetRequest asks whether a disk (or, for the demo and tests, a file)
// may be the target of a source disk.
type TargetRequest struct {
	// Path is the candidate: /dev/sdX, a kernel name (sdX), a
	// /dev/disk/by-id path, or (AllowFiles) a regular file. Paths are on
	// the host: read below Env.Root.
	Path            string
	SourceName      string
	SourceSize      int64  // bytes; the target must be at least this large (0: not checked)
	SourceBlockSize uint32 // logical block size of the source (0: not checked)
	// AllowFiles lets a regular file be a target (the demo and tests);
	// AllowNoSCSIID a disk without a stable SCSI id.
	AllowFiles, AllowNoSCSIID bool
	// Overwrite is what the user typed to confirm overwriting a disk that
	// holds a file system or partition table: it must equal the disk's
	// kernel name (e.g. "sdc").
	Overwrite string
	// InUse are the targets of existing pairs (any path form → pair id).
	InUse map[string]string
	// RetentionDirs are the agent's journal and retention directories:
	// the disks holding them are refused (Env.Retention's is always).
	RetentionDirs []string
}

// Codes of TargetVerdict, stable for --json.
const (
	TargetNotFound       = "not-found"
	TargetNotADisk       = "not-a-disk"
	TargetEmpty          = "empty"
	TargetOSDisk         = "os-disk"
	TargetRetention      = "retention"
	TargetInUse          = "in-use"
	TargetMounted        = "mounted"
	TargetLVMPV          = "lvm-pv"
	TargetHolders        = "holders"
	TargetUnreadable     = "unreadable"
	TargetReadOnly       = "read-only"
	TargetTooSmall       = "too-small"
	TargetBlockSize      = "block-size"
	TargetNoSCSIID       = "no-scsi-id"
	TargetNeedsConfirm   = "needs-overwrite-confirm"
	TargetFileNotAllowed = "file-not-allowed"
	TargetNotRegular     = "not-a-regular-file"
	TargetNoInventory    = "no-inventory"
)

// TargetVerdict is CheckTarget's answer.
type TargetVerdict struct {
	Path   string `json:"path"`             // as given
	Device string `json:"device,omitempty"` // the resolved kernel name (sdc); "" for a file
	// StablePath is the disk's /dev/disk/by-id name from its stable SCSI
	// id (scsi-3…, else wwn-…), "" when it has none: the name to write
	// in agent.toml.
	StablePath string `json:"stable_path,omitempty"`
	Size       int64  `json:"size"`
	OK         bool   `json:"ok"`
	// Reason says why the target is refused, one sentence with what was
	// found and what to do; "" when OK.
	Reason string `json:"reason,omitempty"`
	Code   string `json:"code,omitempty"` // one of the Target* codes; "" when OK
	// Confirm is set when the disk holds a file system or partition table
	// (Detail says which): it is OK only once Overwrite equals Confirm,
	// the disk's name. It stays set when confirmed, so that a caller can
	// show that the disk will be overwritten.
	Confirm string `json:"confirm,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// CheckTarget decides whether req.Path may be the target of the source
// it names. It reads the facts of package disks through env (filling its
// defaults; a caller that expects disks to change makes a fresh Env), and
// changes nothing.
//
// Refused, in this order: a path that is not a disk of this host, a
// partition or device-mapper device, a disk without media, the disk of /,
// /boot or an active swap, the disk of the retention volume (Env.Retention
// and req.RetentionDirs), a disk already the target of a pair, a mounted
// disk or one with a mounted partition, an LVM PV (the label alone, on the
// disk or a partition, or an LVM partition type, or an LVM holder), a disk
// with other holders (multipath, md, crypt), a disk whose start cannot be
// read (its PV label or file system could not be looked for), a read-only
// disk, a disk smaller than its source, a logical block size that differs
// from the source's (a partition table is addressed in logical blocks: a
// copy of a 512-byte disk on a 4096-byte one, or the reverse, does not
// boot), and a disk without a stable SCSI id unless req.AllowNoSCSIID.
// A disk holding a file system or partition table is OK only when
// req.Overwrite is its name.
//
// Files (req.AllowFiles) must exist, be regular files at least as large
// as the source, and lie outside the retention directories: the demo's
// targets are files it creates itself, and protect never creates a file
// it would then overwrite.
func CheckTarget(env *Env, req TargetRequest) TargetVerdict {
	v := TargetVerdict{Path: req.Path}
	refuse := func(code, format string, a ...any) TargetVerdict {
		v.OK, v.Code, v.Reason = false, code, fmt.Sprintf(format, a...)
		return v
	}
	if strings.TrimSpace(req.Path) == "" {
		return refuse(TargetNotFound, "no target path given: name a disk (sdc, /dev/sdc or a /dev/disk/by-id path)")
	}
	if !isDevicePath(req.Path) {
		return checkFileTarget(env, req, v, refuse)
	}
	if err := env.fill(); err != nil {
		return refuse(TargetNoInventory, "the disks of this host could not be read (%v): run on the master target itself, as root", err)
	}
	inv := env.Inventory
	name, err := resolveDevice(env, req.Path)
	if err != nil {
		return refuse(TargetNotFound, "%s", err.Error())
	}
	v.Device = name
	if _, p := inv.Partition(name); p != nil {
		d, _ := inv.Partition(name)
		return refuse(TargetNotADisk, "%s is partition %d of %s: a target is a whole disk; choose %s itself (it will be overwritten) or another disk", name, p.Number, d.Name, d.Name)
	}
	if m := inv.Mapper(name); m != nil {
		return refuse(TargetNotADisk, "%s is the device-mapper device %s: a target is a whole disk; choose one of the disks beneath it only after removing %s, or another disk", name, m.DMName, m.DMName)
	}
	d := inv.Disk(name)
	if d == nil {
		return refuse(TargetNotFound, "%s is not a disk of this host (lsblk -d lists them): check the name", req.Path)
	}
	v.Size = int64(d.Size)
	v.StablePath = stablePath(d)
	switch d.Kind {
	case disks.KindSCSI, disks.KindVirtio, disks.KindNVMe, disks.KindXen, disks.KindIDE, disks.KindLoop:
	default:
		return refuse(TargetNotADisk, "%s is a %s device, not a disk a VM is given: choose a SCSI, virtio, NVMe or Xen disk", name, d.Kind)
	}
	if d.Size == 0 {
		return refuse(TargetEmpty, "%s has no media (size 0): attach a disk to it, or choose another disk", name)
	}
	if why := osRole(env, d); why != "" {
		return refuse(TargetOSDisk, "%s is the OS disk: %s; choose another disk", name, why)
	}
	for _, dir := range append(append([]string(nil), req.RetentionDirs...), env.Retention) {
		if dir == "" {
			continue
		}
		if m := inv.MountOf(dir); m != nil && m.Mountpoint != "/" && containsName(inv.DisksUnder(m.Device), name) {
			return refuse(TargetRetention, "%s holds the retention volume: %s is on %s (mounted on %s); choose another disk", name, dir, m.Device, m.Mountpoint)
		}
	}
	for p, id := range req.InUse {
		if n, err := resolveDevice(env, p); err == nil && n == name {
			return refuse(TargetInUse, "%s is already the target of pair %s (%s): choose another disk, or unprotect %s first", name, id, p, id)
		}
	}
	if len(d.Mountpoints) > 0 {
		return refuse(TargetMounted, "%s is mounted on %s: umount it (and remove it from /etc/fstab) if its data is not needed, or choose another disk", name, strings.Join(d.Mountpoints, ", "))
	}
	for _, p := range d.Partitions {
		if len(p.Mountpoints) > 0 {
			return refuse(TargetMounted, "%s has partition %s mounted on %s: umount it (and remove it from /etc/fstab) if its data is not needed, or choose another disk", name, p.Name, strings.Join(p.Mountpoints, ", "))
		}
	}
	if why := diskLVM(inv, d); why != "" {
		return refuse(TargetLVMPV, "%s: LVM owns it; if its volume group is not needed, free it (pvs %s shows the group: vgchange -an VG; vgremove VG; pvremove %s), or choose another disk", why, d.Path, d.Path)
	}
	if hs := diskHolders(d); len(hs) > 0 {
		return refuse(TargetHolders, "%s is claimed by %s: release it (multipath -f NAME, mdadm --stop /dev/mdN, dmsetup remove NAME) if nothing needs it, or choose another disk", name, holderNames(inv, hs))
	}
	if why := probeFailure(d); why != "" {
		return refuse(TargetUnreadable, "%s could not be read to look for an LVM label, file system or partition table (%s): run as root, or choose another disk", name, why)
	}
	if d.ReadOnly {
		return refuse(TargetReadOnly, "%s is read-only: make it writable (blockdev --setrw %s, or the hypervisor's disk mode), or choose another disk", name, d.Path)
	}
	if req.SourceSize > 0 && int64(d.Size) < req.SourceSize {
		return refuse(TargetTooSmall, "%s is %s, smaller than source %s (%s): choose a disk of at least %s, or grow %s", name, sizeText(int64(d.Size)), sourceName(req), sizeText(req.SourceSize), sizeText(req.SourceSize), name)
	}
	if req.SourceBlockSize != 0 && uint32(d.LogicalSectorSize) != req.SourceBlockSize {
		return refuse(TargetBlockSize, "%s has %d-byte logical blocks, source %s has %d-byte ones: its partition table would not be found on the copy; choose a disk with %d-byte logical blocks", name, d.LogicalSectorSize, sourceName(req), req.SourceBlockSize, req.SourceBlockSize)
	}
	if !req.AllowNoSCSIID && stableID(d) == "" {
		return refuse(TargetNoSCSIID, "%s has no stable SCSI id (no scsi-3 or wwn link in /dev/disk/by-id, no LUN designator in VPD page 0x83), so it could change name at the next boot: power off the VM, add disk.EnableUUID = TRUE (vSphere: Edit Settings → VM Options → Advanced → Configuration Parameters), power on; or allow it with --allow-no-scsi-id", name)
	}
	if what := diskContents(d); what != "" {
		v.Confirm = name
		v.Detail = fmt.Sprintf("%s holds %s: all of it will be overwritten", name, what)
		if req.Overwrite != name {
			typed := ""
			if req.Overwrite != "" {
				typed = fmt.Sprintf(" (%q was typed)", req.Overwrite)
			}
			return refuse(TargetNeedsConfirm, "%s holds %s: type %s to confirm it will be overwritten%s, or choose another disk", name, what, name, typed)
		}
	}
	v.OK = true
	return v
}

// checkFileTarget is CheckTarget for a path outside /dev.
func checkFileTarget(env *Env, req TargetRequest, v TargetVerdict, refuse func(code, format string, a ...any) TargetVerdict) TargetVerdict {
	if !req.AllowFiles {
		return refuse(TargetFileNotAllowed, "%s is not a device (targets are disks: /dev/sdX or /dev/disk/by-id/…); file-backed targets are for the demo and tests: pass --allow-files to use one", req.Path)
	}
	if !filepath.IsAbs(req.Path) {
		return refuse(TargetNotFound, "%s: a file target needs an absolute path", req.Path)
	}
	p := env.path(filepath.Clean(req.Path))
	fi, err := os.Stat(p)
	switch {
	case os.IsNotExist(err):
		return refuse(TargetNotFound, "%s does not exist: create it first (truncate -s %d %s)", req.Path, max(req.SourceSize, 0), req.Path)
	case err != nil:
		return refuse(TargetNotFound, "%s cannot be read: %v", req.Path, errors.Unwrap(err))
	case !fi.Mode().IsRegular():
		return refuse(TargetNotRegular, "%s is a %s, not a regular file: choose a regular file or a disk", req.Path, fi.Mode().Type())
	}
	v.Size = fi.Size()
	clean := filepath.Clean(req.Path)
	for _, dir := range req.RetentionDirs {
		if dir != "" && (clean == filepath.Clean(dir) || strings.HasPrefix(clean, filepath.Clean(dir)+"/")) {
			return refuse(TargetRetention, "%s lies in the retention directory %s: put file targets elsewhere", req.Path, dir)
		}
	}
	for k, id := range req.InUse {
		if filepath.Clean(k) == clean {
			return refuse(TargetInUse, "%s is already the target of pair %s: choose another file, or unprotect %s first", req.Path, id, id)
		}
	}
	if req.SourceSize > 0 && fi.Size() < req.SourceSize {
		return refuse(TargetTooSmall, "%s is %s, smaller than source %s (%s): grow it (truncate -s %d %s) or choose another", req.Path, sizeText(fi.Size()), sourceName(req), sizeText(req.SourceSize), req.SourceSize, req.Path)
	}
	v.OK = true
	return v
}

// isDevicePath: a kernel name (no slash) or a path under /dev.
func isDevicePath(p string) bool {
	return !strings.Contains(p, "/") || strings.HasPrefix(filepath.Clean(p), "/dev/")
}

// resolveDevice maps a kernel name, /dev/NAME, /dev/mapper/NAME or a
// /dev/disk/by-* link (read below env.Root) to a kernel name of the
// inventory.
func resolveDevice(env *Env, p string) (string, error) {
	inv := env.Inventory
	if !strings.Contains(p, "/") {
		if inv.Block(p) != nil {
			return p, nil
		}
		return "", fmt.Errorf("%s is not a disk of this host (lsblk -d lists them): check the name", p)
	}
	p = filepath.Clean(p)
	if strings.HasPrefix(p, "/dev/mapper/") {
		if m := inv.Mapper(strings.TrimPrefix(p, "/dev/mapper/")); m != nil {
			return m.Name, nil
		}
		return "", fmt.Errorf("%s is not a device-mapper device of this host (dmsetup ls lists them)", p)
	}
	if strings.HasPrefix(p, "/dev/disk/") {
		id := filepath.Base(p)
		for _, d := range inv.Disks {
			if strings.HasPrefix(p, "/dev/disk/by-id/") && containsName(d.ByID, id) {
				return d.Name, nil
			}
		}
		t, err := os.Readlink(env.path(p))
		if err != nil {
			return "", fmt.Errorf("%s does not exist on this host (ls -l %s lists the names): check the name", p, filepath.Dir(p))
		}
		if n := filepath.Base(t); inv.Block(n) != nil {
			return n, nil
		}
		return "", fmt.Errorf("%s points to %s, which is not a disk of this host", p, t)
	}
	n := strings.TrimPrefix(p, "/dev/")
	if inv.Block(n) != nil {
		return n, nil
	}
	return "", fmt.Errorf("%s is not a disk of this host (lsblk -d lists them): check the name", p)
}

// osRole says which of /, /boot or an active swap lives on d, or "".
func osRole(e *Env, d *disks.Disk) string {
	inv := e.Inventory
	if containsName(inv.RootDisks, d.Name) {
		return fmt.Sprintf("/ is on %s", inv.RootDevice)
	}
	if containsName(inv.BootDisks, d.Name) {
		return fmt.Sprintf("/boot is on %s", inv.BootDevice)
	}
	for _, s := range inv.Swaps {
		if containsName(inv.DisksUnder(s.Device), d.Name) {
			return fmt.Sprintf("swap is active on %s", s.Filename)
		}
	}
	return ""
}

// diskLVM says why LVM owns a disk or one of its partitions, or "".
func diskLVM(inv *disks.Inventory, d *disks.Disk) string {
	if why := onLVM(inv, d.Name); why != "" {
		return pvWithUUID(why, d.PV)
	}
	for _, p := range d.Partitions {
		if why := onLVM(inv, p.Name); why != "" {
			return pvWithUUID(why, p.PV)
		}
	}
	return ""
}

func pvWithUUID(why string, pv *disks.PVLabel) string {
	if pv != nil && pv.UUID != "" && strings.HasSuffix(why, "PV label") {
		return why + " (PV UUID " + pv.UUID + ")"
	}
	return why
}

// diskHolders are the holders of a disk and of its partitions.
func diskHolders(d *disks.Disk) []string {
	hs := append([]string(nil), d.Holders...)
	for _, p := range d.Partitions {
		hs = append(hs, p.Holders...)
	}
	return hs
}

// probeFailure is the part of a device's Err that says its start could
// not be opened or read, or "".
func probeFailure(d *disks.Disk) string {
	var out []string
	for _, e := range strings.Split(d.Err, "; ") {
		if strings.HasPrefix(e, "open "+d.Path+":") || strings.HasPrefix(e, "read "+d.Path+":") {
			out = append(out, e)
		}
	}
	return strings.Join(out, "; ")
}

// diskContents names the file systems and partition table on a disk, or
// "" when its start is blank to the probe.
func diskContents(d *disks.Disk) string {
	var what []string
	if d.FSType != "" {
		what = append(what, "a file system signature ("+d.FSType+")")
	}
	if d.Table != "" {
		var ps []string
		for _, p := range d.Partitions {
			s := p.Name
			if p.FSType != "" {
				s += " " + p.FSType
			}
			ps = append(ps, s)
		}
		t := fmt.Sprintf("a %s partition table", d.Table)
		if len(ps) > 0 {
			t += " (" + strings.Join(ps, ", ") + ")"
		}
		what = append(what, t)
	} else if len(d.Partitions) > 0 {
		what = append(what, fmt.Sprintf("%d partitions", len(d.Partitions)))
	}
	return strings.Join(what, " and ")
}

// stablePath is /dev/disk/by-id/<scsi-3… or wwn-…>, or "".
func stablePath(d *disks.Disk) string {
	for _, pre := range []string{"scsi-3", "wwn-"} {
		for _, id := range d.ByID {
			if strings.HasPrefix(id, pre) {
				return "/dev/disk/by-id/" + id
			}
		}
	}
	return ""
}

func sourceName(req TargetRequest) string {
	if req.SourceName == "" {
		return "disk"
	}
	return req.SourceName
}

// sizeText is a size in GB (1e9) with a decimal when it helps, and bytes.
func sizeText(n int64) string {
	switch {
	case n >= 100e9:
		return fmt.Sprintf("%.0f GB", float64(n)/1e9)
	case n >= 1e9:
		return fmt.Sprintf("%.1f GB", float64(n)/1e9)
	}
	return fmt.Sprintf("%d MB (%d bytes)", n/1e6, n)
}

func containsName(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// SuggestTargets maps each source (by SourceName; Path empty, the other
// fields as for CheckTarget) to a free candidate disk, its /dev/NAME
// path: among the disks a VM is given (not loops), those CheckTarget
// accepts without a typed confirmation, the smallest that fits. Sources
// are served largest first (ties in the order given), candidates smallest
// first (ties by name), so the answer is stable; a disk is given to one
// source only. A source with no fitting disk, or a repeated name, is left
// out of the map.
func SuggestTargets(env *Env, sources []TargetRequest) map[string]string {
	out := map[string]string{}
	if err := env.fill(); err != nil {
		return out
	}
	var cands []*disks.Disk
	for i := range env.Inventory.Disks {
		if realDisk(env.Inventory.Disks[i]) {
			cands = append(cands, &env.Inventory.Disks[i])
		}
	}
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].Size != cands[j].Size {
			return cands[i].Size < cands[j].Size
		}
		return lessKernelName(cands[i].Name, cands[j].Name)
	})
	order := make([]int, len(sources))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sources[order[a]].SourceSize > sources[order[b]].SourceSize })
	taken, seen := map[string]bool{}, map[string]bool{}
	for _, i := range order {
		s := sources[i]
		if seen[s.SourceName] {
			continue
		}
		seen[s.SourceName] = true
		for _, d := range cands {
			if taken[d.Name] {
				continue
			}
			r := s
			r.Path, r.Overwrite = d.Path, ""
			if CheckTarget(env, r).OK {
				out[s.SourceName] = d.Path
				taken[d.Name] = true
				break
			}
		}
	}
	return out
}

// lessKernelName orders kernel names naturally: sdb < sdaa.
func lessKernelName(a, b string) bool {
	if len(a) != len(b) {
		return len(a) < len(b)
	}
	return a < b
}
