package ps_test

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// A master target that pairs a second disk on its running connection (a
// PairAccept after the handshake) gets that disk's resync on the same
// connection, while the disk paired at the handshake streams on: its
// sequence carries on from where it was, no new connection.
func TestPairAfterHandshake(t *testing.T) {
	dir := t.TempDir()
	const size = 256 << 10
	var dcs []ps.DiskConfig
	for _, n := range []string{"d1", "d2"} {
		p := filepath.Join(dir, n)
		if err := os.WriteFile(p, make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
		dcs = append(dcs, ps.DiskConfig{Name: n, Path: p})
	}
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := wire.LoadCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	key := wire.Key{7}
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: "ps-1", HostName: "src", Disks: dcs, ChunkSize: 64 << 10, Heartbeat: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ctx, ln); err != nil {
			t.Error(err)
		}
	}()
	defer func() { cancel(); <-done; srv.Close() }()

	trust, err := wire.OpenTrustStore(filepath.Join(dir, "known"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(nc, wire.ClientTLSConfig(ln.Addr().String(), trust, func(string, wire.Fingerprint) bool { return true }))
	var ids map[string]uint32
	c, err := wire.Client(ctx, tc, &wire.Config{Key: key, Role: wire.RoleMasterTarget, HostID: "mt-1", HostName: "mt",
		Accept: func(_ wire.Peer, ds []wire.Disk) ([]wire.Pair, error) {
			ids = map[string]uint32{}
			for _, d := range ds {
				ids[d.Name] = d.ID
			}
			return []wire.Pair{{Disk: ids["d1"], Start: wire.StartFull}}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send(&wire.Credit{Bytes: 64 << 20}); err != nil {
		t.Fatal(err)
	}
	// recv reads until disk's stream reaches Differential Sync, acking
	// as it goes; it returns the disk's last sequence.
	last := map[uint32]uint64{}
	recvUntilDiffSync := func(disk uint32) {
		t.Helper()
		for {
			m, err := c.Recv()
			if err != nil {
				t.Fatal(err)
			}
			switch m := m.(type) {
			case *wire.ResyncData:
				last[m.Disk] = m.Seq
			case *wire.ZeroRange:
				last[m.Disk] = m.Seq
				if err := c.Send(&wire.Ack{Disk: m.Disk, Seq: m.Seq}, &wire.Credit{Bytes: m.Length}); err != nil {
					t.Fatal(err)
				}
			case *wire.Write:
				last[m.Disk] = m.Seq
			case *wire.State:
				if m.Disk == disk && m.State == wire.StateDiffSync {
					return
				}
			}
		}
	}
	recvUntilDiffSync(ids["d1"])
	d1 := last[ids["d1"]]
	if d1 == 0 {
		t.Fatal("no resync of d1")
	}
	if err := c.Send(&wire.PairAccept{Pairs: []wire.Pair{{Disk: ids["d2"], Start: wire.StartFull}}}); err != nil {
		t.Fatal(err)
	}
	recvUntilDiffSync(ids["d2"])
	if last[ids["d2"]] == 0 {
		t.Fatal("no resync of d2 after it was paired")
	}
	// d1 streams on, numbered on from where it was
	if err := srv.Disk("d1").Write(0, make([]byte, 4096), time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if w, ok := m.(*wire.Write); ok && w.Disk == ids["d1"] {
			if w.Seq != d1+1 {
				t.Fatalf("d1's write after d2 was paired: sequence %d, want %d", w.Seq, d1+1)
			}
			break
		}
	}
	if st := srv.Disk("d2").Status(); len(st) != 1 || st[0].Phase != wire.StateDiffSync {
		t.Errorf("d2 at the process server: %+v", st)
	}
}
