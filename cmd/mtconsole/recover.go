package main

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

func newRecoverCmd() *cobra.Command {
	var socket, point, mode, dest, pairs, group string
	var yes, asJSON bool
	c := &cobra.Command{
		Use:   "recover --point P --mode rollback|export [--dest PATH] [--pairs a,b | --group G] [--yes]",
		Short: "Recover pairs to a point through the running agent: export an image, or roll the target back",
		Long: `Recover pairs of the running agent to a point in their retention window.
The recovery runs inside the agent as a job, so a dropped session does not
cut it in half; this command prints the job's progress from the agent's
event stream, and Ctrl-C leaves the job running.

  --mode export    writes the image of the point to --dest (a new file; for
                   several pairs a directory that gets <pair>.img each) and
                   leaves the targets alone; replication goes on.
  --mode rollback  rolls each target itself back in place; the pairs end.
                   Needs --pairs or --group and a typed confirmation (or --yes).

--group G recovers a protected machine: the pairs of group G, to one point
common to all its disks (latest-tag: the latest tag every disk holds).

Points: latest-tag, latest-time, latest-app-consistent, earliest,
tag:NAME (a name or an id), tagid:ID or time:RFC3339. Several pairs recover to one multi-disk point.
When no agent runs, use "mtconsole retention recover|rollback" on the
stores directly.
` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := api.RecoverRequest{Point: point, Mode: mode, Pairs: splitList(pairs), Group: group}
			if group != "" && len(req.Pairs) > 0 {
				return usageError{errors.New("--group and --pairs: give one, a machine's group or its pairs")}
			}
			switch mode {
			case api.ModeExport:
				if dest == "" {
					return usageError{errors.New("--dest is required for an export: a new file, or a directory for several pairs")}
				}
				abs, err := filepath.Abs(dest)
				if err != nil {
					return err
				}
				req.Dest = abs
			case api.ModeRollback:
				if len(req.Pairs) == 0 && group == "" {
					return usageError{errors.New("rollback needs --pairs or --group: name the pairs whose replication ends")}
				}
				if dest != "" {
					return usageError{errors.New("--dest is for exports: a rollback writes the targets in place")}
				}
			default:
				return usageError{fmt.Errorf("--mode %q: want rollback or export", mode)}
			}
			out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
			cl, err := dialAgent(socket)
			if errors.Is(err, api.ErrNoAgent) {
				fmt.Fprintln(errOut, "With no agent running, recover from a pair's store directly: mtconsole retention recover|rollback --dir DIR")
			}
			if err != nil {
				return err
			}
			defer cl.Close()
			if mode == api.ModeRollback && !yes {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return usageError{errors.New("rollback overwrites the targets: confirm with --yes when not at a terminal")}
				}
				want, what := strings.Join(req.Pairs, ","), strings.Join(req.Pairs, ",")
				if group != "" {
					want, what = group, "group "+group
				}
				fmt.Fprintf(out, "This rolls the targets of %s back to %s in place; their replication ends.\nType %q to confirm: ", what, point, want)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(line) != want {
					return errors.New("not confirmed; nothing changed")
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			job, err := cl.Recover(ctx, req)
			if err != nil {
				return agentErr(err)
			}
			if !asJSON {
				ids := slices.Sorted(maps.Keys(job.Points))
				fmt.Fprintf(out, "Job %s: %s of %s\n", job.ID, job.Mode, strings.Join(job.Pairs, ", "))
				for _, id := range ids {
					fmt.Fprintf(out, "  %s at %s\n", id, job.Points[id])
				}
			}
			// FollowJob gives the job's events from the agent's recent
			// history on, and its end even when the stream drops.
			j, err := cl.FollowJob(ctx, job.ID, func(e api.JobEvent) {
				if !asJSON && e.Kind == api.JobProgress {
					fmt.Fprintf(errOut, "  %s %s %s (%d of %d bytes)\n", job.Mode, e.Pair, pctOf(e.Done, e.Total), e.Done, e.Total)
				}
			})
			if ctx.Err() != nil {
				fmt.Fprintf(errOut, "left job %s running in the agent; follow it with mtconsole status --watch\n", job.ID)
				return nil
			}
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(out, j); err != nil {
					return err
				}
			}
			if j.State != api.JobDone {
				return fmt.Errorf("job %s %s: %s", j.ID, j.State, j.Error)
			}
			if !asJSON {
				for _, id := range j.Pairs {
					r := j.Results[id]
					fmt.Fprintf(out, "%s: %d bytes copied, %d bytes restored from %d before-images in %s\n", id, r.Copied, r.Restored,
						r.Records, r.Duration.Round(time.Millisecond))
				}
				fmt.Fprintf(out, "Job %s done in %s\n", j.ID, j.Finished.Sub(j.Started).Round(time.Millisecond))
			}
			return nil
		},
	}
	addSocketFlag(c, &socket)
	c.Flags().StringVar(&point, "point", "latest-tag", "latest-tag, latest-time, latest-app-consistent, earliest, tag:NAME, tagid:ID or time:RFC3339")
	c.Flags().StringVar(&mode, "mode", "", "export (an image to --dest) or rollback (the targets in place; the pairs end)")
	c.Flags().StringVar(&dest, "dest", "", "export: a new file, or a new directory for several pairs")
	c.Flags().StringVar(&pairs, "pairs", "", "comma-separated pair ids (export default: every pair)")
	c.Flags().StringVar(&group, "group", "", "a protected machine's group: its pairs, at the point common to all its disks")
	c.Flags().BoolVar(&yes, "yes", false, "rollback: do not ask for the typed confirmation")
	c.Flags().BoolVar(&asJSON, "json", false, "print the finished job as JSON")
	return c
}

// pctOf is done of total as a percentage, "100.0%" for nothing to do.
func pctOf(done, total int64) string {
	if total <= 0 {
		return "100.0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(done)/float64(total))
}
