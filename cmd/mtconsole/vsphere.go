package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/failback"
	"github.com/mtconsole/mtconsole/internal/units"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// Exit codes of mtconsole vsphere, beyond 0, 1 and 2.
const (
	exitRefused = 4 // a readiness check failed, or the VM is powered on: nothing was changed
	exitCert    = 5 // the server's certificate is not the pinned one, or nothing is pinned
)

const vsphereExitHelp = `
Exit codes: 0 ok, 1 failed (unreachable, login refused, VM not found,
vSphere error; the message says which), 2 usage, 4 refused: a readiness
check failed or the VM is not powered off (nothing was changed), 5 the
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
	uuidFile, devRoot, vm, vmGlob        string
	planDir                              string
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
	p.StringVar(&f.vm, "vm", "", "act on this VM (exact name or inventory path) instead of this master target")
	p.StringVar(&f.vmGlob, "vm-glob", "", "act on the one VM whose name matches this pattern (several matches are refused, listed)")
	p.StringVar(&f.planDir, "plan-dir", vsphere.DefaultPlanDir, "where failback runs keep their plan files")
	p.BoolVar(&f.asJSON, "json", false, "print JSON")
	p.StringVar(&f.sessionDir, "session-dir", "", "where sessions are cached (default ~/.cache/mtconsole/vsphere-sessions)")
	p.BoolVar(&f.noSessionCache, "no-session-cache", false, "log in and out each time; keep no session")
	c.AddCommand(newVSphereCheckCmd(&f), newVSphereEnableUUIDCmd(&f), newVSphereDatastoresCmd(&f),
		newVSphereReadinessCmd(&f), newVSphereCreateVMCmd(&f), newVSphereFailbackCmd(&f))
	return c
}

// with runs fn on a session with the server, until Ctrl-C, and closes
// the session after.
func (f *vsphereFlags) with(cmd *cobra.Command, fn func(ctx context.Context, s *vsphere.Target) error) error {
	ctx, cancel := signalContext()
	defer cancel()
	out := &countWriter{w: cmd.OutOrStdout()}
	cmd.SetOut(out)
	err := func() error {
		s, err := f.connect(ctx, cmd)
		if err != nil {
			return err
		}
		// a cached session is kept for the next command; else it logs out
		defer s.Client.Close(context.Background())
		return fn(ctx, s)
	}()
	if err != nil && f.asJSON && out.n == 0 {
		// --json: stdout always gets a JSON object, a refusal too.
		return f.refuse(cmd, err, nil)
	}
	return err
}

// countWriter counts what is written through it.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

func (f *vsphereFlags) connect(ctx context.Context, cmd *cobra.Command) (*vsphere.Target, error) {
	if f.vm != "" && f.vmGlob != "" {
		return nil, usageError{errors.New("--vm does not go with --vm-glob: give an exact name or a pattern")}
	}
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
	var s *vsphere.Target
	if f.vmGlob != "" {
		s, err = cl.OpenTargetGlob(ctx, f.vmGlob, f.devRoot)
	} else {
		s, err = cl.OpenTarget(ctx, f.vm, f.uuidFile, f.devRoot)
	}
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

// createVMFlags are create-vm's flags beyond the spec's own fields.
type createVMFlags struct {
	spec                vsphere.FailbackSpec
	nics, disks         []string
	specFile, socket    string
	dryRun, noPairCheck bool
	taskGrace           time.Duration
}

// parseNIC reads --nic network=NAME,adapter=vmxnet3|e1000e|e1000,mac=..,connected=true|false,
// or the short NETWORK[:ADAPTER].
func parseNIC(s string) (vsphere.NIC, error) {
	if !strings.Contains(s, "=") {
		netw, adapter, _ := strings.Cut(s, ":")
		if netw == "" {
			return vsphere.NIC{}, fmt.Errorf("--nic %q: want network=NAME[,adapter=vmxnet3|e1000e|e1000][,mac=MAC][,connected=true|false]", s)
		}
		return vsphere.NIC{Network: netw, Adapter: adapter}, nil
	}
	var n vsphere.NIC
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return n, fmt.Errorf("--nic %q: %q is not KEY=VALUE", s, kv)
		}
		switch k {
		case "network":
			n.Network = v
		case "adapter":
			n.Adapter = v
		case "mac":
			n.MAC = v
		case "connected":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return n, fmt.Errorf("--nic %q: connected=%q: true or false", s, v)
			}
			n.Disconnected = !b
		default:
			return n, fmt.Errorf("--nic %q: unknown key %q (network, adapter, mac, connected)", s, k)
		}
	}
	if n.Network == "" {
		return n, fmt.Errorf("--nic %q: no network=NAME", s)
	}
	return n, nil
}

// machines are the failback VMs to make: from --spec FILE (several), or
// from the flags (one).
func (cf *createVMFlags) machines(cmd *cobra.Command, devRoot string) ([]vsphere.FailbackSpec, error) {
	if cf.specFile != "" {
		for _, fl := range []string{"name", "source-hostname", "disk", "nic", "controller", "onto-vm", "group"} {
			if cmd.Flags().Changed(fl) {
				return nil, usageError{fmt.Errorf("--spec %s gives the machines: --%s does not go with it", cf.specFile, fl)}
			}
		}
		b, err := os.ReadFile(cf.specFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("--spec: %w", err)}
		}
		var file struct {
			Machines []vsphere.FailbackSpec `json:"machines"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return nil, usageError{fmt.Errorf("--spec %s: %w (want {\"machines\": [{\"name\": ..., \"cpus\": ..., \"memoryMB\": ..., \"disks\": [...]}, ...]})", cf.specFile, err)}
		}
		if len(file.Machines) == 0 {
			return nil, usageError{fmt.Errorf("--spec %s: no machines", cf.specFile)}
		}
		names := map[string]int{}
		for i := range file.Machines {
			m := &file.Machines[i]
			if m.CPUs == 0 {
				m.CPUs = cf.spec.CPUs
			}
			if m.MemoryMB == 0 {
				m.MemoryMB = cf.spec.MemoryMB
			}
			if err := cf.fromSource(cmd, devRoot, m, map[string]bool{"firmware": m.Firmware != "", "guest-id": m.GuestID != "", "controller": len(m.Controllers) > 0}); err != nil {
				return nil, usageError{fmt.Errorf("--spec %s: machine %d (%s): %w", cf.specFile, i+1, m.Name, err)}
			}
			if err := m.Validate(); err != nil {
				return nil, usageError{fmt.Errorf("--spec %s: machine %d (%s): %w", cf.specFile, i+1, m.Name, err)}
			}
			if j, ok := names[m.Name]; ok {
				return nil, usageError{fmt.Errorf("--spec %s: machines %d and %d are both named %q", cf.specFile, j, i+1, m.Name)}
			}
			names[m.Name] = i + 1
		}
		return file.Machines, nil
	}
	spec := cf.spec
	spec.NICs, spec.Disks, spec.DiskBus = nil, nil, nil
	if len(cf.disks) == 0 && spec.Group == "" {
		return nil, usageError{errors.New("no --disk: name the recovered disks to move to the failback VM (or --group: its pairs' targets)")}
	}
	if spec.Name == "" && spec.SourceHostname == "" && spec.OntoVM == "" && spec.Group == "" {
		return nil, usageError{errors.New("give --name, or --source-hostname or --group for the default name (or --onto-vm)")}
	}
	if spec.OntoVM != "" && spec.Name != "" && spec.Name != spec.OntoVM {
		return nil, usageError{fmt.Errorf("--name %s does not go with --onto-vm %s: the existing VM keeps its name", spec.Name, spec.OntoVM)}
	}
	for _, n := range cf.nics {
		nic, err := parseNIC(n)
		if err != nil {
			return nil, usageError{err}
		}
		spec.NICs = append(spec.NICs, nic)
	}
	for _, d := range cf.disks {
		if i := strings.LastIndex(d, "@"); i > 0 {
			if bus, err := strconv.Atoi(d[i+1:]); err == nil {
				spec.Disks = append(spec.Disks, d[:i])
				spec.DiskBus = append(spec.DiskBus, bus)
				continue
			}
		}
		spec.Disks = append(spec.Disks, d)
	}
	if len(spec.DiskBus) == 0 {
		spec.DiskBus = nil
	}
	set := map[string]bool{}
	for _, fl := range []string{"firmware", "guest-id", "controller"} {
		set[fl] = cmd.Flags().Changed(fl)
	}
	if err := cf.fromSource(cmd, devRoot, &spec, set); err != nil {
		return nil, usageError{err}
	}
	if err := spec.Validate(); err != nil {
		return nil, usageError{err}
	}
	return []vsphere.FailbackSpec{spec}, nil
}

