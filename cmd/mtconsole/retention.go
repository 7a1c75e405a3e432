package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/recovery"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

func newRetentionCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "retention",
		Short: "Inspect a pair's retention store and recover from it (the cdpcli twins)",
		Long: `Inspect a pair's retention store and recover from it.

These are the twins of cdpcli: summary (--showsummary), events
(--listevents), recover (--recover, to another file or device) and
rollback (--rollback, in place). They open the store directly, so the
pair must not be running in an agent. Times are UTC.`,
	}
	c.Args = usageArgs(cobra.NoArgs)
	c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	c.AddCommand(newRetentionSummaryCmd(), newRetentionEventsCmd(), newRetentionRecoverCmd(),
		newRetentionRollbackCmd(), newRetentionLockCmd(true), newRetentionLockCmd(false), newRetentionRepairCmd())
	return c
}

// cdpTime formats t as cdpcli did: yr/mm/dd hr:min:sec:millisec:usec:nanosec.
func cdpTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	t = t.UTC()
	ns := t.Nanosecond()
	return fmt.Sprintf("%s:%03d:%03d:%03d", t.Format("2006/01/02 15:04:05"), ns/1e6, ns/1e3%1000, ns%1000)
}

func openStore(dir string, readOnly bool) (*journal.Store, error) {
	if dir == "" {
		return nil, usageError{errors.New("--dir is required: the pair's retention directory (it holds catalogue.db)")}
	}
	if _, err := os.Stat(filepath.Join(dir, "catalogue.db")); err != nil {
		// Opened read-only, the store names the missing catalogue and
		// the undo segments beside it, and creates nothing.
		if _, err := journal.OpenStore(journal.StoreOptions{Dir: dir, ReadOnly: true}); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s: no retention catalogue here (catalogue.db): is --dir the pair's retention directory?", dir)
	}
	return journal.OpenStore(journal.StoreOptions{Dir: dir, ReadOnly: readOnly})
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type summary struct {
	Database  string          `json:"database"`
	Version   int             `json:"version"`
	Pair      string          `json:"pair"`
	Target    string          `json:"target"`
	State     string          `json:"state"`
	Reason    string          `json:"reason,omitempty"`
	LogType   string          `json:"log_type"`
	UsedBytes int64           `json:"disk_space_bytes"`
	DataFiles int             `json:"data_files"`
	From      time.Time       `json:"from"`
	To        time.Time       `json:"to"`
	FromSeq   uint64          `json:"from_seq"`
	ToSeq     uint64          `json:"to_seq"`
	Policy    journal.Policy  `json:"policy"`
	Events    map[string]int  `json:"events_by_application"`
	Ranges    []journal.Range `json:"ranges"`
	// Sparse is the policy's tiers in the original's words, Tiers each
	// with the oldest point it holds now.
	Sparse string        `json:"sparse,omitempty"`
	Tiers  []tierSummary `json:"tiers,omitempty"`
}

// tierSummary is one sparse-retention tier and the oldest point the store
// holds whose age falls in it: a kept tag, or, where every write is kept,
// the oldest write there (AllWrites; TierStart when that is the tier's
// start, every write being kept from further back).
type tierSummary struct {
	Tier      int          `json:"tier"`
	Keeps     string       `json:"keeps"`
	Earliest  *time.Time   `json:"earliest,omitempty"` // nil: none yet
	Seq       uint64       `json:"earliest_seq,omitempty"`
	Tag       *journal.Tag `json:"earliest_tag,omitempty"`
	AllWrites bool         `json:"all_writes,omitempty"`
	TierStart bool         `json:"tier_start,omitempty"`
}

// summaryNow places the tiers in time (tests inject a clock).
var summaryNow = time.Now

// tierSummaries finds, per tier, the oldest recoverable point whose age
// at now lies in it.
func tierSummaries(st *journal.Store, now time.Time) []tierSummary {
	pol := st.Policy()
	if len(pol.Tiers) == 0 {
		return nil
	}
	eSeq, eTime := st.Earliest()
	allSeq, allTime := eSeq, eTime
	if sp := st.Sparse(); sp.Upto > eSeq {
		allSeq, allTime = sp.Upto, sp.UptoTime
	}
	tags := st.Tags()
	var out []tierSummary
	for i, tr := range pol.Tiers {
		ts := tierSummary{Tier: i + 1, Keeps: journal.DescribeTiers([]journal.Tier{tr})}
		set := func(at time.Time, seq uint64, tag *journal.Tag, all, start bool) {
			if ts.Earliest == nil || at.Before(*ts.Earliest) {
				ts.Earliest, ts.Seq, ts.Tag, ts.AllWrites, ts.TierStart = &at, seq, tag, all, start
			}
		}
		from := now.Add(-tr.End())
		if !allTime.After(now.Add(-tr.Start)) || i == 0 {
			// every write from allTime on: the tier's oldest is allTime,
			// or the tier's start when allTime is older still
			if allTime.After(from) {
				set(allTime, allSeq, nil, true, false)
			} else {
				set(from, 0, nil, true, true)
			}
		}
		for _, t := range tags {
			if t.Seq >= eSeq && t.Seq < allSeq && t.Time.After(from) && !t.Time.After(now.Add(-tr.Start)) {
				set(t.Time, t.Seq, &t, false, false)
			}
		}
		out = append(out, ts)
	}
	return out
}

func newRetentionSummaryCmd() *cobra.Command {
	var dir string
	var asJSON, verbose bool
	c := &cobra.Command{
		Use:   "summary",
		Short: "Show the recovery window, space used and events by application (cdpcli --showsummary)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(dir, true)
			if err != nil {
				return err
			}
			defer st.Close()
			ps := st.State()
			eSeq, eTime := st.Earliest()
			s := summary{Database: filepath.Join(dir, "catalogue.db"), Version: 1, Pair: ps.Pair, Target: ps.Target, State: ps.State,
				Reason: ps.Reason, LogType: "Roll-Backward", UsedBytes: st.Used(), DataFiles: len(st.Segments()),
				From: eTime, To: ps.AppliedTime, FromSeq: eSeq, ToSeq: ps.Applied, Policy: st.Policy(), Events: map[string]int{},
				Ranges: st.Ranges()}
			if pol := st.Policy(); len(pol.Tiers) > 0 {
				s.Sparse = journal.DescribeTiers(pol.Tiers)
				s.Tiers = tierSummaries(st, summaryNow())
			}
			for _, t := range st.Tags() {
				s.Events[t.App]++
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return writeJSON(out, s)
			}
			fmt.Fprintf(out, "Database: %s\nVersion: %d\nPair: %s\nTarget: %s\nState: %s", s.Database, s.Version, s.Pair, s.Target, s.State)
			if s.Reason != "" {
				fmt.Fprintf(out, " (%s)", s.Reason)
			}
			fmt.Fprintf(out, "\nLog Type: %s\nDisk Space (app): %d bytes\nTotal Data Files: %d\n", s.LogType, s.UsedBytes, s.DataFiles)
			if s.To.IsZero() {
				fmt.Fprintln(out, "Recovery Time Range(GMT): Not Available")
			} else {
				fmt.Fprintf(out, "Recovery Time Range(GMT): %s to %s\n", cdpTime(s.From), cdpTime(s.To))
			}
			fmt.Fprintf(out, "Policy: %s\n", policyText(s.Policy))
			if s.Sparse != "" {
				fmt.Fprintf(out, "Sparse Retention: %s\n", s.Sparse)
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "Tier\tKeeps\tEarliest Point(GMT)")
				for _, t := range s.Tiers {
					at := "none yet"
					switch {
					case t.Earliest != nil && t.Tag != nil:
						at = fmt.Sprintf("%s  tag %s", cdpTime(*t.Earliest), t.Tag.Name)
					case t.Earliest != nil:
						at = fmt.Sprintf("%s  every write from here", cdpTime(*t.Earliest))
						if t.TierStart {
							at = fmt.Sprintf("%s  every write in the tier", cdpTime(*t.Earliest))
						}
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\n", t.Tier, t.Keeps, at)
				}
				tw.Flush()
			}
			fmt.Fprintf(out, "\nConsistency Event Summary\n")
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "Application\tNum. Events")
			apps := make([]string, 0, len(s.Events))
			for a := range s.Events {
				apps = append(apps, a)
			}
			sort.Strings(apps)
			for _, a := range apps {
				fmt.Fprintf(tw, "%s\t%d\n", a, s.Events[a])
			}
			tw.Flush()
			if verbose {
				fmt.Fprintln(out, "\nTime Range Summary")
				tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "No.\tStartTime(GMT)\tEndTime(GMT)\tAccuracy")
				for i, r := range s.Ranges {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", i+1, cdpTime(r.FirstTime), cdpTime(r.LastTime), r.Accuracy)
				}
				tw.Flush()
				fmt.Fprintf(out, "Total Ranges:%d\n", len(s.Ranges))
			}
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "the pair's retention directory")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.Flags().BoolVar(&verbose, "verbose", false, "also list the recovery time ranges")
	return c
}

