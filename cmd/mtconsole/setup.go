package main

import (
	"bytes"
	"context"
	"errors"
	"github.com/mtconsole/mtconsole/protect/console"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mtconsole/mtconsole/disks"
	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/failback"
	"github.com/mtconsole/mtconsole/setup"
	"github.com/mtconsole/mtconsole/tui"
)

func newSetupCmd() *cobra.Command {
	var role, answersFile, root string
	var dryRun, readOnly bool
	c := &cobra.Command{
		Use:   "setup [--root DIR] [--answers FILE] [--role mt|ps] [--dry-run] [--readonly]",
		Short: "The setup wizard: role, prerequisites, disks, custom changes, registration, vSphere, install",
		Long: `Open the setup wizard on this terminal (at least 80x24): Role →
Prerequisites → Disks → Custom changes → Configuration server → vSphere
(optional) → Summary. Each step shows its checks with their fixes; f
installs missing packages, a applies the custom changes after a review of
every file, and the summary lists every change of the install before it
is applied. Output streams on screen and into ` + tui.SetupLog + `.

--dry-run makes the whole session a dry run (no key turns it off): f, a,
v and the install show what they would run and write ("would run: …",
"would write …") and change nothing, anywhere; no state file or log is
kept, and the host config screen stays closed.

--readonly, or a user other than root (who does not own the --root tree),
gets a wizard that only looks: the keys that change the host or a file
are refused with the reason, the ? help lists them as disabled, and no
state file is kept. A --dry-run is not read-only on its own: it changes
nothing, so anyone may walk it and see what each action would do.

--answers FILE pre-fills every step (the format of mtconsole install
--answers; see scripts/examples/mt.yaml). The step in progress and the
answers are kept in ` + tui.StateFile + ` (0600): after a
dropped SSH session mtconsole setup reopens there.

It needs a terminal: for scripts use "mtconsole install --answers FILE".

Exit codes: 0 ok, 1 failed, 2 usage (bad flags or answers, or stdout is
not a terminal).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := loadAnswers(cmd, answersFile, role)
			if err != nil {
				return err
			}
			if !term.IsTerminal(int(os.Stdout.Fd())) || !term.IsTerminal(int(os.Stdin.Fd())) {
				return usageError{errors.New("setup needs a terminal: for scripts use `mtconsole install --answers FILE`")}
			}
			o, err := setupOptions(root, a, answersFile, dryRun, setupReadOnly(readOnly, dryRun, os.Geteuid(), root))
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return tui.RunSetup(ctx, o)
		},
	}
	c.Flags().StringVar(&role, "role", "mt", "mt (master target) or ps (process server); overrides the answers")
	c.Flags().StringVar(&answersFile, "answers", "", "answers file (YAML, version 1) pre-filling every step")
	c.Flags().StringVar(&root, "root", "/", "set up the tree under DIR (checks, custom changes, install, state file); systemctl is not run")
	c.Flags().BoolVar(&readOnly, "readonly", false, "only look: refuse every key that changes the host or a file")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "a dry run, for the whole session: every action shows what it would do; nothing changes, no state or log is kept")
	return c
}

// setupReadOnly is why the wizard only looks, or "": --readonly, or a
// user other than root who does not own the root (the console's rule: it
// takes changes from root and from the owner of what it changes). A dry
// run changes nothing, anywhere: it is not read-only unless asked.
func setupReadOnly(flag, dryRun bool, euid int, root string) string {
	switch {
	case flag:
		return "--readonly"
	case !dryRun && euid != 0 && !ownsSocket(root, euid):
		return "not root"
	}
	return ""
}

// setupOptions are the wizard's options for a root: a tree without sysfs
// (a temporary root of files) takes the disks of this host, as
// custom-changes does. readOnly is why the wizard only looks, or ""
// (setupReadOnly): it is set here, before the hooks that obey it are made.
func setupOptions(root string, a setup.Answers, answersFile string, dryRun bool, readOnly string) (tui.SetupOptions, error) {
	host, _ := os.Hostname()
	if root != "/" {
		if b, err := os.ReadFile(filepath.Join(root, "etc", "hostname")); err == nil && len(bytes.TrimSpace(b)) > 0 {
			host = string(bytes.TrimSpace(b)) // the tree's host
		}
	}
	o := tui.SetupOptions{Root: root, Answers: a, AnswersFrom: answersFile, Version: version, DryRun: dryRun,
		Host: host, NoColor: os.Getenv("NO_COLOR") != "", ReadOnly: readOnly != "", ReadOnlyReason: readOnly}
	o.Env = setup.Env{Root: root}
	if root != "/" {
		o.Env.PM = setup.TreePM{PackageManager: setup.DetectPackageManager(root), Root: root}
		if _, err := disks.Read(disks.Host{Root: root}); errors.Is(err, disks.ErrNoSysfs) {
			inv, err := disks.Read(disks.Host{Root: "/"})
			if err != nil {
				return o, err
			}
			o.Env.Inventory = inv
		}
	}
	o.Custom = func() (*setup.Custom, error) { return setup.HostCustom(root) }
	// "Protect now" on the summary: the console's Protect screen, on the
	// tree's agent.toml and disks.
	pEnv := o.Env
	o.Protector = &console.Protector{Config: underRootPath(root, "/etc/mtconsole/agent.toml"), Socket: underRootPath(root, api.DefaultSocket), Env: &pEnv}
	// read-only: the readiness checks pin no certificate and cache no
	// session either (decided now: the hook must not read a copy of o
	// that its caller changes afterwards)
	noWrite := dryRun || readOnly != ""
	o.VSphere = func(ctx context.Context, a setup.Answers) ([]setup.Check, error) {
		return vsphereReadiness(ctx, root, a, noWrite)
	}
	return o, nil
}

// vsphereReadiness connects with the answers' vsphere section, pinning
// the server's certificate on first use in the host's config directory,
// and runs the readiness checks for this master target as it is. A dry
// run pins nothing and caches no session: it writes nothing.
func vsphereReadiness(ctx context.Context, root string, a setup.Answers, dryRun bool) ([]setup.Check, error) {
	v := a.VSphere
	if v == nil {
		return nil, errors.New("no vsphere section in the answers")
	}
	f := vsphereFlags{url: v.Address, user: v.User, passwordFile: v.PasswordFile, insecure: v.Insecure,
		uuidFile: vsphere.DefaultUUIDFile, devRoot: root, readOnly: dryRun,
		noSessionCache: root != "/"} // the session cache is in $HOME, outside the tree
	if !v.Insecure {
		f.trustStore = filepath.Join(root, setup.ConfigDir, "vsphere_known_hosts")
	}
	if v.PasswordFile == "" {
		return nil, errors.New("vsphere.password_file: the answers name no password file (the wizard asks for no password)")
	}
	var notes bytes.Buffer
	cmd := &cobra.Command{}
	cmd.SetErr(&notes)
	cmd.SetIn(strings.NewReader(""))
	s, err := f.connect(ctx, cmd)
	if err != nil {
		return nil, err
	}
	defer s.Client.Close(context.Background())
	checks, err := s.Client.Readiness(ctx, s.VM, vsphere.ReadinessSpec{})
	if err != nil {
		return nil, vsphereErr(err)
	}
	conn := setup.Check{ID: "vsphere.connection", Group: vsphere.GroupVSphere, Title: "Connection to " + s.Client.Host, Status: setup.Pass,
		Detail: "VM " + s.VM.Name + " on " + s.VM.Host + ", certificate SHA-256 " + s.Client.Thumbprint}
	if n := strings.TrimSpace(notes.String()); n != "" {
		conn.Detail += "; " + strings.Join(strings.Fields(n), " ")
		if s.Client.Insecure {
			conn.Status, conn.Fix = setup.Warn, "pin the certificate: set vsphere.insecure: false in the answers"
		}
	}
	return append([]setup.Check{conn}, failback.Checks(checks)...), nil
}

// underRootPath is p below root ("/": p itself).
func underRootPath(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, p)
}
