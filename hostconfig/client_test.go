package hostconfig_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/hostconfig/csserver"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// clock is the server's injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// lockedBuf is a log sink the server writes from its goroutines.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// cs is a configuration server on loopback over real TLS.
type cs struct {
	dir   csserver.Dir
	pass  hostconfig.Passphrase
	fp    wire.Fingerprint
	addr  string
	host  string
	port  int
	srv   *csserver.Server
	store *csserver.Store
	clock *clock
	log   *lockedBuf
}

// Deriving a key takes ~0.1 s: derive each passphrase once per test binary.
var (
	keyMu    sync.Mutex
	keyCache = map[hostconfig.Passphrase]hostconfig.SigningKey{}
)

func deriveKey(t *testing.T, p hostconfig.Passphrase) hostconfig.SigningKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if k, ok := keyCache[p]; ok {
		return k
	}
	k, err := hostconfig.DeriveSigningKey(p)
	if err != nil {
		t.Fatal(err)
	}
	keyCache[p] = k
	return k
}

func startCS(t *testing.T) *cs {
	t.Helper()
	dir := csserver.Dir(filepath.Join(t.TempDir(), "cs"))
	pass, fp, err := csserver.Init(dir, []string{"127.0.0.1"}, false)
	if err != nil {
		t.Fatal(err)
	}
	_, cert, fp2, err := csserver.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fp != fp2 {
		t.Fatalf("init fingerprint %s, load %s", fp, fp2)
	}
	st, err := csserver.OpenStore(dir.Store(), false)
	if err != nil {
		t.Fatal(err)
	}
	c := &cs{dir: dir, pass: pass, fp: fp, clock: &clock{t: time.Now()}, log: &lockedBuf{}, store: st}
	c.srv = csserver.New(csserver.Options{Key: deriveKey(t, pass), Cert: fp, Store: st, Now: c.clock.Now,
		Log: slog.New(slog.NewTextHandler(c.log, &slog.HandlerOptions{Level: slog.LevelDebug})), Version: "test"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c.addr = ln.Addr().String()
	c.host = "127.0.0.1"
	c.port = ln.Addr().(*net.TCPAddr).Port
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.srv.Run(ctx, ln, &cert, time.Hour) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("cs serve: %v", err)
		}
		st.Close()
		if strings.Contains(c.log.String(), string(pass)) {
			t.Errorf("the server's log holds the passphrase:\n%s", c.log.String())
		}
	})
	return c
}

// host is one master target's files in a temporary directory.
type host struct {
	paths hostconfig.Paths
	cfg   hostconfig.Config
}

func newHost(t *testing.T, c *cs) *host {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "etc")
	cfg := hostconfig.Default()
	cfg.CSHost, cfg.CSPort = c.host, c.port
	cfg.CacheDir = "/var/lib/mtconsole"
	return &host{paths: hostconfig.PathsFor(filepath.Join(dir, "host.conf")), cfg: cfg}
}

func (h *host) setup(p hostconfig.Passphrase) hostconfig.Setup {
	return hostconfig.Setup{Paths: h.paths, Passphrase: p, Version: "test", SysRoot: "/"}
}

