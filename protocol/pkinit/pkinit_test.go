package pkinit

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

func selfSigned(t testing.TB, key crypto.Signer, san []byte, ekus ...asn1.ObjectIdentifier) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), UnknownExtKeyUsage: ekus,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true}
	if san != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oidSubjectAltName, Value: san}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func sanOf(t testing.TB, names ...[]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, n := range names {
			b.AddBytes(n)
		}
	})
	out, err := b.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testKeys(t testing.TB) map[string]crypto.Signer {
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{"rsa": r, "ecdsa": e}
}

// TestSignedDataRoundTrip: what signData writes, parseSignedData reads and
// verify accepts; a changed byte of content or signature is refused.
func TestSignedDataRoundTrip(t *testing.T) {
	for name, key := range testKeys(t) {
		t.Run(name, func(t *testing.T) {
			cert := selfSigned(t, key, nil)
			content := []byte("the content that is signed")
			der, err := signData(oidPKINITDHKeyData, content, cert, nil, key, nil)
			if err != nil {
				t.Fatal(err)
			}
			sd, err := parseSignedData(der)
			if err != nil {
				t.Fatal(err)
			}
			if !sd.contentType.Equal(oidPKINITDHKeyData) || !bytes.Equal(sd.content, content) {
				t.Fatalf("read back %v %q", sd.contentType, sd.content)
			}
			signer, _, err := sd.verify()
			if err != nil || !signer.Equal(cert) {
				t.Fatalf("verify: %v", err)
			}
			sd.content = []byte("the content that is signeD")
			if _, _, err := sd.verify(); !errors.Is(err, errBadSignature) {
				t.Fatalf("changed content: %v", err)
			}
			sd.content = content
			sd.signers[0].signature[10] ^= 1
			if _, _, err := sd.verify(); !errors.Is(err, errBadSignature) {
				t.Fatalf("changed signature: %v", err)
			}
		})
	}
}

// TestPrincipalSAN: the id-pkinit-san written is read back; other SAN
// types are skipped.
func TestPrincipalSAN(t *testing.T) {
	p := Principal{NameType: NameTypePrincipal, Components: []string{"alice"}, Realm: "EXAMPLE.COM"}
	on, err := PrincipalOtherName(p)
	if err != nil {
		t.Fatal(err)
	}
	dns := []byte{0x82, 3, 'k', 'd', 'c'}
	got := sanPrincipals(sanOf(t, dns, on))
	if len(got) != 1 || !got[0].Equal(p) || got[0].NameType != NameTypePrincipal || got[0].String() != "alice@EXAMPLE.COM" {
		t.Fatalf("read back %+v", got)
	}
	if TGS("R").String() != "krbtgt/R@R" {
		t.Fatal(TGS("R").String())
	}
}

// TestKDCCertificate: accepted by krbtgt/REALM, or by host name with the
// KDC EKU; refused otherwise, and when not from the trusted CA.
func TestKDCCertificate(t *testing.T) {
	key := testKeys(t)["ecdsa"]
	tgs, _ := PrincipalOtherName(TGS("EXAMPLE.COM"))
	dns := []byte{0x82, 15}
	dns = append(dns, "dc1.example.com"...)
	for _, tt := range []struct {
		name     string
		san      []byte
		ekus     []asn1.ObjectIdentifier
		realm    string
		hostname string
		want     error
	}{
		{"krbtgt", sanOf(t, tgs), nil, "EXAMPLE.COM", "", nil},
		{"krbtgt of another realm", sanOf(t, tgs), nil, "OTHER.COM", "", ErrKDCName},
		{"dns and EKU", sanOf(t, dns), []asn1.ObjectIdentifier{oidKPKdc}, "EXAMPLE.COM", "dc1.example.com", nil},
		{"dns without EKU", sanOf(t, dns), nil, "EXAMPLE.COM", "dc1.example.com", ErrKDCName},
		{"dns, no host name asked", sanOf(t, dns), []asn1.ObjectIdentifier{oidKPKdc}, "EXAMPLE.COM", "", ErrKDCName},
		{"other dns", sanOf(t, dns), []asn1.ObjectIdentifier{oidKPKdc}, "EXAMPLE.COM", "dc2.example.com", ErrKDCName},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := selfSigned(t, key, tt.san, tt.ekus...)
			pool := x509.NewCertPool()
			pool.AddCert(c)
			if err := checkKDCCertificate(c, nil, pool, tt.realm, tt.hostname, time.Now()); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			if err := checkKDCCertificate(c, nil, x509.NewCertPool(), tt.realm, tt.hostname, time.Now()); !errors.Is(err, ErrKDCNotTrusted) {
				t.Fatalf("untrusted: %v", err)
			}
		})
	}
}

