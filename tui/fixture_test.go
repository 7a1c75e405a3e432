package tui

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// fxNow is the tests' fixed clock.
var fxNow = time.Date(2026, 11, 26, 10, 5, 30, 0, time.UTC)

func fxClock() time.Time { return fxNow }

const mb = 1000 * 1000

func fxPair(id, state, health, reason string, rpo float64, backlog int64, bps float64) api.PairStatus {
	from := fxNow.Add(-2 * time.Hour)
	tag := &journal.Tag{Seq: 900, Time: fxNow.Add(-70 * time.Second), Name: "crash-1004", App: journal.AppCrash, ID: "c-" + id,
		Accuracy: journal.Exact}
	if id == "p4" {
		tag = nil
	}
	return api.PairStatus{
		PairStatus: writer.PairStatus{
			ID: id, Target: "/dev/disk/by-id/scsi-mt-" + id, TargetBytes: 64 << 30, Health: health, Reason: reason,
			AppliedSeq: 1000, DurableSeq: 1004, BacklogBytes: backlog, BacklogSeconds: float64(backlog) / (4 * mb),
			RPOSeconds: rpo, RPOThreshold: 30, ThroughputBps: bps, LastAck: fxNow.Add(-time.Second),
			Retention: writer.RetentionStatus{UsedBytes: 12 * 1000 * mb, CapBytes: 20 * 1000 * mb, Window: 24 * time.Hour,
				OnFull: "purge", From: from, To: fxNow.Add(-time.Duration(rpo) * time.Second), FromSeq: 10, ToSeq: 1000,
				Segments: 12, Tags: 6, LatestTag: tag},
		},
		State: state,
	}
}

// fxStatus is five pairs, one in each health, one resyncing.
func fxStatus(step int) api.Status {
	wave := float64(step%5) * 2 * mb
	ps := []api.PairStatus{
		fxPair("p1", "Differential Sync", writer.HealthOK, "", 2+float64(step%3), 0, 40*mb+wave),
		fxPair("p2", "Differential Sync", writer.HealthRPO, "RPO 2m05s exceeds the threshold of 30s", 125, 900*mb, 3*mb),
		fxPair("p3", "Differential Sync", writer.HealthPaused, "paused by the administrator", 600, 2*1000*mb, 0),
		fxPair("p4", "Resync Step I", writer.HealthOK, "", 1, 0, 110*mb),
		fxPair("p5", "Queued", writer.HealthError, "target: input/output error: replace the disk and resume", 3600, 0, 0),
	}
	ps[0].Fsync = []writer.FsyncLatency{{File: writer.FileJournal, Count: 900, P50Seconds: 0.0008, P99Seconds: 0.0064},
		{File: writer.FileRetention, Count: 120, P50Seconds: 0.0016, P99Seconds: 0.0256}, {File: writer.FileTarget, Count: 120, P50Seconds: 0.0032, P99Seconds: 0.4096}}
	ps[3].Resync = &api.ResyncProgress{Step: "Resync Step I", DoneBytes: 29 << 30, TotalBytes: 64 << 30, ETASeconds: 330}
	return api.Status{HostInfo: api.HostInfo{Host: "mt-lab-01", Version: "test", Started: fxNow.Add(-3 * time.Hour)},
		UptimeSeconds: 3 * 3600, Pairs: ps}
}

func fxTags(pair string) []journal.Tag {
	base := fxNow.Add(-time.Hour)
	var tags []journal.Tag
	for i, tc := range []struct {
		name, app string
		acc       journal.Accuracy
		locked    bool
	}{
		{"baseline", journal.AppUser, journal.Exact, true},
		{"crash-0915", journal.AppCrash, journal.Exact, false},
		{"sql-0930", "SQL", journal.Exact, false},
		{"crash-0945", journal.AppCrash, journal.Approximate, false},
		{"before-patch", journal.AppUser, journal.Exact, false},
		{"crash-1004", journal.AppCrash, journal.Exact, false},
	} {
		tags = append(tags, journal.Tag{Seq: uint64(100 * (i + 1)), Time: base.Add(time.Duration(i) * 12 * time.Minute),
			Name: tc.name, App: tc.app, ID: fmt.Sprintf("%s-%d", pair, i), Accuracy: tc.acc, Locked: tc.locked, Verified: true})
	}
	return tags
}

