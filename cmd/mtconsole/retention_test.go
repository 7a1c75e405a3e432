package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"

	"github.com/mtconsole/mtconsole/replication/journal"
)

func TestRetentionSummary(t *testing.T) {
	fx := newFixture(t)

	t.Run("text", func(t *testing.T) {
		out := mustRun(t, "retention", "summary", "--dir", fx.retDir)
		golden.RequireEqual(t, fx.normalise(out))
		if strings.Contains(out, "Time Range Summary") {
			t.Error("summary without --verbose lists the time ranges")
		}
	})

	t.Run("verbose", func(t *testing.T) {
		out := mustRun(t, "retention", "summary", "--verbose", "--dir", fx.retDir)
		golden.RequireEqual(t, fx.normalise(out))
		// Every write was applied in order and none was a resync write:
		// one exact range from the first write to the last.
		for _, w := range []string{"Time Range Summary", "No.  StartTime(GMT)", "1    " + cdpTime(fx.firstTime) + "  " + cdpTime(fx.lastTime) + "  Exact",
			"Total Ranges:1"} {
			if !strings.Contains(out, w) {
				t.Errorf("summary --verbose does not show %q:\n%s", w, out)
			}
		}
	})

	t.Run("json", func(t *testing.T) {
		out := mustRun(t, "retention", "summary", "--json", "--dir", fx.retDir)
		var keys map[string]json.RawMessage
		if err := json.Unmarshal([]byte(out), &keys); err != nil {
			t.Fatalf("summary --json: %v\n%s", err, out)
		}
		for _, k := range []string{"database", "version", "pair", "target", "state", "log_type", "disk_space_bytes", "data_files",
			"from", "to", "from_seq", "to_seq", "policy", "events_by_application", "ranges"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("summary --json has no %q", k)
			}
		}
		var s struct {
			Database  string         `json:"database"`
			Pair      string         `json:"pair"`
			Target    string         `json:"target"`
			State     string         `json:"state"`
			LogType   string         `json:"log_type"`
			UsedBytes int64          `json:"disk_space_bytes"`
			DataFiles int            `json:"data_files"`
			From      time.Time      `json:"from"`
			To        time.Time      `json:"to"`
			FromSeq   uint64         `json:"from_seq"`
			ToSeq     uint64         `json:"to_seq"`
			Events    map[string]int `json:"events_by_application"`
			Ranges    []struct {
				FirstSeq uint64 `json:"first_seq"`
				LastSeq  uint64 `json:"last_seq"`
				Accuracy string `json:"accuracy"`
			} `json:"ranges"`
		}
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatal(err)
		}
		check := func(what string, got, want any) {
			t.Helper()
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("%s = %v, want %v", what, got, want)
			}
		}
		check("database", s.Database, filepath.Join(fx.retDir, "catalogue.db"))
		check("pair", s.Pair, fxPair)
		check("target", s.Target, fx.target)
		check("state", s.State, journal.StateActive)
		check("log_type", s.LogType, "Roll-Backward")
		check("from", s.From.UTC(), fx.firstTime)
		check("to", s.To.UTC(), fx.lastTime)
		check("from_seq", s.FromSeq, 0)
		check("to_seq", s.ToSeq, fx.lastSeq)
		check("events_by_application", s.Events, fx.appCounts())
		check("ranges", len(s.Ranges), 1)
		if len(s.Ranges) == 1 {
			check("range", fmt.Sprint(s.Ranges[0].FirstSeq, s.Ranges[0].LastSeq, s.Ranges[0].Accuracy), fmt.Sprint(0, fx.lastSeq, journal.Exact))
		}
		if s.UsedBytes <= 0 || s.DataFiles < 2 {
			t.Errorf("disk_space_bytes %d, data_files %d: want the undo data of %d writes in several segments", s.UsedBytes, s.DataFiles, fxWrites)
		}
	})
}

