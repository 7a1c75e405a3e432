package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/disks/vsphere"
	"github.com/mtconsole/mtconsole/disks/vsphere/vspheresim"
)

const vsPass = "cli-Secret-pw-9"

// vsEnv is a simulator with the master target, and the files a user of
// the master target would have: the BIOS UUID, the by-id directory, the
// password file.
type vsEnv struct {
	s                  *vspheresim.Scene
	uuidFile, devRoot  string
	pwFile, trustStore string
	sessionDir         string
	planDir, socket    string
	// cache are the session cache flags of every command.
	cache []string
}

func newVSEnv(t *testing.T) *vsEnv {
	t.Helper()
	s, err := vspheresim.Start(context.Background(), "", "admin", vsPass)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	dir := t.TempDir()
	e := &vsEnv{s: s, uuidFile: filepath.Join(dir, "product_uuid"), devRoot: filepath.Join(dir, "root"),
		pwFile: filepath.Join(dir, "pw"), trustStore: filepath.Join(dir, "thumbprints"), sessionDir: filepath.Join(dir, "sessions"),
		planDir: filepath.Join(dir, "plans"), socket: filepath.Join(dir, "agent.sock")}
	e.cache = []string{"--session-dir", e.sessionDir}
	os.WriteFile(e.uuidFile, []byte(strings.ToUpper(s.GuestUUID)+"\n"), 0o400)
	os.WriteFile(e.pwFile, []byte(vsPass+"\n"), 0o600)
	if err := s.WriteDevRoot(e.devRoot); err != nil {
		t.Fatal(err)
	}
	return e
}

// args are the connection flags, then the command's.
func (e *vsEnv) args(sub string, extra ...string) []string {
	a := []string{"vsphere", sub, "--url", e.s.URL, "--user", "admin", "--password-file", e.pwFile,
		"--thumbprint", e.s.Thumbprint, "--uuid-file", e.uuidFile, "--dev-root", e.devRoot, "--plan-dir", e.planDir}
	a = append(a, e.cache...)
	return append(a, extra...)
}