// fromSource fills what the spec leaves to what is known of the source:
// with a protection group and no disks, the group's pairs' targets (the
// agent on --socket is asked) and, with no name, the group's name; the
// firmware, guest id and controllers (unless set) from the disks'
// partition tables. Each default is recorded, with where it came from,
// in spec.Defaults.
func (cf *createVMFlags) fromSource(cmd *cobra.Command, devRoot string, spec *vsphere.FailbackSpec, set map[string]bool) error {
	if spec.Group != "" && len(spec.Disks) == 0 {
		disks, note, err := groupDisks(cmd.Context(), cf.socket, devRoot, spec.Group)
		if err != nil {
			return err
		}
		spec.Disks = disks
		spec.Defaults = append(spec.Defaults, note)
	}
	if spec.Group != "" && spec.Name == "" && spec.SourceHostname == "" && spec.OntoVM == "" {
		spec.Name = spec.Group
		spec.Defaults = append(spec.Defaults, fmt.Sprintf("name %s: the protection group's", spec.Group))
	}
	boot := vsphere.ProbeBoot(devRoot, spec.Disks)
	spec.SourceDefaults(boot, set)
	for _, u := range boot.Unread {
		spec.Defaults = append(spec.Defaults, "partition table not read, no default from it: "+u)
	}
	return nil
}

