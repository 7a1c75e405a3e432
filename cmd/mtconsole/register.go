package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// registerExitHelp ends the help of register and unregister.
const registerExitHelp = `
Exit codes: 0 ok, 1 failed (the message says why; also "not registered"),
2 bad flags or values, 14 cannot reach the configuration server or it refused
the passphrase, the time or its certificate (the original's code 14).`

type registerFlags struct {
	config, cs, passFile, fingerprint, drscout       string
	passStdin, https, verify, forgetCert, asJSON     bool
	natIP, natHost, role, dataAddr, dataFP, cacheDir string
}

func newRegisterCmd() *cobra.Command {
	var f registerFlags
	c := &cobra.Command{
		Use:   "register --cs HOST[:PORT] --passphrase-file FILE | register --verify",
		Short: "Register this host with the configuration server (hostconfigcli's Save), or verify it",
		Long: `register tests the connection to the configuration server, registers this
host (its id, name, addresses, NAT overrides, role, OS, version and disks),
reads it back to verify, and then stores the settings in --config (0600)
and the passphrase beside it (private/connection.passphrase, 0600). Nothing
is stored if any step fails.

The passphrase comes from --passphrase-file (first line; mode 0600) or, with
--passphrase-stdin, from the first line of stdin; never from the command
line. Without either, the stored one is used.

On first use the server's certificate is pinned (cs_known_hosts beside the
config) once the server's signed reply proves it holds the passphrase and
saw the same certificate; --fingerprint SHA256:... also requires it to be
that one. A changed certificate is refused, showing both fingerprints;
--forget-cert drops the pinned one (after you checked the new one).

--import-drscout takes the server, port, HTTPS, host id and NAT settings of
an original agent's drscout.conf (/usr/local/ASR/Vx/etc/drscout.conf) and,
if no passphrase is given, its connection.passphrase.

register --verify reads this host back from the server and exits 0 if the
server holds it. The config file's format is in the package hostconfig's
documentation; flags change only what they name.
` + registerExitHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.verify {
				return runVerify(ctx, cmd.OutOrStdout(), f)
			}
			return runRegister(ctx, cmd, f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.config, "config", hostconfig.DefaultConfigPath, "the host config file (passphrase and pinned certificate beside it)")
	fl.StringVar(&f.cs, "cs", "", "the configuration server, HOST or HOST:PORT (FQDN or IP)")
	fl.StringVar(&f.passFile, "passphrase-file", "", "file whose first line is the passphrase (mode 0600)")
	fl.BoolVar(&f.passStdin, "passphrase-stdin", false, "read the passphrase from the first line of stdin")
	fl.BoolVar(&f.https, "https", true, "talk HTTPS to the server")
	fl.StringVar(&f.natIP, "nat-ip", "", "advertise this IP address instead of the host's own (\"\" to stop)")
	fl.StringVar(&f.natHost, "nat-hostname", "", "advertise this host name instead of the host's own (\"\" to stop)")
	fl.StringVar(&f.role, "role", "", "MasterTarget (mt) or ProcessServer (ps)")
	fl.StringVar(&f.dataAddr, "data-addr", "", "a process server: the address master targets dial (HOST:9443)")
	fl.StringVar(&f.dataFP, "data-fingerprint", "", "a process server: its data certificate's fingerprint")
	fl.StringVar(&f.cacheDir, "cache-dir", "", "the cache and retention directory")
	fl.StringVar(&f.fingerprint, "fingerprint", "", "require the server's certificate to be this one on first use")
	fl.StringVar(&f.drscout, "import-drscout", "", "take the settings of an original drscout.conf (path)")
	fl.BoolVar(&f.forgetCert, "forget-cert", false, "drop the pinned certificate of the server first")
	fl.BoolVar(&f.verify, "verify", false, "only read this host back from the server")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	return c
}

// passphraseFrom reads --passphrase-file or stdin; "" means the stored one.
func passphraseFrom(f registerFlags) (hostconfig.Passphrase, error) {
	switch {
	case f.passFile != "" && f.passStdin:
		return "", usageError{errors.New("--passphrase-file and --passphrase-stdin do not go together")}
	case f.passFile != "":
		return hostconfig.ReadPassphraseFile(f.passFile)
	case f.passStdin:
		return hostconfig.ReadPassphrase(os.Stdin)
	}
	return "", nil
}

func runRegister(ctx context.Context, cmd *cobra.Command, f registerFlags) error {
	out := cmd.OutOrStdout()
	paths := hostconfig.PathsFor(f.config)
	cfg, err := hostconfig.LoadOrDefault(f.config)
	if err != nil {
		return err
	}
	pass, err := passphraseFrom(f)
	if err != nil {
		return err
	}
	if f.drscout != "" {
		d, err := hostconfig.LoadDrscout(f.drscout)
		if err != nil {
			return err
		}
		d.Apply(&cfg)
		fmt.Fprintf(out, "imported %s (left at defaults: %d keys missing)\n", f.drscout, len(d.Missing))
		if pass == "" {
			if p, err := hostconfig.ReadPassphraseFile(hostconfig.DefaultOldPassphrase); err == nil {
				pass = p
				fmt.Fprintf(out, "imported the passphrase of %s\n", hostconfig.DefaultOldPassphrase)
			}
		}
	}
	fl := cmd.Flags()
	if fl.Changed("cs") {
		h, p, err := hostconfig.SplitCSAddr(f.cs, hostconfig.DefaultPort)
		if err != nil {
			return usageError{fmt.Errorf("--cs %q: %w", f.cs, err)}
		}
		cfg.CSHost, cfg.CSPort = h, p
	}
	if fl.Changed("https") {
		cfg.HTTPS = f.https
	}
	if fl.Changed("nat-ip") {
		cfg.UseNATIP, cfg.NATIP = f.natIP != "", f.natIP
	}
	if fl.Changed("nat-hostname") {
		cfg.UseNATHostname, cfg.NATHostname = f.natHost != "", f.natHost
	}
	if fl.Changed("role") {
		switch f.role {
		case "mt", "MasterTarget", "mastertarget":
			cfg.Role = hostconfig.RoleMasterTarget
		case "ps", "ProcessServer", "processserver":
			cfg.Role = hostconfig.RoleProcessServer
		default:
			return usageError{fmt.Errorf("--role %q: want MasterTarget (mt) or ProcessServer (ps)", f.role)}
		}
	}
	if fl.Changed("data-addr") {
		cfg.DataAddr = f.dataAddr
	}
	if fl.Changed("data-fingerprint") {
		if _, err := wire.ParseFingerprint(f.dataFP); err != nil {
			return usageError{fmt.Errorf("--data-fingerprint: %w", err)}
		}
		cfg.DataFingerprint = f.dataFP
	}
	if fl.Changed("cache-dir") {
		cfg.CacheDir = f.cacheDir
	}
	if cfg.CSHost == "" {
		return usageError{fmt.Errorf("no configuration server: give --cs HOST[:PORT] (none stored in %s)", f.config)}
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	var want wire.Fingerprint
	if f.fingerprint != "" {
		if want, err = wire.ParseFingerprint(f.fingerprint); err != nil {
			return usageError{fmt.Errorf("--fingerprint: %w", err)}
		}
	}
	if f.forgetCert {
		ts, err := wire.OpenTrustStore(paths.Trust)
		if err != nil {
			return err
		}
		if removed, err := ts.Remove(cfg.CSAddr()); err != nil {
			return err
		} else if removed {
			fmt.Fprintf(out, "forgot the pinned certificate of %s\n", cfg.CSAddr())
		}
	}
	var firstUse wire.Fingerprint
	s := hostconfig.Setup{Paths: paths, Passphrase: pass, Version: version, SysRoot: "/",
		Confirm: func(addr string, fp wire.Fingerprint) bool {
			firstUse = fp
			return want.IsZero() || want == fp
		}}
	res, err := hostconfig.Register(ctx, cfg, s)
	if errors.Is(err, hostconfig.ErrUntrusted) && !want.IsZero() {
		return fmt.Errorf("%w: the server presented %s, not --fingerprint %s", err, firstUse, want)
	}
	if err != nil {
		var fe *hostconfig.FieldError
		if errors.As(err, &fe) {
			return usageError{err}
		}
		return err
	}
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Config      string          `json:"config"`
			CS          string          `json:"cs"`
			Fingerprint string          `json:"fingerprint,omitempty"`
			FirstUse    bool            `json:"first_use"`
			Host        hostconfig.Host `json:"host"`
		}{f.config, res.Config.CSAddr(), fpString(res.Fingerprint), !firstUse.IsZero(), res.Host})
	}
	fmt.Fprintf(out, "configuration server %s: reachable, passphrase accepted", res.Config.CSAddr())
	switch {
	case !res.Config.HTTPS:
		fmt.Fprint(out, " (plain HTTP: no certificate)\n")
	case !firstUse.IsZero():
		fmt.Fprintf(out, "\ncertificate %s trusted on first use (the server proved it holds the passphrase); pinned in %s\n", res.Fingerprint, paths.Trust)
	default:
		fmt.Fprintf(out, ", certificate %s as pinned\n", res.Fingerprint)
	}
	fmt.Fprintf(out, "registered %s as %s, host id %s; verified (the server holds it, state %s)\n",
		res.Host.Hostname, res.Host.Role, res.Host.ID, res.Host.State)
	fmt.Fprintf(out, "saved %s\n", f.config)
	return nil
}

