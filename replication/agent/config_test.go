package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

const goodConfig = `[agent]
journal_dir = "/j"
retention_dir = "/r"

[process_server]
address = "ps.example"
passphrase_file = "/etc/mtconsole/passphrase"

[defaults]
retention = "3 days"
on_full = "pause"

[[pair]]
disk = "sda"
target = "/dev/sdb"

[[pair]]
disk = "sdb"
id = "data"
target = "/dev/sdc"
size_cap_mb = 100
rpo_threshold = "5m"
`

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "agent.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	fc, err := LoadConfig(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	c := fc.ClientConfig()
	if c.Addr != "ps.example:9443" || !c.HashResync || len(c.Pairs) != 2 || !fc.TrustNew() {
		t.Fatalf("config %+v", c)
	}
	a, b := c.Pairs[0], c.Pairs[1]
	if a.Disk != "sda" || a.ID != "sda" || a.JournalDir != "/j/sda" || a.RetentionDir != "/r/sda" ||
		a.Policy.Window != 72*time.Hour || a.Policy.OnFull != journal.Pause || a.RPOThreshold != 15*time.Minute {
		t.Fatalf("pair 1: %+v", a)
	}
	if b.ID != "data" || b.Target != "/dev/sdc" || b.Policy.SizeCap != 100<<20 || b.RPOThreshold != 5*time.Minute || b.Policy.Window != 72*time.Hour {
		t.Fatalf("pair 2: %+v", b)
	}
}

// The low-space trigger's percent and reserve reach the writer; left out,
// the writer's defaults stay.
func TestSpaceConfig(t *testing.T) {
	fc, err := LoadConfig(writeConfig(t, goodConfig))
	if err != nil {
		t.Fatal(err)
	}
	if s := fc.ClientConfig().Space; s.Percent != 0 || s.Reserved != 0 {
		t.Fatalf("defaults: %+v", s)
	}
	text := strings.Replace(goodConfig, "[agent]\n", "[agent]\nalert_threshold_percent = 2.5\nmin_reserved_space_mb = 100\n", 1)
	if fc, err = LoadConfig(writeConfig(t, text)); err != nil {
		t.Fatal(err)
	}
	if s := fc.ClientConfig().Space; s.Percent != 2.5 || s.Reserved != 100<<20 {
		t.Fatalf("space %+v, want 2.5 %% and 100 MiB", s)
	}
}

// The job records go next to the retention directory unless jobs_dir says.
func TestJobsDir(t *testing.T) {
	for line, want := range map[string]string{
		"":                                     "/jobs",
		`retention_dir = "/srv/mt/retention/"`: "/srv/mt/jobs",
		`jobs_dir = "/var/mt/jobs"`:            "/var/mt/jobs",
	} {
		text := goodConfig
		if strings.HasPrefix(line, "retention_dir") {
			text = strings.Replace(text, `retention_dir = "/r"`, line, 1)
		} else {
			text = strings.Replace(text, "[agent]\n", "[agent]\n"+line+"\n", 1)
		}
		fc, err := LoadConfig(writeConfig(t, text))
		if err != nil {
			t.Fatal(err)
		}
		if fc.Agent.JobsDir != want {
			t.Errorf("%q: jobs_dir %q, want %q", line, fc.Agent.JobsDir, want)
		}
	}
}

func TestHostConfig(t *testing.T) {
	for _, tc := range []struct {
		line  string
		path  string
		named bool
	}{
		{"", DefaultHostConfig, false},
		{`host_config = "/srv/mt/host.conf"`, "/srv/mt/host.conf", true},
		{`host_config = ""`, "", true},
	} {
		fc, err := LoadConfig(writeConfig(t, strings.Replace(goodConfig, "[agent]\n", "[agent]\n"+tc.line+"\n", 1)))
		if err != nil {
			t.Fatalf("%q: %v", tc.line, err)
		}
		if p, named := fc.HostConfig(); p != tc.path || named != tc.named {
			t.Errorf("%q: HostConfig() = %q, %v, want %q, %v", tc.line, p, named, tc.path, tc.named)
		}
	}
}

