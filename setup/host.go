package setup

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// OSRelease is what /etc/os-release says.
type OSRelease struct {
	ID, IDLike, VersionID, PrettyName string
}

// Family is "debian" or "rhel" (or the ID when it is neither).
func (o OSRelease) Family() string {
	for _, id := range append([]string{o.ID}, strings.Fields(o.IDLike)...) {
		switch id {
		case "debian", "ubuntu":
			return "debian"
		case "rhel", "centos", "fedora", "rocky", "almalinux", "ol":
			return "rhel"
		case "sles", "suse", "opensuse":
			return "suse"
		}
	}
	return o.ID
}

// ReadOSRelease reads /etc/os-release (or /usr/lib/os-release) under root.
func ReadOSRelease(root string) (OSRelease, error) {
	var o OSRelease
	var f *os.File
	var err error
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		if f, err = os.Open(filepath.Join(root, p)); err == nil {
			break
		}
	}
	if err != nil {
		return o, fmt.Errorf("read /etc/os-release: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if u, err := strconv.Unquote(v); err == nil {
			v = u
		} else {
			v = strings.Trim(v, `"'`)
		}
		switch k {
		case "ID":
			o.ID = v
		case "ID_LIKE":
			o.IDLike = v
		case "VERSION_ID":
			o.VersionID = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	return o, sc.Err()
}

// majorVersion is the number before the first dot of a version.
func majorVersion(v string) int {
	n, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	return n
}

func osChecks(e *Env) []Check {
	var out []Check
	// OS family and version.
	c := Check{ID: "os.release", Title: "Operating system"}
	o, err := ReadOSRelease(e.Root)
	switch {
	case err != nil:
		c.Status, c.Detail, c.Fix = Fail, err.Error(), "run on a Linux host with /etc/os-release (Ubuntu, Debian, RHEL or a rebuild)"
	default:
		name := o.PrettyName
		if name == "" {
			name = o.ID + " " + o.VersionID
		}
		v := majorVersion(o.VersionID)
		ok := (o.ID == "ubuntu" && v >= 16) || (o.Family() == "debian" && o.ID != "ubuntu" && v >= 10) || (o.Family() == "rhel" && v >= 7)
		if ok {
			c.Status, c.Detail = Pass, name
		} else {
			c.Status, c.Detail = Warn, name+": not a tested release (tested: Ubuntu 16.04 and later, Debian 10 and later, RHEL/CentOS/Rocky/Alma 7 and later)"
			c.Fix = "use a tested release for a production master target"
		}
	}
	out = append(out, c)

	// Kernel.
	c = Check{ID: "os.kernel", Title: "Kernel"}
	rel := readTrim(e.path("/proc/sys/kernel/osrelease"))
	var maj, min int
	fmt.Sscanf(rel, "%d.%d", &maj, &min)
	switch {
	case rel == "":
		c.Status, c.Detail = Skip, "/proc/sys/kernel/osrelease is not readable"
	case maj < 3 || (maj == 3 && min < 10):
		c.Status, c.Detail, c.Fix = Fail, rel+": older than 3.10", "upgrade to a kernel of 3.10 or later (the distribution's current one)"
	default:
		c.Status, c.Detail = Pass, rel
	}
	out = append(out, c)

	// Root.
	c = Check{ID: "os.root", Title: "Running as root"}
	if *e.UID == 0 {
		c.Status, c.Detail = Pass, "uid 0"
	} else {
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("uid %d: the checks of devices and packages and every change need root", *e.UID), "run it as root: sudo mtconsole check"
	}
	out = append(out, c)

	out = append(out, hostnameCheck(e), localeCheck(e), rootSpaceCheck(e), timeSyncCheck(e))
	return out
}

// hostnameCheck: the hostname is set and /etc/hosts maps it to every
// address of the host (the original's prerequisite).
func hostnameCheck(e *Env) Check {
	c := Check{ID: "os.hostname", Title: "Hostname resolves to this host"}
	h := e.Hostname
	if h == "" || h == "localhost" || h == "localhost.localdomain" {
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("hostname is %q", h), "set a hostname: hostnamectl set-hostname mt01"
		return c
	}
	mapped := map[string]bool{} // addresses /etc/hosts gives the name
	short := strings.SplitN(h, ".", 2)[0]
	if b, err := os.ReadFile(e.path("/etc/hosts")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if i := strings.IndexByte(l, '#'); i >= 0 {
				l = l[:i]
			}
			f := strings.Fields(l)
			for _, n := range f[min(1, len(f)):] {
				if n == h || n == short {
					mapped[f[0]] = true
				}
			}
		}
	}
	var missing []string
	for _, a := range e.Addrs {
		if !mapped[a] {
			missing = append(missing, a)
		}
	}
	switch {
	case len(mapped) == 0:
		addr := "<this host's address>"
		if len(e.Addrs) > 0 {
			addr = e.Addrs[0]
		}
		c.Status, c.Detail, c.Fix = Fail, fmt.Sprintf("/etc/hosts does not name %s", h), fmt.Sprintf("add a line to /etc/hosts: %s %s", addr, h)
	case len(missing) > 0:
		c.Status, c.Detail = Fail, fmt.Sprintf("/etc/hosts maps %s to %s but not to %s", h, strings.Join(sortedKeys(mapped), ", "), strings.Join(missing, ", "))
		var lines []string
		for _, a := range missing {
			lines = append(lines, a+" "+h)
		}
		c.Fix = "add to /etc/hosts: " + strings.Join(lines, "; ")
	default:
		c.Status, c.Detail = Pass, fmt.Sprintf("%s → %s", h, strings.Join(sortedKeys(mapped), ", "))
	}
	return c
}

