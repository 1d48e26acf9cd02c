package server

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Every GET route of the API answers a fresh server in JSON without a
// null where a list belongs: a console or script iterating an empty list
// must not meet null (the console once broke on GET /api/v1/resources).
// Routes with a path parameter have nothing to name on an empty server;
// they answer 404.
func TestEveryListAnswersAnEmptyListNotNull(t *testing.T) {
	ts := newTestServer(t, testAdminPassword)
	admin := ts.mustLogin(t, "10.0.0.1", "admin", testAdminPassword)
	plain := map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true, "GET /api/v1/backup": true,
		"GET /api/v1/audit/export": true, // JSON lines or CSV
		"GET /api/v1/sso/login":    true, // a browser's redirects through the SSO provider
		"GET /api/v1/sso/callback": true}
	walked := 0
	for _, route := range ts.api.Routes() {
		method, path, _ := strings.Cut(route, " ")
		if method != "GET" || plain[route] {
			continue
		}
		code, body := ts.call(t, "10.0.0.1", admin, "GET", strings.NewReplacer("{name}", "none", "{id}", "none").Replace(path), nil, nil)
		if strings.Contains(path, "{") {
			if code != http.StatusNotFound {
				t.Errorf("%s on an empty server: %d, want 404", route, code)
			}
			continue
		}
		walked++
		if code != http.StatusOK {
			t.Errorf("%s: %d %s", route, code, body)
			continue
		}
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Errorf("%s: not JSON: %v", route, err)
			continue
		}
		if where := nullIn(v, ""); where != "" {
			t.Errorf("%s answers null at %s:\n%s", route, where, body)
		}
	}
	if walked < 10 {
		t.Fatalf("only %d list routes walked: Routes() lost some", walked)
	}
}

// nullIn is the path of the first null in v, or "".
func nullIn(v any, at string) string {
	switch x := v.(type) {
	case nil:
		return "." + at
	case []any:
		for i, e := range x {
			if w := nullIn(e, at+"["+string(rune('0'+i%10))+"]"); w != "" {
				return w
			}
		}
	case map[string]any:
		for k, e := range x {
			if w := nullIn(e, at+"."+k); w != "" {
				return w
			}
		}
	}
	return ""
}