func TestLoadConfigErrors(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"syntax", "[agent\n", ":2: "},
		{"unknown key", strings.Replace(goodConfig, `on_full = "pause"`, "on_ful = \"pause\"", 1), `:11: on_ful: unknown key "defaults.on_ful"`},
		{"bad window", strings.Replace(goodConfig, `"3 days"`, `"3 weeks"`, 1), `:10: retention: [defaults]: retention window "3 weeks"`},
		{"bad action", strings.Replace(goodConfig, `"pause"`, `"stop"`, 1), `:11: on_full: [defaults]`},
		{"bad rpo", strings.Replace(goodConfig, `"5m"`, `"soon"`, 1), `:22: rpo_threshold: pair 2 (sdb): rpo_threshold "soon"`},
		{"no target", strings.Replace(goodConfig, "target = \"/dev/sdb\"\n", "", 1), "pair 1 (sda): target is required"},
		{"pair key in its own table", strings.Replace(goodConfig, `size_cap_mb = 100`, `size_cap_mb = -1`, 1), `:21: size_cap_mb: pair 2 (sdb)`},
		{"duplicate id", strings.Replace(goodConfig, `id = "data"`, `id = "sda"`, 1), `id "sda" is used twice`},
		{"no address", strings.Replace(goodConfig, `address = "ps.example"`, "", 1), "address is required"},
		{"alert threshold 0", strings.Replace(goodConfig, `retention_dir = "/r"`, "retention_dir = \"/r\"\nalert_threshold_percent = 0", 1), `:4: alert_threshold_percent: [agent] alert_threshold_percent 0: want a percentage`},
		{"alert threshold 80", strings.Replace(goodConfig, `retention_dir = "/r"`, "retention_dir = \"/r\"\nalert_threshold_percent = 80.5", 1), `:4: alert_threshold_percent: [agent] alert_threshold_percent 80.5`},
		{"negative reserve", strings.Replace(goodConfig, `retention_dir = "/r"`, "retention_dir = \"/r\"\nmin_reserved_space_mb = -1", 1), `:4: min_reserved_space_mb: [agent] min_reserved_space_mb -1: want 0 or more`},
		{"relative host config", strings.Replace(goodConfig, `retention_dir = "/r"`, "retention_dir = \"/r\"\nhost_config = \"host.conf\"", 1), `:4: host_config: [agent] host_config "host.conf": want an absolute path`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.edit)
			_, err := LoadConfig(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("error %v, want it to start with the file and contain %q", err, tc.want)
			}
		})
	}
}

const groupConfig = `[process_server]
address = "ps.example"
passphrase_file = "/etc/mtconsole/passphrase"

[defaults]
retention = "3 days"

[[group]]
name = "web01"
consistency_interval = "15m"
retention = "12h"
rpo_threshold = "5m"

[[pair]]
disk = "sda"
target = "/dev/sdb"
group = "web01"

[[pair]]
disk = "sdb"
target = "/dev/sdc"
group = "web01"
retention = "6h"

[[pair]]
disk = "sdc"
target = "/dev/sdd"
`

// A pair's policy is the defaults, then its group's, then its own; a pair
// in no group is a group of its own.
func TestLoadConfigGroups(t *testing.T) {
	fc, err := LoadConfig(writeConfig(t, groupConfig))
	if err != nil {
		t.Fatal(err)
	}
	c := fc.ClientConfig()
	if len(c.Groups) != 1 || c.Groups[0] != (GroupConfig{Name: "web01", ConsistencyInterval: 15 * time.Minute}) {
		t.Fatalf("groups %+v", c.Groups)
	}
	want := []struct {
		id, group string
		window    time.Duration
		rpo       time.Duration
	}{
		{"sda", "web01", 12 * time.Hour, 5 * time.Minute},
		{"sdb", "web01", 6 * time.Hour, 5 * time.Minute},
		{"sdc", "sdc", 72 * time.Hour, 15 * time.Minute},
	}
	for i, w := range want {
		p := c.Pairs[i]
		if p.ID != w.id || p.Group != w.group || p.Policy.Window != w.window || p.RPOThreshold != w.rpo {
			t.Errorf("pair %d: %s group %s window %v rpo %v, want %+v", i, p.ID, p.Group, p.Policy.Window, p.RPOThreshold, w)
		}
	}
}

