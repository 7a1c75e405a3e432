package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// WriterBackend serves the pairs of a writer.Writer. The writer's
// Options.OnEvent must feed the same Hub (hub.Publish, or EventSink).
type WriterBackend struct {
	w    *writer.Writer
	info HostInfo
	hub  *Hub
	now  func() time.Time
	repl func() map[string]Replication
	tag  Tagger
	end  Ender
	cs   func() *CSStatus
	// reload runs POST /v1/reload (SetReloader).
	reload Reloader

	// tagMu makes an admin tag's name check and its placing one step;
	// placed keeps, per pair, the admin tags placed here until the
	// retention store holds them (the applier may lag far behind).
	tagMu  sync.Mutex
	placed map[string][]journal.Tag

	mu      sync.Mutex
	configs map[string]writer.PairConfig
	jobs    map[string]*Job
	busy    map[string]string // pair → id of the job recovering it
	nextJob int
	jobsDir string // the job journal (OpenJobs); "" keeps none
	// onProgress, when set, is called in the job as each chunk is done
	// (tests: stop or cancel a job mid-way).
	onProgress func(job string, done int64)
	wg         sync.WaitGroup
	// the open views (views.go), the pairs of views being opened, the
	// last view number given and the directory of their sockets
	views    map[string]*openView
	opening  map[string][]string
	nextView int
	viewDir  string
	ctx      context.Context
	cancel   context.CancelFunc
}

// FromWriter serves w. configs are the pairs' configurations, needed to
// reopen a pair's retention store for a rollback once the writer has let
// go of it; a pair without one cannot be rolled back through the API.
func FromWriter(w *writer.Writer, info HostInfo, hub *Hub, configs ...writer.PairConfig) *WriterBackend {
	ctx, cancel := context.WithCancel(context.Background())
	b := &WriterBackend{w: w, info: info, hub: hub, now: time.Now, configs: map[string]writer.PairConfig{},
		jobs: map[string]*Job{}, busy: map[string]string{}, placed: map[string][]journal.Tag{}, ctx: ctx, cancel: cancel}
	if b.info.Started.IsZero() {
		b.info.Started = time.Now()
	}
	for _, c := range configs {
		b.configs[c.ID] = c
	}
	return b
}

// SetClock replaces time.Now (deterministic tests).
func (b *WriterBackend) SetClock(now func() time.Time) { b.now = now }

// AddConfig records the configuration of a pair opened later.
func (b *WriterBackend) AddConfig(c writer.PairConfig) {
	b.mu.Lock()
	b.configs[c.ID] = c
	b.mu.Unlock()
}

// Close closes the open views (saying so in the log), cancels running
// jobs and waits for them.
func (b *WriterBackend) Close() error {
	b.CloseViews("", "closed: the agent stops")
	b.cancel()
	b.wg.Wait()
	return nil
}

// Status implements Backend.
func (b *WriterBackend) Status() (Status, error) {
	s := Status{HostInfo: b.info, UptimeSeconds: b.now().Sub(b.info.Started).Seconds(), Pairs: []PairStatus{}}
	var repl map[string]Replication
	if b.repl != nil {
		repl = b.repl()
	}
	for _, ps := range b.w.Status() {
		p := PairStatus{PairStatus: ps}
		if r, ok := repl[ps.ID]; ok {
			p.State, p.Group = r.State, r.Group
			if r.AppConsistent != nil {
				sec := r.AppConsistent.Seconds()
				p.AppConsistentSeconds = &sec
			}
			if r.Total > 0 && r.Done < r.Total {
				p.Resync = &ResyncProgress{Step: r.State, DoneBytes: r.Done, TotalBytes: r.Total}
			}
		}
		s.Pairs = append(s.Pairs, p)
	}
	if b.cs != nil {
		s.CS = b.cs()
	}
	b.mu.Lock()
	s.Views = b.viewsLocked()
	b.mu.Unlock()
	return s, nil
}

// ReloadBackend is a Backend that reloads its configuration file
// (POST /v1/reload).
type ReloadBackend interface {
	Reload(req ReloadRequest) (ReloadResult, error)
}

// Reloader reloads an agent's configuration (agent.Reloader).
type Reloader func(req ReloadRequest) ReloadResult

// SetReloader makes POST /v1/reload run f.
func (b *WriterBackend) SetReloader(f Reloader) { b.reload = f }

