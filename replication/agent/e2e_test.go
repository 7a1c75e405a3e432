package agent_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// keys returns the handshake keys of the tests: fixed bytes, since
// deriving a key takes PBKDF2's 600000 rounds (seconds under -race).
// TestWrongPassphrase derives its own from passphrases.
func keys(testing.TB) (wire.Key, wire.Key) {
	return wire.Key{1, 2, 3, 4}, wire.Key{4, 3, 2, 1}
}

// rig is a process server and an agent on loopback, one disk.
type rig struct {
	t              testing.TB
	dir            string
	src, tgt       string
	size           int64
	srv            *ps.Server
	cl             *agent.Client
	addr           string
	ctx            context.Context
	cancel         context.CancelFunc
	wg             sync.WaitGroup
	runErr         chan error
	psCfg          ps.Config
	cert           tls.Certificate
	stopPS         func()
	key            wire.Key // the process server's; keys() if zero
	agentCfgChange func(*agent.Config)
}

func writeRandom(t testing.TB, path string, size int64, seed int64) []byte {
	t.Helper()
	b := make([]byte, size)
	rand.New(rand.NewSource(seed)).Read(b)
	// A few zero chunks, so zero ranges travel too.
	for off := int64(0); off < size; off += size / 4 {
		clear(b[off : off+256<<10])
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return b
}

func newRig(t testing.TB, size int64, target []byte, psCfg ps.Config) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), size: size, runErr: make(chan error, 1), psCfg: psCfg}
	r.src = filepath.Join(r.dir, "source.img")
	r.tgt = filepath.Join(r.dir, "target.img")
	writeRandom(t, r.src, size, 1)
	if target == nil {
		target = make([]byte, size)
	}
	if err := os.WriteFile(r.tgt, target, 0o600); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) startPS() {
	t := r.t
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.cert, _, err = wire.LoadCertificate(certPEM, keyPEM); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.ctx, r.cancel = context.WithTimeout(context.Background(), 60*time.Second)
	r.servePS(ln)
	t.Cleanup(r.stop)
}

// servePS starts a process server on ln until r.stopPS or r.stop.
func (r *rig) servePS(ln net.Listener) {
	t := r.t
	key, _ := keys(t)
	if r.key != (wire.Key{}) {
		key = r.key
	}
	cfg := r.psCfg
	cfg.Key, cfg.Cert, cfg.HostID, cfg.HostName = key, r.cert, "ps-1", "source-host"
	cfg.Disks = []ps.DiskConfig{{Name: "disk0", Path: r.src}}
	if cfg.Heartbeat == 0 {
		cfg.Heartbeat = 100 * time.Millisecond
	}
	srv, err := ps.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	r.stopPS = func() {
		cancel()
		<-done
		srv.Close()
	}
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			t.Error(err)
		}
	}()
}

func (r *rig) newAgent(key wire.Key, addr string, hash bool) *agent.Client {
	t := r.t
	trust, err := wire.OpenTrustStore(filepath.Join(r.dir, "trust", "known_servers"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := agent.Config{Addr: addr, Key: key, Trust: trust, HostID: "mt-1", HostName: "master-target",
		Confirm:    func(string, wire.Fingerprint) bool { return true },
		HashResync: hash, MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond,
		Space: writer.SpaceOptions{Interval: -1},
		Pairs: []agent.PairConfig{{Disk: "disk0", PairConfig: writer.PairConfig{ID: "pair0", Target: r.tgt,
			JournalDir: filepath.Join(r.dir, "journal"), RetentionDir: filepath.Join(r.dir, "retention"),
			Policy:          journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge},
			UndoSegmentSize: 8 << 20, JournalSegmentSize: 16 << 20}}}}
	if r.agentCfgChange != nil {
		r.agentCfgChange(&cfg)
	}
	cl, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.cl = cl
	return cl
}

func (r *rig) runAgent() {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.runErr <- r.cl.Run(r.ctx)
	}()
}

func (r *rig) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.wg.Wait()
	r.stopPS()
	r.cancel = nil
	if r.cl != nil {
		if err := r.cl.Close(); err != nil {
			r.t.Error(err)
		}
	}
}

