package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/hostconfig"
	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// The damage matrix of issue 12: every file a master target keeps, every
// kind of damage, every operation a user runs on it. The outcome is a
// correct result or an error that names the damaged file — never a
// panic, a deleted segment, a changed target, a wrong image reported
// right, or an acknowledged write dropped without an error.
//
// go test -run TestDamageMatrix runs a seeded subset (scripts/test.sh);
// -damage.full runs every case (scripts/soak.sh). -damage.seed repeats a
// subset.
var (
	damageFull = flag.Bool("damage.full", false, "run the whole damage matrix")
	damageSeed = flag.Int64("damage.seed", 1, "seed of the damage matrix's offsets and sizes")
)

const (
	dmSize   = 256 << 10
	dmWrites = 240 // applied
	dmTail   = 40  // journaled and acknowledged, not applied (the pair paused)
	dmTagAt  = 3   // the tag the recover and rollback cases ask for
)

// dmPair is one pair built for a case, with what it must hold.
type dmPair struct {
	id, dir, target, journal, retention string
	images                              map[string][]byte // tag → source at it
	tags                                []string
	final                               []byte // the source after every acknowledged write
	applied                             []byte // the target as built (the tail not applied)
	acked                               uint64
}

func (p *dmPair) cfg() writer.PairConfig {
	return writer.PairConfig{ID: p.id, Target: p.target, JournalDir: p.journal, RetentionDir: p.retention,
		Policy:             journal.Policy{Window: 24 * time.Hour, OnFull: journal.Purge},
		JournalSegmentSize: 128 << 10, UndoSegmentSize: 32 << 10}
}

var dmNow = func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }

// buildDamagePair writes a pair with several undo segments, tags, and a
// journaled tail the applier has not reached.
func buildDamagePair(t *testing.T, dir, id string, seed int64) *dmPair {
	t.Helper()
	p := &dmPair{id: id, dir: dir, target: filepath.Join(dir, id+".img"), journal: filepath.Join(dir, "journal", id),
		retention: filepath.Join(dir, "retention", id), images: map[string][]byte{}}
	src := make([]byte, dmSize)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.target, src, 0o600); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(seed))
	w, _, err := writer.OpenPair(p.cfg(), writer.Options{Now: dmNow})
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	write := func() {
		clock = clock.Add(3 * time.Millisecond)
		data := make([]byte, 4096*(1+rng.Intn(4)))
		rng.Read(data)
		off := int64(rng.Intn((dmSize-len(data))/4096+1)) * 4096
		copy(src[off:], data)
		if err := w.Write(w.Next(), off, clock, data, 0); err != nil {
			t.Fatal(err)
		}
	}
	for n := 1; n <= dmWrites; n++ {
		write()
		if n%30 == 0 {
			name := fmt.Sprintf("tag-%02d", len(p.tags)+1)
			if err := w.Tag(w.Next(), journal.TagInfo{Name: name, App: journal.AppCrash, ID: id + "-" + name, Time: clock}); err != nil {
				t.Fatal(err)
			}
			p.tags = append(p.tags, name)
			p.images[name] = bytes.Clone(src)
		}
	}
	w.Sync()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	if err := w.Pause("damage matrix: the tail stays journaled"); err != nil {
		t.Fatal(err)
	}
	p.applied = bytes.Clone(src)
	for range dmTail {
		write()
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	p.acked = w.Durable()
	p.final = src
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// files lists a pair's files of one kind.
func (p *dmPair) files(kind string) []string {
	var dir, suffix string
	switch kind {
	case "redo segment":
		dir, suffix = p.journal, ".redo"
	case "undo segment":
		dir, suffix = p.retention, ".undo"
	case "catalogue":
		return []string{filepath.Join(p.retention, "catalogue.db")}
	}
	names, _ := os.ReadDir(dir)
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n.Name(), suffix) {
			out = append(out, filepath.Join(dir, n.Name()))
		}
	}
	sort.Strings(out)
	return out
}

// segments is every retention segment with its size: none may go, and
// none may shrink, except by the case's own damage. (Redo segments are
// reused once applied: they come and go.)
func (p *dmPair) segments() map[string]int64 {
	m := map[string]int64{}
	for _, f := range p.files("undo segment") {
		if fi, err := os.Stat(f); err == nil {
			m[f] = fi.Size()
		}
	}
	return m
}

