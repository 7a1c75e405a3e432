package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// ErrNotTagged is a tag the process server could not place on every pair
// asked for: not connected, a pair not in Differential Sync, or no answer.
var ErrNotTagged = errors.New("tag not placed")

// tagWait collects, for one tag id, the sequence each pair's tag took.
type tagWait struct {
	mu   sync.Mutex
	want map[string]bool // pair ids still to come
	got  map[string]uint64
	done chan struct{}
}

// tagArrived is called by the receive loop once a Tag is journaled.
func (c *Client) tagArrived(pair, id string, seq uint64) {
	c.tmu.Lock()
	w := c.tags[id]
	c.tmu.Unlock()
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.want[pair] {
		delete(w.want, pair)
		w.got[pair] = seq
		if len(w.want) == 0 {
			close(w.done)
		}
	}
}

// Tag places one tag on the pairs given (all when none) at one point of
// their sources' write order: the process server issues it in each disk's
// stream, so the master target never numbers a sequence of its own and
// the tags of several pairs make one multi-disk consistent point. It
// returns the sequence the tag took in each pair once each is journaled.
// Every pair must be connected and in Differential Sync (a point inside a
// resync is not consistent); otherwise nothing is asked.
func (c *Client) Tag(ctx context.Context, pairs []string, info journal.TagInfo) (map[string]uint64, error) {
	links := c.pairLinks()
	if len(pairs) == 0 {
		for id, l := range links {
			if !l.isEnded() {
				pairs = append(pairs, id)
			}
		}
		if len(pairs) == 0 {
			return nil, fmt.Errorf("%w: every pair has ended", ErrNotTagged)
		}
	}
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s == nil {
		return nil, fmt.Errorf("%w: not connected to the process server %s: a tag is placed in the source's write order; try again once connected", ErrNotTagged, c.cfg.Addr)
	}
	ids := map[string]uint32{}
	for id, l := range s.linked() {
		ids[l.pair.ID()] = id
	}
	req := &wire.TagRequest{Name: info.Name, App: info.App, ID: info.ID}
	w := &tagWait{want: map[string]bool{}, got: map[string]uint64{}, done: make(chan struct{})}
	var bad []string
	for _, p := range pairs {
		l := links[p]
		if l == nil {
			return nil, fmt.Errorf("%w: no pair %q", ErrNotTagged, p)
		}
		l.mu.Lock()
		st, conn, ended := l.state, l.connected, l.ended
		l.mu.Unlock()
		disk, ok := ids[p]
		switch {
		case ended:
			bad = append(bad, p+" (ended: no longer replicated)")
		case !ok || !conn:
			bad = append(bad, p+" (not connected)")
		case st != wire.StateDiffSync:
			bad = append(bad, p+" ("+st.String()+")")
		default:
			req.Disks = append(req.Disks, disk)
			w.want[p] = true
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("%w: %s: a tag is a consistent point only in Differential Sync; tag once they are", ErrNotTagged, strings.Join(bad, ", "))
	}
	c.tmu.Lock()
	c.tags[info.ID] = w
	c.tmu.Unlock()
	defer func() {
		c.tmu.Lock()
		delete(c.tags, info.ID)
		c.tmu.Unlock()
	}()
	if err := s.c.Send(req); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotTagged, err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.TagTimeout)
	defer cancel()
	select {
	case <-w.done:
		return w.got, nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var missing []string
	for p := range w.want {
		missing = append(missing, p)
	}
	return w.got, fmt.Errorf("%w on %s within %s: the connection dropped or a resync began (it is placed on %d of %d)",
		ErrNotTagged, strings.Join(missing, ", "), c.cfg.TagTimeout, len(w.got), len(w.got)+len(missing))
}

// defaultTagTimeout is how long Tag waits for the tags to come back.
const defaultTagTimeout = 10 * time.Second
