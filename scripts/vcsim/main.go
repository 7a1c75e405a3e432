// Command vcsim is a test helper: it serves govmomi v0.56's vCenter
// simulator (the VPX model, with the master target of package vspheresim)
// over HTTPS on loopback until killed, or, with -check, looks a VM up
// through a govmomi client of its own and prints what it sees.
//
//	vcsim -state DIR -user U -password-file F [-listen 127.0.0.1:0]
//	      [-extra-disks N] [-task-delay METHOD:MS]... [-fault METHOD:FAULT[:OBJECT]]...
//	vcsim -check VM -url URL -thumbprint T -user U -password-file F
//	vcsim -inventory -url URL -thumbprint T -user U -password-file F [-files F1,F2,...]
//
// Serving, it prints URL=… and THUMBPRINT=… and writes DIR/env (those and
// the scene's names, for `source`; RECOVERED_FILES is a bash array of every
// recovered disk's VMDK), DIR/product_uuid (the master target's BIOS UUID
// as its guest shows it) and DIR/root (dev/disk/by-id, sys/class/block,
// proc/self/mountinfo). The login is checked: only -user with the password
// of -password-file gets in, over HTTPS. -extra-disks gives the master
// target that many more recovered disks (up to 45 more, on buses 1-3).
// -task-delay makes the tasks of a method (the simulator's task names:
// CreateVm, PowerOn, PowerOff, ReconfigVm, Destroy) take MS milliseconds
// more. -fault makes every call of METHOD (the SOAP method, e.g.
// PowerOnVM_Task), on objects named OBJECT when given, fail with FAULT:
// InsufficientResources, InvalidState, ResourceInUse, NoPermission,
// NotAuthenticated, InvalidArgument, ManagedObjectNotFound or Generic.
// Checking, it prints exists=, power=, enableuuid=, cpus=, memorymb=,
// host=, and disk= and nic= lines, one per device. -inventory prints every
// VM, one line each, sorted, and "(files)" with the ones of -files that are
// on the datastore: the line by line comparison of two inventories.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"

	"github.com/mtconsole/mtconsole/disks/vsphere/vspheresim"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on (loopback)")
	state := flag.String("state", "", "directory for env, product_uuid and root/")
	user := flag.String("user", "admin", "the user name the server accepts")
	pwFile := flag.String("password-file", "", "file whose first line is the password")
	check := flag.String("check", "", "print what a VM of this name looks like, and exit")
	rawURL := flag.String("url", "", "with -check: the server's URL")
	thumb := flag.String("thumbprint", "", "with -check: the server's thumbprint")
	extra := flag.Int("extra-disks", 0, "give the master target this many more recovered disks")
	inventory := flag.Bool("inventory", false, "print every VM of the server, one line each, and exit")
	files := flag.String("files", "", "with -inventory: comma-separated VMDK files to look for on the datastore")
	var delays, faults multiFlag
	flag.Var(&delays, "task-delay", "METHOD:MS: the method's tasks take MS milliseconds more (repeatable)")
	flag.Var(&faults, "fault", "METHOD:FAULT[:OBJECT]: calls of METHOD fail with FAULT (repeatable)")
	flag.Parse()
	b, err := os.ReadFile(*pwFile)
	if err != nil {
		fatal(err)
	}
	pw, _, _ := strings.Cut(string(b), "\n")
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if *check != "" {
		if err := checkVM(ctx, *rawURL, *thumb, *user, pw, *check); err != nil {
			fatal(err)
		}
		return
	}
	if *inventory {
		var fl []string
		if *files != "" {
			fl = strings.Split(*files, ",")
		}
		if err := printInventory(ctx, *rawURL, *thumb, *user, pw, fl); err != nil {
			fatal(err)
		}
		return
	}
	var md map[string]int
	if len(delays) > 0 {
		md = map[string]int{"LockHandoff": 0} // the collector stays readable while a task waits
		for _, d := range delays {
			m, ms, ok := strings.Cut(d, ":")
			n, err := strconv.Atoi(ms)
			if !ok || m == "" || err != nil || n < 0 {
				fatal(fmt.Errorf("-task-delay %q: want METHOD:MS, e.g. CreateVm:5000", d))
			}
			md[m] = n
		}
	}
	var rules []*simulator.FaultInjectionRule
	for _, f := range faults {
		r, err := faultRule(f)
		if err != nil {
			fatal(err)
		}
		rules = append(rules, r)
	}
	if *state == "" {
		fatal(fmt.Errorf("give -state DIR or -check VM"))
	}
	s, err := vspheresim.Start(ctx, *listen, *user, pw)
	if err != nil {
		fatal(err)
	}
	defer s.Close()
	if *extra > 0 {
		if err := s.AddRecovered(ctx, *extra); err != nil {
			fatal(err)
		}
	}
	// Slow tasks and faults once the scene is set up: they are for the
	// client under test.
	for _, r := range rules {
		s.Model.Service.AddFaultRule(r)
	}
	if md != nil {
		simulator.TaskDelay = simulator.DelayConfig{MethodDelay: md}
	}
	if err := s.WriteDevRoot(filepath.Join(*state, "root")); err != nil {
		fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*state, "product_uuid"), []byte(s.GuestUUID+"\n"), 0o400); err != nil {
		fatal(err)
	}
	env := fmt.Sprintf("URL=%q\nTHUMBPRINT=%q\nMT=%q\nOFFVM=%q\nPVSCSIVM=%q\nDATASTORE=%q\nNETWORK=%q\nRECOVERED1=%q\nRECOVERED2=%q\n",
		s.URL, s.Thumbprint, vspheresim.MT, vspheresim.OffVM, vspheresim.PVSCSIVM, vspheresim.Datastore, vspheresim.Network,
		s.RecoveredFiles[0], s.RecoveredFiles[1])
	env += "RECOVERED_FILES=("
	for _, f := range s.RecoveredFiles {
		env += fmt.Sprintf(" %q", f)
	}
	env += " )\n"
	// env last: its presence says the rest is ready.
	tmp := filepath.Join(*state, ".env")
	if err := os.WriteFile(tmp, []byte(env), 0o600); err != nil {
		fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(*state, "env")); err != nil {
		fatal(err)
	}
	fmt.Printf("URL=%s\nTHUMBPRINT=%s\n", s.URL, s.Thumbprint)
	<-ctx.Done()
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