type damage struct {
	kind string // missing, zero length, truncated, bytes flipped, another pair's
	at   int64  // truncated: the size; flipped: the offset
}

func (d damage) String() string {
	switch d.kind {
	case "truncated":
		return fmt.Sprintf("truncated to %d", d.at)
	case "bytes flipped":
		return fmt.Sprintf("64 bytes flipped at %d", d.at)
	}
	return d.kind
}

// apply damages file; other is the same kind of file of another pair.
func (d damage) apply(t *testing.T, file, other string) {
	t.Helper()
	var err error
	switch d.kind {
	case "missing":
		err = os.Remove(file)
	case "zero length":
		err = os.Truncate(file, 0)
	case "truncated":
		err = os.Truncate(file, d.at)
	case "bytes flipped":
		var b []byte
		if b, err = os.ReadFile(file); err == nil {
			for i := d.at; i < d.at+64 && i < int64(len(b)); i++ {
				b[i] ^= 0xa5
			}
			err = os.WriteFile(file, b, 0o600)
		}
	case "another pair's":
		var b []byte
		if b, err = os.ReadFile(other); err == nil {
			err = os.WriteFile(file, b, 0o600)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
}

// damages are the cases for a file of size n: all of them with full,
// else one of each (seeded).
func damages(rng *rand.Rand, n int64, pages bool, full bool) []damage {
	out := []damage{{kind: "missing"}, {kind: "zero length"}, {kind: "another pair's"}}
	sizes, offs := 1, 1
	if full {
		sizes, offs = 6, 8
	}
	for range sizes {
		out = append(out, damage{kind: "truncated", at: 1 + rng.Int63n(max(n-1, 1))})
	}
	if pages && full {
		// every bbolt page, the meta pages among them
		for off := int64(0); off < n; off += 4096 {
			out = append(out, damage{kind: "bytes flipped", at: off + 16})
		}
	}
	for range offs {
		out = append(out, damage{kind: "bytes flipped", at: rng.Int63n(max(n-64, 1))})
	}
	return out
}

// outcome of one case.
type outcome string

const (
	ocCorrect  outcome = "correct"
	ocNamed    outcome = "named error"
	ocUnnamed  outcome = "error not naming the file"
	ocPanic    outcome = "PANIC"
	ocDeleted  outcome = "SEGMENT DELETED"
	ocTarget   outcome = "TARGET CHANGED"
	ocWrong    outcome = "WRONG RESULT"
	ocLostAck  outcome = "ACKED WRITE LOST"
	ocLeftDest outcome = "PARTIAL DEST LEFT"
)

// guarded runs fn, turning a panic (a fault in mapped memory too) into
// one.
func guarded(fn func() error) (err error, panicked string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				panicked = fmt.Sprint(r)
			}
		}()
		err = fn()
	}()
	<-done
	return err, panicked
}

func names(err error, file string) bool {
	return strings.Contains(err.Error(), file) || strings.Contains(err.Error(), filepath.Base(file)) && strings.Contains(err.Error(), filepath.Base(filepath.Dir(file)))
}

