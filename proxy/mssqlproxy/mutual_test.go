package mssqlproxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/pamd/pamd/protocol/tds/tdstest"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/proxy/proxytest"
)

// gatewayLog is what the gateway logs of each connection (Handle's
// error) and records (error records).
type gatewayLog struct {
	mu      sync.Mutex
	errs    []error
	records []string
}

func (g *gatewayLog) text() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var b strings.Builder
	for _, err := range g.errs {
		if err != nil {
			b.WriteString(err.Error() + "\n")
		}
	}
	for _, r := range g.records {
		b.WriteString(r + "\n")
	}
	return b.String()
}

// serveMutual is servePKINIT keeping what the gateway logs.
func serveMutual(t *testing.T, d *tunnel.Descriptor, log *gatewayLog) string {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	rec := proxy.Recorder(func(r tunnel.Record) {
		if r.Type == "error" {
			log.mu.Lock()
			log.records = append(log.records, string(r.Data))
			log.mu.Unlock()
		}
	})
	return proxytest.Serve(t, func(c net.Conn) {
		a, b := net.Pipe()
		handled := make(chan struct{})
		go func() {
			defer close(handled)
			err := Handler{}.Handle(ctx, a, d, rec)
			log.mu.Lock()
			log.errs = append(log.errs, err)
			log.mu.Unlock()
			a.Close()
		}()
		defer func() { b.Close(); <-handled }()
		if _, err := tunnel.ReadReply(b); err == nil {
			proxy.Join(ctx, c, b, nil, nil)
		}
	})
}

// TestKerberosMutualAuthentication: the gateway's AP-REQ requires mutual
// authentication (AP option and GSS flag); the login goes through only
// with the server's AP-REP for that authenticator under the ticket's
// session key. A missing AP-REP, one for another authenticator, one that
// does not decrypt, and an SSPI reply that is no NegTokenResp each refuse
// the login with a pamd: message to the client and in the gateway's log.
func TestKerberosMutualAuthentication(t *testing.T) {
	kdc := tdstest.StartKDC(t)
	kdc.AddUser(t, "mia", "Krb-Mutual-7")
	s, err := tdstest.Start(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Keytab = kdc.AddService(t, pkinitSPN)
	d := &tunnel.Descriptor{SessionID: "s-mutual", Resource: "sql", Account: "mia", Protocol: tunnel.ProtocolMSSQL, Target: s.Addr,
		MSSQL: &tunnel.MSSQLTarget{Login: tunnel.Login{Username: "mia", Password: "Krb-Mutual-7"}, Auth: "kerberos", Realm: tdstest.Realm, SPN: pkinitSPN, KDC: kdc.Addr}}

	t.Run("valid AP-REP", func(t *testing.T) {
		var log gatewayLog
		if n, err := queryThrough(serveMutual(t, d, &log)); err != nil || n != 7 {
			t.Fatalf("%d %v\n%s", n, err, log.text())
		}
		seen := s.APReqs()
		last := seen[len(seen)-1]
		if !last.MutualRequired || last.GSSFlags&gssapi.ContextFlagMutual == 0 || !last.APRepSent {
			t.Fatalf("the gateway's AP-REQ: %+v; want mutual-required, GSS_C_MUTUAL_FLAG, and an AP-REP back", last)
		}
		if txt := log.text(); txt != "" {
			t.Fatalf("the gateway logged errors for a good login:\n%s", txt)
		}
	})
	for _, tt := range []struct {
		name string
		mode tdstest.APRepMode
		want string
	}{
		{"missing", tdstest.APRepNone, "pamd: Kerberos: " + s.Addr + " accepted the login without an AP-REP"},
		{"another authenticator", tdstest.APRepWrongTime, "pamd: Kerberos: the server's AP-REP answers another authenticator"},
		{"does not decrypt", tdstest.APRepWrongKey, "pamd: Kerberos: the server's AP-REP does not decrypt with the ticket's session key"},
		{"not a NegTokenResp", tdstest.APRepGarbled, "pamd: Kerberos: the server's SSPI reply does not prove mutual authentication: it is not a SPNEGO NegTokenResp"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s.APRep = tt.mode
			defer func() { s.APRep = tdstest.APRepValid }()
			var log gatewayLog
			_, err := queryThrough(serveMutual(t, d, &log))
			t.Logf("the client reads: %v", err)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "pamd requires mutual authentication and refuses the login") {
				t.Fatalf("the client read %v\nwant %q", err, tt.want)
			}
			txt := log.text()
			if !strings.Contains(txt, tt.want[len("pamd: "):]) || !strings.Contains(txt, "pamd: Kerberos:") {
				t.Fatalf("the gateway logged:\n%s\nwant %q", txt, tt.want)
			}
		})
	}
}

