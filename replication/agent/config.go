package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mtconsole/mtconsole/internal/atomicfile"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// FileConfig is the agent's configuration file (TOML), by default
// /etc/mtconsole/agent.toml:
//
//	[agent]
//	host_id = "mt01"                          # default: the host name
//	journal_dir = "/var/lib/mtconsole/journal" # one subdirectory per pair
//	retention_dir = "/var/lib/mtconsole/retention"
//	socket = "/run/mtconsole/agent.sock"      # the status API
//	jobs_dir = "/var/lib/mtconsole/jobs"      # recovery jobs' records; default: "jobs" next to retention_dir
//	socket_group = ""                         # a group that may read status (0660)
//	metrics = ""                              # e.g. "127.0.0.1:9460": Prometheus, off when empty
//	trust_store = "/var/lib/mtconsole/known_process_servers" # pinned certificates (an older install's /etc/mtconsole one is taken over)
//	trust_new_servers = true                  # pin a first-seen certificate (as ssh asks)
//	hash_resync = true                        # targets hold an older copy: send only what differs
//	host_config = "/etc/mtconsole/host.conf"  # registration with the configuration server (see below)
//	alert_threshold_percent = 5               # the default of every group's (see [defaults]); older files set it here
//	min_reserved_space_mb = 0                 # kept free on top of that; a pair's volume must hold it to start
//
//	[process_server]
//	address = "ps.example.com:9443"
//	passphrase_file = "/etc/mtconsole/passphrase" # 0600, first line, at least 16 characters
//
//	[defaults]                                # for every pair unless it says otherwise
//	rpo_threshold = "15m"
//	retention = "24h"                         # or "3 days"
//	size_cap_mb = 0                           # 0: no cap
//	on_full = "purge"                         # or "pause"
//	alert_threshold_percent = 5               # the retention volume is low below this % free (at least 1 GiB, but at most 10 % of the volume); above 0, at most 50
//	sparse = "all 1d; 1 per 1h for 6d"        # sparse-retention tiers (left out: every write for the whole window); see below
//
//	[[group]]                                 # a protected machine: its disks share tags and a policy
//	name = "web01"
//	consistency_interval = "15m"              # a crash-consistent tag across the group's disks this often; "0" or left out: none
//	# rpo_threshold, retention, size_cap_mb, on_full, alert_threshold_percent, sparse override the defaults for its pairs
//
//	[[pair]]
//	disk = "sda"                              # the source disk's name on the process server
//	target = "/dev/sdb"                       # file or block device on this host
//	id = "sda"                                # default: the disk name
//	group = "web01"                           # a [[group]]'s name; left out: a group of its own
//	# rpo_threshold, retention, size_cap_mb, on_full, alert_threshold_percent, sparse override the group's and the defaults
//
// sparse is the original's cdp_policies: tiers separated by ";", first
// "all <duration>" (every write is kept that long), then
// "<N> [APP] per <granularity> for <duration>" (the first N tags of
// application APP, any when left out, of each granularity-long stretch
// of UTC time). Tiers follow each other, all of one APP, N at least 1, no
// granularity longer than its tier, and the last ends at retention
// (retention = "7d" with sparse = "all 1d; 1 per 1h for 6d"); "none"
// clears tiers a group or [defaults] set. The agent's compactor rewrites
// the undo segments older than the first tier every minute, keeping only
// the before-images the kept tags need. A reload applies a change.
//
// alert_threshold_percent is a group's: on a retention volume shared by
// several groups each pair measures the volume's free space against its
// own group's threshold, so the group with the highest one gives space
// back (purge) or pauses first, and a pair never purges because of
// another group's threshold.
//
// host_config is the host config of `mtconsole register` and `mtconsole
// hostconfig` (package hostconfig): when it names a configuration server,
// the agent sends that server a heartbeat every 180 s and shows the
// registration in its status. Left out, it is DefaultHostConfig when that
// file exists; host_config = "" turns heartbeats off.
//
// Errors name the file, the line where the parser knows it, and the key.
//
// Each setting's reload tag says what a changed value does on a reload
// (SIGHUP or POST /v1/reload, see Reloader): "live" is applied to the
// running pairs at once (retention policies, RPO thresholds, groups), a
// [[pair]] new or gone starts or stops, "restart" is named in the log as
// taking effect when the agent restarts, "key" identifies an element of a
// list of tables. A table (a struct without a tag) is walked into. Every
// other setting must carry one (TestReloadTags).
type FileConfig struct {
	Agent struct {
		HostID          string  `toml:"host_id" reload:"restart"`
		JournalDir      string  `toml:"journal_dir" reload:"restart"`
		RetentionDir    string  `toml:"retention_dir" reload:"restart"`
		Socket          string  `toml:"socket" reload:"restart"`
		JobsDir         string  `toml:"jobs_dir" reload:"restart"`
		SocketGroup     string  `toml:"socket_group" reload:"restart"`
		Metrics         string  `toml:"metrics" reload:"restart"`
		TrustStore      string  `toml:"trust_store" reload:"restart"`
		TrustNewServers *bool   `toml:"trust_new_servers" reload:"restart"`
		HashResync      *bool   `toml:"hash_resync" reload:"restart"`
		HostConfig      *string `toml:"host_config" reload:"restart"`
		// The low-space trigger (the original's cdp_alert_threshold and
		// cdp_minreservedspace).
		// alert_threshold_percent is now a policy setting: here it is the
		// default under [defaults], as older files set it.
		AlertThresholdPercent *float64 `toml:"alert_threshold_percent" reload:"live"`
		MinReservedSpaceMB    *int64   `toml:"min_reserved_space_mb" reload:"restart"`
	} `toml:"agent"`
	ProcessServer struct {
		Address        string `toml:"address" reload:"restart"`
		PassphraseFile string `toml:"passphrase_file" reload:"restart"`
	} `toml:"process_server"`
	Defaults PairPolicy `toml:"defaults" reload:"live"`
	Groups   []struct {
		Name                string `toml:"name" reload:"key"`
		ConsistencyInterval string `toml:"consistency_interval" reload:"live"`
		PairPolicy          `reload:"live"`
	} `toml:"group"`
	Pairs []struct {
		Disk       string `toml:"disk" reload:"restart"`
		Target     string `toml:"target" reload:"restart"`
		ID         string `toml:"id" reload:"key"` // LoadConfig sets it (default: Disk)
		Group      string `toml:"group" reload:"live"`
		PairPolicy `reload:"live"`
	} `toml:"pair"`

	path string
	text string
	// trustDefault: the file names no trust_store, so the pins of an
	// older install at LegacyTrustStore are taken over (TrustStorePath).
	trustDefault bool
}