func (r *rig) waitFor(what string, d time.Duration, ok func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; agent %+v; ps %+v", what, r.cl.Status(), r.srv.Disk("disk0").Status())
		}
		select {
		case err := <-r.runErr:
			r.t.Fatalf("agent stopped while waiting for %s: %v", what, err)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (r *rig) state() string { return r.cl.Status()[0].State }

// caughtUp is true when the stream is in Differential Sync, everything
// it numbered is acknowledged and applied.
func (r *rig) caughtUp() bool {
	st := r.srv.Disk("disk0").Status()
	if len(st) != 1 || st[0].Phase != wire.StateDiffSync || st[0].Acked != st[0].Next-1 || st[0].Unacked != 0 {
		return false
	}
	ws := r.cl.Status()[0]
	return ws.DurableSeq == st[0].Acked && ws.AppliedSeq == ws.DurableSeq
}

func (r *rig) assertTargetEqualsSource() {
	r.t.Helper()
	p := r.cl.Pair("disk0")
	if err := p.Drain(r.ctx); err != nil {
		r.t.Fatal(err)
	}
	src, err := os.ReadFile(r.src)
	if err != nil {
		r.t.Fatal(err)
	}
	var tgt []byte
	if err := p.Hold(func(target vfs.File, _ *journal.Store) error {
		tgt = make([]byte, r.size)
		return vfs.ReadFull(target, tgt, 0)
	}); err != nil {
		r.t.Fatal(err)
	}
	if !bytes.Equal(src, tgt) {
		n := 0
		for i := range src {
			if src[i] != tgt[i] {
				n++
			}
		}
		r.t.Fatalf("target differs from source in %d bytes", n)
	}
}

type tagImage struct {
	name  string
	image [32]byte
}

func exportHash(t testing.TB, p *writer.Pair, dir, name string) [32]byte {
	t.Helper()
	var got [32]byte
	dest := filepath.Join(dir, "export-"+name+".img")
	err := p.Hold(func(target vfs.File, st *journal.Store) error {
		res, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: name})
		if err != nil {
			return err
		}
		df, err := vfs.OS.OpenFile(dest, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer df.Close()
		if _, err := recovery.Export(context.Background(), st, target, df, res, nil); err != nil {
			return err
		}
		h := sha256.New()
		if _, err := io.Copy(h, io.NewSectionReader(df, 0, 1<<62)); err != nil {
			return err
		}
		got = [32]byte(h.Sum(nil))
		return nil
	})
	if err != nil {
		t.Fatalf("export %s: %v", name, err)
	}
	os.Remove(dest)
	return got
}

// Full resync into an empty target, then a workload with tags: the
// target ends equal to the source, and every tag exports bit-exact.
func TestEndToEndFullResyncWorkloadTags(t *testing.T) {
	const size = 16 << 20
	r := newRig(t, size, nil, ps.Config{})
	r.startPS()
	key, _ := keys(t)
	r.newAgent(key, r.addr, false)
	r.runAgent()
	r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
	if st := r.cl.Stats(); st.ResyncBytes+st.ZeroBytes != size || st.HashRequests != 0 {
		t.Fatalf("full resync moved %d data + %d zero bytes, %d hash requests; want %d, 0", st.ResyncBytes, st.ZeroBytes, st.HashRequests, size)
	}
	r.assertTargetEqualsSource()
	// The empty target's before-images are zeros: kept as lengths.
	if used := r.cl.Pair("disk0").Status().Retention.UsedBytes; used > size/64 {
		t.Errorf("retention holds %d bytes after a full resync into a zero target of %d", used, size)
	}

	var mu sync.Mutex
	var tags []tagImage
	wl := ps.Workload{Seed: 7, Rate: 3000, WriteSize: 16 << 10, Writes: 600, CrashEvery: 50 * time.Millisecond,
		AppEvery: 120 * time.Millisecond, OnTag: func(tag journal.TagInfo, img [32]byte, sent bool) {
			if !sent {
				t.Errorf("tag %s not sent in differential sync", tag.Name)
			}
			mu.Lock()
			tags = append(tags, tagImage{tag.Name, img})
			mu.Unlock()
		}}
	if err := wl.Run(r.ctx, r.srv.Disk("disk0")); err != nil {
		t.Fatal(err)
	}
	if len(tags) < 3 {
		t.Fatalf("only %d tags taken", len(tags))
	}
	r.waitFor("backlog to drain", 15*time.Second, r.caughtUp)
	r.assertTargetEqualsSource()
	p := r.cl.Pair("disk0")
	for _, tg := range tags {
		if got := exportHash(t, p, r.dir, tg.name); got != tg.image {
			t.Errorf("tag %s: export sha256 %x, source at the tag %x", tg.name, got[:8], tg.image[:8])
		}
	}
	if s := p.Status(); s.Health != writer.HealthOK {
		t.Errorf("pair health %s: %s", s.Health, s.Reason)
	}
}

