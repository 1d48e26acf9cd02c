package tdstest_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/pamd/pamd/protocol/pkinit"
	"github.com/pamd/pamd/protocol/tds/tdstest"
)

// testCA signs client certificates the way pamd's db-client CA does.
type testCA struct {
	cert *x509.Certificate
	key  crypto.Signer
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

var (
	oidClientAuthPKINIT = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 4}
	oidSmartCardLogon   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}
	oidUPN              = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

// issue makes a client certificate for user@Realm (and, with upn, the
// UPN SAN an AD certificate carries) with a fresh key.
func (ca *testCA) issue(t *testing.T, serial int64, user, upn string, rsaKey bool) (*x509.Certificate, crypto.Signer) {
	var key crypto.Signer
	var err error
	if rsaKey {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		on, err := pkinit.PrincipalOtherName(pkinit.Principal{NameType: pkinit.NameTypePrincipal, Components: []string{user}, Realm: tdstest.Realm})
		if err != nil {
			t.Fatal(err)
		}
		b.AddBytes(on)
		if upn != "" {
			b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidUPN)
				b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(upn)) })
				})
			})
		}
	})
	san, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: user},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidClientAuthPKINIT, oidSmartCardLogon},
		ExtraExtensions:    []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 17}, Value: san}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func (ca *testCA) crl(t *testing.T, revoked ...*big.Int) []byte {
	var entries []x509.RevocationListEntry
	for _, s := range revoked {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now().Add(-time.Minute)})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1),
		ThisUpdate: time.Now().Add(-time.Minute), NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: entries}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}

