package disks

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Host says where the host's trees are: sys, proc, dev and etc below Root.
type Host struct {
	Root string // "/" for this host; a fixture tree in tests
	// Statfs reports a mounted file system's size and free space; nil
	// means statfs(2) of Root+mountpoint. Tests of fixture trees set it,
	// since a fixture's mount points are not mounted.
	Statfs func(mountpoint string) (Space, error)
}

// Space is a file system's size and free space in bytes.
type Space struct {
	Total uint64 `json:"total"`
	Free  uint64 `json:"free"`  // free blocks, root's reserve included
	Avail uint64 `json:"avail"` // free to an unprivileged user
}

// Path joins p (absolute on the host) below the root.
func (h Host) Path(p string) string {
	if h.Root == "" || h.Root == "/" {
		return p
	}
	return filepath.Join(h.Root, p)
}

// Kinds of block device, from the kernel's name.
const (
	KindSCSI   = "scsi"   // sd*
	KindVirtio = "virtio" // vd*
	KindNVMe   = "nvme"
	KindXen    = "xen" // xvd*
	KindIDE    = "ide" // hd*
	KindDM     = "dm"  // device-mapper: LVM, multipath, crypt
	KindMD     = "md"
	KindLoop   = "loop"
	KindOther  = "other" // zram, ram, sr, nbd, …
)

// Block is what a disk, a partition and a device-mapper device share.
type Block struct {
	Name        string   `json:"name"`   // kernel name: sda, sda1, dm-0
	Path        string   `json:"path"`   // /dev/sda (on the host, not below Root)
	MajMin      string   `json:"majmin"` // "8:0"
	Size        uint64   `json:"size"`   // bytes
	Holders     []string `json:"holders,omitempty"`
	FSType      string   `json:"fstype,omitempty"` // by signature; see Probe
	PV          *PVLabel `json:"pv,omitempty"`
	Mountpoints []string `json:"mountpoints,omitempty"`
	Err         string   `json:"error,omitempty"` // what could not be read, and why
}

// Disk is a whole block device.
type Disk struct {
	Block
	Kind               string       `json:"kind"`
	LogicalSectorSize  int          `json:"logical_sector_size"`
	PhysicalSectorSize int          `json:"physical_sector_size"`
	Model              string       `json:"model,omitempty"`
	Vendor             string       `json:"vendor,omitempty"`
	Rotational         bool         `json:"rotational"`
	Removable          bool         `json:"removable"`
	ReadOnly           bool         `json:"read_only"`
	Table              string       `json:"table,omitempty"` // "gpt", "mbr" or "" (none found)
	TableID            string       `json:"table_id,omitempty"`
	Partitions         []Partition  `json:"partitions,omitempty"`
	ByID               []string     `json:"by_id,omitempty"` // names in /dev/disk/by-id that point here
	Designators        []Designator `json:"designators,omitempty"`
	BackingFile        string       `json:"backing_file,omitempty"` // loop devices
}

// Partition is a partition of a disk, as sysfs lists it, with its type
// from the partition table when the table was read.
type Partition struct {
	Block
	Number int    `json:"number"`
	Start  uint64 `json:"start"` // bytes from the start of the disk
	Type   string `json:"type,omitempty"`
	// TypeName is a short name of Type when it is one of the usual ones
	// ("linux", "lvm", "swap", "efi", "bios-boot", "extended", …).
	TypeName string `json:"type_name,omitempty"`
	Label    string `json:"label,omitempty"` // the GPT partition name
}

// Mapper is a device-mapper device.
type Mapper struct {
	Block
	DMName string   `json:"dm_name"` // /dev/mapper/<DMName>
	UUID   string   `json:"dm_uuid"` // "LVM-…" for LVM, "mpath-…" for multipath, "part1-…" for kpartx
	Slaves []string `json:"slaves,omitempty"`
}

// Mount is a line of /proc/self/mountinfo.
type Mount struct {
	Mountpoint string `json:"mountpoint"`
	Source     string `json:"source"`
	FSType     string `json:"fstype"`
	MajMin     string `json:"majmin"`
	Device     string `json:"device,omitempty"` // the kernel name of a block device in the inventory
	Options    string `json:"options,omitempty"`
	Space      *Space `json:"space,omitempty"` // block-backed mounts only
	SpaceErr   string `json:"space_error,omitempty"`
}

