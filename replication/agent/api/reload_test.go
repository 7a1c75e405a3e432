package api

import (
	"errors"
	"reflect"
	"slices"
	"testing"
)

// POST /v1/reload runs the agent's Reloader and returns its result; the
// purge option reaches it; a refused file is the result's Error and the
// client's ErrReload; an agent without a Reloader says it does not
// reload.
func TestReloadViaAPI(t *testing.T) {
	a := newAgent(t)
	ctx := ctxT(t)
	if _, err := a.cl.Reload(ctx); !errors.Is(err, ErrConflict) {
		t.Errorf("reload without a Reloader: %v, want ErrConflict", err)
	}
	var got []ReloadRequest
	next := ReloadResult{Applied: []string{"pair p1 policy"}, Started: []string{"p3"}, Stopped: []string{"p2"}, Restart: []string{"agent.socket"}}
	a.b.SetReloader(func(req ReloadRequest) ReloadResult {
		got = append(got, req)
		return next
	})
	res, err := a.cl.Reload(ctx)
	if err != nil || !reflect.DeepEqual(res, next) {
		t.Errorf("reload: %+v, %v; want %+v", res, err, next)
	}
	if _, err := a.cl.ReloadWith(ctx, ReloadRequest{Purge: true}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []ReloadRequest{{}, {Purge: true}}) {
		t.Errorf("the Reloader was asked %+v", got)
	}
	next = ReloadResult{Applied: []string{}, Started: []string{}, Stopped: []string{}, Restart: []string{},
		Error: "/etc/mtconsole/agent.toml:12: retention: bad window"}
	res, err = a.cl.Reload(ctx)
	if !errors.Is(err, ErrReload) || res.Error != next.Error || err.Error() != ErrReload.Error()+": "+next.Error {
		t.Errorf("a refused file: %+v, %v", res, err)
	}
}

// A group names its pairs in /v1/resolve and /v1/recover: one point
// common to all its disks; naming both a group and pairs, or a group
// that is not there, is refused with the field.
func TestResolveRecoverGroup(t *testing.T) {
	a := newAgent(t, "p1", "p2", "p3")
	groups := map[string]string{"p1": "web01", "p2": "web01", "p3": "p3"}
	a.b.SetReplication(func() map[string]Replication {
		out := map[string]Replication{}
		for id, g := range groups {
			out[id] = Replication{State: "Differential Sync", Group: g}
		}
		return out
	})
	ctx := ctxT(t)
	res, err := a.cl.Resolve(ctx, ResolveRequest{Point: "latest-tag", Group: "web01"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 2 || res.Points["p1"].Tag == nil || res.Points["p2"].Tag == nil || res.Points["p1"].Tag.ID != res.Points["p2"].Tag.ID {
		t.Errorf("the group's latest tag: %+v", res.Points)
	}
	st, err := a.cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st.Pairs {
		if p.Group != groups[p.ID] {
			t.Errorf("status of %s: group %q, want %q", p.ID, p.Group, groups[p.ID])
		}
	}
	for _, tc := range []struct {
		name string
		req  ResolveRequest
	}{
		{"both", ResolveRequest{Point: "latest-tag", Group: "web01", Pairs: []string{"p1"}}},
		{"unknown group", ResolveRequest{Point: "latest-tag", Group: "db01"}},
	} {
		var ae *APIError
		if _, err := a.cl.Resolve(ctx, tc.req); !errors.As(err, &ae) || ae.Field != "group" {
			t.Errorf("%s: %v, want a FieldError on group", tc.name, err)
		}
	}
	j, err := a.cl.Recover(ctx, RecoverRequest{Point: "tag:t04", Mode: ModeExport, Dest: a.dir + "/web01", Group: "web01"})
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, a.cl, j.ID); j.State != JobDone || !slices.Equal(j.Pairs, []string{"p1", "p2"}) {
		t.Errorf("the group's recovery: %+v", j)
	}
	if _, err := a.cl.Recover(ctx, RecoverRequest{Point: "tag:t04", Mode: ModeExport, Dest: a.dir + "/x", Group: "nope"}); err == nil {
		t.Error("a recovery of an unknown group started")
	}
}
