package setup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mtconsole/mtconsole/scripts"
)

// Where an install puts things, below the root.
const (
	ConfigDir  = "/etc/mtconsole"
	StateRoot  = "/var/lib/mtconsole"
	UnitPath   = "/etc/systemd/system/mtconsole-agent.service" // a bare binary's install writes the unit here
	RecordPath = ConfigDir + "/install.yaml"                   // what is installed: role, version, paths
	UsedPath   = ConfigDir + "/answers.yaml"                   // the answers the install used
	DataSubdir = "mtconsole"                                   // below the retention directory
	unitBinary = "/usr/bin/mtconsole"                          // the binary path in the shipped unit
	// The .deb and .rpm put the binary and the units here: an install run
	// from the packaged binary copies neither.
	PackagedBinary = "/usr/bin/mtconsole"
	PackagedUnit   = "/usr/lib/systemd/system/mtconsole-agent.service"
	// DropInPath makes the retention data writable to the agent, whose
	// unit has ProtectSystem=strict.
	DropInPath = "/etc/systemd/system/mtconsole-agent.service.d/50-retention.conf"
)

// Packaged says whether the install under root runs from the packages'
// binary with their unit in place: then the package manager owns both.
func Packaged(root, binary string) bool {
	if _, err := os.Stat(rootPath(root, PackagedUnit)); err != nil {
		return false
	}
	pkg, err := filepath.EvalSymlinks(rootPath(root, PackagedBinary))
	if err != nil {
		return false
	}
	bin, err := filepath.EvalSymlinks(binary)
	return err == nil && bin == pkg
}

// dropIn is the agent unit's drop-in that makes the retention data
// directory data writable.
func dropIn(data string) []byte {
	return []byte(`# Written by mtconsole install: the agent's unit makes the file system
# read-only (ProtectSystem=strict) but for its state and runtime
# directories; the retention data on its own volume is written too.
[Service]
ReadWritePaths=` + data + "\n")
}

// Record is what an install leaves in RecordPath; a later install reads
// it to know it upgrades.
type Record struct {
	Role       Role   `yaml:"role"`
	Version    string `yaml:"version"`
	Binary     string `yaml:"binary"`
	Retention  string `yaml:"retention_data,omitempty"`
	InstallDir string `yaml:"install_dir"`
}

// Action is one step of an install or uninstall.
type Action struct {
	Kind   string // mkdir, write, copy, remove, run
	Path   string // on the host
	Detail string
	mode   os.FileMode
	data   []byte   // write
	src    string   // copy
	argv   []string // run
}

func (a Action) String() string {
	s := fmt.Sprintf("%-6s %s", a.Kind, a.Path)
	if a.Detail != "" {
		s += "  (" + a.Detail + ")"
	}
	return s
}

// Plan is what an install or uninstall will do.
type Plan struct {
	Root      string
	Upgrade   *Record // the install found, when this is an upgrade
	Actions   []Action
	Unchanged []string // what is already as it should be
}

// InstallOptions are the inputs of an install.
type InstallOptions struct {
	Root    string
	Answers Answers
	Binary  string // the binary to install; "": this executable
	Version string

	// For Review only. Env is the template of the checks (Role,
	// Retention, RetentionBytes and Targets come from the answers); nil:
	// this host's under Root. Custom is the host's custom changes; nil:
	// HostCustom(Root). SkipChecks leaves the checks out.
	Env        *Env
	Custom     *Custom
	SkipChecks bool
}

func rootPath(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}

