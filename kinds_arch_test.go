package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestKindsAndHandlersStandAlone holds the resource-type seams: each
// gateway handler (proxy/*proxy) and each server kind (server/kind/*kind)
// imports no other handler or kind, so adding or removing a type touches
// its own package and the one place it is wired.
func TestKindsAndHandlersStandAlone(t *testing.T) {
	const mod = "github.com/pamd/pamd/"
	groups := map[string][]string{
		"proxy":       {"proxy/sshproxy", "proxy/mssqlproxy", "proxy/mongoproxy", "proxy/tcpproxy"},
		"server/kind": {"server/kind/sshkind", "server/kind/mssqlkind", "server/kind/mongokind", "server/kind/tcpkind"},
	}
	for _, pkgs := range groups {
		for _, pkg := range pkgs {
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./"+pkg).CombinedOutput()
			if err != nil {
				t.Fatalf("go list %s: %v\n%s", pkg, err, out)
			}
			deps := strings.Fields(string(out))
			for _, other := range pkgs {
				if other == pkg {
					continue
				}
				for _, dep := range deps {
					if dep == mod+other || strings.HasPrefix(dep, mod+other+"/") {
						t.Errorf("%s depends on %s", pkg, dep)
					}
				}
			}
			// A kind never reaches a gateway handler, nor a handler the server.
			for _, dep := range deps {
				if strings.HasPrefix(pkg, "server/") && strings.HasPrefix(dep, mod+"proxy/") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
				if strings.HasPrefix(pkg, "proxy/") && strings.HasPrefix(dep, mod+"server") {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
	}
}
