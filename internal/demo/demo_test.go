package demo

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
