package agent

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
)

// reloadTagProblems lists the fields of t (walked as Reloader walks it)
// whose reload rule is not stated: a setting without a reload tag, a tag
// of no known value, a list of tables without exactly one key.
func reloadTagProblems(prefix string, t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := prefix + f.Name
		switch tag, ok := f.Tag.Lookup(reloadTag); {
		case ok && (tag == reloadLive || tag == reloadRestart || tag == reloadKey):
		case ok:
			out = append(out, name+": reload:\""+tag+"\" is none of live, restart, key")
		case f.Type.Kind() == reflect.Struct:
			out = append(out, reloadTagProblems(name+".", f.Type)...)
		case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			keys := 0
			for j := range f.Type.Elem().NumField() {
				if f.Type.Elem().Field(j).Tag.Get(reloadTag) == reloadKey {
					keys++
				}
			}
			if keys != 1 {
				out = append(out, name+": a list of tables needs exactly one reload:\"key\" field")
			}
			out = append(out, reloadTagProblems(name+"[].", f.Type.Elem())...)
		default:
			out = append(out, name+": no reload tag: say whether a reload applies it (reload:\"live\") or a restart does (reload:\"restart\")")
		}
	}
	return out
}

// Every setting of the agent's file says what a reload does with it: a
// new one without a reload tag fails here.
func TestReloadTags(t *testing.T) {
	if p := reloadTagProblems("FileConfig.", reflect.TypeFor[FileConfig]()); len(p) > 0 {
		t.Errorf("the reload rule of these settings is not stated:\n%s", strings.Join(p, "\n"))
	}
	// the check sees a setting added without a tag, and a list without a key
	type added struct {
		Agent struct {
			HostID string `toml:"host_id" reload:"restart"`
			New    string `toml:"new"`
		}
		Pairs []struct {
			Disk string `reload:"restart"`
		}
		Odd string `reload:"sometimes"`
	}
	p := reloadTagProblems("", reflect.TypeFor[added]())
	if len(p) != 3 || !strings.HasPrefix(p[0], "Agent.New: no reload tag") || !strings.HasPrefix(p[1], "Pairs: a list") || !strings.HasPrefix(p[2], "Odd:") {
		t.Errorf("problems of a bad type: %q", p)
	}
}

// reloadRig is an agent's pairs opened from a file in a temporary
// directory (no process server: a reload needs none).
type reloadRig struct {
	t      *testing.T
	dir    string
	path   string
	client *Client
	r      *Reloader
	res    api.ReloadResult // the last reload's
	logs   bytes.Buffer
}

// config is an agent file with the given [agent] and [defaults] lines and
// pairs ("disk" or "disk=target").
func (g *reloadRig) config(agentLines, defaults string, pairs ...string) string {
	s := "[agent]\nhost_id = \"mt01\"\njournal_dir = \"" + g.dir + "/j\"\nretention_dir = \"" + g.dir + "/r\"\n" +
		"trust_store = \"" + g.dir + "/known\"\nhost_config = \"\"\n" + agentLines +
		"\n[process_server]\naddress = \"127.0.0.1:1\"\npassphrase_file = \"" + g.dir + "/pass\"\n[defaults]\n" + defaults + "\n"
	for _, p := range pairs {
		disk, target, ok := strings.Cut(p, "=")
		if !ok {
			target = filepath.Join(g.dir, disk+".img")
		}
		s += "[[pair]]\ndisk = \"" + disk + "\"\ntarget = \"" + target + "\"\n"
	}
	return s
}

