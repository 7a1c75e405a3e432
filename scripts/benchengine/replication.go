package main

// The replication benchmarks of DESIGN §9 and issue 3: a process server
// (replication/ps) and an agent (replication/agent) over TLS on
// 127.0.0.1, journal and retention on, on real files:
//
//	benchengine -mode resync-prep -keep -dir DIR   a random source, a copy of it as target, then 1 % of the
//	                                               source's 4 KiB blocks changed (DIR/source.img, DIR/target.img)
//	benchengine -mode resync-hash -source S -target T -dir DIR   hash resync of T (modified in place) from S
//	benchengine -mode resync-full -source S -dir DIR             full resync of S into an empty target
//	benchengine -mode stream -dir DIR     workload-generator writes streamed ps → agent and applied
//	benchengine -mode rss -dir DIR        RSS of an agent process (this program, -mode agent-child)
//	                                      streaming -pairs pairs
//	benchengine -mode churn -dir DIR      the highest aggregate rate -pairs pairs sustain with RPO < 30 s (churn.go)

import (
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// replConfig holds the flags of the replication modes (registered here so
// the engine modes' config stays as it is).
type replConfig struct {
	source, target string
	diskSize       int64
	changePct      float64
	chunk          int
	hashBatch      int
	verify         bool
	streamBytes    int64
	streamSize     int
	pairs          int
	pairSize       int64
	rate           float64
	duration       time.Duration
	interval       time.Duration
	warm           time.Duration
	addr           string
	disksDir       string
	timeout        time.Duration
	heapProfile    string
}

var rc replConfig

func init() {
	flag.StringVar(&rc.source, "source", "", "resync-hash, resync-full: the source disk file")
	flag.StringVar(&rc.target, "target", "", "resync-hash: the target file (brought in line in place)")
	flag.Int64Var(&rc.diskSize, "disk-size", 1<<30, "resync-prep: size of the source and target")
	flag.Float64Var(&rc.changePct, "change-pct", 1, "resync-prep: percent of the 4 KiB blocks changed in the source")
	flag.IntVar(&rc.chunk, "chunk", 16<<10, "resync-hash: ps.Config.ChunkSize (resync-full and stream: the default, 1 MiB)")
	flag.IntVar(&rc.hashBatch, "hash-batch", 1024, "resync-hash: ps.Config.HashBatch")
	flag.BoolVar(&rc.verify, "verify", false, "resync-hash, resync-full, stream: check the target equals the source afterwards (not timed)")
	flag.Int64Var(&rc.streamBytes, "stream-bytes", 256<<20, "stream: bytes written by the workload generator")
	flag.IntVar(&rc.streamSize, "stream-write-size", 64<<10, "stream: size of one workload write")
	flag.IntVar(&rc.pairs, "pairs", 64, "rss: pairs (disks)")
	flag.Int64Var(&rc.pairSize, "pair-size", 16<<20, "rss: size of each disk")
	flag.Float64Var(&rc.rate, "rate", 10, "rss: workload writes per second per disk")
	flag.DurationVar(&rc.duration, "duration", 60*time.Second, "rss: how long the workloads stream")
	flag.DurationVar(&rc.interval, "sample", 5*time.Second, "rss: RSS sampling interval")
	flag.DurationVar(&rc.warm, "rss-warmup", 15*time.Second, "rss: samples before this are not in the min/max")
	flag.StringVar(&rc.addr, "addr", "", "agent-child: the process server")
	flag.StringVar(&rc.disksDir, "disks-dir", "", "agent-child: where the targets are")
	flag.DurationVar(&rc.timeout, "timeout", 5*time.Minute, "give up waiting after this long")
	flag.StringVar(&rc.heapProfile, "agent-heapprofile", "", "rss, agent-child: write the agent's heap profile here when it stops")
}

// runReplication runs a replication mode; ok is false for other modes.
func runReplication(c config) (bool, error) {
	switch c.mode {
	case "resync-prep":
		return true, resyncPrep(c)
	case "resync-hash":
		return true, benchResync(c, true)
	case "resync-full":
		return true, benchResync(c, false)
	case "stream":
		return true, benchStream(c)
	case "rss":
		return true, benchRSS(c)
	case "churn":
		return true, benchChurn(c)
	case "restart":
		return true, benchRestart(c)
	case "agent-child":
		return true, agentChild(c)
	}
	return false, nil
}

// benchKey is the handshake key of both sides: deriving one from a
// passphrase takes PBKDF2's 600000 rounds, which is not what is measured.
var benchKey = wire.Key{'b', 'e', 'n', 'c', 'h'}

// psRig is a process server on 127.0.0.1.
type psRig struct {
	srv    *ps.Server
	addr   string
	cancel context.CancelFunc
	done   chan error
}

func startPS(cfg ps.Config) (*psRig, error) {
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		return nil, err
	}
	cert, _, err := wire.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	cfg.Key, cfg.Cert, cfg.HostID, cfg.HostName = benchKey, cert, "bench-ps", "bench-source"
	srv, err := ps.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		srv.Close()
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &psRig{srv: srv, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- srv.Serve(ctx, ln) }()
	return r, nil
}

