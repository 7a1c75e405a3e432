package protect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/aymanbagabas/go-udiff"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/setup"
)

// Refusals of Plan (errors.Is on a *RefusedError). Every one is ErrRefused.
var (
	ErrRefused       = errors.New("protection refused")
	ErrBadRequest    = errors.New("bad request")
	ErrNoConfig      = errors.New("no agent.toml and no process server to write one")
	ErrOtherServer   = errors.New("another process server")
	ErrGroupExists   = errors.New("group exists")
	ErrUnknownDisk   = errors.New("source disk not served")
	ErrDiskPaired    = errors.New("source disk already paired")
	ErrTargetTwice   = errors.New("target given twice")
	ErrTargetInUse   = errors.New("target already used by a pair")
	ErrTargetRefused = errors.New("target refused")
	ErrBadPolicy     = errors.New("bad policy")
)

// Refusal is one reason a plan is refused.
type Refusal struct {
	Code    string `json:"code"` // "group-exists", "unknown-disk", "target-too-small", ...
	Disk    string `json:"disk,omitempty"`
	Target  string `json:"target,omitempty"`
	Reason  string `json:"reason"`            // what is wrong and what to do
	Confirm string `json:"confirm,omitempty"` // what to type (--overwrite) to allow it
	err     error
}

// RefusedError is a refused plan: nothing was written.
type RefusedError struct {
	Path     string
	Refusals []Refusal
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "protection refused, %s left as it is:", e.Path)
	for _, r := range e.Refusals {
		b.WriteString("\n  - " + r.Reason)
	}
	return b.String()
}

// Is matches ErrRefused and the sentinel of each refusal.
func (e *RefusedError) Is(target error) bool {
	if target == ErrRefused {
		return true
	}
	for _, r := range e.Refusals {
		if r.err == target {
			return true
		}
	}
	return false
}

// Policy is a group's policy, in agent.toml's spelling; "" or nil keeps
// the [defaults].
type Policy struct {
	Retention    string `json:"retention,omitempty"` // "24h", "3d", "3 days"
	SizeCapMB    *int64 `json:"size_cap_mb,omitempty"`
	OnFull       string `json:"on_full,omitempty"` // purge | pause
	RPOThreshold string `json:"rpo_threshold,omitempty"`
	// AlertThresholdPercent is the group's low-space trigger, in percent
	// of the retention volume (above 0, at most 50).
	AlertThresholdPercent *float64 `json:"alert_threshold_percent,omitempty"`
	// Sparse is the group's sparse-retention tiers, as agent.toml's
	// sparse ("all 1d; 1 per 1h for 6d").
	Sparse string `json:"sparse,omitempty"`
}

// Fresh is what a host without agent.toml needs to get one: the process
// server and the passphrase file; the rest is left to the agent's
// defaults when empty.
type Fresh struct {
	PSAddr, PassphraseFile string
	HostID                 string
	JournalDir             string
	RetentionDir           string
	Socket                 string
	TrustStore             string
}

// Request is a protection asked for.
type Request struct {
	// Group names the protected machine: a new [[group]].
	Group string
	// Map maps source disks (names on the process server) to targets here.
	Map                 map[string]string
	Policy              Policy
	ConsistencyInterval string // "15m"; "" or "0": none
	AllowFiles          bool
	AllowNoSCSIID       bool
	// Overwrite is what the user typed for a target that will be
	// overwritten (target → its name).
	Overwrite map[string]string
	// Disks are the process server's (Discovery.Disks).
	Disks []Disk
	// PSAddr is the process server discovered: it must be the file's.
	PSAddr string
	// Fresh writes a complete file when there is none.
	Fresh Fresh
}

// Options are the hooks of Plan and Apply.
type Options struct {
	// CheckTarget judges a target (default SetupTarget on this host).
	CheckTarget func(TargetCheck) TargetVerdict
	// Reload asks the running agent to start the new pairs and returns
	// the pairs it started; an error that is api.ErrNoAgent means no agent
	// runs. Nil: nobody is asked.
	Reload func(ctx context.Context) (started []string, err error)
	// WriteFile replaces a file atomically (default atomicfile.Write).
	WriteFile func(path string, data []byte, perm, dirPerm os.FileMode) error
}