var faultTypes = map[string]simulator.FaultType{
	"Generic":               simulator.FaultTypeGeneric,
	"NotAuthenticated":      simulator.FaultTypeNotAuthenticated,
	"NoPermission":          simulator.FaultTypeNoPermission,
	"InvalidArgument":       simulator.FaultTypeInvalidArgument,
	"ManagedObjectNotFound": simulator.FaultTypeManagedObjectNotFound,
	"InvalidState":          simulator.FaultTypeInvalidState,
	"ResourceInUse":         simulator.FaultTypeResourceInUse,
	"InsufficientResources": simulator.FaultTypeInsufficientResourcesFault,
}

func faultRule(spec string) (*simulator.FaultInjectionRule, error) {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) < 2 || parts[0] == "" {
		return nil, fmt.Errorf("-fault %q: want METHOD:FAULT[:OBJECT], e.g. PowerOnVM_Task:InsufficientResources:src01", spec)
	}
	ft, ok := faultTypes[parts[1]]
	if !ok {
		var names []string
		for n := range faultTypes {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("-fault %q: unknown fault %q (one of %s)", spec, parts[1], strings.Join(names, ", "))
	}
	r := &simulator.FaultInjectionRule{MethodName: parts[0], ObjectType: "*", ObjectName: "*", Probability: 1, FaultType: ft,
		Message: "injected by vcsim -fault " + spec, Enabled: true}
	if len(parts) == 3 && parts[2] != "" {
		r.ObjectName = parts[2]
	}
	return r, nil
}

// login makes a client of its own: soap's thumbprint check, its own login.
func login(ctx context.Context, rawURL, thumb, user, pw string) (*vim25.Client, *session.Manager, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	sc := soap.NewClient(u, false)
	sc.SetThumbprint(u.Host, thumb)
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, nil, err
	}
	sm := session.NewManager(c)
	if err := sm.Login(ctx, url.UserPassword(user, pw)); err != nil {
		return nil, nil, err
	}
	return c, sm, nil
}

func printInventory(ctx context.Context, rawURL, thumb, user, pw string, files []string) error {
	c, sm, err := login(ctx, rawURL, thumb, user, pw)
	if err != nil {
		return err
	}
	defer sm.Logout(ctx)
	inv, err := vspheresim.Inventory(ctx, c, files)
	if err != nil {
		return err
	}
	var names []string
	for n := range inv {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Printf("%s: %s\n", n, inv[n])
	}
	return nil
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "vcsim:", err)
	os.Exit(1)
}

// checkVM looks the VM up with a client of its own: soap's thumbprint
// check, its own login, the finder.
func checkVM(ctx context.Context, rawURL, thumb, user, pw, name string) error {
	c, sm, err := login(ctx, rawURL, thumb, user, pw)
	if err != nil {
		return err
	}
	defer sm.Logout(ctx)
	f := find.NewFinder(c, true)
	dc, err := f.DefaultDatacenter(ctx)
	if err != nil {
		return err
	}
	f.SetDatacenter(dc)
	vm, err := f.VirtualMachine(ctx, name)
	if _, nf := err.(*find.NotFoundError); nf {
		fmt.Println("exists=false")
		return nil
	}
	if err != nil {
		return err
	}
	var m mo.VirtualMachine
	if err := vm.Properties(ctx, vm.Reference(), []string{"config", "runtime"}, &m); err != nil {
		return err
	}
	fmt.Println("exists=true")
	fmt.Println("power=" + m.Runtime.PowerState)
	enable := "unset"
	for _, o := range m.Config.ExtraConfig {
		if ov := o.GetOptionValue(); ov.Key == "disk.EnableUUID" {
			enable = fmt.Sprint(ov.Value)
		}
	}
	fmt.Println("enableuuid=" + enable)
	fmt.Printf("cpus=%d\nmemorymb=%d\n", m.Config.Hardware.NumCPU, m.Config.Hardware.MemoryMB)
	if m.Runtime.Host != nil {
		var h mo.HostSystem
		if err := vm.Properties(ctx, *m.Runtime.Host, []string{"name"}, &h); err == nil {
			fmt.Println("host=" + h.Name)
		}
	}
	devs := object.VirtualDeviceList(m.Config.Hardware.Device)
	for _, d := range devs.SelectByType((*types.VirtualDisk)(nil)) {
		if b, ok := d.GetVirtualDevice().Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
			fmt.Println("disk=" + b.GetVirtualDeviceFileBackingInfo().FileName)
		}
	}
	for _, d := range devs.SelectByType((*types.VirtualEthernetCard)(nil)) {
		// *types.VirtualVmxnet3 → vmxnet3
		fmt.Println("nic=" + strings.ToLower(strings.TrimPrefix(fmt.Sprintf("%T", d), "*types.Virtual")))
	}
	return nil
}
