package tdstest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/pamd/pamd/protocol/pkinit"
)

// PKINIT configures the KDC for certificate logins (RFC 4556): a KDC
// certificate from a CA of its own (KDC.KDCCA), and the CA it trusts for
// client certificates.
type PKINIT struct {
	// ClientCA is pkinit_anchors (PEM): the CA that signs users' certificates.
	ClientCA []byte
	// CRL (PEM), if set, is pkinit_revoke, with pkinit_require_crl_checking.
	CRL []byte
	// ADStyle sets what an Active Directory certificate needs of MIT:
	// pkinit_eku_checking = scLogin and pkinit_allow_upn = true.
	ADStyle bool
	// KDCHostname, if set, is a DNS name in the KDC's certificate.
	KDCHostname string
	// NoTGSName leaves krbtgt/REALM out of the KDC's certificate, so a
	// client must accept it by KDCHostname and the KDC EKU.
	NoTGSName bool
}

// StartPKINITKDC is StartKDC with PKINIT. It skips (or with
// PAMD_REQUIRE_PEERS fails) when the krb5-pkinit plugin is missing.
func StartPKINITKDC(t testing.TB, pk PKINIT) *KDC {
	t.Helper()
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/krb5/plugins/preauth/pkinit.so"); err != nil {
		if os.Getenv("PAMD_REQUIRE_PEERS") != "" {
			t.Fatal("the MIT KDC's PKINIT plugin is required; scripts/peers installs krb5-pkinit")
		}
		t.Skip("krb5-pkinit not installed; scripts/peers installs it")
	}
	return startKDC(t, &pk)
}

// AddCertUser creates a principal that can log in only with a
// certificate: no key, pre-authentication required.
func (k *KDC) AddCertUser(t testing.TB, name string) {
	k.run(t, "/usr/sbin/kadmin.local", "-q", fmt.Sprintf("addprinc -nokey +requires_preauth %s@%s", name, Realm))
}

var (
	oidKPKdc           = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 5}
	oidSubjectAltName2 = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// configurePKINIT writes the KDC's certificate, key and anchors into k.dir
// and returns the kdc.conf realm lines.
func (k *KDC) configurePKINIT(t testing.TB, pk *PKINIT) string {
	t.Helper()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test KDC CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	kdcKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if !pk.NoTGSName {
			on, err := pkinit.PrincipalOtherName(pkinit.TGS(Realm))
			if err != nil {
				b.SetError(err)
			}
			b.AddBytes(on)
		}
		if pk.KDCHostname != "" {
			b.AddASN1(casn1.Tag(2).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(pk.KDCHostname)) })
		}
	})
	san, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	kdcTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kdc." + strings.ToLower(Realm)},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidKPKdc},
		ExtraExtensions: []pkix.Extension{{Id: oidSubjectAltName2, Value: san}}}
	kdcDER, err := x509.CreateCertificate(rand.Reader, kdcTmpl, ca, &kdcKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	k.KDCCA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	write(t, filepath.Join(k.dir, "kdc.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kdcDER})))
	write(t, filepath.Join(k.dir, "kdc.key"), string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(kdcKey)})))
	// MIT also builds its own certificate's chain from the anchors when it
	// signs its reply, so they hold the KDC's CA too.
	write(t, filepath.Join(k.dir, "anchors.pem"), string(pk.ClientCA)+string(k.KDCCA))
	lines := fmt.Sprintf("  pkinit_identity = FILE:%[1]s/kdc.pem,%[1]s/kdc.key\n  pkinit_anchors = FILE:%[1]s/anchors.pem\n", k.dir)
	if pk.CRL != nil {
		write(t, filepath.Join(k.dir, "crl.pem"), string(pk.CRL))
		lines += fmt.Sprintf("  pkinit_revoke = FILE:%s/crl.pem\n  pkinit_require_crl_checking = true\n", k.dir)
	}
	if pk.ADStyle {
		lines += "  pkinit_eku_checking = scLogin\n  pkinit_allow_upn = true\n"
	}
	return lines
}

// Exchange sends one Kerberos message to the KDC over TCP (RFC 4120
// §7.2.2: a 4-byte length, then the message) and returns its answer.
func (k *KDC) Exchange(t testing.TB, msg []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", k.Addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(append(binary.BigEndian.AppendUint32(nil, uint32(len(msg))), msg...)); err != nil {
		t.Fatal(err)
	}
	var n [4]byte
	if _, err := io.ReadFull(c, n[:]); err != nil {
		t.Fatal(err)
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > 1<<20 {
		t.Fatalf("a KDC reply of %d bytes", size)
	}
	out := make([]byte, size)
	if _, err := io.ReadFull(c, out); err != nil {
		t.Fatal(err)
	}
	return out
}
