package ps

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
)

func TestParseWorkload(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Workload
		bad  bool
	}{
		{in: "", want: Workload{Seed: 1, WriteSize: 64 << 10}},
		{in: "seed=7,rate=100,size=4096,seq,crash=10s,app=1m,writes=5",
			want: Workload{Seed: 7, Rate: 100, WriteSize: 4096, Sequential: true, CrashEvery: 10 * time.Second, AppEvery: time.Minute, Writes: 5}},
		{in: "rate=0,crash=0,app=0,random", want: Workload{Seed: 1, WriteSize: 64 << 10}},
		{in: " rate = 2.5 , sequential", want: Workload{Seed: 1, WriteSize: 64 << 10, Rate: 2.5, Sequential: true}},
		{in: "size=1000", bad: true},
		{in: "size=0", bad: true},
		{in: "size=-4096", bad: true},
		{in: "speed=3", bad: true},
		{in: "rate=x", bad: true},
		{in: "rate=-5", bad: true},
		{in: "rate=NaN", bad: true},
		{in: "rate=Inf", bad: true},
		{in: "rate=-infinity", bad: true},
		{in: "rate", bad: true},
		{in: "crash=-1s", bad: true},
		{in: "app=-1m", bad: true},
		{in: "writes=0", bad: true},
		{in: "writes=-3", bad: true},
		{in: "seed=1.5", bad: true},
		{in: "seq=false", bad: true},
		{in: "rate=1,rate=2", bad: true},
		{in: "seq,random", bad: true},
	} {
		got, err := ParseWorkload(tc.in)
		if (err != nil) != tc.bad {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		// the error names the key and the value given (the last one here)
		if kvs := strings.Split(tc.in, ","); tc.bad && !strings.Contains(err.Error(), "workload: "+kvs[len(kvs)-1]+": ") {
			t.Errorf("%q: error %q does not name %s", tc.in, err, kvs[len(kvs)-1])
		}
		if !tc.bad && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func testServer(t *testing.T, size int64) *Server {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.img")
	if err := os.WriteFile(path, make([]byte, size), 0o600); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Cert: cert, Disks: []DiskConfig{{Name: "d", Path: path}}, ChunkSize: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The same seed writes the same image and takes the same tags.
func TestWorkloadDeterministic(t *testing.T) {
	var images [2][][32]byte
	for i := range 2 {
		d := testServer(t, 1<<20).Disk("d")
		w := Workload{Seed: 3, WriteSize: 8192, Writes: 200, CrashEvery: time.Nanosecond,
			OnTag: func(_ journal.TagInfo, img [32]byte, _ bool) { images[i] = append(images[i], img) }}
		if err := w.Run(context.Background(), d); err != nil {
			t.Fatal(err)
		}
		h, err := HashSource(d)
		if err != nil {
			t.Fatal(err)
		}
		images[i] = append(images[i], h)
	}
	if len(images[0]) < 2 || len(images[0]) != len(images[1]) {
		t.Fatalf("tags: %d and %d", len(images[0]), len(images[1]))
	}
	if images[0][len(images[0])-1] != images[1][len(images[1])-1] {
		t.Fatal("same seed, different images")
	}
}

func TestNewRefusesBadDisks(t *testing.T) {
	dir := t.TempDir()
	odd := filepath.Join(dir, "odd.img")
	os.WriteFile(odd, make([]byte, 1000), 0o600)
	certPEM, keyPEM, _ := wire.GenerateCertificate(nil, 0)
	cert, _ := tls.X509KeyPair(certPEM, keyPEM)
	for _, dc := range []DiskConfig{{Name: "x", Path: filepath.Join(dir, "missing")}, {Name: "x", Path: odd}, {Path: odd}} {
		if _, err := New(Config{Cert: cert, Disks: []DiskConfig{dc}}); err == nil {
			t.Errorf("%+v: no error", dc)
		}
	}
	if _, err := New(Config{Cert: cert, Disks: []DiskConfig{{Name: "x", Path: odd}}, ChunkSize: 1000}); err == nil {
		t.Error("chunk size 1000: no error")
	}
}

// Two disks of one name would be one target written from two sources:
// New refuses them, naming both paths.
func TestNewDuplicateDiskName(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.img"), filepath.Join(dir, "b.img")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	certPEM, keyPEM, err := wire.GenerateCertificate([]string{"127.0.0.1"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Cert: cert, Disks: []DiskConfig{{Name: "d", Path: a}, {Name: "d", Path: b}}})
	if err == nil {
		s.Close()
		t.Fatal("two disks named d were served")
	}
	if !strings.Contains(err.Error(), `"d" given twice`) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Errorf("error %q", err)
	}
}
