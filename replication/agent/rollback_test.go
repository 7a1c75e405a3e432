package agent_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// pairsRig is a process server with n disks and an agent with a pair for
// each, served by the status API's backend as the agent daemon serves it.
type pairsRig struct {
	t      *testing.T
	dir    string
	n      int
	size   int64
	srv    *ps.Server
	ctx    context.Context
	cfg    agent.Config
	cl     *agent.Client
	b      *api.WriterBackend
	stopCl func() error // stops Run, returns its error, closes the client
}

func disk(i int) string { return fmt.Sprintf("disk%d", i) }
func pair(i int) string { return fmt.Sprintf("pair%d", i) }

func newPairsRig(t *testing.T, n int, size int64) *pairsRig {
	r := &pairsRig{t: t, dir: t.TempDir(), n: n, size: size}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	r.ctx = ctx
	var dcs []ps.DiskConfig
	for i := range n {
		src := filepath.Join(r.dir, disk(i)+".src")
		writeRandom(t, src, size, int64(10+i))
		if err := os.WriteFile(r.target(i), make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, ps.DiskConfig{Name: disk(i), Path: src})
	}
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := wire.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := keys(t)
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: "ps-1", HostName: "source-host", Disks: dcs,
		ChunkSize: 64 << 10, Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(pctx, ln); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() {
		if r.stopCl != nil {
			r.stopCl()
		}
		pcancel()
		<-done
		srv.Close()
	})
	trust, err := wire.OpenTrustStore(filepath.Join(r.dir, "trust", "known_servers"))
	if err != nil {
		t.Fatal(err)
	}
	r.cfg = agent.Config{Addr: ln.Addr().String(), Key: key, Trust: trust, HostID: "mt-1", HostName: "master-target",
		Confirm:    func(string, wire.Fingerprint) bool { return true },
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Space: writer.SpaceOptions{Interval: -1}}
	for i := range n {
		r.cfg.Pairs = append(r.cfg.Pairs, agent.PairConfig{Disk: disk(i), PairConfig: writer.PairConfig{ID: pair(i),
			Target: r.target(i), JournalDir: filepath.Join(r.dir, "journal", pair(i)), RetentionDir: filepath.Join(r.dir, "retention", pair(i)),
			Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge}, UndoSegmentSize: 4 << 20, JournalSegmentSize: 8 << 20}})
	}
	return r
}

func (r *pairsRig) source(i int) string { return filepath.Join(r.dir, disk(i)+".src") }
func (r *pairsRig) target(i int) string { return filepath.Join(r.dir, disk(i)+".tgt") }

// start opens the agent's pairs and runs it, as runAgent does.
func (r *pairsRig) start() {
	t := r.t
	cl, err := agent.New(r.cfg)
	if err != nil {
		t.Fatalf("agent start: %v", err)
	}
	b := cl.Backend(api.HostInfo{Host: "mt-1"}, api.NewHub())
	r.cl, r.b = cl, b
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan error, 1)
	go func() { done <- cl.Run(ctx) }()
	r.stopCl = func() error {
		cancel()
		err := <-done
		b.Close()
		if cerr := cl.Close(); err == nil {
			err = cerr
		}
		r.stopCl = nil
		return err
	}
}

func (r *pairsRig) status(id string) agent.PairStatus {
	for _, s := range r.cl.Status() {
		if s.ID == id {
			return s
		}
	}
	r.t.Fatalf("no pair %s in the agent's status", id)
	return agent.PairStatus{}
}

// caughtUp: disk i's stream is in Differential Sync, and all it numbered
// is acknowledged and applied.
func (r *pairsRig) caughtUp(i int) bool {
	st := r.srv.Disk(disk(i)).Status()
	if len(st) != 1 || st[0].Phase != wire.StateDiffSync || st[0].Acked != st[0].Next-1 || st[0].Unacked != 0 {
		return false
	}
	ws := r.status(pair(i))
	return ws.State == agent.StateDiffSync && ws.DurableSeq == st[0].Acked && ws.AppliedSeq == ws.DurableSeq
}

