package vsphere_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks/vsphere"
)

func confFile(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vsphere.conf")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

var thumb = strings.Repeat("AB:", 31) + "AB"

// TestLoadConfig: the TOML file and the earlier key = value file load to
// the same connection; what is wrong names the file, the line and the key.
func TestLoadConfig(t *testing.T) {
	want := vsphere.ConfigFile{URL: "vc.example", User: "mt@vsphere.local", PasswordFile: "/etc/mtconsole/vsphere.pw", Thumbprint: thumb}
	tomlText := "# the console's vSphere\nurl = \"vc.example\"\nuser = \"mt@vsphere.local\"\npassword_file = '/etc/mtconsole/vsphere.pw'\n\n" +
		"thumbprint = \"" + thumb + "\"  # SHA-256\n"
	legacyText := "# the console's vSphere\nurl = vc.example\nuser = mt@vsphere.local\npassword_file = \"/etc/mtconsole/vsphere.pw\"\n" +
		"thumbprint = " + thumb + "\n"
	for name, text := range map[string]string{"toml": tomlText, "legacy": legacyText} {
		got, err := vsphere.LoadConfig(confFile(t, text, 0o600))
		if err != nil || got != want {
			t.Errorf("%s: %+v %v, want %+v", name, got, err, want)
		}
	}
	withStore, err := vsphere.LoadConfig(confFile(t, "url = \"vc\"\ntrust_store = \"/etc/mtconsole/vsphere_known_hosts\"\n", 0o600))
	if err != nil || withStore.TrustStore != "/etc/mtconsole/vsphere_known_hosts" {
		t.Errorf("trust_store: %+v %v", withStore, err)
	}

	for _, tc := range []struct{ name, text, want string }{
		{"toml password", tomlText + "password = \"x\"\n", ":7: no password here"},
		{"legacy password", legacyText + "password = x\n", ":6: no password here"},
		{"toml unknown key", tomlText + "insecure = true\n", `:7: unknown key "insecure"`},
		{"legacy unknown key", legacyText + "insecure = true\n", `:6: unknown key "insecure"`},
		{"toml table", tomlText + "[vsphere]\nurl = \"x\"\n", `:7: unknown key "vsphere"`},
		{"bad line", tomlText + "thumbprint\n", `:7: expected '.' or '='`},
		{"bad line in the earlier format", legacyText + "thumbprint\n", `:6: want key = "value"`},
		{"wrong type", "url = 5\nuser = \"u\"\n", `: toml: line 1 (last key "url"): incompatible types`},
	} {
		p := confFile(t, tc.text, 0o600)
		_, err := vsphere.LoadConfig(p)
		if err == nil || !strings.Contains(err.Error(), p+tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, p+tc.want)
		}
	}
	p := confFile(t, tomlText, 0o644)
	if _, err := vsphere.LoadConfig(p); err == nil || !strings.Contains(err.Error(), p+": mode 0644") || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("loose mode: %v", err)
	}
	if _, err := vsphere.LoadConfig(filepath.Join(t.TempDir(), "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no file: %v", err)
	}
}
