package failback

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/mtconsole/mtconsole/disks/vsphere"
)

// MaxNICs is how many network adapters the console's form offers.
const MaxNICs = 4

// Form is the failback VM as the console's form edits it: create-vm's
// flags, with one controller type for every bus the disks need.
type Form struct {
	Name           string
	CPUs           int32
	CoresPerSocket int32 // 0: one core per socket
	MemoryMB       int64
	GuestID        string
	Firmware       string // bios or efi
	SecureBoot     bool
	HWVersion      int    // 0: the host's default
	Controller     string // lsilogic, lsilogic-sas or pvscsi, on every bus
	// NICs are the adapters, in order; a NIC's Disconnected is the
	// form's "start connected: no".
	NICs               []vsphere.NIC
	Pool, Folder, Host string // "" for the master target's host and its pool, the datacenter's VM folder
	NoPowerOn          bool
	// OntoVM attaches the disks to this existing, powered-off VM instead
	// of creating one: it keeps its own name, hardware, pool and folder,
	// and the form's NewVM fields are not used.
	OntoVM string
}

// DefaultForm is the form prefilled from what is known of the source:
// its name and how many disks it has (a controller per 15 of them;
// PVSCSI past one controller, where LSI Logic's queue depth would hold
// many disks back). The process server reports neither the source's
// firmware nor its guest family, so those start at bios and
// otherLinux64Guest (Console.SourceForm reads them from the recovered
// disks' partition tables).
func DefaultForm(name string, disks int) Form {
	f := Form{Name: name, CPUs: 2, MemoryMB: 2048, GuestID: "otherLinux64Guest", Firmware: "bios", Controller: "lsilogic"}
	if disks > vsphere.SlotsPerController {
		f.Controller = "pvscsi"
	}
	return f
}

// Spec is the form as create-vm's spec, for these disks.
func (f Form) Spec(disks []string) vsphere.FailbackSpec {
	sp := vsphere.FailbackSpec{Name: f.Name, CPUs: f.CPUs, CoresPerSocket: f.CoresPerSocket, MemoryMB: f.MemoryMB, GuestID: f.GuestID,
		Firmware: f.Firmware, SecureBoot: f.SecureBoot, HWVersion: f.HWVersion, Pool: f.Pool, Folder: f.Folder, Host: f.Host,
		NoPowerOn: f.NoPowerOn, OntoVM: f.OntoVM, Disks: disks}
	if f.OntoVM != "" {
		// The existing VM keeps its own hardware and place.
		sp.Firmware, sp.SecureBoot, sp.HWVersion, sp.Pool, sp.Folder = "", false, 0, "", ""
		return sp
	}
	for range (len(disks) + vsphere.SlotsPerController - 1) / vsphere.SlotsPerController {
		sp.Controllers = append(sp.Controllers, f.Controller)
	}
	sp.NICs = slices.Clone(f.NICs)
	return sp
}

// Field is one field of the form, in the order the console shows them.
type Field struct {
	Key   string // create-vm's flag name; nicN-network, nicN-adapter, nicN-mac, nicN-connected for NIC N
	Label string
	// Choices are a choice field's values, in order; nil for text.
	Choices []string
	// Hint says what the field takes (shown when it is empty or wrong).
	Hint string
	// NewVM fields are the new VM's: an existing VM (OntoVM) keeps its
	// own, and the spec leaves them out.
	NewVM bool
}

var yesNo = []string{"yes", "no"}

