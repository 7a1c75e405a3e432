package writer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mtconsole/mtconsole/replication/vfs"
	"golang.org/x/sys/unix"
)

// ErrVolumeTooSmall is a pair whose journal or retention volume cannot
// hold two redo segments and one undo segment beside the reserve: it
// would stop at once, so opening it fails instead.
var ErrVolumeTooSmall = errors.New("volume too small for the pair")

// Segment sizes of a pair whose configuration leaves them at 0.
const (
	maxAutoSegment = 64 << 20
	// minRedoSegment holds the largest resync chunk (4 MiB of data, the
	// process server's MaxChunk) with its headers.
	minRedoSegment = 8 << 20
	minUndoSegment = 1 << 20
	maxAutoSegs    = 64
)

// volume is the free and total bytes of the file system holding dir, or
// of its nearest existing parent (a pair's directories are made later).
func volume(fs vfs.FS, dir string) (free, total uint64, ok bool) {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if f, t, err := fs.Free(d); err == nil {
			return f, t, true
		}
		if d == filepath.Dir(d) {
			return 0, 0, false
		}
	}
}

// sizeToVolumes fills in the segment sizes cfg leaves at 0 from the size
// of the volumes holding its directories: a sixteenth of the volume, in
// whole MiB, at most 64 MiB (the redo segment at least 8 MiB, the undo
// one at least 1 MiB), and at most as many redo segments as fill a
// quarter of the journal volume (at least two).
func sizeToVolumes(cfg *PairConfig, fs vfs.FS) {
	_, jtotal, jok := volume(fs, cfg.JournalDir)
	_, rtotal, rok := volume(fs, cfg.RetentionDir)
	auto := func(total uint64, lo int64) int64 {
		s := min(int64(total/16), maxAutoSegment)
		return max(s&^(1<<20-1), lo)
	}
	if cfg.JournalSegmentSize == 0 {
		cfg.JournalSegmentSize = maxAutoSegment
		if jok {
			cfg.JournalSegmentSize = auto(jtotal, minRedoSegment)
		}
	}
	if cfg.JournalMaxSegments == 0 {
		cfg.JournalMaxSegments = maxAutoSegs
		if jok {
			cfg.JournalMaxSegments = int(min(max(int64(jtotal)/(4*cfg.JournalSegmentSize), 2), maxAutoSegs))
		}
	}
	if cfg.UndoSegmentSize == 0 {
		cfg.UndoSegmentSize = maxAutoSegment
		if c := cfg.Policy.SizeCap; c > 0 {
			cfg.UndoSegmentSize = min(max(c/16, minUndoSegment), maxAutoSegment)
		}
		if rok {
			cfg.UndoSegmentSize = min(cfg.UndoSegmentSize, auto(rtotal, minUndoSegment))
		}
	}
}

// checkVolumes refuses a pair whose volumes cannot hold two redo
// segments and one undo segment beside reserved bytes, counting the
// space the pair's own files already take as available.
func checkVolumes(cfg PairConfig, fs vfs.FS, reserved uint64) error {
	jfree, _, jok := volume(fs, cfg.JournalDir)
	rfree, _, rok := volume(fs, cfg.RetentionDir)
	if !jok || !rok {
		return nil // the open itself says what is wrong
	}
	jown, rown := dirBytes(fs, cfg.JournalDir), dirBytes(fs, cfg.RetentionDir)
	if cfg.CatalogueDir != "" && filepath.Clean(cfg.CatalogueDir) != filepath.Clean(cfg.RetentionDir) {
		rown += dirBytes(fs, cfg.CatalogueDir)
	}
	redo, undo := uint64(2*cfg.JournalSegmentSize), uint64(cfg.UndoSegmentSize)
	tooSmall := func(dir string, need, free, own uint64, what string) error {
		return fmt.Errorf("%w: %s needs %s (%s) but has %s free (%s more in the pair's own files): free space there, or put the pair's journal_dir and retention_dir on a larger volume",
			ErrVolumeTooSmall, dir, mib(need), what, mib(free), mib(own))
	}
	reserve := ""
	if reserved > 0 {
		reserve = " and the " + mib(reserved) + " reserve"
	}
	if sameVolume(fs, cfg.JournalDir, cfg.RetentionDir) {
		if need := redo + undo + reserved; jfree+jown+rown < need {
			return tooSmall(cfg.JournalDir+" and "+cfg.RetentionDir, need, jfree, jown+rown,
				fmt.Sprintf("two %s redo segments, one %s undo segment%s", mib(uint64(cfg.JournalSegmentSize)), mib(uint64(cfg.UndoSegmentSize)), reserve))
		}
		return nil
	}
	if need := redo + reserved; jfree+jown < need {
		return tooSmall(cfg.JournalDir, need, jfree, jown, fmt.Sprintf("two %s redo segments%s", mib(uint64(cfg.JournalSegmentSize)), reserve))
	}
	if need := undo + reserved; rfree+rown < need {
		return tooSmall(cfg.RetentionDir, need, rfree, rown, fmt.Sprintf("one %s undo segment%s", mib(uint64(cfg.UndoSegmentSize)), reserve))
	}
	return nil
}

// dirBytes is the size of the files in dir (0 when there is none).
func dirBytes(fs vfs.FS, dir string) uint64 {
	names, err := fs.List(dir)
	if err != nil {
		return 0
	}
	var n uint64
	for _, name := range names {
		f, err := fs.OpenFile(filepath.Join(dir, name), os.O_RDONLY, 0)
		if err != nil {
			continue
		}
		if s, err := f.Size(); err == nil && s > 0 {
			n += uint64(s)
		}
		f.Close()
	}
	return n
}

func mib(n uint64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// sameVolume says whether directories a and b (or their nearest existing
// parents) are on one file system: the same device on the real one, the
// same size on any other (a test's in-memory one has a single volume).
func sameVolume(fs vfs.FS, a, b string) bool {
	if fs == vfs.OS {
		da, oka := device(a)
		db, okb := device(b)
		return oka && okb && da == db
	}
	_, ta, oka := volume(fs, a)
	_, tb, okb := volume(fs, b)
	return oka && okb && ta == tb
}

func device(dir string) (uint64, bool) {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err == nil {
			return uint64(st.Dev), true
		}
		if d == filepath.Dir(d) {
			return 0, false
		}
	}
}

// journalHeadroom is how much more of the retention volume the pair's
// redo journal may take (up to its segment bound) when the two share a
// volume: a paused pair's journal goes on filling, so the low-space
// trigger keeps that much free on top of its own.
func (p *Pair) journalHeadroom() uint64 {
	if !p.sharedVolume {
		return 0
	}
	bound := uint64(p.cfg.JournalMaxSegments) * uint64(p.cfg.JournalSegmentSize)
	if used := dirBytes(p.o.FS, p.cfg.JournalDir); used < bound {
		return bound - used
	}
	return 0
}
