package hostconfig

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mtconsole/mtconsole/internal/backoff"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// Errors of the client; each carries what to do in its message.
var (
	ErrUnreachable        = errors.New("configuration server unreachable")
	ErrPassphraseRejected = errors.New("passphrase rejected")
	ErrClockSkew          = errors.New("clock skew")
	ErrReplay             = errors.New("request replayed")
	ErrRateLimited        = errors.New("too many failed attempts")
	ErrNotRegistered      = errors.New("host not registered")
	ErrUntrusted          = errors.New("certificate not trusted")
	ErrCertChanged        = errors.New("certificate changed")
	ErrBadReply           = errors.New("reply not signed by the configuration server")
	ErrVerify             = errors.New("registration differs on the server")
)

// CertChangedError is a configuration-server certificate that differs from
// the pinned one. errors.Is matches ErrCertChanged.
type CertChangedError struct {
	Addr     string
	Pinned   wire.Fingerprint
	Received wire.Fingerprint
	File     string // the trust file
}

func (e *CertChangedError) Error() string {
	return fmt.Sprintf("the certificate of configuration server %s has changed: pinned %s, presented %s; "+
		"someone could be intercepting the connection, or the server was set up again (mtconsole cs init makes a new certificate); "+
		"if it was, compare the new fingerprint with the one `mtconsole cs serve` prints, then run `mtconsole register --forget-cert` (or remove %s from %s) and register again",
		e.Addr, e.Pinned, e.Received, e.Addr, e.File)
}

// Is matches ErrCertChanged.
func (e *CertChangedError) Is(target error) bool { return target == ErrCertChanged }

// ClockSkewError is a request refused because this host's clock and the
// server's differ by more than ReplayWindow.
type ClockSkewError struct {
	Addr   string
	Diff   time.Duration // server - local
	Server time.Time
}

func (e *ClockSkewError) Error() string {
	return fmt.Sprintf("clock differs by %s from the configuration server %s (server %s, here %s; at most %s allowed): "+
		"set the time on both (timedatectl set-ntp true, or chronyc makestep)",
		humanDuration(e.Diff), e.Addr, e.Server.UTC().Format("15:04:05 UTC"), e.Server.Add(-e.Diff).UTC().Format("15:04:05 UTC"), humanDuration(ReplayWindow))
}

// Is matches ErrClockSkew.
func (e *ClockSkewError) Is(target error) bool { return target == ErrClockSkew }

func humanDuration(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	if d >= time.Minute {
		return fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
	}
	return fmt.Sprintf("%d s", int(d.Round(time.Second)/time.Second))
}

// ConfirmFunc decides whether to trust a configuration server's
// certificate seen for the first time, after the server proved it knows
// the passphrase (show fp to the admin). Nil trusts it on that proof.
type ConfirmFunc func(addr string, fp wire.Fingerprint) bool

// ClientOptions configure a Client.
type ClientOptions struct {
	Addr   string // host:port of the configuration server
	HTTPS  bool
	Key    SigningKey
	HostID string
	// Trust pins the server's certificate (required with HTTPS).
	Trust   *wire.TrustStore
	Confirm ConfirmFunc
	// Now is the clock requests are stamped with (time.Now if nil).
	Now func() time.Time
	// Timeout bounds each request (10 s if 0).
	Timeout time.Duration
}

// Client talks to the configuration server for one host. Each request is
// one connection: the certificate the connection presents is the one the
// request's signature covers.
type Client struct {
	o ClientOptions
}

// NewClient checks opts and makes a Client.
func NewClient(o ClientOptions) (*Client, error) {
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return nil, fmt.Errorf("configuration server address %q: want host:port", o.Addr)
	}
	if o.HTTPS && o.Trust == nil {
		return nil, errors.New("hostconfig: a trust store is needed with HTTPS")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return &Client{o: o}, nil
}

// Addr is the server's host:port.
func (c *Client) Addr() string { return c.o.Addr }

// Login tests the connection: the server is reachable, speaks this
// protocol, holds the passphrase and agrees on the time. On first use
// with HTTPS it pins the server's certificate (after Confirm) and returns
// its fingerprint.
func (c *Client) Login(ctx context.Context) (LoginReply, wire.Fingerprint, error) {
	var r LoginReply
	fp, err := c.do(ctx, http.MethodPost, "/v1/login", ActionLogin, struct{}{}, &r)
	return r, fp, err
}

