package recovery

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// Kind is how a recovery point is chosen.
type Kind int

// The ways to name a point.
const (
	LatestTag  Kind = iota // the newest tag of any kind: the recommended default
	LatestTime             // the newest applied write
	LatestApp              // the newest application-consistent tag
	TagNamed               // a tag by name or id
	AtTime                 // the newest point at or before a time
	Earliest               // the oldest point still recoverable
	TagID                  // a tag by its id alone: where a name repeats
)

// Point names a recovery point.
type Point struct {
	Kind Kind
	Name string    // TagNamed: the name or id; TagID: the id
	Time time.Time // AtTime
}

// ErrNoPoint is a point that the retention store cannot provide.
var ErrNoPoint = errors.New("no such recovery point")

// ErrAmbiguousTag is a tag:NAME that more than one tag of a pair answers
// to: stores written before duplicate names were refused may hold them.
// tagid:ID names one.
var ErrAmbiguousTag = errors.New("ambiguous tag name")

// ParsePoint reads latest-tag, latest-time, latest-app-consistent,
// earliest, tag:NAME, tagid:ID or time:RFC3339.
func ParsePoint(s string) (Point, error) {
	switch s {
	case "latest-tag", "":
		return Point{Kind: LatestTag}, nil
	case "latest-time":
		return Point{Kind: LatestTime}, nil
	case "latest-app-consistent", "latest-app":
		return Point{Kind: LatestApp}, nil
	case "earliest":
		return Point{Kind: Earliest}, nil
	}
	if name, ok := strings.CutPrefix(s, "tag:"); ok && name != "" {
		return Point{Kind: TagNamed, Name: name}, nil
	}
	if id, ok := strings.CutPrefix(s, "tagid:"); ok && id != "" {
		return Point{Kind: TagID, Name: id}, nil
	}
	if ts, ok := strings.CutPrefix(s, "time:"); ok {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return Point{}, fmt.Errorf("point %q: time must be RFC 3339, such as 2026-11-26T10:30:00Z", s)
		}
		return Point{Kind: AtTime, Time: t.UTC()}, nil
	}
	return Point{}, fmt.Errorf("point %q: want latest-tag, latest-time, latest-app-consistent, earliest, tag:NAME, tagid:ID or time:RFC3339", s)
}

func (p Point) String() string {
	switch p.Kind {
	case LatestTag:
		return "latest-tag"
	case LatestTime:
		return "latest-time"
	case LatestApp:
		return "latest-app-consistent"
	case TagNamed:
		return "tag:" + p.Name
	case TagID:
		return "tagid:" + p.Name
	case AtTime:
		return "time:" + p.Time.UTC().Format(time.RFC3339Nano)
	}
	return "earliest"
}

// Resolved is a point found in one pair's retention store.
type Resolved struct {
	Pair     string           `json:"pair"`
	Seq      uint64           `json:"seq"`
	Time     time.Time        `json:"time"`
	Tag      *journal.Tag     `json:"tag,omitempty"`
	Accuracy journal.Accuracy `json:"accuracy"`
}

func (r Resolved) String() string {
	s := fmt.Sprintf("sequence %d, %s UTC, %s", r.Seq, r.Time.UTC().Format("2006-01-02 15:04:05.000"), r.Accuracy)
	if r.Tag != nil {
		s = fmt.Sprintf("tag %s (%s), %s", r.Tag.Name, r.Tag.App, s)
	}
	return s
}

// Resolve finds p in one store.
func Resolve(st *journal.Store, p Point) (Resolved, error) {
	pair := st.State().Pair
	eSeq, _ := st.Earliest()
	tags := st.Tags()
	fromTag := func(match func(journal.Tag) bool, what string) (Resolved, error) {
		return newestTag(st, tags, match, what)
	}
	switch p.Kind {
	case LatestTag:
		return fromTag(func(journal.Tag) bool { return true }, "no tag in the retention window")
	case LatestApp:
		return fromTag(journal.Tag.AppConsistent, "no application-consistent tag in the retention window")
	case TagNamed:
		match := func(t journal.Tag) bool { return t.Name == p.Name || t.ID == p.Name }
		if err := unambiguous(pair, p.Name, tags, match); err != nil {
			return Resolved{}, err
		}
		r, err := fromTag(match, fmt.Sprintf("no tag %q (list them with `mtconsole retention events`)", p.Name))
		return r, compacted(st, p.Name, err)
	case TagID:
		r, err := fromTag(func(t journal.Tag) bool { return t.ID == p.Name }, fmt.Sprintf("no tag with id %q (list them with `mtconsole retention events`)", p.Name))
		return r, compacted(st, p.Name, err)
	case LatestTime:
		s := st.State()
		return Resolved{Pair: pair, Seq: s.Applied, Time: s.AppliedTime, Accuracy: accuracy(st, s.Applied)}, nil
	case Earliest:
		seq, t := st.Earliest()
		return Resolved{Pair: pair, Seq: seq, Time: t, Accuracy: accuracy(st, seq)}, nil
	case AtTime:
		seq, t, err := st.SeqAt(p.Time)
		if err != nil {
			return Resolved{}, fmt.Errorf("pair %s: %w: %w", pair, ErrNoPoint, err)
		}
		if seq < eSeq {
			seq = eSeq
		}
		return Resolved{Pair: pair, Seq: seq, Time: t, Accuracy: accuracy(st, seq)}, nil
	}
	return Resolved{}, fmt.Errorf("unknown point kind %d", p.Kind)
}

