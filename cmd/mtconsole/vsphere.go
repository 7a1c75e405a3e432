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

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/failback"
	"github.com/mtconsole/mtconsole/internal/units"
)

// Exit codes of mtconsole vsphere, beyond 0, 1 and 2.
const (
	exitRefused = 4 // a readiness check failed, or the VM is powered on: nothing was changed
	exitCert    = 5 // the server's certificate is not the pinned one, or nothing is pinned
)

const vsphereExitHelp = `
Exit codes: 0 ok, 1 failed (unreachable, login refused, VM not found,
vSphere error; the message says which), 2 usage, 4 refused: a readiness
check failed or the VM is powered on (nothing was changed), 5 the
server's certificate is not trusted (not pinned, or changed).`

// vsphereErr gives the errors of the vsphere package their exit codes.
func vsphereErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, vsphere.ErrCertificate):
		return codeError{exitCert, err}
	case errors.Is(err, vsphere.ErrPoweredOn), errors.Is(err, vsphere.ErrNotReady):
		return codeError{exitRefused, err}
	}
	return err
}

// vsphereFlags are the connection flags every subcommand shares.
type vsphereFlags struct {
	url, user, passwordFile, passwordEnv string
	thumbprint, trustStore               string
	insecure, asJSON                     bool
	uuidFile, devRoot, vm                string
	sessionDir                           string
	noSessionCache                       bool
	readOnly                             bool // a dry run: no pin, no session cached
}

func newVSphereCmd() *cobra.Command {
	var f vsphereFlags
	c := &cobra.Command{
		Use:   "vsphere",
		Short: "The master target's VM in vSphere: EnableUUID, datastores, readiness, the failback VM",
		Long: `Talk to the vCenter or ESXi host that runs this master target.

The password comes from --password-file (its first line), the environment
variable named by --password-env, or one line on stdin (prompted for, without
echo, on a terminal); never from the command line, and it is never printed.
The server's certificate is checked against --thumbprint (SHA-256 or SHA-1),
or against the trust store (--trust-store FILE pins it on first use and
refuses a changed one), or not at all with --insecure (a warning says so).
This VM is found by its BIOS UUID (--uuid-file, root-only by default); --vm
names another VM instead.

The session is kept for the next command: its cookie (never the password)
in a 0600 file per URL and user under --session-dir, checked with the server
on use; a live session needs no password, an expired one means a new login.
--no-session-cache logs in and out each time.
` + vsphereExitHelp,
	}
	p := c.PersistentFlags()
	p.StringVar(&f.url, "url", os.Getenv("MTCONSOLE_VSPHERE_URL"), "vCenter or ESXi URL: host, host:port or https://host/sdk ($MTCONSOLE_VSPHERE_URL)")
	p.StringVar(&f.user, "user", os.Getenv("MTCONSOLE_VSPHERE_USER"), "user name ($MTCONSOLE_VSPHERE_USER)")
	p.StringVar(&f.passwordFile, "password-file", "", "read the password from the first line of this file")
	p.StringVar(&f.passwordEnv, "password-env", "", "read the password from this environment variable")
	p.StringVar(&f.thumbprint, "thumbprint", "", "the server certificate's SHA-256 (or SHA-1) thumbprint")
	p.StringVar(&f.trustStore, "trust-store", "", "file of pinned thumbprints: pins on first use, refuses a changed one")
	p.BoolVar(&f.insecure, "insecure", false, "do not check the server's certificate (a warning is printed)")
	p.StringVar(&f.uuidFile, "uuid-file", vsphere.DefaultUUIDFile, "where this VM's BIOS UUID is read from")
	p.StringVar(&f.devRoot, "dev-root", "/", "root under which dev/disk/by-id is read (for tests)")
	p.StringVar(&f.vm, "vm", "", "act on this VM (name or inventory path) instead of this master target")
	p.BoolVar(&f.asJSON, "json", false, "print JSON")
	p.StringVar(&f.sessionDir, "session-dir", "", "where sessions are cached (default ~/.cache/mtconsole/vsphere-sessions)")
	p.BoolVar(&f.noSessionCache, "no-session-cache", false, "log in and out each time; keep no session")
	c.AddCommand(newVSphereCheckCmd(&f), newVSphereEnableUUIDCmd(&f), newVSphereDatastoresCmd(&f),
		newVSphereReadinessCmd(&f), newVSphereCreateVMCmd(&f))
	return c
}

