package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// AddPair opens pair pc and starts it on the running agent: on the
// session with the process server when one is up and lists pc's disk (a
// PairAccept on the same connection: the other pairs' connection and
// sequences carry on), else at the next connection. A pair that had
// ended (rolled back) is kept as ended, as at start.
func (c *Client) AddPair(pc PairConfig) error {
	if pc.Group == "" {
		pc.Group = pc.ID
	}
	c.lmu.RLock()
	l, byDisk := c.byID[pc.ID], c.links[pc.Disk]
	c.lmu.RUnlock()
	switch {
	case pc.Disk == "" || pc.ID == "":
		return fmt.Errorf("agent: pair %q of disk %q: a pair needs a disk name and an id", pc.ID, pc.Disk)
	case l != nil:
		return fmt.Errorf("agent: pair %s runs already", pc.ID)
	case byDisk != nil:
		return fmt.Errorf("agent: pair %s: disk %s is paired already, by pair %s", pc.ID, pc.Disk, byDisk.id)
	}
	p, _, err := c.w.Open(pc.PairConfig)
	l = &link{id: pc.ID, disk: pc.Disk, cfg: pc, pair: p}
	switch {
	case errors.Is(err, writer.ErrEnded):
		c.cfg.Logger.Warn("pair has ended and is skipped: it is no longer replicated; remove its [[pair]] from agent.toml (protect the disk again to replicate it anew)",
			"pair", pc.ID, "disk", pc.Disk, "err", err)
		l.ended = true
	case err != nil:
		return fmt.Errorf("agent: pair %s: %w", pc.ID, err)
	}
	c.lmu.Lock()
	c.links[pc.Disk], c.byID[pc.ID] = l, l
	c.lmu.Unlock()
	if c.backend != nil {
		c.backend.AddConfig(pc.PairConfig)
	}
	if l.ended {
		return nil
	}
	select {
	case c.added <- struct{}{}:
	default:
	}
	c.pairLater()
	return nil
}

// RemovePair stops pair id cleanly and forgets it: it leaves the session
// (the process server is told it no longer wants the disk; the others
// stream on), and its journal and applied position are made durable as
// at shutdown. The target is left as it is. With purge, the pair's
// journal and retention directories are removed once it has stopped;
// without, they stay, and the pair resumes from them if added again.
func (c *Client) RemovePair(id string, purge bool) error {
	c.lmu.Lock()
	l := c.byID[id]
	if l != nil {
		delete(c.byID, id)
		delete(c.links, l.disk)
	}
	c.lmu.Unlock()
	if l == nil {
		return fmt.Errorf("agent: no pair %q", id)
	}
	if c.backend != nil {
		c.backend.CloseViews(id, "closed: its pair was removed")
	}
	l.mu.Lock()
	was := l.ended
	l.ended, l.removed, l.connected = true, true, false
	l.mu.Unlock()
	if !was {
		c.mu.Lock()
		s := c.sess
		c.mu.Unlock()
		if s != nil {
			s.release(c, l, "removed from the agent's configuration")
		}
	}
	// Closes the pair: the journal durable, the applier stopped after its
	// batch (an ended pair is only forgotten).
	err := c.w.Remove(id)
	c.cfg.Logger.Info("pair stopped: removed from the configuration; its target is left as it is", "pair", id, "disk", l.disk, "purge", purge)
	if err != nil {
		return fmt.Errorf("agent: pair %s: %w", id, err)
	}
	if purge {
		fsys := c.cfg.Writer.FS
		if fsys == nil {
			fsys = vfs.OS
		}
		for _, dir := range []string{l.cfg.JournalDir, l.cfg.RetentionDir} {
			if err := removeTree(fsys, dir); err != nil {
				return fmt.Errorf("agent: pair %s stopped, but its directory %s was not removed: %w; remove it by hand", id, dir, err)
			}
		}
	}
	return nil
}

// removeTree removes dir and what it holds; a dir that is not there is
// no error.
func removeTree(fsys vfs.FS, dir string) error {
	if dir == "" || dir == "/" || dir == "." {
		return fmt.Errorf("refusing to remove %q", dir)
	}
	names, err := fsys.List(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := fsys.Remove(p); err != nil {
			if err := removeTree(fsys, p); err != nil {
				return err
			}
		}
	}
	if err := fsys.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Pairs are the configurations of the pairs the agent runs (ended ones
// too), by id.
func (c *Client) Pairs() map[string]PairConfig {
	c.lmu.RLock()
	defer c.lmu.RUnlock()
	out := make(map[string]PairConfig, len(c.byID))
	for id, l := range c.byID {
		out[id] = l.cfg
	}
	return out
}