// exchange sends one message to the KDC over TCP (RFC 4120 §7.2.2) or
// UDP and returns its answer.
func exchange(t *testing.T, network, addr string, msg []byte) []byte {
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if network == "udp" {
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65536)
		n, err := c.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	if _, err := c.Write(binary.BigEndian.AppendUint32(nil, uint32(len(msg)))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		t.Fatal(err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > 1<<20 {
		t.Fatalf("KDC reply of %d bytes", size)
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(c, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func roots(pemCA []byte) *x509.CertPool {
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(pemCA)
	return p
}

// TestPKINIT: protocol/pkinit's client against a real MIT KDC with the
// PKINIT plugin: a certificate-only user gets a TGT (over TCP and UDP,
// with RSA and ECDSA keys), gokrb5 takes it as a credentials cache and
// gets a service ticket the service's keytab decrypts. No kinit runs.
func TestPKINIT(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "pamd db-client CA (test)")
	kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: ca.pem})
	kdc.AddCertUser(t, "alice")
	kt := kdc.AddService(t, testSPN)

	for _, tt := range []struct {
		name    string
		network string
		rsa     bool
	}{{"tcp-rsa", "tcp", true}, {"udp-rsa", "udp", true}, {"tcp-ecdsa", "tcp", false}} {
		t.Run(tt.name, func(t *testing.T) {
			cert, key := ca.issue(t, 10, "alice", "", tt.rsa)
			req, err := pkinit.NewRequest(pkinit.Params{Realm: tdstest.Realm, Username: "alice", Certificate: cert, Key: key, KDCRoots: roots(kdc.KDCCA)})
			if err != nil {
				t.Fatal(err)
			}
			tgt, err := req.ReadReply(exchange(t, tt.network, kdc.Addr, req.Marshal()))
			if err != nil {
				t.Fatalf("%v\nKDC log:\n%s", err, kdc.Log())
			}
			if until := time.Until(tgt.EndTime()); until < time.Hour || until > 11*time.Hour {
				t.Fatalf("TGT ends in %v", until)
			}
			cc, err := tgt.CCache()
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := config.Load(kdc.Krb5Conf)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := client.NewFromCCache(cc, cfg, client.DisablePAFXFAST(true))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Destroy()
			tkt, _, err := cl.GetServiceTicket(testSPN)
			if err != nil {
				t.Fatal(err)
			}
			if err := tkt.DecryptEncPart(kt, nil); err != nil {
				t.Fatalf("the service ticket does not open with the service's keytab: %v", err)
			}
			if got := strings.Join(tkt.DecryptedEncPart.CName.NameString, "/"); got != "alice" {
				t.Fatalf("service ticket for %q", got)
			}
			if !strings.Contains(kdc.Log(), "ISSUE: authtime") || !strings.Contains(kdc.Log(), "alice@"+tdstest.Realm+" for krbtgt/") {
				t.Fatalf("the KDC did not log the PKINIT issue:\n%s", kdc.Log())
			}
		})
	}
}

// TestPKINITRefusals: each way the exchange fails names the cause.
func TestPKINITRefusals(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "pamd db-client CA (test)")
	other := newTestCA(t, "someone else's CA")

	// Active Directory answers 62 when the CA is not in NTAuth; MIT, whose
	// anchors do not hold it, 70.
	t.Run("client CA not trusted (MIT 70 and AD 62)", func(t *testing.T) {
		t.Parallel()
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: other.pem})
		kdc.AddCertUser(t, "alice")
		cert, key := ca.issue(t, 11, "alice", "", true)
		wantCode(t, kdc, cert, key, "alice", roots(kdc.KDCCA), "", pkinit.CodeCantVerifyCertificate)
	})
	t.Run("revoked (72)", func(t *testing.T) {
		t.Parallel()
		cert, key := ca.issue(t, 12, "alice", "", true)
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: ca.pem, CRL: ca.crl(t, cert.SerialNumber)})
		kdc.AddCertUser(t, "alice")
		wantCode(t, kdc, cert, key, "alice", roots(kdc.KDCCA), "", pkinit.CodeRevokedCertificate)
		// Another certificate of the same CA is not revoked.
		good, gkey := ca.issue(t, 13, "alice", "", true)
		login(t, kdc, good, gkey, "alice", roots(kdc.KDCCA), "")
	})
	t.Run("another principal's certificate (75)", func(t *testing.T) {
		t.Parallel()
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: ca.pem})
		kdc.AddCertUser(t, "alice")
		kdc.AddCertUser(t, "bob")
		cert, key := ca.issue(t, 14, "bob", "", true)
		wantCode(t, kdc, cert, key, "alice", roots(kdc.KDCCA), "", pkinit.CodeClientNameMismatch)
	})
	t.Run("KDC certificate from another CA", func(t *testing.T) {
		t.Parallel()
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: ca.pem})
		kdc.AddCertUser(t, "alice")
		cert, key := ca.issue(t, 15, "alice", "", true)
		req, err := pkinit.NewRequest(pkinit.Params{Realm: tdstest.Realm, Username: "alice", Certificate: cert, Key: key, KDCRoots: roots(other.pem)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := req.ReadReply(exchange(t, "tcp", kdc.Addr, req.Marshal())); !errors.Is(err, pkinit.ErrKDCNotTrusted) {
			t.Fatalf("a KDC certificate from an untrusted CA: %v", err)
		}
	})
	t.Run("KDC certificate by DNS name and EKU", func(t *testing.T) {
		t.Parallel()
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: ca.pem, KDCHostname: "dc1.example.test", NoTGSName: true})
		kdc.AddCertUser(t, "alice")
		cert, key := ca.issue(t, 16, "alice", "", true)
		req, err := pkinit.NewRequest(pkinit.Params{Realm: tdstest.Realm, Username: "alice", Certificate: cert, Key: key, KDCRoots: roots(kdc.KDCCA)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := req.ReadReply(exchange(t, "tcp", kdc.Addr, req.Marshal())); !errors.Is(err, pkinit.ErrKDCName) {
			t.Fatalf("a KDC certificate without krbtgt and no host name given: %v", err)
		}
		login(t, kdc, cert, key, "alice", roots(kdc.KDCCA), "dc1.example.test")
	})
	t.Run("AD-style KDC settings", func(t *testing.T) {
		t.Parallel()
		kdc := tdstest.StartPKINITKDC(t, tdstest.PKINIT{ClientCA: ca.pem, ADStyle: true})
		kdc.AddCertUser(t, "alice")
		cert, key := ca.issue(t, 17, "alice", "alice@corp.example.test", true)
		login(t, kdc, cert, key, "alice", roots(kdc.KDCCA), "")
	})
}

func login(t *testing.T, kdc *tdstest.KDC, cert *x509.Certificate, key crypto.Signer, user string, kdcRoots *x509.CertPool, host string) {
	t.Helper()
	req, err := pkinit.NewRequest(pkinit.Params{Realm: tdstest.Realm, Username: user, Certificate: cert, Key: key, KDCRoots: kdcRoots, KDCHostname: host})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := req.ReadReply(exchange(t, "tcp", kdc.Addr, req.Marshal())); err != nil {
		t.Fatalf("%v\nKDC log:\n%s", err, kdc.Log())
	}
}

func wantCode(t *testing.T, kdc *tdstest.KDC, cert *x509.Certificate, key crypto.Signer, user string, kdcRoots *x509.CertPool, host string, code int32) {
	t.Helper()
	req, err := pkinit.NewRequest(pkinit.Params{Realm: tdstest.Realm, Username: user, Certificate: cert, Key: key, KDCRoots: kdcRoots, KDCHostname: host})
	if err != nil {
		t.Fatal(err)
	}
	_, err = req.ReadReply(exchange(t, "tcp", kdc.Addr, req.Marshal()))
	var ke *pkinit.KDCError
	if !errors.As(err, &ke) || ke.Code != code {
		t.Fatalf("want KDC error %d (%s), got %v\nKDC log:\n%s", code, pkinit.ErrorName(code), err, kdc.Log())
	}
}