// Swap is a line of /proc/swaps.
type Swap struct {
	Filename string `json:"filename"`
	Type     string `json:"type"` // partition or file
	Device   string `json:"device,omitempty"`
	Size     uint64 `json:"size"` // bytes
}

// Inventory is the block devices of a host at one moment.
type Inventory struct {
	Disks   []Disk   `json:"disks"`
	Mappers []Mapper `json:"mappers,omitempty"`
	Mounts  []Mount  `json:"mounts"`
	Swaps   []Swap   `json:"swaps,omitempty"`
	// RootDevice and BootDevice are the devices mounted at / and /boot
	// ("" when /boot is not a mount of its own); RootDisks and BootDisks
	// the whole disks beneath them, through partitions and device mapper.
	RootDevice string   `json:"root_device"`
	RootDisks  []string `json:"root_disks"`
	BootDevice string   `json:"boot_device,omitempty"`
	BootDisks  []string `json:"boot_disks,omitempty"`
}

// ErrNoSysfs is returned when Root has no /sys/block: not a Linux host's
// tree, or sysfs is not mounted.
var ErrNoSysfs = errors.New("no /sys/block")

// Read takes the inventory of h. Only a missing /sys/block or an
// unreadable mountinfo fails it; a device that cannot be read carries the
// reason in its Err.
func Read(h Host) (*Inventory, error) {
	names, err := os.ReadDir(h.Path("/sys/block"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("%s: %w (is %s a Linux root with sysfs mounted?)", h.Path("/sys/block"), ErrNoSysfs, h.Root)
		}
		return nil, fmt.Errorf("read the block devices: %w", err)
	}
	inv := &Inventory{}
	for _, e := range names {
		name := e.Name()
		if strings.HasPrefix(name, "dm-") {
			inv.Mappers = append(inv.Mappers, readMapper(h, name))
			continue
		}
		inv.Disks = append(inv.Disks, readDisk(h, name))
	}
	sort.Slice(inv.Disks, func(i, j int) bool { return lessName(inv.Disks[i].Name, inv.Disks[j].Name) })
	sort.Slice(inv.Mappers, func(i, j int) bool { return lessName(inv.Mappers[i].Name, inv.Mappers[j].Name) })
	readByID(h, inv)

	if inv.Mounts, err = readMountinfo(h, inv); err != nil {
		return nil, err
	}
	for _, m := range inv.Mounts {
		if b := inv.Block(m.Device); b != nil {
			b.Mountpoints = append(b.Mountpoints, m.Mountpoint)
		}
	}
	inv.Swaps = readSwaps(h, inv)
	if m := inv.Mount("/"); m != nil {
		inv.RootDevice = m.Device
		inv.RootDisks = inv.DisksUnder(m.Device)
	}
	if m := inv.Mount("/boot"); m != nil {
		inv.BootDevice = m.Device
		inv.BootDisks = inv.DisksUnder(m.Device)
	}
	return inv, nil
}

// lessName orders kernel names naturally: sda < sdb < sdaa, vda2 < vda10.
func lessName(a, b string) bool {
	if len(a) != len(b) {
		ta, tb := strings.TrimRight(a, "0123456789"), strings.TrimRight(b, "0123456789")
		if ta == tb {
			return len(a) < len(b)
		}
		if len(ta) != len(tb) {
			return len(ta) < len(tb)
		}
	}
	return a < b
}

func kindOf(name string) string {
	switch {
	case strings.HasPrefix(name, "sd"):
		return KindSCSI
	case strings.HasPrefix(name, "vd"):
		return KindVirtio
	case strings.HasPrefix(name, "nvme"):
		return KindNVMe
	case strings.HasPrefix(name, "xvd"):
		return KindXen
	case strings.HasPrefix(name, "hd"):
		return KindIDE
	case strings.HasPrefix(name, "dm-"):
		return KindDM
	case strings.HasPrefix(name, "md"):
		return KindMD
	case strings.HasPrefix(name, "loop"):
		return KindLoop
	}
	return KindOther
}

// readFile reads a sysfs attribute; "" when it is absent.
func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return trimNul(b)
}

func readInt(p string) int64 {
	v, _ := strconv.ParseInt(readFile(p), 10, 64)
	return v
}

func readDirNames(p string) []string {
	es, err := os.ReadDir(p)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Slice(out, func(i, j int) bool { return lessName(out[i], out[j]) })
	return out
}

