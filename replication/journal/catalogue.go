package journal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The catalogue is a bbolt file per pair, catalogue.db. Buckets:
//
//	meta      "version" → 1, "pair" → pair id
//	state     "pair" → PairState (JSON)
//	policy    "policy" → Policy (JSON)
//	segments  index (8-byte big endian) → SegmentInfo (JSON)
//	ranges    first sequence (8-byte BE) → Range (JSON)
//	tags      sequence (8-byte BE) → Tag (JSON)
//	sparse    "state" → SparseState (JSON)                 version 2
//	compacted sequence (8-byte BE) → Tag (JSON)            version 2
//
// A store is version 1 until its first compaction, which adds the two
// sparse buckets and writes version 2: an older mtconsole, which would
// read a compacted segment as whole history, refuses it. Readers refuse
// versions newer than theirs.
const (
	catalogueVersion     = 2
	catalogueVersionBase = 1 // what a new catalogue is
)

var (
	bMeta     = []byte("meta")
	bState    = []byte("state")
	bPolicy   = []byte("policy")
	bSegments = []byte("segments")
	bRanges   = []byte("ranges")
	bTags     = []byte("tags")
	bSparse   = []byte("sparse")
	bGone     = []byte("compacted")
)

// ErrInUse is a catalogue locked by another process (a running agent).
var ErrInUse = errors.New("retention catalogue is in use by another process")

// Accuracy of a recovery point, as cdpcli names it.
type Accuracy string

// The accuracies.
const (
	Exact         Accuracy = "Exact"
	Approximate   Accuracy = "Approximate"
	NotGuaranteed Accuracy = "Not guaranteed"
)

// SegmentInfo describes one undo segment.
type SegmentInfo struct {
	Index     uint64    `json:"index"`
	FirstSeq  uint64    `json:"first_seq"`
	LastSeq   uint64    `json:"last_seq"`
	FirstTime time.Time `json:"first_time"`
	LastTime  time.Time `json:"last_time"`
	// PrevTime is the source time of the state before FirstSeq: the
	// earliest recoverable time once older segments are pruned.
	PrevTime time.Time `json:"prev_time"`
	Bytes    int64     `json:"bytes"` // committed length of the file
	// Gen is the compaction that wrote the segment (0: the applier). A
	// compacted segment holds, for each kept point in it, only the
	// before-images needed to reach that point; its records may repeat
	// a sequence (pieces of one before-image), and FirstSeq-1 is the
	// kept point its first records lead to, not a record's.
	Gen uint32 `json:"gen,omitempty"`
}

// Range is a stretch of recoverable points of one accuracy: every state
// after a sequence in [FirstSeq, LastSeq].
type Range struct {
	FirstSeq  uint64    `json:"first_seq"`
	LastSeq   uint64    `json:"last_seq"`
	FirstTime time.Time `json:"first_time"`
	LastTime  time.Time `json:"last_time"`
	Accuracy  Accuracy  `json:"accuracy"`
}

// Tag is a bookmark: a named consistency point.
type Tag struct {
	Seq      uint64        `json:"seq"`
	Time     time.Time     `json:"time"`
	Name     string        `json:"name"`
	App      string        `json:"app"`
	ID       string        `json:"id"`
	Accuracy Accuracy      `json:"accuracy"`
	Verified bool          `json:"verified"`
	Locked   bool          `json:"locked"`
	Lifetime time.Duration `json:"lifetime,omitempty"`
	Comment  string        `json:"comment,omitempty"`
}

// AppConsistent reports whether the tag was issued by an application
// (anything but a crash-consistent or user bookmark).
func (t Tag) AppConsistent() bool {
	switch t.App {
	case "", AppCrash, AppUser:
		return false
	}
	return true
}

// Application types of tags (the original's names).
const (
	AppCrash = "CRASH"
	AppUser  = "USERDEFINED"
	AppFS    = "FS"
)

// Pair states kept in the catalogue.
const (
	StateActive      = "Active"
	StatePaused      = "Paused"
	StateRollingBack = "RollingBack"
	StateEnded       = "Ended"
)

