package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/mtconsole/mtconsole/replication/recovery"
)

// The job journal: one JSON file per job (ID.json), written when the job
// starts and when it ends, so that a restarted agent still answers for
// the jobs of the last one, and reports as interrupted those it was
// running when it stopped.

// jobNumber is N of the job id jN, 0 for another.
func jobNumber(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, "j"))
	if err != nil || !strings.HasPrefix(id, "j") || n < 0 {
		return 0
	}
	return n
}

// OpenJobs keeps the job journal in dir (created 0700) and loads the
// jobs recorded there: a job recorded as running was cut short by the
// agent stopping, and is marked interrupted, the partial image of an
// interrupted export removed. New job ids continue after the highest
// recorded one. Call it before serving.
func (b *WriterBackend) OpenJobs(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("jobs directory: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("jobs directory: %w", err)
	}
	var found []*Job
	maxN := 0
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(name, ".json") {
			if strings.HasSuffix(name, ".json.tmp") {
				os.Remove(filepath.Join(dir, name)) // a record cut short
			}
			continue
		}
		id := strings.TrimSuffix(name, ".json")
		maxN = max(maxN, jobNumber(id))
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("job record %s: %w", filepath.Join(dir, name), err)
		}
		var j Job
		if err := json.Unmarshal(data, &j); err != nil || j.ID != id {
			// Unreadable: its id stays taken, the job is not served.
			continue
		}
		found = append(found, &j)
	}
	b.mu.Lock()
	b.jobsDir = dir
	b.nextJob = max(b.nextJob, maxN)
	b.mu.Unlock()
	for _, j := range found {
		if j.State == JobRunning {
			j.State, j.Error, j.Finished = JobInterrupted, interrupted(j), b.now().UTC()
			if err := b.saveJob(j.snapshot()); err != nil {
				return err
			}
		}
		b.mu.Lock()
		if _, ok := b.jobs[j.ID]; !ok {
			b.jobs[j.ID] = j
		}
		b.mu.Unlock()
	}
	return nil
}

// interrupted removes what an interrupted job left that must not be
// taken for a result, and says what happened.
func interrupted(j *Job) string {
	msg := "the agent stopped while it ran"
	switch j.Mode {
	case ModeExport:
		var removed []string
		for _, p := range partials(*j) {
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && os.Remove(p) == nil {
				removed = append(removed, p)
			}
		}
		switch len(removed) {
		case 0:
			return msg + "; it left no partial image"
		case 1:
			return msg + "; " + removed[0] + " was removed"
		}
		return msg + "; " + strings.Join(removed, ", ") + " were removed"
	case ModeRollback:
		return msg + "; the target of pair " + strings.Join(j.Pairs, ", ") +
			" may be partly rolled back: run the rollback again to the same point to finish it"
	}
	return msg
}

// destsOf are an export job's image paths, by pair.
func destsOf(j Job) map[string]string {
	d := map[string]string{}
	for _, id := range j.Pairs {
		d[id] = j.Dest
		if len(j.Pairs) > 1 {
			d[id] = filepath.Join(j.Dest, id+".img")
		}
	}
	return d
}

// partials are the DEST.partial files an export job writes.
func partials(j Job) []string {
	var out []string
	for _, id := range j.Pairs {
		out = append(out, destsOf(j)[id]+recovery.PartialSuffix)
	}
	return out
}

// saveJob records j in the job journal (when there is one): written to a
// temporary file, made durable and renamed.
func (b *WriterBackend) saveJob(j Job) error {
	b.mu.Lock()
	dir := b.jobsDir
	b.mu.Unlock()
	if dir == "" {
		return nil
	}
	data, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(dir, j.ID+".json")
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("recording job %s: %w", j.ID, err)
	}
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("recording job %s in %s: %w", j.ID, dir, err)
	}
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("recording job %s: sync %s: %w", j.ID, dir, err)
		}
	}
	return nil
}

// Jobs implements Backend: every job known, the running and those
// recorded by this agent or the one before, oldest first.
func (b *WriterBackend) Jobs() ([]Job, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Job, 0, len(b.jobs))
	for _, j := range b.jobs {
		out = append(out, j.snapshot())
	}
	slices.SortFunc(out, func(x, y Job) int {
		if c := jobNumber(x.ID) - jobNumber(y.ID); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// checkDests refuses an export whose destination is a file of any pair
// the agent knows (its target, journal, retention store or catalogue,
// compared by device and inode), or that a stale partial image of an
// earlier export blocks.
func (b *WriterBackend) checkDests(root string, dests map[string]string) error {
	var g recovery.Guard
	b.mu.Lock()
	cfgs := make(map[string]struct{ target, journal, retention, catalogue string })
	for id, c := range b.configs {
		cfgs[id] = struct{ target, journal, retention, catalogue string }{c.Target, c.JournalDir, c.RetentionDir, c.CatalogueDir}
	}
	b.mu.Unlock()
	for _, p := range b.w.Pairs() {
		c := cfgs[p.ID()]
		if c.target == "" {
			c.target = p.Status().Target
		}
		cfgs[p.ID()] = c
	}
	for id, c := range cfgs {
		if c.target != "" {
			g.AddFile(id, "target", c.target)
		}
		if c.journal != "" {
			g.AddDir(id, "journal directory", c.journal)
		}
		if c.retention != "" {
			g.AddDir(id, "retention directory", c.retention)
		}
		if c.catalogue != "" && c.catalogue != c.retention {
			g.AddDir(id, "catalogue directory", c.catalogue)
		}
	}
	images := slices.Sorted(maps.Values(dests))
	for _, p := range append([]string{root}, images...) {
		if err := g.Check(p); err != nil {
			return badField("dest", "%v", err)
		}
	}
	for _, p := range images {
		partial := p + recovery.PartialSuffix
		if _, err := os.Lstat(partial); err == nil {
			return badField("dest", "%s exists: it is the partial image of an export that was cut short (killed or crashed), not a usable image; remove it and export again", partial)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return badField("dest", "%s: %v", partial, err)
		}
	}
	return nil
}
