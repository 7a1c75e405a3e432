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