// with runs fn on a session with the server, until Ctrl-C, and closes
// the session after.
func (f *vsphereFlags) with(cmd *cobra.Command, fn func(ctx context.Context, s *vsphere.Target) error) error {
	ctx, cancel := signalContext()
	defer cancel()
	s, err := f.connect(ctx, cmd)
	if err != nil {
		return err
	}
	// a cached session is kept for the next command; else it logs out
	defer s.Client.Close(context.Background())
	return fn(ctx, s)
}

func (f *vsphereFlags) connect(ctx context.Context, cmd *cobra.Command) (*vsphere.Target, error) {
	if f.url == "" {
		return nil, usageError{errors.New("no vSphere URL: give --url https://vcenter.example")}
	}
	if f.user == "" {
		return nil, usageError{errors.New("no vSphere user: give --user")}
	}
	if f.insecure && (f.thumbprint != "" || f.trustStore != "") {
		return nil, usageError{errors.New("--insecure does not go with --thumbprint or --trust-store")}
	}
	dir := ""
	if f.readOnly {
		f.noSessionCache, f.sessionDir = true, ""
	}
	if !f.noSessionCache {
		if dir = f.sessionDir; dir == "" {
			var err error
			if dir, err = vsphere.DefaultSessionDir(); err != nil {
				return nil, err
			}
		}
	} else if f.sessionDir != "" {
		return nil, usageError{errors.New("--no-session-cache does not go with --session-dir")}
	}
	// The password is read only when a login is needed.
	var pwErr error
	pwFunc := func() (string, error) {
		pw, err := f.password(cmd)
		pwErr = err
		return pw, err
	}
	cl, err := vsphere.Connect(ctx, vsphere.Config{URL: f.url, User: f.user, PasswordFunc: pwFunc, Thumbprint: f.thumbprint,
		TrustStore: f.trustStore, Insecure: f.insecure, SessionDir: dir, ReadOnly: f.readOnly})
	if err != nil {
		if pwErr != nil {
			return nil, usageError{pwErr}
		}
		return nil, vsphereErr(err)
	}
	stderr := cmd.ErrOrStderr()
	if cl.CacheErr != nil {
		fmt.Fprintf(stderr, "warning: the session is not kept for the next command: %v\n", cl.CacheErr)
	}
	if cl.Insecure {
		fmt.Fprintf(stderr, "WARNING: --insecure: the certificate of %s is NOT checked (it shows SHA-256 %s).\n"+
			"WARNING: anyone on the path to vSphere can read the password and act as vSphere. Pin it with --thumbprint.\n",
			cl.Host, cl.Thumbprint)
	}
	if cl.FirstUse && f.readOnly {
		fmt.Fprintf(stderr, "Dry run: the certificate of %s (SHA-256 %s) would be pinned on first use in %s; it is trusted for this check only.\n",
			cl.Host, cl.Thumbprint, f.trustStore)
	} else if cl.FirstUse {
		fmt.Fprintf(stderr, "Pinned the certificate of %s on first use in %s:\n  SHA-256 %s\n"+
			"Compare it with the thumbprint vCenter or the ESXi host shows; a changed certificate will be refused.\n",
			cl.Host, f.trustStore, cl.Thumbprint)
	}
	s, err := cl.OpenTarget(ctx, f.vm, f.uuidFile, f.devRoot)
	if err != nil {
		cl.Close(context.WithoutCancel(ctx))
		return nil, vsphereErr(err)
	}
	return s, nil
}

func (f *vsphereFlags) password(cmd *cobra.Command) (string, error) {
	if f.passwordFile != "" || f.passwordEnv != "" {
		return vsphere.ReadPassword(f.passwordFile, f.passwordEnv, nil)
	}
	in := cmd.InOrStdin()
	if file, ok := in.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		fmt.Fprintf(cmd.ErrOrStderr(), "Password for %s: ", f.user)
		b, err := term.ReadPassword(int(file.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("password: %w", err)
		}
		if len(b) == 0 {
			return "", errors.New("empty password")
		}
		return string(b), nil
	}
	return vsphere.ReadPassword("", "", bufio.NewReader(in))
}

