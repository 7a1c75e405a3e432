package vsphere_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
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