// eventRows returns the Event column of an events table, top to bottom,
// after checking the header and the total.
func eventRows(t *testing.T, out string) []string {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 {
		t.Fatalf("events output too short:\n%s", out)
	}
	if got, want := strings.Fields(lines[0]), []string{"No.", "TimeStamp(GMT)", "Accuracy", "Application", "Event"}; len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("events header %q, want the columns %q first", lines[0], want)
	}
	rows := lines[1 : len(lines)-1]
	if got, want := lines[len(lines)-1], fmt.Sprintf("Total Events:%d", len(rows)); got != want {
		t.Errorf("last line %q, want %q", got, want)
	}
	var names []string
	for i, l := range rows {
		// No. | date | time | accuracy | application | event | locked
		f := strings.Fields(l)
		if len(f) != 7 || f[0] != fmt.Sprint(i+1) {
			t.Fatalf("row %d: %q", i+1, l)
		}
		names = append(names, f[5])
	}
	return names
}

func (fx *fixture) tagNames(keep func(fxTag) bool) []string {
	var names []string
	for _, tg := range fx.tags {
		if keep == nil || keep(tg) {
			names = append(names, tg.name)
		}
	}
	return names
}

func TestRetentionEvents(t *testing.T) {
	fx := newFixture(t)
	newestFirst := fx.tagNames(nil)
	slices.Reverse(newestFirst)

	t.Run("table", func(t *testing.T) {
		out := mustRun(t, "retention", "events", "--dir", fx.retDir)
		golden.RequireEqual(t, out)
		if got := eventRows(t, out); !slices.Equal(got, newestFirst) {
			t.Errorf("events (newest first) %q, want %q", got, newestFirst)
		}
		if want := fmt.Sprintf("Total Events:%d\n", len(fx.tags)); !strings.HasSuffix(out, want) {
			t.Errorf("events does not end with %q", want)
		}
	})

	t.Run("app", func(t *testing.T) {
		want := fx.tagNames(func(tg fxTag) bool { return tg.app == journal.AppFS })
		slices.Reverse(want)
		for _, app := range []string{"FS", "fs"} {
			out := mustRun(t, "retention", "events", "--app", app, "--dir", fx.retDir)
			if got := eventRows(t, out); !slices.Equal(got, want) {
				t.Errorf("--app %s: %q, want %q", app, got, want)
			}
		}
		out := mustRun(t, "retention", "events", "--app", "SQL", "--dir", fx.retDir)
		if got := eventRows(t, out); len(got) != 0 {
			t.Errorf("--app SQL: %q, want none", got)
		}
	})

	t.Run("sort", func(t *testing.T) {
		byName := fx.tagNames(nil)
		sort.Strings(byName)
		// a stable sort of the newest-first list by application
		byApp := slices.Clone(newestFirst)
		app := map[string]string{}
		for _, tg := range fx.tags {
			app[tg.name] = tg.app
		}
		sort.SliceStable(byApp, func(i, j int) bool { return app[byApp[i]] < app[byApp[j]] })
		for _, tc := range []struct {
			sort string
			want []string
		}{
			{"time", newestFirst},
			{"event", byName},
			{"app", byApp},
			{"accuracy", newestFirst}, // all Exact: the order stays
		} {
			out := mustRun(t, "retention", "events", "--sort", tc.sort, "--dir", fx.retDir)
			if got := eventRows(t, out); !slices.Equal(got, tc.want) {
				t.Errorf("--sort %s: %q, want %q", tc.sort, got, tc.want)
			}
		}
		if slices.Equal(byName, newestFirst) || slices.Equal(byName, fx.tagNames(nil)) {
			t.Fatal("fixture: tag names sort like times; --sort event proves nothing")
		}
	})

	t.Run("json", func(t *testing.T) {
		out := mustRun(t, "retention", "events", "--json", "--dir", fx.retDir)
		var tags []journal.Tag
		if err := json.Unmarshal([]byte(out), &tags); err != nil {
			t.Fatalf("events --json: %v\n%s", err, out)
		}
		if len(tags) != len(fx.tags) {
			t.Fatalf("events --json: %d tags, want %d", len(tags), len(fx.tags))
		}
		for i, got := range tags {
			want := fx.tags[len(fx.tags)-1-i]
			if got.Name != want.name || got.App != want.app || got.Seq != want.seq || !got.Time.Equal(want.time) ||
				got.ID != "id-"+want.name || got.Accuracy != journal.Exact || got.Locked {
				t.Errorf("tag %d: %+v, want %+v", i, got, want)
			}
		}
		out = mustRun(t, "retention", "events", "--json", "--app", "SQL", "--dir", fx.retDir)
		if strings.TrimSpace(out) != "[]" {
			t.Errorf("events --json with no match: %q, want []", out)
		}
	})

	t.Run("namevalue", func(t *testing.T) {
		out := mustRun(t, "retention", "events", "--namevalue", "--dir", fx.retDir)
		tg := fx.tags[len(fx.tags)-1]
		for _, w := range []string{"No.=1\n", "Event=" + tg.name + "\n", "Application=" + tg.app + "\n", "TimeStamp(GMT)=" + cdpTime(tg.time) + "\n",
			"Identifier=id-" + tg.name + "\n", "lockedstatus=unlocked\n", fmt.Sprintf("Total Events:%d\n", len(fx.tags))} {
			if !strings.Contains(out, w) {
				t.Errorf("events --namevalue does not show %q", w)
			}
		}
	})

	t.Run("bad sort", func(t *testing.T) {
		_, _, err := run(t, "retention", "events", "--sort", "size", "--dir", fx.retDir)
		wantErr(t, err, true, `"size"`, "time, app, event or accuracy")
	})
}

