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
		{"unknown key", "version: 1\nrol: mt\n", []string{"a.yaml:2: rol: unknown key (known here: config_server, custom_changes, disks, install_dir, prerequisites, role, version, vsphere)"}},
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
