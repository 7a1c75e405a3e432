package tui

import (
	"context"
	"sync"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/internal/backoff"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// StatusMsg is a snapshot of the agent's pairs, taken At.
type StatusMsg struct {
	Status api.Status
	At     time.Time
}

// EventMsg is one event of the agent's stream; Job is set on a job's
// events (api.Event).
type EventMsg struct {
	Event writer.Event
	Job   *api.JobEvent
}

// AgentErrorMsg says the agent did not answer At: the console keeps the
// last snapshot and shows its age.
type AgentErrorMsg struct {
	Err error
	At  time.Time
}

// TagsMsg is a pair's list of tags, oldest first.
type TagsMsg struct {
	Pair string
	Tags []journal.Tag
	Err  error
}

// Collector feeds the console: it calls send with StatusMsg, EventMsg,
// AgentErrorMsg (and TagsMsg, for a replay) until ctx ends or it has
// nothing more to say. send never blocks past ctx.
type Collector interface {
	Run(ctx context.Context, send func(tea.Msg)) error
}

// Source is the part of the agent's API a live collector reads;
// *api.Client and *Agent implement it.
type Source interface {
	Status(ctx context.Context) (api.Status, error)
	Events(ctx context.Context) (<-chan api.Event, error)
}

// Live polls a Source's status every Interval and follows its event
// stream. A failed poll sends AgentErrorMsg and retries after a backoff
// with full jitter (a random wait under a bound that starts at Interval
// and doubles up to MaxBackoff); a poll never overlaps the one before.
type Live struct {
	Source     Source
	Interval   time.Duration // default and floor 1 s
	MaxBackoff time.Duration // default 10 s
	Now        func() time.Time
}

// Run implements Collector.
func (l *Live) Run(ctx context.Context, send func(tea.Msg)) error {
	interval := max(l.Interval, time.Second)
	maxWait := l.MaxBackoff
	if maxWait <= 0 {
		maxWait = 10 * time.Second
	}
	now := l.Now
	if now == nil {
		now = time.Now
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.follow(ctx, send, interval, maxWait)
	}()
	defer wg.Wait()
	bo := backoff.New(interval, maxWait)
	wait := time.Duration(0)
	for {
		if !backoff.Sleep(ctx, wait) {
			return nil
		}
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		st, err := l.Source.Status(pctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			send(AgentErrorMsg{Err: err, At: now()})
			wait = bo.Next()
			continue
		}
		bo.Reset()
		send(StatusMsg{Status: st, At: now()})
		wait = interval
	}
}

// follow subscribes to the event stream and subscribes again, after a
// backoff, whenever it ends; the poll reports the agent's absence.
func (l *Live) follow(ctx context.Context, send func(tea.Msg), interval, maxWait time.Duration) {
	bo := backoff.New(interval, maxWait)
	for ctx.Err() == nil {
		ch, err := l.Source.Events(ctx)
		if err == nil {
			bo.Reset()
			for e := range ch {
				send(EventMsg{Event: e.Event, Job: e.Job})
			}
		}
		if !bo.Wait(ctx) {
			return
		}
	}
}

// Agent is the agent's API on a socket, dialled on first use and again
// after it failed, so a console started before the agent finds it later.
// It is a Source and the live Actions.
type Agent struct {
	socket string
	mu     sync.Mutex
	cl     *api.Client
}

// NewAgent returns an Agent for socket (api.DefaultSocket when empty).
func NewAgent(socket string) *Agent { return &Agent{socket: socket} }

func (a *Agent) client() (*api.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cl == nil {
		cl, err := api.Dial(a.socket)
		if err != nil {
			return nil, err
		}
		a.cl = cl
	}
	return a.cl, nil
}

// Close releases the client's connections.
func (a *Agent) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cl != nil {
		a.cl.Close()
		a.cl = nil
	}
}

func call[T any](a *Agent, f func(*api.Client) (T, error)) (T, error) {
	cl, err := a.client()
	if err != nil {
		var zero T
		return zero, err
	}
	return f(cl)
}

// Status implements Source.
func (a *Agent) Status(ctx context.Context) (api.Status, error) {
	return call(a, func(c *api.Client) (api.Status, error) { return c.Status(ctx) })
}

// Events implements Source.
func (a *Agent) Events(ctx context.Context) (<-chan api.Event, error) {
	return call(a, func(c *api.Client) (<-chan api.Event, error) { return c.Events(ctx) })
}

// Tag implements Actions.
func (a *Agent) Tag(ctx context.Context, req api.TagRequest) (api.TagResult, error) {
	return call(a, func(c *api.Client) (api.TagResult, error) { return c.Tag(ctx, req) })
}

// Pause implements Actions.
func (a *Agent) Pause(ctx context.Context, pair, reason string) (api.PairStatus, error) {
	return call(a, func(c *api.Client) (api.PairStatus, error) { return c.Pause(ctx, pair, reason) })
}

// Resume implements Actions.
func (a *Agent) Resume(ctx context.Context, pair string) (api.PairStatus, error) {
	return call(a, func(c *api.Client) (api.PairStatus, error) { return c.Resume(ctx, pair) })
}

// Recover implements Actions.
func (a *Agent) Recover(ctx context.Context, req api.RecoverRequest) (api.Job, error) {
	return call(a, func(c *api.Client) (api.Job, error) { return c.Recover(ctx, req) })
}

// OpenView implements ViewActions.
func (a *Agent) OpenView(ctx context.Context, req api.ViewRequest) (api.View, error) {
	return call(a, func(c *api.Client) (api.View, error) { return c.OpenView(ctx, req) })
}

// Job implements Actions.
func (a *Agent) Job(ctx context.Context, id string) (api.Job, error) {
	return call(a, func(c *api.Client) (api.Job, error) { return c.Job(ctx, id) })
}

// Resolve implements Actions.
func (a *Agent) Resolve(ctx context.Context, req api.ResolveRequest) (api.Resolution, error) {
	return call(a, func(c *api.Client) (api.Resolution, error) { return c.Resolve(ctx, req) })
}

// FollowJob implements Actions.
func (a *Agent) FollowJob(ctx context.Context, id string, fn func(api.JobEvent)) (api.Job, error) {
	return call(a, func(c *api.Client) (api.Job, error) { return c.FollowJob(ctx, id, fn) })
}

// Tags implements Actions.
func (a *Agent) Tags(ctx context.Context, pair string) ([]journal.Tag, error) {
	return call(a, func(c *api.Client) ([]journal.Tag, error) { return c.Tags(ctx, pair) })
}

var (
	_ Source  = (*Agent)(nil)
	_ Source  = (*api.Client)(nil)
	_ Actions = (*Agent)(nil)
)
