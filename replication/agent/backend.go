package agent

import (
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// Backend is the status API's view of c: its writer's pairs (with their
// configurations, so a rollback can reopen a store), the admin's tags
// placed by the process server in the sources' write order (the agent
// numbers no sequence of its own), a rollback that ends its pair in the
// session first (the others stream on), and each pair's replication state.
func (c *Client) Backend(info api.HostInfo, hub *api.Hub) *api.WriterBackend {
	pcs := make([]writer.PairConfig, 0, len(c.cfg.Pairs))
	for _, p := range c.cfg.Pairs {
		pcs = append(pcs, p.PairConfig)
	}
	b := api.FromWriter(c.w, info, hub, pcs...)
	c.backend = b
	b.SetTagger(c.Tag)
	b.SetEnder(c.End)
	b.SetReplication(func() map[string]api.Replication {
		out := map[string]api.Replication{}
		for _, s := range c.Status() {
			r := api.Replication{State: s.State, Done: s.ResyncDone, Total: s.ResyncTotal, Group: s.Group}
			if s.AppKnown {
				app := s.AppConsistent
				r.AppConsistent = &app
			}
			out[s.ID] = r
		}
		return out
	})
	return b
}
