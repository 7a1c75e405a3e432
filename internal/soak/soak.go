// Package soak proves recovery under load: the demo's topology (a process
// server with a workload, an agent as a separate process, several pairs)
// on a contended machine, exporting live points of every kind and rolling
// single pairs back while the others replicate, every image compared with
// the source as it was at that point.
//
// The oracle is the source's write history, each write placed in the
// process server's sequence (history): the image at an exact point s is
// the first image plus every write numbered up to s. Points the agent
// calls not guaranteed (inside a resync) are counted, not compared.
//
// The agent runs as `mtconsole agent` in its own process with GOMAXPROCS=1
// and busy processes beside it, as the wrong live exports were first seen.
package soak

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/internal/demo"
	"github.com/mtconsole/mtconsole/internal/logging"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// Options shape a soak.
type Options struct {
	Bin        string        // the mtconsole binary that runs the agent
	Dir        string        // work directory (a temporary one when empty; removed unless Keep)
	Keep       bool          // keep Dir
	Duration   time.Duration // total run time, split over Rounds
	Rounds     int           // topologies, each ending with a live rollback of one pair
	Disks      int           // pairs per round (3)
	DiskSize   int64         // bytes per disk (16 MiB)
	Rate       float64       // writes per second per disk (60)
	Busy       int           // busy processes beside the agent (2)
	Seed       uint64
	MaxUnacked int64 // the process server's resend buffer per disk (4 MiB: small, so a lagging agent forces hash resyncs)
	Log        io.Writer
}

func (o *Options) defaults() {
	if o.Rounds <= 0 {
		o.Rounds = 1
	}
	if o.Disks <= 0 {
		o.Disks = 3
	}
	if o.DiskSize <= 0 {
		o.DiskSize = 16 << 20
	}
	if o.Rate <= 0 {
		o.Rate = 60
	}
	if o.MaxUnacked <= 0 {
		o.MaxUnacked = 4 << 20
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
}

// Report counts what a soak compared.
type Report struct {
	Exports        int      // images compared with the oracle
	WrongExports   int      // of them, wrong
	Rollbacks      int      // live single-pair rollbacks compared
	WrongRollbacks int      // of them, wrong
	NotGuaranteed  int      // points the agent called not guaranteed (not compared)
	Undecided      int      // exact points too close to a resync for the oracle (not compared)
	Refused        int      // jobs the agent refused or failed with a named error
	Problems       []string // what was wrong, one line each
}

func (r Report) String() string {
	return fmt.Sprintf("soak exports=%d wrong=%d rollbacks=%d wrong=%d", r.Exports, r.WrongExports, r.Rollbacks, r.WrongRollbacks)
}

// Detail is the second line of a report: what was not compared.
func (r Report) Detail() string {
	return fmt.Sprintf("not compared: %d not guaranteed, %d too close to a resync; %d refused with a named error", r.NotGuaranteed, r.Undecided, r.Refused)
}

// Run runs the soak and reports; an error is a soak that could not run.
func Run(ctx context.Context, o Options) (Report, error) {
	o.defaults()
	var rep Report
	if o.Bin == "" {
		return rep, errors.New("soak: no mtconsole binary (Options.Bin)")
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "mtconsole-soak-")
		if err != nil {
			return rep, err
		}
		dir = d
		if !o.Keep {
			defer os.RemoveAll(dir)
		}
	}
	stopBusy := busy(o.Busy)
	defer stopBusy()
	per := o.Duration / time.Duration(o.Rounds)
	rng := mrand.New(mrand.NewPCG(o.Seed, 0x50a4))
	for i := range o.Rounds {
		if ctx.Err() != nil {
			break
		}
		r := &round{o: o, dir: filepath.Join(dir, fmt.Sprintf("round%02d", i)), rng: mrand.New(mrand.NewPCG(rng.Uint64(), uint64(i))), rep: &rep}
		if err := r.run(ctx, per); err != nil {
			return rep, fmt.Errorf("round %d: %w (kept in %s)", i, err, r.dir)
		}
	}
	return rep, nil
}