// Fields are the form's fields: a NIC's network field per NIC and one
// more (empty, to add a NIC) up to MaxNICs; the adapter, MAC and
// start-connected fields of each NIC that has a network.
func (f Form) Fields() []Field {
	fs := []Field{
		{Key: "name", Label: "VM name", Hint: fmt.Sprintf("at most %d characters, no / \\ or %%", vsphere.MaxNameLen), NewVM: true},
		{Key: "cpus", Label: "CPUs", Hint: "1 to 768", NewVM: true},
		{Key: "cores-per-socket", Label: "Cores per socket", Hint: "empty: one per socket; else it divides the CPUs", NewVM: true},
		{Key: "memory-mb", Label: "Memory MB", Hint: fmt.Sprintf("at least %d, a multiple of 4", vsphere.MinMemoryMB), NewVM: true},
		{Key: "guest-id", Label: "Guest OS id", Hint: "e.g. rhel9_64Guest, windows2019srv_64Guest, otherLinux64Guest", NewVM: true},
		{Key: "firmware", Label: "Firmware", Choices: []string{"bios", "efi"}, NewVM: true},
		{Key: "secure-boot", Label: "Secure boot", Choices: []string{"no", "yes"}, Hint: "EFI only", NewVM: true},
		{Key: "hw-version", Label: "HW version", Hint: "empty: the host's default; else 7 to 22", NewVM: true},
		{Key: "controller", Label: "SCSI controller", Choices: vsphere.SCSITypes, Hint: "on every bus", NewVM: true},
	}
	for i := range min(len(f.NICs)+1, MaxNICs) {
		n := strconv.Itoa(i + 1)
		fs = append(fs, Field{Key: "nic" + n + "-network", Label: "NIC " + n + " network", Hint: "a port group; empty: no NIC " + n, NewVM: true})
		if i < len(f.NICs) {
			fs = append(fs,
				Field{Key: "nic" + n + "-adapter", Label: "NIC " + n + " adapter", Choices: []string{"vmxnet3", "e1000e", "e1000"}, NewVM: true},
				Field{Key: "nic" + n + "-mac", Label: "NIC " + n + " MAC", Hint: "empty: generated; the source's to keep it", NewVM: true},
				Field{Key: "nic" + n + "-connected", Label: "NIC " + n + " connect", Choices: yesNo, Hint: "at power-on", NewVM: true})
		}
	}
	return append(fs,
		Field{Key: "pool", Label: "Resource pool", Hint: "empty: the host's; else an inventory path", NewVM: true},
		Field{Key: "folder", Label: "Folder", Hint: "empty: the datacenter's VM folder", NewVM: true},
		Field{Key: "host", Label: "ESXi host", Hint: "empty: the master target's"},
		Field{Key: "power-on", Label: "Power on", Choices: yesNo},
		Field{Key: "onto-vm", Label: "Onto existing VM", Hint: "empty: create a VM; else a powered-off VM that takes the disks"})
}

// field is the Field of key.
func (f Form) field(key string) (Field, bool) {
	i := slices.IndexFunc(f.Fields(), func(x Field) bool { return x.Key == key })
	if i < 0 {
		return Field{}, false
	}
	return f.Fields()[i], true
}

var nicKey = regexp.MustCompile(`^nic([1-9])-(network|adapter|mac|connected)$`)

// Value is the field as the form shows it.
func (f Form) Value(key string) string {
	if m := nicKey.FindStringSubmatch(key); m != nil {
		i, _ := strconv.Atoi(m[1])
		if i > len(f.NICs) {
			return ""
		}
		n := f.NICs[i-1]
		switch m[2] {
		case "network":
			return n.Network
		case "adapter":
			if n.Adapter == "" {
				return "vmxnet3"
			}
			return n.Adapter
		case "mac":
			return n.MAC
		}
		return yesNoOf(!n.Disconnected)
	}
	switch key {
	case "name":
		return f.Name
	case "cpus":
		return strconv.Itoa(int(f.CPUs))
	case "cores-per-socket":
		if f.CoresPerSocket == 0 {
			return ""
		}
		return strconv.Itoa(int(f.CoresPerSocket))
	case "memory-mb":
		return strconv.FormatInt(f.MemoryMB, 10)
	case "guest-id":
		return f.GuestID
	case "firmware":
		if f.Firmware == "" {
			return "bios"
		}
		return f.Firmware
	case "secure-boot":
		return yesNoOf(f.SecureBoot)
	case "hw-version":
		if f.HWVersion == 0 {
			return ""
		}
		return strconv.Itoa(f.HWVersion)
	case "controller":
		return f.Controller
	case "pool":
		return f.Pool
	case "folder":
		return f.Folder
	case "host":
		return f.Host
	case "power-on":
		return yesNoOf(!f.NoPowerOn)
	case "onto-vm":
		return f.OntoVM
	}
	return ""
}