// The agent's clock is the writer's Now: a full resync under a pinned
// clock journals its writes at that time, so the pair's window, its RPO
// and what the 24 h window prunes follow the clock, not the wall clock.
func TestResyncWritesOnAgentClock(t *testing.T) {
	const size = 2 << 20
	r := newRig(t, size, nil, ps.Config{})
	r.startPS()
	pinned := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	r.agentCfgChange = func(c *agent.Config) { c.Writer.Now = func() time.Time { return pinned } }
	key, _ := keys(t)
	r.newAgent(key, r.addr, false)
	r.runAgent()
	r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
	r.assertTargetEqualsSource()
	st := r.cl.Pair("disk0").Status()
	if !st.Retention.To.Equal(pinned) {
		t.Errorf("after the resync the latest point is %s, want the agent's clock %s", st.Retention.To, pinned)
	}
	if len(st.Retention.Ranges) == 0 {
		t.Error("no range after the resync")
	}
	for _, rg := range st.Retention.Ranges {
		if !rg.FirstTime.Equal(pinned) || !rg.LastTime.Equal(pinned) || rg.Accuracy != journal.NotGuaranteed {
			t.Errorf("range %+v: want the resync's, %s to %s, %s", rg, pinned, pinned, journal.NotGuaranteed)
		}
	}
	if st.RPOSeconds != 0 || st.Health != writer.HealthOK {
		t.Errorf("RPO %gs, health %s (%s): want 0s, %s on the agent's clock", st.RPOSeconds, st.Health, st.Reason, writer.HealthOK)
	}
}

// A source written all the time, everywhere, while it resyncs with the
// default 1 MiB chunks: step II streams the changes it finds instead of
// chasing them, so the pair reaches Differential Sync while the workload
// still runs, and the tags taken from then on recover bit-exact.
func TestResyncConvergesUnderSteadyWrites(t *testing.T) {
	const size = 32 << 20
	r := newRig(t, size, nil, ps.Config{})
	r.startPS()
	var mu sync.Mutex
	var tags []tagImage
	inDiff := make(chan struct{})
	var once sync.Once
	wl := ps.Workload{Seed: 11, Rate: 2000, WriteSize: 4 << 10, CrashEvery: time.Second,
		OnTag: func(tag journal.TagInfo, img [32]byte, sent bool) {
			if !sent {
				return // still resyncing
			}
			once.Do(func() { close(inDiff) })
			mu.Lock()
			tags = append(tags, tagImage{tag.Name, img})
			mu.Unlock()
		}}
	wctx, wcancel := context.WithCancel(r.ctx)
	werr := make(chan error, 1)
	go func() { werr <- wl.Run(wctx, r.srv.Disk("disk0")) }()
	key, _ := keys(t)
	r.newAgent(key, r.addr, false)
	r.runAgent()
	select {
	case <-inDiff:
	case <-time.After(40 * time.Second):
		wcancel()
		t.Fatalf("no tag reached the target while writes kept coming: agent %+v; ps %+v", r.cl.Status(), r.srv.Disk("disk0").Status())
	}
	time.Sleep(1500 * time.Millisecond) // another tag in Differential Sync
	wcancel()
	if err := <-werr; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	r.waitFor("backlog to drain", 15*time.Second, r.caughtUp)
	r.assertTargetEqualsSource()
	if st := r.cl.Stats(); st.WriteBytes == 0 {
		t.Errorf("no change was streamed as a write during or after step II: %+v", st)
	}
	p := r.cl.Pair("disk0")
	mu.Lock()
	defer mu.Unlock()
	if len(tags) == 0 {
		t.Fatal("no tag taken in Differential Sync")
	}
	for _, tg := range tags {
		if got := exportHash(t, p, r.dir, tg.name); got != tg.image {
			t.Errorf("tag %s: export sha256 %x, source at the tag %x", tg.name, got[:8], tg.image[:8])
		}
	}
}

