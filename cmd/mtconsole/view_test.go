package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

// view open prints the view and how to attach it; list, status and close
// see it; closing it twice, or asking for a pair and a group, is a usage
// error.
func TestViewCommands(t *testing.T) {
	fx := newFixture(t)
	sock := runningAgent(t, fx)
	out := mustRun(t, "view", "open", "--pair", fxPair, "--point", "latest-time", "--socket", sock)
	for _, want := range []string{"view v1: " + fxPair + " at latest-time, read-only", "nbd+unix:///" + fxPair + "?socket=",
		"nbd-client -unix ", "qemu-img convert -O raw", "nbdfuse -r", "mtconsole view close v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("view open output lacks %q:\n%s", want, out)
		}
	}
	var vs []api.View
	if err := json.Unmarshal([]byte(mustRun(t, "view", "list", "--json", "--socket", sock)), &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].ID != "v1" || vs[0].Pairs[0] != fxPair {
		t.Fatalf("view list --json: %+v", vs)
	}
	if out := mustRun(t, "status", "--socket", sock); !strings.Contains(out, "view v1: "+fxPair+" at latest-time, read-only") {
		t.Errorf("status does not show the view:\n%s", out)
	}
	var st api.Status
	if err := json.Unmarshal([]byte(mustRun(t, "status", "--json", "--socket", sock)), &st); err != nil || len(st.Views) != 1 {
		t.Errorf("status --json views: %+v %v", st.Views, err)
	}
	_, _, err := run(t, "view", "open", "--pair", fxPair, "--point", "latest-time", "--socket", sock)
	wantErr(t, err, false, "already has view v1 open")
	if out := mustRun(t, "view", "close", "v1", "--socket", sock); out != "view v1 closed\n" {
		t.Errorf("view close: %q", out)
	}
	_, _, err = run(t, "view", "close", "v1", "--socket", sock)
	wantErr(t, err, true, "no such view")
	if out := mustRun(t, "view", "list", "--socket", sock); out != "no views open\n" {
		t.Errorf("view list after close: %q", out)
	}
	_, _, err = run(t, "view", "open", "--pair", fxPair, "--group", "g", "--point", "earliest", "--socket", sock)
	wantErr(t, err, true, "--pair P or --group G")
	_, _, err = run(t, "view", "open", "--pair", fxPair, "--point", "earliest", "--overlay-cap", "1G", "--socket", sock)
	wantErr(t, err, true, "--overlay-cap is for --writable")
	_, _, err = run(t, "view", "open", "--pair", fxPair, "--point", "time:2001-01-01T00:00:00Z", "--socket", sock)
	wantErr(t, err, true, "nearest points kept")
}
