package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// From a host without agent.toml to replicating pairs with `mtconsole
// protect` alone: the first protect writes a complete file (no agent
// yet), `mtconsole agent --config` started on it brings the pair to
// Differential Sync with its target equal to the source; a second
// protect while the agent runs starts the new pair live, and it reaches
// Differential Sync too, its target equal to its source.
func TestProtectFreshHostReplicates(t *testing.T) {
	h := newProtectHostDisks(t, "sda", "sdb")
	os.Remove(h.conf)
	big2 := filepath.Join(h.dir, "big2.img")
	if err := os.WriteFile(big2, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustRun(t, "protect", "--config", h.conf, "--ps", h.addr, "--passphrase-file", h.pass, "--group", "web01",
		"--map", "sda="+h.big, "--allow-files", "--trust-fingerprint", h.fp.String(),
		"--trust-store", filepath.Join(h.etc, "known_process_servers"), "--journal-dir", filepath.Join(h.dir, "journal"),
		"--retention-dir", filepath.Join(h.dir, "retention"), "--socket", h.sock)
	if !strings.Contains(out, "wrote "+h.conf+"\n") || !strings.Contains(out, protect.NoAgentNote) {
		t.Fatalf("first protect:\n%s", out)
	}

	// mtconsole agent --config, in-process, until the test cancels it.
	ctx, cancel := context.WithCancel(context.Background())
	var logs lockedBuffer
	var agentErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		root := newRootCmd()
		root.SetOut(&logs)
		root.SetErr(&logs)
		root.SetArgs([]string{"agent", "--config", h.conf})
		agentErr = root.ExecuteContext(ctx)
	})
	stopped := false
	stopAgent := func() {
		if !stopped {
			stopped = true
			cancel()
			wg.Wait()
		}
	}
	t.Cleanup(stopAgent)

	// waitDiff polls status --json until pair id is in Differential Sync
	// with everything it made durable applied.
	waitDiff := func(id string) {
		t.Helper()
		var last string
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("pair %s never reached Differential Sync; last status:\n%s\nagent log:\n%s", id, last, logs.String())
			}
			o, _, err := run(t, "status", "--json", "--socket", h.sock)
			if err != nil {
				last = err.Error()
				continue
			}
			last = o
			var st api.Status
			if err := json.Unmarshal([]byte(o), &st); err != nil {
				t.Fatalf("status --json: %v\n%s", err, o)
			}
			for _, p := range st.Pairs {
				if p.ID == id && p.State == "Differential Sync" && p.AppliedSeq == p.DurableSeq && p.BacklogBytes == 0 {
					return
				}
			}
		}
	}
	// sameBytes: no workload runs, so once in Differential Sync the
	// resync has copied the whole source.
	sameBytes := func(disk, target string) {
		t.Helper()
		src, err := os.ReadFile(h.src[disk])
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(target)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(src, got) {
			t.Fatalf("target %s differs from source %s", target, disk)
		}
	}
	waitDiff("sda")
	sameBytes("sda", h.big)

	// A second disk while the agent runs: started live.
	out = mustRun(t, "protect", "--config", h.conf, "--group", "web02", "--map", "sdb="+big2, "--allow-files")
	if !strings.Contains(out, "wrote "+h.conf+" (the previous file is "+h.conf+".bak)\n") || !strings.Contains(out, "the agent started sdb\n") {
		t.Fatalf("second protect:\n%s", out)
	}
	waitDiff("sdb")
	sameBytes("sdb", big2)
	waitDiff("sda")

	l := mustRun(t, "protection", "list", "--config", h.conf, "--json")
	var listing protect.Listing
	if err := json.Unmarshal([]byte(l), &listing); err != nil {
		t.Fatal(err)
	}
	if !listing.Agent || len(listing.Groups) != 2 {
		t.Fatalf("protection list: %s", l)
	}
	for _, g := range listing.Groups {
		if len(g.Pairs) != 1 || !g.Pairs[0].Running || g.Pairs[0].State != "Differential Sync" {
			t.Errorf("group %s: %+v", g.Name, g.Pairs)
		}
	}

	stopAgent()
	if agentErr != nil {
		t.Fatalf("the agent ended with %v; log:\n%s", agentErr, logs.String())
	}
	if _, err := os.Stat(h.sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}
