package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMaintainerScripts runs the packages' scripts as dpkg and rpm call
// them, with a systemctl that only logs its arguments: systemd is
// reloaded only where it runs, the running units are restarted on an
// upgrade, and they are stopped and disabled on a removal, never on an
// upgrade.
func TestMaintainerScripts(t *testing.T) {
	bin := t.TempDir()
	log := filepath.Join(t.TempDir(), "systemctl.log")
	os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho \"$*\" >>"+log+"\n"), 0o755)
	running := t.TempDir() // stands for /run/systemd/system
	units := "mtconsole-agent.service mtconsole-ps.service mtconsole-cs.service"
	cases := []struct {
		script string
		args   []string
		want   []string // systemctl calls
	}{
		{"postinstall.sh", []string{"configure", ""}, []string{"daemon-reload"}},                              // deb install
		{"postinstall.sh", []string{"configure", "0.1.0"}, []string{"daemon-reload", "try-restart " + units}}, // deb upgrade
		{"postinstall.sh", []string{"1"}, []string{"daemon-reload"}},                                          // rpm install
		{"postinstall.sh", []string{"2"}, []string{"daemon-reload", "try-restart " + units}},                  // rpm upgrade
		{"preremove.sh", []string{"remove"}, []string{"disable --now " + units}},                              // deb remove
		{"preremove.sh", []string{"upgrade", "0.2.0"}, nil},                                                   // deb upgrade
		{"preremove.sh", []string{"0"}, []string{"disable --now " + units}},                                   // rpm erase
		{"preremove.sh", []string{"1"}, nil},                                                                  // rpm upgrade
		{"postremove.sh", []string{"remove"}, []string{"daemon-reload"}},                                      // deb
		{"postremove.sh", []string{"0"}, []string{"daemon-reload"}},                                           // rpm
	}
	run := func(script string, args []string, systemd string) []string {
		t.Helper()
		os.Remove(log)
		c := exec.Command("sh", append([]string{filepath.Join("package", script)}, args...)...)
		c.Env = append(os.Environ(), "PATH="+bin+":/usr/bin:/bin", "MTCONSOLE_SYSTEMD_DIR="+systemd)
		if out, err := c.CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", script, args, err, out)
		}
		b, _ := os.ReadFile(log)
		if len(b) == 0 {
			return nil
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	for _, c := range cases {
		if got := run(c.script, c.args, running); strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s %q with systemd: systemctl %q, want %q", c.script, c.args, got, c.want)
		}
		// No systemd (a container, a chroot): no systemctl at all.
		if got := run(c.script, c.args, filepath.Join(running, "absent")); got != nil {
			t.Errorf("%s %q without systemd ran systemctl %q", c.script, c.args, got)
		}
	}
}