// dmOps are the operations: each returns the outcome.
var dmOps = []struct {
	name string
	run  func(t *testing.T, p *dmPair, file string) (outcome, string)
}{
	{"agent start", func(t *testing.T, p *dmPair, file string) (outcome, string) {
		var w *writer.Pair
		err, pan := guarded(func() error {
			var err error
			w, _, err = writer.OpenPair(p.cfg(), writer.Options{Now: dmNow})
			if err != nil {
				return err
			}
			if err := w.Resume(); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := w.Drain(ctx); err != nil {
				return err
			}
			return w.Err()
		})
		if w != nil {
			defer w.Close()
		}
		if pan != "" {
			return ocPanic, pan
		}
		if err != nil {
			return errOutcome(err, file), err.Error()
		}
		if d := w.Durable(); d < p.acked {
			return ocLostAck, fmt.Sprintf("durable %d after start, %d were acknowledged", d, p.acked)
		}
		w.Close()
		if got, _ := os.ReadFile(p.target); !bytes.Equal(got, p.final) {
			return ocWrong, "the target is not the source after every acknowledged write"
		}
		return ocCorrect, ""
	}},
	{"retention summary", func(t *testing.T, p *dmPair, file string) (outcome, string) {
		var out string
		err, pan := guarded(func() error {
			var err error
			out, _, err = run(t, "retention", "summary", "--dir", p.retention, "--verbose")
			return err
		})
		if pan != "" {
			return ocPanic, pan
		}
		if err != nil {
			return errOutcome(err, file), err.Error()
		}
		if !strings.Contains(out, p.id) {
			return ocWrong, "the summary does not name the pair"
		}
		return ocCorrect, ""
	}},
	{"recover", func(t *testing.T, p *dmPair, file string) (outcome, string) {
		tag := p.tags[dmTagAt]
		dest := filepath.Join(p.dir, "recovered.img")
		err, pan := guarded(func() error {
			_, _, err := run(t, "retention", "recover", "--dir", p.retention, "--point", "tag:"+tag, "--dest", dest)
			return err
		})
		if pan != "" {
			return ocPanic, pan
		}
		if err != nil {
			if _, serr := os.Stat(dest); serr == nil {
				return ocLeftDest, err.Error()
			}
			if _, serr := os.Stat(dest + ".partial"); serr == nil {
				return ocLeftDest, err.Error()
			}
			return errOutcome(err, file), err.Error()
		}
		if got, _ := os.ReadFile(dest); !bytes.Equal(got, p.images[tag]) {
			return ocWrong, "the image is not the source at " + tag
		}
		return ocCorrect, ""
	}},
	{"rollback", func(t *testing.T, p *dmPair, file string) (outcome, string) {
		tag := p.tags[dmTagAt]
		err, pan := guarded(func() error {
			_, _, err := run(t, "retention", "rollback", "--dir", p.retention, "--point", "tag:"+tag, "--yes")
			return err
		})
		if pan != "" {
			return ocPanic, pan
		}
		got, _ := os.ReadFile(p.target)
		if err != nil {
			if !bytes.Equal(got, p.applied) {
				return ocTarget, err.Error()
			}
			return errOutcome(err, file), err.Error()
		}
		if !bytes.Equal(got, p.images[tag]) {
			return ocWrong, "the target is not the source at " + tag
		}
		return ocCorrect, ""
	}},
}

func errOutcome(err error, file string) outcome {
	if names(err, file) {
		return ocNamed
	}
	return ocUnnamed
}

type dmRow struct {
	kind, op string
	count    map[outcome]int
}

