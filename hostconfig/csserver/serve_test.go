package csserver

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
)

// Serve announces its address in the directory while it runs, Hosts
// asks it there (over TLS, pinned to the server's own certificate) and
// reads the store when none runs; the announcement goes when it stops.
func TestServeAndHosts(t *testing.T) {
	d := Dir(t.TempDir())
	if _, _, err := Init(d, []string{"127.0.0.1"}, false); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := Serve(ctx, d, ln, true, slog.New(slog.NewTextHandler(io.Discard, nil)), "test")
	if err != nil {
		t.Fatal(err)
	}
	if srv.Addr != ln.Addr().String() || srv.FP.IsZero() {
		t.Errorf("running %q %v, want %q with a fingerprint", srv.Addr, srv.FP, ln.Addr())
	}
	b, err := os.ReadFile(d.AddrFile())
	if err != nil || strings.TrimSpace(string(b)) != srv.Addr {
		t.Fatalf("address file %q %v, want %q", b, err, srv.Addr)
	}
	hs, err := Hosts(ctx, d, "")
	if err != nil || len(hs) != 0 {
		t.Fatalf("hosts from the server: %v %v, want none", hs, err)
	}
	cancel()
	if err := srv.Wait(); err != nil {
		t.Fatalf("wait: %v", err)
	}
	if _, err := os.Stat(d.AddrFile()); !os.IsNotExist(err) {
		t.Errorf("address file left behind: %v", err)
	}
	hs, err = Hosts(context.Background(), d, "")
	if err != nil || hs == nil || len(hs) != 0 {
		t.Fatalf("hosts from the store: %#v %v, want an empty list", hs, err)
	}
}