// PairState is the durable state of a pair.
type PairState struct {
	Pair        string    `json:"pair"`
	Target      string    `json:"target,omitempty"`
	Applied     uint64    `json:"applied"`
	AppliedTime time.Time `json:"applied_time"`
	State       string    `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	// RollbackTo is the point a rollback in progress goes to.
	RollbackTo uint64 `json:"rollback_to,omitempty"`
	// RollbackWritten: that rollback has begun writing the target, so it
	// can only be finished, not abandoned.
	RollbackWritten bool `json:"rollback_written,omitempty"`
	// RollbackTracked: that rollback records RollbackWritten (one begun by
	// an older mtconsole does not, and may have written).
	RollbackTracked bool `json:"rollback_tracked,omitempty"`
}

func key(n uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	return b[:]
}

// openCatalogue verifies and opens dir/catalogue.db. segFiles is the
// number of undo segment files beside it: a catalogue that is absent,
// empty or never initialised while there are segments is
// ErrCatalogueMissing, never a fresh pair.
func openCatalogue(dir, pair string, readOnly bool, segFiles int) (*bolt.DB, error) {
	path := filepath.Join(dir, "catalogue.db")
	missing := func(what string) error {
		return fmt.Errorf("%w: %s is %s but %d undo segments are in the retention directory: the applied position is unknown; %s",
			ErrCatalogueMissing, path, what, segFiles, catalogueAdvice)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0:
		what := "absent"
		if err == nil {
			what = "empty"
		}
		if segFiles > 0 {
			return nil, missing(what)
		}
		if readOnly {
			return nil, fmt.Errorf("%w: %s is %s: is this the pair's retention directory?", ErrCatalogueMissing, path, what)
		}
	case err != nil:
		return nil, fmt.Errorf("catalogue %s: %w", path, err)
	default:
		if err := verifyCatalogue(path, readOnly); err != nil {
			return nil, err
		}
	}
	var db *bolt.DB
	err = guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, ReadOnly: readOnly, FreelistType: bolt.FreelistMapType})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%s: %w (stop the agent or ask it through its API)", path, ErrInUse)
	}
	if errors.Is(err, ErrCatalogueCorrupt) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("catalogue %s: %w", path, err)
	}
	check := func(tx *bolt.Tx) (initialised bool, err error) {
		m := tx.Bucket(bMeta)
		if m == nil {
			return false, nil
		}
		v := m.Get([]byte("version"))
		if v == nil {
			return false, nil
		}
		if len(v) != 8 {
			return false, corrupt(path, "version of %d bytes", len(v))
		}
		if n := binary.BigEndian.Uint64(v); n > catalogueVersion {
			return false, fmt.Errorf("catalogue version %d is newer than this mtconsole (%d): upgrade mtconsole", n, catalogueVersion)
		}
		for _, b := range [][]byte{bMeta, bState, bPolicy, bSegments, bRanges, bTags} {
			if tx.Bucket(b) == nil {
				return false, corrupt(path, "bucket %s is missing", b)
			}
		}
		if p := string(m.Get([]byte("pair"))); pair != "" && p != pair {
			return false, fmt.Errorf("%w: %s belongs to pair %q, not %q: it is another pair's catalogue; %s", ErrCatalogueCorrupt, path, p, pair, catalogueAdvice)
		}
		return true, nil
	}
	err = guard(path, func() error {
		if readOnly {
			return db.View(func(tx *bolt.Tx) error {
				ok, err := check(tx)
				if err == nil && !ok && segFiles > 0 {
					return missing("not initialised")
				}
				return err
			})
		}
		return db.Update(func(tx *bolt.Tx) error {
			ok, err := check(tx)
			if err != nil || ok {
				return err
			}
			if segFiles > 0 {
				return missing("not initialised")
			}
			for _, b := range [][]byte{bMeta, bState, bPolicy, bSegments, bRanges, bTags} {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			m := tx.Bucket(bMeta)
			if err := m.Put([]byte("version"), key(catalogueVersionBase)); err != nil {
				return err
			}
			return m.Put([]byte("pair"), []byte(pair))
		})
	})
	if err != nil {
		guard(path, db.Close)
		if errors.Is(err, ErrCatalogueCorrupt) || errors.Is(err, ErrCatalogueMissing) {
			return nil, err
		}
		return nil, fmt.Errorf("catalogue %s: %w", path, err)
	}
	return db, nil
}

func putJSON(b *bolt.Bucket, k []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// loadAll decodes every value of bucket name; keyOf, when given, is the
// key the value must be stored under (a damaged key is refused, not read
// as another entry).
func loadAll[T any](tx *bolt.Tx, name []byte, keyOf func(T) []byte) ([]T, error) {
	var out []T
	b := tx.Bucket(name)
	if b == nil {
		return nil, nil
	}
	err := b.ForEach(func(k, v []byte) error {
		var t T
		if err := json.Unmarshal(v, &t); err != nil {
			return fmt.Errorf("bucket %s key %x: %w", name, k, err)
		}
		if keyOf != nil && !bytes.Equal(k, keyOf(t)) {
			return fmt.Errorf("bucket %s: key %x holds the entry of key %x", name, k, keyOf(t))
		}
		out = append(out, t)
		return nil
	})
	return out, err
}
