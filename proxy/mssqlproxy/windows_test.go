package mssqlproxy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/asn1"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/microsoft/go-mssqldb"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/pamd/pamd/protocol/pkinit"
	"github.com/pamd/pamd/protocol/tds/tdstest"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/proxy/proxytest"
)

const pkinitSPN = "MSSQLSvc/sql.example.test:1433"

// signer plays the server's side of a certificate request: a CA that
// signs the CSR's key for a user, as pamd's db-client CA does.
type signer struct {
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	pem   []byte
	calls atomic.Int32
}

func newSigner(t *testing.T) *signer {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test db-client CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &signer{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func (s *signer) certify(user string) Certifier {
	return func(ctx context.Context, session string, csrDER []byte) ([]byte, error) {
		s.calls.Add(1)
		csr, err := x509.ParseCertificateRequest(csrDER)
		if err != nil || csr.CheckSignature() != nil {
			return nil, errors.New("bad CSR")
		}
		on, err := pkinit.PrincipalOtherName(pkinit.Principal{NameType: 1, Components: []string{user}, Realm: tdstest.Realm})
		if err != nil {
			return nil, err
		}
		var b cryptobyte.Builder
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddBytes(on) })
		san, _ := b.Bytes()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: user},
			NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 2, 3, 4}},
			ExtraExtensions:    []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, s.cert, csr.PublicKey, s.key)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
	}
}

// servePKINIT serves the handler with a Certifier on a loopback port.
func servePKINIT(t *testing.T, d *tunnel.Descriptor, certify Certifier) string {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return proxytest.Serve(t, func(c net.Conn) {
		a, b := net.Pipe()
		handled := make(chan struct{})
		go func() {
			defer close(handled)
			Handler{Certify: certify}.Handle(ctx, a, d, nil)
			a.Close()
		}()
		defer func() { b.Close(); <-handled }()
		if _, err := tunnel.ReadReply(b); err == nil {
			proxy.Join(ctx, c, b, nil, nil)
		}
	})
}

func pkinitDescriptor(t *testing.T, target string, kdc *tdstest.KDC, kdcCA []byte) *tunnel.Descriptor {
	return &tunnel.Descriptor{SessionID: "s-" + t.Name(), Resource: "sql", Account: "alice-" + t.Name(), Protocol: tunnel.ProtocolMSSQL, Target: target,
		MSSQL: &tunnel.MSSQLTarget{Login: tunnel.Login{Username: "alice"}, Auth: "pkinit", Realm: tdstest.Realm, SPN: pkinitSPN,
			KDC: kdc.Addr, KDCCA: string(kdcCA)}}
}

func queryThrough(addr string) (int, error) {
	u := &url.URL{Scheme: "sqlserver", User: url.UserPassword("anyone", ""), Host: addr,
		RawQuery: url.Values{"encrypt": {"disable"}, "dial timeout": {"10"}}.Encode()}
	db, err := sql.Open("sqlserver", u.String())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n int
	err = db.QueryRowContext(ctx, "SELECT 7").Scan(&n)
	return n, err
}

// TestPKINITLogin: an account with auth pkinit logs in to the stand-in
// through the handler with a certificate the Certifier signed for a key
// the handler made, and a TGT from a real MIT KDC; the next connection
// reuses the TGT and the certificate (one AS exchange, one signature).
func TestPKINITLogin(t *testing.T) {
	sig := newSigner(t)
	kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: sig.pem})
	kdc.AddCertUser(t, "alice")
	s, err := tdstest.Start(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Keytab = kdc.AddService(t, pkinitSPN)
	d := pkinitDescriptor(t, s.Addr, kdc, kdc.KDCCA)
	addr := servePKINIT(t, d, sig.certify("alice"))
	for i := 0; i < 3; i++ {
		if n, err := queryThrough(addr); err != nil || n != 7 {
			t.Fatalf("connection %d: %d %v\nKDC log:\n%s", i, n, err, kdc.Log())
		}
	}
	if got := strings.Count(kdc.Log(), "AS_REQ"); got != 1 {
		t.Fatalf("%d AS exchanges for three connections, want 1 (the TGT reused)", got)
	}
	if got := sig.calls.Load(); got != 1 {
		t.Fatalf("%d certificates signed for three connections, want 1", got)
	}
	if !strings.Contains(kdc.Log(), "ISSUE: authtime") {
		t.Fatalf("the KDC did not issue by PKINIT:\n%s", kdc.Log())
	}
	// Each login required mutual authentication and got its AP-REP.
	for _, a := range s.APReqs() {
		if !a.MutualRequired || !a.APRepSent {
			t.Fatalf("AP-REQs %+v: want mutual authentication on every one", s.APReqs())
		}
	}
}

