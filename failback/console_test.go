package failback

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/disks/vsphere/vspheresim"
	"github.com/mtconsole/mtconsole/setup"
)

func writeConf(t *testing.T, text string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vsphere.conf")
	if err := os.WriteFile(p, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

func TestLoad(t *testing.T) {
	// No file, no flags: no vSphere.
	c := Settings{Path: filepath.Join(t.TempDir(), "none")}
	if vs, err := Load(c); vs != nil || err != nil {
		t.Fatalf("no file: %v %v", vs, err)
	}
	ok := "# the console's vSphere\nurl = vc.example\nuser = mt@vsphere.local\npassword_file = /etc/mtconsole/vsphere.pw\n" +
		"thumbprint = " + strings.Repeat("AB:", 31) + "AB\n"
	for _, tc := range []struct{ name, text, want string }{
		{"loose mode", ok, "chmod 600"},
		{"password", ok + "password = x\n", "no password here"},
		{"unknown key", ok + "insecure = true\n", "unknown key"},
		{"missing", "url = vc.example\n", "no user, password_file, thumbprint"},
		{"bad line", ok + "thumbprint\n", `vsphere.conf:6: want key = "value"`},
		{"url with user", strings.Replace(ok, "vc.example", "https://u:p@vc.example", 1), "no user or password in the URL"},
	} {
		mode := os.FileMode(0o600)
		if tc.name == "loose mode" {
			mode = 0o644
		}
		c := Settings{Path: writeConf(t, tc.text, mode)}
		if _, err := Load(c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	c = Settings{Path: writeConf(t, ok, 0o600), User: "other"}
	vs, err := Load(c)
	if err != nil || vs.cfg.URL != "vc.example" || vs.cfg.User != "other" || vs.cfg.Password != "" || vs.cfg.SessionDir == "" {
		t.Fatalf("%v %+v", err, vs)
	}
	// Flags alone.
	c = Settings{Path: filepath.Join(t.TempDir(), "none"), URL: "vc.example", User: "u", PasswordFile: "/pw", Thumbprint: "AA"}
	if vs, err := Load(c); err != nil || vs == nil {
		t.Fatalf("flags: %v", err)
	}
}

// TestConsoleCreate: the console's hook against the simulator plans
// (nothing changed) and creates the failback VM, as create-vm does.
func TestConsoleCreate(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	ctx := context.Background()
	s, err := vspheresim.Start(ctx, "", "admin", "console-Secret-pw-9")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	dir := t.TempDir()
	uuidFile, devRoot, pwFile := filepath.Join(dir, "product_uuid"), filepath.Join(dir, "root"), filepath.Join(dir, "pw")
	os.WriteFile(uuidFile, []byte(strings.ToUpper(s.GuestUUID)+"\n"), 0o400)
	os.WriteFile(pwFile, []byte(s.Password+"\n"), 0o600)
	if err := s.WriteDevRoot(devRoot); err != nil {
		t.Fatal(err)
	}
	conf := writeConf(t, "url = "+s.URL+"\nuser = admin\npassword_file = "+pwFile+"\nthumbprint = "+s.Thumbprint+"\n", 0o600)
	planDir := filepath.Join(dir, "plans")
	vs, err := Load(Settings{Path: conf, UUIDFile: uuidFile, DevRoot: devRoot, PlanDir: planDir, AgentSocket: filepath.Join(dir, "none.sock")})
	if err != nil || vs == nil {
		t.Fatal(err)
	}
	cl, err := vsphere.Connect(ctx, vsphere.Config{URL: s.URL, User: s.User, Password: s.Password, Thumbprint: s.Thumbprint})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Logout(ctx)
	vm := func(name string) *vsphere.VM {
		t.Helper()
		tg, err := cl.OpenTarget(ctx, name, uuidFile, devRoot)
		if err != nil {
			t.Fatal(err)
		}
		return tg.VM
	}
	disks := []string{"/dev/sdb", "/dev/sdc"}
	text, checks, err := vs.Plan(ctx, disks, DefaultForm("src01", len(disks)))
	if err != nil || !strings.Contains(text, "create VM src01") || !strings.Contains(text, "undo:") || setup.Count(checks)[setup.Fail] > 0 || len(checks) == 0 {
		t.Fatalf("plan: %v %v\n%s", err, checks, text)
	}
	if mt := vm(""); len(mt.Disks) != 3 || mt.Disks[2].Device != "/dev/sdc" {
		t.Fatalf("the dry run changed the master target: %+v", mt.Disks)
	}
	var lines []string
	report, err := vs.Create(ctx, disks, DefaultForm("src01", len(disks)), func(s string) { lines = append(lines, s) })
	if err != nil || !strings.Contains(report, "powered on") || len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "done") {
		t.Fatalf("create: %v %q %q", err, report, lines)
	}
	made := vm("src01")
	var files []string
	for _, d := range made.Disks {
		files = append(files, d.File)
	}
	if made.PowerState != "poweredOn" || !slices.Contains(files, s.RecoveredFiles[1]) {
		t.Fatalf("made %s with %q", made.PowerState, files)
	}
	// Again: refused, nothing changed.
	if _, err := vs.Create(ctx, disks, DefaultForm("src01", len(disks)), func(string) {}); err == nil {
		t.Fatal("created twice")
	}
	// The run's plan file is done: nothing unfinished; undo from it.
	if left, err := vs.Unfinished(); err != nil || len(left) != 0 {
		t.Fatalf("unfinished %v %v", left, err)
	}
	files2, _ := filepath.Glob(filepath.Join(planDir, "src01-*.json"))
	var done string
	for _, f := range files2 {
		if p, err := vsphere.LoadPlan(f); err == nil && p.Status == vsphere.PlanDone {
			done = f
		}
	}
	if done == "" {
		t.Fatalf("no done plan among %v", files2)
	}
	report, err = vs.Undo(ctx, done, func(string) {})
	if err != nil || !strings.Contains(report, "Undone") {
		t.Fatalf("undo: %v %q", err, report)
	}
	if mt := vm(""); len(mt.Disks) != 3 {
		t.Fatalf("the disks are not back: %+v", mt.Disks)
	}

	// The form: EFI, PVSCSI, a NIC with its MAC, left off.
	f := DefaultForm("web01", len(disks))
	if f.Controller != "lsilogic" || f.CPUs != 2 || DefaultForm("x", 16).Controller != "pvscsi" {
		t.Fatalf("default form %+v", f)
	}
	f.Firmware, f.SecureBoot, f.Controller, f.NoPowerOn = "efi", true, "pvscsi", true
	f.NICs = []vsphere.NIC{{Network: vspheresim.Network, Adapter: "e1000e", MAC: "00:50:56:11:22:33"}}
	report, err = vs.CreateForm(ctx, disks, f, func(string) {})
	if err != nil || !strings.Contains(report, "left powered off") {
		t.Fatalf("form: %v %q", err, report)
	}
	web := vm("web01")
	if web.PowerState != "poweredOff" || len(web.Controllers) != 1 || web.Controllers[0].Type != "pvscsi" || len(web.Disks) != 2 {
		t.Fatalf("web01: %s %+v %d disks", web.PowerState, web.Controllers, len(web.Disks))
	}
	// A bad form is refused before vSphere, naming the field.
	f.Name, f.MemoryMB = "web02", 100
	if _, err := vs.CreateForm(ctx, disks, f, func(string) {}); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Fatalf("bad form: %v", err)
	}
}

// TestChecksKeepEveryField: disks/vsphere has its own Check (it
// imports nothing above disks); shown with the setup checks, every field
// and JSON name carries over.
func TestChecksKeepEveryField(t *testing.T) {
	vt, st := reflect.TypeFor[vsphere.Check](), reflect.TypeFor[setup.Check]()
	// setup.Check's own fields, which no vSphere check has: the target
	// disks' verdicts of disks.targets.
	own := map[string]bool{"Targets": true}
	for i := range st.NumField() {
		if f := st.Field(i); !own[f.Name] {
			if _, ok := vt.FieldByName(f.Name); !ok {
				t.Errorf("setup.Check has %s, vsphere.Check does not: add it, or name it setup's own here", f.Name)
			}
		}
	}
	in := vsphere.Check{}
	v := reflect.ValueOf(&in).Elem()
	for i := range vt.NumField() {
		f := vt.Field(i)
		if g, ok := st.FieldByName(f.Name); !ok || g.Tag != f.Tag {
			t.Errorf("field %s %q: setup.Check has %v %q", f.Name, f.Tag, ok, g.Tag)
		}
		v.Field(i).SetString("v-" + f.Name)
	}
	out := Checks([]vsphere.Check{in})[0]
	o := reflect.ValueOf(out)
	for i := range vt.NumField() {
		if got := o.FieldByName(vt.Field(i).Name).String(); got != "v-"+vt.Field(i).Name {
			t.Errorf("%s: %q", vt.Field(i).Name, got)
		}
	}
	if setup.Status(vsphere.Fail) != setup.Fail || setup.Status(vsphere.Warn) != setup.Warn || setup.Status(vsphere.Pass) != setup.Pass || setup.Status(vsphere.Skip) != setup.Skip {
		t.Error("status words differ")
	}
}

// The form is prefilled from the recovered disks' partition tables: a
// Windows UEFI source gets efi, a Windows guest id and LSI Logic SAS,
// each with where it came from; disks that say nothing get the plain
// defaults.
func TestSourceForm(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dev"), 0o755)
	for _, d := range []string{"sdb", "sdc"} {
		if err := os.WriteFile(filepath.Join(root, "dev", d), make([]byte, 64<<10), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c := &Console{devRoot: root}
	disks := []string{"/dev/sdb", "/dev/sdc"}
	if f, notes := c.SourceForm("web01", disks); !reflect.DeepEqual(f, DefaultForm("web01", 2)) || len(notes) != 0 {
		t.Fatalf("disks without a partition table: %+v %q", f, notes)
	}
	if err := vspheresim.WriteGPT(filepath.Join(root, "dev", "sdb"), vspheresim.GPTESP, vspheresim.GPTMSR, vspheresim.GPTBasicData); err != nil {
		t.Fatal(err)
	}
	f, notes := c.SourceForm("web01", disks)
	want := DefaultForm("web01", 2)
	want.Firmware, want.GuestID, want.Controller = "efi", "windows9Server64Guest", "lsilogic-sas"
	if !reflect.DeepEqual(f, want) || len(notes) != 3 || !strings.Contains(notes[0], "firmware efi: /dev/sdb has an EFI system partition (GPT)") {
		t.Fatalf("a Windows UEFI source: %+v %q", f, notes)
	}
	if err := f.Check(2, ""); err != nil {
		t.Fatalf("the prefilled form does not check: %v", err)
	}
	if err := vspheresim.WriteMBR(filepath.Join(root, "dev", "sdb"), true, 0x83, 0x82); err != nil {
		t.Fatal(err)
	}
	f, _ = c.SourceForm("web01", disks)
	if f.Firmware != "bios" || f.GuestID != "otherLinux64Guest" || f.Controller != "lsilogic" {
		t.Fatalf("a Linux BIOS source: %+v", f)
	}
}
