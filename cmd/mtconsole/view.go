package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// newViewCmd is `mtconsole view`: point-in-time views served over NBD by
// the agent.
func newViewCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "view",
		Short: "Mount a point in time of a pair or group read-only (or with a discarded overlay) over NBD",
		Long: `A view is a disk as it was at a recovery point, served by the agent over
NBD without copying anything: to test a failback, look for a file, or copy
the image out, while the pair keeps replicating. The agent keeps what the
view reads (pruning waits and says so) until it is closed; views live in
the agent, so they survive a dropped SSH session, and close when the agent
stops.`,
	}
	c.AddCommand(newViewOpenCmd(), newViewListCmd(), newViewCloseCmd())
	return c
}

func newViewOpenCmd() *cobra.Command {
	var socket, point, pair, group, listen, overlayCap string
	var writable, asJSON bool
	c := &cobra.Command{
		Use:   "open --pair P | --group G --point POINT [--writable [--overlay-cap SIZE]] [--listen unix:PATH|tcp:HOST:PORT]",
		Short: "Open a view of a recovery point and print how to attach it",
		Long: `Open a view of pair P (or of every pair of group G, at one point common to
all) at POINT: latest-tag, latest-time, latest-app-consistent, earliest,
tag:NAME, tagid:ID or time:RFC3339. A point outside the retention window
is refused with the nearest points kept.

The view is served over NBD on a unix socket in the agent's runtime
directory (or --listen unix:PATH, or tcp:HOST:PORT: NBD has no
authentication, so bind to an address only trusted hosts reach), one
export per pair, named after the pair. It is read-only: a client's write
fails with EPERM. --writable keeps a copy-on-write overlay in the
retention volume, at most --overlay-cap per disk (default 1 GiB; a write
past it fails with ENOSPC), discarded when the view closes: the target
and the retention store are never written.

While a view of a pair is open, a rollback of that pair is refused (and
a view of a pair being rolled back).
` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (pair == "") == (group == "") {
				return usageError{errors.New("give --pair P or --group G: the disks to view")}
			}
			if point == "" {
				return usageError{errors.New("--point is needed: latest-tag, latest-time, latest-app-consistent, earliest, tag:NAME, tagid:ID or time:RFC3339")}
			}
			req := api.ViewRequest{Point: point, Group: group, Writable: writable, Listen: listen}
			if pair != "" {
				req.Pairs = splitList(pair)
			}
			if overlayCap != "" {
				if !writable {
					return usageError{errors.New("--overlay-cap is for --writable views")}
				}
				n, err := units.ParseBytes(overlayCap)
				if err != nil || n <= 0 {
					return usageError{fmt.Errorf("--overlay-cap %q: want a size such as 512M or 4G", overlayCap)}
				}
				req.OverlayCap = n
			}
			return withAgent(socket, func(ctx context.Context, cl *api.Client) error {
				v, err := cl.OpenView(ctx, req)
				if err != nil {
					return agentErr(err)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), v)
				}
				printView(cmd.OutOrStdout(), v, true)
				return nil
			})
		},
	}
	addSocketFlag(c, &socket)
	c.Flags().StringVar(&pair, "pair", "", "the pair to view (a,b for several, at one point)")
	c.Flags().StringVar(&group, "group", "", "view every pair of group G (a protected machine) at one point")
	c.Flags().StringVar(&point, "point", "", "the recovery point")
	c.Flags().BoolVar(&writable, "writable", false, "accept writes into a copy-on-write overlay discarded on close")
	c.Flags().StringVar(&overlayCap, "overlay-cap", "", "largest overlay per disk for --writable (default 1G)")
	c.Flags().StringVar(&listen, "listen", "", "unix:PATH or tcp:HOST:PORT (default: a unix socket in the agent's runtime directory)")
	c.Flags().BoolVar(&asJSON, "json", false, "print the view as JSON")
	return c
}

func newViewListCmd() *cobra.Command {
	var socket string
	var asJSON bool
	c := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the open views",
		Args:  usageArgs(cobra.NoArgs),
		Long:  "List the views the agent serves: point, disks, where, clients, overlay use.\n" + exitCodesHelp,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withAgent(socket, func(ctx context.Context, cl *api.Client) error {
				vs, err := cl.Views(ctx)
				if err != nil {
					return agentErr(err)
				}
				if asJSON {
					return printJSON(cmd.OutOrStdout(), vs)
				}
				if len(vs) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "no views open")
					return nil
				}
				for i, v := range vs {
					if i > 0 {
						fmt.Fprintln(cmd.OutOrStdout())
					}
					printView(cmd.OutOrStdout(), v, false)
				}
				return nil
			})
		},
	}
	addSocketFlag(c, &socket)
	c.Flags().BoolVar(&asJSON, "json", false, "print GET /v1/views as it is")
	return c
}

func newViewCloseCmd() *cobra.Command {
	var socket string
	c := &cobra.Command{
		Use:   "close ID",
		Short: "Close a view: its clients are disconnected, its overlay discarded",
		Args:  usageArgs(cobra.ExactArgs(1)),
		Long:  "Close view ID (see mtconsole view list). Clients still attached get errors from then on: detach them first.\n" + exitCodesHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withAgent(socket, func(ctx context.Context, cl *api.Client) error {
				if err := cl.CloseView(ctx, args[0]); err != nil {
					if errors.Is(err, api.ErrUnknownView) {
						return usageError{err}
					}
					return agentErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "view %s closed\n", args[0])
				return nil
			})
		},
	}
	addSocketFlag(c, &socket)
	return c
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printView prints a view; attach adds the commands that attach it.
func printView(w io.Writer, v api.View, attach bool) {
	mode := "read-only"
	if v.Writable {
		mode = "writable (overlay discarded on close)"
	}
	fmt.Fprintf(w, "view %s: %s at %s, %s, on %s, %d client(s)\n", v.ID, strings.Join(v.Pairs, ","), v.Point, mode, v.Listen, v.Clients)
	for _, e := range v.Exports {
		fmt.Fprintf(w, "  %s: %s, %s\n", e.Pair, v.Points[e.Pair], units.Bytes(e.Size))
		fmt.Fprintf(w, "    %s\n", e.URI)
		if v.Writable {
			fmt.Fprintf(w, "    overlay %s of %s (%s)\n", units.Bytes(e.OverlayBytes), units.Bytes(e.OverlayCap), e.Overlay)
		}
		if attach {
			for _, l := range api.AttachLines(v, e) {
				fmt.Fprintf(w, "    %s\n", l)
			}
		}
	}
	if attach {
		fmt.Fprintf(w, "close it with: mtconsole view close %s\n", v.ID)
	}
}
