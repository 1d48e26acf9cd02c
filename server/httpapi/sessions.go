package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/audit"
	"github.com/pamd/pamd/server/auth"
	"github.com/pamd/pamd/server/requests"
	"github.com/pamd/pamd/server/sessions"
	"github.com/pamd/pamd/store"
)

const defaultSessionDuration = time.Hour

func (s *API) handleCreateSession(w http.ResponseWriter, r *http.Request) error {
	var req api.CreateSessionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	c := auth.CallerOf(r)
	target := audit.Name(req.Resource) + "/" + audit.Name(req.Account)
	deny := func(status int, format string, args ...any) *api.Error {
		e := api.Errorf(status, format, args...)
		s.trail.Event(c.User.Name, "access.deny", target, "failure", c.Source, e.Message)
		return e
	}
	want := defaultSessionDuration
	if req.Duration != "" {
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return api.Errorf(http.StatusBadRequest, "duration %q: want a duration such as 30m or 2h", req.Duration)
		}
		want = d
	}
	var (
		res  *store.Resource
		acct *store.Account
	)
	err := s.st.View(func(tx *store.Tx) (err error) {
		if res, err = tx.ResourceByName(req.Resource); err != nil {
			return err
		}
		acct, err = tx.AccountByName(res.ID, req.Account)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	// A target that does not exist gets the answer of one not granted, so
	// the API does not tell a user which names exist.
	g, ok := sessions.GrantFor(c.Roles, req.Resource, req.Account)
	if err == nil && !ok { // perhaps an approved access request grants it
		var refusal *api.Error
		if g, ok, refusal = s.requestGrant(c, req.Resource, req.Account); refusal != nil {
			return deny(refusal.Status, "%s", refusal.Message)
		}
	}
	if err != nil || !ok {
		e := deny(http.StatusForbidden, "access to %s denied: it does not exist or none of your roles (%s) allows it", target, strings.Join(c.User.Roles, ", "))
		e.Code = api.CodeNotGranted
		return e
	}
	if g.RequireReason && strings.TrimSpace(req.Reason) == "" {
		return deny(http.StatusBadRequest, "access to %s needs a reason: add --reason", target)
	}
	if len(req.Reason) > 1024 {
		return api.Errorf(http.StatusBadRequest, "reason: at most 1024 characters")
	}
	// A fresh MFA at the SSO provider stands for a TOTP code (pamd sso set
	// --require-mfa-claim).
	providerMFA := acct.RequireMFA && s.providerMFA(c, req.TOTP)
	totpNeeded := acct.RequireMFA && !providerMFA
	if totpNeeded {
		if c.User.MFASecret == "" && c.User.IsSSO() {
			return deny(http.StatusForbidden, "%s", s.ssoMFAMissing(target))
		}
		if c.User.MFASecret == "" {
			return deny(http.StatusForbidden, "account %s requires MFA and you have none enrolled: run pamd mfa enroll", target)
		}
		if req.TOTP == "" {
			return &api.Error{Status: http.StatusUnauthorized, Code: api.CodeMFARequired, Message: "account " + target + " requires a fresh MFA code: add --totp"}
		}
		if err := s.auth.MFAWait(c); err != nil {
			return err
		}
	}
	if !s.hub.Reachable(res) {
		return deny(http.StatusServiceUnavailable, "%s of resource %s is offline; the resource cannot be reached until it reconnects", offline(res), res.Name)
	}
	dur := min(want, g.MaxDuration)
	credential := "pamds_" + auth.RandomSecret(32)
	now := time.Now().UTC()
	sess := &store.Session{
		ID: store.NewID(), UserID: c.User.ID, UserName: c.User.Name, ResourceID: res.ID, ResourceName: res.Name,
		AccountID: acct.ID, AccountName: acct.Name, Reason: strings.TrimSpace(req.Reason), ClientAddr: c.Source,
		CredentialHash: auth.HashToken(credential), CreatedAt: now, ExpiresAt: now.Add(dur),
	}
	if g.Request != nil {
		sess.RequestID, sess.RequestReason = g.Request.ID, g.Request.Reason
	}
	var mfaFailed bool
	err = s.st.Update(func(tx *store.Tx) error {
		if totpNeeded {
			u, err := tx.User(c.User.ID)
			if err != nil {
				return err
			}
			if !auth.CheckTOTP(u, req.TOTP, now) {
				mfaFailed = true
				return audit.Append(tx, c.User.Name, "access.deny", target, "failure", c.Source, "wrong or reused MFA code")
			}
			if err := tx.PutUser(u); err != nil {
				return err
			}
		}
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		if g.Request != nil {
			if err := requests.NoteUse(tx, g.Request.ID, sess, c.Source); err != nil {
				return requestError(err)
			}
		}
		detail := "session " + sess.ID + " until " + sess.ExpiresAt.Format(time.RFC3339)
		if dur < want {
			detail += " (capped from " + want.String() + ")"
		}
		if sess.Reason != "" {
			detail += "; reason: " + sess.Reason
		}
		if sess.RequestID != "" {
			detail += "; under access request " + sess.RequestID
		}
		if providerMFA {
			detail += "; MFA by the SSO provider at " + c.MFAAt.Format(time.RFC3339)
		}
		if err := audit.Append(tx, c.User.Name, "access.grant", target, "success", c.Source, detail); err != nil {
			return err
		}
		return audit.Append(tx, c.User.Name, "session.start", sess.ID, "success", c.Source, target)
	})
	if err != nil {
		return err
	}
	if mfaFailed {
		s.auth.MFAFailed(c)
		return api.Errorf(http.StatusUnauthorized, "%s", auth.ErrBadCode.Error())
	}
	if totpNeeded {
		s.auth.MFASucceeded(c)
	}
	s.live.Add(sess)
	s.cfg.Metrics.SessionOpened(res.Type)
	grant := api.SessionGrant{Session: sessionView(sess, res.Type, nil), Credential: credential, Username: acct.Username}
	if c.ViaCookie {
		// The console never needs it (its terminal attaches by the cookie),
		// and a script injected into a page could carry it anywhere.
		grant.Credential = ""
	}
	k, err := s.kinds.Must(res)
	if err != nil {
		return err
	}
	if err := k.Grant(res, acct, &grant); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, grant)
	return nil
}

