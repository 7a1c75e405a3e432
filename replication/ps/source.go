package ps

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
	"github.com/mtconsole/mtconsole/replication/vfs"
)

// ChangeSource finds or makes the changes of a source disk and reports
// them to it (Disk.Write, Disk.Changed, Disk.Tag) until ctx ends.
type ChangeSource interface {
	Run(ctx context.Context, d *Disk) error
}

// Scanner finds changes by hashing the source's chunks every Interval and
// reporting each chunk whose hash changed since the previous scan. It
// needs no driver, so it works on any disk; it sees a chunk's state at
// scan time only, so it takes no tags.
type Scanner struct {
	Interval time.Duration // default 10 s
}

// Run scans until ctx ends. The first scan only records the hashes.
func (sc Scanner) Run(ctx context.Context, d *Disk) error {
	iv := sc.Interval
	if iv <= 0 {
		iv = 10 * time.Second
	}
	n := (d.size + d.chunk - 1) / d.chunk
	prev := make([][32]byte, n)
	buf := make([]byte, d.chunk)
	for pass := 0; ; pass++ {
		for c := range n {
			off := c * d.chunk
			b := buf[:min(d.chunk, d.size-off)]
			if err := vfs.ReadFull(d.f, b, off); err != nil {
				return fmt.Errorf("ps: scan %s at %d: %w", d.name, off, err)
			}
			h := sha256.Sum256(b)
			if pass > 0 && h != prev[c] {
				d.Changed(off, b, time.Now())
			}
			prev[c] = h
			if ctx.Err() != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(iv):
		}
	}
}

// Workload writes the source itself, deterministically from Seed, and
// takes tags on a schedule: for demos, tests and benchmarks.
type Workload struct {
	Seed       int64
	Sequential bool          // sequential writes (wrapping) instead of random ones
	Rate       float64       // writes per second (0: as fast as possible)
	WriteSize  int           // bytes per write, a multiple of 4096 (default 64 KiB)
	CrashEvery time.Duration // crash-consistent tag interval (0: none)
	AppEvery   time.Duration // application-consistent tag interval (0: none)
	Writes     int           // stop after this many writes (0: until ctx ends)
	// OnTag is called after each tag with the tag and the SHA-256 of the
	// whole source at that tag, and whether any master target took it.
	OnTag func(tag journal.TagInfo, image [32]byte, sent bool)
}

// ParseWorkload reads "seed=1,rate=100,size=65536,seq,crash=10s,app=60s,writes=N".
// Every key is given at most once; a value that makes no sense (a
// negative or not finite rate, a negative interval, writes=0) is refused
// with the key and the value, never clamped.
func ParseWorkload(s string) (Workload, error) {
	w := Workload{Seed: 1, WriteSize: 64 << 10}
	seen := map[string]bool{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, hasValue := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		bad := func(why string) error { return fmt.Errorf("workload: %s: %s", kv, why) }
		name := k
		if name == "sequential" || name == "random" {
			name = "seq" // one choice, however spelt
		}
		if seen[name] {
			if name == "seq" {
				return w, bad("give one of seq, sequential and random")
			}
			return w, bad(k + " is given twice")
		}
		seen[name] = true
		var err error
		switch k {
		case "seed":
			if w.Seed, err = strconv.ParseInt(v, 10, 64); err != nil {
				return w, bad("not a whole number")
			}
		case "rate":
			w.Rate, err = strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(w.Rate) || math.IsInf(w.Rate, 0) || w.Rate < 0 {
				return w, bad("want writes per second, a number of 0 or more (0: as fast as possible)")
			}
		case "size":
			if w.WriteSize, err = strconv.Atoi(v); err != nil || w.WriteSize <= 0 || w.WriteSize%4096 != 0 {
				return w, bad("want bytes per write, a positive multiple of 4096")
			}
		case "seq", "sequential", "random":
			if hasValue {
				return w, bad(k + " takes no value")
			}
			w.Sequential = k != "random"
		case "crash", "app":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return w, bad("want a tag interval such as 10s or 5m, 0 or more (0: no tags)")
			}
			if k == "crash" {
				w.CrashEvery = d
			} else {
				w.AppEvery = d
			}
		case "writes":
			if w.Writes, err = strconv.Atoi(v); err != nil || w.Writes <= 0 {
				return w, bad("want a number of writes of 1 or more (leave writes out to write until stopped)")
			}
		default:
			return w, bad("unknown key " + k + " (seed, rate, size, seq, random, crash, app, writes)")
		}
	}
	return w, nil
}

// Run writes until ctx ends or Writes are done.
func (w Workload) Run(ctx context.Context, d *Disk) error {
	size := w.WriteSize
	if size <= 0 {
		size = 64 << 10
	}
	if int64(size) > d.size || size%4096 != 0 {
		return fmt.Errorf("ps: workload on %s: write size %d does not fit", d.name, size)
	}
	rng := rand.New(rand.NewSource(w.Seed))
	data := make([]byte, size)
	slots := d.size / int64(size)
	start := time.Now()
	nextCrash, nextApp := start.Add(w.CrashEvery), start.Add(w.AppEvery)
	ntag := 0
	for n := 0; w.Writes == 0 || n < w.Writes; n++ {
		if ctx.Err() != nil {
			return nil
		}
		if w.Rate > 0 {
			due := start.Add(time.Duration(float64(n) / w.Rate * float64(time.Second)))
			if dl := time.Until(due); dl > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(dl):
				}
			}
		}
		rng.Read(data)
		off := int64(n) % slots * int64(size)
		if !w.Sequential {
			off = rng.Int63n(slots) * int64(size)
		}
		now := time.Now()
		if err := d.Write(off, data, now); err != nil {
			return err
		}
		for _, k := range []struct {
			every time.Duration
			next  *time.Time
			app   string
		}{{w.CrashEvery, &nextCrash, journal.AppCrash}, {w.AppEvery, &nextApp, journal.AppFS}} {
			if k.every <= 0 || now.Before(*k.next) {
				continue
			}
			*k.next = now.Add(k.every)
			ntag++
			if err := w.tag(d, journal.TagInfo{Name: fmt.Sprintf("%s_%d_%04d", k.app, w.Seed, ntag), App: k.app,
				ID: fmt.Sprintf("wl-%d-%d", w.Seed, ntag), Time: now.UTC()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Tag takes a tag now on d and reports it to OnTag with the source's image hash.
func (w Workload) tag(d *Disk, t journal.TagInfo) error {
	// The workload is the only writer, so the source cannot change
	// between the tag and its hash.
	sent := d.Tag(t) > 0
	if w.OnTag == nil {
		return nil
	}
	h, err := HashSource(d)
	if err != nil {
		return err
	}
	w.OnTag(t, h, sent)
	return nil
}

// HashSource is the SHA-256 of the whole source disk.
func HashSource(d *Disk) ([32]byte, error) {
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(d.f, 0, d.size)); err != nil {
		return [32]byte{}, fmt.Errorf("ps: hash %s: %w", d.name, err)
	}
	return [32]byte(h.Sum(nil)), nil
}

// Run runs each change source on its disk until ctx ends or one fails.
func Run(ctx context.Context, srcs map[*Disk]ChangeSource) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(srcs))
	for d, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := src.Run(ctx, d); err != nil {
				errc <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