func readDisk(h Host, name string) Disk {
	dir := h.Path("/sys/block/" + name)
	d := Disk{Block: Block{Name: name, Path: "/dev/" + name, MajMin: readFile(dir + "/dev"),
		Size: uint64(readInt(dir+"/size")) * 512, Holders: readDirNames(dir + "/holders")},
		Kind: kindOf(name), LogicalSectorSize: int(readInt(dir + "/queue/logical_block_size")),
		PhysicalSectorSize: int(readInt(dir + "/queue/physical_block_size")),
		Model:              readFile(dir + "/device/model"), Vendor: readFile(dir + "/device/vendor"),
		Rotational: readFile(dir+"/queue/rotational") == "1", Removable: readFile(dir+"/removable") == "1",
		ReadOnly: readFile(dir+"/ro") == "1", BackingFile: readFile(dir + "/loop/backing_file")}
	if d.LogicalSectorSize == 0 {
		d.LogicalSectorSize = 512
	}
	if d.PhysicalSectorSize == 0 {
		d.PhysicalSectorSize = d.LogicalSectorSize
	}
	if b, err := os.ReadFile(dir + "/device/vpd_pg83"); err == nil && len(b) > 0 {
		ds, err := ParseVPD83(b)
		d.Designators = ds
		if err != nil {
			d.Err = joinErr(d.Err, err.Error())
		}
	}
	for _, e := range readDirNames(dir) {
		pdir := dir + "/" + e
		if _, err := os.Stat(pdir + "/partition"); err != nil {
			continue
		}
		p := Partition{Block: Block{Name: e, Path: "/dev/" + e, MajMin: readFile(pdir + "/dev"),
			Size: uint64(readInt(pdir+"/size")) * 512, Holders: readDirNames(pdir + "/holders")},
			Number: int(readInt(pdir + "/partition")), Start: uint64(readInt(pdir+"/start")) * 512}
		d.Partitions = append(d.Partitions, p)
	}
	sort.Slice(d.Partitions, func(i, j int) bool { return d.Partitions[i].Number < d.Partitions[j].Number })
	if d.Size == 0 {
		// An empty loop device or card reader: nothing to read.
		return d
	}
	before := d.Err
	d.FSType, d.PV, d.Err = probeDevice(h, d.Path, d.Err)
	if d.Err == before {
		readTable(h, &d) // the device opened: read its table too
	}
	for i := range d.Partitions {
		p := &d.Partitions[i]
		p.FSType, p.PV, p.Err = probeDevice(h, p.Path, p.Err)
	}
	return d
}

func readMapper(h Host, name string) Mapper {
	dir := h.Path("/sys/block/" + name)
	m := Mapper{Block: Block{Name: name, Path: "/dev/" + name, MajMin: readFile(dir + "/dev"),
		Size: uint64(readInt(dir+"/size")) * 512, Holders: readDirNames(dir + "/holders")},
		DMName: readFile(dir + "/dm/name"), UUID: readFile(dir + "/dm/uuid"), Slaves: readDirNames(dir + "/slaves")}
	if m.Size > 0 {
		m.FSType, m.PV, m.Err = probeDevice(h, m.Path, m.Err)
	}
	return m
}