func policyText(p journal.Policy) string {
	s := "retain everything"
	if p.Window > 0 {
		s = "retain " + windowText(p.Window)
	}
	if p.SizeCap > 0 {
		s += fmt.Sprintf(", size cap %d MB", p.SizeCap/1e6)
	}
	return s + ", when full: " + string(p.OnFull)
}

func newRetentionEventsCmd() *cobra.Command {
	var dir, app, sortBy string
	var asJSON, locked, nameValue bool
	c := &cobra.Command{
		Use:   "events",
		Short: "List the consistency events (tags) in the retention window (cdpcli --listevents)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(dir, true)
			if err != nil {
				return err
			}
			defer st.Close()
			var tags []journal.Tag
			for _, t := range st.Tags() {
				if (app == "" || strings.EqualFold(t.App, app)) && (!locked || t.Locked) {
					tags = append(tags, t)
				}
			}
			less := map[string]func(a, b journal.Tag) bool{
				"time":     func(a, b journal.Tag) bool { return a.Seq > b.Seq },
				"app":      func(a, b journal.Tag) bool { return a.App < b.App },
				"event":    func(a, b journal.Tag) bool { return a.Name < b.Name },
				"accuracy": func(a, b journal.Tag) bool { return a.Accuracy < b.Accuracy },
			}[sortBy]
			if less == nil {
				return usageError{fmt.Errorf("--sort %q: want time, app, event or accuracy", sortBy)}
			}
			// Events that sort equal stay newest first, as --sort time lists them.
			slices.Reverse(tags)
			sort.SliceStable(tags, func(i, j int) bool { return less(tags[i], tags[j]) })
			out := cmd.OutOrStdout()
			if asJSON {
				if tags == nil {
					tags = []journal.Tag{}
				}
				return writeJSON(out, tags)
			}
			if nameValue {
				for i, t := range tags {
					fmt.Fprintf(out, "No.=%d\nTimeStamp(GMT)=%s\nAccuracy=%s\nApplication=%s\nEvent=%s\nIdentifier=%s\nSequence=%d\nVerified=%s\nlockedstatus=%s\n\n",
						i+1, cdpTime(t.Time), t.Accuracy, t.App, t.Name, t.ID, t.Seq, units.YesNo(t.Verified), lockedText(t.Locked))
				}
			} else {
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "No.\tTimeStamp(GMT)\tAccuracy\tApplication\tEvent\tLocked")
				for i, t := range tags {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, cdpTime(t.Time), t.Accuracy, t.App, t.Name, units.YesNo(t.Locked))
				}
				tw.Flush()
			}
			fmt.Fprintf(out, "Total Events:%d\n", len(tags))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "the pair's retention directory")
	c.Flags().StringVar(&app, "app", "", "only events of this application type (CRASH, FS, USERDEFINED, ...)")
	c.Flags().StringVar(&sortBy, "sort", "time", "order: time (newest first), app, event or accuracy")
	c.Flags().BoolVar(&locked, "locked", false, "only locked bookmarks")
	c.Flags().BoolVar(&nameValue, "namevalue", false, "print name=value lines with every field")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func lockedText(b bool) string {
	if b {
		return "locked"
	}
	return "unlocked"
}

