package agent_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// A pair added to a running agent starts on the same connection to the
// process server and reaches Differential Sync, while the pairs already
// running carry on: no new connection, their sequences only grow, their
// streams never leave Differential Sync. Removed, it leaves the session
// (the process server stops sending its disk), its journal and retention
// stay on disk, its target is left as it is, and the others stream on.
func TestAddRemovePairLive(t *testing.T) {
	const n, size = 3, 2 << 20
	r := newPairsRig(t, n, size)
	third := r.cfg.Pairs[2]
	r.cfg.Pairs = r.cfg.Pairs[:2]
	r.start()
	r.waitFor("differential sync", func() bool { return r.caughtUp(0) && r.caughtUp(1) })
	stopWL := r.workload([]int{0, 1}, nil)
	defer stopWL()
	acked := func(i int) uint64 {
		st := r.srv.Disk(disk(i)).Status()
		if len(st) != 1 {
			t.Fatalf("%s at the process server: %+v", disk(i), st)
		}
		if st[0].Phase != wire.StateDiffSync {
			t.Errorf("%s left Differential Sync: %s", disk(i), st[0].Phase)
		}
		return st[0].Acked
	}
	conns := r.cl.Stats().Connections
	a0, a1 := acked(0), acked(1)

	if err := r.cl.AddPair(third); err != nil {
		t.Fatal(err)
	}
	if err := r.cl.AddPair(third); err == nil {
		t.Error("the same pair added twice")
	}
	r.waitFor("the added pair in differential sync", func() bool {
		return r.status(pair(2)).State == agent.StateDiffSync && r.caughtUp(2)
	})
	r.waitFor("the others' sequences to grow", func() bool { return acked(0) > a0+20 && acked(1) > a1+20 })
	if c := r.cl.Stats().Connections; c != conns {
		t.Errorf("adding a pair made %d connections, want none new (had %d)", c-conns, conns)
	}
	if s := r.status(pair(2)); !s.Connected || s.Health != writer.HealthOK || s.Group != pair(2) {
		t.Errorf("the added pair: %+v", s)
	}
	// the added pair replicates writes too
	stopWL()
	stopWL = r.workload([]int{0, 1, 2}, nil)
	d2 := r.status(pair(2)).DurableSeq
	r.waitFor("writes to the added pair", func() bool { return r.status(pair(2)).DurableSeq > d2+20 })
	stopWL()
	r.waitFor("all drained", func() bool { return r.caughtUp(0) && r.caughtUp(1) && r.caughtUp(2) })
	for i := range n {
		if fileHash(t, r.source(i)) != fileHash(t, r.target(i)) {
			t.Errorf("%s: target differs from its source", disk(i))
		}
	}

	// removed: it leaves the session; the others go on
	tgt := fileHash(t, r.target(2))
	durable := r.status(pair(2)).DurableSeq
	a0, a1 = acked(0), acked(1)
	if err := r.cl.RemovePair(pair(2), false); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the process server to stop sending the removed disk", func() bool { return len(r.srv.Disk(disk(2)).Status()) == 0 })
	if slices.ContainsFunc(r.cl.Status(), func(s agent.PairStatus) bool { return s.ID == pair(2) }) {
		t.Errorf("the removed pair is still reported: %+v", r.cl.Status())
	}
	stopWL = r.workload([]int{0, 1, 2}, nil)
	r.waitFor("the others' sequences to grow after the removal", func() bool { return acked(0) > a0+20 && acked(1) > a1+20 })
	stopWL()
	if c := r.cl.Stats().Connections; c != conns {
		t.Errorf("removing a pair made %d connections, want none new", c-conns)
	}
	if fileHash(t, r.target(2)) != tgt {
		t.Error("the removed pair's target was written after it stopped")
	}
	for _, d := range []string{third.JournalDir, third.RetentionDir} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the removed pair's %s: %v", d, err)
		}
	}
	// its journal is durable: opened again, it resumes where it stopped
	w := writer.New(writer.Options{}, writer.SpaceOptions{Interval: -1})
	p, _, err := w.Open(third.PairConfig)
	if err != nil {
		t.Fatal(err)
	}
	if next := p.Next(); next != durable+1 {
		t.Errorf("the removed pair reopened: next %d, want %d", next, durable+1)
	}
	w.Close()
}

