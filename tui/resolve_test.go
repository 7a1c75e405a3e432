package tui

import (
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mtconsole/mtconsole/replication/journal"
)

// oldCommonTag is the rule the wizard kept of its own before it asked
// the agent (kept here to show the generated stores reach where it
// drifted): the newest tag every list holds, ties to the first met.
func oldCommonTag(lists [][]journal.Tag, app bool) (journal.Tag, bool) {
	count := map[string]int{}
	var best journal.Tag
	found := false
	for i, l := range lists {
		seen := map[string]bool{}
		for _, t := range l {
			k := tagKey(t)
			if (app && !t.AppConsistent()) || seen[k] {
				continue
			}
			seen[k] = true
			count[k]++
			if i == len(lists)-1 && count[k] == len(lists) && (!found || t.Time.After(best.Time)) {
				best, found = t, true
			}
		}
	}
	return best, found
}

// genStores are the retention stores of pairs (1 to 3 of p1..p3): tags
// drawn from shared ones, some missing on some pairs, some of each
// pair's own, times from a few minutes so they tie, crash, user and
// application tags; each pair applied to a time of its own.
func genStores(t *testing.T, rng *rand.Rand) map[string]*journal.Store {
	base := fxNow.Add(-2 * time.Hour)
	apps := []string{journal.AppCrash, journal.AppUser, "SQL", "FS"}
	shared := make([]journal.Tag, 3+rng.Intn(5))
	for i := range shared {
		shared[i] = journal.Tag{Name: fmt.Sprintf("g%02d", i), ID: fmt.Sprintf("id-g%02d", i), App: apps[rng.Intn(len(apps))],
			Time: base.Add(time.Duration(rng.Intn(4)) * 10 * time.Minute), Accuracy: journal.Exact}
	}
	stores := map[string]*journal.Store{}
	for p := range 1 + rng.Intn(3) {
		id := fmt.Sprintf("p%d", p+1)
		var tags []journal.Tag
		for _, s := range shared {
			if rng.Intn(5) > 0 {
				tags = append(tags, s)
			}
		}
		for i := range rng.Intn(3) {
			tags = append(tags, journal.Tag{Name: fmt.Sprintf("%s-own%d", id, i), ID: fmt.Sprintf("id-%s-%d", id, i),
				App: apps[rng.Intn(len(apps))], Time: base.Add(time.Duration(rng.Intn(5)) * 10 * time.Minute), Accuracy: journal.Exact})
		}
		// Sequence order follows time; tags of one time in any order.
		rng.Shuffle(len(tags), func(i, j int) { tags[i], tags[j] = tags[j], tags[i] })
		slices.SortStableFunc(tags, func(a, b journal.Tag) int { return a.Time.Compare(b.Time) })
		for i := range tags {
			tags[i].Seq = uint64(100 * (i + 1))
		}
		applied := base.Add(time.Duration(50+rng.Intn(60)) * time.Minute)
		stores[id] = buildStore(t, id, tags, uint64(100*(len(tags)+1)), applied)
	}
	return stores
}