// Reload implements ReloadBackend: ErrConflict when no Reloader is set.
func (b *WriterBackend) Reload(req ReloadRequest) (ReloadResult, error) {
	if b.reload == nil {
		return ReloadResult{}, fmt.Errorf("%w: this agent does not reload its configuration (it runs inside another command)", ErrConflict)
	}
	return b.reload(req), nil
}

// SetCS makes Status report the host's registration with the
// configuration server from f (nil: not registered).
func (b *WriterBackend) SetCS(f func() *CSStatus) { b.cs = f }

// Replication is what the network layer knows of a pair: its state
// (Queued, Resync Step I, Resync Step II, Differential Sync) and resync
// progress.
type Replication struct {
	State       string
	Done, Total int64
	Group       string // the protected machine the pair belongs to
	// AppConsistent is the source's application-consistent interval as
	// the process server reports it (0: none); nil: not known (no
	// connection).
	AppConsistent *time.Duration
}

// SetReplication makes Status report each pair's replication state from f,
// keyed by pair id.
func (b *WriterBackend) SetReplication(f func() map[string]Replication) { b.repl = f }

// Subscribe implements Backend.
func (b *WriterBackend) Subscribe(ctx context.Context, history int) <-chan Event {
	return b.hub.Subscribe(ctx, history)
}

// groupPairs is the pairs of group (sorted), for a request that names
// a group; pairs as they are for one that does not. A request naming
// both, or a group no pair belongs to, is refused.
func (b *WriterBackend) groupPairs(group string, pairs []string) ([]string, error) {
	if group == "" {
		return pairs, nil
	}
	if len(pairs) > 0 {
		return nil, badField("group", "give a group or pairs, not both")
	}
	var repl map[string]Replication
	if b.repl != nil {
		repl = b.repl()
	}
	var out []string
	groups := map[string]bool{}
	for id, r := range repl {
		groups[r.Group] = true
		if r.Group == group {
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil, badField("group", "no group %q on this agent (its groups: %s)", group, strings.Join(slices.Sorted(maps.Keys(groups)), ", "))
	}
	slices.Sort(out)
	return out, nil
}

// pairs returns the named pairs, or every pair for none.
func (b *WriterBackend) pairs(ids []string) ([]*writer.Pair, error) {
	if len(ids) == 0 {
		ps := b.w.Pairs()
		if len(ps) == 0 {
			return nil, fmt.Errorf("%w: the agent has no pairs", ErrConflict)
		}
		return ps, nil
	}
	var ps []*writer.Pair
	for _, id := range ids {
		p := b.w.Pair(id)
		if p == nil {
			return nil, b.missing(id)
		}
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	return ps, nil
}

// Ender ends a pair before a rollback and records why it ended (the
// writer's End, or an agent's, agent.Client.End: the pair also leaves its
// session with the process server).
type Ender func(pair, reason string) error

// SetEnder makes a rollback end its pair through e (default: the
// writer's End). Set it whenever another party feeds the pairs: it must
// stop feeding a pair before the rollback takes its target.
func (b *WriterBackend) SetEnder(e Ender) { b.end = e }

func (b *WriterBackend) endPair(id, reason string) error {
	if b.end != nil {
		return b.end(id, reason)
	}
	return b.w.End(id, reason)
}

// missing is the error for pair id, which is not open: ended, or unknown.
func (b *WriterBackend) missing(id string) error {
	if reason, ok := b.w.Ended(id); ok {
		return fmt.Errorf("%w: pair %s has ended (%s): it is no longer replicated; remove its [[pair]] from the agent's configuration, or protect the disk again", ErrConflict, id, reason)
	}
	return fmt.Errorf("pair %q: %w", id, ErrUnknownPair)
}

// Tagger places a tag on pairs where their writes are numbered: an
// agent's process server (agent.Client.Tag).
type Tagger func(ctx context.Context, pairs []string, info journal.TagInfo) (map[string]uint64, error)

// SetTagger makes Tag go through t. Set it whenever another party numbers
// the pairs' writes: a tag journaled here would take a sequence number
// that party is about to give a write.
func (b *WriterBackend) SetTagger(t Tagger) { b.tag = t }

// Tag implements Backend: the admin's tag, through the Tagger when one is
// set (one point of the sources' write order for every pair asked for),
// else journaled at each pair's next sequence (a writer fed by this
// process alone).
//
// A name a pair already holds is refused before anything is asked: two
// tags of one name would make tag:NAME ambiguous.
func (b *WriterBackend) Tag(req TagRequest) (TagResult, error) {
	if err := checkTagName(req.Name); err != nil {
		return TagResult{}, err
	}
	ps, err := b.pairs(req.Pairs)
	if err != nil {
		return TagResult{}, err
	}
	if req.App == "" {
		req.App = journal.AppUser
	}
	b.tagMu.Lock()
	defer b.tagMu.Unlock()
	for _, p := range ps {
		if t, ok := b.tagNamed(p, req.Name); ok {
			return TagResult{}, fmt.Errorf("%w: pair %s already has a tag %q (id %s, placed %s UTC): give the new tag another name, so tag:NAME names one point",
				ErrConflict, p.ID(), t.Name, t.ID, t.Time.UTC().Format("2006-01-02 15:04:05"))
		}
	}
	info := journal.TagInfo{Name: req.Name, App: strings.ToUpper(req.App), ID: newID(), Time: b.now().UTC()}
	res := TagResult{Name: info.Name, App: info.App, ID: info.ID, Time: info.Time, Pairs: map[string]uint64{}}
	// Whatever was placed counts, also when the rest failed.
	defer func() {
		for id, seq := range res.Pairs {
			b.placed[id] = append(b.placed[id], journal.Tag{Seq: seq, Time: info.Time, Name: info.Name, App: info.App, ID: info.ID})
		}
	}()
	if b.tag != nil {
		ids := make([]string, len(ps))
		for i, p := range ps {
			ids[i] = p.ID()
		}
		seqs, err := b.tag(b.ctx, ids, info)
		for id, seq := range seqs {
			res.Pairs[id] = seq
		}
		if err != nil {
			return res, fmt.Errorf("%w: %w", ErrConflict, err)
		}
		return res, nil
	}
	for _, p := range ps {
		seq := p.Next()
		if err := p.Tag(seq, info); err != nil {
			return res, fmt.Errorf("%w: pair %s: %w", ErrConflict, p.ID(), err)
		}
		res.Pairs[p.ID()] = seq
	}
	return res, nil
}

// MaxTagName is the longest admin tag name, in bytes.
const MaxTagName = 128

// checkTagName refuses a name that could not be typed back as
// tag:NAME: empty, control characters (a newline, a NUL), spaces at its
// ends, not UTF-8, or longer than MaxTagName.
func checkTagName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return badField("name", "a tag needs a name")
	case !utf8.ValidString(name):
		return badField("name", "tag name %q is not UTF-8 text", name)
	case len(name) > MaxTagName:
		return badField("name", "tag name is %d bytes, at most %d: give a shorter one", len(name), MaxTagName)
	case strings.TrimSpace(name) != name:
		return badField("name", "tag name %q starts or ends with a space: drop it", name)
	}
	if i := strings.IndexFunc(name, unicode.IsControl); i >= 0 {
		return badField("name", "tag name %q holds a control character (%U at byte %d): use letters, digits and punctuation", name, []rune(name[i:])[0], i)
	}
	return nil
}

