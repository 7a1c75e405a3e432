package vsphere

import (
	"context"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/types"
)

// SetCrashAt makes Execute stop on the spot, as a kill would, where f
// says: at a step's "before" or "after" phase. Tests only.
func SetCrashAt(f func(kind, phase string) bool) { crashAt = f }

// ErrCrash is what a run stopped by SetCrashAt returns.
var ErrCrash = errCrash

// SetOnTask calls f once a step's vSphere task is under way. Tests only.
func SetOnTask(f func(kind string)) { onTask = f }

// FinishTask waits for a task as an interrupted run does: up to the
// client's TaskGrace, then (mayCancel) a cancel when vSphere allows one.
// Tests only.
func (c *Client) FinishTask(ctx context.Context, ref types.ManagedObjectReference, mayCancel bool) (*types.TaskInfo, error) {
	return c.finishTask(ctx, object.NewTask(c.Vim(), ref), mayCancel)
}