// A target that already holds the source but for 1 % scattered 4 KiB
// blocks: only the differing 4 KiB sub-chunks of the differing chunks
// travel, and the chunk hashes are 128-bit XXH3s (16 bytes a chunk).
func TestHashResyncSendsOnlyDifferingChunks(t *testing.T) {
	const size = 16 << 20
	r := newRig(t, size, nil, ps.Config{ChunkSize: 16 << 10, HashBatch: 256})
	tgt, err := os.ReadFile(r.src)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(3))
	blocks := size / 4096 / 100
	for range blocks {
		off := rng.Int63n(size/4096) * 4096
		rng.Read(tgt[off : off+4096])
	}
	if err := os.WriteFile(r.tgt, tgt, 0o600); err != nil {
		t.Fatal(err)
	}
	r.startPS()
	key, _ := keys(t)
	r.newAgent(key, r.addr, true)
	r.runAgent()
	r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
	r.assertTargetEqualsSource()
	st := r.cl.Stats()
	if st.HashRequests == 0 {
		t.Fatal("no hash requests: not a hash resync")
	}
	if sent := st.ResyncBytes + st.ZeroBytes; sent > int64(blocks)*4096 || sent == 0 {
		t.Fatalf("hash resync sent %d bytes for %d differing blocks; want 0 < sent <= %d", sent, blocks, blocks*4096)
	}
	// 1024 chunk hashes, and 4 sub-chunk hashes for each differing chunk.
	if chunks := int64(size / (16 << 10)); st.HashBytes < chunks*16 || st.HashBytes > chunks*16+int64(blocks)*4*16 {
		t.Fatalf("%d bytes of hashes; want 16 a chunk: %d to %d", st.HashBytes, chunks*16, chunks*16+int64(blocks)*4*16)
	}
	t.Logf("hash resync: %d blocks differ, %d bytes sent (%.2f%% of the disk), %d hash requests", blocks, st.ResyncBytes, 100*float64(st.ResyncBytes)/size, st.HashRequests)
}

// A hash resync while the source is written everywhere: the pipeline asks
// for batches ahead and compares sub-chunks of what differs, and the
// writes that land between asking, hashing and sending are caught by step
// II, so the target ends equal to the source.
func TestHashResyncUnderWrites(t *testing.T) {
	const size = 8 << 20
	r := newRig(t, size, nil, ps.Config{ChunkSize: 64 << 10, HashBatch: 8})
	tgt, err := os.ReadFile(r.src)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(9))
	for range 64 {
		off := rng.Int63n(size/4096) * 4096
		rng.Read(tgt[off : off+4096])
	}
	if err := os.WriteFile(r.tgt, tgt, 0o600); err != nil {
		t.Fatal(err)
	}
	r.startPS()
	wl := ps.Workload{Seed: 12, Rate: 3000, WriteSize: 4 << 10}
	wctx, wcancel := context.WithCancel(r.ctx)
	defer wcancel()
	werr := make(chan error, 1)
	go func() { werr <- wl.Run(wctx, r.srv.Disk("disk0")) }()
	key, _ := keys(t)
	r.newAgent(key, r.addr, true)
	r.runAgent()
	r.waitFor("differential sync", 30*time.Second, func() bool { return r.state() == agent.StateDiffSync })
	wcancel()
	if err := <-werr; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	r.waitFor("backlog to drain", 15*time.Second, r.caughtUp)
	r.assertTargetEqualsSource()
	if st := r.cl.Stats(); st.HashRequests == 0 {
		t.Fatalf("not a hash resync: %+v", st)
	}
}

