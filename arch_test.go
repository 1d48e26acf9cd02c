package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection holds pamd's layering: main imports only the
// CLI, protocol and ui import no other pamd package, store imports no role,
// and the gateway never imports the server or the store. Inside the
// server, the parts never import the composition root, the HTTP API or
// each other beyond what their seams allow: the hub, sessions and
// rotation know no relay or API, and rotation and sessions reach the hub
// only through interfaces.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/pamd/pamd/"
	rules := []struct {
		pkg       string
		forbidden []string
	}{
		{"./protocol/...", []string{"server", "gateway", "proxy", "store", "ui"}},
		{"./ui/...", []string{"server", "gateway", "proxy", "store", "protocol"}},
		{"./store/...", []string{"server", "gateway", "proxy", "ui"}},
		{"./gateway/...", []string{"server", "store"}},
		{"./proxy/...", []string{"server", "gateway", "store"}},
		{"./server/auth/...", []string{"server/hub", "server/sessions", "server/relay", "server/rotation", "server/httpapi", "server/ca"}},
		{"./server/ca/...", []string{"server/hub", "server/sessions", "server/relay", "server/rotation", "server/httpapi", "server/auth"}},
		{"./server/hub/...", []string{"server/sessions", "server/relay", "server/rotation", "server/httpapi", "server/auth"}},
		{"./server/sessions/...", []string{"server/hub", "server/relay", "server/rotation", "server/httpapi", "server/auth", "server/ca"}},
		{"./server/rotation/...", []string{"server/hub", "server/sessions", "server/relay", "server/httpapi", "server/auth"}},
		{"./server/relay/...", []string{"server/hub", "server/rotation", "server/httpapi", "server/ca"}},
		{"./server/webterm/...", []string{"server/hub", "server/rotation", "server/httpapi", "server/ca"}},
		{"./server/kind/...", []string{"server/hub", "server/sessions", "server/relay", "server/rotation", "server/httpapi", "server/auth", "server/ca"}},
		{"./server/sso/...", []string{"server/hub", "server/sessions", "server/relay", "server/rotation", "server/httpapi", "server/ca"}},
	}
	out, err := exec.Command("go", "list", "-f", `{{join .Imports "\n"}}`, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list .: %v\n%s", err, out)
	}
	for _, imp := range strings.Fields(string(out)) {
		stdlib := !strings.Contains(strings.Split(imp, "/")[0], ".")
		if !stdlib && imp != mod+"cli" {
			t.Errorf("package main imports %s: it imports only %scli and the standard library", imp, mod)
		}
	}
	for _, r := range rules {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", r.pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", r.pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, f := range r.forbidden {
				if dep == mod+f || strings.HasPrefix(dep, mod+f+"/") {
					t.Errorf("%s depends on %s", r.pkg, dep)
				}
			}
		}
	}
}
