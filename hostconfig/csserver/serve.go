package csserver

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// AddrFile is where Serve writes the address it listens on, so that
// Hosts (cs hosts) finds the running server.
func (d Dir) AddrFile() string { return filepath.Join(string(d), "serve.addr") }

// Running is a configuration server running in this process.
type Running struct {
	Addr string           // where it listens
	FP   wire.Fingerprint // its certificate's; zero over plain HTTP
	done chan error
}

// Serve serves the configuration server of d (made by Init) on ln until
// ctx ends, and writes where it listens in d.AddrFile() for Hosts: what
// cs serve runs, and the demo. It takes ln, closed when it ends; the
// address file is removed then.
func Serve(ctx context.Context, d Dir, ln net.Listener, https bool, log *slog.Logger, version string) (*Running, error) {
	key, cert, fp, err := Load(d)
	if err != nil {
		ln.Close()
		return nil, err
	}
	st, err := OpenStore(d.Store(), false)
	if err != nil {
		ln.Close()
		return nil, err
	}
	var certp *tls.Certificate
	if https {
		certp = &cert
	} else {
		fp = wire.Fingerprint{}
	}
	srv := New(Options{Key: key, Cert: fp, Store: st, Log: log, Version: version})
	af := d.AddrFile()
	if err := os.WriteFile(af, []byte(ln.Addr().String()+"\n"), 0o600); err != nil {
		ln.Close()
		st.Close()
		return nil, err
	}
	log.Info("cs serve started", "addr", ln.Addr().String(), "dir", string(d))
	s := &Running{Addr: ln.Addr().String(), FP: fp, done: make(chan error, 1)}
	go func() {
		err := srv.Run(ctx, ln, certp, 0)
		os.Remove(af)
		if cerr := st.Close(); err == nil {
			err = cerr
		}
		s.done <- err
	}()
	return s, nil
}

// Wait waits for the server to stop (its context ended) and returns why.
func (s *Running) Wait() error { return <-s.done }

// Hosts lists the hosts registered with the server of d, with their
// state: it asks the running server (at addr, or where Serve wrote it),
// or reads the store when none runs.
func Hosts(ctx context.Context, d Dir, addr string) ([]hostconfig.Host, error) {
	if addr == "" {
		if b, err := os.ReadFile(d.AddrFile()); err == nil {
			addr = strings.TrimSpace(string(b))
		}
	}
	if addr == "" {
		st, err := OpenStore(d.Store(), true)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		hs, err := st.List()
		if hs == nil {
			hs = []hostconfig.Host{}
		}
		return WithState(hs, time.Now()), err
	}
	if h, p, err := net.SplitHostPort(addr); err == nil && (h == "" || h == "0.0.0.0" || h == "::") {
		addr = net.JoinHostPort("127.0.0.1", p)
	}
	key, _, fp, err := Load(d)
	if err != nil {
		return nil, err
	}
	// The server is ours: pin its own certificate in a throw-away store.
	tmp, err := os.MkdirTemp("", "mtconsole-cs-hosts-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ts, err := wire.OpenTrustStore(filepath.Join(tmp, "trust"))
	if err != nil {
		return nil, err
	}
	if err := ts.Pin(addr, fp); err != nil {
		return nil, err
	}
	cl, err := hostconfig.NewClient(hostconfig.ClientOptions{Addr: addr, HTTPS: true, Key: key, Trust: ts})
	if err != nil {
		return nil, err
	}
	hs, err := cl.Hosts(ctx)
	if err != nil && errors.Is(err, hostconfig.ErrUnreachable) && strings.Contains(err.Error(), "does not speak TLS") {
		cl, _ = hostconfig.NewClient(hostconfig.ClientOptions{Addr: addr, Key: key})
		hs, err = cl.Hosts(ctx)
	}
	return hs, err
}
