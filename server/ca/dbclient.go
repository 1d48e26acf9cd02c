package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/pamd/pamd/protocol/pkinit"
	"github.com/pamd/pamd/store"
)

// The db-client CA signs the short-lived certificates the gateway logs in
// to a Kerberos realm with (PKINIT, for SQL Server accounts with auth
// pkinit). KDCs trust it: Active Directory through its NTAuth store, MIT
// through pkinit_anchors. It signs nothing else, and the keys it
// certifies are made on gateways and never leave them.

// MaxDBClientLifetime bounds a db-client certificate's validity.
const MaxDBClientLifetime = time.Hour

// Object identifiers of the db-client certificate profile.
var (
	oidKPClientAuth       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 4}          // id-pkinit-KPClientAuth
	oidSmartCardLogon     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2} // Microsoft Smart Card Logon
	oidUPN                = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3} // Microsoft UPN otherName
	oidNTDSCASecurity     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2}    // the SID extension (KB5014754)
	oidNTDSObjectSID      = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 25, 2, 1}
	oidSubjectAltNameCert = asn1.ObjectIdentifier{2, 5, 29, 17}
)

var sidPattern = regexp.MustCompile(`^S-1-[0-9]+(-[0-9]+){1,14}$`)

// DBClientCert is what one db-client certificate says.
type DBClientCert struct {
	Username string // the principal's name in Realm (alice)
	Realm    string // EXAMPLE.COM
	UPN      string // the user principal name; empty: Username@Realm
	SID      string // the account's SID (S-1-5-21-…), for AD's strong mapping; optional
	NotAfter time.Time
	CRLURL   string // where the CA's CRL is served (the CRL distribution point)
}

// ErrBadDBClientRequest: the certificate asked for breaks the profile.
var ErrBadDBClientRequest = errors.New("db-client certificate")

// CheckSID reports whether s is a SID in its string form.
func CheckSID(s string) error {
	if !sidPattern.MatchString(s) {
		return fmt.Errorf("%q is not a SID (want S-1-5-21-…)", s)
	}
	return nil
}

// IssueDBClient signs a db-client certificate for pub (RSA of at least 2048
// bits or ECDSA P-256): EKUs clientAuth, Smart Card Logon and
// id-pkinit-KPClientAuth; SANs id-pkinit-san Username@Realm, the UPN and,
// with a SID, the SID URL; with a SID, the SID extension; key usage
// digitalSignature; the CRL distribution point. The lifetime is at most
// MaxDBClientLifetime and ends at c.NotAfter. It returns the DER.
func (a *Authority) IssueDBClient(pub crypto.PublicKey, c DBClientCert) ([]byte, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%w: an RSA key of %d bits (want 2048 or more)", ErrBadDBClientRequest, k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: an ECDSA key on %s (want P-256)", ErrBadDBClientRequest, k.Curve.Params().Name)
		}
	default:
		return nil, fmt.Errorf("%w: a %T key (want RSA or ECDSA P-256)", ErrBadDBClientRequest, pub)
	}
	if c.Username == "" || c.Realm == "" || strings.ContainsAny(c.Username+c.Realm, "@ \x00") {
		return nil, fmt.Errorf("%w: a user name and a realm, without @ or spaces", ErrBadDBClientRequest)
	}
	if c.SID != "" {
		if err := CheckSID(c.SID); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadDBClientRequest, err)
		}
	}
	now := time.Now()
	notAfter := c.NotAfter
	if limit := now.Add(MaxDBClientLifetime); notAfter.IsZero() || notAfter.After(limit) {
		notAfter = limit
	}
	if !notAfter.After(now) {
		return nil, fmt.Errorf("%w: the session has ended", ErrBadDBClientRequest)
	}
	upn := c.UPN
	if upn == "" {
		upn = c.Username + "@" + c.Realm
	}
	san, err := dbClientSAN(c, upn)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadDBClientRequest, err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:       serialNumber(),
		Subject:            pkix.Name{CommonName: c.Username, Organization: []string{"pamd"}},
		NotBefore:          now.Add(-5 * time.Minute), // a KDC's clock a little behind
		NotAfter:           notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{oidSmartCardLogon, oidKPClientAuth},
		ExtraExtensions:    []pkix.Extension{{Id: oidSubjectAltNameCert, Value: san}},
	}
	// Where AD finds the CRL (ADSetupScript publishes it there), then
	// pamd's own URL.
	tmpl.CRLDistributionPoints = []string{ldapCDP(c.Realm)}
	if c.CRLURL != "" {
		tmpl.CRLDistributionPoints = append(tmpl.CRLDistributionPoints, c.CRLURL)
	}
	if c.SID != "" {
		ext, err := sidExtension(c.SID)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadDBClientRequest, err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: oidNTDSCASecurity, Value: ext})
	}
	dca := a.pair(TypeDBClient)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, dca.cert, pub, dca.key)
	if err != nil {
		return nil, fmt.Errorf("db-client certificate: %w", err)
	}
	return der, nil
}

