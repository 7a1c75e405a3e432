package setup

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// AnswersVersion is the answers-file version this mtconsole reads.
const AnswersVersion = 1

// Answers is the answers file: one key for every step of the wizard, so
// `mtconsole install --answers FILE` runs unattended. It holds no
// secrets: the passphrase and the vSphere password are named by file.
//
//	version: 1
//	role: mt                         # mt (master target) or ps (process server)
//	install_dir: /usr/local          # the binary goes to <install_dir>/bin/mtconsole
//	prerequisites:
//	  install_packages: true         # install missing packages with apt-get/dnf
//	disks:
//	  retention: /mnt/retention      # a mounted file system of its own (mt)
//	  retention_size_gb: 500         # room the retention policy needs (0: no check)
//	  targets: [sdc, sdd]            # disks the master target writes (optional)
//	custom_changes:
//	  apply: true                    # apply them if they are not (mt)
//	config_server:
//	  address: 10.0.0.4
//	  port: 443
//	  https: true
//	  passphrase_file: /root/passphrase.txt
//	vsphere:                         # optional
//	  address: vcenter.example.com
//	  user: administrator@vsphere.local
//	  password_file: /root/vsphere-password
//	  insecure: false
type Answers struct {
	Version       int    `yaml:"version"`
	Role          Role   `yaml:"role"`
	InstallDir    string `yaml:"install_dir"`
	Prerequisites struct {
		InstallPackages bool `yaml:"install_packages"`
	} `yaml:"prerequisites"`
	Disks struct {
		Retention       string   `yaml:"retention"`
		RetentionSizeGB int      `yaml:"retention_size_gb"`
		Targets         []string `yaml:"targets,flow"`
	} `yaml:"disks"`
	CustomChanges struct {
		Apply bool `yaml:"apply"`
	} `yaml:"custom_changes"`
	ConfigServer struct {
		Address        string `yaml:"address,omitempty"`
		Port           int    `yaml:"port,omitempty"`
		HTTPS          bool   `yaml:"https"`
		PassphraseFile string `yaml:"passphrase_file,omitempty"`
	} `yaml:"config_server"`
	VSphere *struct {
		Address      string `yaml:"address"`
		User         string `yaml:"user"`
		PasswordFile string `yaml:"password_file"`
		Insecure     bool   `yaml:"insecure"`
	} `yaml:"vsphere,omitempty"`
}

// DefaultAnswers are the installer's defaults (the original's: master
// target, /usr/local, retention on /mnt/retention, configuration server
// on 443 over HTTPS).
func DefaultAnswers() Answers {
	var a Answers
	a.Version, a.Role, a.InstallDir = AnswersVersion, RoleMT, "/usr/local"
	a.Disks.Retention = DefaultRetention
	a.ConfigServer.Port, a.ConfigServer.HTTPS = 443, true
	return a
}

// AnswersError is every problem of an answers file, each with its line.
type AnswersError struct {
	File     string
	Problems []string // "LINE: key: what is wrong, and what to do"
}

func (e *AnswersError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.File + ":" + p)
	}
	return b.String()
}

// LoadAnswers reads and validates an answers file.
func LoadAnswers(path string) (Answers, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Answers{}, fmt.Errorf("answers file: %w", err)
	}
	return ParseAnswers(path, b)
}

