package tui

import (
	"fmt"
	"testing"

	tea "charm.land/bubbletea/v2"

	"github.com/mtconsole/mtconsole/replication/agent/api"
)

func BenchmarkDashboardView256(b *testing.B) {
	st := fxStatus(0)
	base := st.Pairs
	st.Pairs = make([]api.PairStatus, 0, 256)
	for i := range 256 {
		p := base[i%len(base)]
		p.ID = fmt.Sprintf("pair-%03d", i)
		st.Pairs = append(st.Pairs, p)
	}
	m := New(b.Context(), Options{Now: fxClock, Actions: &fakeActions{}})
	m.Update(tea.WindowSizeMsg{Width: 120, Height: 40})
	for _, msg := range fxReplay(b).Msgs() {
		m.Update(msg)
	}
	m.Update(StatusMsg{Status: st, At: fxNow})
	press(m, "j", "j", "j")
	b.ReportAllocs()
	for b.Loop() {
		_ = m.View()
	}
}
