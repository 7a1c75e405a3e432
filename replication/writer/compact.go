package writer

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// compactor runs Compact every CompactInterval until the Writer closes.
func (w *Writer) compactor() {
	defer close(w.compactDone)
	w.every(w.o.CompactInterval, w.Compact)
}

// Compact compacts, once, every pair whose policy has sparse-retention
// tiers (journal.Store.Compact at Options.Now): it runs beside the
// applier, on closed undo segments only, and waits for no one; a pair
// held by an export is left for the next run. It logs and reports, per
// pair, the bytes reclaimed and the tags compacted away.
func (w *Writer) Compact() {
	for _, p := range w.Pairs() {
		select {
		case <-p.done:
			continue // closing: its store goes with it
		default:
		}
		if len(p.store.Policy().Tiers) == 0 || p.Err() != nil {
			continue
		}
		res, err := p.store.Compact(journal.CompactOptions{Now: w.o.Now()})
		if err != nil {
			// The old segments are still catalogued: nothing is lost,
			// the next run tries again.
			p.event(EventAlert, slog.LevelWarn, fmt.Sprintf("retention compaction failed: %v", err))
			continue
		}
		if res.Segments == 0 {
			continue
		}
		p.mu.Lock()
		p.reclaimed += res.Reclaimed
		p.lastCompaction = w.o.Now()
		p.mu.Unlock()
		w.o.Logger.Info("retention compacted", "pair", p.cfg.ID, "segments", res.Segments, "into", res.Written,
			"bytes_before", res.BytesBefore, "bytes_after", res.BytesAfter, "reclaimed", res.Reclaimed,
			"tags_kept", res.Kept, "tags_dropped", len(res.Dropped), "sparse_upto", res.Sparse.Upto)
		p.event(EventLog, slog.LevelInfo, fmt.Sprintf("sparse retention compacted %d segment(s) into %d: reclaimed %s, %d tag(s) kept, %d compacted away; every write kept from %s",
			res.Segments, res.Written, mb(res.Reclaimed), res.Kept, len(res.Dropped), res.Sparse.UptoTime.UTC().Format(time.RFC3339)))
	}
}
