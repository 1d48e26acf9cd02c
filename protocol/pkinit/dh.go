package pkinit

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// group14P is the 2048-bit MODP prime of RFC 3526 §3; the generator is 2
// and q = (p-1)/2.
var group14P, _ = new(big.Int).SetString(
	"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"+
		"29024E088A67CC74020BBEA63B139B22514A08798E3404DD"+
		"EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"+
		"E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"+
		"EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"+
		"C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"+
		"83655D23DCA3AD961C62F356208552BB9ED529077096966D"+
		"670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"+
		"E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9"+
		"DE2BCBF6955817183995497CEA956AE515D2261898FA0510"+
		"15728E5A8AACAA68FFFFFFFFFFFFFFFF", 16)

var (
	group14G = big.NewInt(2)
	group14Q = new(big.Int).Rsh(new(big.Int).Sub(group14P, big.NewInt(1)), 1)
	one      = big.NewInt(1)
)

// dhKey is the client's ephemeral Diffie-Hellman key.
type dhKey struct {
	x, y *big.Int
}

func newDHKey(random io.Reader) (*dhKey, error) {
	// x in [2, q-1].
	x, err := randInt(random, new(big.Int).Sub(group14Q, big.NewInt(2)))
	if err != nil {
		return nil, fmt.Errorf("pkinit: Diffie-Hellman key: %w", err)
	}
	x.Add(x, big.NewInt(2))
	return &dhKey{x: x, y: new(big.Int).Exp(group14G, x, group14P)}, nil
}

func randInt(random io.Reader, max *big.Int) (*big.Int, error) {
	b := make([]byte, (max.BitLen()+7)/8+8) // 64 extra bits make the bias negligible
	if _, err := io.ReadFull(random, b); err != nil {
		return nil, err
	}
	return new(big.Int).Mod(new(big.Int).SetBytes(b), max), nil
}

// errBadPublicValue: the KDC's public value is not in the group.
var errBadPublicValue = errors.New("pkinit: the KDC's Diffie-Hellman public value is not in group 14")

// sharedSecret is y_kdc^x mod p, left-padded to the size of p (RFC 4556
// §3.2.3.1). The KDC's value must lie in (1, p-1) and in the subgroup of
// order q.
func (k *dhKey) sharedSecret(kdcY *big.Int) ([]byte, error) {
	pMinus1 := new(big.Int).Sub(group14P, one)
	if kdcY.Cmp(one) <= 0 || kdcY.Cmp(pMinus1) >= 0 {
		return nil, errBadPublicValue
	}
	if new(big.Int).Exp(kdcY, group14Q, group14P).Cmp(one) != 0 {
		return nil, errBadPublicValue
	}
	z := new(big.Int).Exp(kdcY, k.x, group14P)
	return z.FillBytes(make([]byte, (group14P.BitLen()+7)/8)), nil
}

// octetString2Key is RFC 4556 §3.2.3.1's K-truncate of SHA-1(0|x),
// SHA-1(1|x), ... to n bytes, before the enctype's random-to-key.
func octetString2Key(x []byte, n int) []byte {
	out := make([]byte, 0, n+sha1.Size)
	for counter := 0; len(out) < n; counter++ {
		h := sha1.New()
		h.Write([]byte{byte(counter)})
		h.Write(x)
		out = h.Sum(out)
	}
	return out[:n]
}

// subjectPublicKeyInfo is the client's clientPublicValue: algorithm
// dhpublicnumber with DomainParameters {p, g, q}, and y as a DER INTEGER
// inside the BIT STRING (RFC 3279 §2.3.3).
func (k *dhKey) subjectPublicKeyInfo(b *cryptobyte.Builder) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(oidDHPublicNumber)
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1BigInt(group14P)
				b.AddASN1BigInt(group14G)
				b.AddASN1BigInt(group14Q)
			})
		})
		var y cryptobyte.Builder
		y.AddASN1BigInt(k.y)
		yb, err := y.Bytes()
		if err != nil {
			b.SetError(err)
			return
		}
		b.AddASN1BitString(yb)
	})
}
