package apiclient

import (
	"testing"

	"github.com/pamd/pamd/protocol/pki"
)

// TestLearnPins: a pinned login follows a rotation of the server CA by
// what a server it trusts (the chain that verified is pinned) says: it
// learns the next CA once, pins it alone after complete, and drops it
// after a rollback; a login offline through a complete and a new start
// keeps the live pin; an answer over a connection opened before the
// server served its new certificate moves to it; a served chain it does
// not pin changes nothing; a login on the system roots pins nothing.
func TestLearnPins(t *testing.T) {
	a, b, c := pki.Fingerprint([]byte("A")), pki.Fingerprint([]byte("B")), pki.Fingerprint([]byte("C"))
	l := &Login{Fingerprint: a}
	if changed, learned := l.LearnPins(a, a, ""); changed || learned != "" {
		t.Fatal("no rotation changed the login")
	}
	if changed, learned := l.LearnPins(a, a, b); !changed || learned != b || l.Fingerprint != a || l.NextFingerprint != b {
		t.Fatalf("start: %v %q %+v", changed, learned, l)
	}
	if changed, _ := l.LearnPins(a, a, b); changed {
		t.Fatal("the next CA was learned twice")
	}
	if changed, learned := l.LearnPins(b, b, ""); !changed || learned != "" || l.Fingerprint != b || l.NextFingerprint != "" {
		t.Fatalf("complete: %v %q %+v", changed, learned, l)
	}

	l = &Login{Fingerprint: a, NextFingerprint: b}
	if changed, _ := l.LearnPins(a, a, ""); !changed || l.Fingerprint != a || l.NextFingerprint != "" {
		t.Fatalf("rollback: %+v", l)
	}

	// Offline through complete (B current) and a new start (C next): the
	// server serves B, names B and C; the login pins {B, C}, not {A, C}.
	l = &Login{Fingerprint: a, NextFingerprint: b}
	if changed, learned := l.LearnPins(b, b, c); !changed || learned != c || l.Fingerprint != b || l.NextFingerprint != c {
		t.Fatalf("complete then start: %v %q %+v", changed, learned, l)
	}
	if changed, _ := l.LearnPins(c, c, ""); !changed || l.Fingerprint != c || l.NextFingerprint != "" {
		t.Fatalf("second complete: %+v", l)
	}
	// The same, seen over a connection still on A's chain.
	l = &Login{Fingerprint: a, NextFingerprint: b}
	if changed, _ := l.LearnPins(a, b, c); !changed || l.Fingerprint != b || l.NextFingerprint != c {
		t.Fatalf("complete then start, over an old connection: %+v", l)
	}
	// The complete's own answer, on the connection from before it.
	l = &Login{Fingerprint: a, NextFingerprint: b}
	if changed, _ := l.LearnPins(a, b, ""); !changed || l.Fingerprint != b || l.NextFingerprint != "" {
		t.Fatalf("complete, over an old connection: %+v", l)
	}
	// Between complete and the new certificate served: both stay.
	l = &Login{Fingerprint: a, NextFingerprint: b}
	if changed, _ := l.LearnPins(a, a, b); changed || l.Fingerprint != a || l.NextFingerprint != b {
		t.Fatalf("complete, before the new certificate is served: %+v", l)
	}

	// A chain the login does not pin (it could not have verified) is
	// never followed, whatever the headers say.
	l = &Login{Fingerprint: a}
	if changed, _ := l.LearnPins(c, c, b); changed || l.Fingerprint != a || l.NextFingerprint != "" {
		t.Fatalf("an unpinned chain changed the login: %+v", l)
	}
	// Fingerprints are compared normalised; an older server names none.
	l = &Login{Fingerprint: a}
	if changed, _ := l.LearnPins(a, "", "  "+b[len("SHA256:"):]); !changed || l.Fingerprint != a || l.NextFingerprint != b {
		t.Fatalf("a next pin without its prefix: %+v", l)
	}

	l = &Login{}
	if changed, _ := l.LearnPins(a, a, b); changed || l.NextFingerprint != "" {
		t.Fatal("a login on the system roots pinned a CA")
	}
}
