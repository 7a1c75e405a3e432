package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

func newUnprotectCmd() *cobra.Command {
	var config, socket string
	var purge, yes, dryRun, asJSON bool
	c := &cobra.Command{
		Use:   "unprotect GROUP|PAIR [--purge-retention]",
		Short: "Stop protecting a machine (a group) or one pair: the target disks are left as they are",
		Long: `unprotect takes a group (a protected machine: its [[group]] and every
[[pair]] in it) or one pair out of agent.toml and asks the running agent to
stop those pairs. Their journals are made durable as at shutdown, the
target disks are left exactly as they are (nothing is wiped or
re-partitioned), and the other pairs go on untouched.

Their journal and retention stay on the retention volume, so the points
in them can still be recovered with mtconsole retention recover|rollback
--dir; --purge-retention removes them once the pairs have stopped: it asks
you to type the name at a terminal, or needs --yes in scripts.

The previous file is kept as agent.toml.bak; the new one replaces it
atomically. A name that is neither a group nor a pair is refused and
nothing is written. The last group can go too: the agent keeps running
with no pair and starts the next protection's pairs. --dry-run shows the change and writes nothing.

Exit codes: 0 ok (also when no agent runs: it reads the file when it
starts), 1 failed, 2 bad arguments or a refused plan (nothing written).`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			name := args[0]
			plan, err := protect.PlanRemove(config, name)
			if errors.Is(err, protect.ErrNotProtected) {
				return usageError{err}
			}
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("socket") {
				if fc, err := agent.LoadConfig(config); err == nil && fc.Agent.Socket != "" {
					socket = fc.Agent.Socket
				}
			}
			if !asJSON {
				fmt.Fprint(out, plan.Summary())
				if purge {
					fmt.Fprintln(out, "  their journal and retention are removed once they stopped (--purge-retention)")
				} else {
					fmt.Fprintln(out, "  their journal and retention stay (recover from them with mtconsole retention --dir)")
				}
			}
			type report struct {
				DryRun bool            `json:"dry_run"`
				Purge  bool            `json:"purge_retention"`
				Plan   *protect.Plan   `json:"plan"`
				Diff   string          `json:"diff,omitempty"`
				Result *protect.Result `json:"result,omitempty"`
			}
			r := report{DryRun: dryRun, Purge: purge, Plan: plan}
			if dryRun {
				if asJSON {
					r.Diff = plan.Diff()
					return writeJSON(out, r)
				}
				fmt.Fprintf(out, "\n%s\ndry run: nothing written\n", plan.Diff())
				return nil
			}
			if purge && !yes {
				if !term.IsTerminal(int(os.Stdin.Fd())) {
					return usageError{errors.New("--purge-retention deletes the points of these pairs: confirm with --yes when not at a terminal")}
				}
				fmt.Fprintf(out, "This deletes the journal and retention of %s: no point of it can be recovered after.\nType %q to confirm: ", name, name)
				line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if strings.TrimSpace(line) != name {
					return errors.New("not confirmed; nothing changed")
				}
			}
			ctx, cancel := signalContext()
			defer cancel()
			res, err := protect.Apply(ctx, plan, protect.Options{Reload: func(ctx context.Context) ([]string, error) {
				return protect.ReloadAgentRemove(ctx, socket, purge)
			}})
			r.Result = res
			if err != nil {
				if asJSON && res != nil {
					_ = writeJSON(out, r)
				}
				return err
			}
			if asJSON {
				return writeJSON(out, r)
			}
			fmt.Fprint(out, res.Text())
			return nil
		},
	}
	c.Flags().StringVar(&config, "config", "/etc/mtconsole/agent.toml", "the agent's configuration file")
	c.Flags().StringVar(&socket, "socket", api.DefaultSocket, "the agent's status API socket (default: agent.toml's)")
	c.Flags().BoolVar(&purge, "purge-retention", false, "also remove the pairs' journal and retention once they stopped")
	c.Flags().BoolVar(&yes, "yes", false, "--purge-retention: do not ask for the typed confirmation")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "show the change to agent.toml and write nothing")
	c.Flags().BoolVar(&asJSON, "json", false, "print the plan and the result as JSON")
	return c
}
