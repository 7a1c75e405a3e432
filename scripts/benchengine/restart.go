package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent"
)

var restartJournal int64

func init() {
	flag.Int64Var(&restartJournal, "restart-journal-bytes", 8<<20, "restart: bytes journaled per pair before the clean stop")
}

// benchRestart: rc.pairs pairs of rc.pairSize-byte targets, each with
// restartJournal bytes of 64 KiB writes journaled (the applier paused, so
// they stay in the journal), closed cleanly; then the time from agent.New
// to every pair open and accepting writes, as a restarted agent does.
func benchRestart(c config) error {
	disks := filepath.Join(c.dir, "disks")
	if err := os.MkdirAll(disks, 0o700); err != nil {
		return err
	}
	var pcs []agent.PairConfig
	for i := range rc.pairs {
		tgt := filepath.Join(disks, fmt.Sprintf("t%03d.img", i))
		f, err := os.OpenFile(tgt, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		err = f.Truncate(rc.pairSize)
		f.Close()
		if err != nil {
			return err
		}
		pcs = append(pcs, pairConfig(c.dir, fmt.Sprintf("p%03d", i), fmt.Sprintf("d%03d", i), tgt))
	}
	cfg, err := agentConfig(c.dir, "127.0.0.1:1", false, pcs)
	if err != nil {
		return err
	}
	cl, err := agent.New(cfg)
	if err != nil {
		return err
	}
	data := make([]byte, 64<<10)
	for i := range data {
		data[i] = byte(i*7 + 1)
	}
	for _, pc := range pcs {
		p := cl.Pair(pc.Disk)
		if err := p.Pause("benchmark: keep the journal"); err != nil {
			return err
		}
		for n, seq := int64(0), p.Next(); n < restartJournal; n, seq = n+int64(len(data)), seq+1 {
			off := (int64(seq) * int64(len(data))) % (rc.pairSize - int64(len(data)))
			if err := p.Write(seq, off, time.Now(), data, 0); err != nil {
				return err
			}
		}
		if err := p.Sync(); err != nil {
			return err
		}
	}
	if err := cl.Close(); err != nil {
		return err
	}
	t0 := time.Now()
	cl, err = agent.New(cfg)
	if err != nil {
		return err
	}
	secs := time.Since(t0).Seconds()
	for _, pc := range pcs {
		p := cl.Pair(pc.Disk)
		if p == nil || p.Err() != nil {
			return fmt.Errorf("pair %s not open after the restart", pc.ID)
		}
	}
	kv("figure=restart_64", "seconds", secs, "pairs", rc.pairs, "pair_size", rc.pairSize,
		"journal_bytes_per_pair", restartJournal)
	return cl.Close()
}