// proxy forwards loopback connections to addr and, while cutting is on,
// drops each after a random number of milliseconds.
type proxy struct {
	ln      net.Listener
	addr    string
	cutting atomic.Bool
	cuts    atomic.Int64
	rng     *rand.Rand
	mu      sync.Mutex
	wg      sync.WaitGroup
	quit    chan struct{}
}

func newProxy(t testing.TB, to string, seed int64) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, addr: to, rng: rand.New(rand.NewSource(seed)), quit: make(chan struct{})}
	p.cutting.Store(true)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); close(p.quit); p.wg.Wait() })
	return p
}

func (p *proxy) serve(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("tcp", p.addr)
	if err != nil {
		return
	}
	defer u.Close()
	p.mu.Lock()
	life := time.Duration(50+p.rng.Intn(600)) * time.Millisecond
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { io.Copy(u, c); done <- struct{}{} }()
	go func() { io.Copy(c, u); done <- struct{}{} }()
	timer := time.NewTimer(life)
	defer timer.Stop()
	for {
		select {
		case <-done:
			return
		case <-p.quit:
			return
		case <-timer.C:
			if p.cutting.Load() {
				p.cuts.Add(1)
				return // the deferred closes cut both sides mid-stream
			}
		}
	}
}

// Connections cut at random points during resync and the workload: the
// agent resumes from its last durable sequence, drops what it already
// has, and the target ends equal to the source.
func TestConnectionCutsResume(t *testing.T) {
	const size = 16 << 20
	// A small resend buffer, so some gaps overflow it and the disk falls
	// back to a hash resync.
	r := newRig(t, size, nil, ps.Config{ChunkSize: 256 << 10, MaxUnacked: 4 << 20})
	r.startPS()
	px := newProxy(t, r.addr, 5)
	key, _ := keys(t)
	r.newAgent(key, px.ln.Addr().String(), false)
	r.runAgent()
	// Cut during the resync, then during the stream of writes.
	r.waitFor("differential sync through the cuts", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync })
	wctx, wcancel := context.WithTimeout(r.ctx, 3*time.Second)
	defer wcancel()
	wl := ps.Workload{Seed: 11, Rate: 400, WriteSize: 16 << 10}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := wl.Run(wctx, r.srv.Disk("disk0")); err != nil {
			t.Error(err)
		}
	}()
	wg.Wait()
	px.cutting.Store(false)
	r.waitFor("catching up after the cuts", 20*time.Second, r.caughtUp)
	r.assertTargetEqualsSource()
	st := r.cl.Stats()
	if st.WriteBytes == 0 {
		t.Fatal("no writes streamed: the cuts never reached differential sync")
	}
	if px.cuts.Load() < 3 || st.Connections < 3 {
		t.Fatalf("%d cuts, %d connections: the test did not cut enough", px.cuts.Load(), st.Connections)
	}
	ws := r.cl.Status()[0]
	if ws.Health != writer.HealthOK {
		t.Fatalf("pair health %s: %s", ws.Health, ws.Reason)
	}
	t.Logf("%d cuts, %d connections, %d duplicates dropped, %d resync bytes, %d write bytes", px.cuts.Load(), st.Connections, ws.Duplicates, st.ResyncBytes, st.WriteBytes)
}

