package main

// benchengine -mode churn -dir DIR: churn_64, the highest aggregate rate
// of 64 KiB random writes that -pairs pairs (64) sustain with every
// pair's RPO under -churn-rpo (30 s), a process server and an agent in
// this process over TLS on 127.0.0.1, journal and retention on.
//
// Each trial offers an aggregate rate, spread evenly over the disks, for
// -churn-trial (60 s). A pair's RPO is sampled every second as the age of
// the newest source write applied to its target (the writer's RPO, which
// runs to the newest durable write, plus its apply backlog). A trial
// holds when every pair stays in Differential Sync (an overflowing
// process-server buffer would turn it into a resync), no RPO sample
// reaches the limit, the workloads offered what was asked (a stalled
// generator would hide a slow agent), and the RPO does not climb: the
// worst pair's mean over the last quarter of the trial is no more than
// two seconds above its mean over the second quarter. The rate doubles
// from -churn-start until a trial fails (or halves until one holds, when
// the start is already too fast), then two bisection steps narrow it;
// between trials the agent drains.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

var churn struct {
	trial     time.Duration
	rpo       time.Duration
	start     float64 // MiB/s, aggregate
	writeSize int
}

func init() {
	flag.DurationVar(&churn.trial, "churn-trial", 60*time.Second, "churn: length of each trial")
	flag.DurationVar(&churn.rpo, "churn-rpo", 30*time.Second, "churn: the RPO every pair must stay under")
	flag.Float64Var(&churn.start, "churn-start", 16, "churn: aggregate MiB/s of the first trial")
	flag.IntVar(&churn.writeSize, "churn-write-size", 64<<10, "churn: bytes per write")
}

type churnTrial struct {
	offered, generated float64 // MiB/s, aggregate
	maxRPO             float64 // seconds, worst sample of any pair
	climb              float64 // seconds, worst pair's last-quarter mean minus second-quarter mean
	left               string  // why the trial failed ("" when it held)
}

func benchChurn(c config) error {
	disks := filepath.Join(c.dir, "disks")
	dcs, err := sparseDisks(disks)
	if err != nil {
		return err
	}
	var pcs []agent.PairConfig
	for i, d := range dcs {
		name := d.Name
		pc := pairConfig(c.dir, name, name, filepath.Join(disks, fmt.Sprintf("t%03d.img", i)))
		// capped, so that a few minutes at hundreds of MiB/s do not fill
		// the volume: purging the oldest segments is part of the work
		pc.Policy.SizeCap = 4 * rc.pairSize
		pcs = append(pcs, pc)
	}
	p, err := startPS(ps.Config{Disks: dcs})
	if err != nil {
		return err
	}
	defer p.stop()
	acfg, err := agentConfig(c.dir, p.addr, true, pcs)
	if err != nil {
		return err
	}
	cl, err := agent.New(acfg)
	if err != nil {
		return err
	}
	_, runErr, finish := runAgent(cl)
	allInLine := func() bool {
		for _, pc := range pcs {
			if !inLine(p, cl, pc.Disk) {
				return false
			}
		}
		return true
	}
	t0 := time.Now()
	if err := waitFor("every pair in Differential Sync", runErr, allInLine); err != nil {
		return finish(err)
	}
	setup := time.Since(t0).Seconds()

	var trials []churnTrial
	run := func(rate float64) (churnTrial, error) {
		tr, err := churnRun(p, cl, rate, runErr)
		if err != nil {
			return tr, err
		}
		trials = append(trials, tr)
		fmt.Fprintf(os.Stderr, "bench: churn_64 %.1f MiB/s offered: %s\n", rate, tr.verdict())
		// the next trial starts from a drained agent
		err = waitFor("the agent to drain", runErr, allInLine)
		return tr, err
	}
	good, bad := 0.0, 0.0
	for rate := churn.start; bad == 0 && rate < 1<<14; rate *= 2 {
		tr, err := run(rate)
		if err != nil {
			return finish(err)
		}
		if tr.left == "" {
			good = rate
		} else {
			bad = rate
		}
	}
	// The start already too fast: halve until a rate holds.
	for rate := churn.start / 2; good == 0 && rate >= 0.25; rate /= 2 {
		tr, err := run(rate)
		if err != nil {
			return finish(err)
		}
		if tr.left == "" {
			good = rate
		} else {
			bad = rate
		}
	}
	for range 2 {
		if good == 0 || bad == 0 {
			break
		}
		mid := (good + bad) / 2
		tr, err := run(mid)
		if err != nil {
			return finish(err)
		}
		if tr.left == "" {
			good = mid
		} else {
			bad = mid
		}
	}
	if err := finish(nil); err != nil {
		return err
	}
	kv("figure=churn_64", "mibps", good, "first_failed_mibps", bad, "pairs", rc.pairs, "pair_size", rc.pairSize,
		"write_size", churn.writeSize, "trial_s", churn.trial.Seconds(), "rpo_limit_s", churn.rpo.Seconds(),
		"trials", len(trials), "setup_s", setup)
	for _, tr := range trials {
		kv("trial", "offered_mibps", tr.offered, "generated_mibps", tr.generated, "max_rpo_s", tr.maxRPO,
			"climb_s", tr.climb, "held", tr.left == "")
	}
	return nil
}

