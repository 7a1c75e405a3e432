package wire

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestHandshakePipe(t *testing.T) {
	k := testKey()
	cn, sn := net.Pipe()
	c, s := handshakePair(t, cn, sn, mtConfig(k), psConfig(k))
	if c.err != nil || s.err != nil {
		t.Fatalf("client %v, server %v", c.err, s.err)
	}
	mt, ps := c.c, s.c
	wantPairs := []Pair{{Disk: 1, Start: StartStream, Seq: 41}, {Disk: 2, Start: StartHashes, Seq: 0}}
	for name, sess := range map[string]Session{"mt": mt.Session(), "ps": ps.Session()} {
		if sess.Version != ProtocolVersion {
			t.Errorf("%s: version %d", name, sess.Version)
		}
		if !reflect.DeepEqual(sess.Disks, testDisks) || !reflect.DeepEqual(sess.Pairs, wantPairs) {
			t.Errorf("%s: disks %+v, pairs %+v", name, sess.Disks, sess.Pairs)
		}
	}
	if p := mt.Session().Peer; p != (Peer{Role: RoleProcessServer, HostID: "ps-0001", HostName: "ps.example"}) {
		t.Errorf("mt sees peer %+v", p)
	}
	if p := ps.Session().Peer; p != (Peer{Role: RoleMasterTarget, HostID: "mt-0001", HostName: "mt.example"}) {
		t.Errorf("ps sees peer %+v", p)
	}

	// Stream: the ps resumes disk 1 after 41, the mt acknowledges.
	sent := []Message{
		&State{Disk: 2, State: StateResync1, Seq: 0, Total: 3 << 20},
		&ResyncData{Disk: 2, Seq: 1, Offset: 0, Data: []byte("block zero")},
		&ZeroRange{Disk: 2, Seq: 2, Offset: 4096, Length: 1 << 20},
		&Write{Disk: 1, Seq: 42, Offset: 512, Time: t0, Data: []byte("new data"), Compression: CompressZstd},
		&Tag{Disk: 1, Seq: 43, Time: t0, Name: "t1", App: "CRASH", ID: "g1"},
		&Heartbeat{Time: t0, Latest: []DiskSeq{{1, 43}, {2, 2}}},
	}
	errc := make(chan error, 1)
	go func() { errc <- ps.Send(sent...) }()
	for i, want := range sent {
		got, err := mt.Recv()
		if err != nil {
			t.Fatalf("recv %d: %v", i, err)
		}
		if w, ok := want.(*Write); ok {
			w2 := *w
			w2.Compression = CompressNone // "new data" does not shrink
			want = &w2
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("recv %d: got %+v, want %+v", i, got, want)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	go func() {
		errc <- mt.Send(&Ack{Disk: 1, Seq: 43, Backlog: 8, FreeJournal: 1 << 30}, &Credit{Bytes: 1 << 20})
	}()
	for _, want := range []Type{TypeAck, TypeCredit} {
		if m, err := ps.Recv(); err != nil || m.Type() != want {
			t.Fatalf("ps recv: %v, %v; want %v", m, err, want)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// tlsServer listens on 127.0.0.1 with the certificate that cert returns
// (it may change between connections) and runs the ps side of the
// handshake on each connection, reporting the outcome.
type tlsServer struct {
	ln      net.Listener
	results chan result
	mu      sync.Mutex
	cert    tls.Certificate
	fp      Fingerprint
	cfg     func() *Config
}

func newTLSServer(t *testing.T, cfg func() *Config) *tlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &tlsServer{ln: ln, results: make(chan result, 4), cfg: cfg}
	s.newCert(t)
	tc := ServerTLSConfig(tls.Certificate{})
	tc.Certificates = nil
	tc.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		c := s.cert
		return &c, nil
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			c := s.cfg()
			c.ServerCert = s.fp
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				conn, err := Server(ctx, tls.Server(nc, tc), c)
				if err != nil {
					nc.Close()
				}
				s.results <- result{conn, err}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return s
}

// newCert gives the server a new certificate.
func (s *tlsServer) newCert(t *testing.T) Fingerprint {
	t.Helper()
	certPEM, keyPEM, err := GenerateCertificate([]string{"127.0.0.1", "localhost"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, fp, err := LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.cert, s.fp = c, fp
	s.mu.Unlock()
	return fp
}

func (s *tlsServer) addr() string { return s.ln.Addr().String() }

// dialTLS dials addr with the client TLS config and runs the mt side.
func dialTLS(addr string, tc *tls.Config, cfg *Config) (*Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c, err := Client(ctx, tls.Client(nc, tc), cfg)
	if err != nil {
		nc.Close()
	}
	return c, err
}

func TestHandshakeTLS(t *testing.T) {
	k := testKey()
	srv := newTLSServer(t, func() *Config { return psConfig(k) })
	store, err := OpenTrustStore(t.TempDir() + "/trust")
	if err != nil {
		t.Fatal(err)
	}
	var asked []Fingerprint
	confirm := func(addr string, fp Fingerprint) bool {
		asked = append(asked, fp)
		return addr == srv.addr()
	}
	mt, err := dialTLS(srv.addr(), ClientTLSConfig(srv.addr(), store, confirm), mtConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	defer mt.Close()
	r := <-srv.results
	if r.err != nil {
		t.Fatal(r.err)
	}
	ps := r.c
	defer ps.Close()
	if len(asked) != 1 || asked[0] != srv.fp {
		t.Fatalf("asked to confirm %v, server fingerprint %v", asked, srv.fp)
	}
	if mt.Session().ServerCert != srv.fp || ps.Session().ServerCert != srv.fp {
		t.Fatalf("sessions bound %v and %v, certificate is %v", mt.Session().ServerCert, ps.Session().ServerCert, srv.fp)
	}
	if st := mt.NetConn().(*tls.Conn).ConnectionState(); st.Version != tls.VersionTLS13 || st.NegotiatedProtocol != ALPN {
		t.Fatalf("TLS version %x, ALPN %q", st.Version, st.NegotiatedProtocol)
	}
	data := bytes.Repeat([]byte{7}, 1<<20)
	go ps.Send(&Write{Disk: 1, Seq: 42, Offset: 0, Time: t0, Data: data, Compression: CompressS2})
	m, err := mt.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if w := m.(*Write); !bytes.Equal(w.Data, data) || w.Compression != CompressS2 {
		t.Fatalf("write over TLS: %d bytes, %v", len(w.Data), w.Compression)
	}
}

// TestHandshakeRelay: a relay that terminates TLS with its own
// certificate and forwards the bytes cannot complete the handshake, even
// when the client trusts the relay's certificate.
func TestHandshakeRelay(t *testing.T) {
	k := testKey()
	srv := newTLSServer(t, func() *Config { return psConfig(k) })
	relayCertPEM, relayKeyPEM, err := GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	relayCert, relayFP, err := LoadCertificate(relayCertPEM, relayKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", ServerTLSConfig(relayCert))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		in, err := ln.Accept()
		if err != nil {
			return
		}
		defer in.Close()
		out, err := tls.Dial("tcp", srv.addr(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13})
		if err != nil {
			return
		}
		defer out.Close()
		go io.Copy(out, in)
		io.Copy(in, out)
	}()
	store, err := OpenTrustStore(t.TempDir() + "/trust")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, err = dialTLS(addr, ClientTLSConfig(addr, store, func(string, Fingerprint) bool { return true }), mtConfig(k))
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("client through a relay: %v, want ErrAuth", err)
	}
	if fp, _, _ := store.Lookup(addr); fp != relayFP {
		t.Fatalf("the client did not even see the relay's certificate")
	}
	if r := <-srv.results; !errors.Is(r.err, ErrAuth) {
		t.Fatalf("server behind a relay: %v, want ErrAuth", r.err)
	}
}

func TestWrongPassphrase(t *testing.T) {
	other, err := DeriveKey(testPassphrase + "!")
	if err != nil {
		t.Fatal(err)
	}
	if other == testKey() {
		t.Fatal("two passphrases derive one key")
	}
	for _, tc := range []struct {
		name     string
		mt, ps   Key
		mtClient bool
	}{
		{"master target wrong, dialing", other, testKey(), true},
		{"process server wrong, dialing", testKey(), other, false},
	} {
		cn, sn := net.Pipe()
		var c, s result
		if tc.mtClient {
			c, s = handshakePair(t, cn, sn, mtConfig(tc.mt), psConfig(tc.ps))
		} else {
			c, s = handshakePair(t, cn, sn, psConfig(tc.ps), mtConfig(tc.mt))
		}
		if !errors.Is(c.err, ErrAuth) || !errors.Is(s.err, ErrAuth) {
			t.Fatalf("%s: client %v, server %v; want ErrAuth on both", tc.name, c.err, s.err)
		}
		if c.c != nil || s.c != nil {
			t.Fatalf("%s: a connection came back with the error", tc.name)
		}
		// Neither says more than that the proofs failed.
		for _, err := range []error{c.err, s.err} {
			if msg := err.Error(); strings.Contains(msg, "client proof") || strings.Contains(msg, "server proof") || strings.Contains(msg, testPassphrase) {
				t.Errorf("%s: error says too much: %s", tc.name, msg)
			}
		}
	}
}

// TestReplayedHandshake records a successful client (or server) and plays
// its bytes to a fresh peer: the fresh nonce makes the recorded proof
// worthless.
func TestReplayedHandshake(t *testing.T) {
	k := fixedKey
	cn, sn := net.Pipe()
	rec := &recordConn{Conn: cn}
	srec := &recordConn{Conn: sn}
	c, s := handshakePair(t, rec, srec, mtConfig(k), psConfig(k))
	if c.err != nil || s.err != nil {
		t.Fatalf("recorded session: client %v, server %v", c.err, s.err)
	}
	clientBytes, serverBytes := rec.recorded(), srec.recorded()
	if got := frames(t, clientBytes); len(got) != 3 || got[1].Type() != TypeAuth {
		t.Fatalf("recorded client frames: %v", got)
	}

	// The client's bytes, replayed to a new server.
	replay := newScriptConn(clientBytes)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Server(ctx, replay, psConfig(k)); !errors.Is(err, ErrAuth) {
		t.Fatalf("replayed client: %v, want ErrAuth", err)
	}
	out := frames(t, replay.output())
	if len(out) != 2 || out[0].Type() != TypeWelcome {
		t.Fatalf("server answered the replay with %v", out)
	}
	if e, ok := out[1].(*Error); !ok || e.Code != CodeAuth || !e.Fatal {
		t.Fatalf("server's last word to the replay: %+v, want a fatal auth error", out[1])
	}
	// No disk list was sent to the replayer.
	for _, m := range out {
		if m.Type() == TypeDiskList {
			t.Fatal("the replayer got the disk list")
		}
	}

	// The server's bytes, replayed to a new client.
	replay = newScriptConn(serverBytes)
	if _, err := Client(ctx, replay, mtConfig(k)); !errors.Is(err, ErrAuth) {
		t.Fatalf("replayed server: %v, want ErrAuth", err)
	}
}

func TestVersionNegotiation(t *testing.T) {
	k := fixedKey
	for _, tc := range []struct {
		mt, ps []uint16
		want   uint16
	}{
		{[]uint16{1}, []uint16{1}, 1},
		{[]uint16{1, 2, 3}, []uint16{2, 3, 5}, 3},
		{[]uint16{3, 1, 2, 2}, []uint16{1, 2}, 2},
		{[]uint16{1}, []uint16{2}, 0},
		{[]uint16{4, 6}, []uint16{1, 5, 7}, 0},
	} {
		mcfg, pcfg := mtConfig(k), psConfig(k)
		mcfg.Versions, pcfg.Versions = tc.mt, tc.ps
		cn, sn := net.Pipe()
		c, s := handshakePair(t, cn, sn, mcfg, pcfg)
		if tc.want == 0 {
			if !errors.Is(c.err, ErrNoCommonVersion) || !errors.Is(s.err, ErrNoCommonVersion) {
				t.Errorf("%v vs %v: client %v, server %v; want ErrNoCommonVersion", tc.mt, tc.ps, c.err, s.err)
			}
			continue
		}
		if c.err != nil || s.err != nil {
			t.Fatalf("%v vs %v: client %v, server %v", tc.mt, tc.ps, c.err, s.err)
		}
		if c.c.Session().Version != tc.want || s.c.Session().Version != tc.want {
			t.Errorf("%v vs %v: versions %d and %d, want %d", tc.mt, tc.ps, c.c.Session().Version, s.c.Session().Version, tc.want)
		}
	}
}

func TestHandshakeRefusals(t *testing.T) {
	k := fixedKey
	// Two process servers.
	cn, sn := net.Pipe()
	c, s := handshakePair(t, cn, sn, psConfig(k), psConfig(k))
	if !errors.Is(c.err, ErrRole) || !errors.Is(s.err, ErrRole) {
		t.Errorf("same role: client %v, server %v", c.err, s.err)
	}
	// The master target refuses the pairing.
	refuse := mtConfig(k)
	refuse.Accept = func(Peer, []Disk) ([]Pair, error) { return nil, errors.New("no pair configured for ps-0001") }
	cn, sn = net.Pipe()
	c, s = handshakePair(t, cn, sn, refuse, psConfig(k))
	if !errors.Is(c.err, ErrRefused) || !errors.Is(s.err, ErrRefused) || !strings.Contains(s.err.Error(), "no pair configured") {
		t.Errorf("refused: client %v, server %v", c.err, s.err)
	}
	// The master target accepts a disk the list does not hold.
	bogus := mtConfig(k)
	bogus.Accept = func(Peer, []Disk) ([]Pair, error) { return []Pair{{Disk: 99, Start: StartFull}}, nil }
	cn, sn = net.Pipe()
	c, s = handshakePair(t, cn, sn, bogus, psConfig(k))
	if !errors.Is(c.err, ErrUnknownDisk) || s.err == nil {
		t.Errorf("bogus pair: client %v, server %v", c.err, s.err)
	}
	// Bad configurations fail before any byte is sent.
	for _, cfg := range []*Config{
		{Role: RoleProcessServer},
		{Key: k, Role: 0},
		{Key: k, Role: RoleMasterTarget},
		{Key: k, Role: RoleProcessServer, Disks: []Disk{{ID: 0, BlockSize: 512}}},
	} {
		sc := newScriptConn(nil)
		if _, err := Client(context.Background(), sc, cfg); err == nil || len(sc.output()) != 0 {
			t.Errorf("config %+v: %v, wrote %d bytes", cfg, err, len(sc.output()))
		}
	}
	if _, err := DeriveKey(""); err == nil {
		t.Error("empty passphrase accepted")
	}
}

// TestTLSServerNeedsCert: a TLS server that does not say which certificate
// it serves cannot bind it into the proofs, and refuses to start.
func TestTLSServerNeedsCert(t *testing.T) {
	certPEM, keyPEM, err := GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cn, sn := net.Pipe()
	defer cn.Close()
	defer sn.Close()
	go func() {
		tc := tls.Client(cn, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPN}, MinVersion: tls.VersionTLS13})
		if tc.Handshake() == nil {
			io.Copy(io.Discard, tc)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Server(ctx, tls.Server(sn, ServerTLSConfig(cert)), psConfig(fixedKey))
	if err == nil || !strings.Contains(err.Error(), "ServerCert") {
		t.Fatalf("TLS server without ServerCert: %v", err)
	}
}

func TestHandshakeDeadline(t *testing.T) {
	cn, sn := net.Pipe()
	defer cn.Close()
	defer sn.Close()
	go io.Copy(io.Discard, sn) // a peer that reads and never answers
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Client(ctx, cn, mtConfig(fixedKey))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent peer: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
	// Cancelled rather than timed out.
	cn2, sn2 := net.Pipe()
	defer cn2.Close()
	defer sn2.Close()
	go io.Copy(io.Discard, sn2)
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel2)
	if _, err := Server(ctx2, cn2, psConfig(fixedKey)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v, want context.Canceled", err)
	}
}

func TestKeyIsRedacted(t *testing.T) {
	k := fixedKey
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("handshake", "key", k)
	out := fmt.Sprintf("%v %+v %#v %x %s %d %q", k, k, k, k, k, k, k) + logged.String()
	for _, leak := range []string{"0102", "[1 2 3", "1, 2, 3", "\\x01"} {
		if strings.Contains(out, leak) {
			t.Fatalf("key leaks as %q: %s", leak, out)
		}
	}
	if !strings.Contains(logged.String(), "key=REDACTED") {
		t.Fatalf("log line: %s", logged.String())
	}
}

// TestReflectedProof: a server that does not know the key and sends the
// client's own proof back as its proof is refused (the two proofs carry
// different labels).
func TestReflectedProof(t *testing.T) {
	// Record a real server's Welcome with a known nonce, then play a fake
	// server that answers a client of known nonce with that client's own
	// proof.
	_, server := recordSeedSession(t)
	welcomeFrame := firstFrame(server)
	f, err := NewDecoder(bytes.NewReader(welcomeFrame)).ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	mcfg := mtConfig(fixedKey)
	mcfg.Rand = bytes.NewReader(seedClientNonce)
	hello, err := Marshal(&Hello{Versions: mcfg.versions(), Role: mcfg.Role, HostID: mcfg.HostID, HostName: mcfg.HostName, Nonce: [NonceSize]byte(seedClientNonce)})
	if err != nil {
		t.Fatal(err)
	}
	clientProof := proof(&mcfg.Key, labelClient, transcript(hello, f.Payload, Fingerprint{}))
	script := appendMessages(t, welcomeFrame, &Auth{Proof: clientProof}, &DiskList{Disks: testDisks})
	sc := newScriptConn(script)
	if _, err := Client(context.Background(), sc, mcfg); !errors.Is(err, ErrAuth) {
		t.Fatalf("reflected proof: %v, want ErrAuth", err)
	}
	// The client did send that very proof: the reflection was exact.
	out := frames(t, sc.output())
	if len(out) < 2 || out[1].(*Auth).Proof != clientProof {
		t.Fatalf("the client's proof was not the one reflected: %v", out)
	}
}

// A disk list with application-consistent intervals (version 2) reaches
// a version 2 master target whole; a version 1 one (an older build) is
// sent the list without them, byte for byte version 1's, and pairs as
// before. A list with none is version 1's bytes whatever the version.
func TestHandshakeDiskListAppConsistent(t *testing.T) {
	k := fixedKey
	for _, tc := range []struct {
		mt   []uint16
		want []time.Duration
	}{
		{nil, []time.Duration{time.Hour, 0, 90 * time.Second}},
		{[]uint16{1}, []time.Duration{0, 0, 0}},
	} {
		mcfg, pcfg := mtConfig(k), psConfig(k)
		mcfg.Versions, pcfg.Disks = tc.mt, testDisksApp
		cn, sn := net.Pipe()
		c, s := handshakePair(t, cn, sn, mcfg, pcfg)
		if c.err != nil || s.err != nil {
			t.Fatalf("mt %v: client %v, server %v", tc.mt, c.err, s.err)
		}
		for i, d := range c.c.Session().Disks {
			if d.AppConsistentInterval != tc.want[i] || s.c.Session().Disks[i].AppConsistentInterval != tc.want[i] {
				t.Errorf("mt %v: disk %s: %v (server %v), want %v", tc.mt, d.Name, d.AppConsistentInterval, s.c.Session().Disks[i].AppConsistentInterval, tc.want[i])
			}
		}
		c.c.Close()
		s.c.Close()
	}
	v1, _ := Marshal(&DiskList{Disks: testDisks})
	stripped, _ := Marshal((&DiskList{Disks: testDisksApp}).WithoutV2())
	with, _ := Marshal(&DiskList{Disks: testDisksApp})
	if !bytes.Equal(v1, stripped) || len(with) != len(v1)+4+4*len(testDisksApp) {
		t.Fatalf("encodings: v1 %d bytes, stripped %d, with intervals %d", len(v1), len(stripped), len(with))
	}
	if _, err := Marshal(&DiskList{Disks: []Disk{{ID: 1, BlockSize: 512, AppConsistentInterval: 1500 * time.Millisecond}}}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("1.5 s interval: %v, want ErrMalformed", err)
	}
}