// A group with a consistency interval gets one crash-consistent tag
// across its disks each interval of the agent's clock: the same tag id at
// the same point on each disk (the process server places it in the
// sources' write order); a group with interval 0 gets none; a pair of the
// group not in Differential Sync is skipped. The workload takes CRASH
// tags of its own (every 50ms of the wall clock: none, one or several
// while the group's tag is in flight, depending on the machine's load):
// each is in its disk's store exactly once, and the group's tags are the
// CRASH tags the workload did not take.
func TestConsistencyInterval(t *testing.T) {
	r := newPairsRig(t, 3, 1<<20)
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	ticks := make(chan time.Time)
	r.cfg.ConsistencyTicks = ticks
	r.cfg.Pairs[0].Group, r.cfg.Pairs[1].Group = "web01", "web01"
	// a pair of the group whose disk the process server does not serve:
	// Queued for ever
	r.cfg.Pairs = append(r.cfg.Pairs, agent.PairConfig{Disk: "absent", Group: "web01", PairConfig: writer.PairConfig{ID: "pairX",
		Target: r.target(0) + ".x", JournalDir: filepath.Join(r.dir, "journal", "pairX"), RetentionDir: filepath.Join(r.dir, "retention", "pairX"),
		Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge}}})
	if err := os.WriteFile(r.target(0)+".x", make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	r.cfg.Groups = []agent.GroupConfig{{Name: "web01", ConsistencyInterval: 15 * time.Minute}, {Name: pair(2)}}
	r.start()
	r.waitFor("differential sync", func() bool { return r.caughtUp(0) && r.caughtUp(1) && r.caughtUp(2) })
	tick := func(d time.Duration) {
		now = now.Add(d)
		ticks <- now
	}
	var wlMu sync.Mutex
	wlTags := map[int][]string{} // by disk: the ids of the workload's tags, in order
	onTag := func(i int, tag journal.TagInfo, _ [32]byte) {
		wlMu.Lock()
		defer wlMu.Unlock()
		wlTags[i] = append(wlTags[i], tag.ID)
	}
	// crashTags: disk i's CRASH tags the workload did not take (read
	// once the workload is stopped: its tags are all known then).
	crashTags := func(i int) []journal.Tag {
		wlMu.Lock()
		defer wlMu.Unlock()
		var out []journal.Tag
		for _, tg := range r.cl.Pair(disk(i)).Store().Tags() {
			if tg.App == journal.AppCrash && !slices.Contains(wlTags[i], tg.ID) {
				out = append(out, tg)
			}
		}
		return out
	}
	drained := func() bool { return r.caughtUp(0) && r.caughtUp(1) && r.caughtUp(2) }
	tick(0)                // the group is seen: its first tag is due in 15 minutes
	tick(14 * time.Minute) // not yet
	stopWL := r.workload([]int{0, 1, 2}, onTag)
	tick(time.Minute) // due
	// the loop has taken the tick once the next one is taken; the tags
	// reach the stores once applied
	tick(0)
	stopWL()
	r.waitFor("all drained", drained)
	// every tag the process server numbered is applied: the stores hold
	// all there will be
	for i := range 3 {
		var ids []string
		for _, tg := range r.cl.Pair(disk(i)).Store().Tags() {
			if tg.App == journal.AppCrash && strings.HasPrefix(tg.ID, "wl-") {
				ids = append(ids, tg.ID)
			}
		}
		wlMu.Lock()
		if !slices.Equal(ids, wlTags[i]) {
			t.Errorf("%s: the workload's tags in its store %v, want each it took once: %v", disk(i), ids, wlTags[i])
		}
		wlMu.Unlock()
	}
	if len(crashTags(0)) != 1 || len(crashTags(1)) != 1 {
		t.Fatalf("the group's tags: %+v on %s and %+v on %s, want one on each", crashTags(0), disk(0), crashTags(1), disk(1))
	}
	t0, t1 := crashTags(0)[0], crashTags(1)[0]
	want := agent.ConsistencyTagName("web01", time.Date(2026, 3, 1, 10, 15, 0, 0, time.UTC))
	if t0.ID != t1.ID || t0.Name != want || t1.Name != want {
		t.Errorf("the group's tags: %+v and %+v, want one tag %s", t0, t1, want)
	}
	if got := crashTags(2); len(got) != 0 {
		t.Errorf("a group with interval 0 was tagged: %+v", got)
	}
	// the pair of the group not in Differential Sync was skipped
	if s := r.status("pairX"); s.State != agent.StateQueued || s.Connected {
		t.Errorf("pairX: %+v", s)
	}
	// the next tag only after another interval: once the loop has taken
	// the tick and the streams are drained, a tag it asked for would be
	// in the stores
	tick(14 * time.Minute)
	tick(0)
	r.waitFor("all drained", drained)
	if n0, n1 := len(crashTags(0)), len(crashTags(1)); n0 != 1 || n1 != 1 {
		t.Errorf("a tag before the interval passed: %d on %s, %d on %s", n0, disk(0), n1, disk(1))
	}
	tick(time.Minute)
	tick(0)
	r.waitFor("the group's second tag in its stores", func() bool { return len(crashTags(0)) == 2 && len(crashTags(1)) == 2 })
	if t0, t1 := crashTags(0)[1], crashTags(1)[1]; t0.ID != t1.ID || t0.Name != agent.ConsistencyTagName("web01", now) {
		t.Errorf("the group's second tags: %+v and %+v, want one tag %s", t0, t1, agent.ConsistencyTagName("web01", now))
	}
}

// An agent with no pair (every protection removed, or none yet) runs and
// waits; the first pair added starts replicating.
func TestAgentWithoutPairsWaitsForOne(t *testing.T) {
	r := newPairsRig(t, 1, 1<<20)
	first := r.cfg.Pairs[0]
	r.cfg.Pairs = nil
	r.start()
	if n := len(r.cl.Status()); n != 0 {
		t.Fatalf("%d pairs in the status of an agent without pairs", n)
	}
	if err := r.cl.AddPair(first); err != nil {
		t.Fatal(err)
	}
	r.waitFor("the first pair in differential sync", func() bool {
		return r.status(pair(0)).State == agent.StateDiffSync && r.caughtUp(0)
	})
}