// Where the agent keeps the process servers' pinned certificates unless
// trust_store says: state it writes, under the unit's StateDirectory
// (/etc is read-only to the agent's unit). Installs before 0.2 kept them
// at LegacyTrustStore.
const (
	DefaultTrustStore = "/var/lib/mtconsole/known_process_servers"
	LegacyTrustStore  = "/etc/mtconsole/known_process_servers"
)

// PairPolicy is the retention and RPO policy of a pair.
type PairPolicy struct {
	RPOThreshold string `toml:"rpo_threshold"`
	Retention    string `toml:"retention"`
	SizeCapMB    *int64 `toml:"size_cap_mb"`
	OnFull       string `toml:"on_full"`
	// Sparse is the sparse-retention tiers (journal.ParseTiers), such
	// as "all 1d; 1 per 1h for 6d"; "none" clears tiers set above.
	Sparse string `toml:"sparse"`
	// AlertThresholdPercent is the low-space trigger, in percent of the
	// retention volume (default: [agent]'s, or 5).
	AlertThresholdPercent *float64 `toml:"alert_threshold_percent"`
}

// DefaultAlertPercent is the low-space trigger when no file sets one.
const DefaultAlertPercent = 5.0

// LoadConfig reads and checks the configuration file at path.
func LoadConfig(path string) (*FileConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &FileConfig{path: path, text: string(data)}
	md, err := toml.Decode(c.text, c)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return nil, c.errAt(k[len(k)-1], "unknown key %q (see `mtconsole agent --help` for the format)", k.String())
	}
	a := &c.Agent
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	if a.HostID == "" {
		a.HostID, _ = os.Hostname()
	}
	def(&a.JournalDir, "/var/lib/mtconsole/journal")
	def(&a.RetentionDir, "/var/lib/mtconsole/retention")
	def(&a.JobsDir, filepath.Join(filepath.Dir(filepath.Clean(a.RetentionDir)), "jobs"))
	c.trustDefault = a.TrustStore == ""
	def(&a.TrustStore, DefaultTrustStore)
	if c.ProcessServer.Address == "" {
		return nil, c.errAt("address", "[process_server] address is required: host:port of the process server (port 9443 by default)")
	}
	if !strings.Contains(c.ProcessServer.Address, ":") {
		c.ProcessServer.Address += ":9443"
	}
	if c.ProcessServer.PassphraseFile == "" {
		return nil, c.errAt("passphrase_file", "[process_server] passphrase_file is required: a 0600 file whose first line is the passphrase")
	}
	if hc := a.HostConfig; hc != nil && *hc != "" && !filepath.IsAbs(*hc) {
		return nil, c.errAt("host_config", "[agent] host_config %q: want an absolute path (or \"\" for no heartbeats)", *hc)
	}
	if p := a.AlertThresholdPercent; p != nil {
		if err := CheckAlertPercent(*p); err != nil {
			return nil, c.errAt("alert_threshold_percent", "[agent] %v", err)
		}
	}
	if r := a.MinReservedSpaceMB; r != nil && (*r < 0 || *r > 1<<30) {
		return nil, c.errAt("min_reserved_space_mb", "[agent] min_reserved_space_mb %d: want 0 or more MiB (default 0)", *r)
	}
	if _, err := c.policy(PairPolicy{}); err != nil {
		return nil, c.errIn("[defaults]", 0, err.key, "[defaults]: %v", err.err)
	}
	groups := map[string]int{}
	for i, g := range c.Groups {
		if err := CheckGroupName(g.Name); err != nil {
			return nil, c.errIn("[[group]]", i, "name", "group %d: %v", i+1, err)
		}
		if _, ok := groups[g.Name]; ok {
			return nil, c.errIn("[[group]]", i, "name", "group %d: name %q is used twice", i+1, g.Name)
		}
		groups[g.Name] = i
		if _, err := parseInterval(g.ConsistencyInterval); err != nil {
			return nil, c.errIn("[[group]]", i, "consistency_interval", "group %s: %v", g.Name, err)
		}
		if _, err := c.policy(g.PairPolicy); err != nil {
			return nil, c.errIn("[[group]]", i, err.key, "group %s: %v", g.Name, err.err)
		}
	}
	ids := map[string]bool{}
	for i, p := range c.Pairs {
		if p.Disk == "" {
			return nil, c.errIn("[[pair]]", i, "disk", "pair %d: disk is required (the source disk's name on the process server)", i+1)
		}
		if p.Target == "" {
			return nil, c.errIn("[[pair]]", i, "target", "pair %d (%s): target is required (a file or block device here)", i+1, p.Disk)
		}
		id := p.ID
		if id == "" {
			id = p.Disk
		}
		if ids[id] {
			return nil, c.errIn("[[pair]]", i, "id", "pair %d: id %q is used twice", i+1, id)
		}
		ids[id] = true
		c.Pairs[i].ID = id
		if _, ok := groups[id]; ok && p.Group != id {
			return nil, c.errIn("[[pair]]", i, "disk", "pair %d (%s): its id %q is a [[group]]'s name, so it would join that group: set group = %q, or give the pair another id", i+1, p.Disk, id, id)
		}
		if _, ok := groups[p.Group]; p.Group != "" && !ok {
			return nil, c.errIn("[[pair]]", i, "group", "pair %d (%s): group %q has no [[group]] table: add one with name = %q, or leave group out", i+1, p.Disk, p.Group, p.Group)
		}
		if _, err := c.policy(c.groupPolicy(p.Group), p.PairPolicy); err != nil {
			return nil, c.errIn("[[pair]]", i, err.key, "pair %d (%s): %v", i+1, p.Disk, err.err)
		}
	}
	return c, nil
}