func newRetentionLockCmd(lock bool) *cobra.Command {
	var dir string
	use, short := "unlock TAG", "Unlock a bookmark so pruning may remove it"
	if lock {
		use, short = "lock TAG", "Lock a bookmark so pruning keeps it (cdpcli --lockbookmark)"
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openStore(dir, false)
			if err != nil {
				return err
			}
			defer st.Close()
			t, err := st.SetTagLock(args[0], lock)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s %s (sequence %d, %s UTC)\n", lockedText(t.Locked), t.Name, t.Seq, cdpTime(t.Time))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "the pair's retention directory")
	return c
}

// recoverFlags are shared by recover and rollback.
type recoverFlags struct {
	dir, point, target string
	asJSON             bool
}

func (f *recoverFlags) add(c *cobra.Command) {
	c.Flags().StringVar(&f.dir, "dir", "", "the pair's retention directory")
	c.Flags().StringVar(&f.point, "point", "latest-tag", "latest-tag, latest-time, latest-app-consistent, earliest, tag:NAME, tagid:ID or time:RFC3339")
	c.Flags().StringVar(&f.target, "target", "", "the pair's target (default: as recorded in the catalogue)")
	c.Flags().BoolVar(&f.asJSON, "json", false, "print the result as JSON")
}

// openRecover opens the store of --dir and the target, and resolves
// --point: read-only for an export, which changes neither.
func openRecover(f recoverFlags, readOnly bool) (*journal.Store, vfs.File, recovery.Resolved, error) {
	p, err := recovery.ParsePoint(f.point)
	if err != nil {
		return nil, nil, recovery.Resolved{}, usageError{fmt.Errorf("--point: %w", err)}
	}
	st, err := openStore(f.dir, readOnly)
	if err != nil {
		return nil, nil, recovery.Resolved{}, err
	}
	tf, r, err := recovery.OpenTarget(st, vfs.OS, f.target, p, readOnly)
	if err != nil {
		st.Close()
		if errors.Is(err, recovery.ErrNoTarget) {
			err = usageError{errors.New("--target is required: the catalogue does not record the pair's target")}
		}
		return nil, nil, recovery.Resolved{}, err
	}
	return st, tf, r, nil
}

// checkRecoverDest refuses a --dest that is one of the pair's own files
// (recovery.PairGuard). It reads the store only.
func checkRecoverDest(f recoverFlags, dest string) error {
	st, err := openStore(f.dir, true)
	if err != nil {
		return err
	}
	ps := st.State()
	st.Close()
	if err := recovery.PairGuard(ps, f.dir, f.target).Check(dest); err != nil {
		return fmt.Errorf("--dest: %w; nothing was written", err)
	}
	return nil
}

func progressPrinter(w io.Writer, quiet bool) recovery.Progress {
	if quiet {
		return nil
	}
	last := time.Time{}
	start := time.Now()
	return func(done, total int64) {
		if time.Since(last) < 500*time.Millisecond && done < total {
			return
		}
		last = time.Now()
		pct := 100.0
		if total > 0 {
			pct = 100 * float64(done) / float64(total)
		}
		eta := ""
		if done > 0 && done < total {
			eta = fmt.Sprintf(", ETA %s", (time.Duration(float64(time.Since(start)) * float64(total-done) / float64(done))).Round(time.Second))
		}
		fmt.Fprintf(w, "  %5.1f%%  %d of %d bytes%s\n", pct, done, total, eta)
	}
}

func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

func newRetentionRecoverCmd() *cobra.Command {
	var f recoverFlags
	var dest string
	var force bool
	c := &cobra.Command{
		Use:   "recover --dir DIR --point POINT --dest PATH",
		Short: "Write the image of a recovery point to a new file or a device; the target is untouched (cdpcli --recover)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dest == "" {
				return usageError{errors.New("--dest is required: a new file, or a device with --force")}
			}
			// The pair's own files are never a destination, --force or not;
			// checked before the store is opened for writing.
			if err := checkRecoverDest(f, dest); err != nil {
				return err
			}
			st, tf, r, err := openRecover(f, true)
			if err != nil {
				return err
			}
			defer st.Close()
			defer tf.Close()
			if fi, err := os.Stat(dest); err == nil && !force {
				if fi.Mode()&os.ModeDevice != 0 {
					return fmt.Errorf("--dest %s is a device; give a new file, or --force to write the image onto the device", dest)
				}
				return fmt.Errorf("--dest %s exists; give a new path, or --force to replace it once the new image is complete", dest)
			}
			ctx, cancel := signalContext()
			defer cancel()
			out := cmd.OutOrStdout()
			if !f.asJSON {
				fmt.Fprintf(out, "Exporting pair %s at %s to %s\n", r.Pair, r, dest)
			}
			res, err := recovery.ExportTo(ctx, st, tf, vfs.OS, dest, r, recovery.ExportOptions{Replace: force, Device: force},
				progressPrinter(cmd.ErrOrStderr(), f.asJSON))
			if err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(out, res)
			}
			fmt.Fprintf(out, "Done: %d bytes from the target, %d bytes from %d before-images, in %s\n", res.Copied, res.Restored, res.Records, res.Duration.Round(time.Millisecond))
			return nil
		},
	}
	f.add(c)
	c.Flags().StringVar(&dest, "dest", "", "where to write the image: a new file (written as PATH.partial, renamed when complete), or an existing file or device with --force")
	c.Flags().BoolVar(&force, "force", false, "replace --dest if it is a file (only once the new image is complete), or write onto it if it is a block device; never a file of the pair")
	return c
}