func serialNumber() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	return n
}

// dbClientSAN is the subjectAltName: id-pkinit-san, the UPN otherName
// (UTF8String) and, with a SID, the URL AD maps it by.
func dbClientSAN(c DBClientCert, upn string) ([]byte, error) {
	principal, err := pkinit.PrincipalOtherName(pkinit.Principal{NameType: pkinit.NameTypePrincipal, Components: []string{c.Username}, Realm: c.Realm})
	if err != nil {
		return nil, err
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(principal)
		b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidUPN)
			b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(upn)) })
			})
		})
		if c.SID != "" {
			u := url.URL{Scheme: "tag", Opaque: "microsoft.com,2022-09-14:sid:" + c.SID}
			b.AddASN1(casn1.Tag(6).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes([]byte(u.String())) })
		}
	})
	return b.Bytes()
}

// sidExtension is the NTDS CA security extension: GeneralNames holding one
// otherName (szOID_NTDS_OBJECTSID) whose value is the SID string.
func sidExtension(sid string) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidNTDSObjectSID)
			b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
				b.AddASN1OctetString([]byte(sid))
			})
		})
	})
	return b.Bytes()
}

// DBClientCertPEM is the db-client CA's certificate, for NTAuth and
// pkinit_anchors.
func (a *Authority) DBClientCertPEM() []byte { return a.pair(TypeDBClient).certPEM }

// DBClientCA is the db-client CA's certificate.
func (a *Authority) DBClientCA() *x509.Certificate { return a.pair(TypeDBClient).cert }

// The revoked db-client certificates, kept as a secret until long after
// they would have expired.
const revokedSecret = "db-client-ca.revoked"

type revocation struct {
	Serial string    `json:"serial"` // decimal
	At     time.Time `json:"at"`
}

// CRLValidity is how long a db-client CRL is valid (its nextUpdate):
// what is published to a KDC must be refreshed within it.
const CRLValidity = 7 * 24 * time.Hour

// RevokeDBClient puts a db-client certificate's serial on the CRL.
func (a *Authority) RevokeDBClient(serial *big.Int) error {
	return a.st.Update(func(tx *store.Tx) error {
		list, err := revocations(tx)
		if err != nil {
			return err
		}
		for _, r := range list {
			if r.Serial == serial.String() {
				return nil
			}
		}
		list = append(list, revocation{Serial: serial.String(), At: time.Now().UTC()})
		b, err := json.Marshal(list)
		if err != nil {
			return err
		}
		return tx.PutSecret(revokedSecret, b)
	})
}

func revocations(tx *store.Tx) ([]revocation, error) {
	b, err := tx.Secret(revokedSecret)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var list []revocation
	if err := json.Unmarshal(b, &list); err != nil {
		return nil, fmt.Errorf("revoked db-client certificates: %w", err)
	}
	return list, nil
}

// DBClientCRL is the db-client CA's current CRL (DER), signed now and valid
// for CRLValidity. A certificate lives at most an hour, so revocations
// older than a day are left out.
func (a *Authority) DBClientCRL() ([]byte, error) {
	var list []revocation
	if err := a.st.View(func(tx *store.Tx) (err error) { list, err = revocations(tx); return err }); err != nil {
		return nil, err
	}
	now := time.Now()
	var entries []x509.RevocationListEntry
	for _, r := range list {
		n, ok := new(big.Int).SetString(r.Serial, 10)
		if !ok || now.Sub(r.At) > 24*time.Hour+MaxDBClientLifetime {
			continue
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: r.At})
	}
	dca := a.pair(TypeDBClient)
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()), // grows with every CRL signed
		ThisUpdate:                now.Add(-time.Minute),
		NextUpdate:                now.Add(CRLValidity),
		RevokedCertificateEntries: entries,
	}, dca.cert, dca.key)
	if err != nil {
		return nil, fmt.Errorf("db-client CRL: %w", err)
	}
	return der, nil
}