func TestDamageMatrix(t *testing.T) {
	if testing.Short() {
		t.Skip("the damage matrix builds a pair per case")
	}
	rng := rand.New(rand.NewSource(*damageSeed))
	rows := map[string]*dmRow{}
	var order []string
	var bad []string
	record := func(kind, op string, d damage, oc outcome, detail string) {
		k := kind + "\x00" + op
		r := rows[k]
		if r == nil {
			r = &dmRow{kind: kind, op: op, count: map[outcome]int{}}
			rows[k] = r
			order = append(order, k)
		}
		r.count[oc]++
		if oc != ocCorrect && oc != ocNamed {
			bad = append(bad, fmt.Sprintf("%s, %s, %s: %s: %s", kind, d, op, oc, detail))
		}
	}
	base := t.TempDir()
	n := 0
	for _, kind := range []string{"redo segment", "undo segment", "catalogue"} {
		// The file damaged: the redo segment holding the tail, an undo
		// segment in the middle, the catalogue.
		probe := buildDamagePair(t, filepath.Join(base, "probe-"+strings.ReplaceAll(kind, " ", "-")), "p1", 1)
		files := probe.files(kind)
		if len(files) == 0 {
			t.Fatalf("the fixture has no %s", kind)
		}
		pick := len(files) / 2
		if kind == "redo segment" {
			pick = len(files) - 1
		}
		fi, err := os.Stat(files[pick])
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range damages(rng, fi.Size(), kind == "catalogue", *damageFull) {
			for _, op := range dmOps {
				n++
				dir := filepath.Join(base, fmt.Sprint(n))
				os.MkdirAll(dir, 0o700)
				p := buildDamagePair(t, dir, "p1", 1)
				file := p.files(kind)[pick]
				other := ""
				if d.kind == "another pair's" {
					q := buildDamagePair(t, dir, "p2", 2)
					of := q.files(kind)
					other = of[min(pick, len(of)-1)]
				}
				segs := p.segments()
				d.apply(t, file, other)
				oc, detail := op.run(t, p, file)
				if oc == ocCorrect || oc == ocNamed {
					for f, size := range segs {
						if f == file {
							continue
						}
						fi, err := os.Stat(f)
						if err != nil {
							oc, detail = ocDeleted, f
						} else if fi.Size() < size {
							oc, detail = ocDeleted, fmt.Sprintf("%s cut from %d to %d bytes", f, size, fi.Size())
						}
					}
				}
				record(kind, op.name, d, oc, detail)
				os.RemoveAll(dir)
			}
		}
	}

	// The host's own files: the agent reads them at start.
	for _, kind := range []string{"trust store", "host config"} {
		dir := filepath.Join(base, "host-"+strings.ReplaceAll(kind, " ", "-"))
		os.MkdirAll(dir, 0o700)
		good, other := writeHostFiles(t, dir, kind)
		fi, _ := os.Stat(good)
		for _, d := range damages(rng, fi.Size(), false, *damageFull) {
			orig, _ := os.ReadFile(good)
			d.apply(t, good, other)
			oc, detail := loadHostFile(kind, good)
			record(kind, "agent start", d, oc, detail)
			os.WriteFile(good, orig, 0o600)
		}
	}

	var tb strings.Builder
	fmt.Fprintf(&tb, "%-14s %-18s %5s %8s %6s %s\n", "file", "operation", "cases", "correct", "named", "anything else")
	total := map[outcome]int{}
	for _, k := range order {
		r := rows[k]
		cases := 0
		var other []string
		for oc, c := range r.count {
			cases += c
			total[oc] += c
			if oc != ocCorrect && oc != ocNamed {
				other = append(other, fmt.Sprintf("%d %s", c, oc))
			}
		}
		sort.Strings(other)
		o := "0"
		if len(other) > 0 {
			o = strings.Join(other, ", ")
		}
		fmt.Fprintf(&tb, "%-14s %-18s %5d %8d %6d %s\n", r.kind, r.op, cases, r.count[ocCorrect], r.count[ocNamed], o)
	}
	sum := 0
	for _, c := range total {
		sum += c
	}
	fmt.Fprintf(&tb, "%-14s %-18s %5d %8d %6d %d\n", "all", "", sum, total[ocCorrect], total[ocNamed], sum-total[ocCorrect]-total[ocNamed])
	t.Logf("damage matrix (seed %d, full %v):\n%s", *damageSeed, *damageFull, tb.String())
	for _, b := range bad {
		t.Error(b)
	}
}

// writeHostFiles writes a valid file of kind in dir, and another host's.
func writeHostFiles(t *testing.T, dir, kind string) (good, other string) {
	t.Helper()
	good, other = filepath.Join(dir, "file"), filepath.Join(dir, "other")
	switch kind {
	case "trust store":
		for i, path := range []string{good, other} {
			ts, err := wire.OpenTrustStore(path)
			if err != nil {
				t.Fatal(err)
			}
			for k := range 3 {
				if err := ts.Pin(fmt.Sprintf("10.0.%d.%d:9443", i, k), wire.Fingerprint(sha256.Sum256([]byte{byte(i), byte(k)}))); err != nil {
					t.Fatal(err)
				}
			}
		}
	case "host config":
		for i, path := range []string{good, other} {
			c := hostconfig.Default()
			c.CSHost = fmt.Sprintf("cs%d.example.com", i)
			if err := hostconfig.Save(path, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	return good, other
}

// loadHostFile reads a damaged host file as the agent does at start.
func loadHostFile(kind, path string) (outcome, string) {
	err, pan := guarded(func() error {
		switch kind {
		case "trust store":
			ts, err := wire.OpenTrustStore(path)
			if err != nil {
				return err
			}
			_, err = ts.List()
			return err
		default:
			_, err := hostconfig.LoadOrDefault(path)
			return err
		}
	})
	if pan != "" {
		return ocPanic, pan
	}
	if err != nil {
		return errOutcome(err, path), err.Error()
	}
	return ocCorrect, ""
}