// busy starts n processes that spin, and returns what stops them.
func busy(n int) func() {
	var cmds []*exec.Cmd
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if c.Start() == nil {
			cmds = append(cmds, c)
		}
	}
	return func() {
		for _, c := range cmds {
			c.Process.Kill()
			c.Wait()
		}
	}
}

type round struct {
	o   Options
	dir string
	rng *mrand.Rand
	rep *Report

	srv    *ps.Server
	hist   map[string]*history
	pairs  []string
	cl     *api.Client
	ended  map[string]bool
	groupN int
	mu     sync.Mutex // guards the writers against a group tag
	jobs   int
}

func (r *round) logf(format string, args ...any) {
	fmt.Fprintf(r.o.Log, "soak: "+format+"\n", args...)
}

func (r *round) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.rep.Problems = append(r.rep.Problems, msg)
	r.logf("WRONG: %s", msg)
}

func (r *round) run(ctx context.Context, d time.Duration) error {
	for _, sub := range []string{"sources", "targets", "journal", "retention", "export"} {
		if err := os.MkdirAll(filepath.Join(r.dir, sub), 0o700); err != nil {
			return err
		}
	}
	r.hist = map[string]*history{}
	r.ended = map[string]bool{}
	var disks []ps.DiskConfig
	initial := map[string][]byte{}
	for i := range r.o.Disks {
		name := fmt.Sprintf("disk%d", i)
		img := make([]byte, r.o.DiskSize)
		fill(r.rng, img[:len(img)/2]) // the rest stays zero: sent as zero ranges
		src := filepath.Join(r.dir, "sources", name+".img")
		if err := os.WriteFile(src, img, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(r.dir, "targets", name+".img"), nil, 0o600); err != nil {
			return err
		}
		if err := os.Truncate(filepath.Join(r.dir, "targets", name+".img"), r.o.DiskSize); err != nil {
			return err
		}
		disks = append(disks, ps.DiskConfig{Name: name, Path: src})
		initial[name] = img
		r.pairs = append(r.pairs, name)
	}
	passFile, key, cert, err := demo.Secrets(r.dir, []string{"127.0.0.1"})
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(r.dir, "ps.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	var hmu sync.Mutex
	r.srv, err = ps.New(ps.Config{Key: key, Cert: cert, HostID: "soak-source", HostName: "soak-source", Disks: disks,
		MaxUnacked: r.o.MaxUnacked, Logger: slog.New(logging.Redact(slog.NewTextHandler(logf, nil))),
		OnResume: func(disk string, seq uint64, renumbered bool) {
			hmu.Lock()
			h := r.hist[disk]
			hmu.Unlock()
			if renumbered && h != nil {
				h.renumbered(seq)
			}
		}})
	if err != nil {
		return err
	}
	defer r.srv.Close()
	hmu.Lock()
	for _, d := range r.srv.Disks() {
		r.hist[d.Name()] = newHistory(d, initial[d.Name()])
	}
	hmu.Unlock()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	psCtx, stopPS := context.WithCancel(ctx)
	defer stopPS()
	psDone := make(chan error, 1)
	go func() { psDone <- r.srv.Serve(psCtx, ln) }()
	defer func() { stopPS(); <-psDone }()

	// The workload: one writer per disk, and group tags.
	wctx, stopW := context.WithCancel(ctx)
	var wwg sync.WaitGroup
	werr := make(chan error, r.o.Disks+1)
	for i, name := range r.pairs {
		wrng := mrand.New(mrand.NewPCG(r.rng.Uint64(), uint64(i)))
		wwg.Go(func() {
			if err := r.writer(wctx, r.hist[name], wrng); err != nil {
				werr <- fmt.Errorf("writer %s: %w", name, err)
			}
		})
	}
	wwg.Go(func() { r.tagger(wctx) })
	defer func() { stopW(); wwg.Wait() }()

	// The agent, a process of its own on one CPU.
	socket := filepath.Join(r.dir, "agent.sock")
	cfg := filepath.Join(r.dir, "agent.toml")
	ac := demo.AgentConfig{HostID: "soak-mt", Dir: r.dir, Socket: socket, Addr: ln.Addr().String(), PassFile: passFile,
		Retention: "1h", Pairs: r.pairs}
	if err := ac.Write(cfg); err != nil {
		return err
	}
	agentLog, err := os.Create(filepath.Join(r.dir, "agent.log"))
	if err != nil {
		return err
	}
	defer agentLog.Close()
	agent := exec.Command(r.o.Bin, "agent", "--config", cfg)
	agent.Env = append(os.Environ(), "GOMAXPROCS=1")
	agent.Stdout, agent.Stderr = agentLog, agentLog
	if err := agent.Start(); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	agentDone := make(chan error, 1) // its error, for whoever watches first
	exited := make(chan struct{})
	go func() {
		agentDone <- agent.Wait()
		close(exited)
	}()
	defer func() {
		agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			agent.Process.Kill()
			<-exited
		}
	}()
	if r.cl, err = api.WaitFor(ctx, socket, agentDone, 30*time.Second); err != nil {
		return fmt.Errorf("%w (see %s)", err, filepath.Join(r.dir, "agent.log"))
	}
	defer r.cl.Close()
	if err := r.waitDiffSync(ctx, agentDone, werr); err != nil {
		return err
	}
	r.logf("%s: every pair in Differential Sync; exporting for %s", filepath.Base(r.dir), d)

	// Exports of every kind, then one pair rolled back live, then more
	// exports of the others.
	end := time.Now().Add(d * 3 / 4)
	for time.Now().Before(end) {
		if err := r.exportOnce(ctx); err != nil {
			return err
		}
		if err := r.alive(agentDone, werr); err != nil {
			return err
		}
	}
	victim := r.pairs[r.rng.IntN(len(r.pairs))]
	if err := r.rollback(ctx, victim); err != nil {
		return err
	}
	end = time.Now().Add(d / 4)
	for time.Now().Before(end) {
		if err := r.exportOnce(ctx); err != nil {
			return err
		}
		if err := r.alive(agentDone, werr); err != nil {
			return err
		}
	}
	// The others kept replicating: their applied position moved on.
	return r.stillReplicating(ctx)
}

