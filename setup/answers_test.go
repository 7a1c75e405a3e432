package setup

import (
	"errors"
	"strings"
	"testing"
)

func TestExampleAnswers(t *testing.T) {
	a, err := LoadAnswers("../scripts/examples/mt.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a.Role != RoleMT || a.InstallDir != "/usr/local" || a.Disks.Retention != "/mnt/retention" || !a.CustomChanges.Apply ||
		a.ConfigServer.Port != 443 || a.ConfigServer.PassphraseFile != "/root/passphrase.txt" || a.VSphere != nil {
		t.Errorf("%+v", a)
	}
	// What Marshal writes reads back the same.
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseAnswers("used.yaml", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b2, _ := back.Marshal()
	if string(b) != string(b2) {
		t.Errorf("round trip:\n%s\n---\n%s", b, b2)
	}
}

func TestAnswersErrors(t *testing.T) {
	cases := []struct {
		name, text string
		want       []string // each must appear in the error
	}{
		{"unknown version", "version: 2\nrole: mt\n", []string{"a.yaml:1: version: 2 is not known: this mtconsole reads version 1"}},
		{"no version", "role: mt\n", []string{"a.yaml:1: version: missing"}},
		{"empty", "", []string{"the file is empty"}},
		{"not yaml", "version: [1\n", []string{"a.yaml:"}},
		{"unknown key", "version: 1\nrol: mt\n", []string{"a.yaml:2: rol: unknown key (known here: config_server, custom_changes, disks, install_dir, prerequisites, protect, role, version, vsphere)"}},
		{"unknown nested key", "version: 1\ndisks:\n  retension: /mnt/r\n", []string{"a.yaml:3: disks.retension: unknown key"}},
		{"bad role", "version: 1\nrole: agent\n", []string{`a.yaml:2: role: "agent" is not a role`}},
		{"string for int", "version: 1\nconfig_server:\n  port: https\n", []string{`a.yaml:3: config_server.port: "https" is not a whole number`}},
		{"quoted int", "version: 1\nconfig_server:\n  port: \"443\"\n", []string{`config_server.port: "443" is not a whole number`}},
		{"port range", "version: 1\nconfig_server:\n  port: 70000\n", []string{"a.yaml:3: config_server.port: 70000 is not a port"}},
		{"string for bool", "version: 1\ncustom_changes:\n  apply: yes please\n", []string{`a.yaml:3: custom_changes.apply: "yes please" is not true or false`}},
		{"list for bool", "version: 1\nprerequisites:\n  install_packages: [true]\n", []string{"a.yaml:3: prerequisites.install_packages: want true or false"}},
		{"relative path", "version: 1\ninstall_dir: usr/local\n", []string{`a.yaml:2: install_dir: "usr/local" is not an absolute path`}},
		{"targets not a list", "version: 1\ndisks:\n  targets: sdc\n", []string{"a.yaml:3: disks.targets: want a list"}},
		{"target path", "version: 1\ndisks:\n  targets: [sdc, /dev/disk/by-id/x]\n", []string{"disks.targets[1]: want a kernel disk name"}},
		{"negative size", "version: 1\ndisks:\n  retention_size_gb: -1\n", []string{"disks.retention_size_gb: must not be negative"}},
		{"secret", "version: 1\nconfig_server:\n  passphrase: hunter2hunter2hunter2\n", []string{"a.yaml:3: config_server.passphrase: no secrets"}},
		{"twice", "version: 1\nrole: mt\nrole: ps\n", []string{"a.yaml:3: role: given twice"}},
		{"section not a map", "version: 1\ndisks: /dev/sdb\n", []string{"a.yaml:2: disks: want a mapping"}},
		{"vsphere without address", "version: 1\nvsphere:\n  user: admin\n", []string{"a.yaml:3: vsphere: vsphere needs an address"}},
		{"protect not a list", "version: 1\nprotect:\n  group: web01\n", []string{"a.yaml:3: protect: want a list of machines to protect"}},
		{"protect no group, no map", "version: 1\nprotect:\n  - ps: ps:9443\n", []string{"a.yaml:3: protect[0]: group: missing", "a.yaml:3: protect[0]: map: missing"}},
		{"protect bad group", "version: 1\nprotect:\n  - group: web 01\n    map: {sda: /dev/sdc}\n", []string{`a.yaml:3: protect[0].group: name "web 01": ' ' is not allowed`}},
		{"protect group twice", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n  - group: web01\n    map: {sdb: /dev/sdd}\n", []string{`a.yaml:5: protect[1].group: group "web01" is protected twice`}},
		{"protect unknown key", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    retension: 3d\n", []string{"a.yaml:5: protect[0].retension: unknown key (known here: alert_threshold_percent, allow_files, allow_no_scsi_id, consistency_interval, group, map"}},
		{"protect map not a map", "version: 1\nprotect:\n  - group: web01\n    map: sda=/dev/sdc\n", []string{"a.yaml:4: protect[0].map: want source disks to targets"}},
		{"protect map target twice", "version: 1\nprotect:\n  - group: web01\n    map:\n      sda: /dev/sdc\n      sdb: /dev/sdc\n", []string{"a.yaml:6: protect[0].map.sdb: target /dev/sdc is given for sda too"}},
		{"protect map disk twice", "version: 1\nprotect:\n  - group: web01\n    map:\n      sda: /dev/sdc\n      sda: /dev/sdd\n", []string{"a.yaml:"}},
		{"protect map empty target", "version: 1\nprotect:\n  - group: web01\n    map: {sda: \"\"}\n", []string{"a.yaml:4: protect[0].map.sda: want the target"}},
		{"protect bad retention", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    retention: forever\n", []string{`a.yaml:5: protect[0].retention: retention window "forever"`}},
		{"protect bad on_full", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    on_full: explode\n", []string{"a.yaml:5: protect[0].on_full:"}},
		{"protect negative cap", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    size_cap_mb: -5\n", []string{"a.yaml:5: protect[0].size_cap_mb: must not be negative"}},
		{"protect bad rpo", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    rpo_threshold: soon\n", []string{`a.yaml:5: protect[0].rpo_threshold: "soon": want a duration`}},
		{"protect alert threshold 0", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    alert_threshold_percent: 0\n", []string{`a.yaml:5: protect[0].alert_threshold_percent: alert_threshold_percent 0: want a percentage of the retention volume above 0 and at most 50`}},
		{"protect alert threshold 60", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    alert_threshold_percent: 60\n", []string{`a.yaml:5: protect[0].alert_threshold_percent: alert_threshold_percent 60: want`}},
		{"protect sparse syntax", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    sparse: all 1d; 1 every 1h\n", []string{`a.yaml:5: protect[0].sparse: tier 2 "1 every 1h": not`}},
		{"protect sparse window", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    sparse: all 1d; 1 per 1h for 6d\n    retention: 3d\n", []string{`a.yaml:5: protect[0].sparse: the last tier ends at 7 days but the retention window is 3 days: they must be equal (retention is 3 days)`}},
		{"protect sparse tagcount 0", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    sparse: all 1d; 0 per 1h for 6d\n    retention: 7d\n", []string{`a.yaml:5: protect[0].sparse: tier 2 tagcount: 0: must be at least 1`}},
		{"protect sparse granularity", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    sparse: all 1d; 1 per 2d for 1d\n", []string{`a.yaml:5: protect[0].sparse: tier 2 granularity: 2 days is longer than the tier's duration 1 day`}},
		{"protect alert threshold text", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    alert_threshold_percent: high\n", []string{`a.yaml:5: protect[0].alert_threshold_percent: "high" is not a number`}},
		{"protect short interval", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    consistency_interval: 10s\n", []string{`a.yaml:5: protect[0].consistency_interval: "10s": want a duration of at least 1m`}},
		{"protect overwrite not a target", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    overwrite: [sdd]\n", []string{`a.yaml:3: protect[0].overwrite: "sdd" is not a target of map`}},
		{"protect secret", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    passphrase: hunter2hunter2\n", []string{"a.yaml:5: protect[0].passphrase: no secrets"}},
		{"protect relative passphrase file", "version: 1\nprotect:\n  - group: web01\n    map: {sda: /dev/sdc}\n    passphrase_file: passphrase\n", []string{`a.yaml:5: protect[0].passphrase_file: "passphrase" is not an absolute path`}},
		{"several", "version: 3\nrole: x\nfoo: 1\n", []string{"a.yaml:1: version", "a.yaml:2: role", "a.yaml:3: foo"}},
	}
	for _, c := range cases {
		_, err := ParseAnswers("a.yaml", []byte(c.text))
		var ae *AnswersError
		if !errors.As(err, &ae) {
			t.Errorf("%s: error %v is not an AnswersError", c.name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error\n%s\nlacks %q", c.name, err, w)
			}
		}
	}
}

func TestAnswersValid(t *testing.T) {
	a, err := ParseAnswers("a.yaml", []byte("version: 1\nrole: PS\ndisks:\n  targets: [/dev/sdc, sdd]\n  retention_size_gb: 500\nvsphere:\n  address: vc\n  insecure: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Role != RolePS || strings.Join(a.Disks.Targets, ",") != "sdc,sdd" || a.Disks.RetentionSizeGB != 500 || a.VSphere == nil || !a.VSphere.Insecure || a.ConfigServer.Port != 443 {
		t.Errorf("%+v", a)
	}
}

// A protect: section reads into ProtectAnswer, each with its line, and
// what Marshal writes reads back the same.
func TestAnswersProtect(t *testing.T) {
	text := `version: 1
protect:
  - group: web01
    ps: ps.example.com:9443
    passphrase_file: /etc/mtconsole/passphrase
    trust_fingerprint: SHA256:abc
    map: {sda: /dev/disk/by-id/scsi-3600a, sdb: /dev/sdd}
    retention: 3d
    size_cap_mb: 0
    on_full: purge
    rpo_threshold: 15m
    alert_threshold_percent: 7.5
    consistency_interval: 15m
    overwrite: [sdd]
  - group: db01
    map:
      sdc: /dev/sde
    consistency_interval: 0
    allow_files: true
    allow_no_scsi_id: true
`
	a, err := ParseAnswers("a.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Protect) != 2 {
		t.Fatalf("%+v", a.Protect)
	}
	w := a.Protect[0]
	if w.Group != "web01" || w.PS != "ps.example.com:9443" || w.PassphraseFile != "/etc/mtconsole/passphrase" || w.TrustFingerprint != "SHA256:abc" ||
		len(w.Map) != 2 || w.Map["sda"] != "/dev/disk/by-id/scsi-3600a" || w.Map["sdb"] != "/dev/sdd" || w.Retention != "3d" ||
		w.SizeCapMB == nil || *w.SizeCapMB != 0 || w.OnFull != "purge" || w.RPOThreshold != "15m" || w.ConsistencyInterval != "15m" ||
		strings.Join(w.Overwrite, ",") != "sdd" || w.AllowFiles || w.Line != 3 || w.AlertThresholdPercent == nil || *w.AlertThresholdPercent != 7.5 {
		t.Errorf("web01 %+v", w)
	}
	d := a.Protect[1]
	if d.Group != "db01" || d.Map["sdc"] != "/dev/sde" || d.SizeCapMB != nil || d.ConsistencyInterval != "0" || !d.AllowFiles || !d.AllowNoSCSIID || d.Line != 15 || d.AlertThresholdPercent != nil {
		t.Errorf("db01 %+v", d)
	}
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseAnswers("used.yaml", b)
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	b2, _ := back.Marshal()
	if string(b) != string(b2) || len(back.Protect) != 2 || back.Protect[0].Map["sdb"] != "/dev/sdd" || *back.Protect[0].SizeCapMB != 0 {
		t.Errorf("round trip:\n%s\n---\n%s", b, b2)
	}
}