func newVSphereCheckCmd(f *vsphereFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Find this VM by its BIOS UUID; show its host, disk.EnableUUID, controllers, and disks with their block devices",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.with(cmd, func(ctx context.Context, s *vsphere.Target) error {
				out := cmd.OutOrStdout()
				if f.asJSON {
					return writeJSON(out, struct {
						Server vsphere.ServerInfo `json:"server"`
						VM     *vsphere.VM        `json:"vm"`
					}{s.Client.Server(), s.VM})
				}
				printVM(out, s.VM)
				return nil
			})
		},
	}
}

func printVM(out io.Writer, vm *vsphere.VM) {
	fmt.Fprintf(out, "VM %s (%s), %s\n", vm.Name, vm.Path, vm.PowerState)
	fmt.Fprintf(out, "  host %s, datacenter %s, %d CPU, %d MB, BIOS UUID %s\n", vm.Host, vm.Datacenter, vm.CPUs, vm.MemoryMB, vm.BIOSUUID)
	fmt.Fprintf(out, "  datastores: %s\n", strings.Join(vm.Datastores, ", "))
	fmt.Fprintf(out, "  snapshots: %d\n", vm.Snapshots)
	if vm.EnableUUIDOn() {
		fmt.Fprintln(out, "  disk.EnableUUID: TRUE")
	} else {
		fmt.Fprintf(out, "  disk.EnableUUID: %s: the guest sees no stable SCSI ids\n  fix: %s\n", orNone(vm.EnableUUID, "not set"), vsphere.EnableUUIDFix(vm.Name))
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nCONTROLLER\tTYPE\tDISKS\tFREE SLOTS")
	for _, c := range vm.Controllers {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", orNone(c.Label, fmt.Sprintf("SCSI %d", c.Bus)), c.Type, c.Disks, c.FreeSlots)
	}
	tw.Flush()
	tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "\nDISK\tSIZE\tDEVICE\tFILE")
	for _, d := range vm.Disks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Controller, vsphere.GiB(d.CapacityBytes), orNone(d.Device, "-"), d.File)
	}
	tw.Flush()
	unmapped := 0
	for _, d := range vm.Disks {
		if d.Device == "" {
			unmapped++
		}
	}
	if unmapped > 0 {
		fmt.Fprintf(out, "\n%d disk(s) without a block device: no /dev/disk/by-id/wwn-0x<VMDK UUID> link (disk.EnableUUID off at the last power-on, or not this VM?)\n", unmapped)
	}
}

func orNone(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func newVSphereEnableUUIDCmd(f *vsphereFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "enable-uuid",
		Short: "Set disk.EnableUUID=TRUE on a powered-off VM (this one, or --vm)",
		Long: `Set disk.EnableUUID=TRUE in the VM's advanced configuration, so the guest
sees each disk's VMDK UUID as its SCSI id. The VM must be powered off: on a
running VM the command changes nothing, exits 4 and says what to do (power
off, run this from any host with --vm NAME, power on: a reboot from inside
the guest is not enough).
` + vsphereExitHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.with(cmd, func(ctx context.Context, s *vsphere.Target) error {
				changed, err := s.Client.EnableUUID(ctx, s.Obj)
				if err != nil {
					return vsphereErr(err)
				}
				if f.asJSON {
					return writeJSON(cmd.OutOrStdout(), map[string]any{"vm": s.VM.Name, "changed": changed, "enableUuid": "TRUE"})
				}
				if changed {
					fmt.Fprintf(cmd.OutOrStdout(), "disk.EnableUUID set to TRUE on %s; it takes effect when the VM is powered on.\n", s.VM.Name)
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "disk.EnableUUID is already TRUE on %s: nothing changed.\n", s.VM.Name)
				}
				return nil
			})
		},
	}
}