func newRetentionRollbackCmd() *cobra.Command {
	var f recoverFlags
	var yes, abandon bool
	c := &cobra.Command{
		Use:   "rollback --dir DIR --point POINT",
		Short: "Roll the target itself back to a recovery point; the pair ends (cdpcli --rollback)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if abandon {
				return abandonRollback(cmd, f.dir)
			}
			st, tf, r, err := openRecover(f, false)
			if err != nil {
				return err
			}
			defer st.Close()
			defer tf.Close()
			out := cmd.OutOrStdout()
			if !yes {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return usageError{errors.New("rollback overwrites the target: confirm with --yes when not at a terminal")}
				}
				fmt.Fprintf(out, "This rolls %s back to %s.\nReplication of pair %s ends. Type the pair id to confirm: ", tf.Name(), r, r.Pair)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(line) != r.Pair {
					return errors.New("not confirmed; nothing changed")
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			res, err := recovery.Rollback(ctx, st, tf, r, progressPrinter(cmd.ErrOrStderr(), f.asJSON))
			if err != nil {
				return err
			}
			if f.asJSON {
				return writeJSON(out, res)
			}
			fmt.Fprintf(out, "Rolled back %s to %s: %d bytes restored from %d before-images in %s\n", tf.Name(), r, res.Restored, res.Records, res.Duration.Round(time.Millisecond))
			return nil
		},
	}
	f.add(c)
	c.Flags().BoolVar(&yes, "yes", false, "do not ask for the typed confirmation")
	c.Flags().BoolVar(&abandon, "abandon", false, "give up an unfinished rollback that has not written to the target yet: the pair is Active again")
	return c
}

func windowText(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	}
	return d.String()
}

func plural(n int64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
