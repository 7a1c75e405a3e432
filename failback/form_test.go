package failback

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks/vsphere"
)

func keys(fs []Field) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Key)
	}
	return out
}

// TestFormFields: the fields in order, a NIC's fields once it has a
// network, one empty network field to add the next, none past MaxNICs.
func TestFormFields(t *testing.T) {
	f := DefaultForm("web01", 2)
	want := []string{"name", "cpus", "cores-per-socket", "memory-mb", "guest-id", "firmware", "secure-boot", "hw-version", "controller",
		"nic1-network", "pool", "folder", "host", "power-on", "onto-vm"}
	if got := keys(f.Fields()); !slices.Equal(got, want) {
		t.Fatalf("fields %q\nwant %q", got, want)
	}
	if err := f.Set("nic1-network", "VM Network"); err != nil {
		t.Fatal(err)
	}
	got := keys(f.Fields())
	if i := slices.Index(got, "nic1-network"); i < 0 || !slices.Equal(got[i:i+5], []string{"nic1-network", "nic1-adapter", "nic1-mac", "nic1-connected", "nic2-network"}) {
		t.Fatalf("with a NIC: %q", got)
	}
	for i := 2; i <= MaxNICs; i++ {
		if err := f.Set("nic"+string(rune('0'+i))+"-network", "net"); err != nil {
			t.Fatal(err)
		}
	}
	if got := keys(f.Fields()); slices.Contains(got, "nic5-network") || !slices.Contains(got, "nic4-connected") {
		t.Fatalf("past %d NICs: %q", MaxNICs, got)
	}
	// Clearing a network removes its NIC.
	if err := f.Set("nic2-network", ""); err != nil || len(f.NICs) != MaxNICs-1 || f.NICs[1].Network != "net" {
		t.Fatalf("clear NIC 2: %v %+v", err, f.NICs)
	}
	if DefaultForm("x", 15).Controller != "lsilogic" || DefaultForm("x", 16).Controller != "pvscsi" {
		t.Fatal("PVSCSI past 15 disks")
	}
}