// Register registers (or updates) the host.
func (c *Client) Register(ctx context.Context, info HostInfo) (Host, error) {
	var h Host
	_, err := c.trusted(ctx, http.MethodPut, "/v1/hosts/"+info.ID, ActionRegister, info, &h)
	return h, err
}

// Get reads a host back.
func (c *Client) Get(ctx context.Context, id string) (Host, error) {
	var h Host
	_, err := c.trusted(ctx, http.MethodGet, "/v1/hosts/"+id, ActionGet, nil, &h)
	return h, err
}

// Verify reads this host back and checks that the server holds what
// was registered.
func (c *Client) Verify(ctx context.Context, info HostInfo) (Host, error) {
	h, err := c.Get(ctx, info.ID)
	if err != nil {
		return h, err
	}
	var diffs []string
	if h.Hostname != info.Hostname {
		diffs = append(diffs, fmt.Sprintf("hostname %q, here %q", h.Hostname, info.Hostname))
	}
	if h.Role != info.Role {
		diffs = append(diffs, fmt.Sprintf("role %q, here %q", h.Role, info.Role))
	}
	if h.NATHostname != info.NATHostname || h.NATIP != info.NATIP {
		diffs = append(diffs, fmt.Sprintf("NAT %q/%q, here %q/%q", h.NATHostname, h.NATIP, info.NATHostname, info.NATIP))
	}
	if len(diffs) > 0 {
		return h, fmt.Errorf("%w: %s: register again", ErrVerify, strings.Join(diffs, "; "))
	}
	return h, nil
}

// Heartbeat tells the server the host is alive.
func (c *Client) Heartbeat(ctx context.Context) (Host, error) {
	var h Host
	_, err := c.trusted(ctx, http.MethodPost, "/v1/hosts/"+c.o.HostID+"/heartbeat", ActionHeartbeat, struct{}{}, &h)
	return h, err
}

// Unregister asks the server to forget the host.
func (c *Client) Unregister(ctx context.Context) error {
	_, err := c.trusted(ctx, http.MethodDelete, "/v1/hosts/"+c.o.HostID, ActionUnregister, nil, nil)
	return err
}

// Hosts lists every registered host.
func (c *Client) Hosts(ctx context.Context) ([]Host, error) {
	var hs []Host
	_, err := c.trusted(ctx, http.MethodGet, "/v1/hosts", ActionList, nil, &hs)
	return hs, err
}

// ProcessServers lists the process servers with their data addresses
// and certificate fingerprints.
func (c *Client) ProcessServers(ctx context.Context) ([]ProcessServer, error) {
	var ps []ProcessServer
	_, err := c.trusted(ctx, http.MethodGet, "/v1/process-servers", ActionProcessServers, nil, &ps)
	return ps, err
}

// RetryInterval bounds the wait after a failed heartbeat: a server back
// up is seen again within it, not a whole HeartbeatInterval later.
const RetryInterval = 30 * time.Second

// Beat is the outcome of one heartbeat of RunHeartbeats.
type Beat struct {
	At           time.Time // when it was sent (the client's clock)
	Host         Host      // the server's record of the host, when Err is nil
	ReRegistered bool      // the server had forgotten the host: it was registered again
	Err          error
}

// RunHeartbeats sends a heartbeat at once and then every interval until
// ctx ends, registering info again when the server no longer knows the
// host (as the original re-registered every RegisterHostInterval). After
// a failure it tries again within RetryInterval, after a wait drawn with
// full jitter (internal/backoff) so that the master targets of a restarted
// configuration server do not all come back in the same instant. Each
// outcome goes to report (which may be nil); it keeps trying.
func (c *Client) RunHeartbeats(ctx context.Context, interval time.Duration, info HostInfo, report func(Beat)) {
	if interval <= 0 {
		interval = HeartbeatInterval
	}
	retry := backoff.New(min(interval, RetryInterval)/8, min(interval, RetryInterval))
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		b := Beat{At: c.o.Now()}
		b.Host, b.Err = c.Heartbeat(ctx)
		if errors.Is(b.Err, ErrNotRegistered) {
			b.Host, b.Err = c.Register(ctx, info)
			b.ReRegistered = b.Err == nil
		}
		if ctx.Err() != nil {
			return
		}
		if report != nil {
			report(b)
		}
		if b.Err != nil {
			t.Reset(retry.Next())
		} else {
			retry.Reset()
			t.Reset(interval)
		}
	}
}

