package pkinit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Object identifiers (RFC 4556, RFC 5652, RFC 3279, RFC 5754, RFC 4055).
var (
	oidPKINITAuthData  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 1}
	oidPKINITDHKeyData = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 2}
	oidPKINITSAN       = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 2}
	oidKPKdc           = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 2, 3, 5}
	oidSignedData      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidDHPublicNumber  = asn1.ObjectIdentifier{1, 2, 840, 10046, 2, 1}
	oidSHA1            = asn1.ObjectIdentifier{1, 3, 14, 3, 2, 26}
	oidSHA256          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidSHA384          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
	oidSHA512          = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 3}
	oidRSAEncryption   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 1}
	oidSHA1WithRSA     = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}
	oidSHA256WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}
	oidSHA384WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 12}
	oidSHA512WithRSA   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 13}
	oidECDSAWithSHA256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}
	oidECDSAWithSHA384 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}
	oidECDSAWithSHA512 = asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 4}
)

// Bounds on what the readers accept.
const (
	maxCerts   = 16
	maxSigners = 4
)

var errMalformed = errors.New("pkinit: malformed message")

func malformed(what string) error { return fmt.Errorf("%w: %s", errMalformed, what) }

// signData is a CMS ContentInfo holding a SignedData over content of the
// given type: SHA-256, signed attributes contentType and messageDigest,
// the signer named by issuer and serial number, its certificate (and
// chain) included.
func signData(contentType asn1.ObjectIdentifier, content []byte, cert *x509.Certificate, chain []*x509.Certificate, key crypto.Signer, random io.Reader) ([]byte, error) {
	if random == nil {
		random = rand.Reader
	}
	var sigAlg asn1.ObjectIdentifier
	switch key.Public().(type) {
	case *rsa.PublicKey:
		sigAlg = oidSHA256WithRSA
	case *ecdsa.PublicKey:
		sigAlg = oidECDSAWithSHA256
	default:
		return nil, fmt.Errorf("pkinit: a %T key cannot sign (want RSA or ECDSA)", key.Public())
	}
	digest := sha256.Sum256(content)
	// DER sorts a SET OF by the encodings of its elements.
	attrs := [][]byte{
		attribute(oidContentType, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier(contentType) }),
		attribute(oidMessageDigest, func(b *cryptobyte.Builder) { b.AddASN1OctetString(digest[:]) }),
	}
	slices.SortFunc(attrs, bytes.Compare)
	var set cryptobyte.Builder
	set.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
		for _, a := range attrs {
			b.AddBytes(a)
		}
	})
	signedAttrs, err := set.Bytes()
	if err != nil {
		return nil, fmt.Errorf("pkinit: signed attributes: %w", err)
	}
	attrsDigest := sha256.Sum256(signedAttrs)
	sig, err := key.Sign(random, attrsDigest[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("pkinit: sign: %w", err)
	}
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(3) // eContentType is not id-data
				b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
					algorithm(b, oidSHA256, false)
				})
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(contentType)
					b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
						b.AddASN1OctetString(content)
					})
				})
				b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
					b.AddBytes(cert.Raw)
					for _, c := range chain {
						b.AddBytes(c.Raw)
					}
				})
				b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1Int64(1) // sid is issuerAndSerialNumber
						b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddBytes(cert.RawIssuer)
							b.AddASN1BigInt(cert.SerialNumber)
						})
						algorithm(b, oidSHA256, false)
						// [0] IMPLICIT: the SET's contents under another tag.
						b.AddASN1(casn1.Tag(0).ContextSpecific().Constructed(), func(b *cryptobyte.Builder) {
							for _, a := range attrs {
								b.AddBytes(a)
							}
						})
						algorithm(b, sigAlg, sigAlg.Equal(oidSHA256WithRSA))
						b.AddASN1OctetString(sig)
					})
				})
			})
		})
	})
	return b.Bytes()
}

func attribute(oid asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) []byte {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		b.AddASN1(casn1.SET, value)
	})
	out, _ := b.Bytes() // an OID and an octet string always encode
	return out
}

func algorithm(b *cryptobyte.Builder, oid asn1.ObjectIdentifier, null bool) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oid)
		if null {
			b.AddASN1NULL()
		}
	})
}

// signedData is what the reader takes from a CMS SignedData.
type signedData struct {
	contentType asn1.ObjectIdentifier // eContentType
	content     []byte                // eContent
	certs       [][]byte              // DER certificates
	signers     []signerInfo
}

type signerInfo struct {
	issuer      []byte   // DER Name, with issuerAndSerialNumber
	serial      *big.Int // with issuerAndSerialNumber
	ski         []byte   // with subjectKeyIdentifier
	digestAlg   asn1.ObjectIdentifier
	signedAttrs []byte // DER SET OF Attribute as signed (tag 0x31), nil if absent
	sigAlg      asn1.ObjectIdentifier
	signature   []byte
}

