package rotation

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/store"
)

func TestPasswordPolicy(t *testing.T) {
	for _, c := range []struct {
		opts    map[string]string
		length  int
		classes string
		bad     string
	}{
		{nil, 32, "lower,upper,digit,symbol", ""},
		{map[string]string{"password_length": "12", "password_classes": "digit"}, 12, "digit", ""},
		{map[string]string{"password_length": "128", "password_classes": "upper, lower,upper"}, 128, "upper,lower", ""},
		{map[string]string{"password_length": "11"}, 0, "", "--password-length"},
		{map[string]string{"password_length": "x"}, 0, "", "--password-length"},
		{map[string]string{"password_classes": "lower,emoji"}, 0, "", `"emoji"`},
	} {
		p, err := passwordPolicyOf(c.opts)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Errorf("%v: err %v, want one naming %s", c.opts, err, c.bad)
			}
			continue
		}
		if err != nil || p.length != c.length || strings.Join(p.classes, ",") != c.classes {
			t.Fatalf("%v: %+v %v", c.opts, p, err)
		}
		seen := map[string]bool{}
		for i := 0; i < 200; i++ {
			pw, err := p.generate()
			if err != nil || len(pw) != c.length {
				t.Fatalf("generate: %q %v", pw, err)
			}
			if seen[pw] {
				t.Fatalf("a password repeated within 200")
			}
			seen[pw] = true
			for _, class := range p.classes {
				if !strings.ContainsAny(pw, passwordClasses[class]) {
					t.Fatalf("%q lacks a %s character", pw, class)
				}
			}
			allowed := ""
			for _, class := range p.classes {
				allowed += passwordClasses[class]
			}
			if strings.Trim(pw, allowed) != "" {
				t.Fatalf("%q has characters outside its classes", pw)
			}
		}
	}
	// No character a shell, a connection string or chpasswd would trip on.
	for _, set := range passwordClasses {
		if strings.ContainsAny(set, "'\"`$\\:; ,&|<>(){}[]/") {
			t.Fatalf("class %q has a character that needs quoting", set)
		}
	}
}

func TestParseInterval(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "12h": 12 * time.Hour, "90m": 90 * time.Minute, "0": 0, "off": 0, "2s": 2 * time.Second} {
		if got, err := ParseInterval(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, in := range []string{"-1h", "500ms", "d", "3x", "1.5d"} {
		if _, err := ParseInterval(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if FormatInterval(30*24*time.Hour) != "30d" || FormatInterval(90*time.Minute) != "1h30m0s" {
		t.Error("formatInterval")
	}
}

// TestSettle: the new credential replaces the old one only once verified,
// is dropped when the old one still works, and is kept while either may.
func TestSettle(t *testing.T) {
	pending := func() *store.Account {
		return &store.Account{Password: "OLD-secret-1", Rotation: store.Rotation{Pending: &store.PendingCredential{Password: "NEW-secret-2"}}}
	}
	for _, c := range []struct {
		name     string
		result   *tunnel.RotationResult
		err      error
		touched  bool
		password string
		pending  bool
		outcome  string
	}{
		{"verified", &tunnel.RotationResult{Verified: true}, nil, true, "NEW-secret-2", false, "success"},
		{"refused, old works", &tunnel.RotationResult{Error: "refused", OldWorks: true}, nil, true, "OLD-secret-1", false, "failure"},
		{"neither works", &tunnel.RotationResult{Error: "both refused"}, nil, true, "OLD-secret-1", true, "failure"},
		{"gateway lost mid-way", nil, errors.New("stream reset"), true, "OLD-secret-1", true, "failure"},
		{"gateway offline, never sent", nil, errors.New("gateway gw1 is offline"), false, "OLD-secret-1", false, "failure"},
	} {
		a := pending()
		outcome, detail := settle(a, c.result, c.err, c.touched)
		if a.Password != c.password || (a.Rotation.Pending != nil) != c.pending || outcome != c.outcome || a.Rotation.Result != c.outcome {
			t.Errorf("%s: password %q pending %v outcome %s", c.name, a.Password, a.Rotation.Pending != nil, outcome)
		}
		if strings.Contains(detail+a.Rotation.Error, "secret") {
			t.Errorf("%s: a credential in %q", c.name, detail)
		}
	}
	// A key account takes the new key and drops the old passphrase.
	a := &store.Account{Auth: "key", PrivateKey: "OLD", Passphrase: "pp", Rotation: store.Rotation{Pending: &store.PendingCredential{PrivateKey: "NEW"}}}
	settle(a, &tunnel.RotationResult{Verified: true}, nil, true)
	if a.PrivateKey != "NEW" || a.Passphrase != "" {
		t.Fatalf("key account after success: %q %q", a.PrivateKey, a.Passphrase)
	}
}

func TestNextRotation(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := store.Rotation{Interval: 30 * 24 * time.Hour, Since: t0}
	if got := NextRotation(&r); !got.Equal(t0.Add(r.Interval)) {
		t.Fatalf("from the schedule's start: %v", got)
	}
	r.LastAttempt, r.Result = t0.Add(48*time.Hour), "failure"
	if got := NextRotation(&r); !got.Equal(r.LastAttempt.Add(time.Hour)) {
		t.Fatalf("after a failure: %v", got)
	}
	r.Result = "success"
	if got := NextRotation(&r); !got.Equal(r.LastAttempt.Add(r.Interval)) {
		t.Fatalf("after a success: %v", got)
	}
	if !NextRotation(&store.Rotation{}).IsZero() {
		t.Fatal("no schedule, yet a next run")
	}
}
