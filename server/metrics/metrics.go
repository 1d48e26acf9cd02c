package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// M holds the server's metrics. Its methods do nothing on a nil *M.
type M struct {
	reg            *prometheus.Registry
	sessions       *prometheus.CounterVec
	conns          *prometheus.CounterVec
	connsActive    *prometheus.GaugeVec
	bytes          *prometheus.CounterVec
	connectSetup   *prometheus.HistogramVec
	logins         *prometheus.CounterVec
	rotations      *prometheus.CounterVec
	recordsRefused prometheus.Counter
	storeTx        *prometheus.HistogramVec
}

// Gateway is one gateway's state at scrape time.
type Gateway struct {
	Name           string
	Online         bool
	LastSeen       time.Time
	BacklogRecords int64 // what its spool last said it holds (online gateways)
	BacklogBytes   int64
}

// State is what the gauges read from the server when scraped.
type State struct {
	LiveSessions func() int
	Gateways     func() []Gateway
}

// New registers pamd's metrics and the Go runtime's and process's.
func New(state State) *M {
	m := &M{reg: prometheus.NewRegistry()}
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pamd_sessions_opened_total",
		Help: "Access sessions opened, by resource type."}, []string{"type"})
	m.conns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pamd_connections_total",
		Help: "Connections relayed to gateways, by resource type and outcome (ok, refused, failed)."}, []string{"type", "outcome"})
	m.connsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pamd_connections_active",
		Help: "Connections being relayed now, by resource type."}, []string{"type"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pamd_connection_bytes_total",
		Help: "Bytes relayed, by resource type and direction (up: client to target)."}, []string{"type", "direction"})
	m.connectSetup = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pamd_connection_setup_seconds",
		Help:    "From a connection's access stream to its first relayed byte (gateway dial and login included), by resource type.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"type"})
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pamd_logins_total",
		Help: "Logins by outcome (success, failure, mfa_required, throttled)."}, []string{"outcome"})
	m.rotations = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pamd_rotations_total",
		Help: "Credential rotations by outcome (success, failure)."}, []string{"outcome"})
	m.recordsRefused = prometheus.NewCounter(prometheus.CounterOpts{Name: "pamd_record_batches_refused_total",
		Help: "Record batches from gateways the server could not read or store."})
	m.storeTx = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pamd_store_transaction_seconds",
		Help:    "Store transactions, by kind (read, write), commit included.",
		Buckets: prometheus.ExponentialBuckets(0.00005, 2, 16)}, []string{"kind"})
	m.reg.MustRegister(m.sessions, m.conns, m.connsActive, m.bytes, m.connectSetup, m.logins, m.rotations, m.recordsRefused, m.storeTx,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), &stateCollector{state: state})
	return m
}

// Handler serves the metrics in Prometheus's text format.
func (m *M) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

func (m *M) SessionOpened(typ string) {
	if m != nil {
		m.sessions.WithLabelValues(typ).Inc()
	}
}

// ConnectionStarted counts a connection whose first byte is about to be
// relayed, setup after its access stream arrived; done ends it.
func (m *M) ConnectionStarted(typ string, setup time.Duration) (done func(up, down int64)) {
	if m == nil {
		return func(int64, int64) {}
	}
	m.connectSetup.WithLabelValues(typ).Observe(setup.Seconds())
	m.conns.WithLabelValues(typ, "ok").Inc()
	active := m.connsActive.WithLabelValues(typ)
	active.Inc()
	return func(up, down int64) {
		active.Dec()
		m.bytes.WithLabelValues(typ, "up").Add(float64(up))
		m.bytes.WithLabelValues(typ, "down").Add(float64(down))
	}
}

// ConnectionRefused counts a connection that never relayed a byte:
// outcome "refused" (pamd or the gateway said no) or "failed".
func (m *M) ConnectionRefused(typ, outcome string) {
	if m != nil {
		m.conns.WithLabelValues(typ, outcome).Inc()
	}
}

func (m *M) Login(outcome string) {
	if m != nil {
		m.logins.WithLabelValues(outcome).Inc()
	}
}

func (m *M) Rotation(outcome string) {
	if m != nil {
		m.rotations.WithLabelValues(outcome).Inc()
	}
}

func (m *M) RecordBatchRefused() {
	if m != nil {
		m.recordsRefused.Inc()
	}
}

// StoreTransaction is the store's observer (store.Store.Observe).
func (m *M) StoreTransaction(write bool, d time.Duration) {
	if m == nil {
		return
	}
	kind := "read"
	if write {
		kind = "write"
	}
	m.storeTx.WithLabelValues(kind).Observe(d.Seconds())
}

// stateCollector reads the gauges of the server's state at scrape time.
type stateCollector struct{ state State }

var (
	descLive     = prometheus.NewDesc("pamd_sessions_active", "Access sessions live now.", nil, nil)
	descOnline   = prometheus.NewDesc("pamd_gateway_online", "1 when the gateway is connected.", []string{"gateway"}, nil)
	descLastSeen = prometheus.NewDesc("pamd_gateway_last_seen_timestamp_seconds", "When the gateway was last connected (now, for a connected one).", []string{"gateway"}, nil)
	descBacklog  = prometheus.NewDesc("pamd_gateway_spool_records", "Records the gateway's spool holds, as it last reported.", []string{"gateway"}, nil)
	descBacklogB = prometheus.NewDesc("pamd_gateway_spool_bytes", "Bytes the gateway's spool holds, as it last reported.", []string{"gateway"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descLive, descOnline, descLastSeen, descBacklog, descBacklogB} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.state.LiveSessions != nil {
		ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(c.state.LiveSessions()))
	}
	if c.state.Gateways == nil {
		return
	}
	for _, g := range c.state.Gateways() {
		online := 0.0
		if g.Online {
			online = 1
		}
		ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, online, g.Name)
		if !g.LastSeen.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastSeen, prometheus.GaugeValue, float64(g.LastSeen.Unix()), g.Name)
		}
		if g.Online {
			ch <- prometheus.MustNewConstMetric(descBacklog, prometheus.GaugeValue, float64(g.BacklogRecords), g.Name)
			ch <- prometheus.MustNewConstMetric(descBacklogB, prometheus.GaugeValue, float64(g.BacklogBytes), g.Name)
		}
	}
}
