package tui

import (
	"context"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// Actions is what the console asks of the agent beyond the collector's
// stream: the changes (tag, pause, resume, recover) and the look-ups the
// screens need on demand (a pair's tags, a job, where a point lies, a job
// followed to its end). *api.Client and *Agent implement it; tests fake
// it.
type Actions interface {
	Tag(ctx context.Context, req api.TagRequest) (api.TagResult, error)
	Pause(ctx context.Context, pair, reason string) (api.PairStatus, error)
	Resume(ctx context.Context, pair string) (api.PairStatus, error)
	Recover(ctx context.Context, req api.RecoverRequest) (api.Job, error)
	Job(ctx context.Context, id string) (api.Job, error)
	// Resolve is where the agent finds a point: the wizard shows it and
	// never resolves a point on its own.
	Resolve(ctx context.Context, req api.ResolveRequest) (api.Resolution, error)
	// FollowJob gives fn a job's events until it ends, and returns the
	// job as it ended (api.Client.FollowJob).
	FollowJob(ctx context.Context, id string, fn func(api.JobEvent)) (api.Job, error)
	Tags(ctx context.Context, pair string) ([]journal.Tag, error)
}

var _ Actions = (*api.Client)(nil)