func yesNoOf(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// FieldError is a field's value the form does not take.
type FieldError struct {
	Key, Label string
	Msg        string // what is wrong and what it takes
}

func (e *FieldError) Error() string { return e.Label + ": " + e.Msg }

// Set reads the field's text into the form. It checks the value's form
// (a number, one of the choices, a MAC); Check judges it against the
// rest of the form. The error is a *FieldError naming the field and
// what it takes.
func (f *Form) Set(key, text string) error {
	fd, ok := f.field(key)
	if !ok {
		return fmt.Errorf("the form has no field %q", key)
	}
	v := strings.TrimSpace(text)
	bad := func(format string, a ...any) error {
		return &FieldError{Key: key, Label: fd.Label, Msg: fmt.Sprintf(format, a...)}
	}
	if fd.Choices != nil && !slices.Contains(fd.Choices, v) {
		return bad("%q: one of %s", v, strings.Join(fd.Choices, ", "))
	}
	num := func(bits int, empty int64) (int64, error) {
		if v == "" && empty >= 0 {
			return empty, nil
		}
		n, err := strconv.ParseInt(v, 10, bits)
		if err != nil {
			return 0, bad("%q is not a whole number: %s", v, fd.Hint)
		}
		return n, nil
	}
	if m := nicKey.FindStringSubmatch(key); m != nil {
		i, _ := strconv.Atoi(m[1])
		if m[2] == "network" {
			switch {
			case v == "" && i <= len(f.NICs):
				f.NICs = slices.Delete(f.NICs, i-1, i)
			case v == "":
			case i > len(f.NICs):
				f.NICs = append(f.NICs, vsphere.NIC{Network: v, Adapter: "vmxnet3"})
			default:
				f.NICs[i-1].Network = v
			}
			return nil
		}
		n := &f.NICs[i-1]
		switch m[2] {
		case "adapter":
			n.Adapter = v
		case "mac":
			n.MAC = v
		case "connected":
			n.Disconnected = v == "no"
		}
		return nil
	}
	switch key {
	case "name":
		if v == "" {
			return bad("empty: give the failback VM a name, %s", fd.Hint)
		}
		f.Name = v
	case "cpus":
		n, err := num(32, -1)
		if err != nil {
			return err
		}
		f.CPUs = int32(n)
	case "cores-per-socket":
		n, err := num(32, 0)
		if err != nil {
			return err
		}
		f.CoresPerSocket = int32(n)
	case "memory-mb":
		n, err := num(64, -1)
		if err != nil {
			return err
		}
		f.MemoryMB = n
	case "guest-id":
		f.GuestID = v
	case "firmware":
		f.Firmware = v
	case "secure-boot":
		f.SecureBoot = v == "yes"
	case "hw-version":
		n, err := num(32, 0)
		if err != nil {
			return err
		}
		f.HWVersion = int(n)
	case "controller":
		f.Controller = v
	case "pool":
		f.Pool = v
	case "folder":
		f.Folder = v
	case "host":
		f.Host = v
	case "power-on":
		f.NoPowerOn = v == "no"
	case "onto-vm":
		f.OntoVM = v
	}
	return nil
}

// Check judges the form for n disks with create-vm's own rules
// (vsphere.FailbackSpec.Validate), field by field in the form's order:
// the first field that the rules refuse, with the fields before it as
// they are, is the *FieldError returned. upto, when not "", stops after
// that field (the console checks a field as it is left).
func (f Form) Check(disks int, upto string) error {
	names := make([]string, disks)
	for i := range names {
		names[i] = fmt.Sprintf("disk%d", i)
	}
	// Start from a form the rules take, and bring the fields over one by
	// one: the first that breaks it is at fault.
	probe := DefaultForm("failback-vm", disks)
	fields := f.Fields()
	for _, fd := range fields {
		if f.OntoVM != "" && fd.NewVM {
			continue
		}
		if err := probe.Set(fd.Key, f.Value(fd.Key)); err != nil {
			return err
		}
		sp := probe.Spec(names)
		if err := sp.Validate(); err != nil {
			return fieldError(f, fd, err)
		}
		if fd.Key == upto {
			break
		}
	}
	return nil
}

var flagRef = regexp.MustCompile(`--([a-z-]+)`)

// fieldError is Validate's error ("--flag: what") as the form's: the
// field named by its label, the other flags it mentions too.
func fieldError(f Form, fd Field, err error) error {
	msg, owner := err.Error(), ""
	if flag, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(flag, "--") && !strings.Contains(flag, " ") {
		msg, owner = rest, flag[2:]
	}
	label := func(s string) string {
		return flagRef.ReplaceAllStringFunc(s, func(s string) string {
			if x, ok := f.field(s[2:]); ok {
				return x.Label
			}
			return s
		})
	}
	if owner == "disk" {
		// No field's: the disks the rollback recovered.
		return fmt.Errorf("the recovered disks: %s", label(msg))
	}
	if strings.HasPrefix(fd.Key, "nic") {
		// "NIC 2: adapter …": the field is already NIC 2's.
		if _, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(msg, "NIC ") {
			msg = rest
		}
	}
	if x, ok := f.field(owner); ok && owner != fd.Key {
		// A rule of another field, broken by this one.
		msg = x.Label + " " + msg
	}
	return &FieldError{Key: fd.Key, Label: fd.Label, Msg: label(msg)}
}

// AsFieldError is err's *FieldError, if it is one.
func AsFieldError(err error) (*FieldError, bool) {
	var fe *FieldError
	ok := errors.As(err, &fe)
	return fe, ok
}