// ReadRecord reads the install record under root; nil when none.
func ReadRecord(root string) (*Record, error) {
	b, err := os.ReadFile(rootPath(root, RecordPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Record
	if err := yaml.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w (move it away to install afresh)", RecordPath, err)
	}
	return &r, nil
}

// PlanInstall works out what an install changes, reading but never
// writing. Files already as they should be are listed as unchanged, so a
// dry run prints exactly what would change.
func PlanInstall(o InstallOptions) (*Plan, error) {
	a := o.Answers
	if o.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find this executable to install: %w", err)
		}
		o.Binary = exe
	}
	rec, err := ReadRecord(o.Root)
	if err != nil {
		return nil, err
	}
	p := &Plan{Root: o.Root, Upgrade: rec}
	packaged := Packaged(o.Root, o.Binary)
	bin := filepath.Join(a.InstallDir, "bin", "mtconsole")
	if packaged {
		bin = PackagedBinary
	}
	newRec := Record{Role: a.Role, Version: o.Version, Binary: bin, InstallDir: a.InstallDir}

	p.dir(ConfigDir, 0o700, "configuration")
	p.dir(StateRoot, 0o700, "state: journals, trust store")
	if packaged {
		// The package manager put the binary and the units in place; an
		// earlier bare install's copies would shadow them.
		p.Unchanged = append(p.Unchanged, PackagedBinary+" (the package's)")
		if rec != nil && rec.Binary != "" && rec.Binary != PackagedBinary {
			if _, ok := p.exists(rec.Binary); ok {
				p.Actions = append(p.Actions, Action{Kind: "remove", Path: rec.Binary, Detail: "an earlier install's binary; the package's " + PackagedBinary + " takes over"})
			}
		}
		if _, ok := p.exists(UnitPath); ok {
			p.Actions = append(p.Actions, Action{Kind: "remove", Path: UnitPath, Detail: "an earlier install's unit, which would hide the package's " + PackagedUnit})
		}
	} else {
		p.copyFile(bin, o.Binary, 0o755)
	}
	if a.Role == RoleMT {
		data := filepath.Join(a.Disks.Retention, DataSubdir)
		newRec.Retention = data
		p.dir(data, 0o700, "retention data, on the retention volume")
		if !packaged {
			unit := bytes.ReplaceAll(scripts.AgentUnit, []byte(unitBinary), []byte(bin))
			p.file(UnitPath, unit, 0o644, "the agent's systemd unit")
		}
		if !within(data, StateRoot) {
			p.file(DropInPath, dropIn(data), 0o644, "makes the retention data writable to the agent's unit")
		}
	}
	used, err := a.Marshal()
	if err != nil {
		return nil, err
	}
	p.file(UsedPath, used, 0o600, "the answers this install used, to repeat it")
	recb, _ := yaml.Marshal(newRec)
	p.file(RecordPath, recb, 0o644, "what is installed")
	if a.Role == RoleMT {
		p.run([]string{"systemctl", "daemon-reload"}, "")
		p.run([]string{"systemctl", "enable", "mtconsole-agent.service"},
			"starts at boot; it runs once "+ConfigDir+"/agent.toml names the process server and pairs")
	}
	return p, nil
}

func (p *Plan) exists(path string) (os.FileInfo, bool) {
	fi, err := os.Stat(rootPath(p.Root, path))
	return fi, err == nil
}

func (p *Plan) dir(path string, mode os.FileMode, why string) {
	if fi, ok := p.exists(path); ok && fi.IsDir() {
		p.Unchanged = append(p.Unchanged, path)
		return
	}
	p.Actions = append(p.Actions, Action{Kind: "mkdir", Path: path, Detail: fmt.Sprintf("%04o, %s", mode, why), mode: mode})
}

func (p *Plan) file(path string, data []byte, mode os.FileMode, why string) {
	if cur, err := os.ReadFile(rootPath(p.Root, path)); err == nil && bytes.Equal(cur, data) {
		p.Unchanged = append(p.Unchanged, path)
		return
	}
	verb := "new"
	if _, ok := p.exists(path); ok {
		verb = "replaces the current file"
	}
	p.Actions = append(p.Actions, Action{Kind: "write", Path: path, Detail: fmt.Sprintf("%s, %d bytes, %04o, %s", why, len(data), mode, verb), mode: mode, data: data})
}

func (p *Plan) copyFile(path, src string, mode os.FileMode) {
	a, errA := os.ReadFile(src)
	if b, err := os.ReadFile(rootPath(p.Root, path)); errA == nil && err == nil && bytes.Equal(a, b) {
		p.Unchanged = append(p.Unchanged, path)
		return
	}
	verb := "new"
	if _, ok := p.exists(path); ok {
		verb = "upgrades the binary there"
	}
	p.Actions = append(p.Actions, Action{Kind: "copy", Path: path, Detail: "from " + src + ", " + verb, mode: mode, src: src})
}

