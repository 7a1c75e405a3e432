package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/hostconfig/csserver"
)

func newCSCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "cs init|serve|hosts",
		Short: "Run a small configuration server: host registration, inventory, heartbeats",
		Long: `cs is a small configuration server for master targets and process servers:
they register with the shared passphrase (never sent: requests and replies
are signed with a key derived from it), send heartbeats every 180 s, and a
host silent for 900 s is shown lost.

  mtconsole cs init   [--dir DIR]   make the passphrase (printed once) and the TLS certificate
  mtconsole cs serve  [--dir DIR] [--addr :443]
  mtconsole cs hosts  [--dir DIR] [--json]`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("cs needs a subcommand: init, serve or hosts")}
		},
	}
	c.AddCommand(newCSInitCmd(), newCSServeCmd(), newCSHostsCmd())
	return c
}

func newCSInitCmd() *cobra.Command {
	var dir string
	var hosts []string
	var force bool
	c := &cobra.Command{
		Use:   "init [--dir DIR] [--host NAME ...] [--force]",
		Short: "Make the configuration server's passphrase and TLS certificate",
		Long: `init makes a new passphrase (24 characters) and prints it once: give it to
each host that registers (mtconsole register --passphrase-file). It is kept
in DIR/connection.passphrase (mode 0600). It also makes the TLS certificate
(DIR/cs.crt, DIR/cs.key) and prints its fingerprint, which hosts show on
first use. An initialized directory is refused unless --force (then every
host must register again with the new passphrase and certificate).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(hosts) == 0 {
				if h, err := os.Hostname(); err == nil {
					hosts = append(hosts, h)
				}
				hosts = append(hosts, "localhost", "127.0.0.1")
			}
			p, fp, err := csserver.Init(csserver.Dir(dir), hosts, force)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "configuration server initialized in %s\n\n", dir)
			fmt.Fprintf(out, "passphrase (shown once; give it to each host that registers):\n\n    %s\n\n", string(p))
			fmt.Fprintf(out, "certificate fingerprint (hosts show it on first use):\n\n    %s\n\n", fp)
			fmt.Fprintf(out, "next: mtconsole cs serve --dir %s\n", dir)
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", csserver.DefaultDir, "the server's directory")
	c.Flags().StringArrayVar(&hosts, "host", nil, "a name or address for the certificate (repeatable; default this host's name, localhost, 127.0.0.1)")
	c.Flags().BoolVar(&force, "force", false, "make a new passphrase and certificate even if the directory has them")
	return c
}

func newCSServeCmd() *cobra.Command {
	var dir, addr string
	var https bool
	c := &cobra.Command{
		Use:   "serve [--dir DIR] [--addr ADDR] [--https=false]",
		Short: "Serve host registration, heartbeats and the process-server list",
		Long: `serve answers hosts on --addr (default :443) with HTTPS and the certificate
of cs init, keeps the inventory in DIR/hosts.db and marks a host lost after
900 s without a heartbeat. Requests with a bad signature, a time more than 5
minutes off or a nonce already seen are refused; an address with 5 failed
signatures in a minute is refused for a minute. SIGINT or SIGTERM stop it.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := newCmdLog(cmd, "mtconsole-cs", cmd.ErrOrStderr(), "")
			if err != nil {
				return err
			}
			return runCSServe(ctx, cmd.OutOrStdout(), l.Logger, dir, addr, https)
		},
	}
	c.Flags().StringVar(&dir, "dir", csserver.DefaultDir, "the server's directory (made by cs init)")
	c.Flags().StringVar(&addr, "addr", ":443", "address to listen on")
	c.Flags().BoolVar(&https, "https", true, "serve HTTPS (plain HTTP only for hosts registered with --https=false)")
	return c
}

func runCSServe(ctx context.Context, out io.Writer, log *slog.Logger, dir, addr string, https bool) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cs serve: %w (is another server on it? as non-root use --addr :8443)", err)
	}
	srv, err := csserver.Serve(ctx, csserver.Dir(dir), ln, https, log, version)
	if err != nil {
		return err
	}
	scheme := "https"
	if !https {
		scheme = "http (no TLS)"
	}
	fmt.Fprintf(out, "configuration server listening on %s (%s)\n", ln.Addr(), scheme)
	if https {
		fmt.Fprintf(out, "certificate fingerprint: %s\n", srv.FP)
	}
	// Under systemd (Type=notify): ready once it listens with its
	// inventory open. srv.Wait returns once ctx has ended.
	stopping := serviceReady(ctx, "serving on "+ln.Addr().String(), log)
	err = srv.Wait()
	stopping()
	log.Info("cs serve stopped")
	return err
}

func newCSHostsCmd() *cobra.Command {
	var dir, addr string
	var asJSON bool
	c := &cobra.Command{
		Use:   "hosts [--dir DIR] [--json]",
		Short: "List the registered hosts with their state and last heartbeat",
		Long: `hosts lists the hosts registered with the configuration server of DIR. While
cs serve runs it asks the server (at --addr, or where serve wrote it); when
none runs it reads DIR/hosts.db. A host silent for 900 s is "lost".`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			hs, err := csserver.Hosts(cmd.Context(), csserver.Dir(dir), addr)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(hs)
			}
			printHosts(out, hs, time.Now())
			return nil
		},
	}
	c.Flags().StringVar(&dir, "dir", csserver.DefaultDir, "the server's directory")
	c.Flags().StringVar(&addr, "addr", "", "the running server's address (default: the one cs serve wrote in DIR)")
	c.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return c
}

func printHosts(out io.Writer, hs []hostconfig.Host, now time.Time) {
	if len(hs) == 0 {
		fmt.Fprintln(out, "no hosts registered")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "HOSTNAME\tROLE\tSTATE\tLAST HEARTBEAT\tADDRESSES\tHOST ID")
	for _, h := range hs {
		addrs := strings.Join(h.Addresses, ",")
		if h.NATIP != "" {
			addrs = h.NATIP + " (NAT)"
		}
		if addrs == "" {
			addrs = h.RemoteAddr
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\t%s\n", h.Hostname, h.Role, h.State,
			now.Sub(h.LastHeartbeat).Round(time.Second), addrs, h.ID)
	}
	tw.Flush()
}