func (t churnTrial) verdict() string {
	s := fmt.Sprintf("generated %.1f MiB/s, worst RPO %.1f s, climb %.1f s", t.generated, t.maxRPO, t.climb)
	if t.left != "" {
		return s + ": failed, " + t.left
	}
	return s + ": held"
}

// churnRun offers rate MiB/s over every disk for churn.trial and samples
// the pairs' RPO each second.
func churnRun(p *psRig, cl *agent.Client, rate float64, runErr chan error) (churnTrial, error) {
	tr := churnTrial{offered: rate}
	disks := p.srv.Disks()
	perDisk := rate * (1 << 20) / float64(churn.writeSize) / float64(len(disks))
	next0 := map[*ps.Disk]uint64{}
	srcs := map[*ps.Disk]ps.ChangeSource{}
	for i, d := range disks {
		next0[d] = d.Status()[0].Next
		srcs[d] = ps.Workload{Seed: int64(i+1) + int64(rate*1000), Rate: perDisk, WriteSize: churn.writeSize}
	}
	ctx, cancel := context.WithTimeout(context.Background(), churn.trial)
	defer cancel()
	wlErr := make(chan error, 1)
	start := time.Now()
	go func() { wlErr <- ps.Run(ctx, srcs) }()
	samples := map[string][]float64{}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-runErr:
			runErr <- err
			return tr, fmt.Errorf("agent stopped during a churn trial: %v", err)
		case <-tick.C:
		}
		for _, d := range disks {
			st := d.Status()
			if len(st) != 1 || st[0].Phase != wire.StateDiffSync {
				if tr.left == "" {
					tr.left = fmt.Sprintf("disk %s left Differential Sync after %.0f s", d.Name(), time.Since(start).Seconds())
				}
				continue
			}
			ws := cl.Pair(d.Name()).Status()
			rpo := ws.RPOSeconds + ws.BacklogSeconds
			samples[d.Name()] = append(samples[d.Name()], rpo)
			tr.maxRPO = max(tr.maxRPO, rpo)
		}
	}
	if err := <-wlErr; err != nil && ctx.Err() == nil {
		return tr, err
	}
	secs := time.Since(start).Seconds()
	var written uint64
	for _, d := range disks {
		if st := d.Status(); len(st) == 1 {
			written += st[0].Next - next0[d]
		}
	}
	tr.generated = float64(written) * float64(churn.writeSize) / (1 << 20) / secs
	for _, s := range samples {
		q := len(s) / 4
		if q == 0 {
			continue
		}
		tr.climb = max(tr.climb, mean(s[3*q:])-mean(s[q:2*q]))
	}
	switch {
	case tr.left != "":
	case tr.maxRPO >= churn.rpo.Seconds():
		tr.left = fmt.Sprintf("an RPO of %.1f s, the limit is %.0f s", tr.maxRPO, churn.rpo.Seconds())
	case tr.generated < 0.95*rate:
		tr.left = fmt.Sprintf("the sources wrote only %.1f of %.1f MiB/s", tr.generated, rate)
	case tr.climb > 2:
		tr.left = fmt.Sprintf("the RPO climbs (%.1f s higher in the last quarter)", tr.climb)
	}
	return tr, nil
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}