// hostAddrs lists the host's global unicast addresses.
func hostAddrs() []string {
	var out []string
	ifs, _ := net.Interfaces()
	for _, i := range ifs {
		if i.Flags&net.FlagUp == 0 || i.Flags&net.FlagLoopback != 0 {
			continue
		}
		as, _ := i.Addrs()
		for _, a := range as {
			if n, ok := a.(*net.IPNet); ok && n.IP.IsGlobalUnicast() {
				out = append(out, n.IP.String())
			}
		}
	}
	return out
}

// localeCheck: the C.UTF-8 locale (the original's CLocaleAvailable); the
// tools mtconsole runs are run with LC_ALL=C so their output parses.
func localeCheck(e *Env) Check {
	c := Check{ID: "os.locale", Title: "C locale"}
	for _, p := range []string{"/usr/lib/locale/C.utf8", "/usr/lib/locale/C.UTF-8", "/usr/lib/locale/locale-archive"} {
		if _, err := os.Stat(e.path(p)); err == nil {
			c.Status, c.Detail = Pass, p+" is present"
			return c
		}
	}
	c.Status, c.Detail = Warn, "no C.UTF-8 locale in /usr/lib/locale (the plain C locale is built in)"
	c.Fix = "install it: apt-get install locales (Debian/Ubuntu) or dnf install glibc-minimal-langpack (RHEL)"
	return c
}

// rootSpaceCheck: room on / for the install (the original wanted 250 MB
// on the install partition) and logs.
func rootSpaceCheck(e *Env) Check {
	c := Check{ID: "os.free-space", Title: "Free space on /"}
	m := e.Inventory.Mount("/")
	if m == nil || m.Space == nil {
		c.Status, c.Detail = Skip, "/ is not in /proc/self/mountinfo or its size is unknown"
		if m != nil && m.SpaceErr != "" {
			c.Detail = m.SpaceErr
		}
		return c
	}
	a := m.Space.Avail
	switch {
	case a < 250e6:
		c.Status, c.Fix = Fail, "free space on / (journalctl --vacuum-size=100M, apt-get clean, or grow the file system)"
	case a < 2e9:
		c.Status, c.Fix = Warn, "free at least 2 GB on / for logs and upgrades"
	default:
		c.Status = Pass
	}
	c.Detail = fmt.Sprintf("%.1f GB free of %.1f GB", float64(a)/1e9, float64(m.Space.Total)/1e9)
	return c
}

// timeSyncCheck: a time daemon runs (clock skew breaks signed requests).
func timeSyncCheck(e *Env) Check {
	c := Check{ID: "os.time-sync", Title: "Time synchronisation"}
	daemons := map[string]string{"chronyd": "chrony", "systemd-timesyn": "systemd-timesyncd", "ntpd": "ntpd", "openntpd": "openntpd", "ntpsec": "ntpsec"}
	procs, _ := os.ReadDir(e.path("/proc"))
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		comm := readTrim(e.path("/proc/" + p.Name() + "/comm"))
		if d, ok := daemons[comm]; ok {
			c.Status, c.Detail = Pass, d+" is running (pid "+p.Name()+")"
			return c
		}
	}
	c.Status, c.Detail = Warn, "no chronyd, systemd-timesyncd or ntpd is running: a clock off by more than 15 minutes breaks registration"
	c.Fix = "apt-get install chrony (Debian/Ubuntu) or dnf install chrony && systemctl enable --now chronyd (RHEL)"
	return c
}

// countCPUs counts the processors in /proc/cpuinfo.
func countCPUs(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "processor") {
			n++
		}
	}
	return n
}

// memTotal is MemTotal of /proc/meminfo in bytes.
func memTotal(path string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