// tagNamed finds the tag called name that p holds, or that was placed on
// it here and has not reached its store yet. Called with tagMu held.
func (b *WriterBackend) tagNamed(p *writer.Pair, name string) (journal.Tag, bool) {
	stored := p.Store().Tags()
	inStore := make(map[string]bool, len(stored))
	var found *journal.Tag
	for i := range stored {
		inStore[stored[i].ID] = true
		if stored[i].Name == name {
			found = &stored[i]
		}
	}
	// A placed tag the applier has passed is in the store (or was pruned
	// or rolled away with it): no need to keep it.
	applied := p.Store().State().Applied
	placed := b.placed[p.ID()][:0]
	for _, t := range b.placed[p.ID()] {
		if t.Seq > applied && !inStore[t.ID] {
			placed = append(placed, t)
		}
	}
	b.placed[p.ID()] = placed
	if found != nil {
		return *found, true
	}
	for _, t := range placed {
		if t.Name == name {
			return t, true
		}
	}
	return journal.Tag{}, false
}

func (b *WriterBackend) pair(id string) (*writer.Pair, error) {
	p := b.w.Pair(id)
	if p == nil {
		return nil, b.missing(id)
	}
	return p, nil
}

// Pause implements Backend.
func (b *WriterBackend) Pause(id, reason string) (PairStatus, error) {
	p, err := b.pair(id)
	if err != nil {
		return PairStatus{}, err
	}
	if err := p.Pause(reason); err != nil {
		return PairStatus{}, err
	}
	return PairStatus{PairStatus: p.Status()}, nil
}

