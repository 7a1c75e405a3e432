package main

import (
	"bufio"
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

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
)

const protectExitHelp = `
Exit codes: 0 ok (also when no agent runs: it picks the file up when it
starts), 1 failed (process server unreachable, passphrase refused,
certificate changed or not trusted, the file could not be written, the
agent's reload failed), 2 bad flags or a refused plan (nothing written).`

type protectFlags struct {
	config, socket, ps, passFile, group, mapping, overwrite string
	retention, onFull, rpo, interval, trustFP, sparse       string
	journalDir, retentionDir, trustStore                    string
	sizeCap                                                 int64
	alert                                                   float64
	allowFiles, allowNoSCSI, dryRun, asJSON, yes            bool
}

func newProtectCmd() *cobra.Command {
	var f protectFlags
	c := &cobra.Command{
		Use:   "protect --ps HOST:PORT --passphrase-file F --group NAME --map sda=/dev/sdc[,sdb=/dev/sdd]",
		Short: "Protect a machine: pair a process server's disks with disks of this host, without editing agent.toml",
		Long: `protect asks the process server which disks it serves (the agent's handshake
and certificate pinning), checks the mapping of its disks to disks of this
host, and adds one [[group]] (the protected machine: its name, consistency
interval and policy) and a [[pair]] per disk to agent.toml. The file is kept
as it is, comments included, and the tables are appended; the previous file
is kept as agent.toml.bak and the new one replaces it atomically. Then the
running agent is asked to start the new pairs; when no agent runs, it picks
them up when it starts.

Refused, with the reason, and nothing written: a group that exists, a
source disk the process server does not serve or that is already paired,
the same target twice, a target of another pair, a target that does not
exist, is not a block device (a regular file needs --allow-files, for demos
and tests) or is smaller than its source, and a policy the agent would not
accept.

A host without agent.toml gets a complete one: give --ps and
--passphrase-file (the passphrase of the process server: mode 0600, first
line); the directories take the agent's defaults unless given.

The first time a process server is seen, its certificate's fingerprint is
shown and, at a terminal, you are asked to trust it (compare it with the one
` + "`mtconsole ps`" + ` prints); in scripts give --trust-fingerprint SHA256:... or --yes.
It is pinned in the agent's trust store, as the agent pins it. A changed
certificate is refused, showing both fingerprints.

--dry-run shows the plan and the change to the file and writes nothing.
--json prints the discovery, the plan and the result (or the refusals).

Policy: --retention 24h|3d|"3 days", --size-cap-mb N (0: none), --on-full
purge|pause, --rpo-threshold 15m, --alert-threshold-percent 5 (the retention
volume is low below this % free: the group's pairs purge or pause; on a
volume shared by groups, each measures against its own); --consistency-interval 15m asks the process
server for a crash-consistent tag across the group's disks that often;
--sparse "all 1d; 1 per 1h for 6d" keeps every write for the first tier, then
only N tags per granularity (tiers follow each other and the last ends at the
retention window; "none": every write for the whole window).
Left out, they take agent.toml's [defaults].
` + protectExitHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProtect(cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.config, "config", "/etc/mtconsole/agent.toml", "the agent's configuration file")
	addSocketFlag(c, &f.socket)
	fl.StringVar(&f.ps, "ps", "", "the process server, HOST:PORT (default port 9443); default: agent.toml's")
	fl.StringVar(&f.passFile, "passphrase-file", "", "the process server's passphrase file (0600); default: agent.toml's")
	fl.StringVar(&f.group, "group", "", "the protected machine's name (a new group)")
	fl.StringVar(&f.mapping, "map", "", "source disks to targets: sda=/dev/sdc,sdb=/dev/sdd")
	fl.StringVar(&f.retention, "retention", "", "retention window: 24h, 3d, \"3 days\"")
	fl.StringVar(&f.sparse, "sparse", "", "sparse-retention tiers ending at the retention window: \"all 1d; 1 per 1h for 6d\" (none: every write)")
	fl.Int64Var(&f.sizeCap, "size-cap-mb", 0, "retention size cap in MB (0: none)")
	fl.StringVar(&f.onFull, "on-full", "", "when retention is full: purge or pause")
	fl.StringVar(&f.rpo, "rpo-threshold", "", "alert when the RPO passes this: 15m")
	fl.Float64Var(&f.alert, "alert-threshold-percent", 0, "the retention volume is low below this % free (above 0, at most 50; default: agent.toml's, 5)")
	fl.StringVar(&f.interval, "consistency-interval", "", "a crash-consistent tag across the group's disks this often: 15m (0: none)")
	fl.BoolVar(&f.allowFiles, "allow-files", false, "allow regular files as targets (demos and tests)")
	fl.BoolVar(&f.allowNoSCSI, "allow-no-scsi-id", false, "allow targets without a stable SCSI id")
	fl.StringVar(&f.overwrite, "overwrite", "", "targets that may be overwritten, by name: sdc,sdd")
	fl.StringVar(&f.trustFP, "trust-fingerprint", "", "trust a first-seen process server only with this certificate: SHA256:...")
	fl.BoolVar(&f.yes, "yes", false, "trust a first-seen process server's certificate without asking")
	fl.BoolVar(&f.dryRun, "dry-run", false, "show the plan and the change to agent.toml; write nothing")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	fl.StringVar(&f.journalDir, "journal-dir", "", "a new agent.toml's journal_dir (default: the agent's)")
	fl.StringVar(&f.retentionDir, "retention-dir", "", "a new agent.toml's retention_dir (default: the agent's)")
	fl.StringVar(&f.trustStore, "trust-store", "", "a new agent.toml's trust_store (default: the agent's)")
	return c
}

func runProtect(cmd *cobra.Command, f protectFlags) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	fl := cmd.Flags()
	m, err := protect.ParseMap(f.mapping)
	if err != nil {
		return usageError{err}
	}
	if f.group == "" {
		return usageError{errors.New("--group is required: the protected machine's name, e.g. --group web01")}
	}
	var want wire.Fingerprint
	if f.trustFP != "" {
		if want, err = wire.ParseFingerprint(f.trustFP); err != nil {
			return usageError{fmt.Errorf("--trust-fingerprint: %w", err)}
		}
	}
	k := protect.Keys{Config: f.config, PS: f.ps, PassphraseFile: f.passFile, Group: f.group, Map: m,
		Policy:              protect.Policy{Retention: f.retention, OnFull: f.onFull, RPOThreshold: f.rpo, Sparse: f.sparse},
		ConsistencyInterval: f.interval, AllowFiles: f.allowFiles, AllowNoSCSIID: f.allowNoSCSI,
		JournalDir: f.journalDir, RetentionDir: f.retentionDir, TrustStore: f.trustStore}
	if fl.Changed("size-cap-mb") {
		k.Policy.SizeCapMB = &f.sizeCap
	}
	if fl.Changed("alert-threshold-percent") {
		if err := agent.CheckAlertPercent(f.alert); err != nil {
			return usageError{fmt.Errorf("--alert-threshold-percent: %w", err)}
		}
		k.Policy.AlertThresholdPercent = &f.alert
	}
	if f.sparse != "" {
		var w time.Duration
		if f.retention != "" {
			if w, err = journal.ParseWindow(f.retention); err != nil {
				return usageError{fmt.Errorf("--retention: %w", err)}
			}
		}
		if _, err := journal.CheckTiers(f.sparse, w); err != nil {
			if w > 0 {
				err = fmt.Errorf("%w (--retention is %s)", err, journal.FormatAge(w))
			}
			return usageError{fmt.Errorf("--sparse: %w", err)}
		}
	}
	if f.overwrite != "" {
		k.Overwrite = strings.Split(f.overwrite, ",")
	}
	if fl.Changed("socket") {
		k.Socket = f.socket
	}
	prep, err := protect.Prepare(k)
	if errors.Is(err, protect.ErrBadKeys) {
		return usageError{err}
	}
	if err != nil {
		return err
	}
	req, srv, socket := prep.Request, prep.Server, f.socket
	if !fl.Changed("socket") && prep.Socket != "" {
		socket = prep.Socket
	}
	srv.NoPin = f.dryRun
	srv.Confirm = func(addr string, fp wire.Fingerprint) bool {
		switch {
		case !want.IsZero():
			return fp == want
		case f.yes:
			fmt.Fprintf(errOut, "process server %s: certificate %s seen for the first time, trusted (--yes)\n", addr, fp)
			return true
		case !term.IsTerminal(int(os.Stdin.Fd())):
			return false
		}
		fmt.Fprintf(errOut, "The process server at %s presents a certificate seen for the first time:\n  %s\n"+
			"Compare it with the fingerprint `mtconsole ps` printed on the process server.\nTrust it and pin it in %s? [y/N] ", addr, fp, srv.TrustStore)
		line, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes"
	}
	ctx, cancel := signalContext()
	defer cancel()
	d, err := protect.Discover(ctx, srv)
	if err != nil {
		if errors.Is(err, protect.ErrUntrusted) && !want.IsZero() {
			return fmt.Errorf("%w (not the --trust-fingerprint %s)", err, want)
		}
		return err
	}
	req.Disks = d.Disks
	plan, err := protect.MakePlan(ctx, f.config, req, protect.Options{})
	var re *protect.RefusedError
	if errors.As(err, &re) {
		if f.asJSON {
			_ = writeJSON(out, map[string]any{"process_server": d, "refusals": re.Refusals})
		}
		return usageError{err}
	}
	if err != nil {
		return err
	}
	type report struct {
		DryRun        bool               `json:"dry_run"`
		ProcessServer *protect.Discovery `json:"process_server"`
		Plan          *protect.Plan      `json:"plan"`
		Diff          string             `json:"diff,omitempty"`
		Result        *protect.Result    `json:"result,omitempty"`
	}
	r := report{DryRun: f.dryRun, ProcessServer: d, Plan: plan}
	if !f.asJSON {
		first := ""
		if d.FirstUse {
			first = ", first use"
		}
		fmt.Fprintf(out, "process server %s (%s): %s, certificate %s%s\n", d.Addr, d.HostName, plural(int64(len(d.Disks)), "disk"), d.Fingerprint, first)
		fmt.Fprint(out, plan.Summary())
	}
	if f.dryRun {
		if f.asJSON {
			r.Diff = plan.Diff()
			return writeJSON(out, r)
		}
		fmt.Fprintf(out, "\n%s\ndry run: nothing written\n", plan.Diff())
		return nil
	}
	res, err := protect.Apply(ctx, plan, protect.Options{Reload: func(ctx context.Context) ([]string, error) { return protect.ReloadAgent(ctx, socket) }})
	r.Result = res
	if err != nil {
		if f.asJSON && res != nil {
			_ = writeJSON(out, r)
		}
		return err
	}
	if f.asJSON {
		return writeJSON(out, r)
	}
	fmt.Fprint(out, res.Text())
	return nil
}

func newProtectionCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "protection",
		Short: "The protected machines of this host (list)",
		Args:  usageArgs(cobra.NoArgs),
	}
	var config, socket string
	var asJSON bool
	list := &cobra.Command{
		Use:   "list [--json]",
		Short: "List the protected machines (groups) and their pairs, with the running agent's state",
		Long: `list shows agent.toml's groups (protected machines) and their pairs: the
source disk, the target, the policy each pair runs with (the [defaults],
then its group's, then its own), and, when the agent answers on its
socket, each pair's state and health. A pair in no [[group]] is a group of
its own. Without an agent the list comes from the file alone.

Exit codes: 0 ok (with or without an agent), 1 failed (agent.toml missing
or with an error), 2 bad flags.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fc, err := agent.LoadConfig(config)
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("socket") && fc.Agent.Socket != "" {
				socket = fc.Agent.Socket
			}
			var st *api.Status
			if cl, err := api.Dial(socket); err == nil {
				ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
				if s, err := cl.Status(ctx); err == nil {
					st = &s
				}
				cancel()
				cl.Close()
			}
			l, err := protect.List(config, st)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), l)
			}
			printListing(cmd.OutOrStdout(), l)
			return nil
		},
	}
	list.Flags().StringVar(&config, "config", "/etc/mtconsole/agent.toml", "the agent's configuration file")
	addSocketFlag(list, &socket)
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	c.AddCommand(list)
	return c
}

func printListing(w io.Writer, l *protect.Listing) {
	agentState := "the agent answers: live state"
	if !l.Agent {
		agentState = "no agent answers: from the file only"
	}
	fmt.Fprintf(w, "%s, process server %s; %s\n", l.Config, l.ProcessServer, agentState)
	for _, g := range l.Groups {
		ci := g.ConsistencyInterval
		if ci == "" {
			ci = "none"
		}
		kind := "group"
		if !g.Declared {
			kind = "pair of its own"
		}
		fmt.Fprintf(w, "\n%s (%s, consistency interval %s)\n  app-consistent: %s\n", g.Name, kind, ci, g.AppConsistent)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PAIR\tDISK\tTARGET\tSTATE\tHEALTH\tRETENTION\tCAP MB\tON FULL\tRPO THRESHOLD\tALERT")
		for _, p := range g.Pairs {
			state, health := p.State, p.Health
			if !p.Running {
				state, health = "-", "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", p.ID, p.Disk, p.Target, state, health, p.Retention, p.SizeCapMB, p.OnFull, p.RPOThreshold, protect.Percent(p.AlertThresholdPercent))
		}
		tw.Flush()
	}
}
