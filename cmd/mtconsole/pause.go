package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// newPauseCmd is pause (pause true) or resume.
func newPauseCmd(pause bool) *cobra.Command {
	var socket, reason string
	use, short, long := "resume PAIR", "Resume applying a paused pair", `Resume applying writes of pair PAIR to its target.`
	if pause {
		use, short, long = "pause PAIR", "Stop applying a pair's writes to its target (they are still journaled)",
			`Stop applying the writes of pair PAIR to its target. Writes are still
journaled and acknowledged until the journal is full; the pause survives a
restart of the agent. "mtconsole resume PAIR" undoes it.`
	}
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long + "\n" + exitCodesHelp,
		Args:  usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAgent(socket, func(ctx context.Context, cl *api.Client) error {
				call := func(ctx context.Context, id string) (api.PairStatus, error) { return cl.Resume(ctx, id) }
				if pause {
					call = func(ctx context.Context, id string) (api.PairStatus, error) { return cl.Pause(ctx, id, reason) }
				}
				st, err := call(ctx, args[0])
				if err != nil {
					return agentErr(err)
				}
				health := st.Health
				if st.Reason != "" {
					health += ": " + st.Reason
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", st.ID, health)
				return nil
			})
		},
	}
	addSocketFlag(c, &socket)
	if pause {
		c.Flags().StringVar(&reason, "reason", "", "why, shown in status (default: paused by the administrator)")
	}
	return c
}
