package ca

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pamd/pamd/protocol/pkinit"
	"github.com/pamd/pamd/protocol/tds/tdstest"
	"github.com/pamd/pamd/store"
)

func testAuthority(t *testing.T) *Authority {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "pamd.db"), bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	a, err := Load(st)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func gatewayKey(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var k crypto.Signer
	var err error
	if kind == "rsa" {
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDBClientProfile: what a db-client certificate carries.
func TestDBClientProfile(t *testing.T) {
	a := testAuthority(t)
	if !a.DBClientCA().IsCA || a.DBClientCA().Equal(a.pair(TypeServer).cert) || a.DBClientCA().Equal(a.pair(TypeResource).cert) || a.DBClientCA().Equal(a.pair(TypeGateway).cert) {
		t.Fatal("the db-client CA is not a CA of its own")
	}
	key := gatewayKey(t, "ecdsa")
	expiry := time.Now().Add(20 * time.Minute)
	der, err := a.IssueDBClient(key.Public(), DBClientCert{Username: "alice", Realm: "EXAMPLE.COM", UPN: "alice@corp.example.com",
		SID: "S-1-5-21-1004336348-1177238915-682003330-1001", NotAfter: expiry, CRLURL: "https://pamd.example.com/pki/db-client.crl"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckSignatureFrom(a.DBClientCA()); err != nil {
		t.Fatal(err)
	}
	if !c.NotAfter.Equal(expiry.Truncate(time.Second)) || c.KeyUsage != x509.KeyUsageDigitalSignature ||
		len(c.ExtKeyUsage) != 1 || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || len(c.UnknownExtKeyUsage) != 2 ||
		len(c.CRLDistributionPoints) != 2 || c.CRLDistributionPoints[1] != "https://pamd.example.com/pki/db-client.crl" ||
		!strings.HasPrefix(c.CRLDistributionPoints[0], "ldap:///CN=pamd-db-client-ca,CN=pamd,CN=CDP,CN=Public Key Services,CN=Services,CN=Configuration,DC=example,DC=com?") {
		t.Fatalf("profile: until %v usage %v eku %v %v crl %v", c.NotAfter, c.KeyUsage, c.ExtKeyUsage, c.UnknownExtKeyUsage, c.CRLDistributionPoints)
	}
	ps := pkinit.CertificatePrincipals(c)
	if len(ps) != 1 || ps[0].String() != "alice@EXAMPLE.COM" {
		t.Fatalf("id-pkinit-san: %v", ps)
	}
	if len(c.URIs) != 1 || c.URIs[0].String() != "tag:microsoft.com,2022-09-14:sid:S-1-5-21-1004336348-1177238915-682003330-1001" {
		t.Fatalf("SID URL: %v", c.URIs)
	}
	var sidExt []byte
	for _, e := range c.Extensions {
		if e.Id.Equal(oidNTDSCASecurity) {
			sidExt = e.Value
		}
	}
	if !bytes.Contains(sidExt, []byte("S-1-5-21-1004336348-1177238915-682003330-1001")) {
		t.Fatal("no SID extension")
	}
	if !bytes.Contains(der, []byte("alice@corp.example.com")) {
		t.Fatal("no UPN")
	}
	// At most an hour, whatever the session's expiry.
	der, _ = a.IssueDBClient(key.Public(), DBClientCert{Username: "alice", Realm: "EXAMPLE.COM", NotAfter: time.Now().Add(5 * time.Hour)})
	if c, _ = x509.ParseCertificate(der); time.Until(c.NotAfter) > MaxDBClientLifetime {
		t.Fatalf("lives until %v", c.NotAfter)
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	for name, tt := range map[string]struct {
		pub crypto.PublicKey
		c   DBClientCert
	}{
		"RSA-1024":        {small.Public(), DBClientCert{Username: "alice", Realm: "R"}},
		"P-384":           {must384(t), DBClientCert{Username: "alice", Realm: "R"}},
		"no realm":        {key.Public(), DBClientCert{Username: "alice"}},
		"@ in user":       {key.Public(), DBClientCert{Username: "alice@R", Realm: "R"}},
		"bad SID":         {key.Public(), DBClientCert{Username: "alice", Realm: "R", SID: "S-1-x"}},
		"session is over": {key.Public(), DBClientCert{Username: "alice", Realm: "R", NotAfter: time.Now().Add(-time.Second)}},
	} {
		if _, err := a.IssueDBClient(tt.pub, tt.c); !errors.Is(err, ErrBadDBClientRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func must384(t *testing.T) crypto.PublicKey {
	k, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// TestDBClientAgainstMITKDC: a real MIT KDC whose pkinit_anchors is the
// exported db-client CA issues a TGT for its certificates (RSA and ECDSA
// keys, with plain and AD-style KDC settings); a revoked one is refused
// with error 72 once the CRL is the KDC's pkinit_revoke; another
// principal's with 75.
func TestDBClientAgainstMITKDC(t *testing.T) {
	a := testAuthority(t)
	login := func(kdc *tdstest.KDC, key crypto.Signer, der []byte, user string) error {
		cert, _ := x509.ParseCertificate(der)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(kdc.KDCCA)
		req, err := pkinit.NewRequest(pkinit.Params{Realm: tdstest.Realm, Username: user, Certificate: cert, Key: key, KDCRoots: pool})
		if err != nil {
			t.Fatal(err)
		}
		_, err = req.ReadReply(kdc.Exchange(t, req.Marshal()))
		return err
	}
	issue := func(key crypto.Signer, user string) []byte {
		der, err := a.IssueDBClient(key.Public(), DBClientCert{Username: user, Realm: tdstest.Realm, CRLURL: "http://127.0.0.1:1/crl"})
		if err != nil {
			t.Fatal(err)
		}
		return der
	}
	for _, ad := range []bool{false, true} {
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: a.DBClientCertPEM(), ADStyle: ad})
		kdc.AddCertUser(t, "alice")
		for _, kind := range []string{"rsa", "ecdsa"} {
			key := gatewayKey(t, kind)
			if err := login(kdc, key, issue(key, "alice"), "alice"); err != nil {
				t.Fatalf("AD-style %v, %s key: %v\n%s", ad, kind, err, kdc.Log())
			}
		}
		key := gatewayKey(t, "ecdsa")
		var ke *pkinit.KDCError
		if err := login(kdc, key, issue(key, "bob"), "alice"); !errors.As(err, &ke) || ke.Code != pkinit.CodeClientNameMismatch {
			t.Fatalf("bob's certificate for alice: %v", err)
		}
	}

	key := gatewayKey(t, "ecdsa")
	revoked := issue(key, "alice")
	rc, _ := x509.ParseCertificate(revoked)
	if err := a.RevokeDBClient(rc.SerialNumber); err != nil {
		t.Fatal(err)
	}
	crlDER, err := a.DBClientCRL()
	if err != nil {
		t.Fatal(err)
	}
	crl, err := x509.ParseRevocationList(crlDER)
	if err != nil || crl.CheckSignatureFrom(a.DBClientCA()) != nil || len(crl.RevokedCertificateEntries) != 1 {
		t.Fatalf("CRL: %v", err)
	}
	kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: a.DBClientCertPEM(),
		CRL: pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crlDER})})
	kdc.AddCertUser(t, "alice")
	var ke *pkinit.KDCError
	if err := login(kdc, key, revoked, "alice"); !errors.As(err, &ke) || ke.Code != pkinit.CodeRevokedCertificate {
		t.Fatalf("a revoked certificate: %v\n%s", err, kdc.Log())
	}
	fresh := gatewayKey(t, "rsa")
	if err := login(kdc, fresh, issue(fresh, "alice"), "alice"); err != nil {
		t.Fatalf("an unrevoked certificate with CRL checking: %v", err)
	}
	if !strings.Contains(kdc.Log(), "REVOKED") && !strings.Contains(kdc.Log(), "revoked") {
		t.Logf("KDC log:\n%s", kdc.Log())
	}
}

// TestADSetupScript: the script publishes the CA to RootCA and NTAuthCA
// and the CRL where certificates' LDAP CDP names it, creates its GPO only
// when missing, reports each account's SID, and keeps what came from
// users inside PowerShell strings.
func TestADSetupScript(t *testing.T) {
	a := testAuthority(t)
	script, err := a.ADSetupScript("erp", []ADAccount{
		{Name: "alice", Username: "alice", Realm: "CORP.EXAMPLE.COM", SID: "S-1-5-21-1-2-3-1001"},
		{Name: "bob", Username: `bob"; Remove-Item C:\ -Recurse; "$(whoami)`, Realm: "CORP.EXAMPLE.COM"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		strings.TrimSpace(string(a.DBClientCertPEM())),
		"-----BEGIN X509 CRL-----",
		"certutil -f -dspublish $caFile RootCA",
		"certutil -f -dspublish $caFile NTAuthCA",
		"certutil -f -dspublish $crlFile pamd pamd-db-client-ca",
		`if (-not $gpo) { $gpo = New-GPO -Name "pamd PKINIT"`,
		`SCardSvr" -ValueName Start -Type DWord -Value 2`,
		`Write-Host "account alice: alice@CORP.EXAMPLE.COM, SID S-1-5-21-1-2-3-1001"`,
		"account bob has no --sid",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("the script lacks %q", want)
		}
	}
	if strings.Contains(script, `bob"; Remove-Item`) || strings.Contains(script, `"$(whoami)`) {
		t.Fatalf("a user name escapes its PowerShell string:\n%s", script)
	}
	if strings.Contains(script, "PRIVATE KEY") {
		t.Fatal("the script holds a private key")
	}
}
