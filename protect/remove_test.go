package protect_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent"
)

// A group protected and then unprotected leaves agent.toml as it was
// before, byte for byte; the plan names the pairs and their targets.
func TestPlanRemoveUndoesProtect(t *testing.T) {
	h := protectWeb01(t)
	r, err := protect.PlanRemove(h.conf, "web01")
	if err != nil {
		t.Fatal(err)
	}
	if string(r.New) != h.old {
		t.Fatalf("after unprotect:\n%s\nwant the file as before protect:\n%s", r.New, h.old)
	}
	if len(r.Pairs) != 2 || r.Pairs[0].ID != "sda" || r.Pairs[1].Target != h.tgt["sdd"] || !r.Remove {
		t.Fatalf("plan %+v", r)
	}
	if s := r.Summary(); !strings.Contains(s, "unprotect web01: 2 pairs leave ") || !strings.Contains(s, "left as it is") {
		t.Errorf("summary:\n%s", s)
	}
	if d := r.Diff(); !strings.Contains(d, "\n-[[group]]") || strings.Contains(strings.ReplaceAll(d, "\n+++ ", ""), "\n+") {
		t.Errorf("diff:\n%s", d)
	}
	res, err := protect.Apply(context.Background(), r, protect.Options{Reload: func(context.Context) ([]string, error) { return []string{"sda", "sdb"}, nil }})
	if err != nil || !res.Agent || strings.Join(res.Stopped, ",") != "sda,sdb" || len(res.Started) != 0 {
		t.Fatalf("apply: %+v, %v", res, err)
	}
	if b, _ := os.ReadFile(h.conf); string(b) != h.old {
		t.Fatalf("written:\n%s", b)
	}
}

// One pair of a group goes by its id; the group and its other pairs stay.
func TestPlanRemovePair(t *testing.T) {
	h := protectWeb01(t)
	r, err := protect.PlanRemove(h.conf, "sdb")
	if err != nil {
		t.Fatal(err)
	}
	n := string(r.New)
	if strings.Contains(n, `disk = "sdb"`) || !strings.Contains(n, `disk = "sda"`) || !strings.Contains(n, `name = "web01"`) || !strings.HasPrefix(n, h.old) {
		t.Fatalf("after removing sdb:\n%s", n)
	}
}

func TestPlanRemoveRefusals(t *testing.T) {
	h := newHost(t, true)
	before, _ := os.ReadFile(h.conf)
	if _, err := protect.PlanRemove(h.conf, "nope"); !errors.Is(err, protect.ErrNotProtected) || !strings.Contains(err.Error(), "protection list") {
		t.Errorf("unknown name: %v", err)
	}
	if after, _ := os.ReadFile(h.conf); string(after) != string(before) {
		t.Error("a refused plan changed the file")
	}
}

// protectWeb01 is a host with group web01 (sda → sdc, sdb → sdd)
// protected in its agent.toml.
func protectWeb01(t *testing.T) *host {
	t.Helper()
	h := newHost(t, true)
	p, err := protect.MakePlan(context.Background(), h.conf, h.req(map[string]string{"sda": h.tgt["sdc"], "sdb": h.tgt["sdd"]}), protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protect.Apply(context.Background(), p, protect.Options{}); err != nil {
		t.Fatal(err)
	}
	return h
}

// The last group can go: the agent is left with no pair and waits for the
// next protection; the file still loads.
func TestPlanRemoveLastGroup(t *testing.T) {
	h := newHost(t, true)
	p, err := protect.PlanRemove(h.conf, "db01")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protect.Apply(context.Background(), p, protect.Options{}); err != nil {
		t.Fatal(err)
	}
	now, _ := os.ReadFile(h.conf)
	if strings.Contains(string(now), "[[pair]]") || strings.Contains(string(now), "db01") {
		t.Fatalf("after removing the last group:\n%s", now)
	}
	fc, err := agent.LoadConfig(h.conf)
	if err != nil {
		t.Fatalf("the file without pairs does not load: %v", err)
	}
	if n := len(fc.ClientConfig().Pairs); n != 0 {
		t.Fatalf("%d pairs left", n)
	}
}
