package scripts

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// packageFiles is what the .deb holds besides the man pages, with each
// file's mode as dpkg-deb -c shows it (a symlink's target after ->).
var packageFiles = map[string]string{
	"./etc/mtconsole/":                                     "drwx------",
	"./etc/mtconsole/ps.env":                               "-rw-------",
	"./usr/bin/mtconsole":                                  "-rwxr-xr-x",
	"./usr/bin/hostconfigcli":                              "lrwxrwxrwx -> mtconsole",
	"./usr/lib/systemd/system/mtconsole-agent.service":     "-rw-r--r--",
	"./usr/lib/systemd/system/mtconsole-ps.service":        "-rw-r--r--",
	"./usr/lib/systemd/system/mtconsole-cs.service":        "-rw-r--r--",
	"./usr/share/bash-completion/completions/mtconsole":    "-rw-r--r--",
	"./usr/share/zsh/vendor-completions/_mtconsole":        "-rw-r--r--",
	"./usr/share/fish/vendor_completions.d/mtconsole.fish": "-rw-r--r--",
	"./usr/share/doc/mtconsole/README.md":                  "-rw-r--r--",
}

// TestPackages builds the amd64 .deb and .rpm with scripts/package.sh and
// checks what they hold: the file list and modes, the conffile, the
// maintainer scripts, a static binary that names this tree's commit, and
// the hostconfigcli link opening the host config screen.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the packages")
	}
	for _, tool := range []string{"dpkg-deb", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("no %s", tool)
		}
	}
	dist := t.TempDir()
	c := exec.Command("bash", "scripts/package.sh")
	c.Dir = ".."
	c.Env = append(os.Environ(), "ARCHS=amd64", "DIST="+dist, "VERSION=")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dist, "mtconsole_*_amd64.deb"))
	rpms, _ := filepath.Glob(filepath.Join(dist, "mtconsole-*.x86_64.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("dist holds %v %v, want one amd64 .deb and one x86_64 .rpm", debs, rpms)
	}

	// The file list and modes.
	out, err := exec.Command("dpkg-deb", "-c", debs[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	var man []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb -c line %q", l)
		}
		if f[1] != "root/root" {
			t.Errorf("%s is owned by %s, want root/root", f[5], f[1])
		}
		path, mode := f[5], f[0]
		if len(f) == 8 && f[6] == "->" {
			mode += " -> " + f[7]
		}
		if strings.HasPrefix(path, "./usr/share/man/man1/") && path != "./usr/share/man/man1/" {
			man = append(man, strings.TrimPrefix(path, "./usr/share/man/man1/"))
			if mode != "-rw-r--r--" {
				t.Errorf("%s: %s", path, mode)
			}
			continue
		}
		if mode[0] == 'd' && packageFiles[path] == "" {
			continue // a parent directory
		}
		got[path] = mode
	}
	for path, want := range packageFiles {
		if got[path] != want {
			t.Errorf("%s: %q, want %q", path, got[path], want)
		}
	}
	for path := range got {
		if _, ok := packageFiles[path]; !ok {
			t.Errorf("the .deb holds %s (%s), not in the list", path, got[path])
		}
	}
	sort.Strings(man)
	for _, page := range []string{"mtconsole.1.gz", "mtconsole-agent.1.gz", "mtconsole-ps.1.gz", "mtconsole-cs-serve.1.gz", "mtconsole-install.1.gz", "mtconsole-version.1.gz"} {
		if i := sort.SearchStrings(man, page); i == len(man) || man[i] != page {
			t.Errorf("no man page %s in %v", page, man)
		}
	}

	// The conffile and the maintainer scripts.
	ctrl := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-e", debs[0], ctrl).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -e: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(filepath.Join(ctrl, "conffiles")); string(b) != "/etc/mtconsole/ps.env\n" {
		t.Errorf("conffiles %q, want /etc/mtconsole/ps.env", b)
	}
	for script, src := range map[string]string{"postinst": "postinstall.sh", "prerm": "preremove.sh", "postrm": "postremove.sh"} {
		b, err := os.ReadFile(filepath.Join(ctrl, script))
		want, _ := os.ReadFile(filepath.Join("package", src))
		if err != nil || string(b) != string(want) {
			t.Errorf("%s is not scripts/package/%s (%v)", script, src, err)
		}
	}

	// The binary: static, and this tree's commit.
	root := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	bin := filepath.Join(root, "usr/bin/mtconsole")
	if err := staticELF(bin); err != nil {
		t.Error(err)
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	vout, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var v struct{ Version, Commit, Date string }
	if err := json.Unmarshal(vout, &v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, vout)
	}
	if v.Commit != strings.TrimSpace(string(head)) || v.Date == "" || !strings.Contains(debs[0], "_"+v.Version+"-1_") {
		t.Errorf("the packaged binary says %+v; the tree is at %s, the package is %s", v, head, filepath.Base(debs[0]))
	}
	hout, err := exec.Command(filepath.Join(root, "usr/bin/hostconfigcli"), "--help").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(hout), "hostconfig opens the screen") {
		t.Errorf("hostconfigcli --help: %v\n%s", err, hout)
	}

	// The .rpm holds the same, zsh's completion in site-functions.
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Log("no rpm (apt install rpm): the .rpm's contents are not checked")
		return
	}
	rout, err := exec.Command("rpm", "-qp", "--queryformat", "[%{FILENAMES} %{FILEMODES:perms}\n]", rpms[0]).Output()
	if err != nil {
		t.Fatal(err)
	}
	rgot := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(rout)), "\n") {
		path, mode, _ := strings.Cut(l, " ")
		if !strings.HasPrefix(path, "/usr/share/man/man1/") {
			rgot[path] = mode
		}
	}
	for path, want := range packageFiles {
		path = strings.TrimSuffix(strings.TrimPrefix(path, "."), "/")
		want, _, _ = strings.Cut(want, " ")
		if path == "/usr/share/zsh/vendor-completions/_mtconsole" {
			path = "/usr/share/zsh/site-functions/_mtconsole"
		}
		// A symlink's mode means nothing on Linux; nfpm leaves it 0 in the .rpm.
		if rgot[path] != want && !(want[0] == 'l' && strings.HasPrefix(rgot[path], "l")) {
			t.Errorf(".rpm %s: %q, want %q", path, rgot[path], want)
		}
	}
	if len(rgot) != len(packageFiles) {
		t.Errorf(".rpm holds %d files besides the man pages, want %d: %v", len(rgot), len(packageFiles), rgot)
	}
	cfg, _ := exec.Command("rpm", "-qcp", rpms[0]).Output()
	if strings.TrimSpace(string(cfg)) != "/etc/mtconsole/ps.env" {
		t.Errorf(".rpm config files %q", cfg)
	}
}