func ev(ago time.Duration, pair, kind string, level slog.Level, msg string) *writer.Event {
	return &writer.Event{Time: fxNow.Add(-ago), Pair: pair, Kind: kind, Level: level, Message: msg}
}

// fxEntries is the recording the golden files are drawn from: 20
// snapshots a second apart, events, and p1's and p2's tags.
func fxEntries() []Entry {
	var es []Entry
	for _, e := range []*writer.Event{
		ev(40*time.Minute, "p3", writer.EventState, slog.LevelInfo, "paused: paused by the administrator"),
		ev(30*time.Minute, "p1", writer.EventLog, slog.LevelInfo, "resync complete: differential sync"),
		ev(20*time.Minute, "p5", writer.EventAlert, slog.LevelError, "target: input/output error: replace the disk and resume"),
		ev(10*time.Minute, "p1", writer.EventState, slog.LevelInfo, "RPO back under the threshold (12s)"),
		ev(5*time.Minute, "p2", writer.EventAlert, slog.LevelWarn, "RPO 2m05s exceeds the threshold of 30s"),
		ev(3*time.Minute, "p1", writer.EventAlert, slog.LevelWarn, "retention 60% used, alert threshold 60%"),
		ev(70*time.Second, "p1", writer.EventTag, slog.LevelInfo, "tag crash-1004 (CRASH) at sequence 900"),
		ev(30*time.Second, "", writer.EventLog, slog.LevelDebug, "heartbeat from process server ps1"),
	} {
		es = append(es, Entry{At: e.Time, Event: e})
	}
	for i := range 20 {
		st := fxStatus(i)
		es = append(es, Entry{At: fxNow.Add(time.Duration(i-19) * time.Second), Status: &st})
	}
	for _, p := range []string{"p1", "p2"} {
		es = append(es, Entry{At: fxNow, Tags: &PairTags{Pair: p, Tags: fxTags(p)}})
	}
	return es
}