func (r *psRig) stop() error {
	r.cancel()
	err := <-r.done
	if e := r.srv.Close(); err == nil {
		err = e
	}
	return err
}

// agentConfig is the agent's configuration as `mtconsole agent` builds it
// from its file (agent.FileConfig.ClientConfig): the engine's defaults,
// 24 h retention that purges when full.
func agentConfig(dir, addr string, hash bool, pairs []agent.PairConfig) (agent.Config, error) {
	trust, err := wire.OpenTrustStore(filepath.Join(dir, "trust", "known_servers"))
	if err != nil {
		return agent.Config{}, err
	}
	return agent.Config{Addr: addr, Key: benchKey, Trust: trust, HostID: "bench-mt", HostName: "bench-master-target",
		Confirm: func(string, wire.Fingerprint) bool { return true }, HashResync: hash, Pairs: pairs,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}, nil
}

func pairConfig(dir, id, disk, target string) agent.PairConfig {
	return agent.PairConfig{Disk: disk, PairConfig: writer.PairConfig{ID: id, Target: target,
		JournalDir: filepath.Join(dir, "journal", id), RetentionDir: filepath.Join(dir, "retention", id),
		Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge}}}
}

// inLine reports whether disk's stream is in Differential Sync with
// everything it numbered acknowledged, and the agent's pair has applied
// all of it.
func inLine(p *psRig, cl *agent.Client, disk string) bool {
	st := p.srv.Disk(disk).Status()
	if len(st) != 1 || st[0].Phase != wire.StateDiffSync || st[0].Acked != st[0].Next-1 || st[0].Unacked != 0 {
		return false
	}
	ws := cl.Pair(disk).Status()
	return ws.DurableSeq == st[0].Acked && ws.AppliedSeq == ws.DurableSeq
}

// waitFor polls ok every 5 ms until it holds, the agent stops, or the
// timeout passes.
func waitFor(what string, runErr chan error, ok func() bool) error {
	deadline := time.Now().Add(rc.timeout)
	for !ok() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", rc.timeout, what)
		}
		select {
		case err := <-runErr:
			runErr <- err // for the caller, who waits for it too
			return fmt.Errorf("agent stopped while waiting for %s: %v", what, err)
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// writeRandomFile writes size random bytes to path and syncs it.
func writeRandomFile(path string, size int64, rng *rand.ChaCha8) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		rng.Read(buf[:n])
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, make([]byte, 4<<20)); err != nil {
		return err
	}
	return out.Sync()
}

