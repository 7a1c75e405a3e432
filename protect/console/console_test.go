package console

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/tui"
)

// The policy form's alert threshold is checked before anything is read:
// out of range or not a number, the plan is refused naming the field.
func TestPlanAlertPercentRefused(t *testing.T) {
	c := &Protector{Config: filepath.Join(t.TempDir(), "agent.toml")}
	for _, v := range []string{"0", "60", "lots"} {
		plan, err := c.Plan(context.Background(), tui.ProtectRequest{Group: "web01", Map: map[string]string{"sda": "/dev/sdc"}, AlertPercent: v})
		if err != nil || plan == nil || len(plan.Refusals) != 1 || !strings.HasPrefix(plan.Refusals[0].Reason, "Alert at % free: ") ||
			!strings.Contains(plan.Refusals[0].Reason, "above 0 and at most 50") {
			t.Fatalf("%s: plan %+v, err %v", v, plan, err)
		}
	}
}

// The policy form's sparse tiers are checked against the retention asked
// for (or the [defaults]' 24 hours) before anything is read.
func TestPlanSparseRefused(t *testing.T) {
	c := &Protector{Config: filepath.Join(t.TempDir(), "agent.toml")}
	for _, tc := range []struct{ retention, sparse, want string }{
		{"", "all 1d; 1 per 1h for 6d", "the last tier ends at 7 days but the retention window is 1 day: they must be equal (retention 1 day)"},
		{"3d", "all 1d; 0 per 1h for 2d", "tier 2 tagcount: 0: must be at least 1"},
		{"3d", "all 1d; 1 each 1h for 2d", `tier 2 "1 each 1h for 2d": not`},
	} {
		plan, err := c.Plan(context.Background(), tui.ProtectRequest{Group: "web01", Map: map[string]string{"sda": "/dev/sdc"}, Retention: tc.retention, Sparse: tc.sparse})
		if err != nil || plan == nil || len(plan.Refusals) != 1 || !strings.HasPrefix(plan.Refusals[0].Reason, "Sparse tiers: ") ||
			!strings.Contains(plan.Refusals[0].Reason, tc.want) {
			t.Fatalf("%s: plan %+v, err %v", tc.sparse, plan, err)
		}
	}
}
