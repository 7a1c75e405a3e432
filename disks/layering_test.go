package disks

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportsNothingAbove: the disks tree states facts; judging them
// (package setup) and everything else of mtconsole sit above it, so no
// package here imports them: only disks/... and internal/... .
func TestImportsNothingAbove(t *testing.T) {
	const mod = "github.com/mtconsole/mtconsole/"
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			rest, ok := strings.CutPrefix(path, mod)
			if ok && !strings.HasPrefix(rest, "disks/") && rest != "disks" && !strings.HasPrefix(rest, "internal/") {
				t.Errorf("%s imports %s: the disks tree imports nothing above it", p, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