func sessionView(s *store.Session, resType string, conns []*store.Connection) api.Session {
	now := time.Now()
	v := api.Session{ID: s.ID, User: s.UserName, Resource: s.ResourceName, ResourceType: resType, Account: s.AccountName,
		Reason: s.Reason, ClientAddr: s.ClientAddr, CreatedAt: s.CreatedAt, ExpiresAt: s.ExpiresAt,
		EndedAt: s.EndedAt, EndReason: s.EndReason, Active: s.Active(now), Ended: endedText(s, now),
		RequestID: s.RequestID, RequestReason: s.RequestReason}
	for _, c := range conns {
		v.Connections = append(v.Connections, api.Connection{ID: c.ID, ClientAddr: c.ClientAddr, Gateway: c.Gateway, StartedAt: c.StartedAt,
			EndedAt: c.EndedAt, BytesUp: c.BytesUp, BytesDown: c.BytesDown, Error: c.Error})
	}
	sort.Slice(v.Connections, func(i, j int) bool { return v.Connections[i].StartedAt.Before(v.Connections[j].StartedAt) })
	return v
}

// endedText is api.Session.Ended: who ended a session, from the reason
// stored when it ended (the relay's "ended by USER" when pamd connect
// ends it, handleTerminateSession's "terminated by NAME").
func endedText(s *store.Session, now time.Time) string {
	if s.Active(now) {
		return ""
	}
	if s.EndedAt.IsZero() {
		return "expired"
	}
	by, ok := strings.CutPrefix(s.EndReason, "ended by ")
	if !ok {
		by, ok = strings.CutPrefix(s.EndReason, "terminated by ")
	}
	switch {
	case !ok:
		return orStr(s.EndReason, "ended")
	case by == s.UserName:
		return "ended by the user"
	}
	return "ended by admin " + by
}

