package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// The fixture's workload: fixed seed, fixed clock, fixed tag names, so
// that everything but the temporary directory is the same on every run.
const (
	fxSize     = 256 << 10
	fxWrites   = 120
	fxTagEvery = 10
	fxPair     = "p1"
)

// fxApps is the application of the fixture's tags, in turn.
var fxApps = []string{journal.AppCrash, journal.AppFS, journal.AppCrash, journal.AppUser}

type fxTag struct {
	name, app string
	seq       uint64
	time      time.Time
}

// fixture is a pair that replicated a workload into real files and was
// closed: its retention store is ready for `mtconsole retention`.
type fixture struct {
	dir     string // the temporary directory everything lives in
	retDir  string
	target  string
	initial []byte // the source (and target) before the first write
	final   []byte // the source after the last write
	tags    []fxTag
	images  map[string][]byte // the source image at each tag
	// the pair's window: first and last write
	firstTime, lastTime time.Time
	lastSeq             uint64
	// now is the fixture's clock, an hour after its first write: every
	// writer and agent over the fixture must use it, not the wall clock,
	// or the 24 h window prunes the fixture's tags as the calendar moves on.
	now func() time.Time
}

// newFixture replicates fxWrites random writes with a tag every fxTagEvery
// writes through writer.OpenPair, keeping a copy of the source at every
// tag, then drains and closes the pair.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	fx := &fixture{dir: dir, retDir: filepath.Join(dir, "retention"), target: filepath.Join(dir, "target.img"),
		images: map[string][]byte{}}
	rng := rand.New(rand.NewSource(7))
	src := make([]byte, fxSize)
	rng.Read(src)
	fx.initial = bytes.Clone(src)
	if err := os.WriteFile(fx.target, src, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	fx.now = func() time.Time { return start.Add(time.Hour) }
	clock := start
	p, _, err := writer.OpenPair(writer.PairConfig{ID: fxPair, Target: fx.target, JournalDir: filepath.Join(dir, "journal"),
		RetentionDir: fx.retDir, Policy: journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge},
		JournalSegmentSize: 1 << 20, UndoSegmentSize: 128 << 10},
		writer.Options{Now: fx.now})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if p != nil {
			p.Close()
		}
	}()
	for n := 1; n <= fxWrites; n++ {
		// odd nanoseconds, so that cdpTime's every field shows
		clock = clock.Add(1_234_567 * time.Nanosecond)
		blocks := 1 + rng.Intn(32)
		data := make([]byte, blocks*512)
		rng.Read(data)
		off := int64(rng.Intn(fxSize/512-blocks+1)) * 512
		copy(src[off:], data)
		if n == 1 {
			fx.firstTime = clock
		}
		fx.lastTime = clock
		if err := p.Write(p.Next(), off, clock, data, 0); err != nil {
			t.Fatal(err)
		}
		if n%fxTagEvery == 0 {
			app := fxApps[len(fx.tags)%len(fxApps)]
			tg := fxTag{name: fmt.Sprintf("%s-%02d", strings.ToLower(app), len(fx.tags)+1), app: app, seq: p.Next(), time: clock}
			if err := p.Tag(tg.seq, journal.TagInfo{Name: tg.name, App: app, ID: "id-" + tg.name, Time: clock}); err != nil {
				t.Fatal(err)
			}
			fx.tags = append(fx.tags, tg)
			fx.images[tg.name] = bytes.Clone(src)
		}
	}
	fx.final = src
	fx.lastSeq = p.Next() - 1
	if err := p.Sync(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	err = p.Close()
	p = nil
	if err != nil {
		t.Fatal(err)
	}
	if got := fx.targetBytes(t); !bytes.Equal(got, fx.final) {
		t.Fatal("fixture: the target differs from the source after draining")
	}
	return fx
}

func (fx *fixture) targetBytes(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(fx.target)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// appCounts is the number of fixture tags per application.
func (fx *fixture) appCounts() map[string]int {
	m := map[string]int{}
	for _, tg := range fx.tags {
		m[tg.app]++
	}
	return m
}

// normalise makes output comparable across runs: the temporary
// directory becomes $DIR.
func (fx *fixture) normalise(s string) string { return strings.ReplaceAll(s, fx.dir, "$DIR") }

// run executes mtconsole with args as main would, and returns what it
// printed and the error main would turn into an exit code.
func run(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err = root.Execute()
	return out.String(), errOut.String(), err
}

// mustRun is run for commands that must succeed.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := run(t, args...)
	if err != nil {
		t.Fatalf("mtconsole %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}

// isUsage reports whether main would exit with exitUsage for err.
func isUsage(err error) bool {
	var ue usageError
	return errors.As(err, &ue)
}

// wantErr checks that err is an error of the right kind (usage or not)
// whose message holds every one of want.
func wantErr(t *testing.T, err error, usage bool, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", want)
	}
	if isUsage(err) != usage {
		t.Errorf("error %q: usage error = %v, want %v (exit code %d, want %d)", err, isUsage(err), usage,
			map[bool]int{true: exitUsage, false: exitError}[isUsage(err)], map[bool]int{true: exitUsage, false: exitError}[usage])
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

// withStdin runs fn with os.Stdin replaced by f: the commands read the
// process's stdin directly.
func withStdin(t *testing.T, f *os.File, fn func()) {
	t.Helper()
	old := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = old }()
	fn()
}
