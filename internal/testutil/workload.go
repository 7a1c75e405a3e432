// Package testutil holds what tests share: the workload generator and
// oracle of the engine's tests (a model of the source disk, deterministic
// by seed, that remembers its image at every tag), and snapshots of a
// directory tree that prove a dry run changed nothing.
package testutil

import (
	"bytes"
	"fmt"
	"math/rand"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// Op is one step of a workload: a write or a tag.
type Op struct {
	Seq    uint64
	Offset int64
	Data   []byte
	Time   time.Time
	Tag    *journal.TagInfo
}

// Workload generates writes and tags against a model of the source disk.
type Workload struct {
	rng    *rand.Rand
	Source []byte            // the source disk now
	Tags   map[string][]byte // the source image at each tag
	Images map[uint64][]byte // the source image after chosen sequences
	Seq    uint64
	Clock  time.Time
	// MaxWrite bounds a write's length; writes are 512-byte aligned.
	MaxWrite int
	// TagEvery puts a tag after this many writes (0: none); every
	// AppEvery-th tag is application-consistent.
	TagEvery, AppEvery int
	writes             int
	ntags              int
}

// NewWorkload models a source of size bytes, starting as initial (or
// zeros), with seed.
func NewWorkload(seed int64, size int, initial []byte) *Workload {
	w := &Workload{rng: rand.New(rand.NewSource(seed)), Source: make([]byte, size), Tags: map[string][]byte{},
		Images: map[uint64][]byte{}, Clock: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC), MaxWrite: 8192, TagEvery: 10, AppEvery: 3}
	copy(w.Source, initial)
	return w
}

// Next returns the next op, applying it to the model.
func (w *Workload) Next() Op {
	w.Seq++
	w.Clock = w.Clock.Add(time.Duration(1+w.rng.Intn(50)) * time.Millisecond)
	if w.TagEvery > 0 && w.writes > 0 && w.writes%w.TagEvery == 0 {
		w.writes++
		w.ntags++
		app := journal.AppCrash
		if w.AppEvery > 0 && w.ntags%w.AppEvery == 0 {
			app = journal.AppFS
		}
		name := fmt.Sprintf("tag-%04d", w.ntags)
		w.Tags[name] = bytes.Clone(w.Source)
		return Op{Seq: w.Seq, Time: w.Clock, Tag: &journal.TagInfo{Name: name, App: app, ID: fmt.Sprintf("id-%04d", w.ntags), Time: w.Clock}}
	}
	w.writes++
	blocks := len(w.Source) / 512
	n := 1 + w.rng.Intn(max(w.MaxWrite/512, 1))
	n = min(n, blocks)
	off := int64(w.rng.Intn(blocks-n+1)) * 512
	data := make([]byte, n*512)
	w.rng.Read(data)
	copy(w.Source[off:], data)
	return Op{Seq: w.Seq, Offset: off, Data: data, Time: w.Clock}
}

// Snapshot remembers the source image after the current sequence.
func (w *Workload) Snapshot() { w.Images[w.Seq] = bytes.Clone(w.Source) }

// Diff describes where a and b first differ, or "" when they are equal.
func Diff(a, b []byte) string {
	if len(a) != len(b) {
		return fmt.Sprintf("lengths differ: %d and %d", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			return fmt.Sprintf("first difference at byte %d (%#x != %#x)", i, a[i], b[i])
		}
	}
	return ""
}