// TestFormSetValue: every field reads back as written, and the spec
// carries it.
func TestFormSetValue(t *testing.T) {
	f := DefaultForm("web01", 20)
	in := map[string]string{"name": "web02", "cpus": "8", "cores-per-socket": "4", "memory-mb": "16384", "guest-id": "rhel9_64Guest",
		"firmware": "efi", "secure-boot": "yes", "hw-version": "19", "controller": "lsilogic-sas",
		"nic1-network": "VM Network", "pool": "/DC0/host/DC0_C0/Resources", "folder": "/DC0/vm/failback", "host": "esx-02",
		"power-on": "no", "onto-vm": ""}
	for _, k := range keys(f.Fields()) {
		if err := f.Set(k, in[k]); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	for k, v := range map[string]string{"nic1-adapter": "e1000e", "nic1-mac": "00:50:56:aa:bb:cc", "nic1-connected": "no", "nic2-network": "Backup"} {
		if err := f.Set(k, v); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		in[k] = v
	}
	for k, v := range in {
		if got := f.Value(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	if err := f.Check(20, ""); err != nil {
		t.Fatal(err)
	}
	disks := make([]string, 20)
	sp := f.Spec(disks)
	want := vsphere.FailbackSpec{Name: "web02", CPUs: 8, CoresPerSocket: 4, MemoryMB: 16384, GuestID: "rhel9_64Guest", Firmware: "efi", SecureBoot: true,
		HWVersion: 19, Pool: "/DC0/host/DC0_C0/Resources", Folder: "/DC0/vm/failback", Host: "esx-02", NoPowerOn: true, Disks: disks,
		Controllers: []string{"lsilogic-sas", "lsilogic-sas"},
		NICs:        []vsphere.NIC{{Network: "VM Network", Adapter: "e1000e", MAC: "00:50:56:aa:bb:cc", Disconnected: true}, {Network: "Backup", Adapter: "vmxnet3"}}}
	if !reflect.DeepEqual(sp, want) {
		t.Fatalf("spec %+v\nwant %+v", sp, want)
	}
	// Onto an existing VM: its own hardware; the spec has none.
	if err := f.Set("onto-vm", "web-old"); err != nil {
		t.Fatal(err)
	}
	if err := f.Check(20, ""); err != nil {
		t.Fatalf("onto-vm: %v", err)
	}
	sp = f.Spec(disks)
	if sp.OntoVM != "web-old" || sp.Controllers != nil || sp.NICs != nil || sp.Firmware != "" || sp.SecureBoot || sp.HWVersion != 0 || sp.Pool != "" || sp.Folder != "" || sp.Host != "esx-02" {
		t.Fatalf("onto-vm spec %+v", sp)
	}
	if err := sp.Validate(); err != nil || sp.Name != "web-old" {
		t.Fatalf("onto-vm validate: %v %q", err, sp.Name)
	}
}

// TestFormErrors: a wrong value is refused naming the field and what it
// takes; a rule between fields blames the later one.
func TestFormErrors(t *testing.T) {
	for _, tc := range []struct {
		key, value, want string
		before           map[string]string
	}{
		{key: "name", value: "", want: "VM name: empty"},
		{key: "name", value: "a/b", want: "VM name: \"a/b\" has a /"},
		{key: "name", value: strings.Repeat("n", 81), want: "at most 80"},
		{key: "cpus", value: "two", want: `CPUs: "two" is not a whole number: 1 to 768`},
		{key: "cpus", value: "0", want: "CPUs: 0: at least 1"},
		{key: "cpus", value: "1000", want: "at most 768"},
		{key: "cores-per-socket", value: "3", want: "Cores per socket: 3 does not divide CPUs 2"},
		{key: "memory-mb", value: "100", want: "Memory MB: 100: at least 512"},
		{key: "memory-mb", value: "1026", want: "multiple of 4"},
		{key: "guest-id", value: "linux", want: `Guest OS id: "linux" is no vSphere guest OS id`},
		{key: "firmware", value: "uefi", want: `Firmware: "uefi": one of bios, efi`},
		{key: "secure-boot", value: "yes", want: "Secure boot: needs Firmware efi"},
		{key: "hw-version", value: "5", want: "HW version: 5: give 7 to 22"},
		{key: "hw-version", value: "11", before: map[string]string{"firmware": "efi", "secure-boot": "yes"}, want: "HW version: Secure boot needs HW version 13 or later"},
		{key: "controller", value: "buslogic", want: "SCSI controller: \"buslogic\": one of lsilogic, lsilogic-sas, pvscsi"},
		{key: "nic1-mac", value: "00:50:56:zz", before: map[string]string{"nic1-network": "VM Network"}, want: "NIC 1 MAC: mac \"00:50:56:zz\" is not a MAC address"},
		{key: "nic1-mac", value: "01:00:5e:00:00:01", before: map[string]string{"nic1-network": "VM Network"}, want: "multicast"},
		{key: "power-on", value: "maybe", want: `Power on: "maybe": one of yes, no`},
	} {
		f := DefaultForm("web01", 2)
		for k, v := range tc.before {
			if err := f.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		err := f.Set(tc.key, tc.value)
		if err == nil {
			err = f.Check(2, tc.key)
		}
		fe, ok := AsFieldError(err)
		if !ok || fe.Key != tc.key || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s=%q: %v, want a field error of %s with %q", tc.key, tc.value, err, tc.key, tc.want)
		}
	}
	// Checked up to a field, a later wrong one is not blamed yet; the
	// whole check finds it.
	f := DefaultForm("web01", 2)
	f.MemoryMB = 100
	if err := f.Check(2, "cpus"); err != nil {
		t.Fatalf("up to cpus: %v", err)
	}
	if fe, ok := AsFieldError(f.Check(2, "")); !ok || fe.Key != "memory-mb" {
		t.Fatalf("whole form: %v", f.Check(2, ""))
	}
	// Too many disks is no field's fault: an error all the same.
	if err := DefaultForm("web01", 61).Check(61, ""); err == nil || !strings.Contains(err.Error(), "the recovered disks: 61 disks: at most 60") {
		t.Fatalf("61 disks: %v", err)
	}
}

// TestPendingOf: an unfinished run says where it stopped: the step that
// failed or is under way, else the next one.
func TestPendingOf(t *testing.T) {
	p := &vsphere.Plan{File: "/p/web01-1.json", Status: vsphere.PlanRunning, MT: "mt-lab-01", Spec: vsphere.FailbackSpec{Name: "web01"},
		Disks: make([]vsphere.Disk, 2), Steps: []vsphere.Step{
			{Kind: "detach", Title: "detach 2 disks", Status: vsphere.StepDone},
			{Kind: "create", Title: "create VM web01", Status: vsphere.StepPlanned},
			{Kind: "attach", Title: "attach 2 disks", Status: vsphere.StepPlanned}}}
	want := Pending{File: "/p/web01-1.json", Name: "web01", MT: "mt-lab-01", Status: "running", Disks: 2, Step: "next: create VM web01"}
	if got := PendingOf(p); got != want {
		t.Fatalf("%+v\nwant %+v", got, want)
	}
	p.Steps[1].Status, p.Steps[1].Error = vsphere.StepUndoFailed, "the VM web01 is powered on"
	if got := PendingOf(p).Step; got != "create undo-failed: the VM web01 is powered on" {
		t.Fatalf("step %q", got)
	}
}
