package api

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"testing"
)

// follow runs FollowJob and collects the events it gives.
func follow(t *testing.T, cl *Client, id string) (Job, []JobEvent, error) {
	t.Helper()
	var evs []JobEvent
	j, err := cl.FollowJob(ctxT(t), id, func(e JobEvent) { evs = append(evs, e) })
	return j, evs, err
}

// A real job's steps reach the event stream as typed events, and
// FollowJob ends with the job as recorded, its events (when it met the
// job running) in order.
func TestJobEventsTyped(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	ctx := ctxT(t)
	ch, err := a.cl.Events(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(a.dir, "export")
	j, err := a.cl.Recover(ctx, RecoverRequest{Point: "latest-tag", Mode: ModeExport, Dest: dest})
	if err != nil {
		t.Fatal(err)
	}
	end, fevs, err := follow(t, a.cl, j.ID)
	if err != nil || end.State != JobDone || end.DoneBytes != end.TotalBytes || end.TotalBytes == 0 {
		t.Fatalf("followed to %+v, %v", end, err)
	}
	// The stream, subscribed before the job started, has every step.
	var evs []JobEvent
	for len(evs) == 0 || !evs[len(evs)-1].Ended() {
		e := next(t, ch, EventJob, EventProgress)
		if e.Job == nil || e.Job.ID != j.ID {
			t.Fatalf("stream event %+v without its job", e)
		}
		evs = append(evs, *e.Job)
	}
	if len(evs) < 4 {
		t.Fatalf("events %+v: want started, a progress per pair, done", evs)
	}
	first, last := evs[0], evs[len(evs)-1]
	if first.Kind != JobStarted || first.Mode != ModeExport || first.Point != "latest-tag" || !slices.Equal(first.Pairs, []string{"p1", "p2"}) {
		t.Errorf("first event %+v", first)
	}
	if last.Kind != JobDone || last.Done != end.TotalBytes || last.Total != end.TotalBytes {
		t.Errorf("last event %+v, job %+v", last, end)
	}
	var done int64
	pairs := map[string]bool{}
	for _, e := range evs[1 : len(evs)-1] {
		// Each progress says something new: a pair's end is reported
		// once, though the recovery reports it after the copy and again
		// after the before-images.
		if e.Kind != JobProgress || e.Ended() || e.Total != end.TotalBytes || e.Done <= done || e.Done > e.Total {
			t.Errorf("progress event %+v (done so far %d)", e, done)
		}
		done, pairs[e.Pair] = e.Done, true
	}
	if !pairs["p1"] || !pairs["p2"] {
		t.Errorf("progress named pairs %v, want p1 and p2", pairs)
	}
	// What FollowJob gave is the stream's tail, the end last.
	if n := len(fevs); n > 0 && !slices.EqualFunc(fevs, evs[len(evs)-n:], func(x, y JobEvent) bool {
		return slices.Equal(x.Pairs, y.Pairs) && x.Kind == y.Kind && x.Done == y.Done
	}) {
		t.Errorf("FollowJob gave %+v, the stream %+v", fevs, evs)
	}
}

// FollowJob ends with the state a job ended in: failed, interrupted.
func TestFollowJobEnds(t *testing.T) {
	t.Run("failed", func(t *testing.T) {
		a := newAgent(t, "p1", "p2")
		dest := filepath.Join(a.dir, "export")
		var once sync.Once
		// p2's image is taken while p1's is written: its export fails.
		a.b.onProgress = func(string, int64) {
			once.Do(func() { os.WriteFile(filepath.Join(dest, "p2.img.partial"), nil, 0o600) })
		}
		j, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: "latest-tag", Mode: ModeExport, Dest: dest})
		if err != nil {
			t.Fatal(err)
		}
		end, evs, err := follow(t, a.cl, j.ID)
		if err != nil || end.State != JobFailed || end.Error == "" {
			t.Fatalf("followed to %+v, %v", end, err)
		}
		if n := len(evs); n > 0 && (evs[n-1].Kind != JobFailed || evs[n-1].Err != end.Error) {
			t.Errorf("last event %+v, job error %q", evs[n-1], end.Error)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		a := newAgent(t, "p1")
		var once sync.Once
		a.b.onProgress = func(string, int64) { once.Do(a.b.cancel) }
		j, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t01", Mode: ModeExport, Dest: filepath.Join(a.dir, "x.img")})
		if err != nil {
			t.Fatal(err)
		}
		end, evs, err := follow(t, a.cl, j.ID)
		if err != nil || end.State != JobInterrupted {
			t.Fatalf("followed to %+v, %v", end, err)
		}
		// It may have ended before the follow began: then no events.
		if n := len(evs); n > 0 && (evs[n-1].Kind != JobInterrupted || !evs[n-1].Ended()) {
			t.Errorf("last event %+v", evs[n-1])
		}
	})
	t.Run("unknown", func(t *testing.T) {
		a := newAgent(t, "p1")
		if _, _, err := follow(t, a.cl, "j99"); !errors.Is(err, ErrUnknownJob) {
			t.Errorf("following no job: %v", err)
		}
	})
}

