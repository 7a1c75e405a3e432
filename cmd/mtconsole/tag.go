package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

func newTagCmd() *cobra.Command {
	var socket, pairs, app string
	var asJSON bool
	c := &cobra.Command{
		Use:   "tag NAME [--pairs a,b] [--app TYPE]",
		Short: "Tag the present in the agent's pairs: a named point to recover to",
		Long: `Place a tag named NAME on each pair (all by default): the agent asks the
process server, which issues it at one point of the sources' write order
(no write lands on one disk between the tags of two), so the pairs can be
recovered together with "mtconsole recover --point tag:NAME". Every pair
must be connected and in Differential Sync (a point inside a resync is not
consistent); otherwise nothing is tagged and the command says which pair
is not ready. A name one of the pairs already holds is refused (exit 1),
so tag:NAME always names one point; a name is at most 128 bytes, without
control characters or spaces at its ends. Crash- and application-
consistent tags on a schedule come from the process server too.
` + exitCodesHelp,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAgent(socket, func(ctx context.Context, cl *api.Client) error {
				res, err := cl.Tag(ctx, api.TagRequest{Name: args[0], App: app, Pairs: splitList(pairs)})
				if err != nil {
					return agentErr(err)
				}
				out := cmd.OutOrStdout()
				if asJSON {
					return writeJSON(out, res)
				}
				ids := make([]string, 0, len(res.Pairs))
				for id := range res.Pairs {
					ids = append(ids, id)
				}
				slices.Sort(ids)
				fmt.Fprintf(out, "Tagged %s (%s, id %s) at %s UTC:\n", res.Name, res.App, res.ID, cdpTime(res.Time))
				for _, id := range ids {
					fmt.Fprintf(out, "  %s sequence %d\n", id, res.Pairs[id])
				}
				return nil
			})
		},
	}
	addSocketFlag(c, &socket)
	c.Flags().StringVar(&pairs, "pairs", "", "comma-separated pair ids (default: every pair)")
	c.Flags().StringVar(&app, "app", "", "application type of the tag (default USERDEFINED)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}
