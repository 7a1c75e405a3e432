package demo

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/hostconfig/csserver"
	"github.com/mtconsole/mtconsole/internal/logging"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// Options are the demo's: mtconsole demo's flags, and how it shows the
// running agent.
type Options struct {
	Dir        string        // work here (kept) instead of a new temporary directory
	Keep       bool          // keep the temporary directory
	Disks      int           // source disks, 1 to 64
	SizeMB     int           // MiB per disk
	Rate       float64       // writes per second per disk
	WriteSize  int           // bytes per write, a multiple of 4096
	CrashEvery time.Duration // crash-consistent tag interval
	AppEvery   time.Duration // application-consistent tag interval
	Seed       int64         // workload seed
	For        time.Duration // stop after this long; 0: until ctx ends or the console quits
	Verify     int           // at the end, export this many of each pair's latest tags and check them
	Version    string        // the binary's, for the configuration server and the agent
	LogFormat  string        // demo.log's format: text (default) or json (logging.Formats)
	LogLevel   slog.Leveler  // demo.log's level (nil: info)

	// Console shows the agent on socket until ctx ends or the user
	// quits; nil shows the status table with Watch, and the demo says
	// what it does on out.
	Console func(ctx context.Context, socket string) error
	// Watch prints the agent's status on out until ctx ends.
	Watch func(ctx context.Context, cl *api.Client, out io.Writer) error
}

// Check says what is wrong with the options, naming the flag.
func (f Options) Check() error {
	switch {
	case f.Disks < 1 || f.Disks > 64:
		return errors.New("--disks: want 1 to 64")
	case f.SizeMB < 1:
		return errors.New("--size: want at least 1 (MiB)")
	case f.Rate <= 0:
		return errors.New("--rate: want more than 0 writes per second")
	case f.WriteSize < 4096 || f.WriteSize%4096 != 0 || int64(f.WriteSize) > int64(f.SizeMB)<<20:
		return fmt.Errorf("--write-size %d: want a multiple of 4096 no larger than the disk", f.WriteSize)
	case f.CrashEvery < 0 || f.AppEvery < 0 || f.For < 0 || f.Verify < 0:
		return errors.New("--crash-every, --app-every, --for and --verify cannot be negative")
	case f.Console == nil && f.Watch == nil:
		return errors.New("demo: neither a console nor a status watch to show the agent")
	}
	return nil
}

// tags records, per disk, the SHA-256 of the source at each tag the
// master target took, in order.
type tags struct {
	mu    sync.Mutex
	order map[string][]string
	image map[string][32]byte // disk/tag → image
	file  io.Writer
}

func (d *tags) add(disk, tag string, img [32]byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.order[disk] = append(d.order[disk], tag)
	d.image[disk+"/"+tag] = img
	fmt.Fprintf(d.file, "%x  %s %s\n", img, disk, tag)
}

