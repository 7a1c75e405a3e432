package agent

import (
	"fmt"
	"log/slog"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
)

// Reloader applies a changed configuration file to a running agent: the
// settings tagged reload:"live" (retention policies, RPO thresholds, a
// pair's group, the groups and their consistency intervals) at once, to
// the running pairs; a [[pair]] new in the file starts and one gone from
// it stops (Client.AddPair, Client.RemovePair), the others untouched. The
// other settings, and a running pair's disk or target, it names as taking
// effect when the agent restarts. What a setting does is its tag on
// FileConfig, nothing else: a reload walks the type.
type Reloader struct {
	mu      sync.Mutex
	started *FileConfig // what the agent runs with: restart settings are compared to it
	c       *Client
	logger  *slog.Logger
	// pairs are the file's entries of the running pairs, as they were
	// started: a reload compares a pair's restart settings to them.
	pairs map[string]filePair
	// live is each running pair's policy and group as last applied: a
	// reload compares to it, so a file changed back is applied back.
	live   map[string]livePolicy
	groups []GroupConfig
	// stopped: the agent is shutting down; a reload changes nothing.
	stopped bool
}

// Stop ends reloading: it waits for a reload under way, and every later
// one changes nothing and says so. The daemon stops its Reloader before
// it closes the pairs, so a SIGHUP or POST /v1/reload at shutdown never
// starts or stops a pair that is being closed.
func (r *Reloader) Stop() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

// filePair is a [[pair]] table of the file.
type filePair = struct {
	Disk       string `toml:"disk" reload:"restart"`
	Target     string `toml:"target" reload:"restart"`
	ID         string `toml:"id" reload:"key"`
	Group      string `toml:"group" reload:"live"`
	PairPolicy `reload:"live"`
}

type livePolicy struct {
	policy journal.Policy
	rpo    time.Duration
	group  string
	alert  float64
}

func (a livePolicy) equal(b livePolicy) bool {
	return policyEqual(a.policy, b.policy) && a.rpo == b.rpo && a.group == b.group && a.alert == b.alert
}

func policyEqual(a, b journal.Policy) bool {
	return a.Window == b.Window && a.SizeCap == b.SizeCap && a.OnFull == b.OnFull && slices.Equal(a.Tiers, b.Tiers)
}

func livePolicyOf(p PairConfig) livePolicy {
	return livePolicy{p.Policy, p.RPOThreshold, p.Group, p.AlertPercent}
}

// NewReloader makes the Reloader of an agent started with started, whose
// pairs run in c; it logs to logger.
func NewReloader(started *FileConfig, c *Client, logger *slog.Logger) *Reloader {
	r := &Reloader{started: started, c: c, logger: logger, pairs: map[string]filePair{}, live: map[string]livePolicy{}}
	for _, p := range started.Pairs {
		r.pairs[p.ID] = p
	}
	cfg := started.ClientConfig()
	for _, p := range cfg.Pairs {
		r.live[p.ID] = livePolicyOf(p)
	}
	r.groups = cfg.Groups
	c.SetGroups(cfg.Groups)
	return r
}

// ReloadOptions are how a reload goes beyond the file.
type ReloadOptions struct {
	// Purge removes the journal and retention directories of the pairs
	// it stops (never their targets).
	Purge bool
}

// Reload reads the file again and applies it: a file with an error
// changes nothing (it is logged, the running configuration stays, and
// the result's Error says why).
func (r *Reloader) Reload() api.ReloadResult { return r.ReloadWith(ReloadOptions{}) }