// parseSignedData reads a ContentInfo holding a SignedData with an
// encapsulated content.
func parseSignedData(der []byte) (*signedData, error) {
	in := cryptobyte.String(der)
	var ci, sd cryptobyte.String
	var ct asn1.ObjectIdentifier
	if !in.ReadASN1(&ci, casn1.SEQUENCE) || !in.Empty() ||
		!ci.ReadASN1ObjectIdentifier(&ct) ||
		!ci.ReadASN1(&sd, casn1.Tag(0).ContextSpecific().Constructed()) || !ci.Empty() {
		return nil, malformed("ContentInfo")
	}
	if !ct.Equal(oidSignedData) {
		return nil, malformed("the ContentInfo is not a SignedData")
	}
	var body, digestAlgs, encap, signerSet cryptobyte.String
	var version int64
	if !sd.ReadASN1(&body, casn1.SEQUENCE) || !sd.Empty() ||
		!body.ReadASN1Integer(&version) ||
		!body.ReadASN1(&digestAlgs, casn1.SET) ||
		!body.ReadASN1(&encap, casn1.SEQUENCE) {
		return nil, malformed("SignedData")
	}
	out := &signedData{}
	var eContent cryptobyte.String
	var hasContent bool
	if !encap.ReadASN1ObjectIdentifier(&out.contentType) ||
		!encap.ReadOptionalASN1(&eContent, &hasContent, casn1.Tag(0).ContextSpecific().Constructed()) ||
		!encap.Empty() || !hasContent {
		return nil, malformed("EncapsulatedContentInfo")
	}
	var octets cryptobyte.String
	if !eContent.ReadASN1(&octets, casn1.OCTET_STRING) || !eContent.Empty() {
		return nil, malformed("eContent")
	}
	out.content = octets
	var certSet cryptobyte.String
	var hasCerts bool
	if !body.ReadOptionalASN1(&certSet, &hasCerts, casn1.Tag(0).ContextSpecific().Constructed()) {
		return nil, malformed("certificates")
	}
	for !certSet.Empty() {
		var c cryptobyte.String
		var tag casn1.Tag
		if !certSet.ReadAnyASN1Element(&c, &tag) {
			return nil, malformed("certificates")
		}
		if tag != casn1.SEQUENCE { // other CertificateChoices are not used here
			continue
		}
		if len(out.certs) == maxCerts {
			return nil, malformed("more than 16 certificates")
		}
		out.certs = append(out.certs, c)
	}
	var crls cryptobyte.String
	if !body.ReadOptionalASN1(&crls, nil, casn1.Tag(1).ContextSpecific().Constructed()) ||
		!body.ReadASN1(&signerSet, casn1.SET) || !body.Empty() {
		return nil, malformed("SignedData")
	}
	for !signerSet.Empty() {
		if len(out.signers) == maxSigners {
			return nil, malformed("more than 4 signers")
		}
		si, err := parseSignerInfo(&signerSet)
		if err != nil {
			return nil, err
		}
		out.signers = append(out.signers, si)
	}
	if len(out.signers) == 0 {
		return nil, malformed("SignedData without a signer")
	}
	return out, nil
}

func parseSignerInfo(in *cryptobyte.String) (signerInfo, error) {
	var si signerInfo
	var s cryptobyte.String
	var version int64
	if !in.ReadASN1(&s, casn1.SEQUENCE) || !s.ReadASN1Integer(&version) {
		return si, malformed("SignerInfo")
	}
	switch {
	case s.PeekASN1Tag(casn1.SEQUENCE):
		var ias cryptobyte.String
		var issuer cryptobyte.String
		si.serial = new(big.Int)
		if !s.ReadASN1(&ias, casn1.SEQUENCE) || !ias.ReadASN1Element(&issuer, casn1.SEQUENCE) ||
			!ias.ReadASN1Integer(si.serial) || !ias.Empty() {
			return si, malformed("IssuerAndSerialNumber")
		}
		si.issuer = issuer
	case s.PeekASN1Tag(casn1.Tag(0).ContextSpecific()):
		var ski cryptobyte.String
		if !s.ReadASN1(&ski, casn1.Tag(0).ContextSpecific()) {
			return si, malformed("SubjectKeyIdentifier")
		}
		si.ski = ski
	default:
		return si, malformed("SignerIdentifier")
	}
	if !readAlgorithm(&s, &si.digestAlg) {
		return si, malformed("SignerInfo digestAlgorithm")
	}
	var attrs cryptobyte.String
	var hasAttrs bool
	if !s.ReadOptionalASN1(&attrs, &hasAttrs, casn1.Tag(0).ContextSpecific().Constructed()) {
		return si, malformed("signedAttrs")
	}
	if hasAttrs {
		var b cryptobyte.Builder
		b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) { b.AddBytes(attrs) })
		var err error
		if si.signedAttrs, err = b.Bytes(); err != nil {
			return si, malformed("signedAttrs")
		}
	}
	var sig cryptobyte.String
	if !readAlgorithm(&s, &si.sigAlg) || !s.ReadASN1(&sig, casn1.OCTET_STRING) {
		return si, malformed("SignerInfo signature")
	}
	si.signature = sig
	// unsignedAttrs [1] may follow; nothing here needs them.
	return si, nil
}