// PlannedPair is a pair a plan adds.
type PlannedPair struct {
	ID         string `json:"id"`
	Disk       string `json:"disk"`
	Target     string `json:"target"`
	Size       int64  `json:"size_bytes"`
	TargetSize int64  `json:"target_bytes"`
	// AppConsistentInterval is the source's, as the process server
	// reports it ("" none reported).
	AppConsistentInterval string `json:"app_consistent_interval"`
}

// Plan is a checked protection: the new agent.toml.
type Plan struct {
	Path                string        `json:"config"`
	Fresh               bool          `json:"fresh"`            // no agent.toml before
	Remove              bool          `json:"remove,omitempty"` // PlanRemove's: the pairs go
	Group               string        `json:"group"`
	ConsistencyInterval string        `json:"consistency_interval,omitempty"`
	Policy              Policy        `json:"policy"`
	PSAddr              string        `json:"process_server"`
	Pairs               []PlannedPair `json:"pairs"`
	Old                 []byte        `json:"-"` // the file as read (nil when fresh)
	New                 []byte        `json:"-"` // the file to write
	mode                fs.FileMode
	effective           *agent.PairConfig // the first new pair as the agent will read it

}

// MakePlan checks req against the agent.toml at path and returns the new
// file. It writes nothing; a refusal is a *RefusedError naming every
// problem found.
func MakePlan(ctx context.Context, path string, req Request, o Options) (*Plan, error) {
	p := &Plan{Path: path, Group: req.Group, ConsistencyInterval: req.ConsistencyInterval, Policy: req.Policy, mode: 0o600}
	var refs []Refusal
	refuse := func(err error, code, disk, target, format string, args ...any) {
		refs = append(refs, Refusal{Code: code, Disk: disk, Target: target, Reason: fmt.Sprintf(format, args...), err: err})
	}
	old, err := os.ReadFile(path)
	var fc *agent.FileConfig
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.Fresh = true
		if req.Fresh.PSAddr == "" || req.Fresh.PassphraseFile == "" {
			refuse(ErrNoConfig, "no-config", "", "", "%s does not exist: give the process server (--ps HOST:PORT) and its passphrase file (--passphrase-file) to write a new one", path)
			return nil, &RefusedError{Path: path, Refusals: refs}
		}
		p.PSAddr = NormAddr(req.Fresh.PSAddr)
	case err != nil:
		return nil, fmt.Errorf("protect: %w", err)
	default:
		if fc, err = agent.LoadConfig(path); err != nil {
			return nil, fmt.Errorf("protect: the current file has an error, fix it first: %w", err)
		}
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("protect: %w", err)
		}
		p.Old, p.mode, p.PSAddr = old, fi.Mode().Perm(), fc.ProcessServer.Address
	}
	if req.PSAddr != "" && NormAddr(req.PSAddr) != p.PSAddr {
		refuse(ErrOtherServer, "other-process-server", "", "", "the disks come from %s but %s replicates from %s: an agent serves one process server; give --ps %s",
			NormAddr(req.PSAddr), path, p.PSAddr, p.PSAddr)
	}
	// what the file holds
	ids, groups, diskPaired, targets := map[string]bool{}, map[string]bool{}, map[string]string{}, map[string]string{}
	var inUse []string
	if fc != nil {
		for _, g := range fc.Groups {
			groups[g.Name] = true
		}
		for _, q := range fc.Pairs {
			ids[q.ID] = true
			diskPaired[q.Disk] = q.ID
			targets[filepath.Clean(q.Target)] = q.ID
			inUse = append(inUse, q.Target)
		}
	}
	if err := agent.CheckGroupName(req.Group); err != nil {
		refuse(ErrBadRequest, "bad-group-name", "", "", "--group: %v", err)
	} else if groups[req.Group] {
		refuse(ErrGroupExists, "group-exists", "", "", "group %q exists in %s: choose another name (`mtconsole protection list` shows them)", req.Group, path)
	} else if ids[req.Group] {
		refuse(ErrGroupExists, "group-exists", "", "", "group %q: a pair of %s has that id and is a group of its own: choose another name", req.Group, path)
	}
	if len(req.Map) == 0 {
		refuse(ErrBadRequest, "no-disks", "", "", "no disks to protect: map at least one source disk to a target (--map sda=/dev/sdc)")
	}
	var served []string
	for _, d := range req.Disks {
		served = append(served, d.Name)
	}
	check := o.CheckTarget
	if check == nil {
		check = SetupTarget(&setup.Env{Root: "/"})
	}
	var retDirs []string
	if fc != nil {
		retDirs = []string{fc.Agent.JournalDir, fc.Agent.RetentionDir}
	} else {
		retDirs = slices.DeleteFunc([]string{req.Fresh.JournalDir, req.Fresh.RetentionDir}, func(s string) bool { return s == "" })
	}
	seen := map[string]string{}
	for _, disk := range slices.Sorted(mapKeys(req.Map)) {
		target := req.Map[disk]
		src, ok := Disk{}, false
		for _, d := range req.Disks {
			if d.Name == disk {
				src, ok = d, true
			}
		}
		if !ok {
			refuse(ErrUnknownDisk, "unknown-disk", disk, target, "source disk %q: the process server %s does not serve it (it serves %s)", disk, p.PSAddr, strings.Join(served, ", "))
			continue
		}
		if id, ok := diskPaired[disk]; ok {
			refuse(ErrDiskPaired, "disk-paired", disk, target, "source disk %q is already paired in %s (pair %s): it is protected; leave it out", disk, path, id)
			continue
		}
		if target == "" {
			refuse(ErrBadRequest, "no-target", disk, "", "source disk %q: no target: map it as %s=/dev/sdX", disk, disk)
			continue
		}
		ct := filepath.Clean(target)
		if other, ok := seen[ct]; ok {
			refuse(ErrTargetTwice, "target-twice", disk, target, "target %s is given for %s and %s: give each source disk its own target", target, other, disk)
			continue
		}
		seen[ct] = disk
		if id, ok := targets[ct]; ok || sameFileAsAny(ct, targets, &id) {
			refuse(ErrTargetInUse, "target-in-use", disk, target, "target %s is the target of pair %s: a protected pair's target is never overwritten; choose another disk", target, id)
			continue
		}
		v := check(TargetCheck{Path: target, SourceName: disk, SourceSize: src.Size, SourceBlockSize: src.BlockSize,
			AllowFiles: req.AllowFiles, AllowNoSCSIID: req.AllowNoSCSIID, Overwrite: req.Overwrite[target], InUse: inUse, RetentionDirs: retDirs})
		if !v.OK {
			refs = append(refs, Refusal{Code: "target-" + v.Code, Disk: disk, Target: target, Confirm: v.Confirm, err: ErrTargetRefused,
				Reason: fmt.Sprintf("target %s for %s: %s", target, disk, v.Reason)})
			continue
		}
		id := disk
		if ids[id] || (groups[id] && id != req.Group) {
			id = req.Group + "-" + disk
		}
		p.Pairs = append(p.Pairs, PlannedPair{ID: id, Disk: disk, Target: target, Size: src.Size, TargetSize: v.Size, AppConsistentInterval: src.AppConsistentInterval})
	}
	if len(refs) > 0 {
		return nil, &RefusedError{Path: path, Refusals: refs}
	}
	p.New = p.text(req)
	planned, err := validate(path, p.New)
	if err != nil {
		refuse(ErrBadPolicy, "bad-policy", "", "", "%v", err)
		return nil, &RefusedError{Path: path, Refusals: refs}
	}
	// What the agent will run the new pairs with: the file's [defaults]
	// where the request leaves a setting out.
	for _, pc := range planned.ClientConfig().Pairs {
		if len(p.Pairs) > 0 && pc.ID == p.Pairs[0].ID {
			p.effective = &pc
		}
	}
	return p, nil
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// sameFileAsAny says whether path is the same file as one of targets
// (a symlink such as /dev/disk/by-id/... to a paired /dev/sdc), setting
// *id to that pair's.
func sameFileAsAny(path string, targets map[string]string, id *string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	for t, pid := range targets {
		if ti, err := os.Stat(t); err == nil && os.SameFile(fi, ti) {
			*id = pid
			return true
		}
	}
	return false
}

