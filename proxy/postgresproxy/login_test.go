package postgresproxy

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/xdg-go/scram"

	"github.com/pamd/pamd/protocol/pgwire"
	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/pki/pkitest"
	"github.com/pamd/pamd/protocol/tunnel"
)

const testPassword = "Stand-in-Pass-5x"

// standin plays a TLS PostgreSQL server's login on one connection: it
// offers mechs and, unless skipProof, checks the SCRAM exchange (bound to
// the TLS connection when the client picks the PLUS mechanism) and
// proves itself. It reports the mechanism the client chose.
func standin(t *testing.T, c net.Conn, pair *pkitest.Pair, mechs []string, skipProof bool) string {
	t.Helper()
	defer c.Close()
	if body, err := pgwire.ReadStartup(c); err != nil || pgwire.Code(body) != pgwire.CodeSSL {
		t.Errorf("want SSLRequest: %v", err)
		return ""
	}
	c.Write([]byte{'S'})
	tc := tls.Server(c, pair.ServerConfig())
	if err := tc.Handshake(); err != nil {
		t.Errorf("TLS: %v", err)
		return ""
	}
	body, err := pgwire.ReadStartup(tc)
	var sm pgproto3.StartupMessage
	if err != nil || sm.Decode(body) != nil || sm.Parameters["user"] != "app" || sm.Parameters["database"] != "orders" || sm.Parameters["application_name"] != "psql" {
		t.Errorf("StartupMessage: %+v %v", sm.Parameters, err)
		return ""
	}
	br := bufio.NewReader(tc)
	send := func(m interface{ Encode([]byte) ([]byte, error) }) {
		out, _ := m.Encode(nil)
		tc.Write(out)
	}
	send(&pgproto3.AuthenticationSASL{AuthMechanisms: mechs})
	typ, msg, err := pgwire.ReadMessage(br, 1<<16)
	var first pgproto3.SASLInitialResponse
	if err != nil || typ != 'p' || first.Decode(msg) != nil {
		t.Errorf("SASLInitialResponse: %q %v", typ, err)
		return ""
	}
	if skipProof {
		send(&pgproto3.AuthenticationOk{})
		send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		return first.AuthMechanism
	}
	client, _ := scram.SHA256.NewClient("", testPassword, "")
	creds := client.GetStoredCredentials(scram.KeyFactors{Salt: "0123456789abcdef", Iters: 4096})
	server, _ := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) { return creds, nil })
	conv := server.NewConversation()
	if first.AuthMechanism == "SCRAM-SHA-256-PLUS" {
		// tls-server-end-point: the hash of the server's certificate
		// (SHA-256 for its ECDSA-SHA256 signature).
		sum := sha256.Sum256(pair.Leaf.Raw)
		conv = server.NewConversationWithChannelBindingRequired(scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: sum[:]})
	}
	reply, err := conv.Step(string(first.Data))
	if err != nil {
		t.Errorf("client-first: %v", err)
		return ""
	}
	send(&pgproto3.AuthenticationSASLContinue{Data: []byte(reply)})
	typ, msg, err = pgwire.ReadMessage(br, 1<<16)
	if err != nil || typ != 'p' {
		t.Errorf("SASLResponse: %q %v", typ, err)
		return ""
	}
	final, err := conv.Step(string(msg))
	if err != nil || !conv.Valid() {
		t.Errorf("client-final: %v", err)
		return ""
	}
	send(&pgproto3.AuthenticationSASLFinal{Data: []byte(final)})
	send(&pgproto3.AuthenticationOk{})
	send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0 (stand-in)"})
	send(&pgproto3.BackendKeyData{ProcessID: 42, SecretKey: []byte{1, 2, 3, 4}})
	send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return first.AuthMechanism
}

func loginTo(t *testing.T, mechs []string, skipProof bool) (string, *serverConn, error) {
	pair := pkitest.New(t, pki.Leaf{CommonName: "pg"})
	a, b := net.Pipe()
	chosen := make(chan string, 1)
	go func() { chosen <- standin(t, b, pair, mechs, skipProof) }()
	d := &tunnel.Descriptor{Resource: "pg", Account: "app", Target: "127.0.0.1:5432", Postgres: &tunnel.PostgresTarget{
		Login: tunnel.Login{Username: "app", Password: testPassword}, Database: "orders",
		TargetTLS: tunnel.TargetTLS{TLS: true, TLSRejectUnauthorized: true, TLSCA: string(pair.CAPEM)}}}
	s, err := loginServer(a, d, map[string]string{"user": "mallory", "database": "other", "application_name": "psql"})
	a.Close()
	return <-chosen, s, err
}

// TestLoginSCRAM: with TLS the gateway binds SCRAM to the connection when
// the server offers SCRAM-SHA-256-PLUS, else says it could (y); it checks
// the server's proof; the server's key data and parameters are kept.
func TestLoginSCRAM(t *testing.T) {
	mech, s, err := loginTo(t, []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}, false)
	if err != nil || mech != "SCRAM-SHA-256-PLUS" {
		t.Fatalf("with PLUS offered: %q %v", mech, err)
	}
	if s.key.ProcessID != 42 || s.params["server_version"] != "15.0 (stand-in)" || len(s.greeting) != 3 {
		t.Fatalf("after the login: key %d, params %v, %d messages", s.key.ProcessID, s.params, len(s.greeting))
	}
	if mech, _, err := loginTo(t, []string{"SCRAM-SHA-256"}, false); err != nil || mech != "SCRAM-SHA-256" {
		t.Fatalf("without PLUS: %q %v", mech, err)
	}
}

// TestLoginRefusesUnprovedServer: a server that says OK without proving
// it knows the password (an impostor) is refused.
func TestLoginRefusesUnprovedServer(t *testing.T) {
	_, _, err := loginTo(t, []string{"SCRAM-SHA-256"}, true)
	if err == nil || !strings.Contains(err.Error(), "without proving") {
		t.Fatalf("an unproved server: %v", err)
	}
}

// TestMD5Password: "md5" + md5hex(md5hex(password + user) + salt), here
// computed apart (Python's hashlib) for user and password "postgres".
func TestMD5Password(t *testing.T) {
	if got := md5Password("postgres", "postgres", [4]byte{1, 2, 3, 4}); got != "md568be9ed08db75f318087ab337aaea044" {
		t.Fatalf("md5 answer %q", got)
	}
}