// Run runs the demo until ctx ends, the console quits or For passes,
// then stops it and checks the targets and tags against the sources,
// reporting on out; it fails when a check does. Options are checked
// first (Check).
func Run(ctx context.Context, out io.Writer, f Options) error {
	if err := f.Check(); err != nil {
		return err
	}
	dir := f.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "mtconsole-demo-")
		if err != nil {
			return err
		}
		dir = d
		if !f.Keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	console := f.Console != nil
	size := int64(f.SizeMB) << 20
	if !console {
		fmt.Fprintf(out, "mtconsole demo in %s: %d disks of %d MiB, %g writes/s of %d KiB each\n", dir, f.Disks, f.SizeMB, f.Rate, f.WriteSize>>10)
	}

	// Sources hold data (a quarter of each left zero: sent as zero
	// ranges); targets are empty, so each pair starts with a full resync.
	var disks []ps.DiskConfig
	for _, sub := range []string{"sources", "targets", "journal", "retention"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return err
		}
	}
	// One writer per disk, on every CPU: the demo's first frame waits
	// for them.
	// One more disk than --disks is served but not protected (not in
	// agent.toml), with its empty target ready: for a user to protect.
	errs := make([]error, f.Disks+1)
	var wg sync.WaitGroup
	for i := range f.Disks + 1 {
		name := fmt.Sprintf("disk%d", i)
		src := filepath.Join(dir, "sources", name+".img")
		disks = append(disks, ps.DiskConfig{Name: name, Path: src, AppConsistentInterval: appInterval(f.AppEvery)})
		wg.Go(func() {
			rng := mrand.NewChaCha8([32]byte{byte(f.Seed), byte(f.Seed >> 8), byte(i)})
			if errs[i] = writeSource(src, size, rng); errs[i] != nil {
				return
			}
			tf, err := os.OpenFile(filepath.Join(dir, "targets", name+".img"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				errs[i] = err
				return
			}
			errs[i] = tf.Truncate(size)
			tf.Close()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	passFile, key, cert, err := Secrets(dir, []string{"127.0.0.1", "localhost"})
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "demo.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// One handler for the three processes, as mtconsole's commands log:
	// in --log-format (a file is text unless json is asked for), at
	// --log-level, secrets redacted.
	logH, err := logging.New(logging.Options{Format: f.LogFormat, Level: f.LogLevel, Stream: logf, Identifier: "mtconsole-demo"})
	if err != nil {
		return err
	}
	psLog := slog.New(logH).With("process", "ps")

	// The process server, on loopback.
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: "demo-source", HostName: "demo-source", Disks: disks, Logger: psLog})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	psCtx, stopPS := context.WithCancel(context.Background())
	defer stopPS()
	psDone := make(chan error, 1)
	go func() { psDone <- srv.Serve(psCtx, ln) }()

	// The workload: one generator per disk, its tags recorded, also in
	// DIR/tags.sha256 ("<sha256 of the source at the tag>  <disk> <tag>").
	tagFile, err := os.OpenFile(filepath.Join(dir, "tags.sha256"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer tagFile.Close()
	tags := &tags{order: map[string][]string{}, image: map[string][32]byte{}, file: tagFile}
	wlCtx, stopWorkload := context.WithCancel(context.Background())
	defer stopWorkload()
	srcs := map[*ps.Disk]ps.ChangeSource{}
	for i, d := range srv.Disks() {
		srcs[d] = ps.Workload{Seed: f.Seed + int64(i), Rate: f.Rate, WriteSize: f.WriteSize, CrashEvery: f.CrashEvery, AppEvery: f.AppEvery,
			OnTag: func(t journal.TagInfo, img [32]byte, sent bool) {
				if sent {
					tags.add(d.Name(), t.Name, img)
				}
			}}
	}
	wlDone := make(chan error, 1)
	go func() { wlDone <- ps.Run(wlCtx, srcs) }()

	// A configuration server, as cs init and cs serve make it, and the
	// demo host registered with it: the agent sends it heartbeats.
	csCtx, stopCS := context.WithCancel(context.Background())
	defer stopCS()
	cs, hostConf, hostID, err := startCS(ctx, csCtx, dir, f.Version, slog.New(logH).With("process", "cs"))
	if cs != nil {
		defer func() {
			stopCS()
			cs.Wait()
		}()
	}
	if err != nil {
		return err
	}
	if !console {
		fmt.Fprintf(out, "configuration server on %s; this host registered with it as %s (%s)\n", cs.Addr, hostID, hostConf)
	}

	// The agent, from a configuration file a user can run again.
	cfgPath := filepath.Join(dir, "agent.toml")
	socket := filepath.Join(dir, "agent.sock")
	var pairs []string
	for _, d := range srv.Disks()[:f.Disks] {
		pairs = append(pairs, d.Name())
	}
	spare := srv.Disks()[f.Disks].Name()
	ac := AgentConfig{Comment: "written by mtconsole demo", HostID: "demo-mt", Dir: dir, Socket: socket, HostConfig: hostConf,
		Addr: ln.Addr().String(), PassFile: passFile, Retention: "24h", Pairs: pairs}
	if err := ac.Write(cfgPath); err != nil {
		return err
	}
	if !console {
		fmt.Fprintf(out, "%s is served but not protected; protect it with:\n  %s\n", spare, ProtectCommand(dir, ln.Addr().String(), spare))
	}
	agentCtx, stopAgent := context.WithCancel(context.Background())
	defer stopAgent()
	agentDone := make(chan error, 1)
	go func() {
		fc, err := agent.LoadConfig(cfgPath)
		if err == nil {
			err = agent.Run(agentCtx, fc, agent.Options{Handler: logH, Version: f.Version})
		}
		agentDone <- err
	}()
	cl, err := api.WaitFor(ctx, socket, agentDone, 10*time.Second)
	if err != nil {
		return err
	}
	defer cl.Close()

	// Show it until quit, Ctrl-C or --for.
	showCtx, stopShow := context.WithCancel(ctx)
	defer stopShow()
	if f.For > 0 {
		var c context.CancelFunc
		showCtx, c = context.WithTimeout(showCtx, f.For)
		defer c()
	}
	showErr := make(chan error, 1)
	go func() {
		if console {
			showErr <- f.Console(showCtx, socket)
			return
		}
		showErr <- f.Watch(showCtx, cl, out)
	}()
	select {
	case err = <-showErr:
	case err = <-agentDone:
		if err == nil {
			err = errors.New("the agent stopped")
		}
		err = fmt.Errorf("%w (its log: %s)", err, filepath.Join(dir, "demo.log"))
		stopShow()
		<-showErr
		return err
	case err = <-wlDone:
		stopShow()
		<-showErr
		return fmt.Errorf("workload: %w", err)
	}
	if err != nil {
		return err
	}

	// Export each pair's latest tag while everything still runs: the
	// case users hit (the checks below run on stopped stores).
	fmt.Fprintln(out, "\nexporting each pair's latest tag live…")
	live := liveExports(cl, dir, tags)

	// Stop: the workload first, then let the backlog drain.
	fmt.Fprintln(out, "stopping the workload and draining the backlog…")
	stopWorkload()
	if err := <-wlDone; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("workload: %w", err)
	}
	inLine, ended := drain(cl, srv, 60*time.Second)
	stopAgent()
	if err := <-agentDone; err != nil {
		return fmt.Errorf("agent: %w (its log: %s)", err, filepath.Join(dir, "demo.log"))
	}
	stopPS()
	<-psDone
	// The pairs are agent.toml's at the end: a disk protected during the
	// demo is checked too.
	protected := pairs
	if fc, err := agent.LoadConfig(cfgPath); err == nil {
		protected = nil
		for _, q := range fc.Pairs {
			if q.ID == q.Disk && srv.Disk(q.ID) != nil && filepath.Clean(q.Target) == filepath.Join(dir, "targets", q.ID+".img") {
				protected = append(protected, q.ID)
			}
		}
	}
	bad, err := verify(out, dir, protected, inLine, ended, live, tags, f.Verify)
	if err != nil {
		return err
	}
	if f.Keep || f.Dir != "" {
		fmt.Fprintf(out, "\nkept %s; run it again with:\n  mtconsole agent --config %s\nand look at a pair's retention with:\n  mtconsole retention summary --verbose --dir %s\n",
			dir, cfgPath, filepath.Join(dir, "retention", "disk0"))
		fmt.Fprintf(out, "the configuration server's hosts:\n  mtconsole cs hosts --dir %s\n(serve it again for the agent's heartbeats: mtconsole cs serve --dir %s --addr %s)\n",
			filepath.Join(dir, "cs"), filepath.Join(dir, "cs"), cs.Addr)
	}
	if bad > 0 {
		return fmt.Errorf("%d checks failed", bad)
	}
	return nil
}

// writeSource writes size bytes of random data, but for every fourth
// MiB, which stays a hole.
// ProtectCommand is the command line that protects the demo's spare disk
// (served, not in agent.toml) in the demo directory dir, the process
// server at addr.
func ProtectCommand(dir, addr, disk string) string {
	return fmt.Sprintf("mtconsole protect --config %s --ps %s --passphrase-file %s --group %s --map %s=%s --allow-files",
		filepath.Join(dir, "agent.toml"), addr, filepath.Join(dir, "passphrase"), disk, disk, filepath.Join(dir, "targets", disk+".img"))
}

func writeSource(path string, size int64, rng *mrand.ChaCha8) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	for off, i := int64(0), 0; off < size; off, i = off+1<<20, i+1 {
		if i%4 == 3 {
			continue
		}
		b := buf[:min(1<<20, size-off)]
		rng.Read(b)
		if _, err := f.WriteAt(b, off); err != nil {
			return err
		}
	}
	return f.Close()
}

// startCS sets up a configuration server in DIR/cs (as cs init; one
// already there is used again), serves it on loopback (as cs serve) until
// csCtx ends, and registers this host with it (as register) in
// DIR/hostconfig/host.conf, the passphrase beside it in
// private/connection.passphrase (0600). It returns the server, the host
// config and the host id.
func startCS(ctx, csCtx context.Context, dir, version string, log *slog.Logger) (*csserver.Running, string, string, error) {
	d := csserver.Dir(filepath.Join(dir, "cs"))
	pass, _, err := csserver.Init(d, []string{"127.0.0.1", "localhost"}, false)
	if errors.Is(err, csserver.ErrInitialized) {
		pass, err = hostconfig.ReadPassphraseFile(d.Passphrase())
	}
	if err != nil {
		return nil, "", "", fmt.Errorf("configuration server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", "", err
	}
	cs, err := csserver.Serve(csCtx, d, ln, true, log, version)
	if err != nil {
		return nil, "", "", fmt.Errorf("configuration server: %w", err)
	}
	hostConf := filepath.Join(dir, "hostconfig", "host.conf")
	cfg, err := hostconfig.LoadOrDefault(hostConf)
	if err == nil {
		cfg.CSHost = "127.0.0.1"
		cfg.CSPort = ln.Addr().(*net.TCPAddr).Port
		cfg.HTTPS = true
		var res hostconfig.Result
		res, err = hostconfig.Register(ctx, cfg, hostconfig.Setup{Paths: hostconfig.PathsFor(hostConf), Passphrase: pass, Version: version, SysRoot: "/"})
		cfg = res.Config
	}
	if err != nil {
		return cs, "", "", fmt.Errorf("registering with the demo's configuration server: %w", err)
	}
	return cs, hostConf, cfg.HostID, nil
}

// drain waits until every stream is in Differential Sync with all it
// sent acknowledged and applied, or d passes. It returns the disks that
// are in line, and the pairs that have ended (rolled back from the
// console), with the reason: they are no longer replicated.
func drain(cl *api.Client, srv *ps.Server, d time.Duration) (map[string]bool, map[string]string) {
	deadline := time.Now().Add(d)
	for {
		st, err := cl.Status(context.Background())
		in, ended := map[string]bool{}, map[string]string{}
		if err == nil {
			for _, p := range st.Pairs {
				if p.Health == writer.HealthEnded {
					ended[p.ID] = p.Reason
					continue
				}
				ss := srv.Disk(p.ID)
				if ss == nil {
					continue
				}
				for _, s := range ss.Status() {
					if s.Phase == wire.StateDiffSync && s.Acked == s.Next-1 && s.Unacked == 0 && p.DurableSeq == s.Acked && p.AppliedSeq == p.DurableSeq {
						in[p.ID] = true
					}
				}
			}
			if len(in)+len(ended) == len(st.Pairs) {
				return in, ended
			}
		}
		if time.Now().After(deadline) {
			return in, ended
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// liveCheck is a tag exported through the running agent.
type liveCheck struct {
	pair, tag string
	got, want [32]byte
	known     bool // the tag is the workload's: its source image is known
	err       error
}

// liveExports exports the latest tag of every pair still replicating
// through the agent while the workload writes, as `mtconsole recover
// --mode export` does, and hashes each image.
func liveExports(cl *api.Client, dir string, tags *tags) []liveCheck {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	st, err := cl.Status(ctx)
	if err != nil {
		return []liveCheck{{pair: "-", err: err}}
	}
	var out []liveCheck
	for _, p := range st.Pairs {
		if p.Health == writer.HealthEnded || p.Retention.Tags == 0 {
			continue
		}
		c := liveCheck{pair: p.ID}
		dest := filepath.Join(dir, "live-"+p.ID+".img")
		j, err := cl.Recover(ctx, api.RecoverRequest{Point: "latest-tag", Mode: api.ModeExport, Dest: dest, Pairs: []string{p.ID}})
		for err == nil && j.State == api.JobRunning {
			time.Sleep(20 * time.Millisecond)
			j, err = cl.Job(ctx, j.ID)
		}
		if err == nil && j.State != api.JobDone {
			err = errors.New(j.Error)
		}
		if err == nil {
			if r := j.Points[p.ID]; r.Tag != nil {
				c.tag = r.Tag.Name
			}
			c.got, err = hashPath(dest)
		}
		os.Remove(dest)
		c.err = err
		tags.mu.Lock()
		c.want, c.known = tags.image[p.ID+"/"+c.tag]
		tags.mu.Unlock()
		out = append(out, c)
	}
	return out
}

// verify checks each target against its source and exports the last
// n tags of each pair against the source's image at that tag. A pair that
// was rolled back has ended: its target is checked against the source at
// the tag it was rolled back to, if it was a tag, and nothing else. It
// returns how many checks failed.
func verify(out io.Writer, dir string, pairs []string, inLine map[string]bool, ended map[string]string, live []liveCheck, tags *tags, n int) (int, error) {
	ok, bad := 0, 0
	verdict := func(good bool) string {
		if good {
			ok++
			return "bit-exact"
		}
		bad++
		return "DIFFERS"
	}
	fmt.Fprintln(out, "\nchecking the targets and the latest tags against the sources (SHA-256):")
	for _, c := range live {
		switch {
		case c.err != nil:
			fmt.Fprintf(out, "  %s: live export of the latest tag failed: %v  DIFFERS\n", c.pair, c.err)
			bad++
		case !c.known:
			fmt.Fprintf(out, "  %s: live export of tag %s (not the workload's: not compared)\n", c.pair, c.tag)
		default:
			fmt.Fprintf(out, "  %s: live %-19s sha256 %x…  %s\n", c.pair, c.tag, c.got[:6], verdict(c.got == c.want))
		}
	}
	names := slices.Clone(pairs)
	sort.Strings(names)
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(dir, "retention", name)); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(out, "  %s: in agent.toml but never started by the agent (it starts at the next start): not compared\n", name)
			continue
		}
		src := filepath.Join(dir, "sources", name+".img")
		tgt := filepath.Join(dir, "targets", name+".img")
		if reason, ok := ended[name]; ok {
			fmt.Fprintf(out, "  %s: rolled back and ended, no longer replicated (%s)\n", name, reason)
			if err := verifyRolledBack(out, name, tgt, reason, tags, verdict); err != nil {
				return 0, err
			}
			continue
		}
		if !inLine[name] {
			fmt.Fprintf(out, "  %s: not in Differential Sync when stopped (still resyncing): target not compared\n", name)
		} else {
			hs, err := hashPath(src)
			if err != nil {
				return 0, err
			}
			ht, err := hashPath(tgt)
			if err != nil {
				return 0, err
			}
			fmt.Fprintf(out, "  %s: target     sha256 %x…  %s\n", name, ht[:6], verdict(hs == ht))
		}
		tags.mu.Lock()
		order := tags.order[name]
		tags.mu.Unlock()
		if len(order) > n {
			order = order[len(order)-n:]
		}
		for _, tag := range order {
			got, err := exportTag(dir, name, tag)
			if err != nil {
				fmt.Fprintf(out, "  %s: tag %-20s %v  DIFFERS\n", name, tag, err)
				bad++
				continue
			}
			tags.mu.Lock()
			want := tags.image[name+"/"+tag]
			tags.mu.Unlock()
			fmt.Fprintf(out, "  %s: tag %-20s sha256 %x…  %s\n", name, tag, got[:6], verdict(got == want))
		}
	}
	fmt.Fprintf(out, "%d checks: %d bit-exact, %d differ\n", ok+bad, ok, bad)
	return bad, nil
}

// verifyRolledBack checks the target of a pair rolled back to a tag the
// workload took against the source as it was at that tag.
func verifyRolledBack(out io.Writer, name, tgt, reason string, tags *tags, verdict func(bool) string) error {
	tags.mu.Lock()
	var tag string
	var want [32]byte
	for _, t := range tags.order[name] {
		if strings.HasPrefix(reason, "rolled back to tag "+t+" (") {
			tag, want = t, tags.image[name+"/"+t]
		}
	}
	tags.mu.Unlock()
	if tag == "" {
		fmt.Fprintf(out, "  %s: not rolled back to a tag of the demo's: target not compared\n", name)
		return nil
	}
	got, err := hashPath(tgt)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "  %s: target     sha256 %x…  %s (the source at tag %s)\n", name, got[:6], verdict(got == want), tag)
	return nil
}

func exportTag(dir, pair, tag string) ([32]byte, error) {
	st, err := journal.OpenStore(journal.StoreOptions{Dir: filepath.Join(dir, "retention", pair)})
	if err != nil {
		return [32]byte{}, err
	}
	defer st.Close()
	tf, err := vfs.OS.OpenFile(filepath.Join(dir, "targets", pair+".img"), os.O_RDONLY, 0)
	if err != nil {
		return [32]byte{}, err
	}
	defer tf.Close()
	r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: tag})
	if err != nil {
		return [32]byte{}, err
	}
	dest := filepath.Join(dir, "export-"+pair+".img")
	defer os.Remove(dest)
	df, err := vfs.OS.OpenFile(dest, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return [32]byte{}, err
	}
	_, err = recovery.Export(context.Background(), st, tf, df, r, nil)
	if cerr := df.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return [32]byte{}, err
	}
	return hashPath(dest)
}

func hashPath(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}

// appInterval is what the demo's process server reports as its source
// host's application-consistent interval: the workload's own (--app-every)
// in the whole seconds the protocol carries, a second at least when the
// workload takes them at all.
func appInterval(every time.Duration) time.Duration {
	if every <= 0 {
		return 0
	}
	return max(every.Round(time.Second), time.Second)
}