func newVSphereDatastoresCmd(f *vsphereFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "datastores",
		Short: "List the datastores (capacity, free, type, access from this host), ESXi hosts and networks of this VM's datacenter",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.with(cmd, func(ctx context.Context, s *vsphere.Target) error {
				inv, err := s.Client.Inventory(ctx, s.VM)
				if err != nil {
					return vsphereErr(err)
				}
				out := cmd.OutOrStdout()
				if f.asJSON {
					return writeJSON(out, inv)
				}
				fmt.Fprintf(out, "Datacenter %s, seen from %s on %s\n\n", inv.Datacenter, s.VM.Name, s.VM.Host)
				tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "DATASTORE\tTYPE\tCAPACITY\tFREE\tACCESSIBLE\tFROM THIS HOST")
				for _, d := range inv.Datastores {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, d.Type, vsphere.GiB(d.CapacityBytes), vsphere.GiB(d.FreeBytes), units.YesNo(d.Accessible), units.YesNo(d.FromHost))
				}
				tw.Flush()
				tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "\nHOST\tSTATE\tCPUS\tMEMORY\tDATASTORES\tNETWORKS")
				for _, h := range inv.Hosts {
					state := h.State
					if h.Maintenance {
						state += " (maintenance)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%d MB\t%s\t%s\n", h.Name, state, h.CPUs, h.MemoryMB, strings.Join(h.Datastores, ","), strings.Join(h.Networks, ","))
				}
				tw.Flush()
				tw = tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "\nNETWORK\tTYPE\tACCESSIBLE")
				for _, n := range inv.Networks {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", n.Name, n.Type, units.YesNo(n.Accessible))
				}
				return tw.Flush()
			})
		},
	}
}

func newVSphereReadinessCmd(f *vsphereFlags) *cobra.Command {
	var spec vsphere.ReadinessSpec
	var needs []string
	c := &cobra.Command{
		Use:   "readiness",
		Short: "Run vContinuum's readiness checks on this master target and a plan",
		Long: `Check the master target and the plan before protecting or recovering:
memory, disk.EnableUUID, no snapshots, SCSI controllers LSI Logic and of one
type, free SCSI slots for --disks, at most 60 disks, each --need datastore
accessible from this host and with room, the failback VM's --name free in the
datacenter and no VM at its path on --vm-datastore, --target-vm powered off.
Nothing is changed. Exit 4 when a check fails.
` + vsphereExitHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, n := range needs {
				ds, size, ok := strings.Cut(n, "=")
				if !ok || ds == "" {
					return usageError{fmt.Errorf("--need %q: want DATASTORE=SIZE, e.g. LocalDS_0=40G", n)}
				}
				b, err := units.ParseBytes(size)
				if err != nil {
					return usageError{fmt.Errorf("--need %q: %w", n, err)}
				}
				spec.Needs = append(spec.Needs, vsphere.Need{Datastore: ds, Bytes: b})
			}
			return f.with(cmd, func(ctx context.Context, s *vsphere.Target) error {
				checks, err := s.Client.Readiness(ctx, s.VM, spec)
				if err != nil {
					return vsphereErr(err)
				}
				out := cmd.OutOrStdout()
				if f.asJSON {
					if err := writeJSON(out, checks); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(out, "Readiness of %s on %s:\n", s.VM.Name, s.VM.Host)
					printChecks(out, failback.Checks(checks))
				}
				if vsphere.Failed(checks) {
					return codeError{exitRefused, errors.New("readiness: a check failed")}
				}
				return nil
			})
		},
	}
	fl := c.Flags()
	fl.IntVar(&spec.DisksToAttach, "disks", 0, "disks the plan attaches to the master target")
	fl.StringArrayVar(&needs, "need", nil, "DATASTORE=SIZE the plan needs (repeatable; K, M, G, T)")
	fl.StringVar(&spec.VMName, "name", "", "the failback VM's name, which must be free")
	fl.StringVar(&spec.VMDatastore, "vm-datastore", "", "the datastore of the failback VM's files")
	fl.Int64Var(&spec.VMMemoryMB, "memory-mb", 0, "the failback VM's memory")
	fl.StringVar(&spec.TargetVM, "target-vm", "", "an existing VM recovered onto, which must be powered off")
	return c
}