// Resume implements Backend.
func (b *WriterBackend) Resume(id string) (PairStatus, error) {
	p, err := b.pair(id)
	if err != nil {
		return PairStatus{}, err
	}
	if err := p.Resume(); err != nil {
		return PairStatus{}, err
	}
	return PairStatus{PairStatus: p.Status()}, nil
}

// Tags implements Backend.
func (b *WriterBackend) Tags(id string) ([]journal.Tag, error) {
	p, err := b.pair(id)
	if err != nil {
		return nil, err
	}
	return p.Store().Tags(), nil
}

// Job implements Backend.
func (b *WriterBackend) Job(id string) (Job, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	j, ok := b.jobs[id]
	if !ok {
		return Job{}, fmt.Errorf("job %q: %w", id, ErrUnknownJob)
	}
	return j.snapshot(), nil
}

// snapshot copies j for a caller, outside b.mu: run fills the maps.
func (j *Job) snapshot() Job {
	c := *j
	c.Pairs = slices.Clone(j.Pairs)
	c.Points = maps.Clone(j.Points)
	c.Results = maps.Clone(j.Results)
	return c
}

// ResolveStores is the agent's one rule for where a point lies in the
// retention stores of the pairs recovered together, keyed by pair: one
// pair's own point (recovery.Resolve), or for several one consistent
// multi-disk point (recovery.ResolveGroup). Recover and Resolve use it,
// so what the console shows before a recovery is what it recovers.
func ResolveStores(stores map[string]*journal.Store, pt recovery.Point) (map[string]recovery.Resolved, error) {
	if len(stores) == 1 {
		for id, st := range stores {
			r, err := recovery.Resolve(st, pt)
			if err != nil {
				return nil, err
			}
			return map[string]recovery.Resolved{id: r}, nil
		}
	}
	return recovery.ResolveGroup(stores, pt)
}

// Resolve implements Backend: the point in the pairs asked for (every
// pair for none), as Recover would resolve it now.
func (b *WriterBackend) Resolve(req ResolveRequest) (Resolution, error) {
	pt, err := recovery.ParsePoint(req.Point)
	if err != nil {
		return Resolution{}, badField("point", "%v", err)
	}
	if req.Pairs, err = b.groupPairs(req.Group, req.Pairs); err != nil {
		return Resolution{}, err
	}
	ps, err := b.pairs(req.Pairs)
	if err != nil {
		return Resolution{}, err
	}
	stores := map[string]*journal.Store{}
	for _, p := range ps {
		stores[p.ID()] = p.Store()
	}
	points, err := ResolveStores(stores, pt)
	if err != nil {
		return Resolution{}, badField("point", "%v", err)
	}
	return Resolution{Point: pt.String(), Points: points}, nil
}

