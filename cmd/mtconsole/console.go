package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/failback"
	"github.com/mtconsole/mtconsole/protect/console"
	"github.com/mtconsole/mtconsole/tui"
)

func newConsoleCmd() *cobra.Command {
	var socket, replay, record, config string
	var readOnly, allowFiles bool
	var vsc failback.Settings
	c := &cobra.Command{
		Use:   "console [--socket PATH] [--readonly] [--replay FILE] [--record FILE]",
		Short: "The interactive console: dashboard, pair detail, logs, recovery wizard",
		Long: `Open the master target's console on this terminal (at least 80x24):
the pairs with their state, health, RPO, backlog, throughput and
retention; a pair's detail with its tags; the agent's events; and the
recovery wizard; n on the dashboard protects a machine (the Protect screen:
a process server's disks to new pairs in --config, as mtconsole protect
does). Running mtconsole without a command opens it too.

It needs a terminal: for scripts use "mtconsole status --json". A
non-root user, or --readonly, gets a console that only looks. --replay
plays a recording (made with --record) instead of asking the agent, for
bug reports and demos.

After a rollback the recovery wizard offers to create the failback VM in
vSphere (v), as mtconsole vsphere create-vm does, when the console has a
vSphere connection: /etc/mtconsole/vsphere.conf (--vsphere-conf), mode
0600, TOML with url, user, password_file, thumbprint (or trust_store),
e.g. url = "vc.example", or the --vsphere-* flags, which override the file.
Its form holds create-vm's fields (CPUs, cores per socket, memory, guest
id, firmware and secure boot, hardware version, SCSI controller, NICs,
resource pool, folder, host, power on, onto an existing VM), prefilled
from the source. When a failback run was killed, the dashboard says so
and f resumes or undoes it, as 'mtconsole vsphere failback resume|undo'.

Exit codes: 0 ok, 1 failed, 2 usage (bad flags, or stdout is not a terminal).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !term.IsTerminal(int(os.Stdout.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
				return usageError{errors.New("the console needs a terminal: for scripts use `mtconsole status --json`")}
			}
			o := tui.Options{}
			o.Host, _ = os.Hostname()
			if replay == "" && !readOnly {
				vsc.AgentSocket = socket
				vs, err := failback.Load(vsc)
				if err != nil {
					return usageError{err}
				}
				if vs != nil {
					o.VSphere = vs
				}
			}
			switch {
			case replay != "":
				rp, err := tui.OpenReplay(replay)
				if err != nil {
					return usageError{err}
				}
				o.Collector, o.ReadOnly, o.ReadOnlyReason = rp, true, "replay of "+replay
			default:
				agent := tui.NewAgent(socket)
				defer agent.Close()
				liveOptions(&o, agent, socket, readOnly)
				o.Protector = &console.Protector{Config: config, Socket: socket, AllowFiles: allowFiles}
			}
			if record != "" {
				f, err := os.OpenFile(record, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return usageError{fmt.Errorf("--record: %w: give a new file", err)}
				}
				defer f.Close()
				o.Collector = tui.Record(o.Collector, f)
			}
			return tui.Run(context.Background(), o)
		},
	}
	addSocketFlag(c, &socket)
	c.Flags().BoolVar(&readOnly, "readonly", false, "only look: no tag, pause, resume or recover")
	c.Flags().StringVar(&replay, "replay", "", "play a recording instead of asking the agent")
	c.Flags().StringVar(&record, "record", "", "also write what the agent says to this new file, for --replay")
	c.Flags().StringVar(&config, "config", "/etc/mtconsole/agent.toml", "the agent's configuration file, which the Protect screen (n) adds to")
	c.Flags().BoolVar(&allowFiles, "allow-files", false, "let the Protect screen take regular files as targets (demos and tests)")
	addVSphereConfFlags(c, &vsc)
	return c
}

// addVSphereConfFlags are the console's vSphere connection flags: the
// file, and the fields that override it.
func addVSphereConfFlags(cmd *cobra.Command, c *failback.Settings) {
	fl := cmd.Flags()
	fl.StringVar(&c.Path, "vsphere-conf", failback.DefaultConf, "vSphere connection for the failback VM (url, user, password_file, thumbprint; mode 0600)")
	fl.StringVar(&c.URL, "vsphere-url", "", "vCenter or ESXi URL (overrides the file's url)")
	fl.StringVar(&c.User, "vsphere-user", "", "vSphere user (overrides the file's user)")
	fl.StringVar(&c.PasswordFile, "vsphere-password-file", "", "file whose first line is the vSphere password (overrides password_file)")
	fl.StringVar(&c.Thumbprint, "vsphere-thumbprint", "", "the vSphere certificate's SHA-256 thumbprint (overrides thumbprint)")
	fl.StringVar(&c.PlanDir, "vsphere-plan-dir", vsphere.DefaultPlanDir, "where failback VM runs keep their plan files (the console offers to resume or undo the unfinished ones)")
	fl.StringVar(&c.UUIDFile, "vsphere-uuid-file", vsphere.DefaultUUIDFile, "this VM's BIOS UUID, which finds the master target in vSphere")
	fl.StringVar(&c.DevRoot, "vsphere-dev-root", "/", "the root under which dev/disk/by-id, sys and proc map the disks (tests)")
}

// The console's failback-VM hook.
var _ tui.VSphere = (*failback.Console)(nil)

// liveOptions sets o to show the agent on socket: read-only with
// --readonly, or for a user the agent does not take changes from (it
// takes them from root and from its own user, who owns the socket).
func liveOptions(o *tui.Options, agent *tui.Agent, socket string, readOnly bool) {
	o.Collector = &tui.Live{Source: agent}
	o.Actions = agent
	if uid := os.Geteuid(); uid != 0 && !ownsSocket(socket, uid) {
		o.ReadOnly, o.ReadOnlyReason = true, "not root"
	}
	if readOnly {
		o.ReadOnly, o.ReadOnlyReason = true, "--readonly"
	}
}

func ownsSocket(path string, uid int) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && int(st.Uid) == uid
}
