package vsphere_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/disks/vsphere/vspheresim"
)

// OpenTarget finds this master target by its BIOS UUID, or a VM by its
// name, and joins its disks with the guest's block devices.
func TestOpenTarget(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	dir := t.TempDir()
	uuid, root := filepath.Join(dir, "product_uuid"), filepath.Join(dir, "root")
	os.WriteFile(uuid, []byte(s.GuestUUID+"\n"), 0o400)
	if err := s.WriteDevRoot(root); err != nil {
		t.Fatal(err)
	}
	mt, err := c.OpenTarget(ctx, "", uuid, root)
	if err != nil {
		t.Fatal(err)
	}
	if mt.Client != c || mt.Obj == nil || mt.VM.Name != vspheresim.MT || len(mt.VM.Disks) != 3 || mt.VM.Disks[2].Device != "/dev/sdc" {
		t.Fatalf("this VM: %+v", mt.VM)
	}
	off, err := c.OpenTarget(ctx, vspheresim.OffVM, filepath.Join(dir, "none"), root)
	if err != nil || off.VM.Name != vspheresim.OffVM {
		t.Fatalf("by name: %v %+v", err, off)
	}
	if _, err := c.OpenTarget(ctx, "no-such-vm", uuid, root); !errors.Is(err, vsphere.ErrVMNotFound) {
		t.Errorf("unknown name: %v, want ErrVMNotFound", err)
	}
	if _, err := c.OpenTarget(ctx, "", filepath.Join(dir, "none"), root); err == nil {
		t.Error("no BIOS UUID file: no error")
	}
	if si := c.Server(); si.Host != c.Host || si.Thumbprint != s.Thumbprint || si.Insecure || si.Reused {
		t.Errorf("server %+v", si)
	}
}

// --vm is an exact name; --vm-glob a pattern that must match one VM.
func TestFindVMExactAndGlob(t *testing.T) {
	s := scene(t)
	c := connect(t, s)
	ctx := context.Background()
	if _, err := c.FindVMByName(ctx, "DC0_H0_VM*"); !errors.Is(err, vsphere.ErrVMNotFound) || !strings.Contains(err.Error(), "--vm-glob") {
		t.Fatalf("a pattern taken as a name: %v", err)
	}
	_, err := c.FindVMGlob(ctx, "DC0_H0_VM*")
	if err == nil || !strings.Contains(err.Error(), "2 VMs match") || !strings.Contains(err.Error(), "/DC0/vm/DC0_H0_VM0, /DC0/vm/DC0_H0_VM1") {
		t.Fatalf("two matches: %v", err)
	}
	vm, err := c.FindVMGlob(ctx, "mt0?")
	if err != nil || vm.InventoryPath != "/DC0/vm/mt01" {
		t.Fatalf("one match: %v %v", vm, err)
	}
	if _, err := c.FindVMGlob(ctx, "nope*"); !errors.Is(err, vsphere.ErrVMNotFound) {
		t.Fatalf("no match: %v", err)
	}
	if _, err := c.FindVMGlob(ctx, "[x"); err == nil || !strings.Contains(err.Error(), "--vm-glob") {
		t.Fatalf("bad pattern: %v", err)
	}
	for _, name := range []string{vspheresim.MT, "/DC0/vm/" + vspheresim.MT} {
		if _, err := c.FindVMByName(ctx, name); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := c.FindVMByName(ctx, "/DC0/host"); !errors.Is(err, vsphere.ErrVMNotFound) {
		t.Fatalf("a folder taken for a VM: %v", err)
	}
}
