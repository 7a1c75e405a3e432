package agent

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// Reloader applies a changed configuration file to a running agent: the
// settings tagged reload:"live" (retention policies and RPO thresholds)
// at once, to the running pairs; the others it names in the log as taking
// effect when the agent restarts. What a setting does is its tag on
// FileConfig, nothing else: a reload walks the type.
type Reloader struct {
	started *FileConfig // what the agent runs with: restart settings are compared to it
	w       *writer.Writer
	logger  *slog.Logger
	// live is each running pair's policy as last applied: a reload
	// compares to it, so a file changed back is applied back.
	live map[string]livePolicy
}

type livePolicy struct {
	policy journal.Policy
	rpo    time.Duration
}

// NewReloader makes the Reloader of an agent started with started, whose
// pairs run in w; it logs to logger.
func NewReloader(started *FileConfig, w *writer.Writer, logger *slog.Logger) *Reloader {
	r := &Reloader{started: started, w: w, logger: logger, live: map[string]livePolicy{}}
	for _, p := range started.ClientConfig().Pairs {
		r.live[p.ID] = livePolicy{p.Policy, p.RPOThreshold}
	}
	return r
}

// Reload reads the file again and applies it: a file with an error
// changes nothing (it is logged, and the running configuration stays).
func (r *Reloader) Reload() {
	path := r.started.Path()
	next, err := LoadConfig(path)
	if err != nil {
		r.logger.Error("reload refused, the running configuration stays", "err", err)
		return
	}
	restart := RestartChanges(r.started, next)
	// The pairs this process runs: their live settings apply unless the
	// pair itself changed (a new target, disk or id needs a restart).
	running := map[string]bool{}
	for _, p := range r.started.Pairs {
		running[p.ID] = true
	}
	for _, p := range next.Pairs {
		if !running[p.ID] {
			continue
		}
		for _, o := range r.started.Pairs {
			if o.ID == p.ID && len(restartChanges("", reflect.ValueOf(o), reflect.ValueOf(p))) > 0 {
				running[p.ID] = false
			}
		}
	}
	changed := 0
	for _, p := range next.ClientConfig().Pairs {
		want := livePolicy{p.Policy, p.RPOThreshold}
		if !running[p.ID] || r.live[p.ID] == want {
			continue
		}
		if wp := r.w.Pair(p.ID); wp != nil {
			if err := wp.SetPolicy(p.Policy, p.RPOThreshold); err != nil {
				r.logger.Error("reload: policy not applied", "pair", p.ID, "err", err)
				continue
			}
			r.live[p.ID] = want
			changed++
		}
	}
	r.logger.Info("configuration reloaded", "path", path, "policies_changed", changed)
	if len(restart) > 0 {
		r.logger.Warn("reload: these changes take effect when the agent restarts", "changes", fmt.Sprint(restart))
	}
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
