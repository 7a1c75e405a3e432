package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestSelftest(t *testing.T) {
	const tags = 10 // --writes 200 --tag-every 20
	for _, disks := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d disks", disks), func(t *testing.T) {
			dir := t.TempDir()
			out := mustRun(t, "selftest", "--disks", fmt.Sprint(disks), "--size", "2", "--writes", "200", "--tag-every", "20", "--dir", dir)

			// every tag of every disk exported, and one rollback
			checked := disks*tags + 1
			want := fmt.Sprintf("%d images checked: %d bit-exact, 0 differ;", checked, checked)
			if !strings.Contains(out, want) {
				t.Errorf("selftest output does not say %q:\n%s", want, out)
			}
			if n := strings.Count(out, "bit-exact\n"); n != checked {
				t.Errorf("%d lines end bit-exact, want %d:\n%s", n, checked, out)
			}
			if strings.Contains(out, "DIFFERS") {
				t.Errorf("selftest found a differing image:\n%s", out)
			}
			if !strings.Contains(out, "\nrolled disk0 back in place to ") {
				t.Errorf("selftest did not roll disk0 back:\n%s", out)
			}

			// The directory is kept (--dir), and the commands the selftest
			// suggests work on it.
			m := regexp.MustCompile(`mtconsole retention summary --verbose --dir (\S+)`).FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("selftest does not say how to look at the kept directory:\n%s", out)
			}
			if !strings.HasPrefix(m[1], dir) {
				t.Errorf("suggested --dir %s is not under %s", m[1], dir)
			}
			if _, err := os.Stat(filepath.Join(m[1], "catalogue.db")); err != nil {
				t.Errorf("the suggested retention directory holds no catalogue: %v", err)
			}
			sum := mustRun(t, "retention", "summary", "--verbose", "--dir", m[1])
			if !strings.Contains(sum, "Total Ranges:1\n") {
				t.Errorf("summary of the selftest's pair:\n%s", sum)
			}
			ev := mustRun(t, "retention", "events", "--dir", m[1])
			if !strings.HasSuffix(ev, fmt.Sprintf("Total Events:%d\n", tags)) {
				t.Errorf("events of the selftest's pair:\n%s", ev)
			}
		})
	}
}

func TestSelftestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--disks", "0"},
		{"--size", "0"},
		{"--writes", "0"},
		{"--tag-every", "0"},
		{"--disks", "two"},
		{"extra"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := t.TempDir()
			_, _, err := run(t, append([]string{"selftest", "--dir", dir}, args...)...)
			wantErr(t, err, true)
			if ents, _ := os.ReadDir(dir); len(ents) != 0 {
				t.Errorf("a refused selftest wrote %d entries in --dir", len(ents))
			}
		})
	}
}