func TestRetentionRecover(t *testing.T) {
	fx := newFixture(t)
	out := t.TempDir()
	mid := fx.tags[len(fx.tags)/2]
	latestFS := fx.tagNames(func(tg fxTag) bool { return tg.app == journal.AppFS })

	for _, tc := range []struct {
		point string
		want  []byte
	}{
		{"tag:" + fx.tags[0].name, fx.images[fx.tags[0].name]},
		{"tag:" + mid.name, fx.images[mid.name]},
		{"tag:id-" + mid.name, fx.images[mid.name]}, // by id
		{"latest-tag", fx.images[fx.tags[len(fx.tags)-1].name]},
		{"latest-app-consistent", fx.images[latestFS[len(latestFS)-1]]},
		{"latest-time", fx.final},
		{"earliest", fx.initial},
	} {
		t.Run(tc.point, func(t *testing.T) {
			dest := filepath.Join(out, strings.ReplaceAll(tc.point, ":", "_")+".img")
			stdout := mustRun(t, "retention", "recover", "--dir", fx.retDir, "--point", tc.point, "--dest", dest)
			if !strings.Contains(stdout, "Done:") {
				t.Errorf("recover printed:\n%s", stdout)
			}
			got, err := os.ReadFile(dest)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("the image recovered at %s differs from the source at that point", tc.point)
			}
		})
	}
	if !bytes.Equal(fx.targetBytes(t), fx.final) {
		t.Fatal("recover changed the target")
	}

	t.Run("json", func(t *testing.T) {
		dest := filepath.Join(out, "json.img")
		stdout := mustRun(t, "retention", "recover", "--json", "--dir", fx.retDir, "--point", "tag:"+mid.name, "--dest", dest)
		var res struct {
			Point struct {
				Pair string `json:"pair"`
				Seq  uint64 `json:"seq"`
				Tag  struct {
					Name string `json:"name"`
				} `json:"tag"`
			} `json:"point"`
			Copied   int64 `json:"copied_bytes"`
			Restored int64 `json:"restored_bytes"`
		}
		if err := json.Unmarshal([]byte(stdout), &res); err != nil {
			t.Fatalf("recover --json: %v\n%s", err, stdout)
		}
		if res.Point.Pair != fxPair || res.Point.Seq != mid.seq || res.Point.Tag.Name != mid.name || res.Restored == 0 || res.Copied+res.Restored != fxSize {
			t.Errorf("recover --json: %+v", res)
		}
	})

	t.Run("dest exists", func(t *testing.T) {
		dest := filepath.Join(out, "exists.img")
		old := []byte("an image someone cares about")
		if err := os.WriteFile(dest, old, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := run(t, "retention", "recover", "--dir", fx.retDir, "--point", "tag:"+mid.name, "--dest", dest)
		wantErr(t, err, false, dest, "exists", "--force")
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, old) {
			t.Fatal("recover without --force changed an existing --dest")
		}
		mustRun(t, "retention", "recover", "--force", "--dir", fx.retDir, "--point", "tag:"+mid.name, "--dest", dest)
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, fx.images[mid.name]) {
			t.Fatal("recover --force: the image differs from the source at the tag")
		}
	})

	noCatalogue := t.TempDir()
	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  []string
	}{
		{"bad point", []string{"--dir", fx.retDir, "--point", "yesterday", "--dest", filepath.Join(out, "x")}, true,
			[]string{"--point", `"yesterday"`, "latest-tag", "latest-time", "latest-app-consistent", "earliest", "tag:NAME", "time:RFC3339"}},
		{"bad time", []string{"--dir", fx.retDir, "--point", "time:noon", "--dest", filepath.Join(out, "x")}, true, []string{"RFC 3339"}},
		{"unknown tag", []string{"--dir", fx.retDir, "--point", "tag:no-such-tag", "--dest", filepath.Join(out, "x")}, false,
			[]string{`"no-such-tag"`, "mtconsole retention events"}},
		{"before the window", []string{"--dir", fx.retDir, "--point", "time:2026-11-25T00:00:00Z", "--dest", filepath.Join(out, "x")}, false,
			[]string{"earliest recoverable point"}},
		{"no dir", []string{"--point", "latest-tag", "--dest", filepath.Join(out, "x")}, true, []string{"--dir is required"}},
		{"no catalogue", []string{"--dir", noCatalogue, "--dest", filepath.Join(out, "x")}, false, []string{noCatalogue, "catalogue.db"}},
		{"no dest", []string{"--dir", fx.retDir}, true, []string{"--dest is required"}},
		{"unknown flag", []string{"--dir", fx.retDir, "--dest", filepath.Join(out, "x"), "--frobnicate"}, true, []string{"--frobnicate"}},
		{"argument", []string{"--dir", fx.retDir, "--dest", filepath.Join(out, "x"), "extra"}, true, []string{"extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(t, append([]string{"retention", "recover"}, tc.args...)...)
			wantErr(t, err, tc.usage, tc.want...)
			if _, err := os.Stat(filepath.Join(out, "x")); err == nil {
				t.Error("a failed recover left a --dest file behind")
			}
		})
	}
}

