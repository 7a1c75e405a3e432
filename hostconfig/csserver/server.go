package csserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// Rate limiting of failed attempts, per remote IP address.
const (
	DefaultMaxFailures = 5           // failed signatures allowed per FailureWindow
	FailureWindow      = time.Minute // failures older than this are forgotten
	BlockFor           = time.Minute // how long an address that exceeded them is refused
)

// Options configure a Server.
type Options struct {
	Key   hostconfig.SigningKey
	Cert  wire.Fingerprint // the TLS certificate served; zero over plain HTTP
	Store *Store
	// Now is the server's clock (time.Now if nil): tests move it to see
	// hosts go lost and requests go stale.
	Now         func() time.Time
	Log         *slog.Logger // slog.Default() if nil
	MaxFailures int          // DefaultMaxFailures if 0
	Version     string
}

// Server is the configuration server's HTTP handler.
type Server struct {
	o   Options
	mux *http.ServeMux

	mu       sync.Mutex
	nonces   map[string]time.Time // nonce → when it may be forgotten
	failures map[string][]time.Time
	blocked  map[string]time.Time // ip → until
	lost     map[string]bool      // hosts already reported lost
}

// New makes a Server.
func New(o Options) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = DefaultMaxFailures
	}
	s := &Server{o: o, mux: http.NewServeMux(), nonces: map[string]time.Time{}, failures: map[string][]time.Time{},
		blocked: map[string]time.Time{}, lost: map[string]bool{}}
	s.handle("POST /v1/login", hostconfig.ActionLogin, s.login)
	s.handle("PUT /v1/hosts/{id}", hostconfig.ActionRegister, s.register)
	s.handle("GET /v1/hosts/{id}", hostconfig.ActionGet, s.get)
	s.handle("POST /v1/hosts/{id}/heartbeat", hostconfig.ActionHeartbeat, s.heartbeat)
	s.handle("DELETE /v1/hosts/{id}", hostconfig.ActionUnregister, s.unregister)
	s.handle("GET /v1/hosts", hostconfig.ActionList, s.list)
	s.handle("GET /v1/process-servers", hostconfig.ActionProcessServers, s.processServers)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, hostconfig.ErrorReply{Code: hostconfig.CodeNotFound, Error: "no such API path: " + r.URL.Path})
	})
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// reply is a handler's answer: a status and a JSON body.
type reply struct {
	status int
	body   any
}

func errReply(status int, code, msg string) reply {
	return reply{status, hostconfig.ErrorReply{Code: code, Error: msg}}
}

// call is one authenticated request.
type call struct {
	r      *http.Request
	host   string // the signed host id
	body   []byte
	remote string
	now    time.Time
}

