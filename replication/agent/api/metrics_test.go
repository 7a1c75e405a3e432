package api

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics(t *testing.T) {
	a := newAgent(t, "p1")
	a.b.SetReplication(func() map[string]Replication {
		return map[string]Replication{"p1": {State: "Resync Step II", Done: 100, Total: 1000}}
	})
	m := NewMetrics(a.b)
	if err := m.Serve("127.0.0.1:0", nil); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Ack("p1", 5)
	m.Ack("p1", 9)
	m.Fsync("p1", "journal", 300*time.Microsecond)
	m.Fsync("p1", "journal", 2*time.Millisecond)
	m.Fsync("p1", "target", 7*time.Second)
	resp, err := http.Get("http://" + m.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	st := a.w.Pair("p1").Status()
	if st.JournaledBytes <= 0 || st.AppliedBytes != st.JournaledBytes || st.RetainedBytes <= 0 || st.RetainedBytes > st.AppliedBytes {
		t.Errorf("byte counters: journaled %d, applied %d, retained %d", st.JournaledBytes, st.AppliedBytes, st.RetainedBytes)
	}
	for _, want := range []string{
		`mtconsole_build_info{commit="`,
		`goversion="go1.`,
		`version="test"} 1`,
		`mtconsole_pair_acks_total{pair="p1"} 2`,
		`mtconsole_pair_applied_sequence{pair="p1"} 66`,
		`mtconsole_pair_state{pair="p1",state="Resync Step II"} 1`,
		`mtconsole_pair_state{pair="p1",state="Differential Sync"} 0`,
		`mtconsole_pair_state{pair="p1",state="Queued"} 0`,
		`mtconsole_pair_health{health="RPO breach",pair="p1"} 1`,
		`mtconsole_pair_health{health="OK",pair="p1"} 0`,
		`mtconsole_pair_health{health="Paused",pair="p1"} 0`,
		`mtconsole_pair_journaled_bytes_total{pair="p1"} ` + itoa(st.JournaledBytes),
		`mtconsole_pair_applied_bytes_total{pair="p1"} ` + itoa(st.AppliedBytes),
		`mtconsole_pair_retained_bytes_total{pair="p1"} ` + itoa(st.RetainedBytes),
		`mtconsole_retention_window_start_timestamp_seconds{pair="p1"} ` + strconv.FormatFloat(float64(st.Retention.From.UnixNano())/1e9, 'g', -1, 64),
		`mtconsole_resync_remaining_bytes{pair="p1"} 900`,
		`mtconsole_pair_rpo_seconds{pair="p1"} 3599.94`,
		`mtconsole_pair_backlog_bytes{pair="p1"}`,
		`mtconsole_pair_retention_used_bytes{pair="p1"} ` + itoa(st.Retention.UsedBytes),
		`mtconsole_fsync_duration_seconds_bucket{file="journal",le="0.0004"} 1`,
		`mtconsole_fsync_duration_seconds_bucket{file="journal",le="0.0032"} 2`,
		`mtconsole_fsync_duration_seconds_count{file="journal"} 2`,
		`mtconsole_fsync_duration_seconds_bucket{file="target",le="6.5536"} 0`,
		`mtconsole_fsync_duration_seconds_bucket{file="target",le="+Inf"} 1`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The old names: a health as a changing label value, a sequence
	// without a unit.
	for _, gone := range []string{"mtconsole_pair_healthy", "mtconsole_pair_applied_seq{"} {
		if strings.Contains(string(body), gone) {
			t.Errorf("metrics still have %s", gone)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
	// Prometheus' own linter finds nothing to say of any of them.
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// A pair with no network layer (no state) has no state series, and a
// pair not resyncing has 0 bytes left.
func TestMetricsWithoutReplication(t *testing.T) {
	a := newAgent(t, "p1")
	m := NewMetrics(a.b)
	problems, err := testutil.GatherAndLint(m.reg)
	if err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	err = testutil.GatherAndCompare(m.reg, strings.NewReader(`# HELP mtconsole_resync_remaining_bytes Bytes the pair's resync has still to copy (0 when not resyncing).
# TYPE mtconsole_resync_remaining_bytes gauge
mtconsole_resync_remaining_bytes{pair="p1"} 0
`), "mtconsole_resync_remaining_bytes", "mtconsole_pair_state")
	if err != nil {
		t.Error(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
