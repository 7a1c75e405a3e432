package tui

import (
	"context"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// Actions is what the console asks of the agent beyond the collector's
// stream: the changes (tag, pause, resume, recover) and two look-ups the
// screens need on demand (a pair's tags, a job). *api.Client and *Agent
// implement it; tests fake it.
type Actions interface {
	Tag(ctx context.Context, req api.TagRequest) (api.TagResult, error)
	Pause(ctx context.Context, pair, reason string) (api.PairStatus, error)
	Resume(ctx context.Context, pair string) (api.PairStatus, error)
	Recover(ctx context.Context, req api.RecoverRequest) (api.Job, error)
	Job(ctx context.Context, id string) (api.Job, error)
	Tags(ctx context.Context, pair string) ([]journal.Tag, error)
}

var _ Actions = (*api.Client)(nil)