func TestRetentionRollback(t *testing.T) {
	fx := newFixture(t)
	tg := fx.tags[len(fx.tags)/2]

	t.Run("refuses without --yes off a terminal", func(t *testing.T) {
		devNull, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer devNull.Close()
		withStdin(t, devNull, func() {
			_, _, err = run(t, "retention", "rollback", "--dir", fx.retDir, "--point", "tag:"+tg.name)
		})
		wantErr(t, err, true, "--yes")
		if !bytes.Equal(fx.targetBytes(t), fx.final) {
			t.Fatal("a refused rollback changed the target")
		}
		if out := mustRun(t, "retention", "summary", "--dir", fx.retDir); !strings.Contains(out, "State: Active\n") {
			t.Errorf("a refused rollback changed the pair's state:\n%s", out)
		}
	})

	t.Run("rolls back", func(t *testing.T) {
		out := mustRun(t, "retention", "rollback", "--yes", "--dir", fx.retDir, "--point", "tag:"+tg.name)
		if !strings.Contains(out, "Rolled back "+fx.target+" to tag "+tg.name) {
			t.Errorf("rollback printed:\n%s", out)
		}
		if !bytes.Equal(fx.targetBytes(t), fx.images[tg.name]) {
			t.Fatalf("after rollback to %s the target differs from the source at that tag", tg.name)
		}
		out = mustRun(t, "retention", "summary", "--dir", fx.retDir)
		if !strings.Contains(out, "State: Ended (rolled back to tag "+tg.name) {
			t.Errorf("summary after rollback:\n%s", out)
		}
	})

	t.Run("ended pair refuses another rollback", func(t *testing.T) {
		other := fx.tags[0]
		_, _, err := run(t, "retention", "rollback", "--yes", "--dir", fx.retDir, "--point", "tag:"+other.name)
		wantErr(t, err, false, fxPair, "ended")
		if !bytes.Equal(fx.targetBytes(t), fx.images[tg.name]) {
			t.Fatal("a refused second rollback changed the target")
		}
	})
}