// The wizard shows exactly what the agent recovers, for every point it
// offers, over generated stores: the point and sequence in its check are
// those of the job the request it sends starts (the agent's
// Job.Points), and a point the agent cannot find is refused in the check
// as the recovery would be. The generated stores reach the cases where
// the wizard's old rule (oldCommonTag, each pair's own latest time) and
// the agent's disagreed: ties on time in a group, latest-time across a
// group.
func TestWizardShowsWhatAgentRecovers(t *testing.T) {
	points := []int{pointLatestTag, pointLatestTime, pointLatestApp, pointTag, pointTime}
	disagreed := map[string]int{}
	cases := 0
	for seed := range int64(60) {
		rng := rand.New(rand.NewSource(seed))
		stores := genStores(t, rng)
		ids := make([]string, 0, len(stores))
		for id := range stores {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, pt := range points {
			fa := &fakeActions{stores: stores}
			m := newFx(t, 120, 40, Options{Actions: fa})
			answer(m, m.openWizard(ids))
			w := &m.wiz
			w.point, w.mode = pt, modeRollback
			switch pt {
			case pointTag:
				common := m.commonTags()
				if len(common) == 0 {
					continue
				}
				w.tag = common[rng.Intn(len(common))]
			case pointTime:
				w.timeIn.SetValue(fxNow.Add(-time.Duration(rng.Intn(130)) * time.Minute).Format(time.RFC3339))
			}
			answer(m, m.enterChecks())
			cases++
			req := m.request()
			name := fmt.Sprintf("seed %d, %v, %s (asked %s)", seed, ids, req.Point, w.asked.Point)
			// latest-time is pinned to the time the check showed, so a
			// write arriving before enter does not move it.
			if pt == pointLatestTime && w.resolveErr == "" && !strings.HasPrefix(req.Point, "time:") {
				t.Errorf("%s: latest-time not pinned to the time shown", name)
			}
			job, err := fa.Recover(t.Context(), req)
			switch {
			case w.resolveErr != "":
				if err == nil {
					t.Errorf("%s: the wizard refuses (%s), the agent recovers %+v", name, w.resolveErr, job.Points)
				}
				if !slices.ContainsFunc(m.wiz.checks, func(c check) bool { return c.level == checkFail && strings.Contains(c.text, w.resolveErr) }) {
					t.Errorf("%s: the refusal is not in the check: %+v", name, m.wiz.checks)
				}
				continue
			case w.resolved == nil:
				t.Fatalf("%s: the agent's answer never reached the check", name)
			case err != nil:
				t.Errorf("%s: the wizard shows %+v, the agent refuses: %v", name, w.resolved.Points, err)
				continue
			}
			screen := screenText(t, m)
			for _, id := range ids {
				shown, got := w.resolved.Points[id], job.Points[id]
				if shown.Seq != got.Seq || !shown.Time.Equal(got.Time) || (shown.Tag == nil) != (got.Tag == nil) ||
					shown.Tag != nil && shown.Tag.ID != got.Tag.ID {
					t.Errorf("%s, %s: the wizard shows %s, the agent recovers %s", name, id, shown, got)
				}
				if line := id + ": " + resolvedText(got, m.tags[id], fxNow); !strings.Contains(screen, line) {
					t.Errorf("%s: the check does not show %q:\n%s", name, line, screen)
				}
			}
			// Where the old rule would have shown another point.
			if len(ids) > 1 && (pt == pointLatestTag || pt == pointLatestApp) {
				var lists [][]journal.Tag
				for _, id := range ids {
					lists = append(lists, stores[id].Tags())
				}
				old, ok := oldCommonTag(lists, pt == pointLatestApp)
				if got := job.Points[ids[0]].Tag; !ok || got == nil || old.ID != got.ID {
					disagreed[pointNames[pt]]++
					if disagreed[pointNames[pt]] == 1 {
						t.Logf("e.g. %s: the old rule shows %s (%s), the agent recovers %s", name, old.Name, old.Time.Format(time.TimeOnly), job.Points[ids[0]])
					}
				}
			}
			if len(ids) > 1 && pt == pointLatestTime {
				for _, id := range ids {
					if job.Points[id].Seq != stores[id].State().Applied {
						disagreed[pointNames[pt]]++
						if disagreed[pointNames[pt]] == 1 {
							t.Logf("e.g. %s: the old rule shows %s at sequence %d, the agent recovers %s", name, id, stores[id].State().Applied, job.Points[id])
						}
						break
					}
				}
			}
		}
	}
	t.Logf("%d cases; the old rule would have shown another point in %v", cases, disagreed)
	for _, pt := range []int{pointLatestTag, pointLatestTime} {
		if disagreed[pointNames[pt]] == 0 {
			t.Errorf("no generated case where the old rule and the agent's disagree on %s: the generator misses the drift", pointNames[pt])
		}
	}
}
