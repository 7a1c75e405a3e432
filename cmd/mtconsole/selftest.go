package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
	"github.com/mtconsole/mtconsole/replication/writer"
)

type selftestFlags struct {
	dir      string
	keep     bool
	disks    int
	sizeMB   int
	writes   int
	tagEvery int
	seed     int64
}

func newSelftestCmd() *cobra.Command {
	var f selftestFlags
	c := &cobra.Command{
		Use:   "selftest",
		Short: "Check the engine on this host: journal, apply and retain a workload, recover every tag bit-exact (no root)",
		Long: `selftest runs the replication engine end to end in a temporary directory, as an
unprivileged user: it makes file-backed source and target disks, streams a
random write workload with crash- and application-consistent tags through
the journal, the applier and the retention store, then exports every tag and
checks each image against the source as it was at that tag (SHA-256), and
finally rolls one target back in place to a tag and checks it too.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runSelftest(cmd.OutOrStdout(), f) },
	}
	c.Flags().StringVar(&f.dir, "dir", "", "work in this directory instead of a new temporary one (kept)")
	c.Flags().BoolVar(&f.keep, "keep", false, "keep the temporary directory to look at it with `mtconsole retention`")
	c.Flags().IntVar(&f.disks, "disks", 2, "number of disks")
	c.Flags().IntVar(&f.sizeMB, "size", 32, "size of each disk in MiB")
	c.Flags().IntVar(&f.writes, "writes", 3000, "writes per disk")
	c.Flags().IntVar(&f.tagEvery, "tag-every", 250, "a tag after this many writes (every third is application-consistent)")
	c.Flags().Int64Var(&f.seed, "seed", 1, "workload seed")
	return c
}

type selftestDisk struct {
	id     string
	source *os.File
	pair   *writer.Pair
	tags   map[string][32]byte // source image hash at each tag
	order  []string
}

func runSelftest(out io.Writer, f selftestFlags) error {
	if f.disks < 1 || f.sizeMB < 1 || f.writes < 1 || f.tagEvery < 1 {
		return usageError{errors.New("--disks, --size, --writes and --tag-every must be at least 1")}
	}
	dir := f.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "mtconsole-selftest-")
		if err != nil {
			return err
		}
		dir = d
		if !f.keep {
			defer os.RemoveAll(dir)
		}
	}
	start := time.Now()
	size := int64(f.sizeMB) << 20
	rng := rand.New(rand.NewSource(f.seed))
	fmt.Fprintf(out, "mtconsole selftest in %s: %d disks of %d MiB, %d writes each\n", dir, f.disks, f.sizeMB, f.writes)
	var events atomic.Int64 // the pairs' appliers report concurrently
	w := writer.New(writer.Options{OnEvent: func(writer.Event) { events.Add(1) }}, writer.SpaceOptions{Interval: -1})
	defer w.Close()
	var disks []*selftestDisk
	for i := range f.disks {
		id := fmt.Sprintf("disk%d", i)
		for _, d := range []string{"sources", "targets", "journal", "retention", "exports"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
				return err
			}
		}
		// The failback case: the target already holds the source's data.
		img := make([]byte, size)
		rng.Read(img)
		src := filepath.Join(dir, "sources", id+".img")
		tgt := filepath.Join(dir, "targets", id+".img")
		for _, p := range []string{src, tgt} {
			if err := os.WriteFile(p, img, 0o600); err != nil {
				return err
			}
		}
		sf, err := os.OpenFile(src, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		defer sf.Close()
		p, _, err := w.Open(writer.PairConfig{ID: id, Target: tgt, JournalDir: filepath.Join(dir, "journal", id),
			RetentionDir: filepath.Join(dir, "retention", id), Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge},
			UndoSegmentSize: 4 << 20, JournalSegmentSize: 16 << 20})
		if err != nil {
			return err
		}
		disks = append(disks, &selftestDisk{id: id, source: sf, pair: p, tags: map[string][32]byte{}})
	}

	// The workload: random writes of 4-64 KiB to each source, streamed to
	// the master target with consecutive sequence numbers, and a tag every
	// --tag-every writes.
	clock := time.Now().UTC()
	ntag := 0
	for n := 1; n <= f.writes; n++ {
		clock = clock.Add(time.Millisecond)
		for _, d := range disks {
			blocks := 1 + rng.Intn(16)
			data := make([]byte, blocks*4096)
			rng.Read(data)
			off := int64(rng.Intn(int(size/4096)-blocks+1)) * 4096
			if _, err := d.source.WriteAt(data, off); err != nil {
				return err
			}
			if err := d.pair.Write(d.pair.Next(), off, clock, data, 0); err != nil {
				return err
			}
		}
		if n%f.tagEvery == 0 {
			ntag++
			app := journal.AppCrash
			if ntag%3 == 0 {
				app = journal.AppFS
			}
			tag := journal.TagInfo{Name: fmt.Sprintf("%s_%s_%03d", app, clock.Format("150405"), ntag), App: app,
				ID: fmt.Sprintf("selftest-%d-%d", f.seed, ntag), Time: clock}
			for _, d := range disks {
				if err := d.pair.Tag(d.pair.Next(), tag); err != nil {
					return err
				}
				h, err := hashFile(d.source, size)
				if err != nil {
					return err
				}
				d.tags[tag.Name] = h
				d.order = append(d.order, tag.Name)
			}
		}
	}
	for _, d := range disks {
		if err := d.pair.Sync(); err != nil {
			return err
		}
		if err := d.pair.Drain(context.Background()); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "replicated %d writes and %d tags per disk in %s\n\n", f.writes, ntag, time.Since(start).Round(time.Millisecond))

	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PAIR\tAPPLIED\tRETENTION\tWINDOW (UTC)\tTAGS\tHEALTH")
	for _, d := range disks {
		s := d.pair.Status()
		fmt.Fprintf(tw, "%s\tseq %d\t%.1f MB\t%s .. %s\t%d\t%s\n", s.ID, s.AppliedSeq, float64(s.Retention.UsedBytes)/1e6,
			s.Retention.From.Format("15:04:05.000"), s.Retention.To.Format("15:04:05.000"), s.Retention.Tags, s.Health)
	}
	tw.Flush()

	fmt.Fprintln(out, "\nexporting every tag and comparing with the source at that tag:")
	ok, bad := 0, 0
	for _, d := range disks {
		for _, name := range d.order {
			dest := filepath.Join(dir, "exports", d.id+"-"+name+".img")
			r, err := recovery.Resolve(d.pair.Store(), recovery.Point{Kind: recovery.TagNamed, Name: name})
			if err != nil {
				return err
			}
			if _, err := d.pair.Export(context.Background(), r, dest, nil); err != nil {
				return err
			}
			df, err := os.Open(dest)
			if err != nil {
				return err
			}
			got, err := hashFile(df, size)
			df.Close()
			if err != nil {
				return err
			}
			os.Remove(dest)
			verdict := "bit-exact"
			if got != d.tags[name] {
				verdict = "DIFFERS"
				bad++
			} else {
				ok++
			}
			fmt.Fprintf(out, "  %s %-24s sha256 %x…  %s\n", d.id, name, got[:6], verdict)
		}
	}

	// Roll the first disk back in place to its middle tag: the failback case.
	d := disks[0]
	if len(d.order) > 0 {
		name := d.order[len(d.order)/2]
		tgt := d.pair.Status().Target
		retDir := filepath.Join(dir, "retention", d.id)
		if err := w.Remove(d.id); err != nil {
			return err
		}
		st, err := journal.OpenStore(journal.StoreOptions{Dir: retDir})
		if err != nil {
			return err
		}
		tf, err := vfs.OS.OpenFile(tgt, os.O_RDWR, 0)
		if err != nil {
			st.Close()
			return err
		}
		r, err := recovery.Resolve(st, recovery.Point{Kind: recovery.TagNamed, Name: name})
		if err == nil {
			var res recovery.Result
			res, err = recovery.Rollback(context.Background(), st, tf, r, nil)
			if err == nil {
				var h [32]byte
				h, err = hashFile(tf.(interface{ OSFile() *os.File }).OSFile(), size)
				verdict := "bit-exact"
				if h != d.tags[name] {
					verdict = "DIFFERS"
					bad++
				} else {
					ok++
				}
				fmt.Fprintf(out, "\nrolled %s back in place to %s: %.1f MB restored in %s, %s\n", d.id, name, float64(res.Restored)/1e6, res.Duration.Round(time.Millisecond), verdict)
			}
		}
		tf.Close()
		st.Close()
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "\n%d images checked: %d bit-exact, %d differ; %d engine events; total %s\n", ok+bad, ok, bad, events.Load(), time.Since(start).Round(time.Millisecond))
	if f.keep || f.dir != "" {
		// the last disk: with more than one, it was not rolled back
		ret := filepath.Join(dir, "retention", disks[len(disks)-1].id)
		fmt.Fprintf(out, "\nkept %s; look inside with:\n  mtconsole retention summary --verbose --dir %s\n  mtconsole retention events --dir %s\n",
			dir, ret, ret)
	}
	if bad > 0 {
		return fmt.Errorf("%d recovered images differ from the source", bad)
	}
	return nil
}

func hashFile(f *os.File, size int64) ([32]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, size)); err != nil {
		return [32]byte{}, err
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out, nil
}