type keyErr struct {
	key string
	err error
}

type policy struct {
	journal.Policy
	rpo   time.Duration
	alert float64 // percent
}

// CheckGroupName refuses a group name that is empty, longer than 64
// bytes, or has characters other than letters, digits, '.', '_' and '-'
// (it names a machine, and pair ids and directories derive from it).
func CheckGroupName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("name %q: want 1 to 64 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("name %q: %q is not allowed (letters, digits, '.', '_' and '-')", name, r)
		}
	}
	return nil
}

// CheckAlertPercent refuses a low-space trigger that is not above 0 and
// at most 50 percent of the retention volume.
func CheckAlertPercent(p float64) error {
	if !(p > 0 && p <= 50) {
		return fmt.Errorf("alert_threshold_percent %v: want a percentage of the retention volume above 0 and at most 50 (default 5)", p)
	}
	return nil
}

// parseInterval reads a consistency interval: "" or "0" is none, else a
// duration of at least a minute.
func parseInterval(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Minute {
		return 0, fmt.Errorf("consistency_interval %q: want a duration of at least 1m such as 15m, or \"0\" for none", s)
	}
	return d, nil
}

// groupPolicy is the policy the group named name sets ("" or unknown:
// none).
func (c *FileConfig) groupPolicy(name string) PairPolicy {
	for _, g := range c.Groups {
		if g.Name == name && name != "" {
			return g.PairPolicy
		}
	}
	return PairPolicy{}
}

