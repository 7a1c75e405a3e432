package scripts

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// staticELF says why the ELF file at path is not static: an interpreter
// (PT_INTERP, the dynamic loader) or shared libraries it needs
// (DT_NEEDED); nil when it has neither.
func staticELF(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			p.ReadAt(b, 0)
			return fmt.Errorf("%s is dynamically linked: interpreter %s", path, strings.TrimRight(string(b), "\x00"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v", path, libs)
	}
	return nil
}

func TestStaticELFSeesADynamicBinary(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	sh, _ = filepath.EvalSymlinks(sh)
	out, _ := exec.Command("file", "-L", sh).Output()
	if len(out) > 0 && !strings.Contains(string(out), "dynamically linked") {
		t.Skipf("%s is not dynamically linked here", sh)
	}
	if err := staticELF(sh); err == nil || !strings.Contains(err.Error(), "dynamically linked") {
		t.Fatalf("staticELF(%s) = %v, want dynamically linked", sh, err)
	}
	if err := staticELF("units.go"); err == nil {
		t.Fatal("a Go file passes for a static ELF binary")
	}
}

// readmeBuild is the README's build command (the first of "the two
// commands"), without the demo that follows it.
var readmeBuild = regexp.MustCompile(`(?m)^\s+(CGO_ENABLED=0 go build [^&\n]*-o mtconsole \./cmd/mtconsole) && \./mtconsole demo$`)

// TestREADMEBuildIsStatic builds the binary the README's way, on this
// host where gcc may well be installed, and checks it needs no dynamic
// loader nor shared library.
func TestREADMEBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := readmeBuild.FindSubmatch(readme)
	if m == nil {
		t.Fatalf("README.md has no line `CGO_ENABLED=0 go build ... -o mtconsole ./cmd/mtconsole && ./mtconsole demo`")
	}
	bin := filepath.Join(t.TempDir(), "mtconsole")
	cmd := strings.Replace(string(m[1]), "-o mtconsole", "-o "+bin, 1)
	c := exec.Command("sh", "-c", cmd)
	c.Dir = ".."
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	if err := staticELF(bin); err != nil {
		t.Fatalf("the README's build (%s): %v", m[1], err)
	}
}
