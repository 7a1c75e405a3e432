package main

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/protect/console"
	"github.com/mtconsole/mtconsole/replication/agent/api"
	"github.com/mtconsole/mtconsole/tui"
)

// The console's unprotect on package protect, on a temp agent.toml: the
// plan names the pairs and the diff, a name not protected or the last
// pairs are refused with the reason, and the apply with no agent writes
// the file (as before protect; .bak the protected one), leaves the
// target as it is, and says the agent reads it when it starts; the
// reload is asked with the purge chosen.
func TestConsoleProtectorUnprotect(t *testing.T) {
	h, before, protected, target := protectedHost(t)
	ctx := context.Background()
	type reload struct {
		socket string
		purge  bool
	}
	var reloads []reload
	c := &console.Protector{Config: h.conf, Socket: h.sock,
		ReloadRemove: func(_ context.Context, socket string, purge bool) ([]string, error) {
			reloads = append(reloads, reload{socket, purge})
			return nil, api.ErrNoAgent
		}}
	if _, err := c.PlanRemove(ctx, "nope"); !errors.Is(err, protect.ErrNotProtected) {
		t.Fatalf("nope: %v, want ErrNotProtected", err)
	}
	p, err := c.PlanRemove(ctx, "web01")
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "web01" || len(p.Pairs) != 1 || !strings.Contains(p.Summary, "unprotect web01: 1 pair leaves") || !strings.Contains(p.Diff, "-[[group]]") {
		t.Fatalf("plan %+v", p)
	}
	if now, _ := os.ReadFile(h.conf); string(now) != string(protected) {
		t.Fatal("PlanRemove wrote agent.toml")
	}
	res, err := c.ApplyRemove(ctx, p, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(reloads, []reload{{h.sock, true}}) {
		t.Fatalf("reloads %+v, want one on %s with purge", reloads, h.sock)
	}
	if res.Agent || res.Path != h.conf || res.Backup != h.conf+".bak" || !strings.Contains(res.Note, "no agent answers") {
		t.Fatalf("result %+v", res)
	}
	if now, _ := os.ReadFile(h.conf); string(now) != string(before) {
		t.Errorf("after unprotect:\n%s\nwant as before protect:\n%s", now, before)
	}
	if bak, _ := os.ReadFile(h.conf + ".bak"); string(bak) != string(protected) {
		t.Error("agent.toml.bak is not the file before unprotect")
	}
	if now, _ := os.ReadFile(h.big); string(now) != string(target) {
		t.Error("the target changed")
	}
	// What is left is the last pair: it can go too (the agent waits for
	// the next protection).
	if p, err := c.PlanRemove(ctx, "old"); err != nil || len(p.Pairs) != 1 {
		t.Fatalf("last pair: %+v, %v", p, err)
	}
	if _, err := c.PlanRemove(ctx, "nope"); !errors.Is(err, protect.ErrNotProtected) {
		t.Fatalf("unknown name: %v", err)
	}
	// A plan that is not a removal is not applied.
	if _, err := c.ApplyRemove(ctx, &tui.RemovePlan{Name: "x"}, false); err == nil {
		t.Fatal("applied a plan without its implementation")
	}
}