// policy merges ps, in order, over the defaults.
func (c *FileConfig) policy(ps ...PairPolicy) (policy, *keyErr) {
	out := policy{Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge}, rpo: 15 * time.Minute, alert: DefaultAlertPercent}
	if p := c.Agent.AlertThresholdPercent; p != nil {
		out.alert = *p // checked by LoadConfig
	}
	tierKey := "sparse" // the key of the innermost table that set the window or the tiers
	for _, q := range append([]PairPolicy{c.Defaults}, ps...) {
		switch {
		case q.Sparse != "":
			tierKey = "sparse"
		case q.Retention != "":
			tierKey = "retention"
		}
		if p := q.AlertThresholdPercent; p != nil {
			if err := CheckAlertPercent(*p); err != nil {
				return out, &keyErr{"alert_threshold_percent", err}
			}
			out.alert = *p
		}
		if q.RPOThreshold != "" {
			d, err := time.ParseDuration(q.RPOThreshold)
			if err != nil || d <= 0 {
				return out, &keyErr{"rpo_threshold", fmt.Errorf("rpo_threshold %q: want a duration such as 15m", q.RPOThreshold)}
			}
			out.rpo = d
		}
		if q.Retention != "" {
			d, err := journal.ParseWindow(q.Retention)
			if err != nil {
				return out, &keyErr{"retention", err}
			}
			out.Window = d
		}
		if q.SizeCapMB != nil {
			if *q.SizeCapMB < 0 {
				return out, &keyErr{"size_cap_mb", fmt.Errorf("size_cap_mb %d: must not be negative", *q.SizeCapMB)}
			}
			out.SizeCap = *q.SizeCapMB << 20
		}
		if q.OnFull != "" {
			a, err := journal.ParseFullAction(q.OnFull)
			if err != nil {
				return out, &keyErr{"on_full", err}
			}
			out.OnFull = a
		}
		if q.Sparse != "" {
			out.Tiers = nil
			if !strings.EqualFold(strings.TrimSpace(q.Sparse), "none") {
				t, err := journal.ParseTiers(q.Sparse)
				if err != nil {
					return out, &keyErr{"sparse", fmt.Errorf("sparse: %v", err)}
				}
				out.Tiers = t
			}
		}
	}
	if err := journal.ValidateTiers(out.Window, out.Tiers); err != nil {
		return out, &keyErr{tierKey, fmt.Errorf("sparse %q with retention %s: %v", journal.FormatTiers(out.Tiers), journal.FormatAge(out.Window), err)}
	}
	return out, nil
}

// DefaultPolicy is the policy a pair with none of its own and in a group
// with none runs with: [defaults] over the agent's own (24 h, no cap,
// purge, 15 min), and its RPO threshold. A zero FileConfig gives the
// agent's own.
func (c *FileConfig) DefaultPolicy() (journal.Policy, time.Duration) {
	pol, _ := c.policy() // checked by LoadConfig
	return pol.Policy, pol.rpo
}

// errAt names the file and the first line that sets key.
func (c *FileConfig) errAt(key, format string, args ...any) error {
	return c.errIn("", 0, key, format, args...)
}