func (s *API) handleListSessions(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	activeOnly := r.URL.Query().Get("active") == "true"
	out := []api.Session{}
	err := s.st.View(func(tx *store.Tx) error {
		all, err := tx.Sessions()
		for _, sess := range all {
			if !c.CanRead() && sess.UserID != c.User.ID {
				continue
			}
			if activeOnly && !sess.Active(time.Now()) {
				continue
			}
			v := sessionView(sess, "", nil)
			v.Recorded = tx.HasRecordings(sess.ID)
			out = append(out, v)
		}
		return err
	})
	if err != nil {
		return err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.After(out[j].CreatedAt) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleGetSession(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	var out api.Session
	err := s.st.View(func(tx *store.Tx) error {
		sess, err := tx.Session(r.PathValue("id"))
		if err != nil || (!c.CanRead() && sess.UserID != c.User.ID) {
			return api.Errorf(http.StatusNotFound, "no session %q", r.PathValue("id"))
		}
		conns, err := tx.Connections(sess.ID)
		if err != nil {
			return err
		}
		var resType string
		if res, err := tx.Resource(sess.ResourceID); err == nil {
			resType = res.Type
		}
		out = sessionView(sess, resType, conns)
		out.Recorded = tx.HasRecordings(sess.ID)
		return nil
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *API) handleTerminateSession(w http.ResponseWriter, r *http.Request) error {
	c := auth.CallerOf(r)
	id := r.PathValue("id")
	var sess *store.Session
	err := s.st.View(func(tx *store.Tx) (err error) { sess, err = tx.Session(id); return })
	if err != nil || (!c.IsAdmin() && sess.UserID != c.User.ID) {
		if err == nil && c.CanRead() {
			return api.Errorf(http.StatusForbidden, "permission denied: only admins terminate other users' sessions")
		}
		return api.Errorf(http.StatusNotFound, "no session %q", id)
	}
	if !sess.Active(time.Now()) {
		return api.Errorf(http.StatusConflict, "session %s is not active (%s)", id, orStr(sess.EndReason, "expired"))
	}
	s.trail.Event(c.User.Name, "session.terminate", id, "success", c.Source, sess.ResourceName+"/"+sess.AccountName+" of "+sess.UserName)
	if err := s.live.End(r.Context(), id, "terminated by "+c.User.Name, c.User.Name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "terminated"})
	return nil
}

func orStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// auditFilter selects audit events: by actor, action (or its family, as
// "session" selects session.start), target and a time window.
type auditFilter struct {
	actor, action, target string
	since, until          time.Time // zero: open
}

// parseAuditFilter reads the filters of the audit list and export: actor
// (or user, its first name), action, target, and since and until, each a
// time (RFC 3339) or a duration before now.
func parseAuditFilter(q url.Values, now time.Time) (auditFilter, error) {
	f := auditFilter{actor: orStr(q.Get("actor"), q.Get("user")), action: q.Get("action"), target: q.Get("target")}
	var err error
	if f.since, err = parseWhen("since", q.Get("since"), now); err != nil {
		return f, err
	}
	f.until, err = parseWhen("until", q.Get("until"), now)
	return f, err
}

// parseWhen reads a time as RFC 3339 or as a duration before now.
func parseWhen(name, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, api.Errorf(http.StatusBadRequest, "%s %q: want a duration such as 1h or 30m, or a time such as 2026-01-02T15:04:05Z", name, v)
}

func (f auditFilter) match(e *store.AuditEvent) bool {
	switch {
	case !f.since.IsZero() && e.Time.Before(f.since):
	case !f.until.IsZero() && e.Time.After(f.until):
	case f.actor != "" && e.Actor != f.actor:
	case f.target != "" && e.Target != f.target:
	case f.action != "" && e.Action != f.action && !strings.HasPrefix(e.Action, f.action+"."):
	default:
		return true
	}
	return false
}

// older says the walk, newest first, has passed the window: events are
// appended in time order, so none further back is in it.
func (f auditFilter) older(e *store.AuditEvent) bool {
	return !f.since.IsZero() && e.Time.Before(f.since)
}

// handleListAudit answers a page of the audit log, newest first: at most
// limit events older than ?before=SEQ (none: from the newest) that match
// the filters. When there may be more, a Link header (rel="next") gives
// the next page's URL, with the same filters.
func (s *API) handleListAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	filter, err := parseAuditFilter(q, time.Now())
	if err != nil {
		return err
	}
	limit, err := positive(q, "limit", 1000)
	if err != nil {
		return err
	}
	var before uint64
	if v := q.Get("before"); v != "" {
		if before, err = strconv.ParseUint(v, 10, 64); err != nil || before == 0 {
			return api.Errorf(http.StatusBadRequest, "before %q: want the seq of an event", v)
		}
	}
	out := []api.AuditEvent{}
	more := false
	err = s.st.View(func(tx *store.Tx) error {
		return tx.AuditEventsBefore(before, func(e *store.AuditEvent) bool {
			if filter.older(e) {
				return false
			}
			if filter.match(e) {
				if more = len(out) == limit; more {
					return false
				}
				out = append(out, api.AuditEvent(*e))
			}
			return true
		})
	})
	if err != nil {
		return err
	}
	if more {
		q.Set("before", strconv.FormatUint(out[len(out)-1].Seq, 10))
		// The window as times, not durations: every page has the same one.
		for name, t := range map[string]time.Time{"since": filter.since, "until": filter.until} {
			if !t.IsZero() {
				q.Set(name, t.UTC().Format(time.RFC3339Nano))
			}
		}
		w.Header().Set("Link", fmt.Sprintf(`</api/v1/audit?%s>; rel="next"`, q.Encode()))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// positive reads a positive number parameter, def when it is absent.
func positive(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, api.Errorf(http.StatusBadRequest, "%s %q: want a positive number", name, v)
	}
	return n, nil
}

// handleExportAudit streams the audit events that match the filters,
// oldest first, as JSON lines (format=jsonl, the default: each line an
// event with its hashes, as the chain holds it) or CSV (format=csv).
func (s *API) handleExportAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	filter, err := parseAuditFilter(q, time.Now())
	if err != nil {
		return err
	}
	enc, ok := auditEncoders[orStr(q.Get("format"), "jsonl")]
	if !ok {
		return api.Errorf(http.StatusBadRequest, "format %q: want jsonl or csv", q.Get("format"))
	}
	// The first batch is read before anything is sent, so that a store
	// that fails answers an error rather than a cut file.
	b, err := s.auditBatchAfter(0, filter)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", enc.contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="pamd-audit.`+enc.ext+`"`)
	w.Header().Set("Cache-Control", "no-store")
	write := enc.start(w)
	flush := http.NewResponseController(w).Flush
	for {
		for _, e := range b.events {
			if err := write(e); err != nil {
				return nil // the client went; the status is sent
			}
		}
		flush()
		if b.done {
			return nil
		}
		if b, err = s.auditBatchAfter(b.last, filter); err != nil {
			s.log.Error("audit export cut short", "err", err)
			return nil
		}
	}
}

// auditBatch is how many events an export reads in one transaction: a
// slow client never holds the store open for long.
const auditBatch = 500

// auditPart is one transaction's share of an export: the events that
// matched, the seq of the last one read, and whether the log (or the
// window) ended.
type auditPart struct {
	events []*store.AuditEvent
	last   uint64
	done   bool
}

func (s *API) auditBatchAfter(seq uint64, filter auditFilter) (auditPart, error) {
	p := auditPart{last: seq}
	read, past := 0, false
	err := s.st.View(func(tx *store.Tx) error {
		return tx.AuditEventsAfter(seq, func(e *store.AuditEvent) bool {
			if past = !filter.until.IsZero() && e.Time.After(filter.until); past {
				return false // events are in time order: none later is in the window
			}
			if filter.match(e) {
				p.events = append(p.events, e)
			}
			p.last, read = e.Seq, read+1
			return read < auditBatch
		})
	})
	p.done = past || read < auditBatch
	return p, err
}

// auditEncoder writes exported events in one format.
type auditEncoder struct {
	contentType, ext string
	start            func(io.Writer) func(*store.AuditEvent) error
}

var auditEncoders = map[string]auditEncoder{
	"jsonl": {"application/x-ndjson", "jsonl", func(w io.Writer) func(*store.AuditEvent) error {
		enc := json.NewEncoder(w)
		return func(e *store.AuditEvent) error { return enc.Encode(api.AuditEvent(*e)) }
	}},
	"csv": {"text/csv; charset=utf-8", "csv", func(w io.Writer) func(*store.AuditEvent) error {
		cw := csv.NewWriter(w)
		cw.Write([]string{"seq", "time", "actor", "action", "target", "outcome", "source", "detail", "prev_hash", "hash"})
		return func(e *store.AuditEvent) error {
			cw.Write([]string{strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano), csvCell(e.Actor), e.Action,
				csvCell(e.Target), e.Outcome, csvCell(e.Source), csvCell(e.Detail), e.PrevHash, e.Hash})
			cw.Flush()
			return cw.Error()
		}
	}},
}

// csvCell keeps a spreadsheet from running a cell as a formula: the log
// holds text anyone can send (a login's user name), and a cell that starts
// with = + - @ or a control character is quoted with a leading '. The JSON
// lines export has every field as the chain holds it.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func (s *API) handleVerifyAudit(w http.ResponseWriter, r *http.Request) error {
	var v api.AuditVerify
	var seq uint64
	var hash string
	if v.Expected = r.URL.Query().Get("expect"); v.Expected != "" {
		var err error
		if seq, hash, err = parseExpect(v.Expected); err != nil {
			return err
		}
	}
	err := s.st.View(func(tx *store.Tx) error {
		n, brk, err := tx.VerifyAudit()
		v.Events, v.OK = n, brk == nil
		if brk != nil {
			v.Seq, v.Reason = brk.Seq, brk.Reason
		}
		if err != nil || hash == "" || !v.OK {
			return err
		}
		if v.Holds, err = tx.AuditHolds(seq, hash); err == nil && !v.Holds {
			v.OK, v.Reason = false, "the chain does not hold the expected event "+v.Expected+": this store was rolled back to an older copy, or the head is from another pamd"
		}
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// offline names what is offline when res cannot be reached.
func offline(res *store.Resource) string {
	if res.GatewayGroup != "" {
		return "every gateway of group " + res.GatewayGroup
	}
	return "gateway " + res.Gateway
}
