package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// What this binary is. Release builds (scripts/package.sh) set them with
// -ldflags "-X main.version=... -X main.commit=... -X main.date=...";
// other builds take what the Go toolchain stamped (debug.ReadBuildInfo:
// the module version, vcs.revision, vcs.time, vcs.modified), and
// version stays "0.1.0-dev" when it stamped none (go build -buildvcs=false,
// a git worktree, whose .git is a file the toolchain does not look in, or
// a tree without git). dirty is "true" for a tree with uncommitted changes.
var (
	version = ""
	commit  = ""
	date    = ""
	dirty   = ""
)

// build is the binary's identity as `mtconsole version --json` prints it.
type build struct {
	Version  string `json:"version"`
	Commit   string `json:"commit"`             // the git revision, "" when unknown
	Date     string `json:"date"`               // the commit's time (RFC 3339), "" when unknown
	Modified bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

// devVersion is the version of a build nothing stamped.
const devVersion = "0.1.0-dev"

func init() { version = readBuild(debug.ReadBuildInfo).Version }

// readBuild fills what -ldflags did not set from the build info.
func readBuild(info func() (*debug.BuildInfo, bool)) build {
	b := build{Version: version, Commit: commit, Date: date, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := info()
	if ok {
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Commit == "" {
					b.Commit = s.Value
				}
			case "vcs.time":
				if b.Date == "" {
					b.Date = s.Value
				}
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	if dirty == "true" {
		b.Modified = true
	}
	if b.Version == "" {
		b.Version = devVersion
	}
	return b
}

// String is the one line of `mtconsole version` and --version.
func (b build) String() string {
	s := "mtconsole " + b.Version
	if b.Commit != "" {
		c := b.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		s += " (commit " + c
		if b.Modified {
			s += ", modified"
		}
		if b.Date != "" {
			s += ", " + b.Date
		}
		s += ")"
	}
	return s + " " + b.Go + " " + b.Platform
}

// addBuildCommands adds version and man to root and makes --version print
// what version prints.
func addBuildCommands(root *cobra.Command) {
	root.Version = version
	root.SetVersionTemplate(readBuild(debug.ReadBuildInfo).String() + "\n")
	root.AddCommand(newVersionCmd(), newManCmd())
}

func newVersionCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print the version, git commit and build date of this binary",
		Long: `version prints what this binary is: its version, the git commit it was
built from (", modified" when the tree had uncommitted changes), the
commit's date, the Go version and the platform. --json prints them as an
object: version, commit, date, modified, go, platform.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout(), readBuild(debug.ReadBuildInfo), asJSON)
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printVersion(out io.Writer, b build, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(b)
	}
	_, err := fmt.Fprintln(out, b.String())
	return err
}

func newManCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "man DIR",
		Short: "Write the manual pages (section 1) of mtconsole and its commands into DIR",
		Long: `man writes one manual page per command into DIR (made if missing):
mtconsole.1, mtconsole-status.1, mtconsole-cs-serve.1 and so on, from the
same help text as --help. The packages install them in /usr/share/man/man1.`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return writeMan(cmd.Root(), args[0])
		},
	}
	return c
}

func writeMan(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man: %w", err)
	}
	// No date in the pages: the same tree makes the same package.
	root.DisableAutoGenTag = true
	h := &doc.GenManHeader{Title: "MTCONSOLE", Section: "1", Source: "mtconsole " + version, Manual: "mtconsole manual"}
	if err := doc.GenManTree(root, h, dir); err != nil {
		return fmt.Errorf("man: write the pages into %s: %w", filepath.Clean(dir), err)
	}
	return nil
}
