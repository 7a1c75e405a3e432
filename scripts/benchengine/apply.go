package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// pairBench is one pair on real files: target, journal and retention
// store side by side in the work directory, on one file system.
type pairBench struct {
	c       config
	fs      *countFS
	target  string
	retDir  string
	pair    *writer.Pair
	rng     *rand.Rand
	bufs    [][]byte
	commits atomic.Int64 // catalogue transactions (one per applied batch, and a few more)
}

func newPairBench(c config) (*pairBench, error) {
	if c.ioSize <= 0 || c.targetSize < int64(c.ioSize) || c.targetSize%int64(c.ioSize) != 0 {
		return nil, fmt.Errorf("-target-size must be a positive multiple of -io-size")
	}
	b := &pairBench{c: c, fs: newCountFS(vfs.OS),
		target: filepath.Join(c.dir, "target.img"), retDir: filepath.Join(c.dir, "retention"),
		rng: rand.New(rand.NewPCG(c.seed, 0x6d74636f6e736f6c))}
	b.fs.class(filepath.Join(c.dir, "journal")+"/", "journal")
	b.fs.class(b.retDir+"/", "retention")
	b.fs.class(b.target, "target")
	for i := range 16 {
		buf := make([]byte, c.ioSize)
		fill(buf, c.seed+uint64(i)+100)
		b.bufs = append(b.bufs, buf)
	}
	if err := prefill(b.target, c.targetSize, c.seed); err != nil {
		return nil, err
	}
	return b, nil
}

// prefill writes a target of size bytes of data and makes it durable: the
// failback case, where the target already holds the source's data.
func prefill(path string, size int64, seed uint64) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4<<20)
	fill(buf, seed+7)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		buf[0], buf[1] = byte(off>>22), byte(off>>30) // no two chunks alike
		if _, err := f.WriteAt(buf[:n], off); err != nil {
			return err
		}
	}
	return f.Sync()
}

// verifyPrefill checks that path holds exactly what prefill wrote.
func verifyPrefill(path string, size int64, seed uint64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	want := make([]byte, 4<<20)
	fill(want, seed+7)
	got := make([]byte, len(want))
	for off := int64(0); off < size; off += int64(len(want)) {
		n := min(int64(len(want)), size-off)
		want[0], want[1] = byte(off>>22), byte(off>>30)
		if err := vfs.ReadFull(f, got[:n], off); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !bytes.Equal(got[:n], want[:n]) {
			return fmt.Errorf("%s differs from the pre-filled image in the 4 MiB at offset %d", path, off)
		}
	}
	return nil
}

func (b *pairBench) options() writer.Options {
	return writer.Options{FS: b.fs, BatchRecords: b.c.batchRecords, BatchBytes: b.c.batchBytes, Parallel: b.c.parallel,
		StoreHook: func() error { b.commits.Add(1); return nil }}
}

func (b *pairBench) open() error {
	p, _, err := writer.OpenPair(writer.PairConfig{ID: "bench", Target: b.target,
		JournalDir: filepath.Join(b.c.dir, "journal"), RetentionDir: b.retDir,
		Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge}}, b.options())
	if err != nil {
		return err
	}
	b.pair = p
	return nil
}

// write streams total bytes of random writes of -io-size, aligned to their size
// (as fio's randwrite), as fast as the pair takes them, then waits until
// they are durable.
func (b *pairBench) write(total int64) error {
	blocks := uint64(b.c.targetSize / int64(b.c.ioSize))
	t := time.Now().UTC()
	for n := int64(0); n < total; n += int64(b.c.ioSize) {
		off := int64(b.rng.Uint64N(blocks)) * int64(b.c.ioSize)
		if err := b.pair.Write(b.pair.Next(), off, t, b.bufs[b.rng.IntN(len(b.bufs))], 0); err != nil {
			return err
		}
		t = t.Add(time.Microsecond)
	}
	return b.pair.Sync()
}

func (b *pairBench) drain() error {
	return b.pair.Drain(context.Background())
}

// benchApply measures sustained apply with retention (DESIGN §9, second
// row): after a warm-up that is written and drained, -apply-bytes of
// random writes are journaled, and the figure is those bytes over the
// time from the first write to Drain returning, when every one of them
// has its before-image durable in the retention store, is durable on the
// target, and is committed as applied.
func benchApply(c config) error {
	b, err := newPairBench(c)
	if err != nil {
		return err
	}
	if err := b.open(); err != nil {
		return err
	}
	defer func() {
		if b.pair != nil {
			b.pair.Close()
		}
	}()
	if err := b.write(c.warmup); err != nil {
		return err
	}
	if err := b.drain(); err != nil {
		return err
	}
	// Count only the measured phase.
	fs := b.fs
	fs.reset()
	b.commits.Store(0)
	st0 := b.pair.Status()

	stop, err := profile(c.cpuprofile)
	if err != nil {
		return err
	}
	cpu := cpuNow()
	start := time.Now()
	if err := b.write(c.applyBytes); err != nil {
		stop()
		return err
	}
	journaled := time.Since(start)
	if err := b.drain(); err != nil {
		stop()
		return err
	}
	sec := time.Since(start).Seconds()
	stop()
	usage := cpuSince(cpu)
	st := b.pair.Status()
	writes := c.applyBytes / int64(c.ioSize)
	tgt := fs.byName["target"]
	targetSyncs := tgt.syncs.Load()
	perSync := 0.0
	if targetSyncs > 0 {
		perSync = float64(writes) / float64(targetSyncs)
	}
	kv("figure=apply_retention", "bytes", c.applyBytes, "seconds", sec, "mibps", mib(c.applyBytes)/sec,
		"writes", writes, "io_size", c.ioSize, "target_size", c.targetSize, "warmup", c.warmup,
		"batch_records", c.batchRecords, "batch_bytes", c.batchBytes,
		"writes_per_target_fdatasync", perSync, "catalogue_commits", b.commits.Load(),
		"journaled_s", journaled.Seconds(), "applied_seq", st.AppliedSeq-st0.AppliedSeq,
		"retention_used", st.Retention.UsedBytes)
	kv("cpu", usage...)
	fs.report()
	return nil
}
