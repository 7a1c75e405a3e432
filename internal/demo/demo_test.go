package demo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/protect"
	"github.com/mtconsole/mtconsole/replication/agent"
	"github.com/mtconsole/mtconsole/replication/agent/api"
)

func watchUntilDone(ctx context.Context, cl *api.Client, out io.Writer) error {
	<-ctx.Done()
	return nil
}

func good() Options {
	return Options{Disks: 1, SizeMB: 2, Rate: 200, WriteSize: 4096, CrashEvery: 200 * time.Millisecond,
		AppEvery: 400 * time.Millisecond, Seed: 1, Verify: 2, Version: "test", Watch: watchUntilDone}
}

// Bad options are refused, naming the flag, before anything is made.
func TestRunRefusesBadOptions(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"disks", func(o *Options) { o.Disks = 0 }, "--disks"},
		{"size", func(o *Options) { o.SizeMB = 0 }, "--size"},
		{"rate", func(o *Options) { o.Rate = 0 }, "--rate"},
		{"write size", func(o *Options) { o.WriteSize = 4097 }, "--write-size"},
		{"larger than the disk", func(o *Options) { o.WriteSize = 4 << 20 }, "--write-size"},
		{"negative", func(o *Options) { o.Verify = -1 }, "cannot be negative"},
		{"no view", func(o *Options) { o.Watch = nil }, "neither a console nor a status watch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good()
			o.Dir = filepath.Join(t.TempDir(), "demo")
			tc.edit(&o)
			err := Run(context.Background(), io.Discard, o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
			if _, serr := os.Stat(o.Dir); !os.IsNotExist(serr) {
				t.Errorf("refused options made %s: %v", o.Dir, serr)
			}
		})
	}
}

// A short demo without a console: the status watch sees the agent, the
// tags are listed, and the closing checks pass.
func TestRunChecksAtTheEnd(t *testing.T) {
	o := good()
	o.Dir = t.TempDir()
	o.For = 2 * time.Second
	watched := false
	o.Watch = func(ctx context.Context, cl *api.Client, out io.Writer) error {
		if _, err := cl.Status(ctx); err != nil {
			return err
		}
		watched = true
		return watchUntilDone(ctx, cl, out)
	}
	var out bytes.Buffer
	if err := Run(context.Background(), &out, o); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !watched {
		t.Error("the status watch did not run")
	}
	text := out.String()
	for _, want := range []string{"mtconsole demo in " + o.Dir, "configuration server on 127.0.0.1:", "bit-exact", " 0 differ\n", "kept " + o.Dir} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "DIFFERS") {
		t.Errorf("a check failed:\n%s", text)
	}
	if b, err := os.ReadFile(filepath.Join(o.Dir, "tags.sha256")); err != nil || !strings.Contains(string(b), " disk0 ") {
		t.Errorf("tags.sha256: %v %q", err, b)
	}
	if _, err := os.Stat(filepath.Join(o.Dir, "agent.toml")); err != nil {
		t.Errorf("agent.toml: %v", err)
	}
}

// One more disk than --disks is served and not protected, its empty
// target of the source's size ready; the command the demo prints protects
// it (here through protect.Prepare, MakePlan and Apply, as the CLI does),
// and the closing checks still pass with the new pair in agent.toml.
func TestRunSpareDisk(t *testing.T) {
	o := good()
	o.Dir = t.TempDir()
	// An upper bound: the watch below ends the demo once disk1 is in
	// Differential Sync (a busy machine, or -race, takes its time).
	o.For = 2 * time.Minute
	var planned *protect.Plan
	var perr error
	o.Watch = func(ctx context.Context, cl *api.Client, out io.Writer) error {
		fc, err := agent.LoadConfig(filepath.Join(o.Dir, "agent.toml"))
		if err != nil {
			return err
		}
		if len(fc.Pairs) != 1 || fc.Pairs[0].ID != "disk0" {
			t.Errorf("pairs %+v, want disk0 only", fc.Pairs)
		}
		prep, err := protect.Prepare(protect.Keys{Config: filepath.Join(o.Dir, "agent.toml"), PS: fc.ProcessServer.Address,
			PassphraseFile: filepath.Join(o.Dir, "passphrase"), Group: "disk1", Map: map[string]string{"disk1": filepath.Join(o.Dir, "targets", "disk1.img")},
			AllowFiles: true})
		if err != nil {
			perr = err
			return nil
		}
		d, err := protect.Discover(ctx, prep.Server)
		if err != nil {
			perr = err
			return nil
		}
		req := prep.Request
		req.Disks = d.Disks
		if planned, perr = protect.MakePlan(ctx, filepath.Join(o.Dir, "agent.toml"), req, protect.Options{}); perr == nil {
			_, perr = protect.Apply(ctx, planned, protect.Options{Reload: func(ctx context.Context) ([]string, error) {
				r, err := cl.Reload(ctx)
				return r.Started, err
			}})
		}
		if perr != nil {
			return nil
		}
		// Until the agent has disk1 in Differential Sync: the closing
		// checks then compare it too.
		for ctx.Err() == nil {
			st, err := cl.Status(ctx)
			if err == nil {
				for _, p := range st.Pairs {
					if p.ID == "disk1" && p.State == "Differential Sync" {
						return nil
					}
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		perr = errors.New("disk1 never reached Differential Sync")
		return nil
	}
	var out bytes.Buffer
	err := Run(context.Background(), &out, o)
	if perr != nil {
		t.Fatalf("protecting disk1: %v\n%s", perr, out.String())
	}
	if err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	text := out.String()
	if !strings.Contains(text, "disk1 is served but not protected; protect it with:\n  mtconsole protect --config "+filepath.Join(o.Dir, "agent.toml")+" --ps 127.0.0.1:") ||
		!strings.Contains(text, " --group disk1 --map disk1="+filepath.Join(o.Dir, "targets", "disk1.img")+" --allow-files\n") {
		t.Errorf("no protect command:\n%s", text)
	}
	if !strings.Contains(text, " 0 differ\n") || strings.Contains(text, "DIFFERS") || !strings.Contains(text, "disk1: ") {
		t.Errorf("closing checks:\n%s", text)
	}
	if fi, err := os.Stat(filepath.Join(o.Dir, "targets", "disk1.img")); err != nil || fi.Size() != int64(o.SizeMB)<<20 {
		t.Errorf("disk1's target: %v %v", fi, err)
	}
	if fc, err := agent.LoadConfig(filepath.Join(o.Dir, "agent.toml")); err != nil || len(fc.Pairs) != 2 || fc.Pairs[1].ID != "disk1" {
		t.Errorf("agent.toml after protect: %v %+v", err, fc)
	}
}

// The process server reports the workload's own app-consistent interval,
// in the whole seconds the wire carries.
func TestAppInterval(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, 0}, {400 * time.Millisecond, time.Second}, {20 * time.Second, 20 * time.Second}, {90500 * time.Millisecond, 91 * time.Second},
	} {
		if got := appInterval(tc.in); got != tc.want {
			t.Errorf("appInterval(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
