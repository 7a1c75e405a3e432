package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/internal/demo"
	"github.com/mtconsole/mtconsole/protect/console"
	"github.com/mtconsole/mtconsole/tui"
)

func newDemoCmd() *cobra.Command {
	var f demo.Options
	var noConsole bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "A process server and an agent on loopback, with file-backed disks and a live workload (no root)",
		Long: `demo runs the whole failback path on this host, as an unprivileged user, in
a temporary directory: a process server serving file-backed source disks that
a workload generator writes (random writes, crash-consistent tags every
--crash-every, application-consistent ones every --app-every), and an agent
that dials it over TLS on loopback, resyncs each empty target (Resync Step I,
Step II) and then journals, applies and retains every write (Differential
Sync). On a terminal it opens the console on the agent; otherwise, or with
--no-console, it prints the status table as 'mtconsole status --watch' does.

Quit (q in the console, Ctrl-C, or when --for ends): the workload stops, the
backlog drains, both stop, and the demo checks each target against its
source and exports the last --verify tags of each pair against the source as
it was at that tag (SHA-256); DIR/tags.sha256 lists every tag with the SHA-256
of its source at that tag. The directory is removed unless --keep (or
--dir) is given; the agent's configuration in it works with
'mtconsole agent --config DIR/agent.toml'.

One more disk than --disks (disk3 by default) is served but not protected,
its empty target DIR/targets/disk3.img ready, for you to protect: from the
console (n, New protection) or, with ADDR the process server's address in
DIR/agent.toml (the demo prints the line without a console):
  mtconsole protect --config DIR/agent.toml --ps ADDR --passphrase-file DIR/passphrase --group disk3 --map disk3=DIR/targets/disk3.img --allow-files
The closing checks cover the pairs in agent.toml at the end.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			// A hangup (the SSH session gone) quits as q does: the
			// workload stops, both stop, the directory goes.
			ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer cancel()
			out := cmd.OutOrStdout()
			f.Version, f.Watch = version, watchStatus
			if !noConsole && isTerminal(out) {
				f.Console = runDemoConsole
			}
			if err := f.Check(); err != nil {
				return usageError{err}
			}
			// demo.log takes the log flags; there is no host.conf here.
			l, err := newCmdLog(cmd, "mtconsole-demo", io.Discard, "")
			if err != nil {
				return err
			}
			f.LogFormat, f.LogLevel = flagString(cmd, "log-format"), l.Level
			return demo.Run(ctx, out, f)
		},
	}
	c.Flags().StringVar(&f.Dir, "dir", "", "work in this directory instead of a new temporary one (kept)")
	c.Flags().BoolVar(&f.Keep, "keep", false, "keep the temporary directory and print its path")
	c.Flags().IntVar(&f.Disks, "disks", 3, "number of source disks")
	c.Flags().IntVar(&f.SizeMB, "size", 64, "size of each disk in MiB")
	c.Flags().Float64Var(&f.Rate, "rate", 100, "writes per second per disk")
	c.Flags().IntVar(&f.WriteSize, "write-size", 16<<10, "bytes per write, a multiple of 4096")
	c.Flags().DurationVar(&f.CrashEvery, "crash-every", 5*time.Second, "crash-consistent tag interval")
	c.Flags().DurationVar(&f.AppEvery, "app-every", 20*time.Second, "application-consistent tag interval")
	c.Flags().Int64Var(&f.Seed, "seed", 1, "workload seed")
	c.Flags().DurationVar(&f.For, "for", 0, "stop after this long (0: until quit or Ctrl-C)")
	c.Flags().BoolVar(&noConsole, "no-console", false, "print the status table instead of opening the console")
	c.Flags().IntVar(&f.Verify, "verify", 3, "at the end, export this many of each pair's latest tags and check them")
	return c
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runDemoConsole opens the console on the agent on socket until the user
// quits or ctx ends.
func runDemoConsole(ctx context.Context, socket string) error {
	agent := tui.NewAgent(socket)
	defer agent.Close()
	o := tui.Options{Host: "demo-mt (mtconsole demo)"}
	liveOptions(&o, agent, socket, false)
	// The demo's agent.toml is beside its socket; its disks are files.
	dir := filepath.Dir(socket)
	o.Protector = &console.Protector{Config: filepath.Join(dir, "agent.toml"), Socket: socket, AllowFiles: true,
		FileTargets: filepath.Join(dir, "targets")}
	return tui.Run(ctx, o)
}
