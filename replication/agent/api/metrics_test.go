package api

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMetrics(t *testing.T) {
	a := newAgent(t, "p1")
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
	for _, want := range []string{
		`mtconsole_pair_acks_total{pair="p1"} 2`,
		`mtconsole_pair_applied_seq{pair="p1"} 66`,
		`mtconsole_pair_rpo_seconds{pair="p1"} 3599.94`,
		`mtconsole_pair_backlog_bytes{pair="p1"}`,
		`mtconsole_pair_retention_used_bytes{pair="p1"} ` + itoa(st.Retention.UsedBytes),
		`mtconsole_pair_healthy{health="RPO breach",pair="p1"} 0`,
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
	if t.Failed() {
		t.Logf("metrics:\n%s", body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
