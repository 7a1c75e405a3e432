package setup

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"github.com/mtconsole/mtconsole/disks"
)

// Status is the outcome of a check.
type Status string

const (
	Pass Status = "pass"
	Warn Status = "warn" // works, but not as the guidance wants
	Fail Status = "fail" // must be fixed before installing
	Skip Status = "skip" // does not apply here, or could not be decided
)

// Check is one rule's verdict.
type Check struct {
	ID     string `json:"id"` // group.name, e.g. "disks.count"
	Group  string `json:"group"`
	Title  string `json:"title"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Targets are the verdicts on each target disks.targets was given.
	Targets []TargetVerdict `json:"targets,omitempty"`
}

// Groups of checks, in the order the wizard walks them.
const (
	GroupOS       = "os"
	GroupPackages = "packages"
	GroupDisks    = "disks"
	GroupCustom   = "custom"
)

// Groups lists the check groups in order.
var Groups = []string{GroupOS, GroupPackages, GroupDisks, GroupCustom}

// Role is what the host is set up as.
type Role string

const (
	RoleMT Role = "mt" // master target: receive and retain
	RolePS Role = "ps" // process server: send this host's disks
)

// DefaultRetention is where the original mounted the retention volume.
const DefaultRetention = "/mnt/retention"

// Env is what the checks look at. Zero fields take this host's values.
type Env struct {
	Root string // "/" or a fixture tree
	Role Role
	// Retention is the retention directory (its mount is the retention
	// volume); RetentionBytes the room the policy needs there (0: only
	// check that there is a file system of its own).
	Retention      string
	RetentionBytes uint64
	// Targets are disks the master target will write (kernel names);
	// empty: the checks list the candidates.
	Targets []string

	Inventory *disks.Inventory // nil: read with disks.Read under Root
	Statfs    func(mountpoint string) (disks.Space, error)
	PM        PackageManager // nil: detected from the host
	UID       *int           // nil: os.Geteuid()
	Hostname  string         // "": /etc/hostname, then os.Hostname
	// Addrs are the host's non-loopback addresses; nil: from its
	// interfaces (only when Root is "/": a fixture tree has none).
	Addrs   []string
	NumCPU  int                                            // 0: /proc/cpuinfo, then runtime.NumCPU
	Modinfo func(ctx context.Context, module string) error // nil: modinfo, then modules.dep
	// BootID is the current boot's id; "": /proc/sys/kernel/random/boot_id.
	BootID string
}

// path is p below the root.
func (e *Env) path(p string) string {
	if e.Root == "" || e.Root == "/" {
		return p
	}
	return filepath.Join(e.Root, p)
}

// fill sets the defaults of an Env.
func (e *Env) fill() error {
	if e.Root == "" {
		e.Root = "/"
	}
	if e.Role == "" {
		e.Role = RoleMT
	}
	if e.Retention == "" {
		e.Retention = DefaultRetention
	}
	if e.UID == nil {
		uid := os.Geteuid()
		e.UID = &uid
	}
	if e.Hostname == "" {
		if b, err := os.ReadFile(e.path("/etc/hostname")); err == nil {
			e.Hostname = strings.TrimSpace(string(b))
		}
		if e.Hostname == "" && e.Root == "/" {
			e.Hostname, _ = os.Hostname()
		}
	}
	if e.Addrs == nil && e.Root == "/" {
		e.Addrs = hostAddrs()
	}
	if e.NumCPU == 0 {
		e.NumCPU = countCPUs(e.path("/proc/cpuinfo"))
		if e.NumCPU == 0 && e.Root == "/" {
			e.NumCPU = runtime.NumCPU()
		}
	}
	if e.BootID == "" {
		e.BootID = readTrim(e.path("/proc/sys/kernel/random/boot_id"))
	}
	if e.Inventory == nil {
		inv, err := disks.Read(disks.Host{Root: e.Root, Statfs: e.Statfs})
		if err != nil {
			return err
		}
		e.Inventory = inv
	}
	if e.PM == nil {
		e.PM = DetectPackageManager(e.Root)
	}
	return nil
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Run runs the checks of the given groups (all when none) in order.
func Run(ctx context.Context, e *Env, groups ...string) ([]Check, error) {
	if err := e.fill(); err != nil {
		return nil, err
	}
	if len(groups) == 0 {
		groups = Groups
	}
	var out []Check
	for _, g := range groups {
		var cs []Check
		switch g {
		case GroupOS:
			cs = osChecks(e)
		case GroupPackages:
			cs = packageChecks(ctx, e)
		case GroupDisks:
			cs = diskChecks(e)
		case GroupCustom:
			cs = customChecks(e)
		default:
			return nil, fmt.Errorf("no check group %q (groups: %s)", g, strings.Join(Groups, ", "))
		}
		for i := range cs {
			cs[i].Group = g
		}
		out = append(out, cs...)
	}
	return out, nil
}

// Count counts checks by status.
func Count(cs []Check) map[Status]int {
	m := map[Status]int{}
	for _, c := range cs {
		m[c.Status]++
	}
	return m
}

func gb(n uint64) string {
	return fmt.Sprintf("%.0f GB", float64(n)/1e9)
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
