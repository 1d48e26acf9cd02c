package servertest_test

import (
	"testing"

	"github.com/pamd/pamd/server/api"
	"github.com/pamd/pamd/server/servertest"
)

// TestEnvRelaysToEcho: the environment's pieces work together: the admin
// client, a user with a role, and an access through the relay and the
// gateway to an echo target.
func TestEnvRelaysToEcho(t *testing.T) {
	e := servertest.New(t)
	e.AddEchoResource(t, "echo")
	e.AddRole(t, api.Role{Name: "echoers", Allow: []string{"echo/*"}})
	alice, _ := e.AddUser(t, "alice", "echoers")
	g := e.Open(t, alice, api.CreateSessionRequest{Resource: "echo", Account: "any", Duration: "5m"})
	servertest.Echoes(t, servertest.Connect(t, e.Dial(t, g)), "hello through pamd")
}