// Recover implements Backend: it checks the request, resolves the point
// in every pair (one multi-disk point for several) and starts the job.
func (b *WriterBackend) Recover(req RecoverRequest) (Job, error) {
	pt, err := recovery.ParsePoint(req.Point)
	if err != nil {
		return Job{}, badField("point", "%v", err)
	}
	switch req.Mode {
	case ModeExport:
		if req.Dest == "" {
			return Job{}, badField("dest", "export needs dest: a new file (a directory for several pairs)")
		}
		if !filepath.IsAbs(req.Dest) {
			return Job{}, badField("dest", "%q is not an absolute path: the agent's working directory is not yours", req.Dest)
		}
	case ModeRollback:
		if req.Dest != "" {
			return Job{}, badField("dest", "a rollback writes the target in place and takes no dest")
		}
	default:
		return Job{}, badField("mode", "%q: want rollback or export", req.Mode)
	}
	if req.Pairs, err = b.groupPairs(req.Group, req.Pairs); err != nil {
		return Job{}, err
	}
	ps, err := b.pairs(req.Pairs)
	if err != nil {
		return Job{}, err
	}
	ids := make([]string, len(ps))
	stores := map[string]*journal.Store{}
	for i, p := range ps {
		ids[i] = p.ID()
		stores[p.ID()] = p.Store()
	}
	points, err := ResolveStores(stores, pt)
	if err != nil {
		return Job{}, badField("point", "%v", err)
	}
	dests := map[string]string{}
	if req.Mode == ModeExport {
		for _, id := range ids {
			dests[id] = req.Dest
			if len(ps) > 1 {
				dests[id] = filepath.Join(req.Dest, id+".img")
			}
		}
		// A pair's own file is refused first, by what it is.
		if err := b.checkDests(req.Dest, dests); err != nil {
			return Job{}, err
		}
		if len(ps) == 1 {
			if _, err := os.Stat(req.Dest); err == nil {
				return Job{}, badField("dest", "%s exists: give a new path", req.Dest)
			}
			if fi, err := os.Stat(filepath.Dir(req.Dest)); err != nil || !fi.IsDir() {
				return Job{}, badField("dest", "%s is not a directory", filepath.Dir(req.Dest))
			}
		} else {
			for _, id := range ids {
				if _, err := os.Stat(dests[id]); err == nil {
					return Job{}, badField("dest", "%s exists: give a new directory", dests[id])
				}
			}
		}
	}
	cfgs := map[string]writer.PairConfig{}
	b.mu.Lock()
	for _, id := range ids {
		if other, ok := b.busy[id]; ok {
			b.mu.Unlock()
			return Job{}, fmt.Errorf("%w: pair %s is being recovered by job %s", ErrConflict, id, other)
		}
		if req.Mode == ModeRollback {
			if v := b.viewOfLocked(id); v != "" {
				b.mu.Unlock()
				return Job{}, fmt.Errorf("%w: pair %s has view %s open: a rollback would rewrite the target under it; close it first (mtconsole view close %s)", ErrConflict, id, v, v)
			}
			c, ok := b.configs[id]
			if !ok {
				b.mu.Unlock()
				return Job{}, fmt.Errorf("%w: pair %s: the agent does not know its retention directory", ErrConflict, id)
			}
			cfgs[id] = c
		}
	}
	b.nextJob++
	j := &Job{ID: fmt.Sprintf("j%d", b.nextJob), Mode: req.Mode, Point: pt.String(), Pairs: ids, Dest: req.Dest,
		State: JobRunning, Started: b.now().UTC(), Points: points, Results: map[string]recovery.Result{}}
	b.jobs[j.ID] = j
	for _, id := range ids {
		b.busy[id] = j.ID
	}
	snap := j.snapshot()
	b.mu.Unlock()
	// Recorded before it starts: an agent killed while it runs reports it
	// interrupted when it starts again.
	if err := b.saveJob(snap); err != nil {
		b.mu.Lock()
		delete(b.jobs, j.ID)
		for _, id := range ids {
			delete(b.busy, id)
		}
		b.mu.Unlock()
		return Job{}, err
	}
	b.publish(EventJob, slog.LevelInfo, fmt.Sprintf("%s of %s to %s started", j.Mode, strings.Join(ids, ","), j.Point),
		JobEvent{ID: j.ID, Kind: JobStarted, Mode: j.Mode, Point: j.Point, Pairs: slices.Clone(ids)})
	b.wg.Add(1)
	go b.run(j, ps, points, dests, cfgs)
	return snap, nil
}

// publish puts a job's event on the stream: typed, with msg the line
// for the log.
func (b *WriterBackend) publish(kind string, level slog.Level, msg string, je JobEvent) {
	b.hub.PublishEvent(Event{Event: writer.Event{Time: b.now().UTC(), Pair: je.Pair, Kind: kind, Level: level,
		Message: "job " + je.ID + ": " + msg}, Job: &je})
}