// resyncPrep writes DIR/target.img (random), DIR/source.img (a copy), and
// then changes -change-pct of the source's 4 KiB blocks, distinct and
// scattered, to other random data.
func resyncPrep(c config) error {
	if !c.keep {
		return errors.New("resync-prep: give -keep, the files are for the runs after it")
	}
	size := rc.diskSize
	if size <= 0 || size%4096 != 0 {
		return fmt.Errorf("-disk-size %d: want a positive multiple of 4096", size)
	}
	src, tgt := filepath.Join(c.dir, "source.img"), filepath.Join(c.dir, "target.img")
	var seed [32]byte
	seed[0] = byte(c.seed)
	rng := rand.NewChaCha8(seed)
	if err := writeRandomFile(tgt, size, rng); err != nil {
		return err
	}
	if err := copyFile(src, tgt); err != nil {
		return err
	}
	f, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	nblocks := size / 4096
	n := int64(float64(nblocks) * rc.changePct / 100)
	pick := rand.New(rand.NewPCG(c.seed, 42))
	seen := map[int64]bool{}
	buf := make([]byte, 4096)
	for int64(len(seen)) < n {
		b := pick.Int64N(nblocks)
		if seen[b] {
			continue
		}
		seen[b] = true
		rng.Read(buf)
		if _, err := f.WriteAt(buf, b*4096); err != nil {
			return err
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	kv("figure=resync_prep", "size", size, "blocks_changed", n, "block_size", 4096, "source", src, "target", tgt)
	return nil
}

// benchResync brings a target in line with -source through a process
// server and an agent: by hashes into -target (modified in place), or by
// a full copy into an empty (sparse) target. The time runs from the
// agent's start to the pair being in Differential Sync with everything
// acknowledged and applied (the target durable).
func benchResync(c config, hash bool) error {
	if rc.source == "" {
		return errors.New("-source is required")
	}
	fi, err := os.Stat(rc.source)
	if err != nil {
		return err
	}
	size := fi.Size()
	target := rc.target
	name := "resync_hash"
	pcfg := ps.Config{Disks: []ps.DiskConfig{{Name: "disk0", Path: rc.source}}}
	if hash {
		if target == "" {
			return errors.New("resync-hash: -target is required")
		}
		pcfg.ChunkSize, pcfg.HashBatch = rc.chunk, rc.hashBatch
	} else {
		name = "resync_full"
		target = filepath.Join(c.dir, "target.img")
		f, err := os.OpenFile(target, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		err = f.Truncate(size)
		f.Close()
		if err != nil {
			return err
		}
	}
	p, err := startPS(pcfg)
	if err != nil {
		return err
	}
	defer p.stop()
	acfg, err := agentConfig(c.dir, p.addr, hash, []agent.PairConfig{pairConfig(c.dir, "pair0", "disk0", target)})
	if err != nil {
		return err
	}
	cl, err := agent.New(acfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	stopProf, err := profile(c.cpuprofile)
	if err != nil {
		cancel()
		cl.Close()
		return err
	}
	cpu := cpuNow()
	start := time.Now()
	go func() { runErr <- cl.Run(ctx) }()
	err = waitFor("the pair in line", runErr, func() bool { return inLine(p, cl, "disk0") })
	sec := time.Since(start).Seconds()
	stopProf()
	usage := cpuSince(cpu)
	st := cl.Stats()
	ws := cl.Pair("disk0").Status()
	cancel()
	<-runErr
	if e := cl.Close(); err == nil {
		err = e
	}
	if err != nil {
		return err
	}
	if pcfg.ChunkSize == 0 {
		pcfg.ChunkSize = 1 << 20 // ps's default
	}
	sent := st.ResyncBytes
	kv("figure="+name, "bytes", size, "seconds", sec, "mibps", mib(size)/sec,
		"resync_bytes", st.ResyncBytes, "zero_bytes", st.ZeroBytes, "hash_requests", st.HashRequests,
		"hash_bytes", st.HashBytes,
		"chunk", pcfg.ChunkSize, "sent_bytes", sent, "connections", st.Connections,
		"retention_used", ws.Retention.UsedBytes, "health", strings.ReplaceAll(ws.Health, " ", "_"))
	kv("cpu", usage...)
	if rc.verify {
		if err := sameFiles(rc.source, target); err != nil {
			return err
		}
		kv("note verified", "target_equals_source", true)
	}
	return nil
}

// sameFiles checks that two files hold the same bytes.
func sameFiles(a, b string) error {
	ha, err := hashFile(a)
	if err != nil {
		return err
	}
	hb, err := hashFile(b)
	if err != nil {
		return err
	}
	if ha != hb {
		return fmt.Errorf("%s and %s differ", a, b)
	}
	return nil
}

func hashFile(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, f, make([]byte, 4<<20)); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

// benchStream measures end-to-end MB/s ps → agent: source and target
// pre-filled alike (1 GiB, as apply_retention's target), a hash resync
// finds them equal, then the workload generator (ps.Workload) writes
// -stream-bytes of 64 KiB random writes as fast as it can; the figure is
// those bytes over the time from the first write to the agent's applied
// sequence reaching the last one. The process server keeps every
// unacknowledged write (MaxUnacked above -stream-bytes): the generator
// does not wait for credit, and a stream whose changes overflow that
// buffer turns into a hash resync.
func benchStream(c config) error {
	size := c.targetSize
	src, tgt := filepath.Join(c.dir, "source.img"), filepath.Join(c.dir, "target.img")
	if err := prefill(src, size, c.seed); err != nil {
		return err
	}
	if err := prefill(tgt, size, c.seed); err != nil {
		return err
	}
	p, err := startPS(ps.Config{Disks: []ps.DiskConfig{{Name: "disk0", Path: src}}, MaxUnacked: rc.streamBytes + 64<<20})
	if err != nil {
		return err
	}
	defer p.stop()
	acfg, err := agentConfig(c.dir, p.addr, true, []agent.PairConfig{pairConfig(c.dir, "pair0", "disk0", tgt)})
	if err != nil {
		return err
	}
	cl, err := agent.New(acfg)
	if err != nil {
		return err
	}
	t0 := time.Now()
	ctx, runErr, finish := runAgent(cl)
	if err := waitFor("the initial hash resync", runErr, func() bool { return inLine(p, cl, "disk0") }); err != nil {
		return finish(err)
	}
	setup := time.Since(t0).Seconds()
	st0 := cl.Stats()
	d := p.srv.Disk("disk0")
	writes := int(rc.streamBytes / int64(rc.streamSize))
	total := int64(writes) * int64(rc.streamSize)
	wl := ps.Workload{Seed: int64(c.seed), WriteSize: rc.streamSize, Writes: writes}

	stopProf, err := profile(c.cpuprofile)
	if err != nil {
		return finish(err)
	}
	cpu := cpuNow()
	start := time.Now()
	if err := wl.Run(ctx, d); err != nil {
		stopProf()
		return finish(err)
	}
	generated := time.Since(start).Seconds()
	last := d.Status()[0].Next - 1
	pair := cl.Pair("disk0")
	err = waitFor("the last write applied", runErr, func() bool { return pair.Status().AppliedSeq >= last })
	sec := time.Since(start).Seconds()
	stopProf()
	usage := cpuSince(cpu)
	if err != nil {
		return finish(err)
	}
	st := cl.Stats()
	ws := pair.Status()
	resynced := st.HashRequests != st0.HashRequests || st.ResyncBytes != st0.ResyncBytes
	if err := finish(nil); err != nil {
		return err
	}
	kv("figure=stream", "bytes", total, "seconds", sec, "mibps", mib(total)/sec, "writes", writes,
		"io_size", rc.streamSize, "target_size", size, "generator_s", generated, "setup_s", setup,
		"write_bytes", st.WriteBytes-st0.WriteBytes, "resynced", resynced, "last_seq", last,
		"retention_used", ws.Retention.UsedBytes)
	kv("cpu", usage...)
	if resynced {
		return errors.New("stream: the stream fell back to a resync during the measured phase")
	}
	if rc.verify {
		if err := sameFiles(src, tgt); err != nil {
			return err
		}
		kv("note verified", "target_equals_source", true)
	}
	return nil
}

// benchRSS runs a process server here and an agent in a child process
// (this program, -mode agent-child) with -pairs pairs of -pair-size disks,
// source and target sparse (all zeros, so the hash resync sends nothing),
// then a workload on every disk for -duration, sampling the child's
// VmRSS and VmHWM every -sample.
func benchRSS(c config) error {
	disks := filepath.Join(c.dir, "disks")
	dcs, err := sparseDisks(disks)
	if err != nil {
		return err
	}
	p, err := startPS(ps.Config{Disks: dcs})
	if err != nil {
		return err
	}
	defer p.stop()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, "-mode", "agent-child", "-keep", "-dir", filepath.Join(c.dir, "agent"), "-addr", p.addr,
		"-disks-dir", disks, "-pairs", strconv.Itoa(rc.pairs), "-agent-heapprofile", rc.heapProfile)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	// Every pair in Differential Sync and caught up.
	t0 := time.Now()
	inSync := func() bool {
		for _, d := range p.srv.Disks() {
			st := d.Status()
			if len(st) != 1 || st[0].Phase != wire.StateDiffSync || !st[0].Connected || st[0].Acked != st[0].Next-1 {
				return false
			}
		}
		return true
	}
	if err := waitFor("every pair in Differential Sync", exited, inSync); err != nil {
		kill()
		return err
	}
	setup := time.Since(t0).Seconds()
	ctx, cancel := context.WithTimeout(context.Background(), rc.duration)
	srcs := map[*ps.Disk]ps.ChangeSource{}
	for i, d := range p.srv.Disks() {
		srcs[d] = ps.Workload{Seed: int64(i + 1), Rate: rc.rate, WriteSize: 16 << 10, CrashEvery: 10 * time.Second}
	}
	wlErr := make(chan error, 1)
	go func() { wlErr <- ps.Run(ctx, srcs) }()
	pid := cmd.Process.Pid
	var samples []float64
	var lo, hi float64
	start := time.Now()
	tick := time.NewTicker(rc.interval)
	var sampleErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-exited:
			sampleErr = fmt.Errorf("agent process ended: %v", err)
			exited <- err
			break loop
		case <-tick.C:
		}
		rss, _, err := procMem(pid)
		if err != nil {
			sampleErr = err
			break
		}
		samples = append(samples, rss)
		if time.Since(start) >= rc.warm {
			if lo == 0 || rss < lo {
				lo = rss
			}
			hi = max(hi, rss)
		}
	}
	tick.Stop()
	final, peak, merr := procMem(pid)
	anon, file := procRss(pid)
	cancel()
	werr := <-wlErr
	// Applied at the end, against what was numbered: the agent kept up.
	var next, acked uint64
	for _, d := range p.srv.Disks() {
		if st := d.Status(); len(st) == 1 {
			next += st[0].Next - 1
			acked += st[0].Acked
		}
	}
	kill()
	if sampleErr != nil {
		return sampleErr
	}
	if merr != nil {
		return merr
	}
	if werr != nil {
		return werr
	}
	var ss []string
	for _, s := range samples {
		ss = append(ss, fmt.Sprintf("%.1f", s))
	}
	kv("figure=agent_rss", "peak_mib", peak, "final_mib", final, "min_after_warmup_mib", lo, "max_after_warmup_mib", hi,
		"samples_mib", strings.Join(ss, ","), "pairs", rc.pairs, "pair_size", rc.pairSize, "rate", rc.rate,
		"write_size", 16<<10, "seconds", rc.duration.Seconds(), "sample_s", rc.interval.Seconds(),
		"warmup_s", rc.warm.Seconds(), "setup_s", setup, "seqs", next, "acked", acked,
		"final_anon_mib", anon, "final_file_mib", file)
	return nil
}

// procMem reads VmRSS and VmHWM of pid, in MiB.
func procMem(pid int) (rss, hwm float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return rss, hwm, nil
}

// procRss reads RssAnon and RssFile of pid, in MiB (0 when unknown).
func procRss(pid int) (anon, file float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "RssAnon:":
			anon = kb / 1024
		case "RssFile:":
			file = kb / 1024
		}
	}
	return anon, file
}

