package vsphere

import (
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Datastore is a datastore of the master target's datacenter.
type Datastore struct {
	Name          string `json:"name"`
	Type          string `json:"type"`
	URL           string `json:"url"`
	CapacityBytes int64  `json:"capacityBytes"`
	FreeBytes     int64  `json:"freeBytes"`
	Accessible    bool   `json:"accessible"`
	// FromHost: mounted and accessible on the master target's host, so
	// disks there can be attached to it.
	FromHost bool `json:"fromHost"`

	ref types.ManagedObjectReference
}

// Host is an ESXi host of the datacenter.
type Host struct {
	Name        string   `json:"name"`
	State       string   `json:"state"` // connected, disconnected, notResponding
	PowerState  string   `json:"powerState"`
	Maintenance bool     `json:"maintenance"`
	CPUs        int16    `json:"cpus"`
	MemoryMB    int64    `json:"memoryMB"`
	Datastores  []string `json:"datastores"`
	Networks    []string `json:"networks"`
}

// Network is a network or port group of the datacenter.
type Network struct {
	Name       string `json:"name"`
	Type       string `json:"type"` // Network, DistributedVirtualPortgroup, OpaqueNetwork
	Accessible bool   `json:"accessible"`
}

// Inventory is what can be chosen for recovered disks and the failback VM.
type Inventory struct {
	Datacenter string      `json:"datacenter"`
	Datastores []Datastore `json:"datastores"`
	Hosts      []Host      `json:"hosts"`
	Networks   []Network   `json:"networks"`
}

// retrieveAll fetches every object of a kind under root.
func (c *Client) retrieveAll(ctx context.Context, root types.ManagedObjectReference, kind string, props []string, dst any) error {
	m := view.NewManager(c.Vim())
	v, err := m.CreateContainerView(ctx, root, []string{kind}, true)
	if err != nil {
		return vimErr(err)
	}
	defer v.Destroy(context.WithoutCancel(ctx))
	if err := v.Retrieve(ctx, []string{kind}, props, dst); err != nil {
		return vimErr(err)
	}
	return nil
}

// Inventory lists the datastores, hosts and networks of the VM's
// datacenter; Datastore.FromHost tells which the VM's host mounts.
func (c *Client) Inventory(ctx context.Context, vm *VM) (*Inventory, error) {
	inv := &Inventory{Datacenter: vm.Datacenter}
	var dss []mo.Datastore
	if err := c.retrieveAll(ctx, vm.dc, "Datastore", []string{"name", "summary", "host"}, &dss); err != nil {
		return nil, err
	}
	dsName := map[types.ManagedObjectReference]string{}
	for _, ds := range dss {
		d := Datastore{Name: ds.Name, Type: ds.Summary.Type, URL: ds.Summary.Url, CapacityBytes: ds.Summary.Capacity,
			FreeBytes: ds.Summary.FreeSpace, Accessible: ds.Summary.Accessible, ref: ds.Self}
		for _, m := range ds.Host {
			if m.Key == vm.host && m.MountInfo.Accessible != nil && *m.MountInfo.Accessible &&
				(m.MountInfo.Mounted == nil || *m.MountInfo.Mounted) {
				d.FromHost = d.Accessible
			}
		}
		dsName[ds.Self] = ds.Name
		inv.Datastores = append(inv.Datastores, d)
	}
	sort.Slice(inv.Datastores, func(i, j int) bool { return inv.Datastores[i].Name < inv.Datastores[j].Name })

	var nets []mo.Network
	if err := c.retrieveAll(ctx, vm.dc, "Network", []string{"name", "summary"}, &nets); err != nil {
		return nil, err
	}
	netName := map[types.ManagedObjectReference]string{}
	for _, n := range nets {
		acc := true
		if s := n.Summary; s != nil {
			acc = s.GetNetworkSummary().Accessible
		}
		netName[n.Self] = n.Name
		inv.Networks = append(inv.Networks, Network{Name: n.Name, Type: n.Self.Type, Accessible: acc})
	}
	sort.Slice(inv.Networks, func(i, j int) bool { return inv.Networks[i].Name < inv.Networks[j].Name })

	var hosts []mo.HostSystem
	if err := c.retrieveAll(ctx, vm.dc, "HostSystem", []string{"name", "runtime", "summary.hardware", "datastore", "network"}, &hosts); err != nil {
		return nil, err
	}
	for _, h := range hosts {
		host := Host{Name: h.Name, State: string(h.Runtime.ConnectionState), PowerState: string(h.Runtime.PowerState),
			Maintenance: h.Runtime.InMaintenanceMode}
		if hw := h.Summary.Hardware; hw != nil {
			host.CPUs = hw.NumCpuCores
			host.MemoryMB = hw.MemorySize >> 20
		}
		for _, r := range h.Datastore {
			host.Datastores = append(host.Datastores, dsName[r])
		}
		for _, r := range h.Network {
			host.Networks = append(host.Networks, netName[r])
		}
		sort.Strings(host.Datastores)
		sort.Strings(host.Networks)
		inv.Hosts = append(inv.Hosts, host)
	}
	sort.Slice(inv.Hosts, func(i, j int) bool { return inv.Hosts[i].Name < inv.Hosts[j].Name })
	return inv, nil
}

// datastore finds a datastore of the inventory by name.
func (inv *Inventory) datastore(name string) (*Datastore, error) {
	for i := range inv.Datastores {
		if inv.Datastores[i].Name == name {
			return &inv.Datastores[i], nil
		}
	}
	return nil, fmt.Errorf("no datastore %q in datacenter %s", name, inv.Datacenter)
}
