package setup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/mtconsole/mtconsole/disks"
	"github.com/mtconsole/mtconsole/internal/atomicfile"
)

// Marker is the file the original installer looked for before it would
// install a master target (its exit 175).
const Marker = "/etc/.appliedmtcustomchanges"

// StateDir keeps the custom changes' backups and the boot they were made
// in, below the root.
const StateDir = "/var/lib/mtconsole/custom-changes"

// ErrNotApplied is returned when a master target is installed before the
// custom changes are applied.
var ErrNotApplied = errors.New("the custom changes are not applied")

// Custom is the set of custom changes of a host: what the original's
// ApplyCustomChanges.sh did, made explicit and reversible.
type Custom struct {
	Root   string
	Inv    *disks.Inventory
	BootID string // this boot's id ("" reads /proc/sys/kernel/random/boot_id)
	// Exec makes the changes of Apply and Revert; nil performs them, a
	// dry-run Executor records them and changes nothing.
	Exec *Executor
}

// Change is one custom change and its state on the host.
type Change struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	Applicable  bool     `json:"applicable"`
	Applied     bool     `json:"applied"`
	NeedsReboot bool     `json:"needs_reboot"`
	Detail      string   `json:"detail"`
	Files       []string `json:"files"` // what apply writes
}

// op is one file or link a change makes so.
type op struct {
	path string // on the host
	mode os.FileMode
	// content maps the file's current bytes (nil when absent) to what
	// the change wants; it must give the same bytes when applied to its
	// own output (apply twice = no change).
	content func(old []byte) []byte
	link    string // or: a symlink to this target
}

type change struct {
	Change
	ops []op
}

func (c *Custom) path(p string) string { return filepath.Join(c.Root, p) }

func (c *Custom) bootID() string {
	if c.BootID == "" {
		c.BootID = readTrim(c.path("/proc/sys/kernel/random/boot_id"))
	}
	return c.BootID
}

// osDeviceNames are the kernel names of the disks under / and /boot.
func (c *Custom) osDisks() []*disks.Disk {
	var out []*disks.Disk
	seen := map[string]bool{}
	for _, n := range append(append([]string{}, c.Inv.RootDisks...), c.Inv.BootDisks...) {
		if d := c.Inv.Disk(n); d != nil && !seen[n] {
			seen[n] = true
			out = append(out, d)
		}
	}
	return out
}

const mtHeader = "# Written by mtconsole custom-changes (the master target's custom changes);\n# `mtconsole custom-changes revert` puts back the file that was here.\n"

// multipathConf claims every disk but the OS disk for multipath, as the
// original wrote it: find_multipaths no, the root disk's WWID blacklisted.
func (c *Custom) multipathConf() []byte {
	var b strings.Builder
	b.WriteString(mtHeader)
	b.WriteString("defaults {\n\tuser_friendly_names no\n\tfind_multipaths no\n}\n\nblacklist {\n")
	for _, d := range c.osDisks() {
		if w := WWID(d); w != "" {
			fmt.Fprintf(&b, "\twwid \"%s\" # %s, the OS disk\n", w, d.Name)
		} else {
			fmt.Fprintf(&b, "\tdevnode \"^%s$\" # %s, the OS disk (no SCSI id)\n", regexp.QuoteMeta(d.Name), d.Name)
		}
	}
	b.WriteString("\tdevnode \"^(ram|raw|loop|fd|md|dm-|sr|scd|st|zram)[0-9]*\"\n\tdevnode \"^cciss!c[0-9]d[0-9]*\"\n}\n")
	return []byte(b.String())
}

// lvmFilter accepts only the PVs on the OS disks (by id where they have
// one) and rejects every other device, so a replicated target disk's
// volume groups are never scanned or activated on the master target.
func (c *Custom) lvmFilter() string {
	var acc []string
	for _, d := range c.osDisks() {
		pvs := []string{}
		if d.PV != nil {
			pvs = append(pvs, d.Name)
		}
		for _, p := range d.Partitions {
			if p.PV != nil && p.Name != "" {
				pvs = append(pvs, p.Name)
			}
		}
		for _, n := range pvs {
			acc = append(acc, fmt.Sprintf(`"a|^/dev/%s$|"`, regexp.QuoteMeta(n)))
		}
	}
	return "global_filter = [ " + strings.Join(append(acc, `"r|.*|"`), ", ") + " ]"
}

const (
	blockBegin  = "# mtconsole custom changes: begin"
	blockEnd    = "# mtconsole custom changes: end"
	commentedBy = "# mtconsole: "
)

var sectionRe = regexp.MustCompile(`^\s*([a-z_]+)\s*\{\s*(#.*)?$`)

