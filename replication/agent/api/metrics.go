package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mtconsole/mtconsole/replication/writer"
)

// Metrics is the Prometheus side of the status API, off unless the agent
// is given an address: per pair gauges read from the Backend's Status at
// each scrape, a counter of acknowledgements fed by writer.Options.OnAck
// (Metrics.Ack), and a histogram of fdatasync latency by kind of file fed
// by writer.Options.OnFsync (Metrics.Fsync).
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
	descRPO     = prometheus.NewDesc("mtconsole_pair_rpo_seconds", "Now minus the source time of the newest durable write.", []string{"pair"}, nil)
	descBacklog = prometheus.NewDesc("mtconsole_pair_backlog_bytes", "Bytes journaled but not yet applied to the target.", []string{"pair"}, nil)
	descUsed    = prometheus.NewDesc("mtconsole_pair_retention_used_bytes", "Bytes used by the pair's retention store.", []string{"pair"}, nil)
	descApplied = prometheus.NewDesc("mtconsole_pair_applied_seq", "Highest sequence applied to the target.", []string{"pair"}, nil)
	descHealthy = prometheus.NewDesc("mtconsole_pair_healthy", "1 when the pair's health is OK.", []string{"pair", "health"}, nil)
)

// NewMetrics returns the metrics of b; Serve exposes them.
func NewMetrics(b Backend) *Metrics {
	m := &Metrics{b: b, reg: prometheus.NewRegistry(),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mtconsole_pair_acks_total",
			Help: "Cumulative acknowledgements sent (one per group commit)."}, []string{"pair"}),
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
	for _, d := range []*prometheus.Desc{descRPO, descBacklog, descUsed, descApplied, descHealthy} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one Status per scrape.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	st, err := m.b.Status()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(descRPO, err)
		return
	}
	for _, p := range st.Pairs {
		if !p.RPOUnknown { // no sample until the source is heard from
			ch <- prometheus.MustNewConstMetric(descRPO, prometheus.GaugeValue, p.RPOSeconds, p.ID)
		}
		ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(p.BacklogBytes), p.ID)
		ch <- prometheus.MustNewConstMetric(descUsed, prometheus.GaugeValue, float64(p.Retention.UsedBytes), p.ID)
		ch <- prometheus.MustNewConstMetric(descApplied, prometheus.GaugeValue, float64(p.AppliedSeq), p.ID)
		ok := 0.0
		if p.Health == writer.HealthOK {
			ok = 1
		}
		ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, ok, p.ID, p.Health)
	}
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler { return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}) }

// Serve listens on the TCP address addr (e.g. "127.0.0.1:9464") and serves
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
