// Package metrics is the server's Prometheus metrics (client_golang): one
// registry, the counters and histograms the parts update (nil-safe, so a
// part built without metrics, as in unit tests, works the same), and the
// gauges read at scrape time from the parts' state (live sessions,
// gateways, their spool backlogs).
//
// Files: metrics.go.
package metrics