func (r *pairsRig) waitFor(what string, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; agent %+v; stats %+v", what, r.cl.Status(), r.cl.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// workload writes disks (and tags them) until stop is called.
func (r *pairsRig) workload(disks []int, onTag func(i int, tag journal.TagInfo, img [32]byte)) (stop func()) {
	ctx, cancel := context.WithCancel(r.ctx)
	var wg sync.WaitGroup
	for _, i := range disks {
		wg.Go(func() {
			wl := ps.Workload{Seed: int64(100 + i), Rate: 400, WriteSize: 4 << 10, CrashEvery: 50 * time.Millisecond,
				OnTag: func(tag journal.TagInfo, img [32]byte, sent bool) {
					if sent && onTag != nil {
						onTag(i, tag, img)
					}
				}}
			if err := wl.Run(ctx, r.srv.Disk(disk(i))); err != nil && !errors.Is(err, context.Canceled) {
				r.t.Error(err)
			}
		})
	}
	return func() { cancel(); wg.Wait() }
}

// Rolling back one pair of three while all are written: the rolled-back
// pair leaves the session (the process server stops sending its disk),
// its target is the source at the tag chosen and it ends; the other two
// never notice (no new connection, no resync, no state change) and end
// equal to their sources. Restarted with the ended pair still configured,
// the agent starts, reports the pair ended, and replicates the others.
func TestRollbackOnePairOthersStream(t *testing.T) {
	const n, size = 3, 4 << 20
	r := newPairsRig(t, n, size)
	r.start()
	r.waitFor("differential sync", func() bool { return r.caughtUp(0) && r.caughtUp(1) && r.caughtUp(2) })
	before := r.cl.Stats()

	var mu sync.Mutex
	images := map[string][32]byte{} // disk2's tags
	var tags []string
	stopWL := r.workload([]int{0, 1, 2}, func(i int, tag journal.TagInfo, img [32]byte) {
		if i == 2 {
			mu.Lock()
			images[tag.Name] = img
			tags = append(tags, tag.Name)
			mu.Unlock()
		}
	})
	// The second tag of disk2 once it is in retention: writes follow it.
	var name string
	p2 := r.cl.Pair(disk(2))
	r.waitFor("a tag of disk2 in retention", func() bool {
		mu.Lock()
		defer mu.Unlock()
		if len(tags) < 3 {
			return false
		}
		name = tags[1]
		return slices.ContainsFunc(p2.Store().Tags(), func(tg journal.Tag) bool { return tg.Name == name })
	})
	job, err := r.b.Recover(api.RecoverRequest{Point: "tag:" + name, Mode: api.ModeRollback, Pairs: []string{pair(2)}})
	if err != nil {
		t.Fatal(err)
	}
	r.waitFor("the rollback", func() bool {
		j, err := r.b.Job(job.ID)
		return err == nil && j.State != api.JobRunning
	})
	if j, _ := r.b.Job(job.ID); j.State != api.JobDone {
		t.Fatalf("rollback job %s: %s", j.State, j.Error)
	}
	// The others go on: more writes reach their targets after the rollback.
	d0, d1 := r.status(pair(0)).DurableSeq, r.status(pair(1)).DurableSeq
	r.waitFor("writes after the rollback", func() bool {
		return r.status(pair(0)).DurableSeq > d0+50 && r.status(pair(1)).DurableSeq > d1+50
	})
	stopWL()
	r.waitFor("the others to drain", func() bool { return r.caughtUp(0) && r.caughtUp(1) })

	after := r.cl.Stats()
	if after.Connections != before.Connections || after.ResyncBytes != before.ResyncBytes || after.ZeroBytes != before.ZeroBytes || after.HashRequests != before.HashRequests {
		t.Errorf("the rollback disturbed the session: before %+v, after %+v", before, after)
	}
	for i := range 2 {
		if fileHash(t, r.source(i)) != fileHash(t, r.target(i)) {
			t.Errorf("%s: target differs from its source", disk(i))
		}
		if s := r.status(pair(i)); s.Health != writer.HealthOK || !s.Connected {
			t.Errorf("%s: health %s (%s), connected %v", pair(i), s.Health, s.Reason, s.Connected)
		}
	}
	mu.Lock()
	want := images[name]
	mu.Unlock()
	if fileHash(t, r.target(2)) != want {
		t.Errorf("%s: target after the rollback differs from the source at tag %s", disk(2), name)
	}
	assertEnded := func(what string) {
		t.Helper()
		s := r.status(pair(2))
		if s.State != agent.StateEnded || s.Health != writer.HealthEnded || s.Connected || !strings.Contains(s.Reason, "rolled back to tag "+name) {
			t.Errorf("%s: %s: state %q health %q connected %v reason %q", what, pair(2), s.State, s.Health, s.Connected, s.Reason)
		}
		st, err := r.b.Status()
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(st.Pairs, func(p api.PairStatus) bool { return p.ID == pair(2) })
		if i < 0 || st.Pairs[i].State != agent.StateEnded || st.Pairs[i].Health != writer.HealthEnded {
			t.Errorf("%s: the status API does not report %s ended: %+v", what, pair(2), st.Pairs)
		}
	}
	assertEnded("after the rollback")
	if st := r.srv.Disk(disk(2)).Status(); len(st) != 0 {
		t.Errorf("the process server still streams %s: %+v", disk(2), st)
	}

	// Restart with the ended pair still configured.
	if err := r.stopCl(); err != nil {
		t.Fatalf("agent stopped with %v", err)
	}
	rec := &logRec{}
	r.cfg.Logger = slog.New(rec)
	r.start()
	assertEnded("after a restart")
	if w := rec.find(slog.LevelWarn, "pair has ended and is skipped"); len(w) != 1 || w[0]["pair"].String() != pair(2) ||
		!strings.Contains(w[0]["msg"].String(), "remove its [[pair]] from agent.toml") {
		t.Errorf("no warning at start naming %s and saying to remove its [[pair]]: %v", pair(2), w)
	}
	stopWL = r.workload([]int{0, 1, 2}, nil)
	d0, d1 = r.status(pair(0)).DurableSeq, r.status(pair(1)).DurableSeq
	r.waitFor("writes after the restart", func() bool {
		return r.status(pair(0)).DurableSeq > d0+50 && r.status(pair(1)).DurableSeq > d1+50
	})
	stopWL()
	r.waitFor("the others to drain after the restart", func() bool { return r.caughtUp(0) && r.caughtUp(1) })
	for i := range 2 {
		if fileHash(t, r.source(i)) != fileHash(t, r.target(i)) {
			t.Errorf("after the restart, %s: target differs from its source", disk(i))
		}
	}
	if fileHash(t, r.target(2)) != want {
		t.Errorf("after the restart, %s's target changed: the ended pair was written", disk(2))
	}
	if st := r.cl.Stats(); st.Connections != 1 {
		t.Errorf("after the restart: %d connections, want 1", st.Connections)
	}
	assertEnded("after the restart's writes")
}

// logRec records the agent's log lines.
type logRec struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *logRec) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRec) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRec) WithGroup(string) slog.Handler            { return r }
func (r *logRec) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec.Clone())
	r.mu.Unlock()
	return nil
}

