package setup

import (
	"context"
	"strings"
	"testing"
)

// A --root tree's package manager queries the host's but installs
// nothing: it says what the host would run.
func TestTreePMInstallsNothing(t *testing.T) {
	host := allInstalled()
	pm := TreePM{PackageManager: host, Root: "/srv/tree"}
	if _, ok, _ := pm.Installed(context.Background(), "lvm2"); !ok {
		t.Error("TreePM does not ask the host's package manager")
	}
	var lines []string
	if err := pm.Install(context.Background(), []string{"a", "b"}, func(s string) { lines = append(lines, s) }); err != nil {
		t.Fatal(err)
	}
	if len(host.asked) != 0 {
		t.Errorf("the host's package manager installed %q", host.asked)
	}
	want := "skipped: the root is /srv/tree, not this host; on the host this runs: fake-install a b"
	if strings.Join(lines, "\n") != want {
		t.Errorf("lines %q, want %q", lines, want)
	}
}
