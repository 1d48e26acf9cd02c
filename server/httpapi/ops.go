package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
)

// What operators ask of a running server: health for probes and load
// balancers, the audit head to keep outside pamd, and hot backups.

// handleHealthz answers while the process serves HTTP at all.
func (s *API) handleHealthz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintln(w, "ok")
	return nil
}

// handleReadyz answers 200 when the server can do its work: the store
// takes a write and the tunnel listener accepts; 503 with the reason
// otherwise.
func (s *API) handleReadyz(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	err := s.ready.check(s.st)
	if err == nil && s.cfg.Listening != nil && !s.cfg.Listening() {
		err = fmt.Errorf("the tunnel listener is not accepting")
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", publicReason(err))
		return nil
	}
	fmt.Fprintln(w, "ready")
	return nil
}

// publicReason is what an unauthenticated probe may learn of a failure.
func publicReason(err error) string {
	if isCannotWrite(err) {
		return cannotWrite
	}
	return strings.TrimPrefix(err.Error(), "store: ")
}

func (s *API) handleAuditHead(w http.ResponseWriter, r *http.Request) error {
	var out api.AuditHead
	err := s.st.View(func(tx *store.Tx) (err error) { out.Seq, out.Hash, err = tx.AuditHead(); return err })
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// parseExpect reads an audit head as `pamd audit head` prints it: SEQ:HASH
// or the hash alone.
func parseExpect(v string) (uint64, string, error) {
	seqText, hash, ok := strings.Cut(v, ":")
	if !ok {
		seqText, hash = "", v
	}
	var seq uint64
	if seqText != "" {
		n, err := strconv.ParseUint(seqText, 10, 64)
		if err != nil {
			return 0, "", api.Errorf(http.StatusBadRequest, "--expect %q: want SEQ:HASH or HASH, as pamd audit head prints", v)
		}
		seq = n
	}
	if len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return 0, "", api.Errorf(http.StatusBadRequest, "--expect %q: the hash is 64 hex digits", v)
	}
	return seq, hash, nil
}

// handleBackup streams a consistent copy of the data file, still sealed
// under the master key.
func (s *API) handleBackup(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="pamd-backup.db"`)
	w.Header().Set("Cache-Control", "no-store")
	n, err := s.st.Backup(w, func(size int64) { w.Header().Set("Content-Length", strconv.FormatInt(size, 10)) })
	if err != nil {
		// The status is sent; a cut stream is what the client sees.
		s.log.Error("backup failed", "user", c.User.Name, "bytes", n, "err", err)
		s.trail.Event(c.User.Name, "store.backup", "", "failure", c.Source, err.Error())
		return nil
	}
	s.trail.Event(c.User.Name, "store.backup", "", "success", c.Source, fmt.Sprintf("%d bytes", n))
	return nil
}

// readiness is the store's last check, at most a second old: anyone may
// ask /readyz. The store is ready when it opens for reading and its last
// commit worked with room left on its disk; after a failed commit, a probe
// write tells when it works again.
type readiness struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

func (r *readiness) check(st *store.Store) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.at) < time.Second {
		return r.err
	}
	r.at = time.Now()
	if r.err = st.View(func(*store.Tx) error { return nil }); r.err != nil {
		return r.err
	}
	if st.WriteHealth() != nil {
		st.Update(func(tx *store.Tx) error { return tx.PutSecret("readyz", []byte(r.at.UTC().Format(time.RFC3339))) })
	}
	r.err = st.WriteHealth()
	return r.err
}

// handleMetrics serves the metrics to an admin's or auditor's token (a
// scraper without one uses pamd server --metrics-listen).
func (s *API) handleMetrics(w http.ResponseWriter, r *http.Request) error {
	s.cfg.Metrics.Handler().ServeHTTP(w, r)
	return nil
}

// OpsHandler serves /healthz, /readyz and /metrics with no login, for the
// server's --metrics-listen address (one an operator keeps off the
// internet).
func (s *API) OpsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.wrap(auth.Public, s.handleHealthz))
	mux.Handle("GET /readyz", s.wrap(auth.Public, s.handleReadyz))
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", s.cfg.Metrics.Handler())
	}
	return mux
}