// client is a Client of the stored registration, with a given clock.
func (h *host) client(t *testing.T, p hostconfig.Passphrase, now func() time.Time) *hostconfig.Client {
	t.Helper()
	ts, err := wire.OpenTrustStore(h.paths.Trust)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := hostconfig.NewClient(hostconfig.ClientOptions{Addr: h.cfg.CSAddr(), HTTPS: true, Key: deriveKey(t, p),
		HostID: h.cfg.HostID, Trust: ts, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// nothingStored fails the test if the host wrote its config or passphrase.
func (h *host) nothingStored(t *testing.T) {
	t.Helper()
	for _, f := range []string{h.paths.Config, h.paths.Passphrase} {
		if _, err := os.Stat(f); err == nil {
			t.Errorf("%s was written by a failed registration", f)
		}
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestRegisterVerifyHeartbeatLostUnregister(t *testing.T) {
	c := startCS(t)
	h := newHost(t, c)
	h.cfg.UseNATIP, h.cfg.NATIP = true, "203.0.113.7"
	var confirmed []wire.Fingerprint
	s := h.setup(c.pass + "\n")
	s.Passphrase = c.pass
	s.Confirm = func(addr string, fp wire.Fingerprint) bool { confirmed = append(confirmed, fp); return true }
	ctx := context.Background()
	res, err := hostconfig.Register(ctx, h.cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(confirmed) != 1 || confirmed[0] != c.fp || res.Fingerprint != c.fp {
		t.Errorf("confirmed %v, result %s; want once the server's %s", confirmed, res.Fingerprint, c.fp)
	}
	if res.Host.State != hostconfig.StateRegistered || res.Host.NATIP != "203.0.113.7" || res.Host.Role != hostconfig.RoleMasterTarget {
		t.Errorf("registered host %+v", res.Host)
	}
	h.cfg = res.Config
	// files: config and passphrase root-only, the certificate pinned
	for _, f := range []string{h.paths.Config, h.paths.Passphrase, h.paths.Trust} {
		if m := mode(t, f); m != 0o600 {
			t.Errorf("%s: mode %04o, want 0600", f, m)
		}
	}
	ts, _ := wire.OpenTrustStore(h.paths.Trust)
	if fp, ok, _ := ts.Lookup(c.addr); !ok || fp != c.fp {
		t.Errorf("pinned %s %v, want %s", fp, ok, c.fp)
	}
	saved, err := hostconfig.Load(h.paths.Config)
	if err != nil {
		t.Fatal(err)
	}
	if saved.HostID == "" || saved.HostID != res.Host.ID || saved.CSHost != c.host || saved.CSPort != c.port {
		t.Errorf("saved config %+v, host %s", saved, res.Host.ID)
	}
	// a second registration keeps the host id and asks nothing
	res2, err := hostconfig.Register(ctx, h.cfg, h.setup(""))
	if err != nil {
		t.Fatal(err)
	}
	if res2.Host.ID != res.Host.ID || len(confirmed) != 1 {
		t.Errorf("re-registration: id %s (was %s), confirmations %d", res2.Host.ID, res.Host.ID, len(confirmed))
	}

	_, cl, err := hostconfig.Stored(h.paths)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Verify(ctx, hostconfig.CollectHostInfo(saved, "test", "/")); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// from here the server's clock moves: the client's follows, or its
	// requests would be refused as stale
	cl = h.client(t, c.pass, c.clock.Now)
	// silent for 900 s is still registered; one second more is lost
	c.clock.Add(hostconfig.LostAfter)
	if got, _ := cl.Get(ctx, saved.HostID); got.State != hostconfig.StateRegistered {
		t.Errorf("after exactly 900 s: %s", got.State)
	}
	if lost, _ := c.srv.Sweep(); len(lost) != 0 {
		t.Errorf("sweep at 900 s: %v", lost)
	}
	c.clock.Add(time.Second)
	if got, _ := cl.Get(ctx, saved.HostID); got.State != hostconfig.StateLost {
		t.Errorf("after 901 s: %s, want lost", got.State)
	}
	if lost, _ := c.srv.Sweep(); len(lost) != 1 || lost[0] != saved.HostID {
		t.Errorf("sweep: %v", lost)
	}
	if lost, _ := c.srv.Sweep(); len(lost) != 0 {
		t.Errorf("second sweep reports again: %v", lost)
	}
	if !strings.Contains(c.log.String(), "host lost") {
		t.Errorf("no log line for the lost host:\n%s", c.log.String())
	}
	hb, err := cl.Heartbeat(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if hb.State != hostconfig.StateRegistered || !hb.LastHeartbeat.Equal(c.clock.Now().UTC().Truncate(time.Second)) && hb.LastHeartbeat.Sub(c.clock.Now()) > time.Second {
		t.Errorf("after heartbeat: %+v", hb)
	}
	hosts, err := cl.Hosts(ctx)
	if err != nil || len(hosts) != 1 || hosts[0].State != hostconfig.StateRegistered {
		t.Errorf("hosts %+v, %v", hosts, err)
	}
	if err := cl.Unregister(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Get(ctx, saved.HostID); !errors.Is(err, hostconfig.ErrNotRegistered) {
		t.Errorf("get after unregister: %v, want ErrNotRegistered", err)
	}
	if _, err := cl.Heartbeat(ctx); !errors.Is(err, hostconfig.ErrNotRegistered) {
		t.Errorf("heartbeat after unregister: %v", err)
	}
	if err := cl.Unregister(ctx); !errors.Is(err, hostconfig.ErrNotRegistered) {
		t.Errorf("second unregister: %v", err)
	}
	// nothing but the passphrase file holds the passphrase
	for _, f := range []string{h.paths.Config, h.paths.Trust} {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(c.pass)) {
			t.Errorf("%s holds the passphrase", f)
		}
	}
	if b, _ := os.ReadFile(h.paths.Passphrase); strings.TrimSpace(string(b)) != string(c.pass) {
		t.Error("the passphrase file does not hold the passphrase")
	}
}

func TestHeartbeatLoopReRegisters(t *testing.T) {
	c := startCS(t)
	h := newHost(t, c)
	res, err := hostconfig.Register(context.Background(), h.cfg, h.setup(c.pass))
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = res.Config
	cl := h.client(t, c.pass, nil)
	if err := cl.Unregister(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info := hostconfig.CollectHostInfo(h.cfg, "test", "/")
	beats := make(chan hostconfig.Beat, 100)
	go cl.RunHeartbeats(ctx, 20*time.Millisecond, info, func(b hostconfig.Beat) { beats <- b })
	select {
	case b := <-beats:
		if b.Err != nil || !b.ReRegistered || b.Host.ID != h.cfg.HostID {
			t.Fatalf("first beat: %+v, want the host registered again", b)
		}
	case <-ctx.Done():
		t.Fatal("no heartbeat reported")
	}
	if got, found, _ := c.store.Get(h.cfg.HostID); !found || got.State != hostconfig.StateRegistered {
		t.Fatalf("the heartbeat loop did not register the forgotten host again: %+v %v", got, found)
	}
	// the next beats are plain heartbeats
	if b := <-beats; b.Err != nil || b.ReRegistered {
		t.Errorf("second beat: %+v", b)
	}
}

// The loop beats at once, reports a server that went away as
// unreachable (and keeps trying), and each outcome in order.
func TestHeartbeatLoopReportsFailures(t *testing.T) {
	c := startCS(t)
	h := newHost(t, c)
	res, err := hostconfig.Register(context.Background(), h.cfg, h.setup(c.pass))
	if err != nil {
		t.Fatal(err)
	}
	h.cfg = res.Config
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := h.client(t, c.pass, nil)
	beats := make(chan hostconfig.Beat, 100)
	start := time.Now()
	// an hour's interval: only the first beat is sent
	go cl.RunHeartbeats(ctx, time.Hour, hostconfig.CollectHostInfo(h.cfg, "test", "/"), func(b hostconfig.Beat) { beats <- b })
	b := <-beats
	if b.Err != nil || b.ReRegistered || b.At.Before(start) || b.Host.LastHeartbeat.IsZero() {
		t.Fatalf("first beat: %+v", b)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the first beat came after %s: it should be sent at once", time.Since(start))
	}
	select {
	case b := <-beats:
		t.Fatalf("a second beat within the hour: %+v", b)
	case <-time.After(100 * time.Millisecond):
	}

	// a server that is gone: closed port
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := ln.Addr().String()
	ln.Close()
	ts, err := wire.OpenTrustStore(h.paths.Trust)
	if err != nil {
		t.Fatal(err)
	}
	down, err := hostconfig.NewClient(hostconfig.ClientOptions{Addr: gone, HTTPS: true, Key: deriveKey(t, c.pass), HostID: h.cfg.HostID, Trust: ts})
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(ctx)
	beats2 := make(chan hostconfig.Beat, 100)
	go down.RunHeartbeats(ctx2, 10*time.Millisecond, hostconfig.HostInfo{ID: h.cfg.HostID}, func(b hostconfig.Beat) { beats2 <- b })
	for i := range 2 { // it keeps trying
		b := <-beats2
		if !errors.Is(b.Err, hostconfig.ErrUnreachable) || hostconfig.Problem(b.Err) != "unreachable" {
			t.Errorf("beat %d to a closed port: %v (%s)", i, b.Err, hostconfig.Problem(b.Err))
		}
		if strings.Contains(b.Err.Error(), string(c.pass)) {
			t.Error("the error shows the passphrase")
		}
	}
	cancel2()
	// the wrong passphrase
	wrong, err := hostconfig.NewClient(hostconfig.ClientOptions{Addr: c.addr, HTTPS: true, Key: deriveKey(t, "this-is-not-the-passphrase"), HostID: h.cfg.HostID, Trust: ts})
	if err != nil {
		t.Fatal(err)
	}
	beats3 := make(chan hostconfig.Beat, 1)
	ctx3, cancel3 := context.WithCancel(ctx)
	defer cancel3()
	go wrong.RunHeartbeats(ctx3, time.Hour, hostconfig.HostInfo{ID: h.cfg.HostID}, func(b hostconfig.Beat) { beats3 <- b })
	if b := <-beats3; hostconfig.Problem(b.Err) != "passphrase rejected" {
		t.Errorf("wrong passphrase: %v (%s)", b.Err, hostconfig.Problem(b.Err))
	}
}

func TestProblem(t *testing.T) {
	for err, want := range map[error]string{
		nil: "error", errors.New("x"): "error",
		fmt.Errorf("a: %w", hostconfig.ErrUnreachable):     "unreachable",
		&hostconfig.ClockSkewError{Diff: 21 * time.Minute}: "clock skew",
		&hostconfig.CertChangedError{}:                     "certificate changed",
		hostconfig.ErrNotRegistered:                        "not registered",
	} {
		if got := hostconfig.Problem(err); got != want {
			t.Errorf("Problem(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestBadInputsChangeNothing(t *testing.T) {
	c := startCS(t)
	ctx := context.Background()
	countHosts := func() int {
		hs, err := c.store.List()
		if err != nil {
			t.Fatal(err)
		}
		return len(hs)
	}

	t.Run("short passphrase", func(t *testing.T) {
		h := newHost(t, c)
		_, err := hostconfig.Register(ctx, h.cfg, h.setup("tooshort"))
		if !errors.Is(err, hostconfig.ErrPassphraseShort) || !strings.Contains(err.Error(), "at least 16") {
			t.Errorf("got %v, want ErrPassphraseShort", err)
		}
		if strings.Contains(err.Error(), "tooshort") {
			t.Error("the error shows the passphrase")
		}
		h.nothingStored(t)
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		h := newHost(t, c)
		_, err := hostconfig.Register(ctx, h.cfg, h.setup("this-is-not-the-passphrase"))
		if !errors.Is(err, hostconfig.ErrPassphraseRejected) {
			t.Errorf("got %v, want ErrPassphraseRejected", err)
		}
		h.nothingStored(t)
		if _, err := os.Stat(h.paths.Trust); err == nil {
			t.Error("a certificate was pinned without the server's proof")
		}
	})
	t.Run("clock skew", func(t *testing.T) {
		h := newHost(t, c)
		h.cfg.HostID = hostconfig.NewHostID()
		cl := h.client(t, c.pass, func() time.Time { return time.Now().Add(21 * time.Minute) })
		_, _, err := cl.Login(ctx)
		var ce *hostconfig.ClockSkewError
		if !errors.As(err, &ce) || !errors.Is(err, hostconfig.ErrClockSkew) || !strings.Contains(err.Error(), "clock differs by 21 min") {
			t.Errorf("got %v, want clock differs by 21 min", err)
		}
		_, err = cl.Register(ctx, hostconfig.CollectHostInfo(h.cfg, "t", "/"))
		if !errors.Is(err, hostconfig.ErrClockSkew) {
			t.Errorf("register: %v", err)
		}
		h.nothingStored(t)
	})
	t.Run("server down", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		h := newHost(t, c)
		h.cfg.CSPort = port
		_, err = hostconfig.Register(ctx, h.cfg, h.setup(c.pass))
		want := fmt.Sprintf("cannot reach 127.0.0.1:%d: connection refused — is the port open", port)
		if !errors.Is(err, hostconfig.ErrUnreachable) || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
		h.nothingStored(t)
	})
	t.Run("port out of range", func(t *testing.T) {
		h := newHost(t, c)
		for _, p := range []int{0, 65536, -1} {
			h.cfg.CSPort = p
			_, err := hostconfig.Register(ctx, h.cfg, h.setup(c.pass))
			var fe *hostconfig.FieldError
			if !errors.Is(err, hostconfig.ErrBadPort) || !errors.As(err, &fe) || fe.Field != "cs.port" {
				t.Errorf("port %d: %v", p, err)
			}
		}
		if _, _, err := hostconfig.SplitCSAddr("cs.example.com:70000", 443); !errors.Is(err, hostconfig.ErrBadPort) {
			t.Errorf("SplitCSAddr :70000: %v", err)
		}
		h.nothingStored(t)
	})
	t.Run("FQDN over 255", func(t *testing.T) {
		h := newHost(t, c)
		long := strings.Repeat(strings.Repeat("a", 63)+".", 4) + "com" // 259
		h.cfg.CSHost = long
		_, err := hostconfig.Register(ctx, h.cfg, h.setup(c.pass))
		if !errors.Is(err, hostconfig.ErrBadHost) || !strings.Contains(err.Error(), "259 characters, at most 255") {
			t.Errorf("got %v", err)
		}
		ok := strings.Repeat(strings.Repeat("a", 62)+".", 4) + "com" // 255
		if err := hostconfig.ValidateHost(ok); err != nil {
			t.Errorf("255 characters refused: %v", err)
		}
		h.nothingStored(t)
	})
	t.Run("changed certificate", func(t *testing.T) {
		h := newHost(t, c)
		ts, _ := wire.OpenTrustStore(h.paths.Trust)
		old := wire.Fingerprint{1, 2, 3}
		if err := ts.Pin(c.addr, old); err != nil {
			t.Fatal(err)
		}
		_, err := hostconfig.Register(ctx, h.cfg, h.setup(c.pass))
		var ce *hostconfig.CertChangedError
		if !errors.Is(err, hostconfig.ErrCertChanged) || !errors.As(err, &ce) || ce.Pinned != old || ce.Received != c.fp ||
			!strings.Contains(err.Error(), old.String()) || !strings.Contains(err.Error(), c.fp.String()) {
			t.Errorf("got %v, want both fingerprints", err)
		}
		if fp, _, _ := ts.Lookup(c.addr); fp != old {
			t.Error("the pin changed")
		}
		h.nothingStored(t)
	})
	if n := countHosts(); n != 0 {
		t.Errorf("%d hosts registered by bad inputs", n)
	}
}

// signedRequest builds a request the way the client does, to replay it.
func signedRequest(t *testing.T, c *cs, method, path, action, hostID string, body []byte, at time.Time, nonce string) *http.Request {
	t.Helper()
	r := hostconfig.Request{Method: method, Path: path, Action: action, Host: hostID, Nonce: nonce, Time: at,
		Cert: c.fp, BodyHash: sha256.Sum256(body)}
	req, err := http.NewRequest(method, "https://"+c.addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(hostconfig.HeaderHost, hostID)
	req.Header.Set(hostconfig.HeaderAction, action)
	req.Header.Set(hostconfig.HeaderNonce, nonce)
	req.Header.Set(hostconfig.HeaderTime, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(hostconfig.HeaderSignature, r.Sign(deriveKey(t, c.pass)))
	return req
}

func insecureClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

func TestReplayRefused(t *testing.T) {
	c := startCS(t)
	id := hostconfig.NewHostID()
	body := []byte(`{"id":"` + id + `","hostname":"mt1","role":"MasterTarget"}`)
	nonce := hostconfig.NewNonce()
	hc := insecureClient()
	at := c.clock.Now()
	send := func() (int, string) {
		resp, err := hc.Do(signedRequest(t, c, "PUT", "/v1/hosts/"+id, hostconfig.ActionRegister, id, body, at, nonce))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.Header.Get(hostconfig.HeaderReplySignature) == "" {
			t.Errorf("reply to a well-signed request is not signed: %s", b)
		}
		return resp.StatusCode, string(b)
	}
	if code, b := send(); code != 200 {
		t.Fatalf("first: %d %s", code, b)
	}
	first, _, _ := c.store.Get(id)
	c.clock.Add(time.Minute)
	if code, b := send(); code != http.StatusConflict || !strings.Contains(b, hostconfig.CodeReplay) {
		t.Errorf("replay: %d %s, want 409 replay", code, b)
	}
	if again, _, _ := c.store.Get(id); !again.LastHeartbeat.Equal(first.LastHeartbeat) {
		t.Error("the replayed request changed the host")
	}
	// long after, the nonce may be forgotten but the time is stale
	c.clock.Add(2*hostconfig.ReplayWindow + time.Minute)
	if code, b := send(); code != http.StatusUnauthorized || !strings.Contains(b, hostconfig.CodeClockSkew) {
		t.Errorf("stale replay: %d %s", code, b)
	}
	if !strings.Contains(c.log.String(), "replayed request refused") {
		t.Error("the replay is not logged")
	}
}

func TestRateLimitAndUnsignedReplies(t *testing.T) {
	c := startCS(t)
	h := newHost(t, c)
	h.cfg.HostID = hostconfig.NewHostID()
	wrong := h.client(t, "wrong-passphrase-0123456789", nil)
	for i := 0; i < csserver.DefaultMaxFailures; i++ {
		if _, _, err := wrong.Login(context.Background()); !errors.Is(err, hostconfig.ErrPassphraseRejected) {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	right := h.client(t, c.pass, nil)
	if _, _, err := right.Login(context.Background()); !errors.Is(err, hostconfig.ErrRateLimited) {
		t.Errorf("after %d failures: %v, want ErrRateLimited", csserver.DefaultMaxFailures, err)
	}
	c.clock.Add(csserver.BlockFor + time.Second)
	right = h.client(t, c.pass, c.clock.Now)
	if _, _, err := right.Login(context.Background()); err != nil {
		t.Errorf("after the block: %v", err)
	}
}

// A server that does not hold the passphrase (an impostor, or a relay
// answering itself) gets nothing pinned.
func TestImpostorNotTrusted(t *testing.T) {
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := wire.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// it copies a plausible signature header: not valid for this key
		w.Header().Set(hostconfig.HeaderTime, strconv.FormatInt(time.Now().Unix(), 10))
		w.Header().Set(hostconfig.HeaderReplySignature, strings.Repeat("ab", 32))
		fmt.Fprintln(w, `{"server":"mtconsole configuration server"}`)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	dir := t.TempDir()
	ts, _ := wire.OpenTrustStore(filepath.Join(dir, "trust"))
	cl, err := hostconfig.NewClient(hostconfig.ClientOptions{Addr: ln.Addr().String(), HTTPS: true,
		Key: deriveKey(t, "correct horse battery staple"), HostID: hostconfig.NewHostID(), Trust: ts,
		Confirm: func(string, wire.Fingerprint) bool { t.Error("asked to confirm an unproven certificate"); return true }})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := cl.Login(context.Background()); !errors.Is(err, hostconfig.ErrBadReply) {
		t.Errorf("got %v, want ErrBadReply", err)
	}
	if es, _ := ts.List(); len(es) != 0 {
		t.Errorf("pinned %v", es)
	}
}

func TestConfirmDeclined(t *testing.T) {
	c := startCS(t)
	h := newHost(t, c)
	s := h.setup(c.pass)
	s.Confirm = func(string, wire.Fingerprint) bool { return false }
	if _, err := hostconfig.Register(context.Background(), h.cfg, s); !errors.Is(err, hostconfig.ErrUntrusted) {
		t.Errorf("got %v, want ErrUntrusted", err)
	}
	h.nothingStored(t)
	if hs, _ := c.store.List(); len(hs) != 0 {
		t.Errorf("registered %v", hs)
	}
}

func TestPlainHTTP(t *testing.T) {
	dir := csserver.Dir(t.TempDir())
	pass, _, err := csserver.Init(dir, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	st, err := csserver.OpenStore(dir.Store(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv := csserver.New(csserver.Options{Key: deriveKey(t, pass), Store: st, Log: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln, nil, 0) }()
	defer func() { cancel(); <-done }()
	cfg := hostconfig.Default()
	cfg.CSHost, cfg.CSPort, cfg.HTTPS = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, false
	paths := hostconfig.PathsFor(filepath.Join(t.TempDir(), "host.conf"))
	res, err := hostconfig.Register(context.Background(), cfg, hostconfig.Setup{Paths: paths, Passphrase: pass})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fingerprint.IsZero() || res.Host.State != hostconfig.StateRegistered {
		t.Errorf("%+v", res)
	}
	// HTTPS asked of a plain server says so
	cfg.HTTPS = true
	_, _, err = hostconfig.TestConnection(context.Background(), cfg, hostconfig.Setup{Paths: paths})
	if !errors.Is(err, hostconfig.ErrUnreachable) || !strings.Contains(err.Error(), "--https=false") {
		t.Errorf("HTTPS to a plain server: %v", err)
	}
}
