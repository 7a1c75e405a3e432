package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// retention summary shows a sparse policy in the original's words and,
// per tier, the oldest point the store truly holds there: before
// compaction every write (the all-writes point sits in the oldest tier),
// after it the oldest kept tag of each sparse tier.
func TestRetentionSummarySparse(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "p1")
	st, err := journal.OpenStore(journal.StoreOptions{Dir: dir, Pair: "p1", SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	tiers, err := journal.ParseTiers("all 1h; 1 per 1h for 2h; 1 per 3h for 3h")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetPolicy(journal.Policy{Window: 6 * time.Hour, OnFull: journal.Purge, Tiers: tiers}); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	clock := start
	var seq uint64
	for i := range 36 { // 10-minute batches for six hours, a tag in each
		clock = clock.Add(10 * time.Minute)
		var recs []journal.Record
		for j := range 4 {
			seq++
			recs = append(recs, journal.Record{Type: journal.TypeUndo, Seq: seq, Offset: int64(j * 512), Time: clock, Data: make([]byte, 512)})
		}
		recs[0].Data[0] = 1
		seq++
		tag := journal.Tag{Seq: seq, Time: clock, Name: fmt.Sprintf("tag%02d", i), App: journal.AppFS, Accuracy: journal.Exact}
		if err := st.Append(recs); err != nil {
			t.Fatal(err)
		}
		if err := st.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := st.Commit(journal.Commit{Applied: seq, AppliedTime: clock, Accuracy: journal.Exact, Tags: []journal.Tag{tag}, FirstTime: start}); err != nil {
			t.Fatal(err)
		}
	}
	now := clock
	old := summaryNow
	summaryNow = func() time.Time { return now }
	t.Cleanup(func() { summaryNow = old })
	st.Close()

	out := mustRun(t, "retention", "summary", "--dir", dir)
	for _, w := range []string{
		"Sparse Retention: Retain all data for 1 hour; 1 bookmark(s) per 1 hour for 2 hours; 1 bookmark(s) per 3 hours for 3 hours\n",
		"1     Retain all data for 1 hour             " + cdpTime(start.Add(5*time.Hour)) + "  every write in the tier",
		"2     1 bookmark(s) per 1 hour for 2 hours   " + cdpTime(start.Add(3*time.Hour)) + "  every write in the tier",
		"3     1 bookmark(s) per 3 hours for 3 hours  " + cdpTime(start.Add(10*time.Minute)) + "  every write from here",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("before compaction, summary does not show %q:\n%s", w, out)
		}
	}
	st, err = journal.OpenStore(journal.StoreOptions{Dir: dir, Pair: "p1", SegmentSize: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := st.Compact(journal.CompactOptions{Now: now}); err != nil || res.Segments == 0 {
		t.Fatalf("Compact: %+v %v", res, err)
	}
	sp := st.Sparse()
	st.Close()
	out = mustRun(t, "retention", "summary", "--json", "--dir", dir)
	var s summary
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatal(err)
	}
	if len(s.Tiers) != 3 {
		t.Fatalf("tiers %+v", s.Tiers)
	}
	// all writes from the compaction's boundary; the 1-3 h tier's oldest is
	// the first tag of the hour 2-3 h ago; the 3-6 h tier's the first
	// tag of the 3-hour stretch that begins at 00:00 (the 00:10 tag).
	if e := s.Tiers[0].Earliest; e == nil || !e.Equal(now.Add(-time.Hour)) || !s.Tiers[0].AllWrites {
		t.Errorf("tier 1: %+v, want every write in the tier", s.Tiers[0])
	}
	if sp.UptoTime.After(now.Add(-time.Hour)) || sp.UptoTime.Before(now.Add(-3*time.Hour)) {
		t.Fatalf("compacted up to %s", sp.UptoTime)
	}
	if tg := s.Tiers[1].Tag; tg == nil || !tg.Time.Equal(start.Add(3*time.Hour+10*time.Minute)) {
		t.Errorf("tier 2: %+v", s.Tiers[1])
	}
	if tg := s.Tiers[2].Tag; tg == nil || tg.Name != "tag00" {
		t.Errorf("tier 3: %+v", s.Tiers[2])
	}
	text := mustRun(t, "retention", "summary", "--dir", dir)
	if !strings.Contains(text, cdpTime(start.Add(10*time.Minute))+"  tag tag00") {
		t.Errorf("summary after compaction:\n%s", text)
	}
}