func readAlgorithm(s *cryptobyte.String, oid *asn1.ObjectIdentifier) bool {
	var alg cryptobyte.String
	return s.ReadASN1(&alg, casn1.SEQUENCE) && alg.ReadASN1ObjectIdentifier(oid)
}

// signedAttributes returns the contentType and messageDigest attributes.
func signedAttributes(der []byte) (asn1.ObjectIdentifier, []byte, error) {
	in := cryptobyte.String(der)
	var set cryptobyte.String
	if !in.ReadASN1(&set, casn1.SET) {
		return nil, nil, malformed("signedAttrs")
	}
	var ct asn1.ObjectIdentifier
	var md []byte
	for !set.Empty() {
		var attr, values cryptobyte.String
		var oid asn1.ObjectIdentifier
		if !set.ReadASN1(&attr, casn1.SEQUENCE) || !attr.ReadASN1ObjectIdentifier(&oid) ||
			!attr.ReadASN1(&values, casn1.SET) {
			return nil, nil, malformed("signed attribute")
		}
		switch {
		case oid.Equal(oidContentType):
			if ct != nil || !values.ReadASN1ObjectIdentifier(&ct) || !values.Empty() {
				return nil, nil, malformed("contentType attribute")
			}
		case oid.Equal(oidMessageDigest):
			var v cryptobyte.String
			if md != nil || !values.ReadASN1(&v, casn1.OCTET_STRING) || !values.Empty() {
				return nil, nil, malformed("messageDigest attribute")
			}
			md = v
		}
	}
	if ct == nil || md == nil {
		return nil, nil, malformed("signedAttrs without contentType and messageDigest")
	}
	return ct, md, nil
}

func hashOf(oid asn1.ObjectIdentifier) (crypto.Hash, bool) {
	switch {
	case oid.Equal(oidSHA1):
		return crypto.SHA1, true
	case oid.Equal(oidSHA256):
		return crypto.SHA256, true
	case oid.Equal(oidSHA384):
		return crypto.SHA384, true
	case oid.Equal(oidSHA512):
		return crypto.SHA512, true
	}
	return 0, false
}

// errBadSignature: the KDC's signature does not verify.
var errBadSignature = errors.New("pkinit: the KDC's signature does not verify")

// verify checks the signer's signature over the content and returns the
// signer's certificate (one of sd.certs).
func (sd *signedData) verify() (*x509.Certificate, []*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, der := range sd.certs {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("pkinit: a certificate in the KDC's reply: %w", err)
		}
		certs = append(certs, c)
	}
	si := sd.signers[0]
	var signer *x509.Certificate
	for _, c := range certs {
		if (si.serial != nil && c.SerialNumber.Cmp(si.serial) == 0 && bytes.Equal(c.RawIssuer, si.issuer)) ||
			(si.ski != nil && bytes.Equal(c.SubjectKeyId, si.ski)) {
			signer = c
			break
		}
	}
	if signer == nil {
		return nil, nil, errors.New("pkinit: the KDC's reply does not carry its signing certificate")
	}
	h, ok := hashOf(si.digestAlg)
	if !ok {
		return nil, nil, fmt.Errorf("pkinit: the KDC signed with digest %v, which pamd does not accept", si.digestAlg)
	}
	signed := sd.content
	if si.signedAttrs != nil {
		ct, md, err := signedAttributes(si.signedAttrs)
		if err != nil {
			return nil, nil, err
		}
		if !ct.Equal(sd.contentType) {
			return nil, nil, errors.New("pkinit: the KDC's contentType attribute differs from its content's type")
		}
		d := h.New()
		d.Write(sd.content)
		if !bytes.Equal(d.Sum(nil), md) {
			return nil, nil, errBadSignature
		}
		signed = si.signedAttrs
	}
	d := h.New()
	d.Write(signed)
	digest := d.Sum(nil)
	switch pub := signer.PublicKey.(type) {
	case *rsa.PublicKey:
		if !oneOf(si.sigAlg, oidRSAEncryption, oidSHA1WithRSA, oidSHA256WithRSA, oidSHA384WithRSA, oidSHA512WithRSA) {
			return nil, nil, fmt.Errorf("pkinit: the KDC's signature algorithm %v is not accepted", si.sigAlg)
		}
		if rsa.VerifyPKCS1v15(pub, h, digest, si.signature) != nil {
			return nil, nil, errBadSignature
		}
	case *ecdsa.PublicKey:
		if !oneOf(si.sigAlg, oidECDSAWithSHA256, oidECDSAWithSHA384, oidECDSAWithSHA512) {
			return nil, nil, fmt.Errorf("pkinit: the KDC's signature algorithm %v is not accepted", si.sigAlg)
		}
		if !ecdsa.VerifyASN1(pub, digest, si.signature) {
			return nil, nil, errBadSignature
		}
	default:
		return nil, nil, fmt.Errorf("pkinit: the KDC's certificate has a %T key", pub)
	}
	return signer, certs, nil
}

func oneOf(oid asn1.ObjectIdentifier, set ...asn1.ObjectIdentifier) bool {
	for _, o := range set {
		if oid.Equal(o) {
			return true
		}
	}
	return false
}
