package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// exitCodesHelp ends the help of every command that talks to the agent.
const exitCodesHelp = `
Exit codes: 0 ok, 1 failed, 2 usage (bad flags, arguments or input the
agent refused), 3 no agent answers on the socket.`

// addSocketFlag adds --socket to a command that talks to the agent.
func addSocketFlag(c *cobra.Command, socket *string) {
	c.Flags().StringVar(socket, "socket", api.DefaultSocket, "the agent's status API socket")
}

// dialAgent connects to the agent; no agent is exit code 3.
func dialAgent(socket string) (*api.Client, error) {
	return api.Dial(socket)
}

// withAgent runs fn with a client of the agent on socket, until Ctrl-C.
func withAgent(socket string, fn func(ctx context.Context, cl *api.Client) error) error {
	cl, err := dialAgent(socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := signalContext()
	defer cancel()
	return fn(ctx, cl)
}

// agentErr makes input the agent refused (400) a usage error.
func agentErr(err error) error {
	var ae *api.APIError
	if errors.As(err, &ae) && ae.Code == 400 {
		return usageError{err}
	}
	return err
}

func newStatusCmd() *cobra.Command {
	var socket string
	var asJSON, watch bool
	c := &cobra.Command{
		Use:   "status [--json] [--watch]",
		Short: "Show the agent's pairs: state, health, RPO, backlog, throughput, retention",
		Long: `Show the pairs of the running agent, as the console's dashboard does:
state, health with its reason, RPO, apply backlog, throughput, retention
used and window, and tags. --watch redraws on every event of the agent
(and every 2 s, for RPO); Ctrl-C leaves it. --json prints the status API's
GET /v1/status as it is.
` + exitCodesHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON && watch {
				return usageError{errors.New("--json and --watch do not go together: use --json for one snapshot")}
			}
			return withAgent(socket, func(ctx context.Context, cl *api.Client) error {
				out := cmd.OutOrStdout()
				if !watch {
					st, err := cl.Status(ctx)
					if err != nil {
						return agentErr(err)
					}
					if asJSON {
						return writeJSON(out, st)
					}
					printStatus(out, st, time.Now())
					return nil
				}
				return watchStatus(ctx, cl, out)
			})
		},
	}
	addSocketFlag(c, &socket)
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON (GET /v1/status)")
	c.Flags().BoolVar(&watch, "watch", false, "redraw on every event until Ctrl-C")
	return c
}

