package api

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func readRecord(t *testing.T, dir, id string) Job {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatal(err)
	}
	return j
}

// An export cancelled mid-way (the agent told to stop) leaves neither
// DEST nor DEST.partial, and its record says it was interrupted.
func TestExportCancelledLeavesNothing(t *testing.T) {
	a := newAgent(t, "p1")
	jobs := filepath.Join(a.dir, "jobs")
	if err := a.b.OpenJobs(jobs); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(a.dir, "export.img")
	var once sync.Once
	var sawPartial, sawDest bool
	a.b.onProgress = func(string, int64) {
		once.Do(func() {
			sawPartial, sawDest = exists(dest+".partial"), exists(dest)
			a.b.cancel()
		})
	}
	j, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t01", Mode: ModeExport, Dest: dest})
	if err != nil {
		t.Fatal(err)
	}
	if j = waitJob(t, a.cl, j.ID); j.State != JobInterrupted || !strings.HasPrefix(j.Error, "the agent stopped while it ran: ") ||
		!strings.Contains(j.Error, "was removed") {
		t.Fatalf("job %+v", j)
	}
	if !sawPartial || sawDest {
		t.Errorf("mid-export: %s.partial exists %v, %s exists %v; want only the .partial", dest, sawPartial, dest, sawDest)
	}
	for _, p := range []string{dest, dest + ".partial"} {
		if exists(p) {
			t.Errorf("%s left by a cancelled export", p)
		}
	}
	if r := readRecord(t, jobs, j.ID); r.State != JobInterrupted || r.Error != j.Error {
		t.Errorf("record of the cancelled job: %+v", r)
	}
}

// An agent killed mid-export leaves DEST.partial and a job recorded as
// running; the next agent removes the .partial, reports the job
// interrupted under its id and numbers new jobs after it.
func TestAgentKilledMidExport(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	jobs := filepath.Join(a.dir, "jobs")
	if err := a.b.OpenJobs(jobs); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(a.dir, "export.img")
	reached, stop := make(chan struct{}), make(chan struct{})
	var once sync.Once
	// The first agent "dies" at its first chunk: its job goes no further
	// (released only when the test is over).
	a.b.onProgress = func(string, int64) { once.Do(func() { close(reached); <-stop }) }
	t.Cleanup(func() { close(stop) })
	j, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t03", Mode: ModeExport, Dest: dest, Pairs: []string{"p1"}})
	if err != nil {
		t.Fatal(err)
	}
	<-reached
	if !exists(dest+".partial") || exists(dest) {
		t.Fatalf("killed mid-export: want %s.partial and no %s", dest, dest)
	}
	if r := readRecord(t, jobs, j.ID); r.State != JobRunning || r.Dest != dest {
		t.Fatalf("record of the running job: %+v", r)
	}

	// The next agent, on the same jobs directory.
	b2 := FromWriter(a.w, HostInfo{Host: "mt1", Version: "test", Started: fxStart}, a.hub, a.cfgs["p1"], a.cfgs["p2"])
	b2.SetClock(a.b.now)
	t.Cleanup(func() { b2.Close() })
	if err := b2.OpenJobs(jobs); err != nil {
		t.Fatal(err)
	}
	srv, err := Listen(Config{Socket: filepath.Join(a.dir, "run", "agent2.sock")}, b2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cl, err := Dial(srv.Socket())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)

	got, err := cl.Job(ctxT(t), j.ID)
	if err != nil {
		t.Fatalf("GET /v1/jobs/%s after the restart: %v", j.ID, err)
	}
	want := "the agent stopped while it ran; " + dest + ".partial was removed"
	if got.State != JobInterrupted || got.Error != want || got.Dest != dest || got.Mode != ModeExport {
		t.Errorf("job after the restart: state %q error %q, want %q %q", got.State, got.Error, JobInterrupted, want)
	}
	for _, p := range []string{dest, dest + ".partial"} {
		if exists(p) {
			t.Errorf("%s left after the restart", p)
		}
	}
	if r := readRecord(t, jobs, j.ID); r.State != JobInterrupted {
		t.Errorf("record after the restart: %+v", r)
	}
	list, err := cl.Jobs(ctxT(t))
	if err != nil || len(list) != 1 || list[0].ID != j.ID || list[0].State != JobInterrupted {
		t.Errorf("GET /v1/jobs after the restart: %+v, %v", list, err)
	}
	// A new job does not take the old id.
	dest2 := filepath.Join(a.dir, "export2.img")
	j2, err := cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t03", Mode: ModeExport, Dest: dest2, Pairs: []string{"p2"}})
	if err != nil {
		t.Fatal(err)
	}
	if j2.ID == j.ID || j2.ID != "j2" {
		t.Errorf("new job after the restart is %s, the interrupted one %s", j2.ID, j.ID)
	}
	if j2 = waitJob(t, cl, j2.ID); j2.State != JobDone {
		t.Fatalf("job %+v", j2)
	}
	if list, _ := cl.Jobs(ctxT(t)); len(list) != 2 || list[0].ID != j.ID || list[1].ID != j2.ID {
		t.Errorf("jobs: %+v", list)
	}
}

