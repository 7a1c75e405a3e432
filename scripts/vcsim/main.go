// Command vcsim is a test helper: it serves govmomi v0.56's vCenter
// simulator (the VPX model, with the master target of package vspheresim)
// over HTTPS on loopback until killed, or, with -check, looks a VM up
// through a govmomi client of its own and prints what it sees.
//
//	vcsim -state DIR -user U -password-file F [-listen 127.0.0.1:0]
//	vcsim -check VM -url URL -thumbprint T -user U -password-file F
//
// Serving, it prints URL=… and THUMBPRINT=… and writes DIR/env (those and
// the scene's names, for `source`), DIR/product_uuid (the master target's
// BIOS UUID as its guest shows it) and DIR/root/dev/disk/by-id.
// Checking, it prints exists=, power=, enableuuid=, cpus=, memorymb=,
// host=, and disk= and nic= lines, one per device.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
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
	if *state == "" {
		fatal(fmt.Errorf("give -state DIR or -check VM"))
	}
	s, err := vspheresim.Start(ctx, *listen, *user, pw)
	if err != nil {
		fatal(err)
	}
	defer s.Close()
	if err := s.WriteDevRoot(filepath.Join(*state, "root")); err != nil {
		fatal(err)
	}
	if err := os.WriteFile(filepath.Join(*state, "product_uuid"), []byte(s.GuestUUID+"\n"), 0o400); err != nil {
		fatal(err)
	}
	env := fmt.Sprintf("URL=%q\nTHUMBPRINT=%q\nMT=%q\nOFFVM=%q\nPVSCSIVM=%q\nDATASTORE=%q\nNETWORK=%q\nRECOVERED1=%q\nRECOVERED2=%q\n",
		s.URL, s.Thumbprint, vspheresim.MT, vspheresim.OffVM, vspheresim.PVSCSIVM, vspheresim.Datastore, vspheresim.Network,
		s.RecoveredFiles[0], s.RecoveredFiles[1])
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

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "vcsim:", err)
	os.Exit(1)
}

// checkVM looks the VM up with a client of its own: soap's thumbprint
// check, its own login, the finder.
func checkVM(ctx context.Context, rawURL, thumb, user, pw, name string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return err
	}
	sc := soap.NewClient(u, false)
	sc.SetThumbprint(u.Host, thumb)
	c, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return err
	}
	sm := session.NewManager(c)
	if err := sm.Login(ctx, url.UserPassword(user, pw)); err != nil {
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