// ReloadWith is Reload with options.
func (r *Reloader) ReloadWith(o ReloadOptions) api.ReloadResult {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := api.ReloadResult{Applied: []string{}, Started: []string{}, Stopped: []string{}, Restart: []string{}}
	if r.stopped {
		res.Error = "the agent is stopping: reload refused, nothing changed"
		return res
	}
	path := r.started.Path()
	next, err := LoadConfig(path)
	if err != nil {
		r.logger.Error("reload refused, the running configuration stays", "err", err)
		res.Error = err.Error()
		return res
	}
	// What runs, as a file: the agent's settings as started, the pairs
	// as each was started, so only what changed since is named.
	running := *r.started
	running.Pairs = nil
	for _, p := range r.started.Pairs {
		if q, ok := r.pairs[p.ID]; ok {
			running.Pairs = append(running.Pairs, q)
		}
	}
	for id, q := range r.pairs {
		if !slices.ContainsFunc(r.started.Pairs, func(p filePair) bool { return p.ID == id }) {
			running.Pairs = append(running.Pairs, q)
		}
	}
	running.Groups = next.Groups // every group setting is live
	for _, ch := range RestartChanges(&running, next) {
		// pairs come and go live
		if strings.HasPrefix(ch, "new pair ") || strings.HasPrefix(ch, "removed pair ") {
			continue
		}
		res.Restart = append(res.Restart, ch)
	}
	// A pair whose disk or target changed stays as it runs.
	changed := map[string]bool{}
	for _, p := range next.Pairs {
		if o, ok := r.pairs[p.ID]; ok && len(restartChanges("", reflect.ValueOf(o), reflect.ValueOf(p))) > 0 {
			changed[p.ID] = true
		}
	}
	cfg := next.ClientConfig()
	inNext := map[string]bool{}
	for _, p := range cfg.Pairs {
		inNext[p.ID] = true
	}
	// Stopped first: a disk may move from a removed pair to a new one.
	for _, id := range slices.Sorted(maps.Keys(r.pairs)) {
		if inNext[id] {
			continue
		}
		if err := r.c.RemovePair(id, o.Purge); err != nil {
			r.logger.Error("reload: pair not stopped cleanly", "pair", id, "err", err)
			res.Error = joinErr(res.Error, err.Error())
		}
		delete(r.pairs, id)
		delete(r.live, id)
		res.Stopped = append(res.Stopped, id)
	}
	// Groups: their consistency intervals, at once.
	if !slices.Equal(r.groups, cfg.Groups) {
		old := map[string]GroupConfig{}
		for _, g := range r.groups {
			old[g.Name] = g
		}
		for _, g := range cfg.Groups {
			switch og, ok := old[g.Name]; {
			case !ok:
				res.Applied = append(res.Applied, "new group "+g.Name)
			case og != g:
				res.Applied = append(res.Applied, "group "+g.Name+" consistency_interval")
			}
			delete(old, g.Name)
		}
		for _, name := range slices.Sorted(maps.Keys(old)) {
			res.Applied = append(res.Applied, "removed group "+name)
		}
		r.groups = cfg.Groups
		r.c.SetGroups(cfg.Groups)
	}
	policies := 0
	for i, p := range cfg.Pairs {
		if _, ok := r.pairs[p.ID]; !ok {
			if err := r.c.AddPair(p); err != nil {
				r.logger.Error("reload: pair not started", "pair", p.ID, "disk", p.Disk, "err", err)
				res.Error = joinErr(res.Error, err.Error())
				continue
			}
			r.pairs[p.ID] = next.Pairs[i]
			r.live[p.ID] = livePolicyOf(p)
			res.Started = append(res.Started, p.ID)
			continue
		}
		if changed[p.ID] {
			continue
		}
		want := livePolicyOf(p)
		was := r.live[p.ID]
		if was.equal(want) {
			continue
		}
		if want.group != was.group {
			r.c.SetGroup(p.ID, p.Group)
			res.Applied = append(res.Applied, "pair "+p.ID+" group")
		}
		if !policyEqual(want.policy, was.policy) || want.rpo != was.rpo {
			if wp := r.c.Writer().Pair(p.ID); wp != nil {
				if err := wp.SetPolicy(p.Policy, p.RPOThreshold); err != nil {
					r.logger.Error("reload: policy not applied", "pair", p.ID, "err", err)
					res.Error = joinErr(res.Error, fmt.Sprintf("pair %s: policy not applied: %v", p.ID, err))
					want.policy, want.rpo = was.policy, was.rpo
				} else {
					policies++
					res.Applied = append(res.Applied, "pair "+p.ID+" policy")
				}
			}
		}
		if want.alert != was.alert {
			if wp := r.c.Writer().Pair(p.ID); wp != nil {
				wp.SetAlertPercent(want.alert)
				res.Applied = append(res.Applied, "pair "+p.ID+" alert_threshold_percent")
			}
		}
		// the file's entry keeps its restart settings as started
		q := r.pairs[p.ID]
		q.Group, q.PairPolicy = next.Pairs[i].Group, next.Pairs[i].PairPolicy
		r.pairs[p.ID] = q
		r.live[p.ID] = want
	}
	r.logger.Info("configuration reloaded", "path", path, "policies_changed", policies,
		"applied", fmt.Sprint(res.Applied), "started", fmt.Sprint(res.Started), "stopped", fmt.Sprint(res.Stopped))
	if len(res.Restart) > 0 {
		r.logger.Warn("reload: these changes take effect when the agent restarts", "changes", fmt.Sprint(res.Restart))
	}
	return res
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// RestartChanges names the settings that differ between a and b and take
// effect only when the agent restarts (reload:"restart"), as the file
// spells them ("process_server.address", "pair sda target"), with a list
// element whose key is new or gone as "new pair ID" or "removed pair ID".
func RestartChanges(a, b *FileConfig) []string {
	return restartChanges("", reflect.ValueOf(*a), reflect.ValueOf(*b))
}

// restartChanges walks the struct values a and b (of one type) by their
// fields' reload tags; prefix is put before every name.
func restartChanges(prefix string, a, b reflect.Value) []string {
	var out []string
	t := a.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		av, bv := a.Field(i), b.Field(i)
		name := prefix + tomlName(f)
		switch tag := f.Tag.Get(reloadTag); {
		case tag == reloadLive || tag == reloadKey:
		case tag == "" && f.Type.Kind() == reflect.Struct:
			sub := name + "."
			if f.Anonymous && tomlName(f) == "" {
				sub = prefix
			}
			out = append(out, restartChanges(sub, av, bv)...)
		case tag == "" && f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			out = append(out, listChanges(tomlName(f), av, bv)...)
		default:
			// reload:"restart", or an untagged setting (TestReloadTags
			// refuses one): a restart is the safe reading.
			if !reflect.DeepEqual(av.Interface(), bv.Interface()) {
				out = append(out, name)
			}
		}
	}
	return out
}

