package vsphere

import (
	"context"

	"github.com/vmware/govmomi/object"
)

// Target is the VM a command acts on, found and described through its
// Client.
type Target struct {
	Client *Client
	Obj    *object.VirtualMachine
	VM     *VM // with each disk's block device, where the guest has one
}

// OpenTarget finds the VM to act on: the one named (a name or an
// inventory path), or else this master target's own, by the BIOS UUID
// in uuidFile; it describes it and maps its disks to the block devices
// under devRoot. The caller closes c, also on an error.
func (c *Client) OpenTarget(ctx context.Context, name, uuidFile, devRoot string) (*Target, error) {
	return c.openTarget(ctx, name, "", uuidFile, devRoot)
}

// OpenTargetGlob is OpenTarget for the one VM whose name matches a shell
// pattern; none, or several (listed), is an error.
func (c *Client) OpenTargetGlob(ctx context.Context, pattern, devRoot string) (*Target, error) {
	return c.openTarget(ctx, "", pattern, "", devRoot)
}

func (c *Client) openTarget(ctx context.Context, name, glob, uuidFile, devRoot string) (*Target, error) {
	t := &Target{Client: c}
	var err error
	if glob != "" {
		t.Obj, err = c.FindVMGlob(ctx, glob)
	} else if name != "" {
		t.Obj, err = c.FindVMByName(ctx, name)
	} else {
		var u string
		if u, err = ReadBIOSUUID(uuidFile); err == nil {
			t.Obj, err = c.FindVM(ctx, u)
		}
	}
	if err == nil {
		t.VM, err = c.Describe(ctx, t.Obj)
	}
	if err == nil {
		err = MapDevices(t.VM.Disks, devRoot)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// ServerInfo is what is known of the connection, as --json shows it.
type ServerInfo struct {
	Host       string `json:"host"`
	Thumbprint string `json:"thumbprint"`
	FirstUse   bool   `json:"pinnedNow"`
	Insecure   bool   `json:"insecure"`
	VCenter    bool   `json:"vcenter"`
	Reused     bool   `json:"sessionReused"`
}

// Server is what is known of the connection.
func (c *Client) Server() ServerInfo {
	return ServerInfo{Host: c.Host, Thumbprint: c.Thumbprint, FirstUse: c.FirstUse, Insecure: c.Insecure, VCenter: c.IsVC, Reused: c.Reused}
}
