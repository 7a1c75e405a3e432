package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/internal/logging"
	"github.com/mtconsole/mtconsole/internal/secret"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/ps"
	"github.com/mtconsole/mtconsole/replication/wire"
)

type psFlags struct {
	listen   string
	disks    []string
	passFile string
	certDir  string
	workload string
	scan     time.Duration
	chunk    int
	app      time.Duration
	log      *slog.Logger // nil: text on stderr
}

func newPSCmd() *cobra.Command {
	var f psFlags
	c := &cobra.Command{
		Use:   "ps --disk NAME=PATH ... --passphrase-file FILE",
		Short: "Run a process server: serve source disks to master targets over TLS",
		Long: `ps serves source disks (regular files or block devices) to master targets,
which dial in over TLS (port 9443 by default) and prove they know the shared
passphrase. Each paired disk is resynced (a full copy, or chunk hashes when
the target holds an older copy), then its changes are streamed.

Changes come from --workload (a deterministic generator that writes the
source itself and takes tags: for demos and tests) or from a periodic
chunk-hash scan of the source (--scan-interval). The passphrase is read from
--passphrase-file (first line; the file must be mode 0600 or stricter),
never from the command line.

The certificate is made on first start in --cert-dir; its fingerprint is
printed so that admins can compare it with what the master target shows.
SIGINT or SIGTERM stop the server (exit 0).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := newCmdLog(cmd, "mtconsole-ps", cmd.ErrOrStderr(), "")
			if err != nil {
				return err
			}
			f.log = l.Logger
			return runPS(cmd.Context(), cmd.OutOrStdout(), f)
		},
	}
	c.Flags().StringVar(&f.listen, "listen", ps.DefaultAddr, "address to listen on")
	c.Flags().StringArrayVar(&f.disks, "disk", nil, "a source disk to serve, NAME=PATH (repeatable)")
	c.Flags().StringVar(&f.passFile, "passphrase-file", "", "file holding the shared passphrase (required)")
	c.Flags().StringVar(&f.certDir, "cert-dir", "/etc/mtconsole/ps", "directory of the server certificate and key (made if missing)")
	c.Flags().StringVar(&f.workload, "workload", "", "write a generated workload to every disk: seed=1,rate=100,size=65536,seq,crash=10s,app=60s,writes=N")
	c.Flags().DurationVar(&f.scan, "scan-interval", 10*time.Second, "without --workload, find changes by hashing the source this often (0: off)")
	c.Flags().IntVar(&f.chunk, "chunk-size", 1<<20, "resync and hash chunk size in bytes")
	c.Flags().DurationVar(&f.app, "app-consistent-interval", 0, "how often the source host takes application-consistent tags, reported to master targets (e.g. 1h; 0: none)")
	return c
}

func runPS(ctx context.Context, out io.Writer, f psFlags) error {
	if len(f.disks) == 0 {
		return usageError{errors.New("at least one --disk NAME=PATH is required")}
	}
	var disks []ps.DiskConfig
	paths := map[string]string{}
	for _, d := range f.disks {
		name, path, ok := strings.Cut(d, "=")
		if !ok || name == "" || path == "" {
			return usageError{fmt.Errorf("--disk %q: want NAME=PATH", d)}
		}
		if p, dup := paths[name]; dup {
			return usageError{fmt.Errorf("--disk %s=%s: the name %s is already given to %s; give each disk its own name", name, path, name, p)}
		}
		paths[name] = path
		disks = append(disks, ps.DiskConfig{Name: name, Path: path, AppConsistentInterval: f.app})
	}
	if f.app < 0 || f.app%time.Second != 0 {
		return usageError{fmt.Errorf("--app-consistent-interval %v: want whole seconds such as 1h, or 0 for none", f.app)}
	}
	if err := ps.CheckChunkSize(f.chunk); err != nil {
		return usageError{fmt.Errorf("--chunk-size: %w", err)}
	}
	var wl *ps.Workload
	if f.workload != "" {
		w, err := ps.ParseWorkload(f.workload)
		if err != nil {
			return usageError{fmt.Errorf("--workload: %w", err)}
		}
		wl = &w
	}
	// The passphrase is never taken from argv (other users see it in
	// ps(1)) nor logged.
	if f.passFile == "" {
		return usageError{errors.New("--passphrase-file is required")}
	}
	pass, err := secret.Read(f.passFile, secret.Passphrase)
	if err != nil {
		return err
	}
	key, err := wire.DeriveKey(pass)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.certDir, 0o700); err != nil {
		return err
	}
	host, _ := os.Hostname()
	cert, fp, err := wire.LoadOrCreateCertificate(filepath.Join(f.certDir, "server.crt"), filepath.Join(f.certDir, "server.key"), []string{host})
	if err != nil {
		return err
	}
	log := f.log
	if log == nil {
		log = slog.New(logging.Redact(slog.NewTextHandler(os.Stderr, nil)))
	}
	srv, err := ps.New(ps.Config{Key: key, Cert: cert, HostID: host, HostName: host, Disks: disks, ChunkSize: f.chunk, Logger: log})
	if err != nil {
		return err
	}
	defer srv.Close()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(out, "process server on %s, certificate %s\n", f.listen, fp)
	for _, d := range srv.Disks() {
		fmt.Fprintf(out, "  disk %s: %d bytes\n", d.Name(), d.Size())
	}
	srcs := map[*ps.Disk]ps.ChangeSource{}
	for i, d := range srv.Disks() {
		switch {
		case wl != nil:
			w := *wl
			w.Seed += int64(i)
			w.OnTag = func(t journal.TagInfo, img [32]byte, sent bool) {
				log.Info("tag", "disk", d.Name(), "name", t.Name, "app", t.App, "sent", sent, "sha256", fmt.Sprintf("%x", img))
			}
			srcs[d] = w
		case f.scan > 0:
			srcs[d] = ps.Scanner{Interval: f.scan}
		}
	}
	errc := make(chan error, 1)
	go func() {
		err := ps.Run(ctx, srcs)
		if err != nil {
			stop() // a failed change source stops the server
		}
		errc <- err
	}()
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		stop()
		<-errc
		return fmt.Errorf("ps: --listen %s: %w", f.listen, err)
	}
	// Under systemd (Type=notify): ready once it listens with its disks
	// open.
	stopping := serviceReady(ctx, fmt.Sprintf("serving %d disks on %s", len(srv.Disks()), ln.Addr()), log)
	err = srv.Serve(ctx, ln)
	stop()
	stopping()
	if serr := <-errc; err == nil {
		err = serr
	}
	return err
}