func TestRetentionLock(t *testing.T) {
	fx := newFixture(t)
	tg := fx.tags[2]
	locked := func() []string {
		t.Helper()
		return eventRows(t, mustRun(t, "retention", "events", "--locked", "--dir", fx.retDir))
	}

	out := mustRun(t, "retention", "lock", tg.name, "--dir", fx.retDir)
	if want := fmt.Sprintf("locked %s (sequence %d, %s UTC)\n", tg.name, tg.seq, cdpTime(tg.time)); out != want {
		t.Errorf("lock printed %q, want %q", out, want)
	}
	if got := locked(); !slices.Equal(got, []string{tg.name}) {
		t.Errorf("events --locked after lock %s: %q", tg.name, got)
	}
	var tags []journal.Tag
	if err := json.Unmarshal([]byte(mustRun(t, "retention", "events", "--json", "--dir", fx.retDir)), &tags); err != nil {
		t.Fatal(err)
	}
	for _, x := range tags {
		if x.Locked != (x.Name == tg.name) {
			t.Errorf("tag %s: locked %v", x.Name, x.Locked)
		}
	}

	mustRun(t, "retention", "unlock", "id-"+tg.name, "--dir", fx.retDir) // by id
	if got := locked(); len(got) != 0 {
		t.Errorf("events --locked after unlock: %q, want none", got)
	}

	for _, tc := range []struct {
		name  string
		args  []string
		usage bool
		want  []string
	}{
		{"unknown tag", []string{"lock", "no-such-tag", "--dir", fx.retDir}, false, []string{`"no-such-tag"`}},
		{"unlock unknown tag", []string{"unlock", "no-such-tag", "--dir", fx.retDir}, false, []string{`"no-such-tag"`}},
		{"no tag", []string{"lock", "--dir", fx.retDir}, true, []string{"1 arg"}},
		{"two tags", []string{"lock", tg.name, fx.tags[0].name, "--dir", fx.retDir}, true, []string{"1 arg"}},
		{"no dir", []string{"lock", tg.name}, true, []string{"--dir is required"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(t, append([]string{"retention"}, tc.args...)...)
			wantErr(t, err, tc.usage, tc.want...)
		})
	}
	if got := locked(); len(got) != 0 {
		t.Errorf("failed lock commands locked %q", got)
	}
}

func TestRetentionNoDir(t *testing.T) {
	empty := t.TempDir()
	for _, sub := range []string{"summary", "events", "rollback"} {
		t.Run(sub, func(t *testing.T) {
			_, _, err := run(t, "retention", sub)
			wantErr(t, err, true, "--dir is required")
			_, _, err = run(t, "retention", sub, "--dir", empty)
			wantErr(t, err, false, empty, "catalogue.db")
		})
	}
}

func TestWindowText(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{24 * time.Hour, "1 day"},
		{72 * time.Hour, "3 days"},
		{time.Hour, "1 hour"},
		{36 * time.Hour, "36 hours"},
		{90 * time.Minute, "1h30m0s"},
	} {
		if got := windowText(tc.d); got != tc.want {
			t.Errorf("windowText(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestCdpTime(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 11, 26, 10, 0, 1, 234_567_891, time.UTC), "2026/11/26 10:00:01:234:567:891"},
		{time.Date(2026, 11, 26, 11, 0, 0, 5, time.FixedZone("CET", 3600)), "2026/11/26 10:00:00:000:000:005"},
		{time.Time{}, "-"},
	} {
		if got := cdpTime(tc.t); got != tc.want {
			t.Errorf("cdpTime(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}
