package recovery

import (
	"errors"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// tagAgain commits, after the fixture's writes, one more tag named as an
// earlier one: what a store written before duplicate names were refused
// may hold.
func (f *fixture) tagAgain(t *testing.T, name, id string) journal.Tag {
	t.Helper()
	s := f.st.State()
	tg := journal.Tag{Seq: s.Applied + 1, Time: s.AppliedTime.Add(1e9), Name: name, App: journal.AppUser, ID: id, Accuracy: journal.Exact}
	if err := f.st.Commit(journal.Commit{Applied: tg.Seq, AppliedTime: s.AppliedTime, Accuracy: journal.Exact, Tags: []journal.Tag{tg}}); err != nil {
		t.Fatal(err)
	}
	return tg
}

// Issue 11: tag:NAME silently took the newest of two tags of one name. It
// now says the name is ambiguous, listing the tags' ids; tagid:ID names
// one of them; the group's latest tag still resolves.
func TestResolveAmbiguousTagName(t *testing.T) {
	f := newFixture(t, 3, 60, true)
	first := f.st.Tags()[0]
	again := f.tagAgain(t, first.Name, "dup-id")

	_, err := Resolve(f.st, Point{Kind: TagNamed, Name: first.Name})
	if !errors.Is(err, ErrAmbiguousTag) {
		t.Fatalf("tag:%s with two such tags: %v, want ErrAmbiguousTag", first.Name, err)
	}
	for _, w := range []string{"pair p", "2 tags answer to \"" + first.Name + "\"", "id " + first.ID + " at ", "id dup-id at ", "tagid:ID"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
	for _, tc := range []struct {
		p    Point
		want uint64
	}{
		{Point{Kind: TagID, Name: "dup-id"}, again.Seq},
		{Point{Kind: TagID, Name: first.ID}, first.Seq},
		{Point{Kind: TagNamed, Name: first.ID}, first.Seq}, // an id is one tag
		{Point{Kind: LatestTag}, again.Seq},
	} {
		r, err := Resolve(f.st, tc.p)
		if err != nil || r.Seq != tc.want {
			t.Errorf("%s: %+v %v, want sequence %d", tc.p, r, err, tc.want)
		}
	}
	if _, err := Resolve(f.st, Point{Kind: TagID, Name: first.Name}); !errors.Is(err, ErrNoPoint) {
		t.Errorf("tagid: with a name: %v, want ErrNoPoint (ids only)", err)
	}
	// A group whose newest common tag is the repeated one.
	g := newFixture(t, 3, 60, true)
	g.tagAgain(t, first.Name, "dup-id")
	got, err := ResolveGroup(map[string]*journal.Store{"a": f.st, "b": g.st}, Point{Kind: LatestTag})
	if err != nil || got["a"].Seq != again.Seq || got["b"].Tag.ID != "dup-id" {
		t.Errorf("group latest tag: %+v %v", got, err)
	}
}

// Old tags without ids: each record is its own tag, and the error says
// how to reach each (its time).
func TestResolveAmbiguousTagWithoutIDs(t *testing.T) {
	f := newFixture(t, 3, 60, false)
	first := f.st.Tags()[0]
	f.tagAgain(t, first.Name, "")
	_, err := Resolve(f.st, Point{Kind: TagNamed, Name: first.Name})
	if !errors.Is(err, ErrAmbiguousTag) || !strings.Contains(err.Error(), "no id, sequence ") || !strings.Contains(err.Error(), "(time:") {
		t.Errorf("two tags without ids: %v", err)
	}
}
