package pkinit

import (
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Sentinels for what the client refuses in the KDC's answer.
var (
	// ErrKDCNotTrusted: the KDC's certificate does not chain to the CAs
	// the caller trusts for KDCs.
	ErrKDCNotTrusted = errors.New("pkinit: the KDC's certificate is not signed by a trusted KDC CA")
	// ErrKDCName: the KDC's certificate names neither krbtgt/REALM nor the
	// expected KDC host (with the KDC EKU).
	ErrKDCName = errors.New("pkinit: the KDC's certificate does not name this realm's KDC")
	// ErrNonce: a nonce in the reply is not the request's.
	ErrNonce = errors.New("pkinit: the KDC's reply does not answer this request (nonce differs)")
)

// maxNonce bounds serverDHNonce (RFC 4556 allows up to 64 bytes).
const maxDHNonce = 64

// parsePAPKASRep reads a PA-PK-AS-REP that must be the dhInfo choice:
// [0] DHRepInfo { dhSignedData [0] IMPLICIT OCTET STRING, serverDHNonce
// [1] OCTET STRING OPTIONAL, kdf [2] OPTIONAL }.
func parsePAPKASRep(der []byte) (signed, serverNonce []byte, err error) {
	in := cryptobyte.String(der)
	if in.PeekASN1Tag(casn1.Tag(1).ContextSpecific()) {
		return nil, nil, errors.New("pkinit: the KDC answered with RSA key transport (encKeyPack), which pamd never asks for")
	}
	var choice, info, sd cryptobyte.String
	if !in.ReadASN1(&choice, casn1.Tag(0).ContextSpecific().Constructed()) || !in.Empty() ||
		!choice.ReadASN1(&info, casn1.SEQUENCE) || !choice.Empty() ||
		!info.ReadASN1(&sd, casn1.Tag(0).ContextSpecific()) {
		return nil, nil, malformed("PA-PK-AS-REP")
	}
	var nonceTag, nonce cryptobyte.String
	var hasNonce bool
	if !info.ReadOptionalASN1(&nonceTag, &hasNonce, casn1.Tag(1).ContextSpecific().Constructed()) {
		return nil, nil, malformed("DHRepInfo")
	}
	if hasNonce {
		if !nonceTag.ReadASN1(&nonce, casn1.OCTET_STRING) || !nonceTag.Empty() || len(nonce) == 0 || len(nonce) > maxDHNonce {
			return nil, nil, malformed("serverDHNonce")
		}
	}
	if info.PeekASN1Tag(casn1.Tag(2).ContextSpecific().Constructed()) {
		return nil, nil, errors.New("pkinit: the KDC chose a key derivation function (RFC 8636) that pamd did not offer")
	}
	return sd, nonce, nil
}

// parseKDCDHKeyInfo reads KDCDHKeyInfo { subjectPublicKey [0] BIT STRING
// (a DER INTEGER), nonce [1] INTEGER, dhKeyExpiration [2] OPTIONAL }.
func parseKDCDHKeyInfo(der []byte) (*big.Int, int64, error) {
	in := cryptobyte.String(der)
	var seq, pkTag, nonceTag cryptobyte.String
	var bits asn1.BitString
	var nonce int64
	if !in.ReadASN1(&seq, casn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1(&pkTag, casn1.Tag(0).ContextSpecific().Constructed()) ||
		!pkTag.ReadASN1BitString(&bits) || !pkTag.Empty() || bits.BitLength%8 != 0 ||
		!seq.ReadASN1(&nonceTag, casn1.Tag(1).ContextSpecific().Constructed()) ||
		!nonceTag.ReadASN1Integer(&nonce) || !nonceTag.Empty() {
		return nil, 0, malformed("KDCDHKeyInfo")
	}
	y := new(big.Int)
	pub := cryptobyte.String(bits.Bytes)
	if !pub.ReadASN1Integer(y) || !pub.Empty() || y.Sign() <= 0 || y.BitLen() > group14P.BitLen() {
		return nil, 0, malformed("the KDC's public value")
	}
	return y, nonce, nil
}

// checkKDCCertificate accepts the KDC's signing certificate when it
// chains to roots and names the realm's TGS, or the given host name with
// the KDC EKU.
func checkKDCCertificate(cert *x509.Certificate, others []*x509.Certificate, roots *x509.CertPool, realm, hostname string, now time.Time) error {
	if roots == nil {
		return fmt.Errorf("%w: no KDC CA given", ErrKDCNotTrusted)
	}
	inter := x509.NewCertPool()
	for _, c := range others {
		if c != cert {
			inter.AddCert(c)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("%w (%s): %v", ErrKDCNotTrusted, cert.Subject, err)
	}
	for _, p := range CertificatePrincipals(cert) {
		if p.Equal(TGS(realm)) {
			return nil
		}
	}
	if hostname != "" && cert.VerifyHostname(hostname) == nil && hasEKU(cert, oidKPKdc) {
		return nil
	}
	if hostname != "" {
		return fmt.Errorf("%w: %s names neither krbtgt/%s@%s nor %s with the KDC EKU", ErrKDCName, cert.Subject, realm, realm, hostname)
	}
	return fmt.Errorf("%w: %s does not name krbtgt/%s@%s (a KDC certificate with a DNS name needs the KDC host name)", ErrKDCName, cert.Subject, realm, realm)
}

func hasEKU(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, u := range c.UnknownExtKeyUsage {
		if u.Equal(oid) {
			return true
		}
	}
	return false
}