func newVSphereCreateVMCmd(f *vsphereFlags) *cobra.Command {
	var spec vsphere.FailbackSpec
	var nics []string
	var dryRun bool
	c := &cobra.Command{
		Use:   "create-vm --disk DISK... [--name NAME | --source-hostname HOST]",
		Short: "Create the failback VM from recovered disks on this master target and power it on",
		Long: `Create the failback VM after a recovery onto disks attached to this master
target: detach the disks (--disk: /dev/sdX, "[datastore] path.vmdk", VMDK
UUID, or label) from the master target, create the VM on --host (this one's
by default), --datastore (the first disk's) and --folder, with --cpus,
--memory-mb and one NIC per --nic NETWORK[:ADAPTER], attach the disks, power
it on. Readiness checks run first (name free, path free, memory, room for the
swap file, no snapshots); a failure refuses with exit 4. Every step before
power-on is undone if a later one fails; the disks' files are never deleted.
--dry-run prints the plan and changes nothing. Stop the pairs writing to the
disks first: the guest loses them when they are detached.
` + vsphereExitHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(spec.Disks) == 0 {
				return usageError{errors.New("no --disk: name the recovered disks to move to the failback VM")}
			}
			if spec.Name == "" && spec.SourceHostname == "" {
				return usageError{errors.New("give --name, or --source-hostname for the default name")}
			}
			spec.NICs = nil
			for _, n := range nics {
				netw, adapter, _ := strings.Cut(n, ":")
				if netw == "" {
					return usageError{fmt.Errorf("--nic %q: want NETWORK[:ADAPTER]", n)}
				}
				spec.NICs = append(spec.NICs, vsphere.NIC{Network: netw, Adapter: adapter})
			}
			spec.DevRoot = f.devRoot
			return f.with(cmd, func(ctx context.Context, s *vsphere.Target) error {
				p, err := s.Client.PlanFailback(ctx, s.Obj, spec)
				if err != nil {
					return vsphereErr(err)
				}
				out := cmd.OutOrStdout()
				if dryRun {
					if f.asJSON {
						return writeJSON(out, p)
					}
					printPlan(out, p)
					if vsphere.Failed(p.Checks) {
						return codeError{exitRefused, errors.New("create-vm: a readiness check failed")}
					}
					return nil
				}
				if !f.asJSON {
					printPlan(out, p)
					fmt.Fprintln(out)
				}
				progress := func(st vsphere.Step) {
					if !f.asJSON {
						fmt.Fprintf(out, "%-11s %s\n", st.Status, st.Title)
					}
				}
				err = s.Client.Execute(ctx, p, progress)
				if f.asJSON {
					if jerr := writeJSON(out, p); jerr != nil {
						return jerr
					}
				} else if err == nil {
					fmt.Fprintf(out, "\nFailback VM %s created with %d disk(s) and powered on.\n", p.Spec.Name, len(p.Disks))
				}
				return vsphereErr(err)
			})
		},
	}
	fl := c.Flags()
	fl.StringVar(&spec.Name, "name", "", "the failback VM's display name (default: --source-hostname)")
	fl.StringVar(&spec.SourceHostname, "source-hostname", "", "the protected machine's hostname")
	fl.StringVar(&spec.Host, "host", "", "ESXi host (default: the master target's)")
	fl.StringVar(&spec.Datastore, "datastore", "", "datastore of the VM's files (default: the first disk's)")
	fl.StringVar(&spec.Folder, "folder", "", "inventory folder (default: the datacenter's VM folder)")
	fl.Int32Var(&spec.CPUs, "cpus", 2, "virtual CPUs")
	fl.Int64Var(&spec.MemoryMB, "memory-mb", 2048, "memory in MB (at least 512)")
	fl.StringVar(&spec.GuestID, "guest-id", "", "vSphere guest OS id (default otherLinux64Guest)")
	fl.StringArrayVar(&nics, "nic", nil, "NETWORK[:ADAPTER] for each NIC, in order (adapter vmxnet3 by default)")
	fl.StringArrayVar(&spec.Disks, "disk", nil, "a recovered disk on the master target (repeatable, in the new VM's order)")
	fl.BoolVar(&dryRun, "dry-run", false, "print the plan and change nothing")
	return c
}

func printPlan(out io.Writer, p *vsphere.Plan) {
	fmt.Fprintf(out, "Failback VM %s from %d disk(s) on %s\n", p.Spec.Name, len(p.Disks), p.MT)
	if len(p.Checks) > 0 {
		fmt.Fprintln(out, "\nChecks:")
		printChecks(out, failback.Checks(p.Checks))
	}
	fmt.Fprintln(out, "\nSteps:")
	fmt.Fprint(out, failback.PlanSteps(p))
}