// agentChild is the agent of benchRSS: -pairs pairs, disk dNNN into
// -disks-dir/tNNN.img, hash resync, until SIGTERM or SIGINT.
func agentChild(c config) error {
	var pcs []agent.PairConfig
	for i := range rc.pairs {
		id := fmt.Sprintf("d%03d", i)
		pcs = append(pcs, pairConfig(c.dir, id, id, filepath.Join(rc.disksDir, fmt.Sprintf("t%03d.img", i))))
	}
	acfg, err := agentConfig(c.dir, rc.addr, true, pcs)
	if err != nil {
		return err
	}
	cl, err := agent.New(acfg)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = cl.Run(ctx)
	if rc.heapProfile != "" {
		runtime.GC()
		if f, e := os.Create(rc.heapProfile); e == nil {
			pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if e := cl.Close(); err == nil {
		err = e
	}
	return err
}

// sparseDisks makes rc.pairs sparse sources sNNN.img and targets
// tNNN.img of rc.pairSize in dir, and returns the sources as the process
// server serves them (disks dNNN).
func sparseDisks(dir string) ([]ps.DiskConfig, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var dcs []ps.DiskConfig
	for i := range rc.pairs {
		for _, kind := range []string{"s", "t"} {
			f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s%03d.img", kind, i)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return nil, err
			}
			err = f.Truncate(rc.pairSize)
			f.Close()
			if err != nil {
				return nil, err
			}
		}
		dcs = append(dcs, ps.DiskConfig{Name: fmt.Sprintf("d%03d", i), Path: filepath.Join(dir, fmt.Sprintf("s%03d.img", i))})
	}
	return dcs, nil
}

// runAgent runs cl until finish is called: ctx ends with it, runErr
// receives Run's error if it stops first, and finish(err) stops the
// agent, closes it and returns err or the first error of stopping.
func runAgent(cl *agent.Client) (ctx context.Context, runErr chan error, finish func(error) error) {
	ctx, cancel := context.WithCancel(context.Background())
	runErr = make(chan error, 1)
	go func() { runErr <- cl.Run(ctx) }()
	return ctx, runErr, func(err error) error {
		cancel()
		if rerr := <-runErr; err == nil {
			err = rerr
		}
		if e := cl.Close(); err == nil {
			err = e
		}
		return err
	}
}
