package protect_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// testKey stands for the passphrase: deriving a real key takes PBKDF2's
// 600000 rounds.
var testKey = wire.Key{7, 7, 7}

type psRig struct {
	addr string
	fp   wire.Fingerprint
	srv  *ps.Server
}

// startPS serves two file disks, sda (1 MiB) and sdb (2 MiB), on loopback
// until the test ends.
func startPS(t *testing.T, key wire.Key) *psRig {
	t.Helper()
	dir := t.TempDir()
	var disks []ps.DiskConfig
	for name, size := range map[string]int64{"sda": 1 << 20, "sdb": 2 << 20} {
		p := filepath.Join(dir, name+".img")
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		var app time.Duration
		if name == "sda" {
			app = 60 * time.Minute // its source host takes app-consistent tags hourly
		}
		disks = append(disks, ps.DiskConfig{Name: name, Path: p, AppConsistentInterval: app})
	}
	if disks[0].Name != "sda" {
		disks[0], disks[1] = disks[1], disks[0]
	}
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, fp, err := wire.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: "ps-1", HostName: "web01-source", Disks: disks})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := srv.Serve(ctx, ln); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() { cancel(); wg.Wait(); srv.Close() })
	return &psRig{addr: ln.Addr().String(), fp: fp, srv: srv}
}

func discover(t *testing.T, r *psRig, trust string, key wire.Key, confirm wire.ConfirmFunc, noPin bool) (*protect.Discovery, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return protect.Discover(ctx, protect.Server{Addr: r.addr, Key: key, TrustStore: trust, Confirm: confirm, NoPin: noPin, HostID: "mt01"})
}

// A first-seen certificate is shown to Confirm with its fingerprint and,
// confirmed, pinned as the agent pins it; the disk list and the host name
// come back; the process server pairs nothing and serves the next
// connection.
func TestDiscoverFirstUse(t *testing.T) {
	r := startPS(t, testKey)
	trust := filepath.Join(t.TempDir(), "etc", "known_process_servers")
	var asked []wire.Fingerprint
	d, err := discover(t, r, trust, testKey, func(addr string, fp wire.Fingerprint) bool {
		asked = append(asked, fp)
		return true
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(asked) != 1 || asked[0] != r.fp || !d.FirstUse || d.Fingerprint != r.fp {
		t.Fatalf("asked %v, first use %v, fingerprint %v; want %v once", asked, d.FirstUse, d.Fingerprint, r.fp)
	}
	if d.HostName != "web01-source" || d.HostID != "ps-1" || len(d.Disks) != 2 ||
		d.Disks[0] != (protect.Disk{Name: "sda", Size: 1 << 20, BlockSize: 4096, AppConsistentInterval: "1h"}) || d.Disks[1].Name != "sdb" || d.Disks[1].Size != 2<<20 ||
		d.Disks[1].AppConsistentInterval != "" {
		t.Fatalf("discovery %+v", d)
	}
	st, err := wire.OpenTrustStore(trust)
	if err != nil {
		t.Fatal(err)
	}
	if fp, ok, err := st.Lookup(r.addr); err != nil || !ok || fp != r.fp {
		t.Fatalf("pinned %v %v %v, want %v", fp, ok, err, r.fp)
	}
	if fi, err := os.Stat(trust); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("trust store %v %v", fi, err)
	}
	// pinned now: not asked again
	d, err = discover(t, r, trust, testKey, func(string, wire.Fingerprint) bool { t.Error("asked again"); return false }, false)
	if err != nil || d.FirstUse {
		t.Fatalf("second discovery: %v, first use %v", err, d != nil && d.FirstUse)
	}
	for _, disk := range r.srv.Disks() {
		if st := disk.Status(); len(st) != 0 {
			t.Errorf("disk %s: the process server kept a stream for a discovery: %+v", disk.Name(), st)
		}
	}
}

// Declined, a first-seen certificate is not pinned and the error says
// how to trust it; with NoPin (a dry run) a confirmed one is not written.
func TestDiscoverFirstUseDeclinedOrNoPin(t *testing.T) {
	r := startPS(t, testKey)
	trust := filepath.Join(t.TempDir(), "known_process_servers")
	_, err := discover(t, r, trust, testKey, func(string, wire.Fingerprint) bool { return false }, false)
	if !errors.Is(err, protect.ErrUntrusted) || !strings.Contains(err.Error(), r.fp.String()) || !strings.Contains(err.Error(), "--trust-fingerprint") {
		t.Fatalf("err = %v, want ErrUntrusted naming %s and --trust-fingerprint", err, r.fp)
	}
	if _, err := os.Stat(trust); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("trust store written after a declined certificate: %v", err)
	}
	d, err := discover(t, r, trust, testKey, func(string, wire.Fingerprint) bool { return true }, true)
	if err != nil || !d.FirstUse || len(d.Disks) != 2 {
		t.Fatalf("no-pin discovery: %v %+v", err, d)
	}
	if _, err := os.Stat(trust); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("trust store written with NoPin: %v", err)
	}
}

// A wrong passphrase and a changed certificate are named, with what to
// do; an address where nothing listens is unreachable.
func TestDiscoverErrors(t *testing.T) {
	r := startPS(t, testKey)
	dir := t.TempDir()
	trust := filepath.Join(dir, "known_process_servers")
	yes := func(string, wire.Fingerprint) bool { return true }
	_, err := discover(t, r, trust, wire.Key{9}, yes, false)
	if !errors.Is(err, protect.ErrPassphrase) || !errors.Is(err, wire.ErrAuth) || !strings.Contains(err.Error(), "--passphrase-file") {
		t.Fatalf("wrong passphrase: %v", err)
	}

	other := wire.Fingerprint{1, 2, 3}
	changed := filepath.Join(dir, "changed")
	st, err := wire.OpenTrustStore(changed)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Pin(r.addr, other); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(changed)
	_, err = discover(t, r, changed, testKey, yes, false)
	if !errors.Is(err, protect.ErrCertChanged) || !strings.Contains(err.Error(), other.String()) || !strings.Contains(err.Error(), r.fp.String()) ||
		!strings.Contains(err.Error(), changed) {
		t.Fatalf("changed certificate: %v", err)
	}
	if after, _ := os.ReadFile(changed); string(after) != string(before) {
		t.Fatal("trust store changed after a refused certificate")
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = protect.Discover(context.Background(), protect.Server{Addr: addr, Key: testKey, TrustStore: trust, Confirm: yes})
	if !errors.Is(err, protect.ErrUnreachable) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("unreachable: %v", err)
	}
}
