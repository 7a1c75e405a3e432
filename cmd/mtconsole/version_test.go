package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadBuild(t *testing.T) {
	stamped := func() (*debug.BuildInfo, bool) {
		return &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "d0f70691234567890abcdef"}, {Key: "vcs.time", Value: "2026-12-02T23:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}, true
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)

	version, commit, date = "", "", ""
	b := readBuild(stamped)
	if b.Version != devVersion || b.Commit != "d0f70691234567890abcdef" || b.Date != "2026-12-02T23:00:00Z" || !b.Modified {
		t.Fatalf("from build info: %+v", b)
	}
	if s := b.String(); !strings.HasPrefix(s, "mtconsole 0.1.0-dev (commit d0f706912345, modified, 2026-12-02T23:00:00Z) go") {
		t.Fatalf("line %q", s)
	}
	if b := readBuild(none); b.Version != devVersion || b.Commit != "" || strings.Contains(b.String(), "commit") {
		t.Fatalf("no build info: %+v %q", b, b.String())
	}
	// -ldflags -X wins over the build info.
	version, commit, date = "1.2.0", "abc", "2026-12-03T00:00:00Z"
	b = readBuild(stamped)
	if b.Version != "1.2.0" || b.Commit != "abc" || b.Date != "2026-12-03T00:00:00Z" {
		t.Fatalf("with -X: %+v", b)
	}
	var out bytes.Buffer
	if err := printVersion(&out, b, true); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got["version"] != "1.2.0" || got["commit"] != "abc" || got["modified"] != true {
		t.Fatalf("--json: %s (%v)", out.String(), err)
	}
}

func TestVersionAndManCommands(t *testing.T) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"--version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	v := out.String()
	out.Reset()
	root = newRootCmd()
	root.SetOut(&out)
	root.SetArgs([]string{"version"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	if v != out.String() || !strings.HasPrefix(v, "mtconsole "+version) {
		t.Fatalf("--version %q and version %q differ", v, out.String())
	}

	dir := filepath.Join(t.TempDir(), "man1")
	root = newRootCmd()
	root.SetArgs([]string{"man", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	for _, page := range []string{"mtconsole.1", "mtconsole-agent.1", "mtconsole-cs-serve.1", "mtconsole-version.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(`.TH "MTCONSOLE" "1"`)) {
			t.Fatalf("%s is not a section 1 page:\n%.300s", page, b)
		}
	}
	// A file in the way of DIR is an error naming it.
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o600)
	root = newRootCmd()
	root.SetArgs([]string{"man", file})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("man into a file: %v", err)
	}
}
