package hostconfig

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// CollectHostInfo describes this host for registration: the config's id,
// role, NAT overrides and data address, and the host's name, addresses,
// OS and disks. sysRoot is "/" on a real host (a directory holding
// etc/os-release and sys/block in tests).
func CollectHostInfo(c Config, version, sysRoot string) HostInfo {
	info := HostInfo{ID: c.HostID, Role: c.Role, Version: version, DataAddr: c.DataAddr, DataFingerprint: c.DataFingerprint}
	info.Hostname, _ = os.Hostname()
	if c.UseNATHostname {
		info.NATHostname = c.NATHostname
	}
	if c.UseNATIP {
		info.NATIP = c.NATIP
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				info.Addresses = append(info.Addresses, ipn.IP.String())
			}
		}
	}
	info.OS = osName(sysRoot)
	info.Disks = BlockDisks(filepath.Join(sysRoot, "sys/block"))
	return info
}

// osName is PRETTY_NAME of os-release, or the Go OS/arch.
func osName(root string) string {
	f, err := os.Open(filepath.Join(root, "etc/os-release"))
	if err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
				return strings.Trim(v, `"'`)
			}
		}
	}
	return runtime.GOOS + "/" + runtime.GOARCH
}

// BlockDisks lists the block devices under dir (/sys/block) with their
// sizes, leaving out loop, ram and zram devices. A device whose size
// cannot be read is listed with size 0.
func BlockDisks(dir string) []Disk {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var ds []Disk
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		d := Disk{Name: n}
		if b, err := os.ReadFile(filepath.Join(dir, n, "size")); err == nil {
			if sectors, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
				d.SizeBytes = sectors * 512 // /sys/block sizes are in 512-byte sectors whatever the device's
			}
		}
		if b, err := os.ReadFile(filepath.Join(dir, n, "device/model")); err == nil {
			d.Model = strings.TrimSpace(string(b))
		}
		ds = append(ds, d)
	}
	slices.SortFunc(ds, func(a, b Disk) int { return strings.Compare(a.Name, b.Name) })
	return ds
}