// dirSums is the sha256 of every regular file under dir.
func dirSums(t *testing.T, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = sha256.Sum256(b)
		}
		return nil
	})
	return out
}

// No export may write a pair's own file, whatever it is called.
func TestExportRefusesPairFiles(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	links := filepath.Join(a.dir, "links")
	if err := os.MkdirAll(filepath.Join(links, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(a.cfgs["p2"].Target, filepath.Join(links, "hard.img")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(a.cfgs["p1"].Target, filepath.Join(links, "sym.img")); err != nil {
		t.Fatal(err)
	}
	first := func(dir, suffix string) string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), suffix) {
				names = append(names, e.Name())
			}
		}
		if len(names) == 0 {
			t.Fatalf("no *%s in %s", suffix, dir)
		}
		sort.Strings(names)
		return filepath.Join(dir, names[0])
	}
	undo := first(a.cfgs["p1"].RetentionDir, ".undo")
	redo := first(a.cfgs["p2"].JournalDir, "")
	for _, tc := range []struct {
		name, dest string
		pairs      []string
		want       string
	}{
		{"target", a.cfgs["p1"].Target, []string{"p1"}, "pair p1's target"},
		{"other pair's target, hard link", filepath.Join(links, "hard.img"), []string{"p1"}, "pair p2's target"},
		{"symlink to the target", filepath.Join(links, "sym.img"), []string{"p1"}, "pair p1's target"},
		{"dotdot path to the target", filepath.Join(links, "sub", "..", "..", "p1.img"), []string{"p1"}, "pair p1's target"},
		{"undo segment", undo, []string{"p1"}, filepath.Base(undo) + " in pair p1's retention directory"},
		{"redo segment", redo, []string{"p1"}, filepath.Base(redo) + " in pair p2's journal directory"},
		{"catalogue", filepath.Join(a.cfgs["p2"].RetentionDir, "catalogue.db"), []string{"p1"}, "catalogue.db in pair p2's retention directory"},
		{"new file in a store", filepath.Join(a.cfgs["p1"].RetentionDir, "x.img"), []string{"p1"}, "inside pair p1's retention directory"},
		{"group into a store", a.cfgs["p1"].RetentionDir, nil, "pair p1's retention directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := dirSums(t, a.dir)
			_, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t03", Mode: ModeExport, Dest: tc.dest, Pairs: tc.pairs})
			var ae *APIError
			if !errors.As(err, &ae) || ae.Code != http.StatusBadRequest || ae.Field != "dest" || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("export to %s: %v, want 400 on dest naming %q", tc.dest, err, tc.want)
			}
			after := dirSums(t, a.dir)
			if len(after) != len(before) {
				t.Errorf("files before %d, after %d", len(before), len(after))
			}
			for p, s := range before {
				if after[p] != s {
					t.Errorf("%s changed", p)
				}
			}
		})
	}
}

// A stale DEST.partial is refused and named; it stays for the admin.
func TestExportRefusesStalePartial(t *testing.T) {
	a := newAgent(t, "p1")
	dest := filepath.Join(a.dir, "export.img")
	if err := os.WriteFile(dest+".partial", []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := a.cl.Recover(ctxT(t), RecoverRequest{Point: "tag:t03", Mode: ModeExport, Dest: dest})
	var ae *APIError
	if !errors.As(err, &ae) || ae.Field != "dest" || !strings.Contains(err.Error(), dest+".partial") || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("export with a stale .partial: %v", err)
	}
	if b, _ := os.ReadFile(dest + ".partial"); string(b) != "half" || exists(dest) {
		t.Error("a refused export touched its destination")
	}
}