// find returns the lines at level whose message starts with prefix, each
// as its attributes.
func (r *logRec) find(level slog.Level, prefix string) []map[string]slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]slog.Value
	for _, rec := range r.recs {
		if rec.Level != level || !strings.HasPrefix(rec.Message, prefix) {
			continue
		}
		m := map[string]slog.Value{"msg": slog.StringValue(rec.Message)}
		rec.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value; return true })
		out = append(out, m)
	}
	return out
}

// retries are the backoff bounds of the "connection … ended" lines; each
// line's retry_in (the jittered wait) must lie within its bound.
func (r *logRec) retries(t *testing.T) []time.Duration {
	var out []time.Duration
	for _, m := range r.find(slog.LevelWarn, "connection to the process server ended") {
		if in, within := m["retry_in"].Duration(), m["backoff"].Duration(); in < 0 || in > within {
			t.Errorf("retry in %v, not within its backoff %v", in, within)
		}
		out = append(out, m["backoff"].Duration())
	}
	return out
}

// A pair whose journal fails ends every connection it is part of, as soon
// as the process server sends it something: the backoff keeps growing
// instead of starting again at the minimum after each such connection.
func TestPairErrorBacksOff(t *testing.T) {
	const size = 2 << 20
	r := newRig(t, size, nil, ps.Config{ChunkSize: 64 << 10})
	r.startPS()
	mem := vfs.NewMem()
	var failing atomic.Bool
	mem.SetInjector(func(op vfs.Op, name string) error {
		if failing.Load() && op == vfs.OpSync && strings.Contains(name, "journal") {
			return syscall.EIO
		}
		return nil
	})
	rec := &logRec{}
	const minB, maxB = time.Millisecond, 64 * time.Millisecond
	r.agentCfgChange = func(c *agent.Config) {
		c.Writer.FS, c.Writer.TargetFS = mem, vfs.OS
		c.MinBackoff, c.MaxBackoff = minB, maxB
		c.Logger = slog.New(rec)
	}
	key, _ := keys(t)
	r.newAgent(key, r.addr, false)
	r.runAgent()
	r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
	failing.Store(true)
	wctx, wcancel := context.WithCancel(r.ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := (ps.Workload{Seed: 3, WriteSize: 4 << 10, Rate: 200}).Run(wctx, r.srv.Disk("disk0")); err != nil {
			t.Error(err)
		}
	})
	defer wg.Wait()
	defer wcancel()
	r.waitFor("connections ended by the pair", 15*time.Second, func() bool { return len(rec.retries(t)) >= 9 })
	got := rec.retries(t)
	for i, d := range got[:9] {
		if want := min(minB<<i, maxB); d != want {
			t.Fatalf("retry %d in %v, want %v: the backoff does not grow while the pair fails (%v)", i, d, want, got)
		}
	}
	if s := r.cl.Status()[0]; s.Health != writer.HealthError {
		t.Fatalf("pair health %s, want %s", s.Health, writer.HealthError)
	}
	// Closing reports the journal's error: expected here.
	r.cancel()
	r.wg.Wait()
	if err := r.cl.Close(); !errors.Is(err, syscall.EIO) {
		t.Errorf("close: %v", err)
	}
	r.cl = nil
}