// compacted turns a tag not found into the reason when sparse retention
// compacted it away, naming the kept points nearest to it.
func compacted(st *journal.Store, name string, err error) error {
	if err == nil {
		return nil
	}
	t, near, ok := st.CompactedTag(name)
	if !ok {
		return err
	}
	return fmt.Errorf("pair %s: %w: tag %s (%s UTC) was %w (policy: %s); %s", st.State().Pair, ErrNoPoint, t.Name,
		t.Time.UTC().Format("2006-01-02 15:04:05"), journal.ErrCompacted, journal.DescribeTiers(st.Policy().Tiers), near)
}

// unambiguous refuses a tag:NAME that more than one tag of the pair
// answers to, listing them so the admin can name one with tagid:ID. A
// tag journaled twice (one id) is one tag.
func unambiguous(pair, name string, tags []journal.Tag, match func(journal.Tag) bool) error {
	var which []string
	seen := map[string]bool{}
	for _, t := range tags {
		if !match(t) {
			continue
		}
		k := t.ID
		if k == "" {
			k = fmt.Sprintf("seq %d", t.Seq) // no id: each record its own tag
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		at := t.Time.UTC().Format("2006-01-02 15:04:05")
		if t.ID == "" {
			which = append(which, fmt.Sprintf("no id, sequence %d at %s UTC (time:%s)", t.Seq, at, t.Time.UTC().Format(time.RFC3339Nano)))
		} else {
			which = append(which, fmt.Sprintf("id %s at %s UTC", t.ID, at))
		}
	}
	if len(which) < 2 {
		return nil
	}
	return fmt.Errorf("pair %s: %w: %d tags answer to %q: %s; name one with tagid:ID",
		pair, ErrAmbiguousTag, len(which), name, strings.Join(which, "; "))
}

func accuracy(st *journal.Store, seq uint64) journal.Accuracy {
	acc := journal.NotGuaranteed
	for _, r := range st.Ranges() {
		if r.FirstSeq <= seq && seq <= r.LastSeq {
			acc = r.Accuracy // the later range wins at a shared boundary
		}
	}
	if acc == journal.NotGuaranteed && len(st.Ranges()) == 0 && seq == st.State().Applied {
		return journal.Exact // nothing replicated yet: the target as it is
	}
	return acc
}

// ResolveGroup finds p for a group of pairs so that together they form
// one consistent multi-disk point: for tag kinds the newest tag that
// every pair holds (matched by id, else by name); for latest-time the
// newest time every pair has reached.
func ResolveGroup(stores map[string]*journal.Store, p Point) (map[string]Resolved, error) {
	ids := make([]string, 0, len(stores))
	for id := range stores {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := map[string]Resolved{}
	switch p.Kind {
	case LatestTag, LatestApp:
		common := map[string]int{}
		newest := map[string]time.Time{}
		for _, id := range ids {
			seen := map[string]bool{}
			for _, t := range stores[id].Tags() {
				if p.Kind == LatestApp && !t.AppConsistent() {
					continue
				}
				k := tagKey(t)
				if !seen[k] {
					seen[k] = true
					common[k]++
					if t.Time.After(newest[k]) {
						newest[k] = t.Time
					}
				}
			}
		}
		best := ""
		for k, n := range common {
			if n == len(ids) && (best == "" || newest[k].After(newest[best]) || newest[k].Equal(newest[best]) && k > best) {
				best = k
			}
		}
		if best == "" {
			return nil, fmt.Errorf("%w: no tag common to pairs %s", ErrNoPoint, strings.Join(ids, ", "))
		}
		for _, id := range ids {
			// By the key the pairs share (the id, else the name): a name
			// that repeats in an old store takes its newest, as before.
			r, err := newestTag(stores[id], stores[id].Tags(), func(t journal.Tag) bool { return tagKey(t) == best },
				fmt.Sprintf("no tag %q", best))
			if err != nil {
				return nil, err
			}
			out[id] = r
		}
		return out, nil
	case LatestTime:
		var t time.Time
		for i, id := range ids {
			at := stores[id].State().AppliedTime
			if i == 0 || at.Before(t) {
				t = at
			}
		}
		p = Point{Kind: AtTime, Time: t}
	}
	var missing []string
	for _, id := range ids {
		r, err := Resolve(stores[id], p)
		if err != nil {
			missing = append(missing, err.Error())
			continue
		}
		out[id] = r
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(missing, "; "))
	}
	return out, nil
}

// newestTag is the newest of st's tags (oldest first) that match; what
// says what is missing when none does.
func newestTag(st *journal.Store, tags []journal.Tag, match func(journal.Tag) bool, what string) (Resolved, error) {
	pair := st.State().Pair
	for i := len(tags) - 1; i >= 0; i-- {
		if match(tags[i]) {
			t := tags[i]
			return Resolved{Pair: pair, Seq: t.Seq, Time: t.Time, Tag: &t, Accuracy: accuracy(st, t.Seq)}, nil
		}
	}
	return Resolved{}, fmt.Errorf("pair %s: %w: %s", pair, ErrNoPoint, what)
}

func tagKey(t journal.Tag) string {
	if t.ID != "" {
		return t.ID
	}
	return t.Name
}
