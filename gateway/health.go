package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// health is what the gateway's --health-listen address tells a probe or
// a Prometheus scraper: whether the gateway is connected to the server,
// its connections by protocol, its spool's backlog and failed uploads.
type health struct {
	connected atomic.Bool
	reg       *prometheus.Registry
	conns     *prometheus.CounterVec
	active    *prometheus.GaugeVec
	uploads   prometheus.Counter
}

func newHealth(g *gateway) *health {
	h := &health{reg: prometheus.NewRegistry()}
	h.conns = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pamd_gateway_connections_total",
		Help: "Connections the gateway served, by protocol."}, []string{"protocol"})
	h.active = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pamd_gateway_connections_active",
		Help: "Connections the gateway serves now, by protocol."}, []string{"protocol"})
	h.uploads = prometheus.NewCounter(prometheus.CounterOpts{Name: "pamd_gateway_record_upload_failures_total",
		Help: "Record uploads to the server that failed (they are retried; the records stay in the spool)."})
	connected := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pamd_gateway_connected",
		Help: "1 while the gateway is connected to the server."}, func() float64 {
		if h.connected.Load() {
			return 1
		}
		return 0
	})
	backlog := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pamd_gateway_spool_records",
		Help: "Records in the spool, not yet acknowledged by the server."}, func() float64 { return float64(g.spool.backlog().Records) })
	backlogBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pamd_gateway_spool_bytes",
		Help: "Bytes in the spool, not yet acknowledged by the server."}, func() float64 { return float64(g.spool.backlog().Bytes) })
	h.reg.MustRegister(h.conns, h.active, h.uploads, connected, backlog, backlogBytes,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return h
}

// connection counts one proxied connection until the returned func.
func (h *health) connection(protocol string) (done func()) {
	h.conns.WithLabelValues(protocol).Inc()
	active := h.active.WithLabelValues(protocol)
	active.Inc()
	return active.Dec
}

func (h *health) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { plain(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !h.connected.Load() {
			plain(w, http.StatusServiceUnavailable, "not ready: not connected to the server")
			return
		}
		plain(w, http.StatusOK, "ready")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{Registry: h.reg}))
	return mux
}

func plain(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintln(w, text)
}

// serveHealth serves the health address until the returned stop; with no
// address it does nothing.
func (g *gateway) serveHealth(addr string) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--health-listen %s: %w", addr, err)
	}
	hs := &http.Server{Handler: g.health.handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	g.log.Info("health and metrics listening", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		hs.Close()
		<-done
	}, nil
}