// ParseAnswers parses and validates answers; name is used in errors.
// Unknown keys, wrong types, bad values and an unknown version are all
// reported, each with its line and key.
func ParseAnswers(name string, b []byte) (Answers, error) {
	a := DefaultAnswers()
	a.Version = 0
	p := &answersParser{}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return a, &AnswersError{File: name, Problems: []string{strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 {
		return a, &AnswersError{File: name, Problems: []string{"1: the file is empty: start with \"version: 1\""}}
	}
	top := doc.Content[0]
	var versionLine int
	p.mapping(top, "", map[string]func(*yaml.Node, string){
		"version": func(n *yaml.Node, k string) { versionLine = n.Line; p.int(n, k, &a.Version) },
		"role": func(n *yaml.Node, k string) {
			var s string
			p.str(n, k, &s)
			switch strings.ToLower(s) {
			case "mt", "mastertarget", "master-target":
				a.Role = RoleMT
			case "ps", "processserver", "process-server":
				a.Role = RolePS
			default:
				p.bad(n, k, fmt.Sprintf("%q is not a role: mt (master target) or ps (process server)", s))
			}
		},
		"install_dir": func(n *yaml.Node, k string) { p.absPath(n, k, &a.InstallDir) },
		"prerequisites": func(n *yaml.Node, k string) {
			p.mapping(n, k, map[string]func(*yaml.Node, string){
				"install_packages": func(n *yaml.Node, k string) { p.bool(n, k, &a.Prerequisites.InstallPackages) },
			})
		},
		"disks": func(n *yaml.Node, k string) {
			p.mapping(n, k, map[string]func(*yaml.Node, string){
				"retention": func(n *yaml.Node, k string) { p.absPath(n, k, &a.Disks.Retention) },
				"retention_size_gb": func(n *yaml.Node, k string) {
					if p.int(n, k, &a.Disks.RetentionSizeGB) && a.Disks.RetentionSizeGB < 0 {
						p.bad(n, k, "must not be negative (0: no size check)")
					}
				},
				"targets": func(n *yaml.Node, k string) {
					if n.Kind != yaml.SequenceNode {
						p.bad(n, k, "want a list of disk names, e.g. [sdc, sdd]")
						return
					}
					a.Disks.Targets = nil
					for i, e := range n.Content {
						var s string
						if p.str(e, fmt.Sprintf("%s[%d]", k, i), &s) {
							s = strings.TrimPrefix(s, "/dev/")
							if s == "" || strings.Contains(s, "/") {
								p.bad(e, fmt.Sprintf("%s[%d]", k, i), "want a kernel disk name such as sdc")
							}
							a.Disks.Targets = append(a.Disks.Targets, s)
						}
					}
				},
			})
		},
		"custom_changes": func(n *yaml.Node, k string) {
			p.mapping(n, k, map[string]func(*yaml.Node, string){
				"apply": func(n *yaml.Node, k string) { p.bool(n, k, &a.CustomChanges.Apply) },
			})
		},
		"config_server": func(n *yaml.Node, k string) {
			p.mapping(n, k, map[string]func(*yaml.Node, string){
				"address": func(n *yaml.Node, k string) { p.str(n, k, &a.ConfigServer.Address) },
				"port": func(n *yaml.Node, k string) {
					if p.int(n, k, &a.ConfigServer.Port) && (a.ConfigServer.Port < 1 || a.ConfigServer.Port > 65535) {
						p.bad(n, k, fmt.Sprintf("%d is not a port: 1 to 65535 (the configuration server listens on 443)", a.ConfigServer.Port))
					}
				},
				"https":           func(n *yaml.Node, k string) { p.bool(n, k, &a.ConfigServer.HTTPS) },
				"passphrase_file": func(n *yaml.Node, k string) { p.absPath(n, k, &a.ConfigServer.PassphraseFile) },
				"passphrase": func(n *yaml.Node, k string) {
					p.bad(n, k, "no secrets in the answers file: put the passphrase in a 0600 file and name it in passphrase_file")
				},
			})
		},
		"vsphere": func(n *yaml.Node, k string) {
			a.VSphere = &struct {
				Address      string `yaml:"address"`
				User         string `yaml:"user"`
				PasswordFile string `yaml:"password_file"`
				Insecure     bool   `yaml:"insecure"`
			}{}
			v := a.VSphere
			p.mapping(n, k, map[string]func(*yaml.Node, string){
				"address":       func(n *yaml.Node, k string) { p.str(n, k, &v.Address) },
				"user":          func(n *yaml.Node, k string) { p.str(n, k, &v.User) },
				"password_file": func(n *yaml.Node, k string) { p.absPath(n, k, &v.PasswordFile) },
				"insecure":      func(n *yaml.Node, k string) { p.bool(n, k, &v.Insecure) },
				"password": func(n *yaml.Node, k string) {
					p.bad(n, k, "no secrets in the answers file: put the password in a 0600 file and name it in password_file")
				},
			})
			if v.Address == "" {
				p.bad(n, k, "vsphere needs an address (or leave vsphere out)")
			}
		},
	})
	switch {
	case versionLine == 0:
		p.problems = append([]string{"1: version: missing: start the file with \"version: 1\""}, p.problems...)
	case a.Version != AnswersVersion:
		p.problems = append([]string{fmt.Sprintf("%d: version: %d is not known: this mtconsole reads version %d", versionLine, a.Version, AnswersVersion)}, p.problems...)
	}
	if len(p.problems) > 0 {
		return a, &AnswersError{File: name, Problems: p.problems}
	}
	return a, nil
}

type answersParser struct{ problems []string }

func (p *answersParser) bad(n *yaml.Node, key, msg string) {
	p.problems = append(p.problems, fmt.Sprintf("%d: %s: %s", n.Line, key, msg))
}

func join(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// mapping walks a mapping, calling the handler of each key; unknown and
// repeated keys are problems.
func (p *answersParser) mapping(n *yaml.Node, prefix string, keys map[string]func(*yaml.Node, string)) {
	if n.Kind != yaml.MappingNode {
		k := prefix
		if k == "" {
			k = "top level"
		}
		p.bad(n, k, "want a mapping of keys")
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		k := join(prefix, kn.Value)
		h, ok := keys[kn.Value]
		switch {
		case !ok:
			var known []string
			for k := range keys {
				if k != "passphrase" && k != "password" {
					known = append(known, k)
				}
			}
			sort.Strings(known)
			p.bad(kn, k, "unknown key (known here: "+strings.Join(known, ", ")+")")
		case seen[kn.Value]:
			p.bad(kn, k, "given twice")
		default:
			seen[kn.Value] = true
			h(vn, k)
		}
	}
}

func (p *answersParser) scalar(n *yaml.Node, key, want string) bool {
	if n.Kind != yaml.ScalarNode {
		p.bad(n, key, "want "+want)
		return false
	}
	return true
}

func (p *answersParser) str(n *yaml.Node, key string, dst *string) bool {
	if !p.scalar(n, key, "a string") {
		return false
	}
	*dst = n.Value
	return true
}

func (p *answersParser) int(n *yaml.Node, key string, dst *int) bool {
	if !p.scalar(n, key, "a whole number") {
		return false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || n.Tag != "!!int" {
		p.bad(n, key, fmt.Sprintf("%q is not a whole number", n.Value))
		return false
	}
	*dst = v
	return true
}

func (p *answersParser) bool(n *yaml.Node, key string, dst *bool) bool {
	if !p.scalar(n, key, "true or false") {
		return false
	}
	if n.Tag != "!!bool" {
		p.bad(n, key, fmt.Sprintf("%q is not true or false", n.Value))
		return false
	}
	*dst = n.Value == "true" || n.Value == "True" || n.Value == "TRUE"
	return true
}

func (p *answersParser) absPath(n *yaml.Node, key string, dst *string) bool {
	if !p.str(n, key, dst) {
		return false
	}
	if !filepath.IsAbs(*dst) {
		p.bad(n, key, fmt.Sprintf("%q is not an absolute path", *dst))
		return false
	}
	*dst = filepath.Clean(*dst)
	return true
}

// Marshal writes answers as a file LoadAnswers reads back.
func (a Answers) Marshal() ([]byte, error) {
	b, err := yaml.Marshal(a)
	if err != nil {
		return nil, err
	}
	return append([]byte("# mtconsole answers: mtconsole install --answers FILE repeats this install.\n"), b...), nil
}