// A master target with another passphrase is refused with ErrAuth and
// nothing reaches its target.
func TestWrongPassphrase(t *testing.T) {
	const size = 4 << 20
	r := newRig(t, size, nil, ps.Config{})
	good, err := wire.DeriveKey("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	bad, err := wire.DeriveKey("correct horse battery stapler")
	if err != nil {
		t.Fatal(err)
	}
	r.key = good
	r.startPS()
	r.newAgent(bad, r.addr, false)
	r.runAgent()
	select {
	case err = <-r.runErr:
	case <-time.After(15 * time.Second):
		t.Fatal("agent with a wrong passphrase kept running")
	}
	if !errors.Is(err, wire.ErrAuth) {
		t.Fatalf("err = %v, want wire.ErrAuth", err)
	}
	if d := r.cl.Pair("disk0").Durable(); d != 0 {
		t.Fatalf("durable sequence %d after a refused connection", d)
	}
	tgt, _ := os.ReadFile(r.tgt)
	if !bytes.Equal(tgt, make([]byte, size)) {
		t.Fatal("target changed")
	}
	if st := r.srv.Disk("disk0").Status(); len(st) != 0 {
		t.Fatalf("process server kept a stream for an unauthenticated peer: %+v", st)
	}
}

// Changes made to the source behind the process server's back are found
// by the chunk-hash scan and streamed.
func TestScannerFindsChanges(t *testing.T) {
	const size = 4 << 20
	r := newRig(t, size, nil, ps.Config{ChunkSize: 64 << 10})
	r.startPS()
	key, _ := keys(t)
	r.newAgent(key, r.addr, true)
	r.runAgent()
	r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
	sctx, scancel := context.WithCancel(r.ctx)
	defer scancel()
	done := make(chan error, 1)
	go func() { done <- ps.Scanner{Interval: 100 * time.Millisecond}.Run(sctx, r.srv.Disk("disk0")) }()
	time.Sleep(300 * time.Millisecond) // the first scan takes the baseline
	f, err := os.OpenFile(r.src, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 70000, 3 << 20} {
		if _, err := f.WriteAt(bytes.Repeat([]byte{0xA5}, 5000), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	r.waitFor("the scanned changes", 10*time.Second, func() bool { return r.cl.Stats().WriteBytes >= 3*64<<10 && r.caughtUp() })
	scancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r.assertTargetEqualsSource()
}

// An agent restarted on the same journal resumes from its last durable
// sequence: the process server resends what it holds, or, when the
// changes made meanwhile overflowed its buffer, resyncs by hashes.
func TestAgentRestartResumes(t *testing.T) {
	for _, tc := range []struct {
		name       string
		maxUnacked int64
		resync     bool
	}{{"resend", 0, false}, {"overflow", 256 << 10, true}} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 8 << 20
			r := newRig(t, size, nil, ps.Config{ChunkSize: 64 << 10, MaxUnacked: tc.maxUnacked})
			r.startPS()
			key, _ := keys(t)
			cl := r.newAgent(key, r.addr, false)
			actx, acancel := context.WithCancel(r.ctx)
			adone := make(chan error, 1)
			go func() { adone <- cl.Run(actx) }()
			r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
			d := r.srv.Disk("disk0")
			wl := ps.Workload{Seed: 5, WriteSize: 8 << 10, Writes: 20, Rate: 2000}
			if err := wl.Run(r.ctx, d); err != nil {
				t.Fatal(err)
			}
			r.waitFor("the first writes", 15*time.Second, r.caughtUp)
			acancel()
			if err := <-adone; err != nil {
				t.Fatal(err)
			}
			if err := cl.Close(); err != nil {
				t.Fatal(err)
			}
			first := cl.Stats()
			wl.Seed, wl.Writes = 6, 100 // 800 KiB while the agent is down
			if err := wl.Run(r.ctx, d); err != nil {
				t.Fatal(err)
			}
			r.newAgent(key, r.addr, false)
			r.runAgent()
			r.waitFor("catching up after the restart", 15*time.Second, r.caughtUp)
			r.assertTargetEqualsSource()
			st := r.cl.Stats()
			if tc.resync {
				if st.HashRequests == 0 || st.ResyncBytes == 0 || st.ResyncBytes > 100*64<<10 {
					t.Fatalf("after an overflow: %d hash requests, %d resync bytes; want a hash resync of at most the 100 chunks written", st.HashRequests, st.ResyncBytes)
				}
			} else if st.ResyncBytes != 0 || st.WriteBytes != 100*8<<10 {
				t.Fatalf("after the restart: %d resync bytes, %d write bytes; want the 100 writes resent (first run: %+v)", st.ResyncBytes, st.WriteBytes, first)
			}
			if dups := r.cl.Pair("disk0").Status().Duplicates; dups != 0 {
				t.Fatalf("%d duplicates", dups)
			}
		})
	}
}

