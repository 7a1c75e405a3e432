package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// abandonRollback is `retention rollback --abandon`: an unfinished
// rollback that wrote nothing to the target is given up.
func abandonRollback(cmd *cobra.Command, dir string) error {
	st, err := openStore(dir, false)
	if err != nil {
		return err
	}
	defer st.Close()
	s := st.State()
	if err := st.AbandonRollback(); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "Abandoned the rollback of pair %s to sequence %d: it had written nothing to the target. The pair is Active again.\n", s.Pair, s.RollbackTo)
	return nil
}

func newRetentionRepairCmd() *cobra.Command {
	var dir string
	var yes, asJSON bool
	c := &cobra.Command{
		Use:   "repair --dir DIR [--yes]",
		Short: "Check every before-image; with --yes, move the recovery window past damaged ones",
		Long: `Check every undo segment of a pair's retention store record by record and
report each one whole or damaged, with the sequences whose before-images are
lost. Points before damage cannot be recovered; newer ones still can.

Without --yes nothing changes. With --yes the oldest segments, up to and
including the newest damaged one, are removed whole with the bookmarks
before it (locked ones too): the earliest recoverable point moves past the
damage. The target is never touched.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openStore(dir, !yes)
			if err != nil {
				return err
			}
			defer st.Close()
			out := cmd.OutOrStdout()
			var res journal.RepairResult
			if yes {
				res, err = st.Repair()
			} else {
				res.Report, err = st.Verify()
			}
			if err != nil {
				return err
			}
			rep := res.Report
			if asJSON {
				return writeJSON(out, res)
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "Segment\tSequences\tRecords\tStatus")
			for _, g := range rep.Segments {
				status := "ok"
				if d := g.Damage; d != nil {
					status = fmt.Sprintf("damaged at offset %d: %s; sequences %d-%d lost", d.Offset, d.Why, d.LostFrom, d.LostTo)
				}
				fmt.Fprintf(tw, "%d\t%d-%d\t%d\t%s\n", g.Index, g.FirstSeq, g.LastSeq, g.Records, status)
			}
			tw.Flush()
			if rep.Damaged == 0 {
				fmt.Fprintf(out, "All %d segments are whole: nothing to repair.\n", len(rep.Segments))
				return nil
			}
			if !yes {
				fmt.Fprintf(out, "%d damaged segment(s): points before sequence %d cannot be recovered; sequence %d (%s UTC) and newer still can.\n"+
					"Nothing was changed. Run again with --yes to remove the segments up to the newest damaged one (older ones too: no point before the damage can be recovered).\n",
					rep.Damaged, rep.Earliest, rep.Earliest, cdpTime(rep.EarliestTime))
				return nil
			}
			fmt.Fprintf(out, "Removed %d oldest segment(s), %d bytes, through the newest damaged one", res.Segments, res.Bytes)
			if len(res.Tags) > 0 {
				fmt.Fprintf(out, ", and %d bookmark(s) before it:", len(res.Tags))
				for _, t := range res.Tags {
					l := ""
					if t.Locked {
						l = " (locked)"
					}
					fmt.Fprintf(out, " %s%s", t.Name, l)
				}
			}
			fmt.Fprintf(out, ".\nThe earliest recoverable point is now sequence %d (%s UTC). The target was not touched.\n", res.Earliest, cdpTime(res.EarliestTime))
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "the pair's retention directory")
	c.Flags().BoolVar(&yes, "yes", false, "remove the damaged segments and all older ones (without it: report only)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
