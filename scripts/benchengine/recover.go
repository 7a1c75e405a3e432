package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

const startTag = "bench-start"

// benchRecover measures the two recovery modes that write (DESIGN §9,
// "rollback / export"): a tag, then -recover-bytes of random writes are
// applied through a pair into the pre-filled target; then
//
//   - export: recovery.Export of the tag to a new file (copy of the target,
//     then the before-images overlaid, then fdatasync), with the pair held;
//     bytes are copied + restored, as the Result reports them;
//   - rollback: the pair closed, recovery.Rollback of the target in place to
//     the tag; bytes are the before-images written (Result.Restored).
//
// Each figure's time is the call's, measured around it.
func benchRecover(c config) error {
	b, err := newPairBench(c)
	if err != nil {
		return err
	}
	if err := b.open(); err != nil {
		return err
	}
	closed := false
	defer func() {
		if !closed {
			b.pair.Close()
		}
	}()
	if err := b.pair.Tag(b.pair.Next(), journal.TagInfo{Name: startTag, App: journal.AppUser, Time: time.Now().UTC()}); err != nil {
		return err
	}
	if err := b.write(c.recoverBytes); err != nil {
		return err
	}
	if err := b.drain(); err != nil {
		return err
	}
	undo := b.pair.Store().Used()
	b.fs.reset()

	stop, err := profile(c.cpuprofile)
	if err != nil {
		return err
	}
	stop = sync.OnceFunc(stop)
	defer stop()

	// Export, with the applier held.
	exportPath := filepath.Join(c.dir, "export.img")
	b.fs.class(exportPath, "export")
	var exp recovery.Result
	var expSec float64
	var expCPU []any
	err = b.pair.Hold(func(target vfs.File, st *journal.Store) error {
		r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: startTag})
		if err != nil {
			return err
		}
		dst, err := b.fs.OpenFile(exportPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		defer dst.Close()
		cpu := cpuNow()
		t := time.Now()
		exp, err = recovery.Export(context.Background(), st, target, dst, r, nil)
		expSec = time.Since(t).Seconds()
		expCPU = cpuSince(cpu)
		return err
	})
	if err != nil {
		return err
	}
	expBytes := exp.Copied + exp.Restored
	kv("figure=export", "bytes", expBytes, "seconds", expSec, "mibps", mib(expBytes)/expSec,
		"copied", exp.Copied, "restored", exp.Restored, "undo_records", exp.Records, "undo_bytes", undo)
	kv("cpu", expCPU...)
	b.fs.report()

	// Rollback in place, the failback case: the pair ends.
	closed = true
	if err := b.pair.Close(); err != nil {
		return err
	}
	b.fs.reset()
	st, err := journal.OpenStore(journal.StoreOptions{FS: b.fs, Dir: b.retDir})
	if err != nil {
		return err
	}
	defer st.Close()
	tf, err := b.fs.OpenFile(b.target, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer tf.Close()
	r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: startTag})
	if err != nil {
		return err
	}
	cpu := cpuNow()
	t := time.Now()
	rb, err := recovery.Rollback(context.Background(), st, tf, r, nil)
	rbSec := time.Since(t).Seconds()
	rbCPU := cpuSince(cpu)
	if err != nil {
		return err
	}
	kv("figure=rollback", "bytes", rb.Restored, "seconds", rbSec, "mibps", mib(rb.Restored)/rbSec,
		"undo_records", rb.Records, "undo_bytes", undo, "written", c.recoverBytes, "io_size", c.ioSize, "target_size", c.targetSize)
	kv("cpu", rbCPU...)
	b.fs.report()
	stop()

	// Both must be the target as it was at the tag: the pre-filled image.
	if err := verifyPrefill(exportPath, c.targetSize, c.seed); err != nil {
		return fmt.Errorf("export is not the image at the tag: %w", err)
	}
	if err := verifyPrefill(b.target, c.targetSize, c.seed); err != nil {
		return fmt.Errorf("rolled-back target is not the image at the tag: %w", err)
	}
	return nil
}
