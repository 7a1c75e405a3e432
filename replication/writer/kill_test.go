package writer

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

const (
	killEnv  = "MTCONSOLE_KILL_CHILD_DIR"
	killSeed = 42
	killOps  = 12000
	killDisk = 2 << 20
)

func killConfig(dir string) PairConfig {
	return PairConfig{ID: "k1", Target: filepath.Join(dir, "target.img"), JournalDir: filepath.Join(dir, "journal"),
		RetentionDir: filepath.Join(dir, "retention"), JournalSegmentSize: 1 << 20, UndoSegmentSize: 1 << 20,
		Policy: journal.Policy{OnFull: journal.Purge}}
}

func killWorkload() *testutil.Workload {
	w := testutil.NewWorkload(killSeed, killDisk, nil)
	w.MaxWrite = 16 << 10
	w.TagEvery = 300
	return w
}

// TestKillChild is the child of TestKill9: it streams the workload into a
// pair on real files, printing every acknowledgement, until it is killed.
func TestKillChild(t *testing.T) {
	dir := os.Getenv(killEnv)
	if dir == "" {
		t.Skip("run by TestKill9")
	}
	var mu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	p, _, err := OpenPair(killConfig(dir), Options{OnAck: func(_ string, seq uint64) {
		mu.Lock()
		fmt.Fprintf(out, "ack %d\n", seq)
		out.Flush()
		mu.Unlock()
	}})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	mu.Lock()
	fmt.Fprintf(out, "next %d\n", p.Next())
	out.Flush()
	mu.Unlock()
	w := killWorkload()
	for w.Seq < killOps {
		op := w.Next()
		if op.Seq < p.Next() {
			continue
		}
		if err := feed(t, p, op); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
	}
	p.Sync()
	time.Sleep(time.Hour) // wait for the kill
}

// TestKill9 kills a real agent process with SIGKILL mid-stream, twice,
// and checks that every acknowledged write survived, the target equals
// the source, and every tag recovers bit-exact.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "target.img"), make([]byte, killDisk), 0o600); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	var acked uint64
	for round := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), killEnv+"="+dir)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		killAt := acked + uint64(500+rng.Intn(3000))
		sc := bufio.NewScanner(stdout)
		killed := false
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == "next" {
				n, _ := strconv.ParseUint(f[1], 10, 64)
				// Invariant 3: the restarted agent resumes after every ack.
				if n <= acked {
					t.Fatalf("round %d: restarted pair resumes at %d but %d was acknowledged", round, n, acked)
				}
			}
			if len(f) == 2 && f[0] == "ack" {
				n, _ := strconv.ParseUint(f[1], 10, 64)
				acked = max(acked, n)
				if acked >= killAt && !killed {
					cmd.Process.Signal(syscall.SIGKILL)
					killed = true
				}
			}
			if len(f) > 0 && f[0] == "error" {
				t.Fatalf("child: %s", sc.Text())
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatalf("round %d: the child ended before the kill (acked %d)", round, acked)
		}
		t.Logf("round %d: killed with %d acknowledged", round, acked)
	}

	p, rec, err := OpenPair(killConfig(dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	t.Logf("recovered: %+v", rec)
	if d := p.Durable(); d < acked {
		t.Fatalf("acknowledged %d, durable after restart %d", acked, d)
	}
	w := killWorkload()
	for w.Seq < killOps {
		if err := feed(t, p, w.Next()); err != nil {
			t.Fatal(err)
		}
	}
	syncDrain(t, p)
	got, err := os.ReadFile(filepath.Join(dir, "target.img"))
	if err != nil {
		t.Fatal(err)
	}
	if d := testutil.Diff(got, w.Source); d != "" {
		t.Fatalf("target differs from the source: %s", d)
	}
	n := 0
	for _, tg := range p.Store().Tags() {
		dest := filepath.Join(dir, "export.img")
		err := p.Hold(func(target vfs.File, st *journal.Store) error {
			r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: tg.Name})
			if err != nil {
				return err
			}
			df, err := vfs.OS.OpenFile(dest, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
			if err != nil {
				return err
			}
			defer df.Close()
			_, err = recovery.Export(context.Background(), st, target, df, r, nil)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := os.ReadFile(dest)
		if d := testutil.Diff(img, w.Tags[tg.Name]); d != "" {
			t.Fatalf("tag %s: %s", tg.Name, d)
		}
		n++
	}
	if n < 20 {
		t.Fatalf("only %d tags checked", n)
	}
}
