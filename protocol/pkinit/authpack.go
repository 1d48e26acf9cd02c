package pkinit

import (
	"crypto/sha1"
	"crypto/sha256"
	"time"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func explicit(b *cryptobyte.Builder, n uint8, f func(*cryptobyte.Builder)) {
	b.AddASN1(casn1.Tag(n).ContextSpecific().Constructed(), f)
}

// authPack is the DER AuthPack of RFC 4556 §3.2.1 for a request whose
// DER KDC-REQ-BODY is body: PKAuthenticator (with paChecksum and MS-PKCA's
// paChecksum2), the DH public value and the CMS types pamd can verify.
func authPack(now time.Time, nonce int32, body []byte, dh *dhKey) ([]byte, error) {
	sum1 := sha1.Sum(body)
	sum2 := sha256.Sum256(body)
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		explicit(b, 0, func(b *cryptobyte.Builder) { // pkAuthenticator
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				explicit(b, 0, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(now.Nanosecond() / 1000)) })
				explicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1GeneralizedTime(now.UTC().Truncate(time.Second)) })
				explicit(b, 2, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(nonce)) })
				explicit(b, 3, func(b *cryptobyte.Builder) { b.AddASN1OctetString(sum1[:]) })
				explicit(b, 5, func(b *cryptobyte.Builder) { // paChecksum2
					b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
						explicit(b, 0, func(b *cryptobyte.Builder) { b.AddASN1OctetString(sum2[:]) })
						explicit(b, 1, func(b *cryptobyte.Builder) { algorithm(b, oidSHA256, false) })
					})
				})
			})
		})
		explicit(b, 1, dh.subjectPublicKeyInfo)      // clientPublicValue
		explicit(b, 2, func(b *cryptobyte.Builder) { // supportedCMSTypes
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				algorithm(b, oidSHA256WithRSA, true)
				algorithm(b, oidECDSAWithSHA256, false)
				algorithm(b, oidSHA512WithRSA, true)
			})
		})
	})
	return b.Bytes()
}

// paPKASReq wraps the signed AuthPack in a PA-PK-AS-REQ: signedAuthPack
// [0] IMPLICIT OCTET STRING, and nothing else.
func paPKASReq(signedAuthPack []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(signedAuthPack) })
	})
	return b.Bytes()
}
