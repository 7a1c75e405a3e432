package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
)

const fxSize = 256 << 10

var fxStart = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// agent is a writer with pairs on files, served on a unix socket.
type agent struct {
	dir    string
	sock   string
	w      *writer.Writer
	hub    *Hub
	b      *WriterBackend
	srv    *Server
	cl     *Client
	cfgs   map[string]writer.PairConfig
	images map[string]map[string][]byte // pair → tag → source image
	final  map[string][]byte
}

// shortDir is a temporary directory short enough for a unix socket path.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "mt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// newAgent opens pairs on files, replicates a small fixed workload with a
// tag every 10 writes into each, drains them and serves them.
func newAgent(t *testing.T, pairs ...string) *agent {
	t.Helper()
	a := &agent{dir: shortDir(t), hub: NewHub(), cfgs: map[string]writer.PairConfig{},
		images: map[string]map[string][]byte{}, final: map[string][]byte{}}
	a.sock = filepath.Join(a.dir, "run", "agent.sock")
	now := func() time.Time { return fxStart.Add(time.Hour) }
	a.w = writer.New(writer.Options{Now: now, OnEvent: a.hub.Publish}, writer.SpaceOptions{Interval: -1})
	t.Cleanup(func() { a.w.Close() })
	rng := rand.New(rand.NewSource(7))
	for _, id := range pairs {
		src := make([]byte, fxSize)
		rng.Read(src)
		cfg := writer.PairConfig{ID: id, Target: filepath.Join(a.dir, id+".img"), JournalDir: filepath.Join(a.dir, "journal", id),
			RetentionDir: filepath.Join(a.dir, "retention", id), Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge},
			JournalSegmentSize: 1 << 20, UndoSegmentSize: 128 << 10}
		if err := os.WriteFile(cfg.Target, src, 0o600); err != nil {
			t.Fatal(err)
		}
		p, _, err := a.w.Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		a.cfgs[id] = cfg
		a.images[id] = map[string][]byte{}
		clock := fxStart
		for n := 1; n <= 60; n++ {
			clock = clock.Add(time.Millisecond)
			blocks := 1 + rng.Intn(16)
			data := make([]byte, blocks*512)
			rng.Read(data)
			off := int64(rng.Intn(fxSize/512-blocks+1)) * 512
			copy(src[off:], data)
			if err := p.Write(p.Next(), off, clock, data, 0); err != nil {
				t.Fatal(err)
			}
			if n%10 == 0 {
				name := fmt.Sprintf("t%02d", n/10)
				if err := p.Tag(p.Next(), journal.TagInfo{Name: name, App: journal.AppCrash, ID: "id-" + name, Time: clock}); err != nil {
					t.Fatal(err)
				}
				a.images[id][name] = bytes.Clone(src)
			}
		}
		a.final[id] = src
		a.drain(t, id)
	}
	cfgs := make([]writer.PairConfig, 0, len(a.cfgs))
	for _, c := range a.cfgs {
		cfgs = append(cfgs, c)
	}
	a.b = FromWriter(a.w, HostInfo{Host: "mt1", Version: "test", Started: fxStart}, a.hub, cfgs...)
	a.b.SetClock(now)
	t.Cleanup(func() { a.b.Close() })
	var err error
	a.srv, err = Listen(Config{Socket: a.sock}, a.b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.srv.Close() })
	a.cl, err = Dial(a.sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.cl.Close)
	return a
}

