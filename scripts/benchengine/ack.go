package main

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// benchAck measures the ack path (DESIGN §9, first row): one writer
// appends writes of -write-size to a fresh redo journal as fast as Append
// takes them; the journal's commit goroutine writes and fdatasyncs each
// group and acknowledges it through OnDurable. The figure is the bytes
// acknowledged over the time from the first Append to the last
// acknowledgement, and the cadence is the average bytes per group commit
// (bytes ÷ OnDurable calls), which bench.sh gives fio as --fdatasync.
//
// The journal's segments are fresh (allocated with fallocate, as fio lays
// out its file), and nothing trims them: the journal of a pair whose
// applier lags, the case the ack path exists for.
func benchAck(c config) error {
	if c.writeSize <= 0 || c.ackBytes < int64(c.writeSize) {
		return fmt.Errorf("-write-size and -ack-bytes must be positive, and -ack-bytes at least one write")
	}
	n := uint64(c.ackBytes / int64(c.writeSize))
	dir := filepath.Join(c.dir, "journal")
	fs := newCountFS(vfs.OS)
	fs.class(dir+"/", "journal")

	var (
		mu     sync.Mutex
		groups int64
		acked  uint64
		last   time.Time
	)
	l, _, err := journal.OpenLog(journal.LogOptions{FS: fs, Dir: dir,
		// Enough segments for every byte: Append never waits for a trim.
		MaxSegments: int(max(64, 2*c.ackBytes/(64<<20)+2)),
		OnDurable: func(seq uint64) {
			now := time.Now()
			mu.Lock()
			groups++
			acked = max(acked, seq)
			last = now
			mu.Unlock()
		}})
	if err != nil {
		return err
	}
	defer l.Close()

	data := make([]byte, c.writeSize)
	fill(data, c.seed)
	stop, err := profile(c.cpuprofile)
	if err != nil {
		return err
	}
	cpu := cpuNow()
	start := time.Now()
	t := start
	for seq := uint64(1); seq <= n; seq++ {
		r := journal.Record{Type: journal.TypeWrite, Seq: seq, Offset: int64(seq-1) * int64(c.writeSize), Time: t, Data: data}
		if err := l.Append(&r); err != nil {
			stop()
			return err
		}
		t = t.Add(time.Microsecond)
	}
	if err := l.Sync(); err != nil {
		stop()
		return err
	}
	stop()
	usage := cpuSince(cpu)
	// Sync returns once the last group is durable; its acknowledgement
	// is delivered by the commit goroutine right after.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		mu.Lock()
		done := acked == n
		mu.Unlock()
		if done || time.Now().After(deadline) {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if acked != n {
		return fmt.Errorf("acknowledged through %d, want %d", acked, n)
	}
	bytes := int64(acked) * int64(c.writeSize)
	sec := last.Sub(start).Seconds()
	kv("figure=ack_path", "bytes", bytes, "seconds", sec, "mibps", mib(bytes)/sec,
		"writes", n, "write_size", c.writeSize, "groups", groups, "bytes_per_group", bytes/groups)
	kv("cpu", usage...)
	fs.report()
	return nil
}

// fill puts pseudo-random bytes in b: data no file system could compress
// or find zero.
func fill(b []byte, seed uint64) {
	x := seed*0x9e3779b97f4a7c15 | 1
	for i := 0; i+8 <= len(b); i += 8 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i], b[i+1], b[i+2], b[i+3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		b[i+4], b[i+5], b[i+6], b[i+7] = byte(x>>32), byte(x>>40), byte(x>>48), byte(x>>56)
	}
}
