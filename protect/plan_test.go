package protect_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/internal/testutil"
	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// host is a master target in a temporary directory: an agent.toml with
// comments, a group db01 and its pair sdz, and file targets.
type host struct {
	dir, etc, conf string
	old            string
	tgt            map[string]string // name → path
}

const baseConf = `# the admin's notes: keep them
[agent]
host_id = "mt01"
journal_dir = %q
retention_dir = %q
socket = %q
trust_store = %q

[process_server]
address = "ps.example.com:9443"
passphrase_file = "/etc/mtconsole/passphrase"

[[group]]
name = "db01" # the database
consistency_interval = "30m"

[[pair]]
disk = "sdz"
target = %q
group = "db01"
`

func newHost(t *testing.T, withConf bool) *host {
	t.Helper()
	h := &host{dir: t.TempDir(), tgt: map[string]string{}}
	h.etc = filepath.Join(h.dir, "etc")
	h.conf = filepath.Join(h.etc, "agent.toml")
	for name, size := range map[string]int64{"sdc": 1 << 20, "sdd": 2 << 20, "small": 512 << 10, "sdy": 4 << 20} {
		h.tgt[name] = filepath.Join(h.dir, name+".img")
		if err := os.WriteFile(h.tgt[name], make([]byte, size), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if withConf {
		h.old = fmt.Sprintf(baseConf, filepath.Join(h.dir, "journal"), filepath.Join(h.dir, "retention"), filepath.Join(h.dir, "agent.sock"),
			filepath.Join(h.etc, "known_process_servers"), h.tgt["sdy"])
		if err := os.MkdirAll(h.etc, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(h.conf, []byte(h.old), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

var served = []protect.Disk{{Name: "sda", Size: 1 << 20, BlockSize: 4096}, {Name: "sdb", Size: 2 << 20, BlockSize: 4096}, {Name: "sdz", Size: 1 << 20, BlockSize: 4096}}

func (h *host) req(m map[string]string) protect.Request {
	return protect.Request{Group: "web01", Map: m, AllowFiles: true, Disks: served, PSAddr: "ps.example.com:9443"}
}

func i64(n int64) *int64 { return &n }

// Each refusal is named (errors.Is and its code), says what to do, and
// leaves the configuration directory as it was.
func TestPlanRefusals(t *testing.T) {
	h := newHost(t, true)
	ok := map[string]string{"sda": h.tgt["sdc"]}
	for _, tc := range []struct {
		name string
		mod  func(*protect.Request)
		opt  protect.Options
		err  error
		code string
		says string
	}{
		{"group exists", func(r *protect.Request) { r.Group = "db01" }, protect.Options{}, protect.ErrGroupExists, "group-exists", `group "db01" exists`},
		{"group is a pair's id", func(r *protect.Request) { r.Group = "sdz" }, protect.Options{}, protect.ErrGroupExists, "group-exists", "has that id"},
		{"bad group name", func(r *protect.Request) { r.Group = "web 01" }, protect.Options{}, protect.ErrBadRequest, "bad-group-name", "--group"},
		{"no disks", func(r *protect.Request) { r.Map = nil }, protect.Options{}, protect.ErrBadRequest, "no-disks", "--map"},
		{"unknown disk", func(r *protect.Request) { r.Map = map[string]string{"sdq": h.tgt["sdc"]} }, protect.Options{}, protect.ErrUnknownDisk, "unknown-disk", "it serves sda, sdb, sdz"},
		{"disk paired", func(r *protect.Request) { r.Map = map[string]string{"sdz": h.tgt["sdc"]} }, protect.Options{}, protect.ErrDiskPaired, "disk-paired", "already paired"},
		{"target twice", func(r *protect.Request) { r.Map = map[string]string{"sda": h.tgt["sdd"], "sdb": h.tgt["sdd"]} }, protect.Options{}, protect.ErrTargetTwice, "target-twice", "given for sda and sdb"},
		{"target in use", func(r *protect.Request) { r.Map = map[string]string{"sda": h.tgt["sdy"]} }, protect.Options{}, protect.ErrTargetInUse, "target-in-use", "target of pair sdz"},
		{"target too small", func(r *protect.Request) { r.Map = map[string]string{"sdb": h.tgt["small"]} }, protect.Options{}, protect.ErrTargetRefused, "target-too-small", "smaller than source sdb"},
		{"target missing", func(r *protect.Request) { r.Map = map[string]string{"sda": filepath.Join(h.dir, "nope")} }, protect.Options{}, protect.ErrTargetRefused, "target-not-found", "does not exist: create it first"},
		{"file without --allow-files", func(r *protect.Request) { r.AllowFiles = false }, protect.Options{}, protect.ErrTargetRefused, "target-file-not-allowed", "--allow-files"},
		{"target rule hook", nil, protect.Options{CheckTarget: func(c protect.TargetCheck) protect.TargetVerdict {
			if c.Overwrite == "sdc" || len(c.InUse) != 1 || c.InUse[0] != h.tgt["sdy"] {
				t.Errorf("check %+v", c)
			}
			return protect.TargetVerdict{Code: "has-fs", Reason: "holds an ext4 file system: type its name to overwrite", Confirm: "sdc"}
		}}, protect.ErrTargetRefused, "target-has-fs", "ext4"},
		{"other process server", func(r *protect.Request) { r.PSAddr = "10.0.0.9" }, protect.Options{}, protect.ErrOtherServer, "other-process-server", "10.0.0.9:9443"},
		{"bad retention", func(r *protect.Request) { r.Policy.Retention = "forever" }, protect.Options{}, protect.ErrBadPolicy, "bad-policy", "forever"},
		{"bad on_full", func(r *protect.Request) { r.Policy.OnFull = "panic" }, protect.Options{}, protect.ErrBadPolicy, "bad-policy", "panic"},
		{"negative size cap", func(r *protect.Request) { r.Policy.SizeCapMB = i64(-1) }, protect.Options{}, protect.ErrBadPolicy, "bad-policy", "size_cap_mb"},
		{"bad rpo", func(r *protect.Request) { r.Policy.RPOThreshold = "soon" }, protect.Options{}, protect.ErrBadPolicy, "bad-policy", "soon"},
		{"bad interval", func(r *protect.Request) { r.ConsistencyInterval = "5s" }, protect.Options{}, protect.ErrBadPolicy, "bad-policy", "consistency_interval"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutil.Tree(t, h.dir)
			req := h.req(ok)
			if tc.mod != nil {
				tc.mod(&req)
			}
			_, err := protect.MakePlan(context.Background(), h.conf, req, tc.opt)
			var re *protect.RefusedError
			if !errors.Is(err, tc.err) || !errors.Is(err, protect.ErrRefused) || !errors.As(err, &re) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if len(re.Refusals) != 1 || re.Refusals[0].Code != tc.code || !strings.Contains(re.Refusals[0].Reason, tc.says) {
				t.Fatalf("refusals %+v, want one %s saying %q", re.Refusals, tc.code, tc.says)
			}
			testutil.SameTree(t, h.dir, before)
		})
	}
	// every problem at once, not the first only
	req := h.req(map[string]string{"sdq": h.tgt["sdc"], "sdz": h.tgt["sdd"], "sdb": h.tgt["small"]})
	req.Group = "db01"
	_, err := protect.MakePlan(context.Background(), h.conf, req, protect.Options{})
	var re *protect.RefusedError
	if !errors.As(err, &re) || len(re.Refusals) != 4 {
		t.Fatalf("err = %v, want 4 refusals", err)
	}
	// a fresh host needs the process server and passphrase file
	fresh := newHost(t, false)
	_, err = protect.MakePlan(context.Background(), fresh.conf, fresh.req(ok), protect.Options{})
	if !errors.Is(err, protect.ErrNoConfig) || !strings.Contains(err.Error(), "--ps") {
		t.Fatalf("fresh host without --ps: %v", err)
	}
}

// The plan keeps the file byte for byte, comments included, and appends
// the group and its pairs; the result passes agent.LoadConfig with the
// group's policy and pairs.
func TestPlanText(t *testing.T) {
	h := newHost(t, true)
	req := h.req(map[string]string{"sdb": h.tgt["sdd"], "sda": h.tgt["sdc"]})
	req.Policy = protect.Policy{Retention: "3d", SizeCapMB: i64(512), OnFull: "pause", RPOThreshold: "10m"}
	req.ConsistencyInterval = "15m"
	p, err := protect.MakePlan(context.Background(), h.conf, req, protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := h.old + `
# web01: protected by ` + "`mtconsole protect`" + ` (2 disks from ps.example.com:9443)
[[group]]
name = "web01"
consistency_interval = "15m"
rpo_threshold = "10m"
retention = "3d"
size_cap_mb = 512
on_full = "pause"

[[pair]]
disk = "sda"
target = "` + h.tgt["sdc"] + `"
group = "web01"

[[pair]]
disk = "sdb"
target = "` + h.tgt["sdd"] + `"
group = "web01"
`
	if string(p.New) != want {
		t.Fatalf("planned file:\n%s\nwant:\n%s", p.New, want)
	}
	if string(p.Old) != h.old {
		t.Fatal("Old is not the file as read")
	}
	// The diff: the old lines as context, every new line added, none
	// removed.
	added := strings.TrimSuffix(want[len(h.old):], "\n")
	d := p.Diff()
	if !strings.HasPrefix(d, "--- "+h.conf+"\n+++ "+h.conf+"\n@@ -18,3 +18,22 @@\n") ||
		!strings.HasSuffix(d, "+"+strings.ReplaceAll(added, "\n", "\n+")+"\n") || strings.Contains(d, "\n-") {
		t.Errorf("diff:\n%s", d)
	}
	if s := p.Summary(); !strings.Contains(s, "protect web01: 2 disks from ps.example.com:9443") || !strings.Contains(s, "3d") || !strings.Contains(s, "512 MB") {
		t.Errorf("summary:\n%s", s)
	}
}

// Apply keeps the previous file as .bak with its mode, writes the planned
// text with the same mode, and asks the agent to reload; with no agent it
// says the agent will pick it up at start.
func TestApply(t *testing.T) {
	h := newHost(t, true)
	p, err := protect.MakePlan(context.Background(), h.conf, h.req(map[string]string{"sda": h.tgt["sdc"]}), protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reloads := 0
	res, err := protect.Apply(context.Background(), p, protect.Options{Reload: func(context.Context) ([]string, error) {
		reloads++
		return []string{"sda"}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if reloads != 1 || !res.Written || !res.Agent || len(res.Started) != 1 || res.Backup != h.conf+".bak" {
		t.Fatalf("result %+v, reloads %d", res, reloads)
	}
	for path, want := range map[string]string{h.conf: string(p.New), h.conf + ".bak": h.old} {
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(b) != want || fi.Mode().Perm() != 0o640 {
			t.Fatalf("%s: %v, mode %v, text:\n%s", path, err, fi.Mode(), b)
		}
	}
	fc, err := agent.LoadConfig(h.conf)
	if err != nil {
		t.Fatal(err)
	}
	cc := fc.ClientConfig()
	if len(cc.Pairs) != 2 || cc.Pairs[1].Disk != "sda" || cc.Pairs[1].Group != "web01" || cc.Pairs[1].Target != h.tgt["sdc"] {
		t.Fatalf("pairs %+v", cc.Pairs)
	}
	// no agent: success, and the note says when it starts
	p, err = protect.MakePlan(context.Background(), h.conf, func() protect.Request {
		r := h.req(map[string]string{"sdb": h.tgt["sdd"]})
		r.Group = "app01"
		return r
	}(), protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = protect.Apply(context.Background(), p, protect.Options{Reload: func(context.Context) ([]string, error) {
		return nil, &api.NoAgentError{Socket: "x", Err: os.ErrNotExist}
	}})
	if err != nil || res.Agent || res.Note != protect.NoAgentNote {
		t.Fatalf("no agent: %v %+v", err, res)
	}
	// a reload that fails: the file is written, and the error says so
	p, err = protect.MakePlan(context.Background(), h.conf, func() protect.Request {
		r := h.req(map[string]string{"sdq": h.tgt["sdd"]})
		r.Group, r.Disks = "app02", []protect.Disk{{Name: "sdq", Size: 4096}}
		return r
	}(), protect.Options{})
	if err == nil || !errors.Is(err, protect.ErrTargetInUse) {
		t.Fatalf("sdd is app01's target now: %v", err)
	}
	p, err = protect.MakePlan(context.Background(), h.conf, func() protect.Request {
		r := h.req(map[string]string{"sdb2": h.tgt["small"]})
		r.Group, r.Disks = "app02", []protect.Disk{{Name: "sdb2", Size: 4096}}
		return r
	}(), protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err = protect.Apply(context.Background(), p, protect.Options{Reload: func(context.Context) ([]string, error) {
		return nil, errors.New("pair sdb2: target busy")
	}})
	if !errors.Is(err, protect.ErrReload) || res == nil || !res.Written || !strings.Contains(err.Error(), "target busy") {
		t.Fatalf("failed reload: %v %+v", err, res)
	}
	if b, _ := os.ReadFile(h.conf); string(b) != string(p.New) {
		t.Fatal("the file is not written after a failed reload")
	}
}

// A file changed between plan and apply is not overwritten.
func TestApplyChangedMeanwhile(t *testing.T) {
	h := newHost(t, true)
	p, err := protect.MakePlan(context.Background(), h.conf, h.req(map[string]string{"sda": h.tgt["sdc"]}), protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.conf, []byte(h.old+"# edited\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	before := testutil.Tree(t, h.dir)
	if _, err := protect.Apply(context.Background(), p, protect.Options{}); !errors.Is(err, protect.ErrChanged) {
		t.Fatalf("err = %v, want ErrChanged", err)
	}
	testutil.SameTree(t, h.dir, before)
}

// A write that fails midway (the temporary file written, the rename never
// done: a crash) leaves the old file whole and no temporary file behind;
// the agent is not asked to reload.
func TestApplyCrashMidWrite(t *testing.T) {
	h := newHost(t, true)
	p, err := protect.MakePlan(context.Background(), h.conf, h.req(map[string]string{"sda": h.tgt["sdc"]}), protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crash := errors.New("power lost")
	var writes []string
	write := func(path string, data []byte, perm, dirPerm os.FileMode) error {
		writes = append(writes, filepath.Base(path))
		if path != h.conf {
			return os.WriteFile(path, data, perm)
		}
		// half the new text into a temporary file beside it, then the crash
		tmp := filepath.Join(filepath.Dir(path), ".agent.toml.tmp-crash")
		if err := os.WriteFile(tmp, data[:len(data)/2], perm); err != nil {
			return err
		}
		os.Remove(tmp) // what atomicfile does on error
		return crash
	}
	_, err = protect.Apply(context.Background(), p, protect.Options{WriteFile: write, Reload: func(context.Context) ([]string, error) {
		t.Error("reload asked after a failed write")
		return nil, nil
	}})
	if !errors.Is(err, crash) || !strings.Contains(err.Error(), "as it was") {
		t.Fatalf("err = %v", err)
	}
	if b, _ := os.ReadFile(h.conf); string(b) != h.old {
		t.Fatalf("agent.toml after a crash:\n%s", b)
	}
	if strings.Join(writes, ",") != "agent.toml.bak,agent.toml" {
		t.Fatalf("writes %v: the backup goes first", writes)
	}
	ents, _ := os.ReadDir(h.etc)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("left %s", e.Name())
		}
	}
}

// A host with no agent.toml gets a complete file, mode 0600, that the
// agent loads.
func TestApplyFreshHost(t *testing.T) {
	h := newHost(t, false)
	req := h.req(map[string]string{"sda": h.tgt["sdc"]})
	req.Fresh = protect.Fresh{PSAddr: "ps.example.com", PassphraseFile: "/etc/mtconsole/passphrase",
		JournalDir: filepath.Join(h.dir, "journal"), RetentionDir: filepath.Join(h.dir, "retention")}
	p, err := protect.MakePlan(context.Background(), h.conf, req, protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := protect.Apply(context.Background(), p, protect.Options{})
	if err != nil || res.Backup != "" {
		t.Fatalf("%v %+v", err, res)
	}
	want := "# mtconsole agent configuration, written by `mtconsole protect`.\n" +
		"# The format is in `mtconsole agent --help`; what is left out takes its default.\n\n" +
		"[agent]\njournal_dir = \"" + filepath.Join(h.dir, "journal") + "\"\nretention_dir = \"" + filepath.Join(h.dir, "retention") + "\"\n" +
		"\n[process_server]\naddress = \"ps.example.com:9443\"\npassphrase_file = \"/etc/mtconsole/passphrase\"\n" +
		"\n# web01: protected by `mtconsole protect` (1 disk from ps.example.com:9443)\n[[group]]\nname = \"web01\"\n" +
		"\n[[pair]]\ndisk = \"sda\"\ntarget = \"" + h.tgt["sdc"] + "\"\ngroup = \"web01\"\n"
	b, err := os.ReadFile(h.conf)
	fi, _ := os.Stat(h.conf)
	if err != nil || string(b) != want || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%v mode %v:\n%s\nwant:\n%s", err, fi.Mode(), b, want)
	}
	if _, err := os.Stat(h.conf + ".bak"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a .bak of no file: %v", err)
	}
	if _, err := agent.LoadConfig(h.conf); err != nil {
		t.Fatal(err)
	}
}

// The summary names what the agent will run a left-out setting with: the
// file's [defaults], not the built-in ones.
func TestPlanSummaryDefaults(t *testing.T) {
	h := newHost(t, true)
	text := h.old + "\n[defaults]\nrpo_threshold = \"1m\"\nretention = \"3 days\"\nsize_cap_mb = 100\non_full = \"pause\"\n"
	if err := os.WriteFile(h.conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := protect.MakePlan(context.Background(), h.conf, h.req(map[string]string{"sda": h.tgt["sdc"]}), protect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := p.Summary()
	for _, want := range []string{"retention             the [defaults] (72h)", "size cap              the [defaults] (100 MB)",
		"on full               the [defaults] (pause)", "RPO threshold         the [defaults] (1m)"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary lacks %q:\n%s", want, s)
		}
	}
}