// handle registers an authenticated route: the signature is checked
// before anything else is believed, then the time window and the nonce.
// Every answer after a good signature is signed.
func (s *Server) handle(pattern, action string, fn func(call) reply) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		now := s.o.Now()
		ip := remoteIP(r)
		if until, ok := s.isBlocked(ip, now); ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(until.Sub(now).Seconds())+1))
			writeJSON(w, http.StatusTooManyRequests, hostconfig.ErrorReply{Code: hostconfig.CodeRateLimited,
				Error: "too many failed attempts from " + ip, RetryAfter: int(until.Sub(now).Seconds()) + 1})
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20+1))
		if err != nil || len(body) > 1<<20 {
			writeJSON(w, http.StatusBadRequest, hostconfig.ErrorReply{Code: hostconfig.CodeBadRequest, Error: "body unreadable or over 1 MiB"})
			return
		}
		sig := r.Header.Get(hostconfig.HeaderSignature)
		ts, terr := strconv.ParseInt(r.Header.Get(hostconfig.HeaderTime), 10, 64)
		req := hostconfig.Request{Method: r.Method, Path: r.URL.Path, Action: r.Header.Get(hostconfig.HeaderAction),
			Host: r.Header.Get(hostconfig.HeaderHost), Nonce: r.Header.Get(hostconfig.HeaderNonce), Time: time.Unix(ts, 0),
			Cert: s.o.Cert, BodyHash: sha256.Sum256(body)}
		if sig == "" || terr != nil || !hostconfig.ValidNonce(req.Nonce) || !hostconfig.SignatureEqual(req.Sign(s.o.Key), sig) {
			// Wrong passphrase, or a relay that shows its own certificate
			// (the signature covers the one the client saw): the same
			// refusal, unsigned, and one more failure for this address.
			s.fail(ip, now)
			s.o.Log.Warn("cs: signature rejected", "remote", ip, "path", r.URL.Path, "host", req.Host)
			writeJSON(w, http.StatusUnauthorized, hostconfig.ErrorReply{Code: hostconfig.CodeBadSignature,
				Error: "signature rejected: the passphrase differs from the server's, or the connection is relayed"})
			return
		}
		s.succeed(ip)
		var rep reply
		switch d := now.Sub(req.Time); {
		case req.Action != action:
			rep = errReply(http.StatusBadRequest, hostconfig.CodeBadRequest, fmt.Sprintf("action %q does not match %s %s (want %q)", req.Action, r.Method, r.URL.Path, action))
		case d > hostconfig.ReplayWindow || d < -hostconfig.ReplayWindow:
			s.o.Log.Warn("cs: clock skew", "remote", ip, "host", req.Host, "skew", d.Round(time.Second).String())
			rep = reply{http.StatusUnauthorized, hostconfig.ErrorReply{Code: hostconfig.CodeClockSkew, ServerTime: now.Unix(),
				Error: fmt.Sprintf("request time differs from the server's clock by %s (at most %s)", d.Round(time.Second), hostconfig.ReplayWindow)}}
		case !s.freshNonce(req.Nonce, now):
			s.o.Log.Warn("cs: replayed request refused", "remote", ip, "host", req.Host, "path", r.URL.Path)
			rep = errReply(http.StatusConflict, hostconfig.CodeReplay, "nonce already used: request refused")
		default:
			rep = fn(call{r: r, host: req.Host, body: body, remote: ip, now: now})
		}
		s.writeSigned(w, sig, rep)
	})
}

// writeSigned answers with a reply signature over the request's signature,
// the status, the server's clock, its certificate and the body.
func (s *Server) writeSigned(w http.ResponseWriter, reqSig string, rep reply) {
	b, err := json.Marshal(rep.body)
	if err != nil {
		rep = errReply(http.StatusInternalServerError, hostconfig.CodeInternal, "encode reply: "+err.Error())
		b, _ = json.Marshal(rep.body)
	}
	b = append(b, '\n')
	now := s.o.Now()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(hostconfig.HeaderTime, strconv.FormatInt(now.Unix(), 10))
	w.Header().Set(hostconfig.HeaderReplySignature, hostconfig.Reply{RequestSignature: reqSig, Status: rep.status,
		Time: time.Unix(now.Unix(), 0), Cert: s.o.Cert, BodyHash: sha256.Sum256(b)}.Sign(s.o.Key))
	w.WriteHeader(rep.status)
	_, _ = w.Write(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func remoteIP(r *http.Request) string {
	h, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return h
}

// freshNonce records nonce and reports whether it was new. Nonces are
// kept for twice the replay window: a request older than that is refused
// by its time, so none can come back.
func (s *Server) freshNonce(nonce string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.nonces) > 4096 {
		for n, until := range s.nonces {
			if now.After(until) {
				delete(s.nonces, n)
			}
		}
	}
	if until, ok := s.nonces[nonce]; ok && !now.After(until) {
		return false
	}
	s.nonces[nonce] = now.Add(2 * hostconfig.ReplayWindow)
	return true
}

func (s *Server) isBlocked(ip string, now time.Time) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	until, ok := s.blocked[ip]
	if ok && now.Before(until) {
		return until, true
	}
	delete(s.blocked, ip)
	return time.Time{}, false
}

func (s *Server) fail(ip string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var recent []time.Time
	for _, t := range s.failures[ip] {
		if now.Sub(t) < FailureWindow {
			recent = append(recent, t)
		}
	}
	recent = append(recent, now)
	s.failures[ip] = recent
	if len(recent) >= s.o.MaxFailures {
		s.blocked[ip] = now.Add(BlockFor)
		delete(s.failures, ip)
		s.o.Log.Warn("cs: too many failed attempts: address refused", "remote", ip, "for", BlockFor.String())
	}
}