// lvmConf sets keys in lvm.conf sections: lines of ours go between
// markers, active lines setting the same keys are commented out with a
// prefix, so the edit can be undone from the file alone. A section that
// is missing is added.
func lvmConf(old []byte, sets map[string]string) []byte {
	lines := strings.Split(string(old), "\n")
	if len(old) == 0 {
		lines = nil
	}
	// Undo our earlier edit first: apply is then a function of the
	// original and applying twice changes nothing.
	var clean []string
	in := false
	for _, l := range lines {
		t := strings.TrimSpace(l)
		switch {
		case t == blockBegin:
			in = true
		case t == blockEnd:
			in = false
		case in:
		case strings.HasPrefix(strings.TrimLeft(l, " \t"), commentedBy):
			i := strings.Index(l, commentedBy)
			clean = append(clean, l[:i]+l[i+len(commentedBy):])
		default:
			clean = append(clean, l)
		}
	}
	var out []string
	done := map[string]bool{}
	section := ""
	for _, l := range clean {
		t := strings.TrimSpace(l)
		if m := sectionRe.FindStringSubmatch(l); m != nil && section == "" {
			section = m[1]
			out = append(out, l)
			if v, ok := sets[section]; ok {
				out = append(out, "\t"+blockBegin, "\t"+v, "\t"+blockEnd)
				done[section] = true
			}
			continue
		}
		if t == "}" {
			section = ""
		}
		if v, ok := sets[section]; ok && section != "" {
			key := strings.TrimSpace(strings.SplitN(v, "=", 2)[0])
			if k, _, ok := strings.Cut(t, "="); ok && strings.TrimSpace(k) == key && !strings.HasPrefix(t, "#") {
				ws := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
				out = append(out, ws+commentedBy+strings.TrimLeft(l, " \t"))
				continue
			}
		}
		out = append(out, l)
	}
	var secs []string
	for s := range sets {
		if !done[s] {
			secs = append(secs, s)
		}
	}
	sort.Strings(secs)
	if len(secs) > 0 && len(out) > 0 && out[len(out)-1] == "" {
		out = out[:len(out)-1]
	}
	for _, s := range secs {
		out = append(out, s+" {", "\t"+blockBegin, "\t"+sets[s], "\t"+blockEnd, "}")
	}
	s := strings.Join(out, "\n")
	if !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return []byte(s)
}

// lvmetadUnit is where a distribution with lvmetad (RHEL 7, Ubuntu 16.04)
// has its unit; newer LVM has none.
func (c *Custom) lvmetadUnit() string {
	for _, p := range []string{"/lib/systemd/system/lvm2-lvmetad.service", "/usr/lib/systemd/system/lvm2-lvmetad.service"} {
		if _, err := os.Stat(c.path(p)); err == nil {
			return p
		}
	}
	return ""
}

// changes lists the custom changes with what each makes so.
func (c *Custom) changes() []change {
	lvmetad := c.lvmetadUnit() != ""
	lvmSets := map[string]string{"devices": c.lvmFilter()}
	if lvmetad {
		lvmSets["global"] = "use_lvmetad = 0"
	}
	out := []change{
		{Change: Change{ID: "multipath", Title: "multipath: find_multipaths no, the OS disk blacklisted", NeedsReboot: true},
			ops: []op{{path: "/etc/multipath.conf", mode: 0o644, content: func([]byte) []byte { return c.multipathConf() }}}},
		{Change: Change{ID: "lvm-filter", Title: "LVM filter: only the OS disks' PVs are scanned", NeedsReboot: true},
			ops: []op{{path: "/etc/lvm/lvm.conf", mode: 0o644, content: func(old []byte) []byte { return lvmConf(old, lvmSets) }}}},
		{Change: Change{ID: "lvmetad", Title: "lvm2-lvmetad disabled", NeedsReboot: true}},
		{Change: Change{ID: "marker", Title: "marker " + Marker},
			ops: []op{{path: Marker, mode: 0o644, content: func([]byte) []byte { return []byte("mtconsole custom changes\n") }}}},
	}
	if lvmetad {
		out[2].ops = []op{
			{path: "/etc/systemd/system/lvm2-lvmetad.service", link: "/dev/null"},
			{path: "/etc/systemd/system/lvm2-lvmetad.socket", link: "/dev/null"},
		}
	}
	for i := range out {
		ch := &out[i]
		ch.Applicable = len(ch.ops) > 0
		for _, o := range ch.ops {
			ch.Files = append(ch.Files, o.path)
		}
	}
	return out
}

