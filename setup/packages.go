package setup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// PackageManager is the host's package manager.
type PackageManager interface {
	// Name is "dpkg", "rpm", or a test's name.
	Name() string
	// Family names the package set: "debian" or "rhel".
	Family() string
	// Installed reports whether a package is installed, and its version.
	Installed(ctx context.Context, pkg string) (version string, ok bool, err error)
	// Install installs packages, calling line for each line of output as
	// it comes; it stops when ctx ends. The error names the exit status.
	Install(ctx context.Context, pkgs []string, line func(string)) error
	// InstallCommand is the command Install runs, to show an admin.
	InstallCommand(pkgs []string) string
}

// MasterTargetPackages is the master target's package set: the seed's
// list and what the newer original required.
func MasterTargetPackages(family string) []string {
	mp := "multipath-tools"
	if family == "rhel" || family == "suse" {
		mp = "device-mapper-multipath"
	}
	return []string{"xfsprogs", "perl", "lsscsi", "rsync", "wget", "kexec-tools", "lvm2", mp, "kpartx"}
}

// ProcessServerPackages is the process server's smaller set.
func ProcessServerPackages(family string) []string {
	return []string{"lsscsi", "rsync"}
}

// DetectPackageManager picks dpkg or rpm from the OS family, then from
// which tool exists. A root other than "/" is a tree, not a host: it gets
// the host's own package manager only when the tree says the same family.
func DetectPackageManager(root string) PackageManager {
	o, _ := ReadOSRelease(root)
	switch o.Family() {
	case "debian":
		return Dpkg{}
	case "rhel", "suse":
		return RPM{}
	}
	if _, err := exec.LookPath("dpkg-query"); err == nil {
		return Dpkg{}
	}
	return RPM{}
}

// Dpkg queries dpkg and installs with apt-get.
type Dpkg struct{}

func (Dpkg) Name() string   { return "dpkg" }
func (Dpkg) Family() string { return "debian" }

func (Dpkg) Installed(ctx context.Context, pkg string) (string, bool, error) {
	out, err := toolOutput(ctx, "dpkg-query", "-W", "-f=${Status}\t${Version}\n", pkg)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return "", false, nil // "no packages found matching"
		}
		return "", false, err
	}
	for _, l := range strings.Split(out, "\n") {
		st, ver, _ := strings.Cut(l, "\t")
		if strings.HasSuffix(st, " installed") {
			return ver, true, nil
		}
	}
	return "", false, nil // known but removed (config-files) or half-installed
}

func (Dpkg) InstallCommand(pkgs []string) string {
	return "DEBIAN_FRONTEND=noninteractive apt-get install -y " + strings.Join(pkgs, " ")
}

func (Dpkg) Install(ctx context.Context, pkgs []string, line func(string)) error {
	return RunStreaming(ctx, append([]string{"apt-get", "install", "-y"}, pkgs...), []string{"DEBIAN_FRONTEND=noninteractive"}, line)
}

// RPM queries rpm and installs with dnf, or yum where there is no dnf.
type RPM struct{}

func (RPM) Name() string   { return "rpm" }
func (RPM) Family() string { return "rhel" }

func (RPM) Installed(ctx context.Context, pkg string) (string, bool, error) {
	out, err := toolOutput(ctx, "rpm", "-q", "--qf", "%{VERSION}-%{RELEASE}\n", pkg)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 1 {
			return "", false, nil // "package X is not installed"
		}
		return "", false, err
	}
	return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0]), true, nil
}

func (RPM) installer() string {
	if _, err := exec.LookPath("dnf"); err == nil {
		return "dnf"
	}
	return "yum"
}

func (r RPM) InstallCommand(pkgs []string) string {
	return r.installer() + " install -y " + strings.Join(pkgs, " ")
}

func (r RPM) Install(ctx context.Context, pkgs []string, line func(string)) error {
	return RunStreaming(ctx, append([]string{r.installer(), "install", "-y"}, pkgs...), nil, line)
}

// toolOutput runs a query tool in the C locale.
func toolOutput(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return string(out), err
	}
	return string(out), nil
}