// A restarted process server has no stream for the master target: it
// resyncs by hashes, numbered on from the agent's journal, and only what
// changed while it was down travels: of the one chunk that differs, the
// 4 KiB sub-chunks that differ.
func TestProcessServerRestartResyncsByHashes(t *testing.T) {
	const size = 8 << 20
	r := newRig(t, size, nil, ps.Config{ChunkSize: 64 << 10})
	r.startPS()
	key, _ := keys(t)
	r.newAgent(key, r.addr, false)
	r.runAgent()
	r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
	before := r.cl.Stats()
	durable := r.cl.Pair("disk0").Durable()
	r.stopPS()
	f, err := os.OpenFile(r.src, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{7}, 10000), 1<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", r.addr, err)
	}
	r.servePS(ln)
	r.waitFor("resync after the restart", 15*time.Second, func() bool {
		return r.cl.Stats().Connections > before.Connections && r.state() == agent.StateDiffSync && r.caughtUp()
	})
	r.assertTargetEqualsSource()
	after := r.cl.Stats()
	// 10000 bytes at 1 MiB lie in three 4 KiB blocks.
	if sent := after.ResyncBytes - before.ResyncBytes; sent != 3*4096 || after.HashRequests == before.HashRequests {
		t.Fatalf("after the restart: %d resync bytes, %d hash requests; want the three changed blocks of the one changed chunk, by hashes", sent, after.HashRequests-before.HashRequests)
	}
	if p := r.cl.Pair("disk0"); p.Durable() <= durable || p.Status().Duplicates != 0 {
		t.Fatalf("durable %d after %d, %d duplicates", p.Durable(), durable, p.Status().Duplicates)
	}
}

// BenchmarkResync measures a resync over TLS on loopback, journal and
// retention included: a full copy into an empty target, and a hash
// resync of a target differing in 1 % of scattered 4 KiB blocks. It
// reports MB/s of disk brought in line and the bytes sent per disk byte.
func BenchmarkResync(b *testing.B) {
	const size = 64 << 20
	for _, bc := range []struct {
		name  string
		hash  bool
		chunk int
	}{{"full", false, 1 << 20}, {"hash-1pct", true, 16 << 10}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(size)
			var sent int64
			for range b.N {
				b.StopTimer()
				r := newRig(b, size, nil, ps.Config{ChunkSize: bc.chunk, HashBatch: 1024})
				if bc.hash {
					tgt, err := os.ReadFile(r.src)
					if err != nil {
						b.Fatal(err)
					}
					rng := rand.New(rand.NewSource(3))
					for range size / 4096 / 100 {
						off := rng.Int63n(size/4096) * 4096
						rng.Read(tgt[off : off+4096])
					}
					if err := os.WriteFile(r.tgt, tgt, 0o600); err != nil {
						b.Fatal(err)
					}
				}
				r.startPS()
				key, _ := keys(b)
				r.newAgent(key, r.addr, bc.hash)
				b.StartTimer()
				r.runAgent()
				r.waitFor("differential sync", 5*time.Minute, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
				b.StopTimer()
				st := r.cl.Stats()
				sent += st.ResyncBytes
				r.stop()
			}
			b.ReportMetric(float64(sent)/float64(b.N)/size, "sent/byte")
		})
	}
}