// state reads an op's current bytes (or link target) and whether it is
// already as the change wants.
func (c *Custom) state(o op) (cur []byte, want []byte, ok bool, err error) {
	p := c.path(o.path)
	if o.link != "" {
		t, err := os.Readlink(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, os.ErrInvalid) {
			return nil, nil, false, err
		}
		return []byte(t), []byte(o.link), t == o.link, nil
	}
	cur, err = os.ReadFile(p)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, false, fmt.Errorf("read %s: %w", o.path, err)
	}
	want = o.content(cur)
	return cur, want, err == nil && bytes.Equal(cur, want), nil
}

// Status says which changes are applied.
func (c *Custom) Status() ([]Change, error) {
	var out []Change
	for _, ch := range c.changes() {
		ch.Applied = true
		for _, o := range ch.ops {
			_, _, ok, err := c.state(o)
			if err != nil {
				return nil, err
			}
			ch.Applied = ch.Applied && ok
		}
		switch {
		case !ch.Applicable:
			ch.Detail = "not applicable: this host has no lvm2-lvmetad"
		case ch.Applied:
			ch.Detail = "applied"
		default:
			ch.Detail = "not applied: " + strings.Join(ch.Files, ", ")
		}
		out = append(out, ch.Change)
	}
	return out, nil
}

// Applied reports whether every change is applied.
func (c *Custom) Applied() (bool, error) {
	cs, err := c.Status()
	if err != nil {
		return false, err
	}
	for _, ch := range cs {
		if !ch.Applied {
			return false, nil
		}
	}
	return true, nil
}

// Plan lists what Apply would change, one line each, without changing
// anything.
func (c *Custom) Plan() ([]string, error) {
	var out []string
	for _, ch := range c.changes() {
		for _, o := range ch.ops {
			cur, _, ok, err := c.state(o)
			if err != nil {
				return nil, err
			}
			if ok {
				continue
			}
			verb := "write"
			switch {
			case o.link != "":
				verb = "link " + o.link + " as"
			case cur == nil:
				verb = "create"
			}
			out = append(out, fmt.Sprintf("%s %s (%s; backup in %s)", verb, o.path, ch.Title, StateDir))
		}
	}
	return out, nil
}

// FileChange is what Apply would do to one file: Old is its bytes now
// (nil: there is none), New what the change writes; or, for a link,
// Link is the target it will point to (and Old the current target).
type FileChange struct {
	Change string `json:"change"` // the change's id
	Title  string `json:"title"`
	Path   string `json:"path"`
	Old    []byte `json:"old,omitempty"`
	New    []byte `json:"new,omitempty"`
	Link   string `json:"link,omitempty"`
}

// Preview lists, file by file, exactly what Apply would write, without
// changing anything: the review before an apply.
func (c *Custom) Preview() ([]FileChange, error) {
	var out []FileChange
	for _, ch := range c.changes() {
		for _, o := range ch.ops {
			cur, want, ok, err := c.state(o)
			if err != nil {
				return nil, err
			}
			if ok {
				continue
			}
			fc := FileChange{Change: ch.ID, Title: ch.Title, Path: o.path, Old: cur}
			if o.link != "" {
				fc.Link, fc.New = o.link, nil
				if len(cur) == 0 {
					fc.Old = nil
				}
			} else {
				fc.New = want
			}
			out = append(out, fc)
		}
	}
	return out, nil
}