func fill(rng *mrand.Rand, b []byte) {
	for i := 0; i+8 <= len(b); i += 8 {
		v := rng.Uint64()
		for k := range 8 {
			b[i+k] = byte(v >> (8 * k))
		}
	}
}

func (r *round) target(pair string) string {
	return filepath.Join(r.dir, "targets", pair+".img")
}

// writer writes random blocks of 4 to 16 KiB at the round's rate.
func (r *round) writer(ctx context.Context, h *history, rng *mrand.Rand) error {
	tick := time.NewTicker(time.Duration(float64(time.Second) / r.o.Rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		n := int64(4096 * (1 + rng.IntN(4)))
		off := rng.Int64N((r.o.DiskSize-n)/4096+1) * 4096
		data := make([]byte, n)
		fill(rng, data)
		r.mu.Lock()
		err := h.write(off, data)
		r.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// tagger places a tag on every disk at one moment (the writers stopped),
// a multi-disk point, every second (every fifth application-consistent);
// now and then a tag on one disk only.
func (r *round) tagger(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		r.groupN++
		app := journal.AppCrash
		if r.groupN%5 == 0 {
			app = journal.AppFS // application-consistent
		}
		info := journal.TagInfo{Name: fmt.Sprintf("group-%04d", r.groupN), App: app,
			ID: fmt.Sprintf("soak-%s-%d", filepath.Base(r.dir), r.groupN), Time: time.Now().UTC()}
		r.mu.Lock()
		for _, d := range r.srv.Disks() {
			d.Tag(info)
		}
		r.mu.Unlock()
		if r.groupN%4 == 0 {
			d := r.srv.Disks()[r.groupN/4%len(r.srv.Disks())]
			r.mu.Lock()
			d.Tag(journal.TagInfo{Name: fmt.Sprintf("%s-only-%04d", d.Name(), r.groupN), App: journal.AppFS,
				ID: fmt.Sprintf("soak-%s-%s-%d", filepath.Base(r.dir), d.Name(), r.groupN), Time: time.Now().UTC()})
			r.mu.Unlock()
		}
		for _, h := range r.hist {
			h.observe()
		}
	}
}

func (r *round) alive(agentDone <-chan error, werr <-chan error) error {
	select {
	case err := <-agentDone:
		return fmt.Errorf("the agent stopped: %v (see %s)", err, filepath.Join(r.dir, "agent.log"))
	case err := <-werr:
		return err
	default:
		return nil
	}
}

func (r *round) waitDiffSync(ctx context.Context, agentDone <-chan error, werr <-chan error) error {
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if err := r.alive(agentDone, werr); err != nil {
			return err
		}
		st, err := r.cl.Status(ctx)
		if err != nil {
			return err
		}
		n := 0
		for _, p := range st.Pairs {
			if p.State == wire.StateDiffSync.String() && p.Retention.Tags > 0 {
				n++
			}
		}
		if n == len(r.pairs) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return errors.New("the pairs did not all reach Differential Sync with a tag in 3 minutes")
}

// live returns the pairs not rolled back.
func (r *round) live() []string {
	var out []string
	for _, p := range r.pairs {
		if !r.ended[p] {
			out = append(out, p)
		}
	}
	return out
}

// exportOnce exports one point, chosen at random, and compares it.
func (r *round) exportOnce(ctx context.Context) error {
	live := r.live()
	pair := live[r.rng.IntN(len(live))]
	pairs := []string{pair}
	var point string
	switch k := r.rng.IntN(6); k {
	case 0: // the latest tag common to every live pair
		pairs = live
		point = "latest-tag"
	case 1:
		point = "latest-tag"
	case 2: // an older tag by name
		tags, err := r.cl.Tags(ctx, pair)
		if err != nil {
			return err
		}
		if len(tags) < 2 {
			return nil
		}
		point = "tag:" + tags[r.rng.IntN(len(tags)-1)].Name
	case 3:
		point = "latest-time"
	case 4: // a time inside the last 20 s of writes
		ts := r.hist[pair].times()
		if len(ts) == 0 {
			return nil
		}
		lo := max(0, len(ts)-int(20*r.o.Rate))
		t := ts[lo+r.rng.IntN(len(ts)-lo)].Add(time.Duration(r.rng.IntN(20)) * time.Millisecond)
		point = "time:" + t.UTC().Format(time.RFC3339Nano)
	case 5: // the latest application-consistent point of every pair
		pairs = live
		point = "latest-app-consistent"
		if r.rng.IntN(2) == 0 {
			point = "latest-tag"
		}
	}
	r.jobs++
	dest := filepath.Join(r.dir, "export", fmt.Sprintf("x%05d", r.jobs))
	if len(pairs) == 1 {
		dest += ".img"
	}
	job, err := r.job(ctx, api.RecoverRequest{Point: point, Mode: api.ModeExport, Dest: dest, Pairs: pairs})
	if err != nil {
		return err
	}
	if job.State != api.JobDone {
		r.rep.Refused++
		r.logf("export %s of %s refused: %s", point, strings.Join(pairs, ","), job.Error)
		return nil
	}
	for _, p := range pairs {
		file := dest
		if len(pairs) > 1 {
			file = filepath.Join(dest, p+".img")
		}
		r.compare(p, job.Points[p], file, "export "+point, &r.rep.Exports, &r.rep.WrongExports)
		os.Remove(file)
	}
	os.Remove(dest)
	return nil
}

// job starts a recovery and waits for its end. An error the agent gives
// at once (a point it cannot resolve) comes back as a failed job.
func (r *round) job(ctx context.Context, req api.RecoverRequest) (api.Job, error) {
	j, err := r.cl.Recover(ctx, req)
	if err != nil {
		var ae *api.APIError
		if errors.As(err, &ae) {
			return api.Job{State: api.JobFailed, Error: err.Error()}, nil
		}
		return j, err
	}
	for j.State == api.JobRunning {
		time.Sleep(20 * time.Millisecond)
		if j, err = r.cl.Job(ctx, j.ID); err != nil {
			return j, err
		}
	}
	return j, nil
}

// compare checks file against the oracle at the job's point.
func (r *round) compare(pair string, pt recovery.Resolved, file, what string, n, wrong *int) {
	if pt.Accuracy != journal.Exact {
		r.rep.NotGuaranteed++
		return
	}
	want, ok := r.hist[pair].imageAt(pt.Seq)
	if !ok {
		r.rep.Undecided++
		return
	}
	got, err := os.ReadFile(file)
	*n++
	if err != nil {
		*wrong++
		r.problem("%s of %s: %v", what, pair, err)
		return
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		*wrong++
		r.problem("%s of %s at sequence %d (%s): the image differs from the source at that point: %s",
			what, pair, pt.Seq, pt.String(), firstDiff(got, want))
		return
	}
}

func firstDiff(got, want []byte) string {
	if len(got) != len(want) {
		return fmt.Sprintf("%d bytes, want %d", len(got), len(want))
	}
	var regions []string
	for off := 0; off < len(got); off += 4096 {
		if string(got[off:off+4096]) != string(want[off:off+4096]) {
			regions = append(regions, fmt.Sprint(off))
			if len(regions) == 8 {
				regions = append(regions, "…")
				break
			}
		}
	}
	return "4 KiB blocks at " + strings.Join(regions, ", ")
}

// rollback rolls one pair back live to one of its tags and compares the
// target with the source at that tag.
func (r *round) rollback(ctx context.Context, pair string) error {
	tags, err := r.cl.Tags(ctx, pair)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return fmt.Errorf("pair %s has no tag to roll back to", pair)
	}
	tag := tags[len(tags)/2+r.rng.IntN(len(tags)-len(tags)/2)]
	r.ended[pair] = true
	r.hist[pair].end()
	job, err := r.job(ctx, api.RecoverRequest{Point: "tagid:" + tag.ID, Mode: api.ModeRollback, Pairs: []string{pair}})
	if err != nil {
		return err
	}
	if job.State != api.JobDone {
		r.rep.Rollbacks++
		r.rep.WrongRollbacks++
		r.problem("rollback of %s to tag %s failed: %s", pair, tag.Name, job.Error)
		return nil
	}
	r.logf("rolled %s back to tag %s live", pair, tag.Name)
	r.compare(pair, job.Points[pair], r.target(pair), "rollback to tag "+tag.Name, &r.rep.Rollbacks, &r.rep.WrongRollbacks)
	return nil
}

// stillReplicating checks the pairs not rolled back keep applying.
func (r *round) stillReplicating(ctx context.Context) error {
	applied := func() (map[string]uint64, error) {
		st, err := r.cl.Status(ctx)
		if err != nil {
			return nil, err
		}
		m := map[string]uint64{}
		for _, p := range st.Pairs {
			m[p.ID] = p.AppliedSeq
		}
		return m, nil
	}
	before, err := applied()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, p := range r.live() {
		for {
			now, err := applied()
			if err != nil {
				return err
			}
			if now[p] > before[p] {
				break
			}
			if time.Now().After(deadline) {
				r.problem("pair %s stopped applying after %s was rolled back (applied %d)", p, strings.Join(slices.Collect(func(yield func(string) bool) {
					for q, e := range r.ended {
						if e && !yield(q) {
							return
						}
					}
				}), ","), now[p])
				r.rep.WrongRollbacks++
				return nil
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return nil
}