// An admin's tag taken on the master target while the source is written
// goes through the process server: it takes a sequence in the source's
// write order, so no write loses its sequence to it (the target still
// equals the source); without a process server it is refused and changes
// nothing.
func TestAdminTagInWriteOrder(t *testing.T) {
	const size = 8 << 20
	r := newRig(t, size, nil, ps.Config{ChunkSize: 64 << 10})
	r.startPS()
	key, _ := keys(t)
	r.newAgent(key, r.addr, false)
	info := func(i int) journal.TagInfo {
		return journal.TagInfo{Name: fmt.Sprintf("admin-%d", i), App: journal.AppUser, ID: fmt.Sprintf("id-%d", i), Time: time.Now()}
	}
	if _, err := r.cl.Tag(r.ctx, nil, info(0)); !errors.Is(err, agent.ErrNotTagged) || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("tag before connecting: %v", err)
	}
	r.runAgent()
	r.waitFor("differential sync", 15*time.Second, func() bool { return r.state() == agent.StateDiffSync && r.caughtUp() })
	wctx, wcancel := context.WithCancel(r.ctx)
	werr := make(chan error, 1)
	go func() {
		werr <- ps.Workload{Seed: 5, Rate: 2000, WriteSize: 4 << 10}.Run(wctx, r.srv.Disk("disk0"))
	}()
	seqs := map[uint64]bool{}
	for i := 1; i <= 20; i++ {
		got, err := r.cl.Tag(r.ctx, nil, info(i))
		if err != nil {
			t.Fatalf("tag %d: %v", i, err)
		}
		if s := got["pair0"]; s == 0 || seqs[s] {
			t.Fatalf("tag %d took sequence %d (taken before: %v)", i, s, seqs[s])
		} else {
			seqs[s] = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	wcancel()
	if err := <-werr; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	r.waitFor("backlog to drain", 15*time.Second, r.caughtUp)
	r.assertTargetEqualsSource()
	if st := r.cl.Status()[0]; st.Duplicates != 0 {
		t.Errorf("%d writes dropped as duplicates", st.Duplicates)
	}
	p := r.cl.Pair("disk0")
	names := map[string]bool{}
	for _, tg := range p.Store().Tags() {
		names[tg.Name] = true
	}
	for i := 1; i <= 20; i++ {
		if !names[fmt.Sprintf("admin-%d", i)] {
			t.Errorf("tag admin-%d is not in retention", i)
		}
	}
	// A resync begins (the ps restarts and resyncs by hashes): refused.
	r.stopPS()
	r.waitFor("the agent to notice", 15*time.Second, func() bool { return !r.cl.Status()[0].Connected })
	before := len(p.Store().Tags())
	if _, err := r.cl.Tag(r.ctx, []string{"pair0"}, info(99)); !errors.Is(err, agent.ErrNotTagged) {
		t.Errorf("tag while disconnected: %v", err)
	}
	if after := len(p.Store().Tags()); after != before {
		t.Errorf("a refused tag changed retention: %d tags, %d before", after, before)
	}
}

// TestStopWhileJournalFull: the pair is paused, so nothing is applied and
// the journal fills; the receive loop then waits in Append for room. The
// end of Run's context (SIGTERM) and Close must both still stop the agent
// (only kill -9 did), with what was acknowledged kept.
func TestStopWhileJournalFull(t *testing.T) {
	for _, how := range []string{"cancel", "close"} {
		t.Run(how, func(t *testing.T) {
			const size = 16 << 20
			r := newRig(t, size, nil, ps.Config{ChunkSize: 256 << 10})
			r.agentCfgChange = func(c *agent.Config) {
				c.Pairs[0].JournalSegmentSize, c.Pairs[0].JournalMaxSegments = 1<<20, 2
			}
			r.startPS()
			key, _ := keys(t)
			cl := r.newAgent(key, r.addr, false)
			p := cl.Pair("disk0")
			if err := p.Pause("test: let the journal fill"); err != nil {
				t.Fatal(err)
			}
			actx, acancel := context.WithCancel(r.ctx)
			defer acancel()
			adone := make(chan error, 1)
			go func() { adone <- cl.Run(actx) }()
			r.waitFor("the journal to fill", 15*time.Second, func() bool { return p.JournalWaiting() > 0 })
			durable := p.Durable()
			cdone := make(chan error, 1)
			if how == "cancel" {
				acancel()
			} else {
				go func() { cdone <- cl.Close() }()
			}
			select {
			case err := <-adone:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("Run did not return while a write waited for room in the journal")
			}
			if how == "close" {
				if err := <-cdone; err != nil {
					t.Fatalf("Close: %v", err)
				}
			} else if err := cl.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if p.Durable() < durable {
				t.Fatalf("durable %d after stopping, was %d", p.Durable(), durable)
			}
			if err := p.Err(); err != nil {
				t.Fatalf("pair in error after a stop: %v", err)
			}
		})
	}
}