// validate runs agent.LoadConfig on the planned text, as the agent will
// read it; errors name path, not the temporary copy.
func validate(path string, text []byte) (*agent.FileConfig, error) {
	dir, err := os.MkdirTemp("", "mtconsole-protect-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, filepath.Base(path))
	if err := os.WriteFile(tmp, text, 0o600); err != nil {
		return nil, err
	}
	fc, err := agent.LoadConfig(tmp)
	if err != nil {
		return nil, errors.New(strings.ReplaceAll(err.Error(), tmp, path+" (as planned)"))
	}
	return fc, nil
}

// text is the new file: the old one byte for byte, then the group and
// its pairs.
func (p *Plan) text(req Request) []byte {
	var b bytes.Buffer
	if p.Fresh {
		f := req.Fresh
		b.WriteString("# mtconsole agent configuration, written by `mtconsole protect`.\n")
		b.WriteString("# The format is in `mtconsole agent --help`; what is left out takes its default.\n\n")
		b.WriteString("[agent]\n")
		kv(&b, "host_id", f.HostID)
		kv(&b, "journal_dir", f.JournalDir)
		kv(&b, "retention_dir", f.RetentionDir)
		kv(&b, "socket", f.Socket)
		kv(&b, "trust_store", f.TrustStore)
		b.WriteString("\n[process_server]\n")
		kv(&b, "address", p.PSAddr)
		kv(&b, "passphrase_file", f.PassphraseFile)
	} else {
		b.Write(p.Old)
		if len(p.Old) > 0 && p.Old[len(p.Old)-1] != '\n' {
			b.WriteByte('\n')
		}
	}
	fmt.Fprintf(&b, "\n# %s: protected by `mtconsole protect` (%d disk%s from %s)\n", p.Group, len(p.Pairs), plural(len(p.Pairs)), p.PSAddr)
	b.WriteString("[[group]]\n")
	kv(&b, "name", p.Group)
	kv(&b, "consistency_interval", p.ConsistencyInterval)
	kv(&b, "rpo_threshold", p.Policy.RPOThreshold)
	kv(&b, "retention", p.Policy.Retention)
	if p.Policy.SizeCapMB != nil {
		fmt.Fprintf(&b, "size_cap_mb = %d\n", *p.Policy.SizeCapMB)
	}
	kv(&b, "on_full", p.Policy.OnFull)
	if a := p.Policy.AlertThresholdPercent; a != nil {
		fmt.Fprintf(&b, "alert_threshold_percent = %s\n", strconv.FormatFloat(*a, 'f', -1, 64))
	}
	kv(&b, "sparse", p.Policy.Sparse)
	for _, q := range p.Pairs {
		b.WriteString("\n[[pair]]\n")
		kv(&b, "disk", q.Disk)
		kv(&b, "target", q.Target)
		if q.ID != q.Disk {
			kv(&b, "id", q.ID)
		}
		kv(&b, "group", p.Group)
	}
	return b.Bytes()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// kv writes key = "v" as TOML, nothing when v is empty.
func kv(b *bytes.Buffer, key, v string) {
	if v == "" {
		return
	}
	b.WriteString(key + " = " + tomlString(v) + "\n")
}

// tomlString is s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				b.WriteString(`\u` + strconv.FormatInt(int64(0x10000+r), 16)[1:])
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Summary is the plan in a few lines, for people.
func (p *Plan) Summary() string {
	var b strings.Builder
	if p.Remove {
		verb := "leave"
		if len(p.Pairs) == 1 {
			verb = "leaves"
		}
		fmt.Fprintf(&b, "unprotect %s: %d pair%s %s %s\n", p.Group, len(p.Pairs), plural(len(p.Pairs)), verb, p.Path)
		for _, q := range p.Pairs {
			fmt.Fprintf(&b, "  %-12s (disk %s) -> %s: left as it is\n", q.ID, q.Disk, q.Target)
		}
		return b.String()
	}
	what := "add to"
	if p.Fresh {
		what = "write a new"
	}
	fmt.Fprintf(&b, "protect %s: %d disk%s from %s (%s %s)\n", p.Group, len(p.Pairs), plural(len(p.Pairs)), p.PSAddr, what, p.Path)
	for _, q := range p.Pairs {
		fmt.Fprintf(&b, "  %-12s -> %-24s %s", q.Disk, q.Target, units.Bytes(q.Size))
		if q.ID != q.Disk {
			fmt.Fprintf(&b, " (pair id %s)", q.ID)
		}
		b.WriteByte('\n')
	}
	pol := func(name, v, def string) {
		if v == "" {
			v = "the [defaults] (" + def + ")"
		}
		fmt.Fprintf(&b, "  %-21s %s\n", name, v)
	}
	// The defaults as the planned file sets them.
	var e agent.PairConfig
	if p.effective != nil {
		e = *p.effective
	}
	defCap := "none"
	if e.Policy.SizeCap > 0 {
		defCap = strconv.FormatInt(e.Policy.SizeCap>>20, 10) + " MB"
	}
	pol("retention", p.Policy.Retention, units.ConfigDuration(e.Policy.Window))
	capMB := ""
	if p.Policy.SizeCapMB != nil {
		capMB = strconv.FormatInt(*p.Policy.SizeCapMB, 10) + " MB"
		if *p.Policy.SizeCapMB == 0 {
			capMB = "none"
		}
	}
	pol("size cap", capMB, defCap)
	pol("on full", p.Policy.OnFull, string(e.Policy.OnFull))
	pol("RPO threshold", p.Policy.RPOThreshold, units.ConfigDuration(e.RPOThreshold))
	alert := ""
	if a := p.Policy.AlertThresholdPercent; a != nil {
		alert = Percent(*a)
	}
	pol("alert threshold", alert, Percent(e.AlertPercent))
	sparse := ""
	if p.Policy.Sparse != "" {
		if t, err := journal.CheckTiers(p.Policy.Sparse, 0); err == nil {
			sparse = journal.DescribeTiers(t)
		}
		if sparse == "" {
			sparse = "every write for the retention window"
		}
	}
	defSparse := "every write for the retention window"
	if len(e.Policy.Tiers) > 0 {
		defSparse = journal.DescribeTiers(e.Policy.Tiers)
	}
	pol("sparse retention", sparse, defSparse)
	ci := p.ConsistencyInterval
	if ci == "0" {
		ci = ""
	}
	pol("consistency interval", ci, "none")
	fmt.Fprintf(&b, "  %-21s %s\n", "app-consistent", p.appConsistent())
	return b.String()
}

// Diff is the change to the file as a unified diff (go-udiff, three
// lines of context).
func (p *Plan) Diff() string {
	oldName := p.Path
	if p.Fresh {
		oldName = "/dev/null"
	}
	return udiff.Unified(oldName, p.Path, string(p.Old), string(p.New))
}

// Percent is an alert threshold for people: "5 %", "2.5 %".
func Percent(p float64) string {
	return strconv.FormatFloat(p, 'f', -1, 64) + " %"
}

// appConsistent is the planned disks' application-consistent interval as
// the process server reports it: one for all, or each disk's.
func (p *Plan) appConsistent() string {
	same := true
	for _, q := range p.Pairs {
		same = same && q.AppConsistentInterval == p.Pairs[0].AppConsistentInterval
	}
	if len(p.Pairs) == 0 || same {
		iv := ""
		if len(p.Pairs) > 0 {
			iv = p.Pairs[0].AppConsistentInterval
		}
		return AppConsistentText(iv)
	}
	var parts []string
	for _, q := range p.Pairs {
		parts = append(parts, q.Disk+" "+AppConsistentText(q.AppConsistentInterval))
	}
	return strings.Join(parts, "; ")
}
