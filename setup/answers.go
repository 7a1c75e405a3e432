package setup

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/journal"
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
//	protect:                         # optional: protected machines, as mtconsole protect
//	  - group: web01                 # the machine's name (a new group)
//	    ps: ps.example.com:9443      # default: agent.toml's; required without one
//	    passphrase_file: /etc/mtconsole/passphrase
//	    trust_fingerprint: SHA256:...  # the process server's, when first seen
//	    map: {sda: /dev/sdc, sdb: /dev/sdd}
//	    retention: 3d
//	    size_cap_mb: 0
//	    on_full: purge
//	    rpo_threshold: 15m
//	    alert_threshold_percent: 5   # retention volume low below this % free (above 0, at most 50)
//	    sparse: all 1d; 1 per 1h for 2d  # sparse-retention tiers, ending at retention (agent.toml's sparse)
//	    consistency_interval: 15m
//	    overwrite: [sdd]             # typed confirmation for disks holding a file system
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
	// Protect are the machines the install protects, last, with the
	// keys of `mtconsole protect`.
	Protect []ProtectAnswer `yaml:"protect,omitempty"`
}

// ProtectAnswer is one entry of the answers' protect: list: the keys of
// `mtconsole protect` (package protect maps both to its request).
type ProtectAnswer struct {
	Group          string `yaml:"group"`
	PS             string `yaml:"ps,omitempty"`
	PassphraseFile string `yaml:"passphrase_file,omitempty"`
	// TrustFingerprint trusts a first-seen process server's certificate
	// (SHA256:...); without it only an already pinned one is accepted.
	TrustFingerprint string            `yaml:"trust_fingerprint,omitempty"`
	Map              map[string]string `yaml:"map,flow"`
	Retention        string            `yaml:"retention,omitempty"`
	SizeCapMB        *int64            `yaml:"size_cap_mb,omitempty"`
	OnFull           string            `yaml:"on_full,omitempty"`
	RPOThreshold     string            `yaml:"rpo_threshold,omitempty"`
	// AlertThresholdPercent is the group's low-space trigger (percent of
	// the retention volume).
	AlertThresholdPercent *float64 `yaml:"alert_threshold_percent,omitempty"`
	// Sparse is the group's sparse-retention tiers (journal.ParseTiers).
	Sparse              string   `yaml:"sparse,omitempty"`
	ConsistencyInterval string   `yaml:"consistency_interval,omitempty"`
	Overwrite           []string `yaml:"overwrite,flow,omitempty"`
	AllowFiles          bool     `yaml:"allow_files,omitempty"`
	AllowNoSCSIID       bool     `yaml:"allow_no_scsi_id,omitempty"`
	// Line is the entry's line in the answers file (0: not from a file).
	Line int `yaml:"-"`
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
		"protect": func(n *yaml.Node, k string) { a.Protect = p.protect(n, k) },
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

// protect reads the protect: list; the values the agent would refuse
// are refused here, with their line.
func (p *answersParser) protect(n *yaml.Node, k string) []ProtectAnswer {
	if n.Kind != yaml.SequenceNode {
		p.bad(n, k, "want a list of machines to protect, each \"- group: NAME\" with its map")
		return nil
	}
	var out []ProtectAnswer
	groups := map[string]bool{}
	for i, e := range n.Content {
		ek := fmt.Sprintf("%s[%d]", k, i)
		pa := ProtectAnswer{Line: e.Line}
		var groupLine, mapLine bool
		var sparseNode *yaml.Node
		duration := func(n *yaml.Node, k string, dst *string, check func(string) error) {
			if p.str(n, k, dst) {
				if err := check(*dst); err != nil {
					p.bad(n, k, err.Error())
				}
			}
		}
		p.mapping(e, ek, map[string]func(*yaml.Node, string){
			"group": func(n *yaml.Node, k string) {
				groupLine = true
				if !p.str(n, k, &pa.Group) {
					return
				}
				if err := agent.CheckGroupName(pa.Group); err != nil {
					p.bad(n, k, err.Error())
				} else if groups[pa.Group] {
					p.bad(n, k, fmt.Sprintf("group %q is protected twice: give each machine its own name", pa.Group))
				}
				groups[pa.Group] = true
			},
			"ps":                func(n *yaml.Node, k string) { p.str(n, k, &pa.PS) },
			"passphrase_file":   func(n *yaml.Node, k string) { p.absPath(n, k, &pa.PassphraseFile) },
			"trust_fingerprint": func(n *yaml.Node, k string) { p.str(n, k, &pa.TrustFingerprint) },
			"passphrase": func(n *yaml.Node, k string) {
				p.bad(n, k, "no secrets in the answers file: put the passphrase in a 0600 file and name it in passphrase_file")
			},
			"map": func(n *yaml.Node, k string) {
				mapLine = true
				if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
					p.bad(n, k, "want source disks to targets, e.g. {sda: /dev/sdc, sdb: /dev/sdd}")
					return
				}
				pa.Map = map[string]string{}
				targets := map[string]string{}
				for j := 0; j+1 < len(n.Content); j += 2 {
					dn, tn := n.Content[j], n.Content[j+1]
					dk := k + "." + dn.Value
					var t string
					switch {
					case dn.Kind != yaml.ScalarNode || dn.Value == "":
						p.bad(dn, k, "want a source disk name, e.g. sda")
					case pa.Map[dn.Value] != "":
						p.bad(dn, dk, "given twice")
					case !p.str(tn, dk, &t):
					case t == "":
						p.bad(tn, dk, "want the target, e.g. /dev/sdc")
					case targets[filepath.Clean(t)] != "":
						p.bad(tn, dk, fmt.Sprintf("target %s is given for %s too: give each source disk its own target", t, targets[filepath.Clean(t)]))
					default:
						pa.Map[dn.Value] = t
						targets[filepath.Clean(t)] = dn.Value
					}
				}
			},
			"retention": func(n *yaml.Node, k string) {
				duration(n, k, &pa.Retention, func(s string) error { _, err := journal.ParseWindow(s); return err })
			},
			"size_cap_mb": func(n *yaml.Node, k string) {
				var v int
				if p.int(n, k, &v) {
					if v < 0 {
						p.bad(n, k, "must not be negative (0: no cap)")
					}
					c := int64(v)
					pa.SizeCapMB = &c
				}
			},
			"on_full": func(n *yaml.Node, k string) {
				duration(n, k, &pa.OnFull, func(s string) error { _, err := journal.ParseFullAction(s); return err })
			},
			"rpo_threshold": func(n *yaml.Node, k string) {
				duration(n, k, &pa.RPOThreshold, func(s string) error {
					if d, err := time.ParseDuration(s); err != nil || d <= 0 {
						return fmt.Errorf("%q: want a duration such as 15m", s)
					}
					return nil
				})
			},
			"alert_threshold_percent": func(n *yaml.Node, k string) {
				if !p.scalar(n, k, "a percentage such as 5") {
					return
				}
				v, err := strconv.ParseFloat(n.Value, 64)
				if err != nil || (n.Tag != "!!int" && n.Tag != "!!float") {
					p.bad(n, k, fmt.Sprintf("%q is not a number: want a percentage of the retention volume such as 5", n.Value))
					return
				}
				if err := agent.CheckAlertPercent(v); err != nil {
					p.bad(n, k, err.Error())
					return
				}
				pa.AlertThresholdPercent = &v
			},
			"sparse": func(n *yaml.Node, k string) {
				duration(n, k, &pa.Sparse, func(s string) error { _, err := journal.CheckTiers(s, 0); return err })
				sparseNode = n
			},
			"consistency_interval": func(n *yaml.Node, k string) {
				duration(n, k, &pa.ConsistencyInterval, func(s string) error {
					if s == "0" {
						return nil
					}
					if d, err := time.ParseDuration(s); err != nil || d < time.Minute {
						return fmt.Errorf("%q: want a duration of at least 1m such as 15m, or 0 for none", s)
					}
					return nil
				})
			},
			"overwrite": func(n *yaml.Node, k string) {
				if n.Kind != yaml.SequenceNode {
					p.bad(n, k, "want a list of target names, e.g. [sdd]")
					return
				}
				for j, e := range n.Content {
					var s string
					if p.str(e, fmt.Sprintf("%s[%d]", k, j), &s) {
						pa.Overwrite = append(pa.Overwrite, s)
					}
				}
			},
			"allow_files":      func(n *yaml.Node, k string) { p.bool(n, k, &pa.AllowFiles) },
			"allow_no_scsi_id": func(n *yaml.Node, k string) { p.bool(n, k, &pa.AllowNoSCSIID) },
		})
		if e.Kind != yaml.MappingNode {
			continue
		}
		if !groupLine {
			p.bad(e, ek, "group: missing: the protected machine's name, e.g. group: web01")
		}
		if !mapLine {
			p.bad(e, ek, "map: missing: source disks to targets, e.g. map: {sda: /dev/sdc}")
		}
		if sparseNode != nil && pa.Retention != "" {
			// the last tier ends at the window (without retention here,
			// at agent.toml's, which the plan checks)
			if w, err := journal.ParseWindow(pa.Retention); err == nil {
				if _, err := journal.CheckTiers(pa.Sparse, w); err != nil {
					p.bad(sparseNode, ek+".sparse", fmt.Sprintf("%v (retention is %s)", err, journal.FormatAge(w)))
				}
			}
		}
	overwrite:
		for _, name := range pa.Overwrite {
			for _, t := range pa.Map {
				if name == t || name == filepath.Base(t) {
					continue overwrite
				}
			}
			p.bad(e, ek+".overwrite", fmt.Sprintf("%q is not a target of map: name a target (its path or name, e.g. sdd)", name))
		}
		out = append(out, pa)
	}
	return out
}

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