// errIn names the file and the line that sets key in the n-th (from 0)
// table headed header ("" for anywhere).
func (c *FileConfig) errIn(header string, n int, key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	seen := -1
	for i, line := range strings.Split(c.text, "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "[") {
			if l == header {
				seen++
			} else if seen == n && header != "" {
				break // past the table
			}
			continue
		}
		if header != "" && seen != n {
			continue
		}
		if strings.HasPrefix(l, key) && strings.HasPrefix(strings.TrimSpace(l[len(key):]), "=") {
			return fmt.Errorf("%s:%d: %s: %s", c.path, i+1, key, msg)
		}
	}
	return fmt.Errorf("%s: %s: %s", c.path, key, msg)
}

// Path is the file the configuration was loaded from.
func (c *FileConfig) Path() string { return c.path }

// ClientConfig turns the file into a Client's configuration; the
// passphrase key and trust store are the caller's.
func (c *FileConfig) ClientConfig() Config {
	cfg := Config{Addr: c.ProcessServer.Address, HostID: c.Agent.HostID, HostName: c.Agent.HostID,
		HashResync: c.Agent.HashResync == nil || *c.Agent.HashResync}
	if p := c.Agent.AlertThresholdPercent; p != nil {
		cfg.Space.Percent = *p
	}
	if r := c.Agent.MinReservedSpaceMB; r != nil {
		cfg.Space.Reserved = uint64(*r) << 20
	}
	for _, p := range c.Pairs {
		id := p.ID
		if id == "" {
			id = p.Disk
		}
		pol, _ := c.policy(c.groupPolicy(p.Group), p.PairPolicy) // checked by LoadConfig
		group := p.Group
		if group == "" {
			group = id
		}
		cfg.Pairs = append(cfg.Pairs, PairConfig{Disk: p.Disk, Group: group, PairConfig: writer.PairConfig{
			ID: id, Target: p.Target, Policy: pol.Policy, RPOThreshold: pol.rpo, AlertPercent: pol.alert,
			JournalDir:   filepath.Join(c.Agent.JournalDir, id),
			RetentionDir: filepath.Join(c.Agent.RetentionDir, id),
		}})
	}
	for _, g := range c.Groups {
		iv, _ := parseInterval(g.ConsistencyInterval) // checked by LoadConfig
		cfg.Groups = append(cfg.Groups, GroupConfig{Name: g.Name, ConsistencyInterval: iv})
	}
	return cfg
}

// TrustNew says whether a first-seen process-server certificate is pinned.
func (c *FileConfig) TrustNew() bool {
	return c.Agent.TrustNewServers == nil || *c.Agent.TrustNewServers
}

// DefaultHostConfig is the host config the agent heartbeats for when
// [agent] host_config is left out and this file exists.
const DefaultHostConfig = "/etc/mtconsole/host.conf"

// HostConfig is the host config whose registration the agent keeps alive
// with heartbeats, and whether the file named it ([agent] host_config):
// left out, it is DefaultHostConfig (named false: use it only if it
// exists); "" (named true) means none.
func (c *FileConfig) HostConfig() (path string, named bool) {
	if c.Agent.HostConfig == nil {
		return DefaultHostConfig, false
	}
	return *c.Agent.HostConfig, true
}

// DefaultAlert is the low-space trigger, in percent of the retention
// volume, of a group with none of its own: [defaults] over [agent] over
// DefaultAlertPercent.
func (c *FileConfig) DefaultAlert() float64 {
	pol, _ := c.policy() // checked by LoadConfig
	return pol.alert
}

// TrustStorePath is the trust store the agent opens. When the file names
// none and the default one does not exist yet while an older install's
// LegacyTrustStore does, its pins are copied to the default first (0600,
// atomically; the old file is left as it was and no longer read), so that
// an upgrade keeps trusting the process servers it trusted: legacy is
// the old file's path and migrated says the copy was made now.
func (c *FileConfig) TrustStorePath(legacy string) (path string, migrated bool, err error) {
	path = c.Agent.TrustStore
	if !c.trustDefault || legacy == "" {
		return path, false, nil
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return path, false, nil
	}
	old, err := os.ReadFile(legacy)
	if errors.Is(err, fs.ErrNotExist) {
		return path, false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("[agent] trust_store: taking over the pins of %s: %w", legacy, err)
	}
	if err := atomicfile.Write(path, old, 0o600, 0o700); err != nil {
		return "", false, fmt.Errorf("[agent] trust_store: copying the pins of %s to %s: %w (set trust_store = %q to keep using the old file)", legacy, path, err, legacy)
	}
	return path, true, nil
}