// run is the job: it belongs to the agent, not to the request that
// started it, so a client that goes away does not stop it.
func (b *WriterBackend) run(j *Job, ps []*writer.Pair, points map[string]recovery.Resolved, dests map[string]string,
	cfgs map[string]writer.PairConfig) {
	defer b.wg.Done()
	var total int64
	sizes := map[string]int64{} // before a rollback closes the pair
	for _, p := range ps {
		sizes[p.ID()] = p.Status().TargetBytes
		total += sizes[p.ID()]
	}
	b.mu.Lock()
	j.TotalBytes = total
	b.mu.Unlock()
	var base int64 // bytes of the pairs finished
	var last time.Time
	var err error
	for _, p := range ps {
		id := p.ID()
		published := int64(-1) // the last done published: the end is reported once
		progress := func(done, tot int64) {
			b.mu.Lock()
			j.DoneBytes = base + done
			b.mu.Unlock()
			if b.onProgress != nil {
				b.onProgress(j.ID, base+done)
			}
			if now := time.Now(); done != published && (now.Sub(last) >= 250*time.Millisecond || done == tot) {
				last, published = now, done
				pct := 100.0
				if tot > 0 {
					pct = 100 * float64(done) / float64(tot)
				}
				b.publish(EventProgress, slog.LevelInfo, fmt.Sprintf("%s %s %.1f%% (%d of %d bytes)", j.Mode, id, pct, done, tot),
					JobEvent{ID: j.ID, Kind: JobProgress, Pair: id, Done: base + done, Total: total})
			}
		}
		var res recovery.Result
		if j.Mode == ModeExport {
			res, err = b.export(p, points[id], dests[id], len(ps) > 1, progress)
		} else {
			res, err = b.rollback(p, cfgs[id], points[id], progress)
		}
		if err != nil {
			err = fmt.Errorf("pair %s: %w", id, err)
			break
		}
		base += sizes[id]
		b.mu.Lock()
		j.Results[id] = res
		b.mu.Unlock()
	}
	// The end is recorded before it is shown: whoever sees the job end
	// finds its record ended too.
	b.mu.Lock()
	end := j.snapshot()
	b.mu.Unlock()
	end.Finished, end.State = b.now().UTC(), JobDone
	switch {
	case err != nil && b.ctx.Err() != nil: // Close: the agent stops
		end.State, end.Error = JobInterrupted, "the agent stopped while it ran: "+err.Error()
	case err != nil:
		end.State, end.Error = JobFailed, err.Error()
	default:
		end.DoneBytes = end.TotalBytes
	}
	if serr := b.saveJob(end); serr != nil {
		b.hub.Publish(writer.Event{Time: b.now().UTC(), Kind: writer.EventLog, Level: slog.LevelWarn, Message: "job " + j.ID + ": " + serr.Error()})
	}
	b.mu.Lock()
	j.Finished, j.State, j.Error, j.DoneBytes = end.Finished, end.State, end.Error, end.DoneBytes
	for _, id := range j.Pairs {
		delete(b.busy, id)
	}
	b.mu.Unlock()
	je := JobEvent{ID: j.ID, Kind: end.State, Done: end.DoneBytes, Total: end.TotalBytes, Err: end.Error}
	if err != nil {
		b.publish(EventJob, slog.LevelError, "failed: "+end.Error, je)
	} else {
		b.publish(EventJob, slog.LevelInfo, "done", je)
	}
}

func (b *WriterBackend) export(p *writer.Pair, r recovery.Resolved, dest string, group bool, progress recovery.Progress) (recovery.Result, error) {
	if group {
		if err := os.MkdirAll(filepath.Dir(dest), 0o700); err != nil {
			return recovery.Result{}, err
		}
	}
	return p.Export(b.ctx, r, dest, progress)
}

// rollback ends the pair (it leaves the session, the writer lets go of
// it, the other pairs go on), then rolls the target back in place from its
// retention store, opened as `mtconsole retention rollback` opens it. The
// pair stays ended, with the outcome as its reason.
func (b *WriterBackend) rollback(p *writer.Pair, cfg writer.PairConfig, r recovery.Resolved, progress recovery.Progress) (recovery.Result, error) {
	target := p.Status().Target
	if err := b.endPair(p.ID(), "rolling back to "+r.String()); err != nil {
		return recovery.Result{}, fmt.Errorf("stopping the pair: %w", err)
	}
	res, err := b.rollbackStore(cfg, target, r, progress)
	reason := "rolled back to " + r.String() // as the retention store says
	if err != nil {
		reason = "rollback failed: " + err.Error()
	}
	if eerr := b.endPair(p.ID(), reason); err == nil && eerr != nil {
		err = eerr
	}
	return res, err
}

func (b *WriterBackend) rollbackStore(cfg writer.PairConfig, target string, r recovery.Resolved, progress recovery.Progress) (recovery.Result, error) {
	st, err := journal.OpenStore(journal.StoreOptions{Dir: cfg.RetentionDir, CatalogueDir: cfg.CatalogueDir, Pair: cfg.ID})
	if err != nil {
		return recovery.Result{}, err
	}
	defer st.Close()
	tf, err := vfs.OS.OpenFile(target, os.O_RDWR, 0)
	if err != nil {
		return recovery.Result{}, fmt.Errorf("target: %w", err)
	}
	res, err := recovery.Rollback(b.ctx, st, tf, r, progress)
	if cerr := tf.Close(); err == nil {
		err = cerr
	}
	return res, err
}

func newID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var _ Backend = (*WriterBackend)(nil)
