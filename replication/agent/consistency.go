package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// SetGroups replaces the groups (the file's [[group]] tables): their
// consistency intervals apply from the next tick of the consistency loop.
func (c *Client) SetGroups(gs []GroupConfig) {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	c.groups = slices.Clone(gs)
}

// SetGroup moves pair id to group ("" : a group of its own).
func (c *Client) SetGroup(id, group string) {
	if group == "" {
		group = id
	}
	if l := c.link(id); l != nil {
		l.mu.Lock()
		l.cfg.Group = group
		l.mu.Unlock()
	}
}

// consistencyTick is how often the consistency loop looks at the clock
// when Config.ConsistencyTicks is not set.
const consistencyTick = time.Second

// consistency asks, for each group with a consistency interval, one
// crash-consistent tag across the group's disks every interval, until
// ctx ends. Ticks come from Config.ConsistencyTicks (tests) or a
// ticker: each is the time it was sent at.
func (c *Client) consistency(ctx context.Context) {
	ticks := c.cfg.ConsistencyTicks
	if ticks == nil {
		t := time.NewTicker(consistencyTick)
		defer t.Stop()
		ticks = t.C
	}
	next := map[string]time.Time{} // by group: when its next tag is due
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-ticks:
			c.consistencyDue(ctx, next, now)
		}
	}
}

// consistencyDue tags every group whose tag is due at now; a group met
// for the first time is due an interval from now.
func (c *Client) consistencyDue(ctx context.Context, next map[string]time.Time, now time.Time) {
	c.gmu.Lock()
	groups := slices.Clone(c.groups)
	c.gmu.Unlock()
	seen := map[string]bool{}
	for _, g := range groups {
		if g.ConsistencyInterval <= 0 {
			continue
		}
		seen[g.Name] = true
		due, ok := next[g.Name]
		if !ok || due.Sub(now) > g.ConsistencyInterval { // new, or the interval was shortened
			next[g.Name] = now.Add(g.ConsistencyInterval)
			continue
		}
		if now.Before(due) {
			continue
		}
		next[g.Name] = now.Add(g.ConsistencyInterval)
		c.tagGroup(ctx, g.Name, now)
	}
	for name := range next {
		if !seen[name] {
			delete(next, name)
		}
	}
}

// tagGroup asks the process server for one crash-consistent tag across
// the disks of group's pairs in Differential Sync (the others are
// skipped: a point inside a resync is not consistent), named
// CRASH_<group>_<time>.
func (c *Client) tagGroup(ctx context.Context, group string, now time.Time) {
	var pairs, skipped []string
	for id, l := range c.pairLinks() {
		l.mu.Lock()
		in, ok := l.cfg.Group == group, !l.ended && l.connected && l.state == wire.StateDiffSync
		l.mu.Unlock()
		switch {
		case !in:
		case ok:
			pairs = append(pairs, id)
		default:
			skipped = append(skipped, id)
		}
	}
	slices.Sort(pairs)
	slices.Sort(skipped)
	if len(skipped) > 0 {
		c.cfg.Logger.Info("consistency tag: pairs not in Differential Sync are skipped", "group", group, "pairs", fmt.Sprint(skipped))
	}
	if len(pairs) == 0 {
		return
	}
	info := journal.TagInfo{Name: ConsistencyTagName(group, now), App: journal.AppCrash, ID: tagID(), Time: now.UTC()}
	if _, err := c.Tag(ctx, pairs, info); err != nil {
		c.cfg.Logger.Warn("consistency tag not placed", "group", group, "tag", info.Name, "err", err)
		return
	}
	c.cfg.Logger.Debug("consistency tag placed", "group", group, "tag", info.Name, "pairs", fmt.Sprint(pairs))
}

// ConsistencyTagName is the name of group's crash-consistent tag at t:
// CRASH_<group>_<UTC time, to the second>, like the process server's
// workload tags (APP_<source>_<n>), and unique across restarts.
func ConsistencyTagName(group string, t time.Time) string {
	return fmt.Sprintf("%s_%s_%s", journal.AppCrash, group, t.UTC().Format("20060102T150405Z"))
}

func tagID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