func (g *reloadRig) write(text string) {
	g.t.Helper()
	if err := os.WriteFile(g.path, []byte(text), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

func newReloadRig(t *testing.T, text func(g *reloadRig) string) *reloadRig {
	g := &reloadRig{t: t, dir: t.TempDir()}
	g.path = filepath.Join(g.dir, "agent.toml")
	for _, d := range []string{"sda", "sdb", "sdc"} {
		if err := os.WriteFile(filepath.Join(g.dir, d+".img"), make([]byte, 1<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	g.write(text(g))
	fc, err := LoadConfig(g.path)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := wire.OpenTrustStore(fc.Agent.TrustStore)
	if err != nil {
		t.Fatal(err)
	}
	cfg := fc.ClientConfig()
	cfg.Trust = trust
	if g.client, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.client.Close() })
	g.r = NewReloader(fc, g.client, slog.New(slog.NewTextHandler(&g.logs, nil)))
	return g
}

// reload writes text, reloads and returns what it logged.
func (g *reloadRig) reload(text string) string {
	g.t.Helper()
	g.write(text)
	g.logs.Reset()
	g.res = g.r.Reload()
	return g.logs.String()
}

// policy is pair id's retention window and RPO threshold as it runs.
func (g *reloadRig) policy(id string) (time.Duration, time.Duration) {
	g.t.Helper()
	p := g.client.Writer().Pair(id)
	if p == nil {
		g.t.Fatalf("no pair %s", id)
	}
	st := p.Status()
	return st.Retention.Window, time.Duration(st.RPOThreshold * float64(time.Second))
}

// A reload applies retention and RPO at once, names what needs a restart
// by the file's keys, refuses a file with an error whole, and applies a
// file changed back.
func TestReload(t *testing.T) {
	g := newReloadRig(t, func(g *reloadRig) string { return g.config("", "", "sda", "sdb") })
	base := g.config("", "", "sda", "sdb")
	if w, rpo := g.policy("sda"); w != 24*time.Hour || rpo != 15*time.Minute {
		t.Fatalf("start: window %s rpo %s", w, rpo)
	}
	restartLine := "reload: these changes take effect when the agent restarts"

	// live: the defaults' retention and RPO, every pair
	log := g.reload(g.config("", "retention = \"2 days\"\nrpo_threshold = \"5m\"", "sda", "sdb"))
	for _, id := range []string{"sda", "sdb"} {
		if w, rpo := g.policy(id); w != 48*time.Hour || rpo != 5*time.Minute {
			t.Errorf("%s after the reload: window %s rpo %s\n%s", id, w, rpo, log)
		}
	}
	if !strings.Contains(log, `msg="configuration reloaded" path=`+g.path+" policies_changed=2") || strings.Contains(log, restartLine) {
		t.Errorf("log of a live change:\n%s", log)
	}

	// a file with an error changes nothing
	log = g.reload(g.config("", "retention = \"1 fortnight\"", "sda", "sdb"))
	if w, _ := g.policy("sda"); w != 48*time.Hour || !strings.Contains(log, "reload refused, the running configuration stays") {
		t.Errorf("a bad file: window %s\n%s", w, log)
	}

	// changed back: applied back
	log = g.reload(base)
	if w, rpo := g.policy("sda"); w != 24*time.Hour || rpo != 15*time.Minute || !strings.Contains(log, "policies_changed=2") {
		t.Errorf("the file changed back: window %s rpo %s\n%s", w, rpo, log)
	}
	// the same file again: nothing to apply
	if log = g.reload(base); !strings.Contains(log, "policies_changed=0") || strings.Contains(log, restartLine) {
		t.Errorf("the same file again:\n%s", log)
	}

	// restart settings are named, as the file spells them; a pair's
	// policy still applies when another pair needs a restart
	for _, tc := range []struct {
		name, text, want string
	}{
		{"address", strings.Replace(base, "127.0.0.1:1", "127.0.0.1:2", 1), "[process_server.address]"},
		{"host id", strings.Replace(base, `host_id = "mt01"`, `host_id = "mt02"`, 1), "[agent.host_id]"},
		{"space", g.config("min_reserved_space_mb = 10", "", "sda", "sdb"), "[agent.min_reserved_space_mb]"},
		{"host config", strings.Replace(base, `host_config = ""`, `host_config = "/etc/other.conf"`, 1), "[agent.host_config]"},
		{"socket", g.config(`socket = "`+g.dir+`/other.sock"`, "", "sda", "sdb"), "[agent.socket]"},
		{"pair target", g.config("", "", "sda", "sdb="+g.dir+"/sdc.img"), "[pair sdb target]"},
		{"journal dir", strings.Replace(base, "/j\"", "/j2\"", 1), "[agent.journal_dir]"},
	} {
		log := g.reload(tc.text)
		named := strings.Contains(log, restartLine+`" changes=`+tc.want+"\n") || strings.Contains(log, restartLine+`" changes="`+tc.want+`"`)
		if !named || !strings.Contains(log, "policies_changed=0") {
			t.Errorf("%s: want %s named:\n%s", tc.name, tc.want, log)
		}
	}
	// a restart change beside a live one: the live one applies, but not
	// to a pair whose target changed
	text := g.config("", "", "sda", "sdb="+g.dir+"/sdc.img")
	text = strings.Replace(text, "[defaults]\n", "[defaults]\nretention = \"3 days\"\n", 1)
	log = g.reload(text)
	wa, _ := g.policy("sda")
	wb, _ := g.policy("sdb")
	if wa != 72*time.Hour || wb != 24*time.Hour || !strings.Contains(log, "policies_changed=1") || !strings.Contains(log, "[pair sdb target]") {
		t.Errorf("live beside restart: sda %s, sdb %s\n%s", wa, wb, log)
	}
}

// A reload starts a [[pair]] new in the file and stops one gone from it,
// the others untouched; a stopped pair's journal and retention stay (its
// target is never touched), unless purged; a pair's group and a group's
// consistency interval apply at once; a file with an error changes
// nothing and the result says why, with the file and line.
func TestReloadPairsLive(t *testing.T) {
	g := newReloadRig(t, func(g *reloadRig) string { return g.config("", "", "sda", "sdb") })
	empty := api.ReloadResult{Applied: []string{}, Started: []string{}, Stopped: []string{}, Restart: []string{}}
	ids := func() []string {
		var out []string
		for _, s := range g.client.Status() {
			out = append(out, s.ID+"/"+s.Group)
		}
		return out
	}
	// a new pair starts
	log := g.reload(g.config("", "", "sda", "sdb", "sdc"))
	want := empty
	want.Started = []string{"sdc"}
	if !reflect.DeepEqual(g.res, want) || !reflect.DeepEqual(ids(), []string{"sda/sda", "sdb/sdb", "sdc/sdc"}) {
		t.Fatalf("new pair: result %+v, pairs %v\n%s", g.res, ids(), log)
	}
	if strings.Contains(log, "take effect when the agent restarts") {
		t.Errorf("a new pair named as needing a restart:\n%s", log)
	}
	tgt, err := os.ReadFile(filepath.Join(g.dir, "sdb.img"))
	if err != nil {
		t.Fatal(err)
	}
	// a removed pair stops; its journal and retention stay
	log = g.reload(g.config("", "", "sda", "sdc"))
	want = empty
	want.Stopped = []string{"sdb"}
	if !reflect.DeepEqual(g.res, want) || !reflect.DeepEqual(ids(), []string{"sda/sda", "sdc/sdc"}) {
		t.Fatalf("removed pair: result %+v, pairs %v\n%s", g.res, ids(), log)
	}
	for _, d := range []string{"j/sdb", "r/sdb"} {
		if _, err := os.Stat(filepath.Join(g.dir, d)); err != nil {
			t.Errorf("removed without purge: %s: %v", d, err)
		}
	}
	// added again: it resumes from its journal
	g.reload(g.config("", "", "sda", "sdb", "sdc"))
	if !reflect.DeepEqual(g.res.Started, []string{"sdb"}) {
		t.Fatalf("added again: %+v", g.res)
	}
	// removed with purge: its directories go, its target stays as it is
	g.write(g.config("", "", "sda", "sdc"))
	g.res = g.r.ReloadWith(ReloadOptions{Purge: true})
	if !reflect.DeepEqual(g.res.Stopped, []string{"sdb"}) || g.res.Error != "" {
		t.Fatalf("purge: %+v", g.res)
	}
	for _, d := range []string{"j/sdb", "r/sdb"} {
		if _, err := os.Stat(filepath.Join(g.dir, d)); !os.IsNotExist(err) {
			t.Errorf("purged: %s still there (%v)", d, err)
		}
	}
	for _, d := range []string{"j/sda", "r/sda", "j/sdc", "r/sdc"} {
		if _, err := os.Stat(filepath.Join(g.dir, d)); err != nil {
			t.Errorf("purging sdb touched %s: %v", d, err)
		}
	}
	if after, err := os.ReadFile(filepath.Join(g.dir, "sdb.img")); err != nil || !bytes.Equal(after, tgt) {
		t.Errorf("the removed pair's target changed (%v)", err)
	}

	// groups: new, a pair's group, an interval, all live
	text := g.config("", "", "sda", "sdc")
	text += "[[group]]\nname = \"web01\"\nconsistency_interval = \"15m\"\n"
	text = strings.Replace(text, "disk = \"sdc\"\n", "disk = \"sdc\"\ngroup = \"web01\"\n", 1)
	log = g.reload(text)
	want = empty
	want.Applied = []string{"new group web01", "pair sdc group"}
	if !reflect.DeepEqual(g.res, want) || !reflect.DeepEqual(ids(), []string{"sda/sda", "sdc/web01"}) {
		t.Fatalf("groups: result %+v, pairs %v\n%s", g.res, ids(), log)
	}
	g.client.gmu.Lock()
	gs := slices.Clone(g.client.groups)
	g.client.gmu.Unlock()
	if len(gs) != 1 || gs[0] != (GroupConfig{Name: "web01", ConsistencyInterval: 15 * time.Minute}) {
		t.Errorf("groups running: %+v", gs)
	}

	// a file with an error: nothing changes, the result says where
	bad := strings.Replace(text, "consistency_interval = \"15m\"", "consistency_interval = \"soon\"", 1)
	log = g.reload(strings.Replace(bad, "disk = \"sda\"\n", "", 1) + "[[pair]]\ndisk = \"sdb\"\ntarget = \"x\"\n")
	if g.res.Error == "" || !strings.Contains(g.res.Error, g.path+":") || len(g.res.Started)+len(g.res.Stopped)+len(g.res.Applied) != 0 ||
		!reflect.DeepEqual(ids(), []string{"sda/sda", "sdc/web01"}) {
		t.Errorf("a bad file: result %+v, pairs %v\n%s", g.res, ids(), log)
	}
}

// A stopped Reloader (the agent shutting down) changes nothing: the new
// pair in the file is not started, and the result says why.
func TestReloadAfterStop(t *testing.T) {
	g := newReloadRig(t, func(g *reloadRig) string { return g.config("", "", "sda") })
	g.r.Stop()
	g.reload(g.config("", "", "sda", "sdb"))
	if !strings.Contains(g.res.Error, "the agent is stopping") || len(g.res.Started) != 0 || len(g.client.Status()) != 1 {
		t.Fatalf("reload after Stop: %+v, pairs %d", g.res, len(g.client.Status()))
	}
}

// alert_threshold_percent is live: [agent]'s (the old files' place),
// [defaults]' and a pair's own reach the running pairs at once, and no
// restart is named.
func TestReloadAlertThreshold(t *testing.T) {
	g := newReloadRig(t, func(g *reloadRig) string { return g.config("", "", "sda", "sdb") })
	alert := func(id string) float64 { return g.client.Writer().Pair(id).AlertPercent() }
	if alert("sda") != DefaultAlertPercent || alert("sdb") != DefaultAlertPercent {
		t.Fatalf("start: %v %v, want %v", alert("sda"), alert("sdb"), DefaultAlertPercent)
	}
	log := g.reload(g.config("alert_threshold_percent = 7", "", "sda", "sdb"))
	if alert("sda") != 7 || alert("sdb") != 7 || strings.Contains(log, "restarts") {
		t.Fatalf("[agent] 7: %v %v\n%s", alert("sda"), alert("sdb"), log)
	}
	text := g.config("alert_threshold_percent = 7", "alert_threshold_percent = 12.5", "sda", "sdb")
	text = strings.Replace(text, "disk = \"sdb\"\n", "disk = \"sdb\"\nalert_threshold_percent = 30\n", 1)
	log = g.reload(text)
	if alert("sda") != 12.5 || alert("sdb") != 30 || !slices.Contains(g.res.Applied, "pair sdb alert_threshold_percent") {
		t.Fatalf("[defaults] 12.5, sdb 30: %v %v %v\n%s", alert("sda"), alert("sdb"), g.res.Applied, log)
	}
	log = g.reload(g.config("", "", "sda", "sdb"))
	if alert("sda") != DefaultAlertPercent || alert("sdb") != DefaultAlertPercent {
		t.Fatalf("changed back: %v %v\n%s", alert("sda"), alert("sdb"), log)
	}
}

// A reload applies sparse tiers live (only the tiers changing is a
// change), refuses tiers that do not end at the window, and clears them.
func TestReloadSparse(t *testing.T) {
	g := newReloadRig(t, func(g *reloadRig) string { return g.config("", "", "sda", "sdb") })
	tiers := func(id string) []journal.Tier {
		t.Helper()
		return g.client.Writer().Pair(id).Status().Retention.Tiers
	}
	sparse := g.config("", "retention = \"2d\"\nsparse = \"all 1d; 1 per 1h for 1d\"", "sda", "sdb")
	log := g.reload(sparse)
	for _, id := range []string{"sda", "sdb"} {
		if tr := tiers(id); len(tr) != 2 || tr[1].Granularity != time.Hour || g.client.Writer().Pair(id).Store().Policy().Tiers == nil {
			t.Errorf("%s after the reload: tiers %+v\n%s", id, tr, log)
		}
	}
	if !strings.Contains(log, "policies_changed=2") {
		t.Errorf("log:\n%s", log)
	}
	log = g.reload(g.config("", "retention = \"2d\"\nsparse = \"all 1d; 1 per 2h for 1d\"", "sda", "sdb"))
	if tr := tiers("sda"); len(tr) != 2 || tr[1].Granularity != 2*time.Hour || !strings.Contains(log, "policies_changed=2") {
		t.Errorf("only the granularity changed: tiers %+v\n%s", tr, log)
	}
	log = g.reload(g.config("", "retention = \"3d\"\nsparse = \"all 1d; 1 per 2h for 1d\"", "sda", "sdb"))
	if tr := tiers("sda"); tr[1].Granularity != 2*time.Hour || !strings.Contains(log, "reload refused") || !strings.Contains(log, "sparse") {
		t.Errorf("tiers not ending at the window: tiers %+v\n%s", tr, log)
	}
	log = g.reload(g.config("", "retention = \"2d\"", "sda", "sdb"))
	if tr := tiers("sda"); len(tr) != 0 || !strings.Contains(log, "policies_changed=2") {
		t.Errorf("tiers left out: %+v\n%s", tr, log)
	}
}
