package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

// The file holds the new bytes with the mode asked for, the directory is
// made, and a failed write leaves the old file and no temporary one.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f.conf")
	if err := Write(p, []byte("one\n"), 0o600, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("two\n"), 0o640, 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	fi, _ := os.Stat(p)
	di, _ := os.Stat(filepath.Dir(p))
	if err != nil || string(b) != "two\n" || fi.Mode().Perm() != 0o640 || di.Mode().Perm() != 0o700 {
		t.Fatalf("%q %v %v %v", b, err, fi.Mode(), di.Mode())
	}
	// a directory where the file should go: the rename fails
	bad := filepath.Join(dir, "sub", "isdir")
	if err := os.MkdirAll(filepath.Join(bad, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(bad, []byte("x"), 0o600, 0o700); err == nil {
		t.Fatal("replaced a non-empty directory")
	}
	ents, _ := os.ReadDir(filepath.Join(dir, "sub"))
	if len(ents) != 2 {
		t.Errorf("left %d entries, want f.conf and isdir: %v", len(ents), ents)
	}
}