func (a *agent) drain(t *testing.T, id string) {
	t.Helper()
	p := a.w.Pair(id)
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// nopBackend answers nothing: for the socket tests.
type nopBackend struct{}

func (nopBackend) Status() (Status, error) { return Status{Pairs: []PairStatus{}}, nil }
func (nopBackend) Subscribe(ctx context.Context, n int) <-chan Event {
	return NewHub().Subscribe(ctx, n)
}
func (nopBackend) Tag(TagRequest) (TagResult, error)          { return TagResult{}, ErrConflict }
func (nopBackend) Pause(string, string) (PairStatus, error)   { return PairStatus{}, ErrUnknownPair }
func (nopBackend) Resume(string) (PairStatus, error)          { return PairStatus{}, ErrUnknownPair }
func (nopBackend) Recover(RecoverRequest) (Job, error)        { return Job{}, ErrConflict }
func (nopBackend) Resolve(ResolveRequest) (Resolution, error) { return Resolution{}, ErrConflict }
func (nopBackend) Job(string) (Job, error)                    { return Job{}, ErrUnknownJob }
func (nopBackend) Jobs() ([]Job, error)                       { return nil, nil }
func (nopBackend) Tags(string) ([]journal.Tag, error)         { return nil, ErrUnknownPair }

func TestSocketPermissions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		group string
		mode  os.FileMode
	}{
		{"owner only", "", 0o600},
		{"with group", fmt.Sprint(os.Getgid()), 0o660},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(shortDir(t), "run", "agent.sock")
			s, err := Listen(Config{Socket: sock, Group: tc.group}, nopBackend{})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			fi, err := os.Stat(sock)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != tc.mode {
				t.Errorf("socket mode %v, want socket %v", fi.Mode(), tc.mode)
			}
			di, err := os.Stat(filepath.Dir(sock))
			if err != nil {
				t.Fatal(err)
			}
			if di.Mode().Perm() != 0o755 {
				t.Errorf("socket directory mode %v, want 0755", di.Mode().Perm())
			}
			if cl, err := Dial(sock); err != nil {
				t.Fatal(err)
			} else if _, err := cl.Status(ctxT(t)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket left after Close: %v", err)
			}
		})
	}
}

func TestSocketStaleAndSecond(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "agent.sock")

	// A socket left by an agent that died: nobody answers.
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatal("no stale socket to test with")
	}
	s, err := Listen(Config{Socket: sock}, nopBackend{})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer s.Close()

	// A second agent must not steal the first one's socket.
	if s2, err := Listen(Config{Socket: sock}, nopBackend{}); err == nil {
		s2.Close()
		t.Fatal("a second server started on a live socket")
	} else if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "another agent answers") {
		t.Errorf("second server: %v", err)
	}
	cl, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Status(ctxT(t)); err != nil {
		t.Fatalf("the first server stopped answering: %v", err)
	}

	// Never delete what is not a socket.
	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("x"), 0o600)
	if s3, err := Listen(Config{Socket: file}, nopBackend{}); err == nil {
		s3.Close()
		t.Fatal("listened over a regular file")
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("the regular file was removed: %v", err)
	}
}

func TestNoAgent(t *testing.T) {
	sock := filepath.Join(shortDir(t), "none.sock")
	_, err := Dial(sock)
	if !errors.Is(err, ErrNoAgent) {
		t.Fatalf("Dial with no agent: %v, want ErrNoAgent", err)
	}
	if want := "no agent at " + sock + ": is mtconsole agent running?"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

func TestStatusGolden(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	// Drain returns once the writes are applied; the backlog figure
	// follows the applier's commit, which may come a moment later.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		idle := true
		for _, ps := range a.w.Status() {
			idle = idle && ps.BacklogBytes == 0
		}
		if idle || time.Now().After(deadline) {
			break
		}
	}
	// not registered: no "cs" at all
	st, err := a.cl.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.CS != nil {
		t.Errorf("cs %+v without SetCS", st.CS)
	}
	// registered, the last heartbeat failed
	a.b.SetCS(func() *CSStatus {
		return &CSStatus{Server: "cs.example.com:443", HostID: "5f0c7c2e-8d2b-4c1e-9a57-0d4b8e7b1a10",
			LastHeartbeat: fxStart.Add(50 * time.Minute), LastAttempt: fxStart.Add(56 * time.Minute),
			Problem: "unreachable", FailingSince: fxStart.Add(53 * time.Minute),
			Error: "configuration server unreachable: cannot reach cs.example.com:443: connection refused"}
	})
	resp, err := a.cl.hc.Get("http://agent/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := json.Indent(&got, raw, "", "  "); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	// fsync latencies are measured, not fixed, and whether the applier's
	// commit (the target's and retention's fdatasyncs) has run when the
	// status is read is timing: the golden holds that a list is there,
	// and the journal's fdatasyncs (before any acknowledgement) are in it.
	lines := strings.Split(got.String(), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.TrimSpace(l) != `"fsync": [` {
			out = append(out, l)
			continue
		}
		end := l[:len(l)-len(strings.TrimLeft(l, " "))] + "]"
		var block []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], end); i++ {
			block = append(block, strings.TrimSpace(lines[i]))
		}
		if !slices.Contains(block, `"file": "journal",`) {
			t.Errorf("fsync latencies without the journal's: %s", strings.Join(block, " "))
		}
		out = append(out, strings.Replace(l, "[", `"…"`, 1)+strings.TrimPrefix(lines[i], end))
	}
	lines = out
	got.Reset()
	got.WriteString(strings.Join(lines, "\n"))
	golden.RequireEqual(t, strings.ReplaceAll(got.String(), a.dir, "$DIR"))
}