// probeDevice reads the start of a device for its signature and PV label.
func probeDevice(h Host, path, errs string) (string, *PVLabel, string) {
	f, err := os.Open(h.Path(path))
	if err != nil {
		return "", nil, joinErr(errs, fmt.Sprintf("open %s: %v", path, errors.Unwrap(err)))
	}
	defer f.Close()
	b := make([]byte, ProbeSize)
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", nil, joinErr(errs, fmt.Sprintf("read %s: %v", path, err))
	}
	b = b[:n]
	return Probe(b), ReadPVLabel(b), errs
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// readByID maps /dev/disk/by-id links to the disks they point at.
func readByID(h Host, inv *Inventory) {
	dir := h.Path("/dev/disk/by-id")
	for _, n := range readDirNames(dir) {
		t, err := os.Readlink(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		if d := inv.Disk(filepath.Base(t)); d != nil {
			d.ByID = append(d.ByID, n)
		}
	}
}

// Disk returns the disk of that kernel name, or nil.
func (inv *Inventory) Disk(name string) *Disk {
	for i := range inv.Disks {
		if inv.Disks[i].Name == name {
			return &inv.Disks[i]
		}
	}
	return nil
}

// Mapper returns the device-mapper device of that kernel name (dm-N) or
// that /dev/mapper name, or nil.
func (inv *Inventory) Mapper(name string) *Mapper {
	for i := range inv.Mappers {
		if inv.Mappers[i].Name == name || inv.Mappers[i].DMName == name {
			return &inv.Mappers[i]
		}
	}
	return nil
}

// Block returns the disk, partition or mapper of that kernel name, or nil.
func (inv *Inventory) Block(name string) *Block {
	if name == "" {
		return nil
	}
	for i := range inv.Disks {
		d := &inv.Disks[i]
		if d.Name == name {
			return &d.Block
		}
		for j := range d.Partitions {
			if d.Partitions[j].Name == name {
				return &d.Partitions[j].Block
			}
		}
	}
	if m := inv.Mapper(name); m != nil {
		return &m.Block
	}
	return nil
}

// Partition returns the partition of that kernel name and its disk.
func (inv *Inventory) Partition(name string) (*Disk, *Partition) {
	for i := range inv.Disks {
		d := &inv.Disks[i]
		for j := range d.Partitions {
			if d.Partitions[j].Name == name {
				return d, &d.Partitions[j]
			}
		}
	}
	return nil, nil
}

// byMajMin returns the kernel name of the device with that number.
func (inv *Inventory) byMajMin(mm string) string {
	for _, d := range inv.Disks {
		if d.MajMin == mm {
			return d.Name
		}
		for _, p := range d.Partitions {
			if p.MajMin == mm {
				return p.Name
			}
		}
	}
	for _, m := range inv.Mappers {
		if m.MajMin == mm {
			return m.Name
		}
	}
	return ""
}

// DisksUnder returns the whole disks beneath a device: itself if it is a
// disk, its disk if a partition, and the disks under a mapper's slaves.
func (inv *Inventory) DisksUnder(name string) []string {
	seen := map[string]bool{}
	var walk func(string, int)
	walk = func(n string, depth int) {
		if depth > 16 {
			return
		}
		if d := inv.Disk(n); d != nil {
			seen[d.Name] = true
			return
		}
		if d, _ := inv.Partition(n); d != nil {
			seen[d.Name] = true
			return
		}
		if m := inv.Mapper(n); m != nil {
			for _, s := range m.Slaves {
				walk(s, depth+1)
			}
		}
	}
	walk(name, 0)
	var out []string
	for n := range seen {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return lessName(out[i], out[j]) })
	return out
}

// Mount returns the mount at that mount point (the last one, if several
// are stacked), or nil.
func (inv *Inventory) Mount(mountpoint string) *Mount {
	for i := len(inv.Mounts) - 1; i >= 0; i-- {
		if inv.Mounts[i].Mountpoint == mountpoint {
			return &inv.Mounts[i]
		}
	}
	return nil
}

// MountOf returns the mount that holds path: the longest mount point that
// is path or a parent of it.
func (inv *Inventory) MountOf(path string) *Mount {
	path = filepath.Clean(path)
	for p := path; ; p = filepath.Dir(p) {
		if m := inv.Mount(p); m != nil {
			return m
		}
		if p == "/" || p == "." {
			return nil
		}
	}
}

// LVMHolders returns the LVM device-mapper devices (dm/uuid "LVM-…")
// holding a device, directly or through other mappers (a multipath device
// carrying a PV, say).
func (inv *Inventory) LVMHolders(b *Block) []string {
	var out []string
	seen := map[string]bool{}
	var walk func(hs []string, depth int)
	walk = func(hs []string, depth int) {
		for _, h := range hs {
			m := inv.Mapper(h)
			if m == nil || seen[h] || depth > 16 {
				continue
			}
			seen[h] = true
			if strings.HasPrefix(m.UUID, "LVM-") {
				out = append(out, m.Name)
			}
			walk(m.Holders, depth+1)
		}
	}
	walk(b.Holders, 0)
	return out
}

// statfs is the default Host.Statfs.
func (h Host) statfs(mountpoint string) (Space, error) {
	if h.Statfs != nil {
		return h.Statfs(mountpoint)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(h.Path(mountpoint), &st); err != nil {
		return Space{}, fmt.Errorf("statfs %s: %w", mountpoint, err)
	}
	bs := uint64(st.Bsize)
	return Space{Total: st.Blocks * bs, Free: st.Bfree * bs, Avail: st.Bavail * bs}, nil
}