// watchStatus redraws the status on every event until ctx ends (Ctrl-C:
// exit 0) or the agent goes.
func watchStatus(ctx context.Context, cl *api.Client, out io.Writer) error {
	events, err := cl.Events(ctx)
	if err != nil {
		return err
	}
	clear := false
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		clear = true
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	var last []string // the latest events, newest last
	for {
		st, err := cl.Status(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if clear {
			io.WriteString(out, "\x1b[H\x1b[2J")
		} else {
			fmt.Fprintln(out, "---")
		}
		printStatus(out, st, time.Now())
		if len(last) > 0 {
			fmt.Fprintln(out, "\nRecent events:")
			for _, l := range last {
				fmt.Fprintln(out, "  "+l)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case e, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return errors.New("the agent closed the event stream: it stopped or restarted")
			}
			last = append(last, eventLine(e.Time, e.Pair, e.Kind, e.Message))
			if len(last) > 5 {
				last = last[len(last)-5:]
			}
			// Let a burst of events make one redraw.
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func eventLine(t time.Time, pair, kind, msg string) string {
	if pair == "" {
		pair = "-"
	}
	return fmt.Sprintf("%s %-8s %-8s %s", t.UTC().Format("15:04:05"), pair, kind, msg)
}

// printStatus renders the dashboard table.
func printStatus(out io.Writer, st api.Status, now time.Time) {
	up := time.Duration(st.UptimeSeconds * float64(time.Second)).Round(time.Second)
	fmt.Fprintf(out, "Agent %s on %s, up %s, %s (%s UTC)\n", st.Version, st.Host, up, plural(int64(len(st.Pairs)), "pair"),
		now.UTC().Format("15:04:05"))
	fmt.Fprintf(out, "%s\n\n", csLine(st.CS, now))
	if len(st.Pairs) == 0 {
		fmt.Fprintln(out, "No pairs.")
		return
	}
	// Fits 80 columns: what may be long (reasons, tag names) goes on
	// lines of its own below the table.
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	// A group of several pairs is a protected machine: its column shows
	// only then (a pair alone is a group of its own, named by its id).
	members := map[string]int{}
	grouped := false
	for _, p := range st.Pairs {
		if p.Group != "" {
			members[p.Group]++
			grouped = grouped || members[p.Group] > 1
		}
	}
	if grouped {
		fmt.Fprint(tw, "GROUP\t")
	}
	fmt.Fprintln(tw, "PAIR\tSTATE\tHEALTH\tRPO\tBACKLOG\tRATE\tRETAINED\tTAGS")
	var notes []string
	for _, p := range st.Pairs {
		state := p.State
		if state == "" {
			state = "-"
		}
		if p.Resync != nil && p.Resync.TotalBytes > 0 {
			state += fmt.Sprintf(" %.0f%%", 100*float64(p.Resync.DoneBytes)/float64(p.Resync.TotalBytes))
		}
		if p.Reason != "" {
			notes = append(notes, fmt.Sprintf("%s: %s: %s", p.ID, p.Health, p.Reason))
		}
		window := "all"
		if p.Retention.Window > 0 {
			window = windowText(p.Retention.Window)
		}
		if t := p.Retention.LatestTag; t != nil {
			notes = append(notes, fmt.Sprintf("%s: latest tag %s (%s, %s UTC)", p.ID, t.Name, t.App, t.Time.UTC().Format("15:04:05")))
		}
		if grouped {
			g := p.Group
			if g == "" {
				g = "-"
			}
			fmt.Fprintf(tw, "%s\t", g)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s/s\t%s, %s\t%d\n", p.ID, state, p.Health, rpoText(p),
			bytesText(p.BacklogBytes), bytesText(int64(p.ThroughputBps)), bytesText(p.Retention.UsedBytes), window, p.Retention.Tags)
	}
	tw.Flush()
	for _, v := range st.Views {
		mode := "read-only"
		if v.Writable {
			mode = "writable"
		}
		notes = append(notes, fmt.Sprintf("view %s: %s at %s, %s, on %s, %s (mtconsole view list)",
			v.ID, strings.Join(v.Pairs, ","), v.Point, mode, v.Listen, plural(int64(v.Clients), "client")))
	}
	if len(notes) > 0 {
		fmt.Fprintln(out)
		for _, n := range notes {
			fmt.Fprintln(out, n)
		}
	}
}

func secondsText(s float64) string { return units.Duration(time.Duration(s * float64(time.Second))) }

func bytesText(n int64) string { return units.Bytes(n) }

// rpoText is the pair's RPO, or "—" while it is unknown (restarted, the
// source not yet heard from).
func rpoText(p api.PairStatus) string {
	if p.RPOUnknown {
		return "—"
	}
	return secondsText(p.RPOSeconds)
}

// splitList reads a comma-separated flag.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// csLine is the host's registration with the configuration server, as
// the agent's heartbeats see it.
func csLine(cs *api.CSStatus, now time.Time) string {
	switch {
	case cs == nil:
		return "Configuration server: not registered"
	case cs.OK:
		return fmt.Sprintf("Configuration server %s: registered, last heartbeat %s ago", cs.Server, now.Sub(cs.LastHeartbeat).Round(time.Second))
	case cs.Problem == "":
		return fmt.Sprintf("Configuration server %s: registered, no heartbeat yet", cs.Server)
	}
	last := "none since the agent started"
	if !cs.LastHeartbeat.IsZero() {
		last = "last accepted " + now.Sub(cs.LastHeartbeat).Round(time.Second).String() + " ago"
	}
	return fmt.Sprintf("Configuration server %s: heartbeats failing for %s (%s; %s): %s", cs.Server,
		now.Sub(cs.FailingSince).Round(time.Second), cs.Problem, last, cs.Error)
}
