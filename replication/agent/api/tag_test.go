package api

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// Issue 11: two before-upgrade tags were both accepted, and tag:NAME then
// picked one silently. A name a pair already holds is refused (409) with
// the pair and the existing tag's time, before anything is journaled:
// also while the first tag is still on its way to the store.
func TestTagDuplicateNameRefused(t *testing.T) {
	a := newAgent(t, "p1", "p2")
	ctx := ctxT(t)
	if _, err := a.cl.Tag(ctx, TagRequest{Name: "before-upgrade", Pairs: []string{"p2"}}); err != nil {
		t.Fatal(err)
	}
	next1, next2 := a.w.Pair("p1").Next(), a.w.Pair("p2").Next()
	for _, stage := range []string{"journaled", "in the store"} {
		_, err := a.cl.Tag(ctx, TagRequest{Name: "before-upgrade", Pairs: []string{"p1", "p2"}})
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != 409 || !errors.Is(err, ErrConflict) {
			t.Fatalf("%s: the same name again: %v, want a 409 conflict", stage, err)
		}
		for _, w := range []string{"pair p2 already has a tag \"before-upgrade\"", "placed 2026-11-26 11:00:00 UTC"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", stage, err, w)
			}
		}
		if n1, n2 := a.w.Pair("p1").Next(), a.w.Pair("p2").Next(); n1 != next1 || n2 != next2 {
			t.Fatalf("%s: a refused tag was journaled: next sequences %d,%d → %d,%d", stage, next1, next2, n1, n2)
		}
		a.drain(t, "p2")
	}
	// A tag of the recording (a crash-consistent one at 10:00:00.040).
	_, err := a.cl.Tag(ctx, TagRequest{Name: "t04", Pairs: []string{"p1"}})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "pair p1 already has a tag \"t04\" (id id-t04, placed 2026-11-26 10:00:00 UTC)") {
		t.Errorf("a name the store holds: %v", err)
	}
	// Another name is fine, on both.
	if _, err := a.cl.Tag(ctx, TagRequest{Name: "after-upgrade"}); err != nil {
		t.Errorf("a new name: %v", err)
	}
}

// Through a Tagger the check comes before the process server is asked.
func TestTagDuplicateNameNotAskedOfTagger(t *testing.T) {
	a := newAgent(t, "p1")
	ctx := ctxT(t)
	calls := 0
	a.b.SetTagger(func(_ context.Context, pairs []string, info journal.TagInfo) (map[string]uint64, error) {
		calls++
		return map[string]uint64{"p1": a.w.Pair("p1").Next() + 5}, nil
	})
	if _, err := a.cl.Tag(ctx, TagRequest{Name: "group"}); err != nil {
		t.Fatal(err)
	}
	_, err := a.cl.Tag(ctx, TagRequest{Name: "group"})
	if !errors.Is(err, ErrConflict) || !strings.Contains(err.Error(), "pair p1 already has a tag \"group\"") {
		t.Errorf("second group tag: %v, want a conflict naming p1", err)
	}
	if calls != 1 {
		t.Errorf("the tagger was asked %d times, want once", calls)
	}
}

// A tag name must be typeable back as tag:NAME.
func TestTagNameChecked(t *testing.T) {
	a := newAgent(t, "p1")
	ctx := ctxT(t)
	for _, tc := range []struct{ name, want string }{
		{"", "a tag needs a name"},
		{"  ", "a tag needs a name"},
		{"before\nupgrade", "control character (U+000A at byte 6)"},
		{"before\x00upgrade", "control character (U+0000 at byte 6)"},
		{"tab\there", "control character"},
		{" padded", "starts or ends with a space"},
		{strings.Repeat("x", MaxTagName+1), "129 bytes, at most 128"},
	} {
		_, err := a.cl.Tag(ctx, TagRequest{Name: tc.name})
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != 400 || ae.Field != "name" || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("name %q: %v, want a 400 on name saying %q", tc.name, err, tc.want)
		}
	}
	// JSON turns bytes that are not UTF-8 into U+FFFD on the way; a
	// caller in the same process gets them checked too.
	if err := checkTagName("bad-\xff"); err == nil || !strings.Contains(err.Error(), "not UTF-8") {
		t.Errorf("a name that is not UTF-8: %v", err)
	}
	for _, ok := range []string{strings.Repeat("x", MaxTagName), "před-upgrade 2026/11", "a:b,c"} {
		if _, err := a.cl.Tag(ctx, TagRequest{Name: ok}); err != nil {
			t.Errorf("name %q refused: %v", ok, err)
		}
	}
}