// TestDH: both sides of the exchange agree; values outside the group are
// refused; octetstring2key is SHA-1 in counter mode, truncated.
func TestDH(t *testing.T) {
	a, err := newDHKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newDHKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	za, err := a.sharedSecret(b.y)
	if err != nil {
		t.Fatal(err)
	}
	zb, err := b.sharedSecret(a.y)
	if err != nil || !bytes.Equal(za, zb) || len(za) != 256 {
		t.Fatalf("shared secrets differ or are not 256 bytes: %v", err)
	}
	for _, bad := range []*big.Int{big.NewInt(0), big.NewInt(1), new(big.Int).Sub(group14P, one), group14P} {
		if _, err := a.sharedSecret(bad); !errors.Is(err, errBadPublicValue) {
			t.Fatalf("public value %v accepted", bad)
		}
	}
	x := []byte("secret")
	h0 := sha1.Sum(append([]byte{0}, x...))
	h1 := sha1.Sum(append([]byte{1}, x...))
	want := append(h0[:], h1[:]...)[:32]
	if got := octetString2Key(x, 32); !bytes.Equal(got, want) {
		t.Fatalf("octetstring2key: %x, want %x", got, want)
	}
}

// TestRequest: the AS-REQ carries one PA-PK-AS-REQ whose SignedData holds
// an AuthPack with the body's nonce and both checksums of the body.
func TestRequest(t *testing.T) {
	key := testKeys(t)["rsa"]
	cert := selfSigned(t, key, nil)
	r, err := NewRequest(Params{Realm: "EXAMPLE.COM", Username: "alice", Certificate: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	var req messages.ASReq
	if err := req.Unmarshal(r.Marshal()); err != nil {
		t.Fatal(err)
	}
	if req.ReqBody.Nonce != int(r.nonce) || len(req.PAData) != 1 || req.PAData[0].PADataType != 16 {
		t.Fatalf("AS-REQ: nonce %d padata %+v", req.ReqBody.Nonce, req.PAData)
	}
	in := cryptobyte.String(req.PAData[0].PADataValue)
	var seq, signed cryptobyte.String
	if !in.ReadASN1(&seq, casn1.SEQUENCE) || !seq.ReadASN1(&signed, casn1.Tag(0).ContextSpecific()) {
		t.Fatal("PA-PK-AS-REQ does not parse")
	}
	sd, err := parseSignedData(signed)
	if err != nil || !sd.contentType.Equal(oidPKINITAuthData) {
		t.Fatalf("signedAuthPack: %v", err)
	}
	if _, _, err := sd.verify(); err != nil {
		t.Fatal(err)
	}
	body, _ := req.ReqBody.Marshal()
	sum := sha1.Sum(body)
	if !bytes.Contains(sd.content, sum[:]) {
		t.Fatal("the AuthPack has no SHA-1 of the request body")
	}
	if _, err := NewRequest(Params{Realm: "EXAMPLE.COM", Username: "alice"}); err == nil {
		t.Fatal("a request without a certificate")
	}
}

// TestReadReplyErrors: a KRB-ERROR becomes a KDCError with its name.
func TestReadReplyErrors(t *testing.T) {
	key := testKeys(t)["ecdsa"]
	cert := selfSigned(t, key, nil)
	r, err := NewRequest(Params{Realm: "EXAMPLE.COM", Username: "alice", Certificate: cert, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	ke := messages.NewKRBError(types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "EXAMPLE.COM"}}, "EXAMPLE.COM", CodeRevokedCertificate, "revoked")
	b, err := ke.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadReply(b)
	var got *KDCError
	if !errors.As(err, &got) || got.Code != 72 || ErrorName(got.Code) != "KDC_ERR_REVOKED_CERTIFICATE" {
		t.Fatalf("KRB-ERROR: %v", err)
	}
	for _, bad := range [][]byte{nil, {0x6b, 0}, {0x7e, 1, 0}, {0x30}} {
		if _, err := r.ReadReply(bad); err == nil {
			t.Fatalf("reply %x accepted", bad)
		}
	}
}

// TestPAPKASRep: dhInfo with and without serverDHNonce; encKeyPack and
// a KDF choice are refused.
func TestPAPKASRep(t *testing.T) {
	for _, nonce := range [][]byte{nil, bytes.Repeat([]byte{7}, 32)} {
		der := buildPAPKASRep([]byte{0x30, 0}, nonce)
		sd, n, err := parsePAPKASRep(der)
		if err != nil || !bytes.Equal(sd, []byte{0x30, 0}) || !bytes.Equal(n, nonce) {
			t.Fatalf("nonce %x: %x %x %v", nonce, sd, n, err)
		}
	}
	if _, _, err := parsePAPKASRep([]byte{0x81, 1, 0}); err == nil {
		t.Fatal("encKeyPack accepted")
	}
	if _, _, err := parsePAPKASRep(buildPAPKASRep([]byte{0x30, 0}, bytes.Repeat([]byte{7}, 65))); err == nil {
		t.Fatal("a 65-byte serverDHNonce accepted")
	}
}

func buildPAPKASRep(signed, nonce []byte) []byte {
	var b cryptobyte.Builder
	explicit(&b, 0, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.Tag(0).ContextSpecific(), func(b *cryptobyte.Builder) { b.AddBytes(signed) })
			if nonce != nil {
				explicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1OctetString(nonce) })
			}
		})
	})
	out, _ := b.Bytes()
	return out
}

