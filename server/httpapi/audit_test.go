package httpapi

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/store"
	"github.com/pamd/pamd/store/storetest"
)

// auditAPI is an API over a store whose audit log holds n events: event i
// (from 1) by alice when i is odd, else bob, action session.start on
// target t<i%3>, a minute apart ending now.
func auditAPI(t *testing.T, n int) (*API, time.Time) {
	t.Helper()
	st := storetest.Open(t)
	s := New(Config{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	start := time.Now().UTC().Add(-time.Duration(n) * time.Minute)
	err := st.Update(func(tx *store.Tx) error {
		for i := 1; i <= n; i++ {
			actor := map[bool]string{true: "alice", false: "bob"}[i%2 == 1]
			ev := &store.AuditEvent{Time: start.Add(time.Duration(i) * time.Minute), Actor: actor, Action: "session.start",
				Target: "t" + string(rune('0'+i%3)), Outcome: "success", Detail: "event"}
			if i == n {
				ev.Actor, ev.Detail = "=cmd|' /C calc'!A0", "a formula" // what a failed login's name can be
			}
			if err := tx.AppendAudit(ev); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return s, start
}

// callAudit runs an audit handler as an auditor and returns the answer.
func callAudit(t *testing.T, h func(http.ResponseWriter, *http.Request) error, url string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", url, nil)
	req = req.WithContext(auth.WithCaller(req.Context(), &auth.Caller{User: &store.User{Roles: []string{"auditor"}}}))
	w := httptest.NewRecorder()
	s := &API{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := h(w, req); err != nil {
		s.writeError(w, req, err)
	}
	return w
}

var nextLink = regexp.MustCompile(`^<(/api/v1/audit\?[^>]+)>; rel="next"$`)

// Pages of the audit log come newest first, each with the cursor to the
// next one, until the oldest; the filters hold on every page.
func TestAuditPagesNewestFirst(t *testing.T) {
	s, _ := auditAPI(t, 25)
	var seqs []uint64
	url := "/api/v1/audit?limit=10"
	for pages := 0; url != ""; pages++ {
		if pages > 3 {
			t.Fatal("more pages than events")
		}
		w := callAudit(t, s.handleListAudit, url)
		var evs []api.AuditEvent
		if err := json.Unmarshal(w.Body.Bytes(), &evs); err != nil || w.Code != 200 {
			t.Fatalf("%s: %d %s", url, w.Code, w.Body)
		}
		for _, e := range evs {
			seqs = append(seqs, e.Seq)
		}
		url = ""
		if m := nextLink.FindStringSubmatch(w.Header().Get("Link")); m != nil {
			url = m[1]
		}
	}
	if len(seqs) != 25 || seqs[0] != 25 || seqs[24] != 1 {
		t.Fatalf("pages gave %v, want 25 down to 1", seqs)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]-1 {
			t.Fatalf("not newest first, or a gap: %v", seqs)
		}
	}

	// Filters: alice's events on t1, 5 at a time; the cursor keeps them.
	w := callAudit(t, s.handleListAudit, "/api/v1/audit?actor=alice&target=t1&limit=2")
	var evs []api.AuditEvent
	json.Unmarshal(w.Body.Bytes(), &evs)
	m := nextLink.FindStringSubmatch(w.Header().Get("Link"))
	if len(evs) != 2 || evs[0].Seq != 19 || evs[1].Seq != 13 || m == nil || !strings.Contains(m[1], "actor=alice") || !strings.Contains(m[1], "before=13") {
		t.Fatalf("filtered page %+v, link %q", evs, w.Header().Get("Link"))
	}
	w = callAudit(t, s.handleListAudit, m[1])
	json.Unmarshal(w.Body.Bytes(), &evs)
	if len(evs) != 2 || evs[0].Seq != 7 || evs[1].Seq != 1 || w.Header().Get("Link") != "" {
		t.Fatalf("last filtered page %+v, link %q", evs, w.Header().Get("Link"))
	}

	// A window given as a duration is a time in the next page's URL, so
	// that every page has the same window.
	w = callAudit(t, s.handleListAudit, "/api/v1/audit?since=1h&limit=5")
	m = nextLink.FindStringSubmatch(w.Header().Get("Link"))
	if m == nil || strings.Contains(m[1], "since=1h") || !strings.Contains(m[1], "since=20") {
		t.Fatalf("next page of since=1h: %q", w.Header().Get("Link"))
	}
	if w = callAudit(t, s.handleListAudit, m[1]); w.Code != 200 {
		t.Fatalf("%s: %d %s", m[1], w.Code, w.Body)
	}
}

// since and until take a duration before now or a time; user is actor's
// old name; bad values are refused.
func TestAuditFilters(t *testing.T) {
	s, start := auditAPI(t, 10)
	count := func(url string) int {
		t.Helper()
		w := callAudit(t, s.handleListAudit, url)
		var evs []api.AuditEvent
		if err := json.Unmarshal(w.Body.Bytes(), &evs); err != nil {
			t.Fatalf("%s: %d %s", url, w.Code, w.Body)
		}
		return len(evs)
	}
	until := start.Add(4*time.Minute + 30*time.Second).Format(time.RFC3339)
	for url, want := range map[string]int{
		"/api/v1/audit":                            10,
		"/api/v1/audit?since=150s":                 3, // events 8 to 10
		"/api/v1/audit?until=" + until:             4,
		"/api/v1/audit?user=bob":                   4, // 10 is the formula's
		"/api/v1/audit?actor=bob&action=session":   4,
		"/api/v1/audit?action=sess":                0, // a family is a whole word
		"/api/v1/audit?before=4":                   3,
		"/api/v1/audit?before=99":                  10,
		"/api/v1/audit?since=7m30s&until=" + until: 2, // events 3 and 4
	} {
		if got := count(url); got != want {
			t.Errorf("%s: %d events, want %d", url, got, want)
		}
	}
	for _, url := range []string{"/api/v1/audit?since=-1h", "/api/v1/audit?until=tomorrow", "/api/v1/audit?before=x", "/api/v1/audit?limit=0"} {
		if w := callAudit(t, s.handleListAudit, url); w.Code != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", url, w.Code)
		}
	}
}

// The export streams every matching event, oldest first, in more than one
// batch: JSON lines as the chain holds them, or CSV with formulas defused.
func TestAuditExport(t *testing.T) {
	n := auditBatch*2 + 7
	s, _ := auditAPI(t, n)
	w := callAudit(t, s.handleExportAudit, "/api/v1/audit/export?format=jsonl")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/x-ndjson" || !strings.Contains(w.Header().Get("Content-Disposition"), "pamd-audit.jsonl") {
		t.Fatalf("jsonl: %d %v", w.Code, w.Header())
	}
	sc := bufio.NewScanner(w.Body)
	var last uint64
	for sc.Scan() {
		var e api.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Seq != last+1 || e.Hash == "" {
			t.Fatalf("line after %d: %q (%v)", last, sc.Text(), err)
		}
		last = e.Seq
	}
	if last != uint64(n) {
		t.Fatalf("jsonl export ends at %d of %d", last, n)
	}

	w = callAudit(t, s.handleExportAudit, "/api/v1/audit/export?format=csv&actor=bob&target=t2")
	rows, err := csv.NewReader(w.Body).ReadAll()
	if err != nil || w.Header().Get("Content-Type") != "text/csv; charset=utf-8" {
		t.Fatalf("csv: %v %v", err, w.Header())
	}
	want := 0
	for i := 1; i < n; i++ {
		if i%2 == 0 && i%3 == 2 {
			want++
		}
	}
	if rows[0][0] != "seq" || rows[0][9] != "hash" || len(rows)-1 != want || rows[1][0] != "2" || rows[1][2] != "bob" {
		t.Fatalf("csv: %d rows (want %d), first %q", len(rows)-1, want, rows[:2])
	}

	w = callAudit(t, s.handleExportAudit, "/api/v1/audit/export?format=csv&since=30s")
	rows, _ = csv.NewReader(w.Body).ReadAll()
	if len(rows) != 2 || rows[1][2] != "'=cmd|' /C calc'!A0" {
		t.Fatalf("the formula is not defused: %q", rows)
	}
	if w := callAudit(t, s.handleExportAudit, "/api/v1/audit/export?format=xml"); w.Code != http.StatusBadRequest {
		t.Fatalf("format=xml: %d", w.Code)
	}
}

// How a session ended, for people, from the reason stored.
func TestEndedText(t *testing.T) {
	now := time.Now()
	ended := func(reason string) *store.Session {
		return &store.Session{UserName: "alice", EndedAt: now.Add(-time.Minute), EndReason: reason, ExpiresAt: now.Add(time.Hour)}
	}
	for _, tt := range []struct {
		s    *store.Session
		want string
	}{
		{&store.Session{UserName: "alice", ExpiresAt: now.Add(time.Hour)}, ""},
		{&store.Session{UserName: "alice", ExpiresAt: now.Add(-time.Hour)}, "expired"},
		{ended("ended by alice"), "ended by the user"},
		{ended("terminated by alice"), "ended by the user"},
		{ended("terminated by root"), "ended by admin root"},
		{ended("role ops removed by root"), "role ops removed by root"},
		{ended("expired"), "expired"},
	} {
		if got := endedText(tt.s, now); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.s.EndReason, got, tt.want)
		}
	}
}
