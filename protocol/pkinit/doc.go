// Package pkinit is the client side of Kerberos public key initial
// authentication (PKINIT, RFC 4556, with the Microsoft additions of
// MS-PKCA): it builds an AS-REQ that proves the client's identity with a
// certificate and reads the KDC's AS-REP into a TGT that gokrb5 can use for
// service tickets. Messages in, messages out: the caller carries them to
// and from the KDC.
//
// The request carries a PA-PK-AS-REQ (padata 16): a CMS SignedData
// (RFC 5652, SHA-256, signed attributes contentType and messageDigest,
// eContentType id-pkinit-authData) over an AuthPack whose PKAuthenticator
// holds cusec, ctime, the request body's nonce, paChecksum (SHA-1 of the
// DER KDC-REQ-BODY) and MS-PKCA's paChecksum2 (SHA-256, tag [5]), and
// whose clientPublicValue is a Diffie-Hellman key in the 2048-bit MODP
// group 14 of RFC 3526 (p, g and q, as RFC 3279 DomainParameters). There
// is no RSA key transport: Windows Server 2025 refuses it.
//
// The reply's PA-PK-AS-REP (padata 17) must be the dhInfo choice. The
// KDC's SignedData (eContentType id-pkinit-DHKeyData) is verified against
// the caller's CA pool; the KDC's certificate is accepted when its
// id-pkinit-san names krbtgt/REALM@REALM, or when it has the caller's KDC
// host name as a DNS name and the id-pkinit-KPKdc EKU (RFC 4556 §3.2.4).
// The reply key is octetstring2key (§3.2.3.1) of the shared secret,
// left-padded to the size of p, followed by the server's DH nonce when
// the KDC sent one. The KDCDHKeyInfo's nonce must be the PKAuthenticator's
// and the decrypted reply's nonce the request's.
//
// KDC errors come back as *KDCError; codes 62 to 81 are PKINIT's (RFC
// 4556 §3.1.3, MS-PKCA), each with its name.
//
// Files: pkinit.go (Params, Request, TGT), authpack.go (the AuthPack and
// PA-PK-AS-REQ writer), reply.go (the PA-PK-AS-REP readers and the KDC
// certificate check), cms.go (SignedData writer, reader and verifier),
// dh.go (group 14, the shared secret, octetstring2key), san.go
// (KRB5PrincipalName SANs), ccache.go (the TGT as a credentials cache),
// errors.go (KDCError).
package pkinit
