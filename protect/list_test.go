package protect_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// protection list shows each group's application-consistent interval as
// the process server reports it through the running agent: "every 1h",
// "none reported", each disk's when they differ, and not known without
// an agent connected.
func TestListAppConsistent(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "agent.toml")
	text := "[process_server]\naddress = \"ps:9443\"\npassphrase_file = \"/p\"\n\n[[group]]\nname = \"web01\"\nalert_threshold_percent = 20\n\n" +
		"[[pair]]\ndisk = \"sda\"\ntarget = \"/t/a\"\ngroup = \"web01\"\n\n[[pair]]\ndisk = \"sdb\"\ntarget = \"/t/b\"\ngroup = \"web01\"\n\n" +
		"[[pair]]\ndisk = \"sdc\"\ntarget = \"/t/c\"\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	sec := func(v float64) *float64 { return &v }
	pair := func(id string, app *float64) api.PairStatus {
		return api.PairStatus{PairStatus: writer.PairStatus{ID: id}, State: "Differential Sync", AppConsistentSeconds: app}
	}
	for _, tc := range []struct {
		name       string
		st         *api.Status
		web01, sdc string
	}{
		{"no agent", nil, "not known (no agent connected to the process server)", "not known (no agent connected to the process server)"},
		{"same", &api.Status{Pairs: []api.PairStatus{pair("sda", sec(3600)), pair("sdb", sec(3600)), pair("sdc", sec(0))}},
			"every 1h (reported by the process server)", "none reported"},
		{"differ", &api.Status{Pairs: []api.PairStatus{pair("sda", sec(3600)), pair("sdb", sec(0)), pair("sdc", nil)}},
			"sda every 1h (reported by the process server); sdb none reported", "not known (no agent connected to the process server)"},
	} {
		l, err := protect.List(conf, tc.st)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Groups) != 2 || l.Groups[0].AppConsistent != tc.web01 || l.Groups[1].AppConsistent != tc.sdc {
			t.Errorf("%s: %q, %q; want %q, %q", tc.name, l.Groups[0].AppConsistent, l.Groups[1].AppConsistent, tc.web01, tc.sdc)
		}
		if a := l.Groups[0].Pairs[0].AlertThresholdPercent; a != 20 {
			t.Errorf("%s: alert threshold %v, want the group's 20", tc.name, a)
		}
	}
}