// groupDisks asks the agent on socket for the pairs of a protection
// group (a pair in no group is a group of its own, named by its id):
// their targets, in the agent's order, each as the block device under
// devRoot it resolves to (/dev/sdc for a /dev/disk/by-id link), and a
// line saying where they came from.
func groupDisks(ctx context.Context, socket, devRoot, group string) ([]string, string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	cl, err := api.Dial(socket)
	if err != nil {
		return nil, "", fmt.Errorf("--group %s: the agent on %s (--socket) knows the group's disks: %w; or give --disk", group, socket, err)
	}
	defer cl.Close()
	st, err := cl.Status(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("--group %s: the agent on %s: %w", group, socket, err)
	}
	var disks, parts []string
	groups := map[string]bool{}
	for _, p := range st.Pairs {
		g := orNone(p.Group, p.ID)
		groups[g] = true
		if g != group || p.Target == "" {
			continue
		}
		disk := p.Target
		if r, err := filepath.EvalSymlinks(filepath.Join(devRoot, p.Target)); err == nil {
			if rel, err := filepath.Rel(devRoot, r); err == nil && strings.HasPrefix(rel, "dev/") {
				disk = "/" + rel
			}
		}
		disks = append(disks, disk)
		shown := disk
		if disk != p.Target {
			shown = p.Target + " = " + disk
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", p.ID, shown, units.Bytes(p.TargetBytes)))
	}
	if len(disks) == 0 {
		known := slices.Sorted(maps.Keys(groups))
		return nil, "", fmt.Errorf("--group %s: the agent on %s has no pair in that group (groups: %s)", group, socket, orNone(strings.Join(known, ", "), "none"))
	}
	return disks, fmt.Sprintf("disks: protection group %s's %d pair target(s), from the agent: %s", group, len(disks), strings.Join(parts, ", ")), nil
}

// jsonRefusal is what --json prints on stdout when a command refuses or
// fails: the error, its exit code, and the checks when there are some.
type jsonRefusal struct {
	Error  string          `json:"error"`
	Exit   int             `json:"exit"`
	Checks []vsphere.Check `json:"checks,omitempty"`
	Plan   *vsphere.Plan   `json:"plan,omitempty"`
}

func newVSphereCreateVMCmd(f *vsphereFlags) *cobra.Command {
	var cf createVMFlags
	c := &cobra.Command{
		Use:   "create-vm --disk DISK... | --group GROUP [--name NAME | --source-hostname HOST] | --spec FILE",
		Short: "Create the failback VM from recovered disks on this master target and power it on",
		Long: `Create the failback VM after a recovery onto disks attached to this master
target: detach the disks (--disk: /dev/sdX, "[datastore] path.vmdk", VMDK
UUID, or label; DISK@BUS puts it on that controller) from the master target,
create the VM with the hardware the flags give, attach the disks, power it on
(not with --no-power-on). --onto-vm attaches the disks to an existing,
powered-off VM instead of creating one. --spec FILE makes several machines,
one after another: {"machines": [{"name": "web01", "cpus": 4, "memoryMB":
8192, "firmware": "efi", "controllers": ["pvscsi"], "nics": [{"network":
"VM Network", "mac": "00:50:56:aa:bb:cc"}], "disks": ["/dev/sdb"]}, ...]}
(a machine may give "group" instead of "disks").

Defaults come from what is known of the source: --group GROUP takes the
disks from the protection group's pairs (the agent on --socket is asked)
and the name from the group; the firmware, guest id and SCSI controller
come from the recovered disks' partition tables (an EFI system partition
means efi; Windows partitions a Windows guest on LSI Logic SAS) unless
--firmware, --guest-id or --controller are given. --dry-run lists each
default and where it came from.

Readiness checks run before any change: the name free and valid, the host's
CPUs and memory, room for the swap file, no snapshots, and that no disk is
the target of a running pair (the agent on --socket is asked), mounted here,
or held by LVM, md, multipath or dm. A failure refuses with exit 4.

Each run is recorded step by step in a plan file (0600) under --plan-dir
before each change is made. Ctrl-C or SIGTERM waits for the vSphere task
under way, then undoes every step in reverse; the disks' files are never
deleted. A run killed outright is finished with 'vsphere failback resume
PLAN' or reversed with 'vsphere failback undo PLAN'. --dry-run prints the
plan and changes nothing.
` + vsphereExitHelp,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			specs, err := cf.machines(cmd, f.devRoot)
			if err != nil {
				return f.refuse(cmd, err, nil)
			}
			return f.with(cmd, func(ctx context.Context, s *vsphere.Target) error {
				s.Client.TaskGrace = cf.taskGrace
				out := cmd.OutOrStdout()
				var plans []*vsphere.Plan
				for _, spec := range specs {
					spec.DevRoot = f.devRoot
					if !cf.dryRun {
						spec.PlanDir = f.planDir
					}
					p, err := s.Client.PlanFailback(ctx, s.Obj, spec)
					if err != nil {
						return f.refuse(cmd, vsphereErr(err), nil)
					}
					if cf.noPairCheck {
						p.Checks = append(p.Checks, vsphere.InUseChecks(f.devRoot, p.Disks, vsphere.PairTargets{Socket: "(--no-pair-check)"})...)
					} else {
						p.Checks = append(p.Checks, vsphere.InUseChecks(f.devRoot, p.Disks, failback.PairTargets(ctx, cf.socket))...)
					}
					plans = append(plans, p)
				}
				// A disk moves to one VM: two machines of a --spec file
				// naming the same disk (by any of its names) are refused.
				owner := map[string]string{}
				for _, p := range plans {
					for _, d := range p.Disks {
						if o, ok := owner[d.File]; ok && o != p.Spec.Name {
							return f.refuse(cmd, usageError{fmt.Errorf("--spec %s: machines %s and %s both take the disk %s", cf.specFile, o, p.Spec.Name, d.File)}, nil)
						}
						owner[d.File] = p.Spec.Name
					}
				}
				if cf.dryRun {
					if f.asJSON {
						if err := writeJSON(out, plans); err != nil {
							return err
						}
					}
					failed := false
					for _, p := range plans {
						if !f.asJSON {
							printPlan(out, p)
							fmt.Fprintln(out)
						}
						failed = failed || vsphere.Failed(p.Checks)
					}
					if failed {
						return codeError{exitRefused, errors.New("create-vm: a readiness check failed")}
					}
					return nil
				}
				// Every machine is checked before the first is made.
				for _, p := range plans {
					if vsphere.Failed(p.Checks) {
						if !f.asJSON {
							printPlan(out, p)
						}
						return f.refuse(cmd, codeError{exitRefused, fmt.Errorf("create-vm %s: %w: each failed check says how to fix it; nothing was changed", p.Spec.Name, vsphere.ErrNotReady)}, p)
					}
				}
				for _, p := range plans {
					if err := f.execute(ctx, cmd, s.Client, p, "run"); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	fl := c.Flags()
	sp := &cf.spec
	fl.StringVar(&sp.Name, "name", "", "the failback VM's display name, at most 80 characters, no / (default: --source-hostname)")
	fl.StringVar(&sp.SourceHostname, "source-hostname", "", "the protected machine's hostname")
	fl.StringVar(&sp.Host, "host", "", "ESXi host (default: the master target's, or DRS's pick with --cluster)")
	fl.StringVar(&sp.Cluster, "cluster", "", "cluster whose root resource pool gets the VM")
	fl.StringVar(&sp.Pool, "pool", "", "resource pool (inventory path) that gets the VM")
	fl.StringVar(&sp.Datastore, "datastore", "", "datastore of the VM's files (default: the first disk's)")
	fl.StringVar(&sp.Folder, "folder", "", "inventory folder (default: the datacenter's VM folder)")
	fl.Int32Var(&sp.CPUs, "cpus", 2, "virtual CPUs")
	fl.Int32Var(&sp.CoresPerSocket, "cores-per-socket", 0, "cores per socket (must divide --cpus; default one socket per CPU)")
	fl.Int64Var(&sp.MemoryMB, "memory-mb", 2048, "memory in MB (at least 512, a multiple of 4)")
	fl.StringVar(&sp.GuestID, "guest-id", "", "vSphere guest OS id (default otherLinux64Guest)")
	fl.StringVar(&sp.Firmware, "firmware", "bios", "bios or efi")
	fl.BoolVar(&sp.SecureBoot, "secure-boot", false, "EFI secure boot (with --firmware efi)")
	fl.IntVar(&sp.HWVersion, "hw-version", 0, "virtual hardware version, 7 to 22 (default: the host's)")
	fl.StringArrayVar(&sp.Controllers, "controller", nil, "SCSI controller type per bus, in order: lsilogic, lsilogic-sas, pvscsi (default: lsilogic, one per 15 disks)")
	fl.StringArrayVar(&cf.nics, "nic", nil, "network=NAME[,adapter=vmxnet3|e1000e|e1000][,mac=MAC][,connected=true|false] per NIC, in order (or NETWORK[:ADAPTER])")
	fl.StringArrayVar(&cf.disks, "disk", nil, "a recovered disk on the master target, DISK[@BUS] (repeatable, in the new VM's order)")
	fl.BoolVar(&sp.NoPowerOn, "no-power-on", false, "leave the VM powered off")
	fl.StringVar(&sp.OntoVM, "onto-vm", "", "attach the disks to this existing, powered-off VM instead of creating one")
	fl.StringVar(&sp.Group, "group", "", "protection group: its pairs' targets are the disks (no --disk), its name the VM's (no --name); the agent on --socket is asked")
	fl.StringVar(&cf.specFile, "spec", "", "JSON file of machines to make, instead of the machine flags")
	fl.StringVar(&cf.socket, "socket", api.DefaultSocket, "the replication agent's socket, asked which pairs run")
	fl.BoolVar(&cf.noPairCheck, "no-pair-check", false, "do not ask the agent which pairs run (mounts and holders are still checked)")
	fl.DurationVar(&cf.taskGrace, "task-grace", vsphere.DefaultTaskGrace, "on Ctrl-C, how long to wait for the vSphere task under way before undoing")
	fl.BoolVar(&cf.dryRun, "dry-run", false, "print the plan and change nothing")
	return c
}

// refuse reports err; with --json it also prints a JSON object on
// stdout, so a script reading stdout always gets one.
func (f *vsphereFlags) refuse(cmd *cobra.Command, err error, p *vsphere.Plan) error {
	if err == nil || !f.asJSON {
		return err
	}
	r := jsonRefusal{Error: err.Error(), Exit: exitCode(err), Plan: p}
	if p != nil {
		r.Checks = p.Checks
	}
	if jerr := writeJSON(cmd.OutOrStdout(), r); jerr != nil {
		return jerr
	}
	return err
}

// execute runs, resumes or undoes a plan, printing each step's change.
func (f *vsphereFlags) execute(ctx context.Context, cmd *cobra.Command, cl *vsphere.Client, p *vsphere.Plan, how string) error {
	out, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if !f.asJSON {
		if how == "run" {
			printPlan(out, p)
		}
		fmt.Fprintf(out, "\nPlan file: %s\n", orNone(p.File, "(none)"))
	}
	progress := func(st vsphere.Step) {
		if !f.asJSON {
			fmt.Fprintf(out, "%-11s %s\n", st.Status, st.Title)
		}
	}
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-finished:
			return
		case <-ctx.Done():
		}
		if how != "undo" {
			fmt.Fprintf(stderr, "Interrupted: waiting for the vSphere task under way, then undoing every step (plan file %s). Kill -9 to stop at once; then run `mtconsole vsphere failback undo %s`.\n",
				orNone(p.File, "(none)"), orNone(p.File, "PLAN"))
		}
	}()
	var err error
	switch how {
	case "run":
		err = cl.Execute(ctx, p, progress)
	case "resume":
		err = cl.Resume(ctx, p, progress)
	case "undo":
		err = cl.Undo(ctx, p, progress)
	}
	if f.asJSON {
		if err != nil {
			return f.refuse(cmd, vsphereErr(err), p)
		}
		return writeJSON(out, p)
	}
	if err != nil {
		return vsphereErr(err)
	}
	switch {
	case how == "undo":
		fmt.Fprintf(out, "\nUndone: the disks are back on %s, the failback VM %s is gone.\n", p.MT, p.Spec.Name)
	case p.Spec.OntoVM != "" && p.Spec.NoPowerOn:
		fmt.Fprintf(out, "\n%d disk(s) attached to %s, left powered off.\n", len(p.Disks), p.Spec.Name)
	case p.Spec.OntoVM != "":
		fmt.Fprintf(out, "\n%d disk(s) attached to %s, powered on.\n", len(p.Disks), p.Spec.Name)
	case p.Spec.NoPowerOn:
		fmt.Fprintf(out, "\nFailback VM %s created with %d disk(s), left powered off.\n", p.Spec.Name, len(p.Disks))
	default:
		fmt.Fprintf(out, "\nFailback VM %s created with %d disk(s) and powered on.\n", p.Spec.Name, len(p.Disks))
	}
	return nil
}

func newVSphereFailbackCmd(f *vsphereFlags) *cobra.Command {
	c := &cobra.Command{
		Use:   "failback",
		Short: "Finish, undo or list the failback runs recorded in plan files",
	}
	var grace time.Duration
	for _, how := range []string{"resume", "undo"} {
		short := "Finish a failback run that was killed, from its plan file"
		if how == "undo" {
			short = "Reverse a failback run from its plan file: the new VM destroyed (its disks kept), the disks back on the master target"
		}
		sub := &cobra.Command{
			Use:   how + " PLAN",
			Short: short,
			Args:  usageArgs(cobra.ExactArgs(1)),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := vsphere.LoadPlan(args[0])
				if err != nil {
					return f.refuse(cmd, usageError{err}, nil)
				}
				return f.with(cmd, func(ctx context.Context, s *vsphere.Target) error {
					s.Client.TaskGrace = grace
					return f.execute(ctx, cmd, s.Client, p, how)
				})
			},
		}
		sub.Flags().DurationVar(&grace, "task-grace", vsphere.DefaultTaskGrace, "how long to wait for a vSphere task under way")
		c.AddCommand(sub)
	}
	c.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the plan files under --plan-dir that are neither done nor undone",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			plans, err := vsphere.ListPlans(f.planDir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.asJSON {
				if plans == nil {
					plans = []*vsphere.Plan{}
				}
				return writeJSON(out, plans)
			}
			if len(plans) == 0 {
				fmt.Fprintf(out, "No unfinished failback run in %s.\n", f.planDir)
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PLAN FILE\tVM\tSTATUS\tSTEP")
			for _, p := range plans {
				step := ""
				for _, s := range p.Steps {
					if s.Status != vsphere.StepDone && s.Status != vsphere.StepPlanned {
						step = s.Kind + " " + s.Status
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.File, p.Spec.Name, p.Status, orNone(step, "-"))
			}
			return tw.Flush()
		},
	})
	return c
}

func printPlan(out io.Writer, p *vsphere.Plan) {
	fmt.Fprintf(out, "Failback VM %s from %d disk(s) on %s\n", p.Spec.Name, len(p.Disks), p.MT)
	if len(p.Spec.Defaults) > 0 {
		fmt.Fprintln(out, "\nDefaults from the source (flags override them):")
		for _, d := range p.Spec.Defaults {
			fmt.Fprintf(out, "  %s\n", d)
		}
	}
	if len(p.Checks) > 0 {
		fmt.Fprintln(out, "\nChecks:")
		printChecks(out, failback.Checks(p.Checks))
	}
	fmt.Fprintln(out, "\nSteps:")
	fmt.Fprint(out, failback.PlanSteps(p))
}
