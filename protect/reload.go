package protect

import (
	"context"
	"fmt"
	"strings"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// ReloadAgent asks the agent on socket to reload agent.toml (POST
// /v1/reload) after a protect and returns the pairs it started; no agent
// is api.ErrNoAgent. Settings that need a restart are an error naming
// them (the pairs it started are still returned).
func ReloadAgent(ctx context.Context, socket string) ([]string, error) {
	cl, err := api.Dial(socket)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	r, err := cl.Reload(ctx)
	if err != nil {
		return nil, err
	}
	if len(r.Restart) > 0 {
		return r.Started, fmt.Errorf("the agent needs a restart for: %s", strings.Join(r.Restart, ", "))
	}
	return r.Started, nil
}

// ReloadAgentRemove asks the agent on socket to reload agent.toml after
// an unprotect: it stops the pairs taken out, and removes their journal
// and retention when purge. It returns the pairs stopped.
func ReloadAgentRemove(ctx context.Context, socket string, purge bool) ([]string, error) {
	cl, err := api.Dial(socket)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	rr, err := cl.ReloadWith(ctx, api.ReloadRequest{Purge: purge})
	return rr.Stopped, err
}