// RunStreaming runs argv with stdout and stderr merged, calling line for
// each line as it comes. When ctx ends the command gets SIGTERM, then
// SIGKILL 10 s later, in its whole process group (an interrupted apt-get
// may want `dpkg --configure -a` afterwards); the error says it was
// cancelled. A non-zero
// exit is an error naming the command and its exit status.
func RunStreaming(ctx context.Context, argv, env []string, line func(string)) error {
	if len(argv) == 0 {
		return errors.New("no command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), "LC_ALL=C"), env...)
	// Its own process group, so cancelling stops the installer's children
	// (dpkg, scripts) too and none keeps the output pipe open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", filepath.Base(argv[0]), err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by RunStreaming: ends when the pipe closes below
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if line != nil {
				line(sc.Text())
			}
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	wg.Wait()
	name := strings.Join(argv, " ")
	if ctx.Err() != nil {
		return fmt.Errorf("%s: cancelled: %w", name, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("%s: exit status %d", name, ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// MissingPackages lists the role's packages the host lacks.
func MissingPackages(ctx context.Context, pm PackageManager, role Role) ([]string, error) {
	var missing []string
	for _, p := range rolePackages(pm, role) {
		_, ok, err := pm.Installed(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("%s: query %s: %w", pm.Name(), p, err)
		}
		if !ok {
			missing = append(missing, p)
		}
	}
	return missing, nil
}

func rolePackages(pm PackageManager, role Role) []string {
	if role == RolePS {
		return ProcessServerPackages(pm.Family())
	}
	return MasterTargetPackages(pm.Family())
}

func packageChecks(ctx context.Context, e *Env) []Check {
	var out []Check
	for _, p := range rolePackages(e.PM, e.Role) {
		c := Check{ID: "packages." + p, Title: "Package " + p}
		ver, ok, err := e.PM.Installed(ctx, p)
		switch {
		case err != nil:
			c.Status, c.Detail, c.Fix = Skip, fmt.Sprintf("%s could not say: %v", e.PM.Name(), err), "check the package manager works: "+e.PM.InstallCommand([]string{p})
		case ok:
			c.Status, c.Detail = Pass, ver
		default:
			c.Status, c.Detail, c.Fix = Fail, "not installed", e.PM.InstallCommand([]string{p})+" (or: prerequisites.install_packages: true in the install's answers)"
		}
		out = append(out, c)
	}
	if e.Role == RoleMT {
		for _, m := range []string{"xfs", "reiserfs"} {
			c := Check{ID: "packages.module-" + m, Title: "Kernel module " + m}
			if err := e.modinfo(ctx, m); err != nil {
				c.Status, c.Detail = Warn, err.Error()
				c.Fix = fmt.Sprintf("needed only to recover sources whose file systems are %s: install the kernel's extra modules (linux-modules-extra-$(uname -r) on Ubuntu, kmod-%s on RHEL)", m, m)
			} else {
				c.Status, c.Detail = Pass, "available"
			}
			out = append(out, c)
		}
	}
	return out
}

// modinfo says whether the running kernel has a module: modinfo when it
// is installed, else the module lists of /lib/modules/<release>.
func (e *Env) modinfo(ctx context.Context, m string) error {
	if e.Modinfo != nil {
		return e.Modinfo(ctx, m)
	}
	if e.Root == "/" {
		for _, p := range []string{"/usr/sbin/modinfo", "/sbin/modinfo"} {
			if _, err := os.Stat(p); err == nil {
				if _, err := toolOutput(ctx, p, "-F", "name", m); err != nil {
					return fmt.Errorf("modinfo %s: module not found", m)
				}
				return nil
			}
		}
	}
	rel := readTrim(e.path("/proc/sys/kernel/osrelease"))
	dir := e.path("/lib/modules/" + rel)
	for _, f := range []string{"modules.builtin", "modules.dep"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			name, _, _ := strings.Cut(l, ":")
			base := filepath.Base(name)
			if base == m+".ko" || strings.HasPrefix(base, m+".ko.") {
				return nil
			}
		}
	}
	if b, err := os.ReadFile(e.path("/proc/filesystems")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 0 && f[len(f)-1] == m {
				return nil // built in or loaded
			}
		}
	}
	return fmt.Errorf("kernel %s has no %s module (not in %s/modules.dep or modules.builtin)", rel, m, "/lib/modules/"+rel)
}

// TreePM asks the host's package manager what is installed but installs
// nothing: a --root tree is not this host, and packages would land on
// the host, outside the tree (as the plan skips systemctl there).
type TreePM struct {
	PackageManager
	Root string
}

// Install installs nothing: it says what the host would run.
func (p TreePM) Install(_ context.Context, pkgs []string, line func(string)) error {
	line("skipped: the root is " + p.Root + ", not this host; on the host this runs: " + p.InstallCommand(pkgs))
	return nil
}