// vsRun runs and asserts the password shows nowhere.
func vsRun(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	out, errOut, err := run(t, args...)
	for _, s := range []string{out, errOut, errText(err)} {
		if strings.Contains(s, vsPass) {
			t.Fatalf("the password shows in the output of %v", args)
		}
	}
	return out, errOut, err
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func exitOf(err error) int { return exitCode(err) }

func TestVSphereCheck(t *testing.T) {
	e := newVSEnv(t)
	out, _, err := vsRun(t, e.args("check")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"VM mt01", "poweredOn", "host DC0_H0", "disk.EnableUUID: TRUE", "lsilogic", "/dev/sdb", "/dev/sdc", e.s.RecoveredFiles[0]} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	out, _, err = vsRun(t, e.args("check", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Server struct{ Thumbprint string }
		VM     vsphere.VM
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.VM.Name != vspheresim.MT || got.Server.Thumbprint != e.s.Thumbprint || got.VM.Disks[2].Device != "/dev/sdc" {
		t.Fatalf("%+v", got)
	}

	// Another VM, without EnableUUID: the fix is shown.
	out, _, err = vsRun(t, e.args("check", "--vm", vspheresim.OffVM)...)
	if err != nil || !strings.Contains(out, "disk.EnableUUID: not set") || !strings.Contains(out, "enable-uuid --vm") {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestVSphereEnableUUID(t *testing.T) {
	e := newVSEnv(t)
	// The running master target: refused with exit 4 and the fix.
	os.WriteFile(e.uuidFile, nil, 0o600)
	_, _, err := vsRun(t, e.args("enable-uuid", "--vm", "DC0_H0_VM0")...)
	if exitOf(err) != exitRefused || !strings.Contains(err.Error(), "power off") || !strings.Contains(err.Error(), "reboot from inside") {
		t.Fatalf("exit %d: %v", exitOf(err), err)
	}
	out, _, err := vsRun(t, e.args("enable-uuid", "--vm", vspheresim.OffVM)...)
	if err != nil || !strings.Contains(out, "set to TRUE") {
		t.Fatalf("%v\n%s", err, out)
	}
	out, _, err = vsRun(t, e.args("enable-uuid", "--vm", vspheresim.OffVM, "--json")...)
	if err != nil || !strings.Contains(out, `"changed": false`) {
		t.Fatalf("%v\n%s", err, out)
	}
	out, _, _ = vsRun(t, e.args("check", "--vm", vspheresim.OffVM, "--json")...)
	if !strings.Contains(out, `"enableUuid": "TRUE"`) {
		t.Fatalf("%s", out)
	}
}

func TestVSphereDatastores(t *testing.T) {
	e := newVSEnv(t)
	out, _, err := vsRun(t, e.args("datastores")...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"LocalDS_0", "DC0_H0", "DC0_C0_H2", "VM Network", "DC0_DVPG0", "GiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("lacks %q:\n%s", want, out)
		}
	}
	out, _, err = vsRun(t, e.args("datastores", "--json")...)
	if err != nil {
		t.Fatal(err)
	}
	var inv vsphere.Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil || len(inv.Datastores) != 1 || inv.Datastores[0].FreeBytes <= 0 || !inv.Datastores[0].FromHost {
		t.Fatalf("%v %+v", err, inv)
	}
}

func TestVSphereReadiness(t *testing.T) {
	e := newVSEnv(t)
	out, _, err := vsRun(t, e.args("readiness", "--disks", "2", "--need", "LocalDS_0=1G", "--name", "src01", "--vm-datastore", "LocalDS_0")...)
	if err != nil || strings.Contains(out, "FAIL") || !strings.Contains(out, "  ok    Free SCSI slots") {
		t.Fatalf("%v\n%s", err, out)
	}
	out, _, err = vsRun(t, e.args("readiness", "--disks", "13", "--need", "LocalDS_0=900T", "--name", vspheresim.OffVM, "--json")...)
	if exitOf(err) != exitRefused {
		t.Fatalf("exit %d: %v", exitOf(err), err)
	}
	var checks []vsphere.Check
	if err := json.Unmarshal([]byte(out), &checks); err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, c := range checks {
		if c.Status == vsphere.Fail {
			failed[c.ID] = true
		}
	}
	for _, id := range []string{"mt.scsi.slots", "datastore.LocalDS_0.space", "vm.name"} {
		if !failed[id] {
			t.Errorf("%s did not fail: %s", id, out)
		}
	}
	// The model's VM with a paravirtual controller.
	out, _, err = vsRun(t, e.args("readiness", "--vm", vspheresim.PVSCSIVM)...)
	if exitOf(err) != exitRefused || !strings.Contains(out, "FAIL  Master target SCSI controller is LSI Logic") {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, _, err := vsRun(t, e.args("readiness", "--need", "LocalDS_0")...); !isUsage(err) {
		t.Fatalf("bad --need: %v", err)
	}
	if _, _, err := vsRun(t, e.args("readiness", "--need", "LocalDS_0=40X")...); !isUsage(err) || err == nil || !strings.Contains(err.Error(), `size "40X"`) {
		t.Fatalf("bad --need size: %v", err)
	}
}

func TestVSphereCreateVM(t *testing.T) {
	e := newVSEnv(t)
	create := e.args("create-vm", "--socket", e.socket, "--source-hostname", "src01", "--disk", "/dev/sdb", "--disk", "/dev/sdc",
		"--nic", "VM Network", "--cpus", "2", "--memory-mb", "1024")
	out, _, err := vsRun(t, append(create, "--dry-run")...)
	if err != nil || !strings.Contains(out, "create VM src01") || !strings.Contains(out, "undo:") {
		t.Fatalf("%v\n%s", err, out)
	}
	check, _, _ := vsRun(t, e.args("check")...)
	if !strings.Contains(check, "/dev/sdc") {
		t.Fatal("the dry run changed the master target:\n" + check)
	}
	out, _, err = vsRun(t, create...)
	if err != nil || !strings.Contains(out, "powered on") {
		t.Fatalf("%v\n%s", err, out)
	}
	out, _, err = vsRun(t, e.args("check", "--vm", "src01", "--json")...)
	if err != nil || !strings.Contains(out, `"powerState": "poweredOn"`) || !strings.Contains(out, e.s.RecoveredFiles[1]) {
		t.Fatalf("%v\n%s", err, out)
	}
	// Again: the name is taken and the disks are gone.
	if _, _, err := vsRun(t, create...); err == nil {
		t.Fatal("created twice")
	}
	if _, _, err := vsRun(t, e.args("create-vm", "--disk", "/dev/sdb")...); !isUsage(err) {
		t.Fatalf("no name: %v", err)
	}
}

func TestVSphereBadInputs(t *testing.T) {
	e := newVSEnv(t)
	// Each command logs in: a cached session would need no password.
	e.cache = []string{"--no-session-cache"}
	// Wrong password.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("not-"+vsPass), 0o600)
	a := e.args("check")
	for i := range a {
		if a[i] == e.pwFile {
			a[i] = bad
		}
	}
	_, _, err := vsRun(t, a...)
	if !errors.Is(err, vsphere.ErrLogin) || exitOf(err) != exitError || strings.Contains(err.Error(), "not-"+vsPass) {
		t.Fatalf("wrong password: %v", err)
	}
	// Unknown UUID.
	os.WriteFile(e.uuidFile, []byte("00000000-0000-0000-0000-000000000001\n"), 0o400)
	if _, _, err := vsRun(t, e.args("check")...); !errors.Is(err, vsphere.ErrVMNotFound) {
		t.Fatalf("unknown UUID: %v", err)
	}
	// Thumbprint mismatch: exit 5, nothing sent.
	a = e.args("enable-uuid", "--vm", vspheresim.OffVM)
	for i := range a {
		if a[i] == e.s.Thumbprint {
			a[i] = strings.Repeat("0A:", 31) + "0A"
		}
	}
	if _, _, err := vsRun(t, a...); exitOf(err) != exitCert || !strings.Contains(err.Error(), e.s.Thumbprint) {
		t.Fatalf("mismatch: exit %d %v", exitOf(err), err)
	}
	out, _, _ := vsRun(t, e.args("check", "--vm", vspheresim.OffVM)...)
	if !strings.Contains(out, "not set") {
		t.Fatal("a refused connection changed the VM")
	}
	// Unreachable.
	a = e.args("check")
	a[3] = "https://127.0.0.1:1/sdk"
	if _, _, err := vsRun(t, a...); !errors.Is(err, vsphere.ErrUnreachable) || exitOf(err) != exitError {
		t.Fatalf("unreachable: %v", err)
	}
	// Password from stdin and from the environment; none at all.
	root := newRootCmd()
	root.SetArgs(stripPassword(e.args("check", "--vm", vspheresim.OffVM)))
	root.SetIn(strings.NewReader(vsPass + "\n"))
	var o strings.Builder
	root.SetOut(&o)
	root.SetErr(&o)
	if err := root.Execute(); err != nil || strings.Contains(o.String(), vsPass) {
		t.Fatalf("stdin: %v", err)
	}
	t.Setenv("MT_VS_PW", vsPass)
	if _, _, err := vsRun(t, append(stripPassword(e.args("check", "--vm", vspheresim.OffVM)), "--password-env", "MT_VS_PW")...); err != nil {
		t.Fatalf("env: %v", err)
	}
	root = newRootCmd()
	root.SetArgs(stripPassword(e.args("check")))
	root.SetIn(strings.NewReader(""))
	root.SetOut(&o)
	root.SetErr(&o)
	if err := root.Execute(); !isUsage(err) {
		t.Fatalf("no password: %v", err)
	}
	// Insecure: a loud warning.
	a = stripFlag(e.args("check", "--vm", vspheresim.OffVM), "--thumbprint")
	_, errOut, err := vsRun(t, append(a, "--insecure")...)
	if err != nil || !strings.Contains(errOut, "WARNING: --insecure") {
		t.Fatalf("%v\n%s", err, errOut)
	}
	// Trust store: pinned on first use, shown.
	a = append(stripFlag(e.args("check", "--vm", vspheresim.OffVM), "--thumbprint"), "--trust-store", e.trustStore)
	_, errOut, err = vsRun(t, a...)
	if err != nil || !strings.Contains(errOut, "Pinned the certificate") || !strings.Contains(errOut, e.s.Thumbprint) {
		t.Fatalf("%v\n%s", err, errOut)
	}
	_, errOut, err = vsRun(t, a...)
	if err != nil || strings.Contains(errOut, "Pinned") {
		t.Fatalf("second use: %v\n%s", err, errOut)
	}
}

func stripPassword(a []string) []string { return stripFlag(a, "--password-file") }

func stripFlag(a []string, flag string) []string {
	var out []string
	for i := 0; i < len(a); i++ {
		if a[i] == flag {
			i++
			continue
		}
		out = append(out, a[i])
	}
	return out
}

// TestVSphereSessionReuse: the second command reuses the first one's
// session (no login: a wrong password file does not matter), an ended
// session means a new login, and the cache file is 0600 in a 0700
// directory and holds no password.
func TestVSphereSessionReuse(t *testing.T) {
	e := newVSEnv(t)
	server := func(out string) vsphere.ServerInfo {
		t.Helper()
		var v struct {
			Server vsphere.ServerInfo `json:"server"`
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return v.Server
	}
	out, _, err := vsRun(t, e.args("check", "--json")...)
	if err != nil || server(out).Reused {
		t.Fatalf("first: %v\n%s", err, out)
	}
	file, err := vsphere.SessionFile(e.sessionDir, e.s.URL, "admin")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cache file: %v %v", err, fi)
	}
	if di, err := os.Stat(e.sessionDir); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("cache dir: %v %v", err, di)
	}
	first, _ := os.ReadFile(file)
	if strings.Contains(string(first), vsPass) {
		t.Fatal("the cache file holds the password")
	}

	// No login the second time: the password file is wrong now, and the
	// session (the cookie in the file) is the same.
	os.WriteFile(e.pwFile, []byte("not-the-password\n"), 0o600)
	out, _, err = vsRun(t, e.args("check", "--json")...)
	if err != nil || !server(out).Reused {
		t.Fatalf("second: %v\n%s", err, out)
	}
	if second, _ := os.ReadFile(file); string(second) != string(first) {
		t.Fatal("the second command replaced the cached session")
	}

	// The session ends on the server: the next command logs in (with the
	// right password again) and caches the new session.
	var cs struct{ Cookie string }
	json.Unmarshal(first, &cs)
	os.WriteFile(file, []byte(strings.Replace(string(first), cs.Cookie, "expired-"+cs.Cookie, 1)), 0o600)
	if _, _, err := vsRun(t, e.args("check")...); !errors.Is(err, vsphere.ErrLogin) {
		t.Fatalf("an invalid session with a wrong password: %v", err)
	}
	os.WriteFile(e.pwFile, []byte(vsPass+"\n"), 0o600)
	out, _, err = vsRun(t, e.args("check", "--json")...)
	if err != nil || server(out).Reused {
		t.Fatalf("after expiry: %v\n%s", err, out)
	}
	if third, _ := os.ReadFile(file); string(third) == string(first) || len(third) == 0 {
		t.Fatal("the new session was not cached")
	}

	// --no-session-cache: a login each time, the cache untouched.
	before, _ := os.ReadFile(file)
	out, _, err = vsRun(t, append(stripFlag(e.args("check", "--json"), "--session-dir"), "--no-session-cache")...)
	if err != nil || server(out).Reused {
		t.Fatalf("--no-session-cache: %v\n%s", err, out)
	}
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Fatal("--no-session-cache changed the cache")
	}
}

// create-vm with the full spec, a --json refusal, the plan file, and
// undo of the run from its plan file.
func TestVSphereCreateVMSpecAndUndo(t *testing.T) {
	e := newVSEnv(t)
	base := e.args("create-vm", "--socket", e.socket, "--name", "web01", "--disk", "/dev/sdb@0", "--disk", "/dev/sdc@1",
		"--controller", "pvscsi", "--controller", "lsilogic-sas", "--firmware", "efi", "--secure-boot", "--hw-version", "19",
		"--cpus", "2", "--cores-per-socket", "2", "--memory-mb", "1024",
		"--nic", "network=VM Network,adapter=e1000e,mac=00:50:56:0a:0b:0c,connected=false", "--no-power-on")
	// Bad input: named by its flag, exit 2, JSON on stdout with --json.
	for _, bad := range [][]string{{"--firmware", "uefi"}, {"--nic", "network=x,speed=10"}, {"--hw-version", "99"}, {"--cores-per-socket", "3"}} {
		out, _, err := vsRun(t, append(append(slices.Clone(base), bad...), "--json")...)
		var r struct {
			Error string `json:"error"`
			Exit  int    `json:"exit"`
		}
		if !isUsage(err) || json.Unmarshal([]byte(out), &r) != nil || r.Exit != 2 || !strings.Contains(r.Error, bad[0]) {
			t.Errorf("%v: %v, stdout %q", bad, err, out)
		}
	}
	// A refusal by a readiness check: JSON with the checks, exit 4.
	out, _, err := vsRun(t, append(slices.Clone(base), "--memory-mb", "8192", "--json")...)
	if exitOf(err) != exitRefused || !strings.Contains(out, `"vm.capacity"`) || !strings.Contains(out, `"exit": 4`) {
		t.Fatalf("capacity refusal: %v\n%s", err, out)
	}
	out, _, err = vsRun(t, base...)
	if err != nil || !strings.Contains(out, "left powered off") || !strings.Contains(out, "Plan file: "+e.planDir) {
		t.Fatalf("%v\n%s", err, out)
	}
	out, _, err = vsRun(t, e.args("check", "--vm", "web01", "--json")...)
	if err != nil || !strings.Contains(out, `"powerState": "poweredOff"`) || !strings.Contains(out, `"type": "pvscsi"`) ||
		!strings.Contains(out, `"type": "lsilogic-sas"`) || !strings.Contains(out, e.s.RecoveredFiles[1]) {
		t.Fatalf("%v\n%s", err, out)
	}
	plans, _ := filepath.Glob(filepath.Join(e.planDir, "web01-*.json"))
	if len(plans) != 1 {
		t.Fatalf("plan files %v", plans)
	}
	if st, err := os.Stat(plans[0]); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("plan file mode: %v %v", st, err)
	}
	// A done plan is listed by nobody, resumed by nobody; undo reverses it.
	out, _, _ = vsRun(t, "vsphere", "failback", "list", "--plan-dir", e.planDir)
	if !strings.Contains(out, "No unfinished failback run") {
		t.Fatalf("list: %s", out)
	}
	if _, _, err := vsRun(t, e.args("failback", "resume", plans[0])...); err == nil || !strings.Contains(err.Error(), "done already") {
		t.Fatalf("resume of a done plan: %v", err)
	}
	out, _, err = vsRun(t, e.args("failback", "undo", plans[0])...)
	if err != nil || !strings.Contains(out, "Undone") {
		t.Fatalf("undo: %v\n%s", err, out)
	}
	if _, _, err := vsRun(t, e.args("check", "--vm", "web01")...); !errors.Is(err, vsphere.ErrVMNotFound) {
		t.Fatalf("web01 still there: %v", err)
	}
	out, _, _ = vsRun(t, e.args("check")...)
	if !strings.Contains(out, "/dev/sdb") || !strings.Contains(out, "/dev/sdc") {
		t.Fatalf("the disks are not back on the master target:\n%s", out)
	}
	// --vm-glob picks one or refuses the list.
	if _, _, err := vsRun(t, e.args("check", "--vm-glob", "DC0_H0_VM*")...); err == nil || !strings.Contains(err.Error(), "2 VMs match") {
		t.Fatalf("glob: %v", err)
	}
	if _, _, err := vsRun(t, e.args("check", "--vm", "DC0_H0_VM*")...); !errors.Is(err, vsphere.ErrVMNotFound) {
		t.Fatalf("--vm took a pattern: %v", err)
	}
	out, _, err = vsRun(t, e.args("check", "--vm", "nope", "--json")...)
	if !errors.Is(err, vsphere.ErrVMNotFound) || !strings.Contains(out, `"error"`) {
		t.Fatalf("--json refusal: %v %q", err, out)
	}
}

// A --spec file makes several machines; a bad one names the file and machine.
func TestVSphereCreateVMSpecFile(t *testing.T) {
	e := newVSEnv(t)
	dir := t.TempDir()
	spec := filepath.Join(dir, "machines.json")
	// One disk, named two ways, for two machines: refused before any change.
	os.WriteFile(spec, []byte(`{"machines": [{"name": "m4", "memoryMB": 1024, "disks": ["/dev/sdb"]},
  {"name": "m5", "memoryMB": 1024, "disks": ["`+e.s.RecoveredFiles[0]+`"]}]}`), 0o600)
	_, _, err := vsRun(t, e.args("create-vm", "--socket", e.socket, "--spec", spec)...)
	if !isUsage(err) || !strings.Contains(err.Error(), "machines m4 and m5 both take the disk "+e.s.RecoveredFiles[0]) {
		t.Fatalf("a disk for two machines: %v", err)
	}
	os.WriteFile(spec, []byte(`{"machines": [
  {"name": "m1", "cpus": 1, "memoryMB": 1024, "disks": ["/dev/sdb"], "noPowerOn": true},
  {"name": "m2", "memoryMB": 1000, "disks": ["/dev/sdc"], "firmware": "efi"}]}`), 0o600)
	out, _, err := vsRun(t, e.args("create-vm", "--socket", e.socket, "--spec", spec)...)
	if err != nil || !strings.Contains(out, "Failback VM m1 created with 1 disk(s), left powered off") ||
		!strings.Contains(out, "Failback VM m2 created with 1 disk(s) and powered on") {
		t.Fatalf("%v\n%s", err, out)
	}
	os.WriteFile(spec, []byte(`{"machines": [{"name": "m3", "cpus": 3, "coresPerSocket": 2, "memoryMB": 1024, "disks": ["/dev/sdb"]}]}`), 0o600)
	_, _, err = vsRun(t, e.args("create-vm", "--socket", e.socket, "--spec", spec)...)
	if !isUsage(err) || !strings.Contains(err.Error(), "machine 1 (m3): --cores-per-socket") {
		t.Fatalf("bad spec: %v", err)
	}
}

// A disk that is the target of a pair the agent runs, or mounted, is
// refused before any change (exit 4), the check naming it.
func TestVSphereCreateVMDiskInUse(t *testing.T) {
	e := newVSEnv(t)
	fx := newFixture(t)
	sock := runningAgent(t, fx)
	// In the guest's tree, the pair's target is /dev/sdc.
	link := filepath.Join(e.devRoot, fx.target)
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(filepath.Join(e.devRoot, "dev", "sdc"), link); err != nil {
		t.Fatal(err)
	}
	create := e.args("create-vm", "--socket", sock, "--name", "x1", "--disk", "/dev/sdb", "--disk", "/dev/sdc")
	out, _, err := vsRun(t, create...)
	if exitOf(err) != exitRefused || !strings.Contains(out, "/dev/sdc is the target of pair "+fxPair) {
		t.Fatalf("pair target: %v\n%s", err, out)
	}
	// Mounted: /dev/sdb mounted at /mnt/b.
	mi := filepath.Join(e.devRoot, "proc", "self", "mountinfo")
	b, _ := os.ReadFile(mi)
	os.WriteFile(mi, append(b, "40 22 8:16 / /mnt/b rw - xfs /dev/sdb rw\n"...), 0o644)
	out, _, err = vsRun(t, e.args("create-vm", "--socket", e.socket, "--name", "x1", "--disk", "/dev/sdb", "--json")...)
	if exitOf(err) != exitRefused || !strings.Contains(out, `"disks.mounted"`) || !strings.Contains(out, "/dev/sdb on /mnt/b") {
		t.Fatalf("mounted: %v\n%s", err, out)
	}
	check, _, _ := vsRun(t, e.args("check")...)
	if !strings.Contains(check, "/dev/sdb") || !strings.Contains(check, "/dev/sdc") {
		t.Fatal("a refused create-vm changed the master target:\n" + check)
	}
}

// With --group the disks are the group's pairs' targets (the agent is
// asked), the name is the group's, and the firmware, guest id and
// controller come from the disks' partition tables unless flags set
// them; the dry run says where each default came from.
func TestVSphereCreateVMDefaultsFromSource(t *testing.T) {
	e := newVSEnv(t)
	fx := newFixture(t)
	sock := runningAgent(t, fx)
	// In the guest's tree, the pair's target is /dev/sdc: a Windows
	// source's boot disk, GPT with an EFI system partition.
	link := filepath.Join(e.devRoot, fx.target)
	os.MkdirAll(filepath.Dir(link), 0o755)
	if err := os.Symlink(filepath.Join(e.devRoot, "dev", "sdc"), link); err != nil {
		t.Fatal(err)
	}
	if err := vspheresim.WriteGPT(filepath.Join(e.devRoot, "dev", "sdc"), vspheresim.GPTESP, vspheresim.GPTMSR, vspheresim.GPTBasicData); err != nil {
		t.Fatal(err)
	}
	out, _, err := vsRun(t, e.args("create-vm", "--socket", sock, "--group", fxPair, "--dry-run")...)
	// The pair still runs: the readiness check refuses, after the plan.
	if exitOf(err) != exitRefused {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, w := range []string{
		"Failback VM " + fxPair + " from 1 disk(s)",
		"Defaults from the source (flags override them):",
		"disks: protection group " + fxPair + "'s 1 pair target(s), from the agent: " + fxPair + " " + fx.target + " = /dev/sdc",
		"name " + fxPair + ": the protection group's",
		"firmware efi: /dev/sdc has an EFI system partition (GPT)",
		"guest id windows9Server64Guest: a windows source (partitions: /dev/sdc Microsoft reserved)",
		"SCSI lsilogic-sas: a windows source with 1 disk(s)",
		"windows9Server64Guest, efi", "SCSI lsilogic-sas",
		"/dev/sdc is the target of pair " + fxPair,
	} {
		if !strings.Contains(out, w) {
			t.Errorf("the dry run does not say %q:\n%s", w, out)
		}
	}
	// Flags override; --json carries the defaults too.
	out, _, err = vsRun(t, e.args("create-vm", "--socket", sock, "--group", fxPair, "--firmware", "bios", "--guest-id", "rhel9_64Guest",
		"--controller", "pvscsi", "--name", "other", "--dry-run", "--json")...)
	if exitOf(err) != exitRefused {
		t.Fatalf("%v\n%s", err, out)
	}
	var plans []vsphere.Plan
	if err := json.Unmarshal([]byte(out), &plans); err != nil || len(plans) != 1 {
		t.Fatalf("%v\n%s", err, out)
	}
	sp := plans[0].Spec
	if sp.Name != "other" || sp.Firmware != "bios" || sp.GuestID != "rhel9_64Guest" || !slices.Equal(sp.Controllers, []string{"pvscsi"}) ||
		len(sp.Defaults) != 1 || !strings.HasPrefix(sp.Defaults[0], "disks: protection group") {
		t.Fatalf("flags did not override: %+v", sp)
	}
	// A --spec machine may give its group instead of its disks.
	spec := filepath.Join(t.TempDir(), "machines.json")
	os.WriteFile(spec, []byte(`{"machines": [{"group": "`+fxPair+`", "memoryMB": 1024}]}`), 0o600)
	out, _, err = vsRun(t, e.args("create-vm", "--socket", sock, "--spec", spec, "--dry-run")...)
	if exitOf(err) != exitRefused || !strings.Contains(out, "Failback VM "+fxPair+" from 1 disk(s)") || !strings.Contains(out, "firmware efi: /dev/sdc") {
		t.Fatalf("spec with a group: %v\n%s", err, out)
	}
	// A group the agent does not have is refused, naming the ones it has.
	_, _, err = vsRun(t, e.args("create-vm", "--socket", sock, "--group", "nosuch", "--dry-run")...)
	if !isUsage(err) || !strings.Contains(err.Error(), "--group nosuch: the agent on "+sock+" has no pair in that group (groups: "+fxPair+")") {
		t.Fatalf("unknown group: %v", err)
	}
	// No agent: the group cannot be resolved; --disk still can be given.
	_, _, err = vsRun(t, e.args("create-vm", "--socket", e.socket, "--group", fxPair, "--dry-run")...)
	if !isUsage(err) || !strings.Contains(err.Error(), "or give --disk") {
		t.Fatalf("no agent: %v", err)
	}
}

// With --json every refusal prints one JSON object on stdout (error and
// exit code), whatever refused: the network, the certificate, the VM,
// the flags, a plan file.
func TestVSphereJSONRefusals(t *testing.T) {
	e := newVSEnv(t)
	e.cache = []string{"--no-session-cache"}
	unreachable := e.args("check", "--json")
	unreachable[3] = "https://127.0.0.1:1/sdk"
	badPin := e.args("enable-uuid", "--vm", vspheresim.OffVM, "--json")
	for i := range badPin {
		if badPin[i] == e.s.Thumbprint {
			badPin[i] = strings.Repeat("0A:", 31) + "0A"
		}
	}
	missing := filepath.Join(t.TempDir(), "nope.json")
	for _, tc := range []struct {
		args []string
		exit int
		want string
	}{
		{unreachable, exitError, "127.0.0.1:1"},
		{badPin, exitCert, e.s.Thumbprint},
		{e.args("check", "--vm", "nosuch", "--json"), exitError, "nosuch"},
		{e.args("check", "--vm-glob", "DC0_H0_VM*", "--json"), exitError, "2 VMs match"},
		{e.args("enable-uuid", "--vm", vspheresim.PVSCSIVM, "--json"), exitRefused, vspheresim.PVSCSIVM},
		{e.args("failback", "undo", missing, "--json"), exitUsage, missing},
		{e.args("create-vm", "--name", "x", "--json"), exitUsage, "no --disk"},
	} {
		out, _, err := vsRun(t, tc.args...)
		var r struct {
			Error string `json:"error"`
			Exit  int    `json:"exit"`
		}
		if jerr := json.Unmarshal([]byte(out), &r); jerr != nil || exitOf(err) != tc.exit || r.Exit != tc.exit || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%v: exit %d (%v), stdout %q", tc.args[1:3], exitOf(err), err, out)
		}
	}
}