func (s *Server) succeed(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failures, ip)
}

func (s *Server) login(c call) reply {
	known := false
	if c.host != "" {
		_, known, _ = s.o.Store.Get(c.host)
	}
	return reply{http.StatusOK, hostconfig.LoginReply{Server: "mtconsole configuration server", Version: s.o.Version, Time: c.now.UTC(), Registered: known}}
}

// pathHost checks that the path's host id is the signed one: a host
// registers, beats and unregisters only itself.
func pathHost(c call) (string, *reply) {
	id := c.r.PathValue("id")
	if id != c.host {
		r := errReply(http.StatusBadRequest, hostconfig.CodeBadRequest, fmt.Sprintf("host %q in the path is not the signed host %q", id, c.host))
		return "", &r
	}
	return id, nil
}

func (s *Server) register(c call) reply {
	id, bad := pathHost(c)
	if bad != nil {
		return *bad
	}
	var info hostconfig.HostInfo
	dec := json.NewDecoder(bytes.NewReader(c.body))
	if err := dec.Decode(&info); err != nil {
		return errReply(http.StatusBadRequest, hostconfig.CodeBadRequest, "host info: "+err.Error())
	}
	if err := checkInfo(id, info); err != nil {
		return errReply(http.StatusBadRequest, hostconfig.CodeBadRequest, err.Error())
	}
	old, found, err := s.o.Store.Get(id)
	if err != nil {
		return errReply(http.StatusInternalServerError, hostconfig.CodeInternal, err.Error())
	}
	h := hostconfig.Host{HostInfo: info, State: hostconfig.StateRegistered, RegisteredAt: c.now.UTC(), LastHeartbeat: c.now.UTC(), RemoteAddr: c.remote}
	if found {
		h.RegisteredAt = old.RegisteredAt
	}
	if err := s.o.Store.Put(h); err != nil {
		return errReply(http.StatusInternalServerError, hostconfig.CodeInternal, err.Error())
	}
	s.setLost(id, false)
	s.o.Log.Info("cs: host registered", "host", id, "hostname", info.Hostname, "role", info.Role, "remote", c.remote, "again", found)
	return reply{http.StatusOK, h}
}

func checkInfo(id string, info hostconfig.HostInfo) error {
	if info.ID != id {
		return fmt.Errorf("host info id %q is not the path's %q", info.ID, id)
	}
	if len(id) != 36 {
		return fmt.Errorf("host id %q is not a UUID", id)
	}
	if info.Hostname == "" || len(info.Hostname) > hostconfig.MaxHostLen {
		return fmt.Errorf("hostname %q: want 1-%d characters", info.Hostname, hostconfig.MaxHostLen)
	}
	if info.Role != hostconfig.RoleMasterTarget && info.Role != hostconfig.RoleProcessServer {
		return fmt.Errorf("role %q: want %s or %s", info.Role, hostconfig.RoleMasterTarget, hostconfig.RoleProcessServer)
	}
	if info.Role == hostconfig.RoleProcessServer && info.DataFingerprint != "" {
		if _, err := wire.ParseFingerprint(info.DataFingerprint); err != nil {
			return fmt.Errorf("data fingerprint: %v", err)
		}
	}
	return nil
}

func (s *Server) get(c call) reply {
	id := c.r.PathValue("id")
	h, found, err := s.o.Store.Get(id)
	if err != nil {
		return errReply(http.StatusInternalServerError, hostconfig.CodeInternal, err.Error())
	}
	if !found {
		return errReply(http.StatusNotFound, hostconfig.CodeNotFound, "host "+id+" is not registered")
	}
	h.State = stateAt(h, c.now)
	return reply{http.StatusOK, h}
}