// fxReplay is fxEntries written by a Recorder and read back, so every
// golden also proves the recording round trip.
func fxReplay(t testing.TB) *Replay {
	t.Helper()
	var buf bytes.Buffer
	rec := NewRecorder(&buf)
	for _, e := range fxEntries() {
		rec.Write(e.Msg())
	}
	if err := rec.Err(); err != nil {
		t.Fatal(err)
	}
	rp, err := ReadReplay(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rp.Speed = 0
	return rp
}

// fakeActions records what the console asks of the agent. It finds
// points as the agent does (api.ResolveStores) in real retention stores:
// stores[pair] when set, else one built from fxTags (newFx and startFlow
// give it a testing.TB to build them with).
type fakeActions struct {
	mu      sync.Mutex
	tags    []api.TagRequest
	pauses  []string
	resumes []string
	recs    []api.RecoverRequest
	fail    error // every change fails with it when set
	job     api.Job
	tb      testing.TB
	stores  map[string]*journal.Store
	events  []api.JobEvent // what FollowJob gives before the job's end
	// groups are the machines the agent knows, by name (a pair in none
	// is a group of its own): Resolve and Recover take one for its pairs.
	groups map[string][]string
	views  []api.ViewRequest
	dir    string           // where bind lets f build stores
	built  []*journal.Store // the stores f built, closed at the test's end
	done   bool             // the test is over: build no more
}

// groupPairs is what the agent does with a request's group: its pairs,
// refused with pairs too or when unknown.
func (f *fakeActions) groupPairs(group string, pairs []string) ([]string, error) {
	if group == "" {
		return pairs, nil
	}
	if len(pairs) > 0 {
		return nil, &api.FieldError{Field: "group", Msg: "give a group or pairs, not both"}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ids := f.groups[group]
	if len(ids) == 0 {
		return nil, &api.FieldError{Field: "group", Msg: fmt.Sprintf("no group %q on this agent", group)}
	}
	return slices.Clone(ids), nil
}

// buildStore is a pair's retention store holding tags, applied up to
// applied at time at; the test closes it at its end.
func buildStore(tb testing.TB, pair string, tags []journal.Tag, applied uint64, at time.Time) *journal.Store {
	tb.Helper()
	st, err := makeStore(tb.TempDir(), pair, tags, applied, at)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// makeStore is buildStore's work, its catalogue in dir.
func makeStore(dir, pair string, tags []journal.Tag, applied uint64, at time.Time) (*journal.Store, error) {
	st, err := journal.OpenStore(journal.StoreOptions{FS: vfs.NewMem(), Dir: "/r/" + pair, Pair: pair, CatalogueDir: dir})
	if err != nil {
		return nil, err
	}
	tags = slices.Clone(tags)
	slices.SortStableFunc(tags, func(a, b journal.Tag) int { return cmp.Compare(a.Seq, b.Seq) })
	// A write just before each tag and before the applied position:
	// points to recover to between them.
	commit := func(seq uint64, at time.Time, tags ...journal.Tag) error {
		if err := st.Append([]journal.Record{{Type: journal.TypeUndo, Seq: seq - 1, Time: at, Data: make([]byte, 512)}}); err != nil {
			return err
		}
		if err := st.Sync(); err != nil {
			return err
		}
		return st.Commit(journal.Commit{Applied: seq, AppliedTime: at, Accuracy: journal.Exact, FirstTime: at, Tags: tags})
	}
	for _, t := range tags {
		if err := commit(t.Seq, t.Time, t); err != nil {
			st.Close()
			return nil, err
		}
	}
	if err := commit(applied, at); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// bind gives f the test it serves: the stores f builds when first asked
// (from a command of the program under test, which may still run when the
// test ends) are closed and removed at the test's end under f.mu, after
// which f builds no more.
func (f *fakeActions) bind(tb testing.TB) {
	f.tb = tb
	dir, err := os.MkdirTemp("", "tui-fake-stores-")
	if err != nil {
		tb.Fatal(err)
	}
	f.dir = dir
	tb.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.done = true
		for _, st := range f.built {
			st.Close()
		}
		os.RemoveAll(dir)
	})
}

// storesFor are the stores of pairs (every pair of the fixture for none).
func (f *fakeActions) storesFor(pairs []string) (map[string]*journal.Store, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(pairs) == 0 {
		pairs = []string{"p1", "p2", "p3", "p4", "p5"}
	}
	if f.stores == nil {
		f.stores = map[string]*journal.Store{}
	}
	out := map[string]*journal.Store{}
	for _, id := range pairs {
		st := f.stores[id]
		if st == nil {
			if f.done {
				return nil, errors.New("fakeActions: the test is over")
			}
			if f.dir == "" {
				return nil, errors.New("fakeActions: no stores and no test to build them for (bind)")
			}
			d, err := os.MkdirTemp(f.dir, id+"-")
			if err != nil {
				return nil, err
			}
			if st, err = makeStore(d, id, fxTags(id), 1000, fxNow.Add(-time.Second)); err != nil {
				return nil, err
			}
			f.stores[id] = st
			f.built = append(f.built, st)
		}
		out[id] = st
	}
	return out, nil
}

func (f *fakeActions) resolve(point string, pairs []string) (map[string]recovery.Resolved, error) {
	pt, err := recovery.ParsePoint(point)
	if err != nil {
		return nil, &api.FieldError{Field: "point", Msg: err.Error()}
	}
	stores, err := f.storesFor(pairs)
	if err != nil {
		return nil, err
	}
	points, err := api.ResolveStores(stores, pt)
	if err != nil {
		return nil, &api.FieldError{Field: "point", Msg: err.Error()}
	}
	return points, nil
}

func (f *fakeActions) Resolve(_ context.Context, req api.ResolveRequest) (api.Resolution, error) {
	pairs, err := f.groupPairs(req.Group, req.Pairs)
	if err != nil {
		return api.Resolution{}, err
	}
	points, err := f.resolve(req.Point, pairs)
	if err != nil {
		return api.Resolution{}, err
	}
	pt, _ := recovery.ParsePoint(req.Point)
	return api.Resolution{Point: pt.String(), Points: points}, nil
}

func (f *fakeActions) FollowJob(ctx context.Context, id string, fn func(api.JobEvent)) (api.Job, error) {
	f.mu.Lock()
	evs := slices.Clone(f.events)
	f.mu.Unlock()
	for _, e := range evs {
		if e.ID == id {
			fn(e)
		}
	}
	return f.Job(ctx, id)
}

func (f *fakeActions) Tag(_ context.Context, req api.TagRequest) (api.TagResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tags = append(f.tags, req)
	return api.TagResult{Name: req.Name, App: journal.AppUser, Time: fxNow}, f.fail
}

func (f *fakeActions) Pause(_ context.Context, pair, _ string) (api.PairStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pauses = append(f.pauses, pair)
	return api.PairStatus{}, f.fail
}

func (f *fakeActions) Resume(_ context.Context, pair string) (api.PairStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resumes = append(f.resumes, pair)
	return api.PairStatus{}, f.fail
}

func (f *fakeActions) Recover(_ context.Context, req api.RecoverRequest) (api.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.recs = append(f.recs, req)
	if f.fail != nil {
		return api.Job{}, f.fail
	}
	f.mu.Unlock()
	pairs, err := f.groupPairs(req.Group, req.Pairs)
	if err != nil {
		f.mu.Lock()
		return api.Job{}, err
	}
	points, err := f.resolve(req.Point, pairs)
	f.mu.Lock()
	if err != nil {
		return api.Job{}, err
	}
	f.job = api.Job{ID: "j1", Mode: req.Mode, Point: req.Point, Pairs: pairs, Dest: req.Dest, State: api.JobRunning,
		TotalBytes: 64 << 30, Started: fxNow, Points: points}
	return f.job, nil
}

func (f *fakeActions) OpenView(_ context.Context, req api.ViewRequest) (api.View, error) {
	f.mu.Lock()
	f.views = append(f.views, req)
	fail := f.fail
	f.mu.Unlock()
	if fail != nil {
		return api.View{}, fail
	}
	pairs, err := f.groupPairs(req.Group, req.Pairs)
	if err != nil {
		return api.View{}, err
	}
	points, err := f.resolve(req.Point, pairs)
	if err != nil {
		return api.View{}, err
	}
	sock := "/run/mtconsole/views/v1.sock"
	v := api.View{ID: "v1", Point: req.Point, Group: req.Group, Pairs: pairs, Points: points, Listen: "unix:" + sock, Opened: fxNow}
	for _, id := range pairs {
		v.Exports = append(v.Exports, api.ViewExport{Pair: id, Name: id, URI: "nbd+unix:///" + id + "?socket=" + sock, Size: 64 << 30})
	}
	return v, nil
}

func (f *fakeActions) Job(_ context.Context, id string) (api.Job, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != f.job.ID {
		return api.Job{}, api.ErrUnknownJob
	}
	return f.job, nil
}

func (f *fakeActions) Tags(_ context.Context, pair string) ([]journal.Tag, error) {
	f.mu.Lock()
	st, tb := f.stores[pair], f.tb
	f.mu.Unlock()
	if st == nil && tb == nil {
		return fxTags(pair), nil
	}
	stores, err := f.storesFor([]string{pair})
	if err != nil {
		return nil, err
	}
	return stores[pair].Tags(), nil
}

func (f *fakeActions) snapshot() fakeActions {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeActions{tags: append([]api.TagRequest(nil), f.tags...), pauses: append([]string(nil), f.pauses...),
		resumes: append([]string(nil), f.resumes...), recs: append([]api.RecoverRequest(nil), f.recs...)}
}

// finishedJob is j1 done, as the agent reports it.
func finishedJob(req api.RecoverRequest) api.Job {
	pt := recovery.Resolved{Pair: "p1", Seq: 900, Time: fxNow.Add(-70 * time.Second), Accuracy: journal.Exact,
		Tag: &journal.Tag{Name: "crash-1004", App: journal.AppCrash}}
	return api.Job{ID: "j1", Mode: req.Mode, Point: req.Point, Pairs: req.Pairs, State: api.JobDone, DoneBytes: 64 << 30,
		TotalBytes: 64 << 30, Started: fxNow.Add(-95 * time.Second), Finished: fxNow,
		Results: map[string]recovery.Result{"p1": {Point: pt, Restored: 310 * mb, Records: 4211, Duration: 95 * time.Second}}}
}

var errAgentDown = errors.New("no agent at /run/mtconsole/agent.sock: is mtconsole agent running?")

// newFx is a console fed the whole recording, sized w x h.
func newFx(t testing.TB, w, h int, o Options) *Model {
	t.Helper()
	o.Now = fxClock
	o.NoColor = true
	if fa, ok := o.Actions.(*fakeActions); ok && fa.tb == nil {
		fa.bind(t)
	}
	if o.Host == "" {
		o.Host = "mt-lab-01"
	}
	m := New(t.Context(), o)
	m.Update(tea.WindowSizeMsg{Width: w, Height: h})
	for _, msg := range fxReplay(t).Msgs() {
		m.Update(msg)
	}
	return m
}

// keyMsg is the key press named as tea names it ("enter", "esc", "j").
func keyMsg(k string) tea.KeyPressMsg {
	switch k {
	case "enter":
		return tea.KeyPressMsg{Code: tea.KeyEnter}
	case "esc":
		return tea.KeyPressMsg{Code: tea.KeyEscape}
	case "up":
		return tea.KeyPressMsg{Code: tea.KeyUp}
	case "down":
		return tea.KeyPressMsg{Code: tea.KeyDown}
	case "space":
		return tea.KeyPressMsg{Code: tea.KeySpace, Text: " "}
	case "f1":
		return tea.KeyPressMsg{Code: tea.KeyF1}
	case "f5":
		return tea.KeyPressMsg{Code: tea.KeyF5}
	case "tab":
		return tea.KeyPressMsg{Code: tea.KeyTab}
	case "left":
		return tea.KeyPressMsg{Code: tea.KeyLeft}
	case "right":
		return tea.KeyPressMsg{Code: tea.KeyRight}
	case "shift+tab":
		return tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}
	case "ctrl+u":
		return tea.KeyPressMsg{Code: 'u', Mod: tea.ModCtrl}
	case "ctrl+l":
		return tea.KeyPressMsg{Code: 'l', Mod: tea.ModCtrl}
	case "pgup":
		return tea.KeyPressMsg{Code: tea.KeyPgUp}
	case "pgdown":
		return tea.KeyPressMsg{Code: tea.KeyPgDown}
	}
	r := []rune(k)[0]
	return tea.KeyPressMsg{Code: r, Text: k}
}

// press sends keys and returns the last command.
func press(m *Model, keys ...string) tea.Cmd {
	var cmd tea.Cmd
	for _, k := range keys {
		_, cmd = m.Update(keyMsg(k))
	}
	return cmd
}

func typeText(m *Model, s string) {
	for _, r := range s {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

// waitLong is how long a flow waits for a screen: generous, as a loaded
// machine (CI, GOMAXPROCS=1, busy neighbours) can take seconds to draw
// what a quiet one draws at once; a passing wait ends when the screen
// shows, so it costs nothing.
const waitLong = 20 * time.Second