// Apply makes every change, backing up each file before its first
// change. It returns the files it changed: none when all were applied.
func (c *Custom) Apply() ([]string, error) {
	var changed []string
	for _, ch := range c.changes() {
		for _, o := range ch.ops {
			_, want, ok, err := c.state(o)
			if err != nil {
				return changed, err
			}
			if ok {
				continue
			}
			if err := c.backup(o.path); err != nil {
				return changed, err
			}
			if o.link != "" {
				err = c.Exec.Link(c.path(o.path), o.link)
			} else {
				mode := o.mode
				if fi, err := os.Stat(c.path(o.path)); err == nil {
					mode = fi.Mode().Perm() // keep the admin's mode
				}
				err = c.Exec.WriteFile(c.path(o.path), want, mode)
			}
			if err != nil {
				return changed, fmt.Errorf("custom change %s: %w", ch.ID, err)
			}
			changed = append(changed, o.path)
		}
	}
	if len(changed) > 0 {
		if err := c.recordBoot(); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

func (c *Custom) backupPath(p string) string { return c.path(filepath.Join(StateDir, "backup", p)) }

// backup keeps the file (or link) as it was before the first change;
// ".absent" records that there was none. A backup is never overwritten:
// it is the original, whatever happened since.
func (c *Custom) backup(p string) error {
	b := c.backupPath(p)
	if _, err := os.Lstat(b); err == nil {
		return nil
	}
	if _, err := os.Lstat(b + ".absent"); err == nil {
		return nil
	}
	if err := c.Exec.MkdirAll(filepath.Dir(b), 0o700); err != nil {
		return fmt.Errorf("back up %s: %w", p, err)
	}
	fi, err := os.Lstat(c.path(p))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return c.Exec.WriteFile(b+".absent", nil, 0o600)
	case err != nil:
		return fmt.Errorf("back up %s: %w", p, err)
	case fi.Mode()&fs.ModeSymlink != 0:
		t, err := os.Readlink(c.path(p))
		if err != nil {
			return fmt.Errorf("back up %s: %w", p, err)
		}
		return c.Exec.Link(b, t)
	}
	data, err := os.ReadFile(c.path(p))
	if err != nil {
		return fmt.Errorf("back up %s: %w", p, err)
	}
	return c.Exec.WriteFile(b, data, fi.Mode().Perm())
}

// Revert puts back every file the changes touched, as it was before the
// first apply, and removes the backups. It returns the files it changed.
func (c *Custom) Revert() ([]string, error) {
	root := c.path(filepath.Join(StateDir, "backup"))
	var changed []string
	err := filepath.WalkDir(root, func(b string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && b == root {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, b)
		host := "/" + filepath.ToSlash(rel)
		dst := c.path(host)
		switch {
		case strings.HasSuffix(host, ".absent"):
			host = strings.TrimSuffix(host, ".absent")
			dst = c.path(host)
			if err := c.Exec.Remove(dst); err != nil {
				return fmt.Errorf("revert %s: %w", host, err)
			}
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(b)
			if err != nil {
				return err
			}
			if err := c.Exec.Link(dst, t); err != nil {
				return fmt.Errorf("revert %s: %w", host, err)
			}
		default:
			data, err := os.ReadFile(b)
			if err != nil {
				return err
			}
			fi, err := os.Stat(b)
			if err != nil {
				return err
			}
			if err := c.Exec.WriteFile(dst, data, fi.Mode().Perm()); err != nil {
				return fmt.Errorf("revert %s: %w", host, err)
			}
		}
		changed = append(changed, host)
		return nil
	})
	if err != nil {
		return changed, err
	}
	if err := c.Exec.RemoveAll(root); err != nil {
		return changed, err
	}
	if len(changed) > 0 {
		return changed, c.recordBoot()
	}
	return changed, nil
}

// recordBoot notes the boot in which the host's configuration changed:
// a reboot is required until the boot id differs.
func (c *Custom) recordBoot() error {
	return c.Exec.WriteFile(c.path(filepath.Join(StateDir, "changed-in-boot")), []byte(c.bootID()+"\n"), 0o600)
}

// RebootRequired reports whether the changes were made (or reverted) in
// this boot: their multipath and LVM settings take effect at the next.
func (c *Custom) RebootRequired() bool {
	b := readTrim(c.path(filepath.Join(StateDir, "changed-in-boot")))
	return b != "" && b == c.bootID()
}

// customChecks renders the custom changes as checks.
func customChecks(e *Env) []Check {
	if e.Role != RoleMT {
		return []Check{{ID: "custom.changes", Title: "Custom changes", Status: Skip, Detail: "only a master target needs them"}}
	}
	cu := &Custom{Root: e.Root, Inv: e.Inventory, BootID: e.BootID}
	cs, err := cu.Status()
	if err != nil {
		return []Check{{ID: "custom.changes", Title: "Custom changes", Status: Fail, Detail: err.Error(), Fix: "check the files named, then: mtconsole custom-changes status"}}
	}
	var out []Check
	for _, ch := range cs {
		c := Check{ID: "custom." + ch.ID, Title: ch.Title, Detail: ch.Detail}
		switch {
		case !ch.Applicable:
			c.Status = Skip
		case ch.Applied:
			c.Status = Pass
		default:
			c.Status, c.Fix = Fail, "mtconsole custom-changes apply, then reboot"
		}
		out = append(out, c)
	}
	c := Check{ID: "custom.reboot", Title: "Rebooted since the custom changes"}
	if cu.RebootRequired() {
		c.Status, c.Detail, c.Fix = Warn, "REBOOT IS REQUIRED FOR CUSTOM CHANGES TO TAKE EFFECT", "reboot the master target"
	} else {
		c.Status, c.Detail = Pass, "no change waits for a reboot"
	}
	return append(out, c)
}

// WriteFileAtomic writes a file so that a crash leaves the old or the new
// contents, never a mix: a temporary file in the same directory, fsync,
// rename over the name, fsync of the directory.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.Write(path, data, mode, 0o755)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// replaceLink makes path a symlink to target, atomically.
func replaceLink(path, target string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".mtconsole-tmp"
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}
