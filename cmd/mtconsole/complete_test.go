package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// complete runs `mtconsole __complete args...` as the shell scripts do
// and returns the candidates and the directive.
func complete(t *testing.T, args ...string) ([]string, cobra.ShellCompDirective) {
	t.Helper()
	out, _, err := run(t, append([]string{cobra.ShellCompRequestCmd}, args...)...)
	if err != nil {
		t.Fatalf("__complete %q: %v", args, err)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, ":") {
		t.Fatalf("__complete %q: no directive in %q", args, out)
	}
	var d int
	for _, r := range last[1:] {
		d = d*10 + int(r-'0')
	}
	return lines[:len(lines)-1], cobra.ShellCompDirective(d)
}

func candNames(cands []string) []string {
	var out []string
	for _, c := range cands {
		n, _, _ := strings.Cut(c, "\t")
		out = append(out, n)
	}
	return out
}

func wantCands(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(candNames(got), want) {
		t.Errorf("%s: candidates %q, want %q", what, got, want)
	}
}

func TestCompletionFromTheAgent(t *testing.T) {
	fx := newFixture(t)
	sock := runningAgent(t, fx)
	got, dir := complete(t, "pause", "--socket", sock, "")
	wantCands(t, "pause", got, fxPair)
	if dir != cobra.ShellCompDirectiveNoFileComp {
		t.Errorf("pause: directive %d", dir)
	}
	got, _ = complete(t, "pause", "--socket", sock, "p1", "")
	wantCands(t, "pause after its one argument", got)
	got, _ = complete(t, "recover", "--socket", sock, "--pairs", "")
	wantCands(t, "recover --pairs", got, fxPair)
	got, _ = complete(t, "recover", "--socket", sock, "--point", "tag:u")
	wantCands(t, "recover --point tag:u", got, "tag:userdefined-04", "tag:userdefined-08", "tag:userdefined-12")
	if !strings.Contains(got[0], "\tUSERDEFINED 2026-11-26T10:00:") {
		t.Errorf("tag candidate %q lacks its application and time", got[0])
	}
	got, _ = complete(t, "recover", "--socket", sock, "--point", "tagid:id-fs-0")
	wantCands(t, "recover --point tagid:", got, "tagid:id-fs-02", "tagid:id-fs-06")
	got, dir = complete(t, "recover", "--socket", sock, "--point", "latest")
	wantCands(t, "recover --point latest", got, "latest-tag", "latest-time", "latest-app-consistent", "latest-app")
	got, dir = complete(t, "recover", "--point", "ta")
	wantCands(t, "recover --point ta", got, "tag:", "tagid:")
	if dir&cobra.ShellCompDirectiveNoSpace == 0 {
		t.Error("tag: must not be followed by a space")
	}
	got, _ = complete(t, "recover", "--mode", "")
	wantCands(t, "recover --mode", got, "export", "rollback")
}

func TestCompletionWithoutTheAgent(t *testing.T) {
	fx := newFixture(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "agent.toml")
	os.WriteFile(cfg, []byte("[agent]\njournal_dir = \""+dir+"/j\"\nretention_dir = \""+dir+"/r\"\n"+
		"[process_server]\naddress = \"ps:9443\"\npassphrase_file = \""+dir+"/pass\"\n"+
		"[[group]]\nname = \"web01\"\n"+
		"[[pair]]\ndisk = \"sda\"\ntarget = \"/dev/sdc\"\ngroup = \"web01\"\n"+
		"[[pair]]\ndisk = \"sdb\"\ntarget = \"/dev/sdd\"\ngroup = \"web01\"\n"+
		"[[pair]]\ndisk = \"sde\"\ntarget = \"/dev/sdf\"\n"), 0o600)
	noAgent := filepath.Join(dir, "none.sock")
	got, _ := complete(t, "unprotect", "--socket", noAgent, "--config", cfg, "")
	wantCands(t, "unprotect from agent.toml", got, "sde", "web01", "sda", "sdb")
	got, _ = complete(t, "unprotect", "--socket", noAgent, "--config", cfg, "w")
	wantCands(t, "unprotect w", got, "web01")
	// No agent, no file: nothing, and no error in the shell.
	got, _ = complete(t, "unprotect", "--socket", noAgent, "--config", filepath.Join(dir, "absent.toml"), "")
	wantCands(t, "unprotect with nothing to read", got)
	// The store of --dir, read-only.
	got, _ = complete(t, "retention", "recover", "--dir", fx.retDir, "--point", "tag:fs")
	wantCands(t, "retention recover --point tag:fs", got, "tag:fs-02", "tag:fs-06", "tag:fs-10")
}

func TestCompletionOfDisks(t *testing.T) {
	root := t.TempDir()
	for name, f := range map[string]map[string]string{
		"sda":   {"size": "41943040\n", "device/model": "QEMU HARDDISK   \n"},
		"sdb":   {"size": "2097152\n", "device/model": "VIRTUAL DISK\n"},
		"loop0": {"size": "0\n"},
		"ram0":  {"size": "8192\n"},
	} {
		for p, v := range f {
			os.MkdirAll(filepath.Join(root, name, filepath.Dir(p)), 0o755)
			os.WriteFile(filepath.Join(root, name, p), []byte(v), 0o644)
		}
	}
	old := sysBlock
	sysBlock = root
	defer func() { sysBlock = old }()
	got, _ := complete(t, "protect", "--overwrite", "")
	wantCands(t, "protect --overwrite", got, "sda", "sdb")
	if got[0] != "sda\t21.5 GB QEMU HARDDISK" {
		t.Errorf("disk candidate %q", got[0])
	}
	got, _ = complete(t, "protect", "--overwrite", "sda,")
	wantCands(t, "protect --overwrite sda,", got, "sda,sdb")
	got, _ = complete(t, "protect", "--map", "sdx=/dev/sd")
	wantCands(t, "protect --map", got, "sdx=/dev/sda", "sdx=/dev/sdb")
	got, _ = complete(t, "protect", "--map", "sdx=/dev/sda,sdy=/dev/sdb")
	wantCands(t, "protect --map second", got, "sdx=/dev/sda,sdy=/dev/sdb")
}

func TestCompletionOfLogFlags(t *testing.T) {
	got, _ := complete(t, "agent", "--log-format", "")
	wantCands(t, "--log-format", got, "auto", "text", "json", "journal")
}

func TestHelpGroups(t *testing.T) {
	out := mustRun(t, "--help")
	for _, want := range []string{"Console:\n  console ", "Replication:\n  agent ", "Recovery:\n  recover ", "Setup:\n  check ",
		"Registration:\n  hostconfig ", "vSphere:\n  vsphere ", "Servers:\n  cs ", "Additional Commands:\n  completion "} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	// Every command of the table exists, so that a rename does not drop
	// it silently into Additional Commands.
	root := newRootCmd()
	for name := range commandGroup {
		if c, _, err := root.Find([]string{name}); err != nil || c.Name() != name {
			t.Errorf("commandGroup names %q, which is no command", name)
		}
	}
}