func TestLoadConfigGroupErrors(t *testing.T) {
	for _, tc := range []struct{ name, edit, want string }{
		{"unknown group", strings.Replace(groupConfig, `group = "web01"
retention = "6h"`, `group = "web02"`, 1), `:22: group: pair 2 (sdb): group "web02" has no [[group]] table`},
		{"duplicate group", groupConfig + "\n[[group]]\nname = \"web01\"\n", `:30: name: group 2: name "web01" is used twice`},
		{"bad name", strings.Replace(groupConfig, `name = "web01"`, `name = "web 01"`, 1), `:9: name: group 1: name "web 01": ' ' is not allowed`},
		{"empty name", strings.Replace(groupConfig, `name = "web01"`, `name = ""`, 1), `:9: name: group 1: name "": want 1 to 64 characters`},
		{"short interval", strings.Replace(groupConfig, `"15m"`, `"30s"`, 1), `:10: consistency_interval: group web01: consistency_interval "30s": want a duration of at least 1m`},
		{"bad group policy", strings.Replace(groupConfig, `retention = "12h"`, `retention = "12 weeks"`, 1), `:11: retention: group web01: retention window "12 weeks"`},
		{"group alert threshold", strings.Replace(groupConfig, `rpo_threshold = "5m"`, "alert_threshold_percent = 0", 1), `:12: alert_threshold_percent: group web01: alert_threshold_percent 0: want a percentage of the retention volume above 0 and at most 50`},
		{"pair alert threshold", strings.Replace(groupConfig, `retention = "6h"`, "alert_threshold_percent = 51", 1), `:23: alert_threshold_percent: pair 2 (sdb): alert_threshold_percent 51: want`},
		{"defaults alert threshold", strings.Replace(groupConfig, "[defaults]\n", "[defaults]\nalert_threshold_percent = -1\n", 1), `:6: alert_threshold_percent: [defaults]: alert_threshold_percent -1`},
		{"pair id is a group", strings.Replace(groupConfig, `disk = "sdc"`, `disk = "web01"`, 1), `pair 3 (web01): its id "web01" is a [[group]]'s name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.edit)
			_, err := LoadConfig(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("error %v, want it to start with the file and contain %q", err, tc.want)
			}
		})
	}
}

// alert_threshold_percent is a policy setting: a pair's own, then its
// group's, then [defaults]', then [agent]'s (older files), then 5.
func TestLoadConfigAlertThreshold(t *testing.T) {
	text := "[agent]\nalert_threshold_percent = 7\n" + strings.Replace(groupConfig, `rpo_threshold = "5m"`, "alert_threshold_percent = 20", 1)
	text = strings.Replace(text, `retention = "6h"`, "alert_threshold_percent = 30", 1)
	fc, err := LoadConfig(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	var got []float64
	for _, p := range fc.ClientConfig().Pairs {
		got = append(got, p.AlertPercent)
	}
	if want := []float64{20, 30, 7}; !slices.Equal(got, want) || fc.DefaultAlert() != 7 {
		t.Fatalf("alert thresholds %v (default %v), want %v (default 7)", got, fc.DefaultAlert(), want)
	}
	text = strings.Replace(text, "[defaults]\n", "[defaults]\nalert_threshold_percent = 9\n", 1)
	if fc, err = LoadConfig(writeConfig(t, text)); err != nil {
		t.Fatal(err)
	}
	if p := fc.ClientConfig().Pairs[2]; p.AlertPercent != 9 || fc.DefaultAlert() != 9 {
		t.Fatalf("[defaults] over [agent]: %v, default %v, want 9", p.AlertPercent, fc.DefaultAlert())
	}
	if fc, err = LoadConfig(writeConfig(t, groupConfig)); err != nil {
		t.Fatal(err)
	}
	if p := fc.ClientConfig().Pairs[2]; p.AlertPercent != DefaultAlertPercent {
		t.Fatalf("none set: %v, want %v", p.AlertPercent, DefaultAlertPercent)
	}
}

// sparse is a policy setting like retention: a group's tiers reach its
// pairs, "none" clears them, and tiers that break a rule, or no longer end
// at a window a pair changes, are refused naming the file, line and key.
func TestLoadConfigSparse(t *testing.T) {
	text := strings.Replace(groupConfig, `rpo_threshold = "5m"`, `rpo_threshold = "5m"
sparse = "all 2h; 1 FS per 1h for 10h"`, 1)
	text = strings.Replace(text, `retention = "6h"`, `sparse = "none"`, 1)
	fc, err := LoadConfig(writeConfig(t, text))
	if err != nil {
		t.Fatal(err)
	}
	c := fc.ClientConfig()
	tiers := c.Pairs[0].Policy.Tiers
	if len(tiers) != 2 || tiers[1] != (journal.Tier{Start: 2 * time.Hour, Duration: 10 * time.Hour, Granularity: time.Hour, Count: 1, App: "FS"}) {
		t.Fatalf("pair sda tiers %+v", tiers)
	}
	if len(c.Pairs[1].Policy.Tiers) != 0 || len(c.Pairs[2].Policy.Tiers) != 0 {
		t.Fatalf("tiers where none were set: %+v %+v", c.Pairs[1].Policy.Tiers, c.Pairs[2].Policy.Tiers)
	}
	for _, tc := range []struct{ name, edit, want string }{
		{"window changed", strings.Replace(text, `sparse = "none"`, `retention = "6h"`, 1), `:24: retention: pair 2 (sdb): sparse "all 2h; 1 FS per 1h for 10h" with retention 6 hours: the last tier ends at 12 hours but the retention window is 6 hours`},
		{"tagcount 0", strings.Replace(text, `1 FS per 1h`, `0 FS per 1h`, 1), `:13: sparse: group web01: sparse "all 2h; 0 FS per 1h for 10h" with retention 12 hours: tier 2 tagcount: 0: must be at least 1`},
		{"not contiguous", strings.Replace(text, `"all 2h; 1 FS per 1h for 10h"`, `"all 2h; 1 per 1h for 5h; 1 per 2h for 4h"`, 1), `:13: sparse: group web01: sparse "all 2h; 1 per 1h for 5h; 1 per 2h for 4h" with retention 12 hours: the last tier ends at 11 hours`},
		{"granularity", strings.Replace(text, `1 FS per 1h for 10h`, `1 FS per 11h for 10h`, 1), `tier 2 granularity: 11 hours is longer than the tier's duration 10 hours`},
		{"syntax", strings.Replace(text, `1 FS per 1h for 10h`, `1 FS every 1h for 10h`, 1), `:13: sparse: group web01: sparse: tier 2 "1 FS every 1h for 10h": not`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeConfig(t, tc.edit)
			_, err := LoadConfig(p)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), p) {
				t.Fatalf("error %v, want it to start with the file and contain %q", err, tc.want)
			}
		})
	}
}