// TestPKINITRefusalsReachTheClient: what fails reaches the SQL client as
// a pamd: message that says the fix.
func TestPKINITRefusalsReachTheClient(t *testing.T) {
	sig := newSigner(t)
	other := newSigner(t)
	s, err := tdstest.Start(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	t.Run("KDC does not trust the CA", func(t *testing.T) {
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: other.pem})
		kdc.AddCertUser(t, "alice")
		addr := servePKINIT(t, pkinitDescriptor(t, s.Addr, kdc, kdc.KDCCA), sig.certify("alice"))
		_, err := queryThrough(addr)
		if err == nil || !strings.Contains(err.Error(), "pamd: Kerberos (PKINIT): KDC "+kdc.Addr+" does not trust pamd's db-client CA") ||
			!strings.Contains(err.Error(), "pamd ca export --type db-client") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("KDC certificate not from --kdc-ca-file", func(t *testing.T) {
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: sig.pem})
		kdc.AddCertUser(t, "alice")
		addr := servePKINIT(t, pkinitDescriptor(t, s.Addr, kdc, other.pem), sig.certify("alice"))
		if _, err := queryThrough(addr); err == nil || !strings.Contains(err.Error(), "KDC certificate not trusted") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("certificate for another principal", func(t *testing.T) {
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: sig.pem})
		kdc.AddCertUser(t, "alice")
		kdc.AddCertUser(t, "bob")
		addr := servePKINIT(t, pkinitDescriptor(t, s.Addr, kdc, kdc.KDCCA), sig.certify("bob"))
		if _, err := queryThrough(addr); err == nil || !strings.Contains(err.Error(), "certificate mismatch") || !strings.Contains(err.Error(), "set --sid") {
			t.Fatalf("%v", err)
		}
	})
	t.Run("no certifier", func(t *testing.T) {
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: sig.pem})
		addr := servePKINIT(t, pkinitDescriptor(t, s.Addr, kdc, kdc.KDCCA), nil)
		if _, err := queryThrough(addr); err == nil || !strings.Contains(err.Error(), "pamd: Kerberos (PKINIT): this gateway cannot ask the server") {
			t.Fatalf("%v", err)
		}
	})
}

// TestKerberosPasswordTGTReused: a password account's TGT serves later
// connections too (one AS exchange, of two AS-REQs with pre-
// authentication, for three connections); a wrong password says so.
func TestKerberosPasswordTGTReused(t *testing.T) {
	kdc := tdstest.StartKDC(t)
	kdc.AddUser(t, "carol", "Krb-Pass-9")
	s, err := tdstest.Start(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Keytab = kdc.AddService(t, pkinitSPN)
	d := &tunnel.Descriptor{SessionID: "s-pw", Resource: "sql", Account: "carol", Protocol: tunnel.ProtocolMSSQL, Target: s.Addr,
		MSSQL: &tunnel.MSSQLTarget{Login: tunnel.Login{Username: "carol", Password: "Krb-Pass-9"}, Auth: "kerberos", Realm: tdstest.Realm, SPN: pkinitSPN, KDC: kdc.Addr}}
	addr := servePKINIT(t, d, nil)
	for i := 0; i < 3; i++ {
		if n, err := queryThrough(addr); err != nil || n != 7 {
			t.Fatalf("connection %d: %d %v", i, n, err)
		}
	}
	if got := strings.Count(kdc.Log(), "AS_REQ"); got != 2 {
		t.Fatalf("%d AS-REQs for three connections, want 2 (one exchange with pre-authentication)", got)
	}
	wrong := *d
	part := *d.MSSQL
	part.Password = "Krb-Wrong-9"
	wrong.MSSQL = &part
	addr = servePKINIT(t, &wrong, nil)
	if _, err := queryThrough(addr); err == nil || !strings.Contains(err.Error(), "the stored password is wrong") || strings.Contains(err.Error(), "Krb-Wrong-9") {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestKerberosKeytab: an account logs in with its keytab (no password);
// another principal's keytab is refused, saying so.
func TestKerberosKeytab(t *testing.T) {
	kdc := tdstest.StartKDC(t)
	kt, err := kdc.AddService(t, "erin").Marshal()
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := kdc.AddService(t, "frank").Marshal()
	s, err := tdstest.Start(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.Keytab = kdc.AddService(t, pkinitSPN)
	for _, tt := range []struct {
		keytab []byte
		want   string
	}{{kt, ""}, {stale, "pamd: Kerberos: the stored keytab holds no key of erin@EXAMPLE.TEST"}} {
		d := &tunnel.Descriptor{SessionID: "s-kt", Resource: "sql", Account: "erin", Protocol: tunnel.ProtocolMSSQL, Target: s.Addr,
			MSSQL: &tunnel.MSSQLTarget{Login: tunnel.Login{Username: "erin"}, Auth: "kerberos", Realm: tdstest.Realm, SPN: pkinitSPN,
				KDC: kdc.Addr, Keytab: base64.StdEncoding.EncodeToString(tt.keytab)}}
		n, err := queryThrough(servePKINIT(t, d, nil))
		if tt.want == "" && (err != nil || n != 7) {
			t.Fatalf("keytab login: %d %v", n, err)
		}
		if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Fatalf("another principal's keytab: %v", err)
		}
	}
}

// TestWindowsLoginsSweep: expired logins go once there are many; live
// ones stay.
func TestWindowsLoginsSweep(t *testing.T) {
	w := &windowsLogins{certifiers: map[string]*bound{}, accounts: map[string]*accountLogin{}}
	for i := 0; i < maxAccounts; i++ {
		w.accounts[strconv.Itoa(i)] = &accountLogin{tgtUntil: time.Now().Add(-time.Minute)}
	}
	w.accounts["live"] = &accountLogin{tgtUntil: time.Now().Add(time.Hour)}
	d := &tunnel.Descriptor{Resource: "r", Account: "a", MSSQL: &tunnel.MSSQLTarget{Auth: "kerberos"}}
	w.account(d)
	if len(w.accounts) != 2 || w.accounts["live"] == nil {
		t.Fatalf("%d logins kept after the sweep, want the live one and the new one", len(w.accounts))
	}
	// bind counts a session's streams.
	unbind1 := w.bind("s", func(context.Context, string, []byte) ([]byte, error) { return nil, nil })
	unbind2 := w.bind("s", func(context.Context, string, []byte) ([]byte, error) { return nil, nil })
	unbind1()
	if w.certifiers["s"] == nil {
		t.Fatal("the certifier went while a stream of the session runs")
	}
	unbind2()
	if w.certifiers["s"] != nil {
		t.Fatal("the certifier stayed after the session's last stream")
	}
}