func buildKDCDHKeyInfo(y *big.Int, nonce int64) []byte {
	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		explicit(b, 0, func(b *cryptobyte.Builder) {
			var yb cryptobyte.Builder
			yb.AddASN1BigInt(y)
			v, _ := yb.Bytes()
			b.AddASN1BitString(v)
		})
		explicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1Int64(nonce) })
	})
	out, _ := b.Bytes()
	return out
}

func TestKDCDHKeyInfo(t *testing.T) {
	y := big.NewInt(12345)
	got, n, err := parseKDCDHKeyInfo(buildKDCDHKeyInfo(y, 99))
	if err != nil || got.Cmp(y) != 0 || n != 99 {
		t.Fatalf("%v %d %v", got, n, err)
	}
	if _, _, err := parseKDCDHKeyInfo(buildKDCDHKeyInfo(new(big.Int).Lsh(one, 2048), 1)); err == nil {
		t.Fatal("a public value longer than p accepted")
	}
}

// TestCCache: the TGT written as a credentials cache is what gokrb5 reads.
func TestCCache(t *testing.T) {
	var rep messages.ASRep
	rep.CRealm = "EXAMPLE.COM"
	rep.CName = types.PrincipalName{NameType: 1, NameString: []string{"alice"}}
	rep.Ticket = messages.Ticket{TktVNO: 5, Realm: "EXAMPLE.COM", SName: types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", "EXAMPLE.COM"}},
		EncPart: types.EncryptedData{EType: 18, Cipher: []byte("opaque")}}
	e := &rep.DecryptedEncPart
	e.Key = types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{9}, 32)}
	e.SRealm, e.SName = "EXAMPLE.COM", rep.Ticket.SName
	now := time.Now().Truncate(time.Second)
	e.AuthTime, e.StartTime, e.EndTime, e.RenewTill = now, now, now.Add(time.Hour), now.Add(2*time.Hour)
	e.Flags = types.NewKrbFlags()
	cc, err := (&TGT{Reply: rep}).CCache()
	if err != nil {
		t.Fatal(err)
	}
	if cc.GetClientPrincipalName().PrincipalNameString() != "alice" || cc.GetClientRealm() != "EXAMPLE.COM" {
		t.Fatalf("default principal %v", cc.GetClientPrincipalName())
	}
	cred, ok := cc.GetEntry(rep.Ticket.SName)
	if !ok || !bytes.Equal(cred.Key.KeyValue, e.Key.KeyValue) || !cred.EndTime.Equal(e.EndTime) {
		t.Fatalf("entry %+v", cred)
	}
	var tkt messages.Ticket
	if err := tkt.Unmarshal(cred.Ticket); err != nil || string(tkt.EncPart.Cipher) != "opaque" {
		t.Fatalf("ticket: %v", err)
	}
}