// dropBackend ends every event stream once drop is closed, as an agent
// or a proxy that cuts streams would.
type dropBackend struct {
	*WriterBackend
	drop chan struct{}
}

func (d dropBackend) Subscribe(ctx context.Context, n int) <-chan Event {
	in := d.WriterBackend.Subscribe(ctx, n)
	out := make(chan Event)
	go func() {
		defer close(out)
		for {
			select {
			case <-d.drop:
				return
			case <-ctx.Done():
				return
			case e, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- e:
				case <-d.drop:
					return
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// A stream that drops mid-job, and every stream after it, never loses
// the job's end: FollowJob finds it through GET /v1/jobs/{id}.
func TestFollowJobStreamDrops(t *testing.T) {
	a := newAgent(t, "p1")
	d := dropBackend{WriterBackend: a.b, drop: make(chan struct{})}
	srv, err := Listen(Config{Socket: filepath.Join(a.dir, "run", "drop.sock")}, d)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cl, err := Dial(srv.Socket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	reached, stop := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a.b.onProgress = func(string, int64) { once.Do(func() { close(reached); <-stop }) }
	j, err := cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t02", Mode: ModeExport, Dest: filepath.Join(a.dir, "x.img")})
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		j   Job
		evs []JobEvent
		err error
	}
	res := make(chan result, 1)
	var mu sync.Mutex
	var evs []JobEvent
	go func() {
		j, err := cl.FollowJob(ctxT(t), j.ID, func(e JobEvent) { mu.Lock(); evs = append(evs, e); mu.Unlock() })
		mu.Lock()
		defer mu.Unlock()
		res <- result{j, slices.Clone(evs), err}
	}()
	<-reached
	// Mid-job, once FollowJob has the start: the streams end, then the job.
	for {
		mu.Lock()
		n := len(evs)
		mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case r := <-res:
			t.Fatalf("FollowJob returned mid-job: %+v", r)
		default:
		}
		runtime.Gosched()
	}
	close(d.drop)
	close(stop)
	r := <-res
	if r.err != nil || r.j.State != JobDone || r.j.DoneBytes != r.j.TotalBytes {
		t.Fatalf("followed to %+v, %v", r.j, r.err)
	}
	if r.evs[0].Kind != JobStarted || slices.ContainsFunc(r.evs, JobEvent.Ended) {
		t.Errorf("events %+v: want the start, and no end (the streams were cut)", r.evs)
	}
}

// POST /v1/resolve answers where Recover finds the point, for one pair
// and for a group, and refuses what Recover refuses.
func TestResolveAsRecover(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	ctx := ctxT(t)
	for i, tc := range []struct {
		point string
		pairs []string
	}{
		{"latest-tag", nil}, {"latest-time", nil}, {"latest-app-consistent", []string{"p1"}}, {"tag:t02", []string{"p2"}},
		{"tagid:id-t03", nil}, {"earliest", []string{"p1"}}, {"time:2026-11-26T10:00:00.025Z", nil},
	} {
		res, rerr := a.cl.Resolve(ctx, ResolveRequest{Point: tc.point, Pairs: tc.pairs})
		j, jerr := a.cl.Recover(ctx, RecoverRequest{Point: tc.point, Pairs: tc.pairs, Mode: ModeExport,
			Dest: filepath.Join(a.dir, fmt.Sprintf("r%d", i))})
		if (rerr == nil) != (jerr == nil) {
			t.Errorf("%s %v: resolve %v, recover %v", tc.point, tc.pairs, rerr, jerr)
			continue
		}
		if rerr != nil {
			continue
		}
		waitJob(t, a.cl, j.ID)
		if len(res.Points) != len(j.Points) {
			t.Errorf("%s: resolved %v, recovered %v", tc.point, res.Points, j.Points)
		}
		for id, r := range j.Points {
			if got := res.Points[id]; got.Seq != r.Seq || !got.Time.Equal(r.Time) || (got.Tag == nil) != (r.Tag == nil) {
				t.Errorf("%s %s: resolved %+v, recovered %+v", tc.point, id, got, r)
			}
		}
	}
	var ae *APIError
	if _, err := a.cl.Resolve(ctx, ResolveRequest{Point: "tag:nope"}); !errors.As(err, &ae) || ae.Field != "point" || !errors.Is(err, ErrBadInput) {
		t.Errorf("a missing tag: %v", err)
	}
	if _, err := a.cl.Resolve(ctx, ResolveRequest{Point: "latest-tag", Pairs: []string{"p9"}}); !errors.Is(err, ErrUnknownPair) {
		t.Errorf("an unknown pair: %v", err)
	}
}