// Problem names the kind of a client error in a few words, for a status
// line: "unreachable", "passphrase rejected", "clock skew", "certificate
// changed", "certificate not trusted", "not registered", "rate limited",
// "replayed", "bad reply", "registration differs", or "error".
func Problem(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{
		{ErrUnreachable, "unreachable"}, {ErrPassphraseRejected, "passphrase rejected"}, {ErrClockSkew, "clock skew"},
		{ErrCertChanged, "certificate changed"}, {ErrUntrusted, "certificate not trusted"}, {ErrNotRegistered, "not registered"},
		{ErrRateLimited, "rate limited"}, {ErrReplay, "replayed"}, {ErrBadReply, "bad reply"}, {ErrVerify, "registration differs"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "error"
}

// trusted is do for every action but login: with HTTPS and no pinned
// certificate yet, it logs in first, so nothing is sent to a server
// whose certificate is not trusted.
func (c *Client) trusted(ctx context.Context, method, path, action string, in, out any) (wire.Fingerprint, error) {
	if c.o.HTTPS {
		_, ok, err := c.o.Trust.Lookup(c.o.Addr)
		if err != nil {
			return wire.Fingerprint{}, err
		}
		if !ok {
			if _, _, err := c.Login(ctx); err != nil {
				return wire.Fingerprint{}, err
			}
		}
	}
	return c.do(ctx, method, path, action, in, out)
}

const maxReply = 4 << 20

// do sends one signed request on a fresh connection and checks the
// reply's signature before believing anything in it.
func (c *Client) do(ctx context.Context, method, path, action string, in, out any) (fp wire.Fingerprint, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	var body []byte
	if in != nil {
		if body, err = json.Marshal(in); err != nil {
			return fp, fmt.Errorf("hostconfig: encode %s: %w", action, err)
		}
	}
	conn, err := c.dial(ctx)
	if err != nil {
		return fp, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	pinned, havePin := wire.Fingerprint{}, false
	if c.o.HTTPS {
		tc := tls.Client(conn, &tls.Config{
			MinVersion: tls.VersionTLS12,
			ServerName: hostOf(c.o.Addr),
			// The chain is not checked against CAs: the certificate is
			// pinned below, and trusted on first use only once the reply
			// proves the server holds the passphrase and saw it too.
			InsecureSkipVerify: true,
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			if strings.Contains(err.Error(), "first record does not look like a TLS handshake") {
				return fp, fmt.Errorf("%w: %s does not speak TLS: is HTTPS off on the server? (then use --https=false)", ErrUnreachable, c.o.Addr)
			}
			return fp, fmt.Errorf("%w: TLS with %s failed: %v", ErrUnreachable, c.o.Addr, err)
		}
		fp = wire.CertFingerprint(tc.ConnectionState().PeerCertificates[0].Raw)
		if pinned, havePin, err = c.o.Trust.Lookup(c.o.Addr); err != nil {
			return fp, err
		}
		if havePin && pinned != fp {
			// refused before anything is sent
			return fp, &CertChangedError{Addr: c.o.Addr, Pinned: pinned, Received: fp, File: c.o.Trust.Path()}
		}
		conn = tc
	}
	sum := sha256.Sum256(body)
	sreq := Request{Method: method, Path: path, Action: action, Host: c.o.HostID, Nonce: NewNonce(),
		Time: c.o.Now(), Cert: fp, BodyHash: sum}
	sig := sreq.Sign(c.o.Key)
	scheme := "http"
	if c.o.HTTPS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+c.o.Addr+path, bytes.NewReader(body))
	if err != nil {
		return fp, fmt.Errorf("hostconfig: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mtconsole-hostconfig")
	req.Header.Set(HeaderHost, c.o.HostID)
	req.Header.Set(HeaderAction, action)
	req.Header.Set(HeaderNonce, sreq.Nonce)
	req.Header.Set(HeaderTime, strconv.FormatInt(sreq.Time.Unix(), 10))
	req.Header.Set(HeaderSignature, sig)
	req.Close = true
	if err := req.Write(conn); err != nil {
		return fp, fmt.Errorf("%w: sending to %s: %v", ErrUnreachable, c.o.Addr, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		return fp, fmt.Errorf("%w: no HTTP answer from %s (%v): is it an mtconsole configuration server, and is HTTPS set as on the server?", ErrUnreachable, c.o.Addr, err)
	}
	defer resp.Body.Close()
	rbody, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fp, fmt.Errorf("%w: reading the answer of %s: %v", ErrUnreachable, c.o.Addr, err)
	}
	var er ErrorReply
	if resp.StatusCode >= 300 {
		_ = json.Unmarshal(rbody, &er)
	}
	rsig := resp.Header.Get(HeaderReplySignature)
	if rsig == "" {
		// Unsigned: the server could not check our signature, or it is not
		// a configuration server. Believe nothing but the kind of refusal.
		switch {
		case resp.StatusCode == http.StatusUnauthorized && er.Code == CodeBadSignature:
			return fp, fmt.Errorf("%w by the configuration server %s: it holds a different passphrase; copy it again from the server "+
				"(`mtconsole cs init` printed it; it is in the server's connection.passphrase)", ErrPassphraseRejected, c.o.Addr)
		case resp.StatusCode == http.StatusTooManyRequests:
			return fp, fmt.Errorf("%w from this host: the configuration server %s refuses it for %d s; check the passphrase, then try again", ErrRateLimited, c.o.Addr, er.RetryAfter)
		}
		return fp, fmt.Errorf("%w: %s answered %s without a signature: it is not an mtconsole configuration server (check the address, port and HTTPS), or something between intercepts the connection",
			ErrBadReply, c.o.Addr, resp.Status)
	}
	rt, err := strconv.ParseInt(resp.Header.Get(HeaderTime), 10, 64)
	if err != nil {
		return fp, fmt.Errorf("%w: %s: bad %s header", ErrBadReply, c.o.Addr, HeaderTime)
	}
	serverTime := time.Unix(rt, 0)
	want := Reply{RequestSignature: sig, Status: resp.StatusCode, Time: serverTime, Cert: fp, BodyHash: sha256.Sum256(rbody)}.Sign(c.o.Key)
	if !SignatureEqual(want, rsig) {
		return fp, fmt.Errorf("%w: the reply of %s does not prove it holds the passphrase for the certificate %s: "+
			"something between you and the server may be intercepting the connection; nothing was trusted", ErrBadReply, c.o.Addr, fp)
	}
	// The server holds the passphrase and saw the certificate fp: now
	// (and only now) a first-seen certificate may be pinned.
	if c.o.HTTPS && !havePin {
		if c.o.Confirm != nil && !c.o.Confirm(c.o.Addr, fp) {
			return fp, fmt.Errorf("%w: the certificate %s of %s was not confirmed; nothing was saved", ErrUntrusted, fp, c.o.Addr)
		}
		if err := c.o.Trust.Pin(c.o.Addr, fp); err != nil {
			return fp, err
		}
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && er.Code == CodeClockSkew:
		st := time.Unix(er.ServerTime, 0)
		return fp, &ClockSkewError{Addr: c.o.Addr, Diff: st.Sub(sreq.Time), Server: st}
	case er.Code == CodeReplay:
		return fp, fmt.Errorf("%w: the configuration server %s has seen this request before: %s", ErrReplay, c.o.Addr, er.Error)
	case resp.StatusCode == http.StatusNotFound:
		return fp, fmt.Errorf("%w: the configuration server %s does not know host %s: register it (mtconsole register)", ErrNotRegistered, c.o.Addr, c.o.HostID)
	case resp.StatusCode >= 300:
		return fp, fmt.Errorf("configuration server %s refused %s (%s): %s", c.o.Addr, action, resp.Status, er.Error)
	}
	if out != nil {
		if err := json.Unmarshal(rbody, out); err != nil {
			return fp, fmt.Errorf("%w: %s: the answer to %s is not what was expected: %v", ErrBadReply, c.o.Addr, action, err)
		}
	}
	return fp, nil
}

// dial connects, turning the usual failures into what to do.
func (c *Client) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.o.Addr)
	if err == nil {
		return conn, nil
	}
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w: cannot reach %s: connection refused — is the port open and the configuration server running (mtconsole cs serve)?", ErrUnreachable, c.o.Addr)
	case errors.As(err, &dnsErr):
		return nil, fmt.Errorf("%w: cannot resolve %s: %v — check the name or give the IP address", ErrUnreachable, hostOf(c.o.Addr), dnsErr.Err)
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("%w: cannot reach %s: no answer within %s — is a firewall dropping the port?", ErrUnreachable, c.o.Addr, c.o.Timeout)
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		return nil, fmt.Errorf("%w: cannot reach %s: no route to the host — check the address and this host's network", ErrUnreachable, c.o.Addr)
	}
	return nil, fmt.Errorf("%w: cannot reach %s: %v", ErrUnreachable, c.o.Addr, err)
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}
