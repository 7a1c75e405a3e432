package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// benchSparse is the sparse_reclaim figure: a day of 64 KiB random
// writes into a hot set of -sparse-disk bytes, overwritten
// -sparse-overwrites times an hour, with a crash-consistent tag every 5
// minutes, is journaled into a retention store on real files (segments
// of 8 MiB, a commit per tag) under the tiers "all 1h; 1 per 1h for 23h";
// the day is simulated with an injected clock, the compactor run at every
// simulated hour as the agent's would find it. The figure is the store's
// bytes after the day over the bytes of before-images written (what the
// store holds with no tiers: nothing is pruned within the window).
func benchSparse(c config) error {
	disk := c.sparseDisk
	perHour := int(c.sparseOverwrites * float64(disk) / float64(c.ioSize))
	if perHour < 12 {
		return fmt.Errorf("-sparse-overwrites %.1f of a %d-byte disk is fewer than 12 writes an hour", c.sparseOverwrites, disk)
	}
	tiers, err := journal.ParseTiers("all 1h; 1 per 1h for 23h")
	if err != nil {
		return err
	}
	st, err := journal.OpenStore(journal.StoreOptions{Dir: filepath.Join(c.dir, "retention"), Pair: "sparse", SegmentSize: 8 << 20})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.SetPolicy(journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge, Tiers: tiers}); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(c.seed, 2))
	img := make([]byte, disk)
	for i := range img {
		img[i] = byte(rng.Uint32())
	}
	start := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	step := time.Hour / time.Duration(perHour)
	var seq uint64
	ntags := 0
	var written, reclaimed int64
	compactions := 0
	var compactTime time.Duration
	t0 := time.Now()
	clock := start
	var batch []journal.Record
	nextTag := start.Add(5 * time.Minute)
	nextCompact := start.Add(time.Hour)
	total := perHour * 24
	for i := 0; i < total; i++ {
		clock = clock.Add(step)
		seq++
		off := int64(rng.IntN(int(disk)/4096-c.ioSize/4096+1)) * 4096
		before := bytes.Clone(img[off : off+int64(c.ioSize)])
		r := journal.Record{Type: journal.TypeUndo, Seq: seq, Offset: off, Time: clock, Data: before}
		written += int64(r.Len())
		batch = append(batch, r)
		for j := range c.ioSize / 8 {
			img[off+int64(j*8)] = byte(rng.Uint32())
		}
		if !clock.Before(nextTag) || i == total-1 {
			seq++
			ntags++
			tag := journal.Tag{Seq: seq, Time: clock, Name: fmt.Sprintf("crash-%d", seq), App: journal.AppCrash, Accuracy: journal.Exact}
			if err := st.Append(batch); err != nil {
				return err
			}
			if err := st.Sync(); err != nil {
				return err
			}
			if err := st.Commit(journal.Commit{Applied: seq, AppliedTime: clock, Accuracy: journal.Exact, Tags: []journal.Tag{tag}, FirstTime: start}); err != nil {
				return err
			}
			batch = batch[:0]
			nextTag = nextTag.Add(5 * time.Minute)
		}
		if !clock.Before(nextCompact) {
			ct := time.Now()
			res, err := st.Compact(journal.CompactOptions{Now: clock})
			if err != nil {
				return err
			}
			compactTime += time.Since(ct)
			compactions++
			reclaimed += res.Reclaimed
			nextCompact = nextCompact.Add(time.Hour)
		}
	}
	// the agent's compactor at the end of the day
	res, err := st.Compact(journal.CompactOptions{Now: clock})
	if err != nil {
		return err
	}
	reclaimed += res.Reclaimed
	compactions++
	after := st.Used()
	fmt.Printf("figure=sparse_reclaim before=%d after=%d ratio=%.4f writes=%d io_size=%d disk=%d overwrites_per_hour=%.1f tags=%d tags_kept=%d compactions=%d compact_s=%.2f seconds=%.2f reclaimed=%d\n",
		written, after, float64(after)/float64(written), total, c.ioSize, disk, c.sparseOverwrites, ntags, len(st.Tags()), compactions,
		compactTime.Seconds(), time.Since(t0).Seconds(), reclaimed)
	return nil
}