func fpString(fp wire.Fingerprint) string {
	if fp.IsZero() {
		return ""
	}
	return fp.String()
}

func runVerify(ctx context.Context, out io.Writer, f registerFlags) error {
	cfg, cl, err := hostconfig.Stored(hostconfig.PathsFor(f.config))
	if err != nil {
		return err
	}
	h, err := cl.Verify(ctx, hostconfig.CollectHostInfo(cfg, version, "/"))
	if err != nil {
		return err
	}
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(h)
	}
	fmt.Fprintf(out, "registered with %s: %s (%s), host id %s, state %s, last heartbeat %s ago\n", cfg.CSAddr(),
		h.Hostname, h.Role, h.ID, h.State, time.Since(h.LastHeartbeat).Round(time.Second))
	return nil
}

// isCSError reports whether err means the configuration server could not
// be reached or would not accept this host's passphrase, clock or trust:
// exit code 14, as the original's configurator.
func isCSError(err error) bool {
	for _, e := range []error{hostconfig.ErrUnreachable, hostconfig.ErrPassphraseRejected, hostconfig.ErrRateLimited,
		hostconfig.ErrBadReply, hostconfig.ErrClockSkew, hostconfig.ErrCertChanged, hostconfig.ErrUntrusted, hostconfig.ErrReplay} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