func (p *Plan) run(argv []string, why string) {
	a := Action{Kind: "run", Path: strings.Join(argv, " "), Detail: why, argv: argv}
	if p.Root != "" && p.Root != "/" {
		a.Detail = "skipped: the root is " + p.Root + ", not this host"
		a.argv = nil
	}
	p.Actions = append(p.Actions, a)
}

// Print writes the plan for an admin.
func (p *Plan) Print(w io.Writer) {
	for _, a := range p.Actions {
		fmt.Fprintln(w, "  "+a.String())
	}
	if len(p.Actions) == 0 {
		fmt.Fprintln(w, "  nothing to change")
	}
	for _, u := range p.Unchanged {
		fmt.Fprintf(w, "  %-6s %s\n", "keep", u)
	}
}

// Execute carries out the plan in order through x; it stops at the first
// error, naming the step. With a dry-run x it changes nothing and writes
// what each step would do.
func (p *Plan) Execute(ctx context.Context, x *Executor, w io.Writer) error {
	for _, a := range p.Actions {
		dst := rootPath(p.Root, a.Path)
		mark := x.Mark()
		var err error
		switch a.Kind {
		case "mkdir":
			err = x.MkdirAll(dst, a.mode)
		case "write":
			err = x.WriteFile(dst, a.data, a.mode)
		case "copy":
			var b []byte
			if b, err = os.ReadFile(a.src); err == nil {
				err = x.WriteFile(dst, b, a.mode)
			}
		case "remove":
			err = x.RemoveAll(dst)
		case "run":
			if a.argv == nil {
				fmt.Fprintln(w, "  "+a.String()) // its detail says it is skipped
				continue
			}
			err = x.Run(ctx, a.argv, nil, func(l string) { fmt.Fprintln(w, "    "+l) })
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", a.Kind, a.Path, err)
		}
		if x.Dry() {
			for _, l := range x.Would(mark) {
				fmt.Fprintln(w, "  "+l)
			}
			continue
		}
		fmt.Fprintln(w, "  done  "+a.String())
	}
	return nil
}

// PlanUninstall works out what an uninstall removes: the binary, the
// unit, the configuration and state directories; the retention data only
// with purge. Custom changes stay (mtconsole custom-changes revert).
func PlanUninstall(root string, purge bool) (*Plan, error) {
	rec, err := ReadRecord(root)
	if err != nil {
		return nil, err
	}
	if rec == nil {
		return nil, fmt.Errorf("%s not found under %s: mtconsole is not installed there", RecordPath, rootOr(root))
	}
	p := &Plan{Root: root, Upgrade: rec}
	_, bare := p.exists(UnitPath)
	_, pkg := p.exists(PackagedUnit)
	_, drop := p.exists(filepath.Dir(DropInPath))
	if bare || pkg {
		p.run([]string{"systemctl", "disable", "--now", "mtconsole-agent.service"}, "stops the agent")
	}
	if bare {
		p.Actions = append(p.Actions, Action{Kind: "remove", Path: UnitPath})
	}
	if drop {
		p.Actions = append(p.Actions, Action{Kind: "remove", Path: filepath.Dir(DropInPath)})
	}
	if bare || drop {
		p.run([]string{"systemctl", "daemon-reload"}, "")
	}
	// The package's binary and units are the package manager's to remove.
	paths := []string{ConfigDir, StateRoot}
	if rec.Binary != PackagedBinary {
		paths = append([]string{rec.Binary}, paths...)
	}
	for _, path := range paths {
		if _, ok := p.exists(path); ok && path != "" {
			p.Actions = append(p.Actions, Action{Kind: "remove", Path: path})
		}
	}
	if rec.Retention != "" {
		if _, ok := p.exists(rec.Retention); ok {
			if purge {
				p.Actions = append(p.Actions, Action{Kind: "remove", Path: rec.Retention, Detail: "--purge-data: the retention data is gone for good"})
			} else {
				p.Unchanged = append(p.Unchanged, rec.Retention+" (retention data; --purge-data removes it)")
			}
		}
	}
	return p, nil
}

func rootOr(root string) string {
	if root == "" {
		return "/"
	}
	return root
}

// within says whether path is dir or below it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