// next returns the next event of kind (skipping others), or fails.
func next(t *testing.T, ch <-chan Event, kinds ...string) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatal("event stream closed")
			}
			for _, k := range kinds {
				if e.Kind == k {
					return e
				}
			}
		case <-timeout:
			t.Fatalf("no %v event in 10 s", kinds)
		}
	}
}

func TestEventsInOrder(t *testing.T) {
	a := newAgent(t, "p1")
	ctx := ctxT(t)
	ch, err := a.cl.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := a.cl.Pause(ctx, "p1", "maintenance")
	if err != nil {
		t.Fatal(err)
	}
	if st.Health != writer.HealthPaused || st.Reason != "maintenance" {
		t.Errorf("after pause: %s (%s)", st.Health, st.Reason)
	}
	if st, err = a.cl.Resume(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if st.Health == writer.HealthPaused {
		t.Errorf("after resume: still %s", st.Health)
	}
	e1 := next(t, ch, writer.EventState)
	e2 := next(t, ch, writer.EventState)
	if e1.Pair != "p1" || e1.Message != "paused: maintenance" || e2.Pair != "p1" || e2.Message != "resumed" {
		t.Errorf("state events %+v then %+v, want paused then resumed", e1, e2)
	}
}

func TestEventsSSEFormat(t *testing.T) {
	a := newAgent(t)
	resp, err := a.cl.hc.Get("http://agent/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf) // the opening comment: subscribed
	if !strings.HasPrefix(string(buf[:n]), ":") {
		t.Fatalf("stream opens with %q", buf[:n])
	}
	a.hub.Publish(writer.Event{Time: fxStart, Pair: "p9", Kind: writer.EventAlert, Message: "hello"})
	var got []byte
	for !bytes.Contains(got, []byte("\n\n")) {
		n, err := resp.Body.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	want := `event: alert` + "\n" + `data: {"time":"2026-11-26T10:00:00Z","pair":"p9","kind":"alert","level":"INFO","message":"hello"}` + "\n\n"
	if string(got) != want {
		t.Errorf("event\n%q\nwant\n%q", got, want)
	}
}

func TestHubDropsOldest(t *testing.T) {
	h := NewHubSize(2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.Subscribe(ctx, 0)
	for i := range 5 {
		h.Publish(writer.Event{Kind: writer.EventLog, Message: fmt.Sprint(i)}) // never blocks
	}
	// The subscriber may have taken the first event before the others
	// came: it gets at most one event in flight, then the drop notice,
	// then the newest two.
	var got []string
	lost, last := 0, -1
	for last != 4 {
		e := <-ch
		got = append(got, e.Kind+":"+e.Message)
		switch e.Kind {
		case EventDropped:
			var n int
			fmt.Sscanf(e.Message, "dropped %d events", &n)
			lost += n
		case writer.EventLog:
			var i int
			fmt.Sscan(e.Message, &i)
			if i <= last {
				t.Fatalf("events out of order: %v", got)
			}
			last = i
		}
	}
	if len(got)+lost != 5+strings.Count(fmt.Sprint(got), EventDropped+":") || lost < 2 || got[len(got)-2] != "log:3" {
		t.Errorf("events %v: want the newest two after a notice that says how many of the 5 were dropped", got)
	}
	cancel()
	for range ch {
	}
}

func TestTagViaAPI(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	ctx := ctxT(t)
	res, err := a.cl.Tag(ctx, TagRequest{Name: "before-upgrade", Pairs: []string{"p2"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.App != journal.AppUser || len(res.Pairs) != 1 || res.ID == "" {
		t.Errorf("tag result %+v", res)
	}
	a.drain(t, "p2")
	found := false
	for _, tg := range a.w.Pair("p2").Store().Tags() {
		if tg.Name == "before-upgrade" {
			found = tg.ID == res.ID && tg.Seq == res.Pairs["p2"]
		}
	}
	if !found {
		t.Errorf("tag before-upgrade (id %s, seq %d) not in p2's store: %+v", res.ID, res.Pairs["p2"], a.w.Pair("p2").Store().Tags())
	}
	for _, tg := range a.w.Pair("p1").Store().Tags() {
		if tg.Name == "before-upgrade" {
			t.Error("tag for p2 landed in p1")
		}
	}
}

func TestTagsViaAPI(t *testing.T) {
	a := newAgent(t, "p1")
	ctx := ctxT(t)
	tags, err := a.cl.Tags(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	want := a.w.Pair("p1").Store().Tags()
	if len(tags) != 6 || len(tags) != len(want) {
		t.Fatalf("got %d tags, want 6 (store has %d): %+v", len(tags), len(want), tags)
	}
	for i, tg := range tags {
		if tg.Name != want[i].Name || tg.Seq != want[i].Seq || !tg.Time.Equal(want[i].Time) || tg.App != want[i].App {
			t.Errorf("tag %d: got %+v, want %+v", i, tg, want[i])
		}
	}
	if tags[0].Name != "t01" || tags[5].Name != "t06" {
		t.Errorf("tags not oldest first: %s .. %s", tags[0].Name, tags[5].Name)
	}
	if _, err := a.cl.Tags(ctx, "nope"); !errors.Is(err, ErrUnknownPair) {
		t.Errorf("unknown pair: got %v, want ErrUnknownPair", err)
	}
}

// waitJob follows job id until it ends.
func waitJob(t *testing.T, cl *Client, id string) Job {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		j, err := cl.Job(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if j.State != JobRunning {
			return j
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("job %s still running after 10 s", id)
	return Job{}
}

func TestRecoverExport(t *testing.T) {
	a := newAgent(t, "p1")
	ctx := ctxT(t)
	ch, err := a.cl.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(a.dir, "export.img")
	j, err := a.cl.Recover(ctx, RecoverRequest{Point: "tag:t03", Mode: ModeExport, Dest: dest})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != JobRunning || j.Points["p1"].Tag == nil || j.Points["p1"].Tag.Name != "t03" {
		t.Errorf("job at start: %+v", j)
	}
	if j = waitJob(t, a.cl, j.ID); j.State != JobDone {
		t.Fatalf("job %+v", j)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, a.images["p1"]["t03"]) {
		t.Error("exported image differs from the source at tag t03")
	}
	if tgt, _ := os.ReadFile(a.cfgs["p1"].Target); !bytes.Equal(tgt, a.final["p1"]) {
		t.Error("export changed the target")
	}
	if a.w.Pair("p1") == nil {
		t.Error("export ended the pair")
	}
	// Progress and the end of the job reach the event stream.
	next(t, ch, EventProgress)
	for e := next(t, ch, EventJob); !strings.HasSuffix(e.Message, ": done"); e = next(t, ch, EventJob) {
	}
	// A second export to the same file is refused: it exists.
	_, err = a.cl.Recover(ctx, RecoverRequest{Point: "tag:t03", Mode: ModeExport, Dest: dest})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Code != http.StatusBadRequest || ae.Field != "dest" {
		t.Errorf("export over an existing file: %v", err)
	}
}

func TestRecoverRollback(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	ctx := ctxT(t)
	j, err := a.cl.Recover(ctx, RecoverRequest{Point: "tag:t02", Mode: ModeRollback, Pairs: []string{"p1"}})
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, a.cl, j.ID); j.State != JobDone {
		t.Fatalf("job %+v", j)
	}
	got, err := os.ReadFile(a.cfgs["p1"].Target)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, a.images["p1"]["t02"]) {
		t.Error("rolled-back target differs from the source at tag t02")
	}
	st, err := a.cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// p1 is reported ended, with the point, until its [[pair]] goes.
	if len(st.Pairs) != 2 || st.Pairs[0].ID != "p1" || st.Pairs[0].Health != writer.HealthEnded ||
		!strings.HasPrefix(st.Pairs[0].Reason, "rolled back to tag t02") || st.Pairs[1].ID != "p2" {
		t.Errorf("pairs after rolling p1 back: %+v", st.Pairs)
	}
	if _, err := a.cl.Pause(ctx, "p1", ""); !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "remove its [[pair]]") {
		t.Errorf("pause of the ended pair: %v", err)
	}
	s, err := journal.OpenStore(journal.StoreOptions{Dir: a.cfgs["p1"].RetentionDir, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.State().State != journal.StateEnded {
		t.Errorf("p1's store is %s, want %s", s.State().State, journal.StateEnded)
	}
}

func TestBadInput(t *testing.T) {
	a := newAgent(t, "p1")
	post := func(path, body string) (int, errorBody) {
		resp, err := a.cl.hc.Post("http://agent"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
	dest := filepath.Join(a.dir, "x.img")
	for _, tc := range []struct {
		path, body string
		code       int
		field      string
	}{
		{"/v1/recover", `{"point":"yesterday","mode":"export","dest":"` + dest + `"}`, 400, "point"},
		{"/v1/recover", `{"point":"tag:nope","mode":"export","dest":"` + dest + `"}`, 400, "point"},
		{"/v1/recover", `{"point":"latest-tag","mode":"restore"}`, 400, "mode"},
		{"/v1/recover", `{"point":"latest-tag","mode":"export"}`, 400, "dest"},
		{"/v1/recover", `{"point":"latest-tag","mode":"export","dest":"rel.img"}`, 400, "dest"},
		{"/v1/recover", `{"point":"latest-tag","mode":"export","dest":"` + dest + `","pairs":["p7"]}`, 404, ""},
		{"/v1/recover", `{"point":1}`, 400, "point"},
		{"/v1/recover", `{"nonsense":true}`, 400, "body"},
		{"/v1/recover", `{`, 400, "body"},
		{"/v1/tag", `{"name":""}`, 400, "name"},
		{"/v1/tag", `{"name":"x","pairs":["p7"]}`, 404, ""},
		{"/v1/pairs/p7/pause", ``, 404, ""},
		{"/v1/pairs/p7/resume", ``, 404, ""},
	} {
		code, eb := post(tc.path, tc.body)
		if code != tc.code || eb.Field != tc.field || eb.Error == "" {
			t.Errorf("POST %s %s: %d %+v, want %d naming %q", tc.path, tc.body, code, eb, tc.code, tc.field)
		}
	}
	if _, err := a.cl.Job(ctxT(t), "j99"); !errors.Is(err, ErrUnknownJob) {
		t.Errorf("unknown job: %v", err)
	}
	if _, err := os.Stat(dest); err == nil {
		t.Error("a refused export wrote its destination")
	}
}

func TestEventsHeartbeat(t *testing.T) {
	sock := filepath.Join(shortDir(t), "agent.sock")
	s, err := Listen(Config{Socket: sock, Heartbeat: 20 * time.Millisecond}, nopBackend{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cl, err := Dial(sock)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := cl.hc.Get("http://agent/v1/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for n := 0; n < 2; {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == ": heartbeat\n" {
			n++
		}
	}
	// Close ends the stream rather than waiting for the client.
	go s.Close()
	if _, err := io.Copy(io.Discard, br); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream ended with %v", err)
	}
}

// An export of several pairs is one multi-disk point, one image each.
func TestRecoverExportGroup(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	dest := filepath.Join(a.dir, "group")
	j, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t04", Mode: ModeExport, Dest: dest})
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, a.cl, j.ID); j.State != JobDone || j.DoneBytes != j.TotalBytes || j.TotalBytes != 2*fxSize {
		t.Fatalf("job %+v", j)
	}
	for _, id := range []string{"p1", "p2"} {
		got, err := os.ReadFile(filepath.Join(dest, id+".img"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, a.images[id]["t04"]) {
			t.Errorf("%s: exported image differs from the source at tag t04", id)
		}
	}
}

// A subscriber may ask for recent events first: it gets the newest ones
// it asked for, in order, then the live ones; over the socket too.
func TestEventsHistory(t *testing.T) {
	h := NewHub()
	for i := range HistorySize + 10 {
		h.Publish(writer.Event{Kind: writer.EventLog, Message: fmt.Sprint(i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.Subscribe(ctx, 3)
	h.Publish(writer.Event{Kind: writer.EventLog, Message: "live"})
	var got []string
	for range 4 {
		got = append(got, (<-ch).Message)
	}
	want := fmt.Sprintf("%d %d %d live", HistorySize+7, HistorySize+8, HistorySize+9)
	if strings.Join(got, " ") != want {
		t.Errorf("history then live: %v, want %s", got, want)
	}
	big := h.Subscribe(ctx, 10*HistorySize)
	if e := <-big; e.Message != "11" {
		t.Errorf("the oldest event kept is %q, want 11 (the last %d of %d)", e.Message, HistorySize, HistorySize+11)
	}
	none := h.Subscribe(ctx, 0)
	h.Publish(writer.Event{Kind: writer.EventLog, Message: "after"})
	if e := <-none; e.Message != "after" {
		t.Errorf("without history the first event is %q", e.Message)
	}
}

// The agent's log lines reach the event stream as "log" events with the
// record's level, message and attributes, and still reach the next
// handler.
func TestLogHandler(t *testing.T) {
	h := NewHub()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.Subscribe(ctx, 0)
	var buf bytes.Buffer
	log := slog.New(LogHandler(h, slog.NewTextHandler(&buf, nil))).With("component", "ps")
	log.Warn("process server unreachable", "pair", "disk3", "err", "connection refused")
	log.Debug("not enabled")
	e := <-ch
	if e.Kind != writer.EventLog || e.Level != slog.LevelWarn || e.Pair != "disk3" ||
		e.Message != "process server unreachable component=ps err=\"connection refused\"" {
		t.Errorf("event %+v", e)
	}
	if !strings.Contains(buf.String(), "process server unreachable") || strings.Contains(buf.String(), "not enabled") {
		t.Errorf("next handler got %q", buf.String())
	}
	select {
	case e := <-ch:
		t.Errorf("a disabled level reached the events: %+v", e)
	default:
	}
}

// An alert or state event (a purge, a pause) reaches the agent's log at
// its level with its pair and kind, and the event stream once; tag and
// log events stay out of the log (a log event came from it).
func TestEventSink(t *testing.T) {
	h := NewHub()
	var buf bytes.Buffer
	sink := EventSink(h, slog.NewTextHandler(&buf, nil))
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	sink(writer.Event{Time: at, Pair: "disk3", Kind: writer.EventAlert, Level: slog.LevelWarn,
		Message: "retention volume full: purged 2 oldest segment(s)"})
	sink(writer.Event{Time: at, Pair: "disk3", Kind: writer.EventState, Level: slog.LevelInfo, Message: "resumed"})
	sink(writer.Event{Time: at, Pair: "disk3", Kind: writer.EventTag, Level: slog.LevelInfo, Message: "tag t1 applied"})
	sink(writer.Event{Time: at, Pair: "disk3", Kind: writer.EventLog, Level: slog.LevelInfo, Message: "a log line"})
	want := []string{
		`time=2030-01-02T03:04:05.000Z level=WARN msg="retention volume full: purged 2 oldest segment(s)" pair=disk3 kind=alert`,
		`time=2030-01-02T03:04:05.000Z level=INFO msg=resumed pair=disk3 kind=state`,
	}
	if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); !slices.Equal(got, want) {
		t.Errorf("log:\n%s\nwant:\n%s", buf.String(), strings.Join(want, "\n"))
	}
	h.Publish(writer.Event{Kind: "end"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.Subscribe(ctx, HistorySize)
	for _, kind := range []string{writer.EventAlert, writer.EventState, writer.EventTag, writer.EventLog, "end"} {
		if e := <-ch; e.Kind != kind {
			t.Fatalf("event %+v, want kind %s (each event once)", e, kind)
		}
	}
}

// With a Tagger (an agent's process server numbers the writes), a tag
// goes through it and journals nothing here: a sequence taken here would
// be the one the next write from the source carries. Its refusal is a
// conflict that says why.
func TestTagThroughTagger(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	ctx := ctxT(t)
	var asked []string
	var got journal.TagInfo
	a.b.SetTagger(func(_ context.Context, pairs []string, info journal.TagInfo) (map[string]uint64, error) {
		asked, got = pairs, info
		if info.Name == "refused" {
			return nil, errors.New("p2 (Resync Step I): a tag is a consistent point only in Differential Sync")
		}
		out := map[string]uint64{}
		for _, p := range pairs {
			out[p] = 77
		}
		return out, nil
	})
	next := a.w.Pair("p1").Next()
	res, err := a.cl.Tag(ctx, TagRequest{Name: "group"})
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 2 || got.Name != "group" || got.ID != res.ID || res.Pairs["p1"] != 77 || res.Pairs["p2"] != 77 {
		t.Errorf("tagger asked for %v %+v, result %+v", asked, got, res)
	}
	if n := a.w.Pair("p1").Next(); n != next {
		t.Errorf("the pair's next sequence moved from %d to %d: the tag was journaled here", next, n)
	}
	_, err = a.cl.Tag(ctx, TagRequest{Name: "refused", Pairs: []string{"p2"}})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "Differential Sync") {
		t.Errorf("refused tag: %v, want a conflict saying why", err)
	}
}