// TestReadAPRep: the reader of the server's SSPI reply takes SQL
// Server's answer and names what is wrong with others.
func TestReadAPRep(t *testing.T) {
	key := testKey(t)
	ctime := time.Now().UTC().Truncate(time.Second)
	good, err := tdstest.MutualReply(key, ctime, 77, true, tdstest.APRepValid)
	if err != nil {
		t.Fatal(err)
	}
	ap := &apExchange{key: key, ctime: ctime, cusec: 77, server: "sql:1433", spn: pkinitSPN}
	if err := ap.verify(good); err != nil || !ap.done {
		t.Fatalf("SQL Server's AP-REP: %v", err)
	}
	other := &apExchange{key: key, ctime: ctime, cusec: 78, spn: pkinitSPN}
	if err := other.verify(good); err == nil || !strings.Contains(err.Error(), "answers another authenticator") {
		t.Fatalf("another cusec: %v", err)
	}
	for _, n := range []int{0, 1, 16, 27, 28, 29, 64} {
		err := ap.verify(apRepToken(t, types.EncryptedData{EType: key.KeyType, Cipher: make([]byte, n)}))
		if err == nil || !strings.Contains(err.Error(), "does not decrypt") {
			t.Fatalf("a %d-byte ciphertext: %v", n, err)
		}
	}
	if err := ap.verify(apRepToken(t, types.EncryptedData{EType: etypeID.RC4_HMAC, Cipher: make([]byte, 64)})); err == nil || !strings.Contains(err.Error(), "etype 23") {
		t.Fatalf("another etype: %v", err)
	}
	krb, _ := tdstest.MutualReply(key, ctime, 77, false, tdstest.APRepValid)
	mech := func(tok []byte, state int, oid string) []byte {
		r := spnego.NegTokenResp{ResponseToken: tok}
		r.NegState = 0
		if state != 0 {
			r.NegState = 2
		}
		if oid == "ntlm" {
			r.SupportedMech = append(r.SupportedMech, 1, 3, 6, 1, 4, 1, 311, 2, 2, 10)
		} else {
			r.SupportedMech = gssapi.OIDKRB5.OID()
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tt := range []struct {
		name  string
		token []byte
		want  string
	}{
		{"raw krb5 token", krb, "not a SPNEGO NegTokenResp"},
		{"reject", mech(krb, 2, ""), "state is reject"},
		{"NTLM chosen", mech(krb, 0, "ntlm"), "not Kerberos 5"},
		{"no responseToken", mech(nil, 0, ""), "no SPNEGO responseToken"},
		{"responseToken not krb5", mech([]byte{0x60, 0x01, 0x00}, 0, ""), "not a Kerberos 5 GSS token"},
		{"a broken AP-REQ back", mech(gss(t, [2]byte{1, 0}, []byte{0x30, 0x00}), 0, ""), "not a Kerberos 5 GSS token"},
		{"a wrap token", mech(gss(t, [2]byte{5, 4}, []byte{0xff, 0xff}), 0, ""), "is not an AP-REP (TOK_ID 02 00)"},
		{"a KRB-ERROR", mech(krbError(t), 0, ""), "holds a KRB-ERROR, not an AP-REP: (41) KRB_AP_ERR_MODIFIED"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readAPRep(tt.token)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("%v, want %q", err, tt.want)
			}
		})
	}
}

func gss(t *testing.T, id [2]byte, msg []byte) []byte {
	b, err := tdstest.GSSToken(id, msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func krbError(t *testing.T) []byte {
	e := messages.NewKRBError(types.NewPrincipalName(2, "MSSQLSvc/sql.example.test:1433"), tdstest.Realm, errorcode.KRB_AP_ERR_MODIFIED, "no")
	b, err := e.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return gss(t, [2]byte{3, 0}, b)
}

// apRepToken is an AP-REP around enc, framed as SQL Server frames it.
func apRepToken(t testing.TB, enc types.EncryptedData) []byte {
	rep, err := tdstest.MarshalAPRep(enc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tdstest.GSSToken(tdstest.TokIDAPRep, rep)
	if err != nil {
		t.Fatal(err)
	}
	r := spnego.NegTokenResp{SupportedMech: gssapi.OIDKRB5.OID(), ResponseToken: tok}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testKey(t testing.TB) types.EncryptionKey {
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 32)}
	rand.Read(key.KeyValue)
	return key
}

// FuzzReadAPRep: the reader of the server's SSPI reply neither panics nor
// accepts anything but the AP-REP for the authenticator under the key, and
// its refusals never hold the key.
func FuzzReadAPRep(f *testing.F) {
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: bytes.Repeat([]byte{0x5a}, 32)}
	ctime := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	for _, mode := range []tdstest.APRepMode{tdstest.APRepValid, tdstest.APRepWrongTime, tdstest.APRepWrongKey, tdstest.APRepGarbled} {
		for _, wrap := range []bool{true, false} {
			b, err := tdstest.MutualReply(key, ctime, 1234, wrap, mode)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	for _, n := range []int{0, 1, 12, 15, 16, 17, 27, 28, 29, 44} { // ciphertexts around AES' block and HMAC sizes
		f.Add(apRepToken(f, types.EncryptedData{EType: key.KeyType, Cipher: bytes.Repeat([]byte{1}, n)}))
	}
	f.Add([]byte{})
	f.Add([]byte{0xa1, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		ap := &apExchange{key: key, ctime: ctime, cusec: 1234, server: "sql:1433", spn: pkinitSPN}
		err := ap.verify(b)
		if err == nil {
			if !ap.done {
				t.Fatal("verified but not done")
			}
			return
		}
		if ap.done || strings.Contains(err.Error(), hex.EncodeToString(key.KeyValue)) || strings.Contains(err.Error(), string(key.KeyValue)) {
			t.Fatalf("refusal %q", err)
		}
	})
}
