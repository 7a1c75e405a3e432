package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mtconsole/mtconsole/replication/wire"
	"github.com/mtconsole/mtconsole/replication/writer"
)

// Metrics is the Prometheus side of the status API, off unless the agent
// is given an address. The names follow Prometheus' conventions: base
// units (seconds, bytes) in the name, _total on counters, _info for
// constant labels, and a state as one series per possible value (0 or 1)
// rather than a label whose value changes. Per pair gauges and counters
// are read from the Backend's Status at each scrape; the counter of
// acknowledgements is fed by writer.Options.OnAck (Metrics.Ack), and the
// histogram of fdatasync latency by kind of file by writer.Options.OnFsync
// (Metrics.Fsync). README.md lists them.
type Metrics struct {
	b     Backend
	reg   *prometheus.Registry
	acks  *prometheus.CounterVec
	fsync *prometheus.HistogramVec
	ln    net.Listener
	hs    *http.Server
	done  chan struct{}
}

var (
	descBuild = prometheus.NewDesc("mtconsole_build_info", "Always 1: the agent's version, VCS commit and Go version as labels.",
		[]string{"version", "commit", "goversion"}, nil)
	descRPO        = prometheus.NewDesc("mtconsole_pair_rpo_seconds", "Now minus the source time of the newest durable write (absent until the source is heard from).", []string{"pair"}, nil)
	descBacklog    = prometheus.NewDesc("mtconsole_pair_backlog_bytes", "Bytes journaled but not yet applied to the target.", []string{"pair"}, nil)
	descUsed       = prometheus.NewDesc("mtconsole_pair_retention_used_bytes", "Bytes used by the pair's retention store.", []string{"pair"}, nil)
	descApplied    = prometheus.NewDesc("mtconsole_pair_applied_sequence", "Sequence number (a position in the pair's write order) of the newest write applied to the target.", []string{"pair"}, nil)
	descState      = prometheus.NewDesc("mtconsole_pair_state", "1 for the pair's replication state, 0 for every other state.", []string{"pair", "state"}, nil)
	descHealth     = prometheus.NewDesc("mtconsole_pair_health", "1 for the pair's health, 0 for every other health.", []string{"pair", "health"}, nil)
	descJournaled  = prometheus.NewDesc("mtconsole_pair_journaled_bytes_total", "Bytes of writes journaled since the pair was opened.", []string{"pair"}, nil)
	descAppliedB   = prometheus.NewDesc("mtconsole_pair_applied_bytes_total", "Bytes of writes applied to the target since the pair was opened.", []string{"pair"}, nil)
	descRetained   = prometheus.NewDesc("mtconsole_pair_retained_bytes_total", "Bytes of before-images written to the retention store since the pair was opened (a zero-filled before-image is kept as its length and not counted).", []string{"pair"}, nil)
	descWindow     = prometheus.NewDesc("mtconsole_retention_window_start_timestamp_seconds", "Unix time of the oldest point the pair can be recovered to (absent while retention is empty).", []string{"pair"}, nil)
	descResyncLeft = prometheus.NewDesc("mtconsole_resync_remaining_bytes", "Bytes the pair's resync has still to copy (0 when not resyncing).", []string{"pair"}, nil)
)

// NewMetrics returns the metrics of b; Serve exposes them.
func NewMetrics(b Backend) *Metrics {
	m := &Metrics{b: b, reg: prometheus.NewRegistry(),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mtconsole_pair_acks_total",
			Help: "Acknowledgements sent (one per group commit)."}, []string{"pair"}),
		fsync: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "mtconsole_fsync_duration_seconds",
			Help:    "How long fdatasyncs took, by kind of file: journal, retention or target.",
			Buckets: writer.FsyncBuckets}, []string{"file"})}
	m.reg.MustRegister(m, m.acks, m.fsync, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Ack counts an acknowledgement: pass it as writer.Options.OnAck.
func (m *Metrics) Ack(pair string, _ uint64) { m.acks.WithLabelValues(pair).Inc() }

// Fsync observes an fdatasync: pass it as writer.Options.OnFsync.
func (m *Metrics) Fsync(_, file string, d time.Duration) {
	m.fsync.WithLabelValues(file).Observe(d.Seconds())
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuild, descRPO, descBacklog, descUsed, descApplied, descState, descHealth,
		descJournaled, descAppliedB, descRetained, descWindow, descResyncLeft} {
		ch <- d
	}
}

// buildCommit is the VCS revision the binary was built from ("unknown"
// when it was built outside a repository), "-dirty" when modified.
func buildCommit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "unknown", ""
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && s.Value != "":
			rev = s.Value
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "-dirty"
		}
	}
	return rev + dirty
}

// Collect implements prometheus.Collector: one Status per scrape.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	st, err := m.b.Status()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descRPO, err)
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	oneOf := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	gauge(descBuild, 1, st.Version, buildCommit(), runtime.Version())
	for _, p := range st.Pairs {
		if !p.RPOUnknown { // no sample until the source is heard from
			gauge(descRPO, p.RPOSeconds, p.ID)
		}
		gauge(descBacklog, float64(p.BacklogBytes), p.ID)
		gauge(descUsed, float64(p.Retention.UsedBytes), p.ID)
		gauge(descApplied, float64(p.AppliedSeq), p.ID)
		if p.State != "" { // no network layer: no state to tell
			for _, s := range wire.PairStates() {
				gauge(descState, oneOf(p.State == s.String()), p.ID, s.String())
			}
		}
		for _, h := range writer.Healths {
			gauge(descHealth, oneOf(p.Health == h), p.ID, h)
		}
		counter(descJournaled, p.JournaledBytes, p.ID)
		counter(descAppliedB, p.AppliedBytes, p.ID)
		counter(descRetained, p.RetainedBytes, p.ID)
		if !p.Retention.From.IsZero() {
			gauge(descWindow, float64(p.Retention.From.UnixNano())/1e9, p.ID)
		}
		left := 0.0
		if r := p.Resync; r != nil && r.TotalBytes > r.DoneBytes {
			left = float64(r.TotalBytes - r.DoneBytes)
		}
		gauge(descResyncLeft, left, p.ID)
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// Serve listens on the TCP address addr (e.g. "127.0.0.1:9460") and serves
// /metrics until Close.
func (m *Metrics) Serve(addr string, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	m.ln, m.done = ln, make(chan struct{})
	m.hs = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(m.done)
		if err := m.hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics stopped", "err", err)
		}
	}()
	return nil
}

// Addr is the address Serve listens on.
func (m *Metrics) Addr() string { return m.ln.Addr().String() }

// Close stops serving.
func (m *Metrics) Close() error {
	if m.hs == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.hs.Shutdown(ctx)
	<-m.done
	return err
}