func (s *Server) heartbeat(c call) reply {
	id, bad := pathHost(c)
	if bad != nil {
		return *bad
	}
	h, found, err := s.o.Store.Get(id)
	if err != nil {
		return errReply(http.StatusInternalServerError, hostconfig.CodeInternal, err.Error())
	}
	if !found {
		return errReply(http.StatusNotFound, hostconfig.CodeNotFound, "host "+id+" is not registered")
	}
	if stateAt(h, c.now) == hostconfig.StateLost {
		s.o.Log.Info("cs: host back", "host", id, "hostname", h.Hostname, "silent", c.now.Sub(h.LastHeartbeat).Round(time.Second).String())
	}
	h.LastHeartbeat, h.State, h.RemoteAddr = c.now.UTC(), hostconfig.StateRegistered, c.remote
	if err := s.o.Store.Put(h); err != nil {
		return errReply(http.StatusInternalServerError, hostconfig.CodeInternal, err.Error())
	}
	s.setLost(id, false)
	return reply{http.StatusOK, h}
}

func (s *Server) unregister(c call) reply {
	id, bad := pathHost(c)
	if bad != nil {
		return *bad
	}
	found, err := s.o.Store.Delete(id)
	if err != nil {
		return errReply(http.StatusInternalServerError, hostconfig.CodeInternal, err.Error())
	}
	if !found {
		return errReply(http.StatusNotFound, hostconfig.CodeNotFound, "host "+id+" is not registered")
	}
	s.setLost(id, false)
	s.o.Log.Info("cs: host unregistered", "host", id, "remote", c.remote)
	return reply{http.StatusOK, struct{}{}}
}

func (s *Server) list(c call) reply {
	hs, err := s.o.Store.List()
	if err != nil {
		return errReply(http.StatusInternalServerError, hostconfig.CodeInternal, err.Error())
	}
	if hs == nil {
		hs = []hostconfig.Host{}
	}
	return reply{http.StatusOK, WithState(hs, c.now)}
}

func (s *Server) processServers(c call) reply {
	hs, err := s.o.Store.List()
	if err != nil {
		return errReply(http.StatusInternalServerError, hostconfig.CodeInternal, err.Error())
	}
	pss := []hostconfig.ProcessServer{}
	for _, h := range WithState(hs, c.now) {
		if h.Role == hostconfig.RoleProcessServer && h.DataAddr != "" {
			pss = append(pss, hostconfig.ProcessServer{ID: h.ID, Hostname: h.Hostname, DataAddr: h.DataAddr,
				DataFingerprint: h.DataFingerprint, State: h.State})
		}
	}
	return reply{http.StatusOK, pss}
}

func (s *Server) setLost(id string, lost bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if lost {
		s.lost[id] = true
	} else {
		delete(s.lost, id)
	}
}

// Sweep finds hosts silent for more than hostconfig.LostAfter, logs each
// the first time it goes lost, and returns their ids.
func (s *Server) Sweep() ([]string, error) {
	hs, err := s.o.Store.List()
	if err != nil {
		return nil, err
	}
	now := s.o.Now()
	var newly []string
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range hs {
		if stateAt(h, now) == hostconfig.StateLost && !s.lost[h.ID] {
			s.lost[h.ID] = true
			newly = append(newly, h.ID)
			s.o.Log.Warn("cs: host lost: no heartbeat", "host", h.ID, "hostname", h.Hostname,
				"silent", now.Sub(h.LastHeartbeat).Round(time.Second).String(), "after", hostconfig.LostAfter.String())
		}
	}
	return newly, nil
}

// Run serves on ln (TLS with cert when it is not nil) until ctx ends,
// sweeping for lost hosts every sweepEvery (30 s if 0).
func (s *Server) Run(ctx context.Context, ln net.Listener, cert *tls.Certificate, sweepEvery time.Duration) error {
	if sweepEvery <= 0 {
		sweepEvery = 30 * time.Second
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(s.o.Log.Handler(), slog.LevelDebug)}
	if cert != nil {
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}}
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = srv.Shutdown(sctx)
				cancel()
				return
			case <-t.C:
				if _, err := s.Sweep(); err != nil {
					s.o.Log.Error("cs: sweep", "err", err)
				}
			}
		}
	}()
	err := srv.Serve(ln)
	cancel()
	<-done
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