// listChanges compares two lists of tables by their elements' key
// (reload:"key"): an element new or gone needs a restart, and so does a
// restart setting of an element in both.
func listChanges(name string, a, b reflect.Value) []string {
	key := -1
	for i := range a.Type().Elem().NumField() {
		if a.Type().Elem().Field(i).Tag.Get(reloadTag) == reloadKey {
			key = i
		}
	}
	if key < 0 { // no key: any change needs a restart (TestReloadTags refuses it)
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			return []string{name}
		}
		return nil
	}
	keyOf := func(v reflect.Value) string { return fmt.Sprint(v.Field(key).Interface()) }
	old := map[string]reflect.Value{}
	for i := range a.Len() {
		old[keyOf(a.Index(i))] = a.Index(i)
	}
	var out []string
	seen := map[string]bool{}
	for i := range b.Len() {
		e := b.Index(i)
		k := keyOf(e)
		seen[k] = true
		o, ok := old[k]
		if !ok {
			out = append(out, "new "+name+" "+k)
			continue
		}
		out = append(out, restartChanges(name+" "+k+" ", o, e)...)
	}
	for i := range a.Len() {
		if k := keyOf(a.Index(i)); !seen[k] {
			out = append(out, "removed "+name+" "+k)
		}
	}
	return out
}

// The reload tag and its values (see FileConfig).
const (
	reloadTag     = "reload"
	reloadLive    = "live"
	reloadRestart = "restart"
	reloadKey     = "key"
)

// tomlName is the name the file gives a field.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "" && !f.Anonymous {
		return f.Name
	}
	return name
}
