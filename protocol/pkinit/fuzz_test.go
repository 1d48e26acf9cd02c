package pkinit

import (
	"bytes"
	"crypto/rand"
	"math/big"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// The readers of what a KDC sends, fed anything: no panic, and what one
// accepts holds together.

func FuzzParseSignedData(f *testing.F) {
	key := testKeys(f)["ecdsa"]
	cert := selfSigned(f, key, nil)
	seed, err := signData(oidPKINITDHKeyData, buildKDCDHKeyInfo(big.NewInt(5), 1), cert, nil, key, rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte{0x30, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, err := parseSignedData(b)
		if err != nil {
			return
		}
		if len(sd.signers) == 0 || len(sd.signers) > maxSigners || len(sd.certs) > maxCerts {
			t.Fatalf("accepted %d signers, %d certificates", len(sd.signers), len(sd.certs))
		}
		sd.verify() // must not panic
		for _, si := range sd.signers {
			if si.signedAttrs != nil {
				signedAttributes(si.signedAttrs)
			}
		}
	})
}

func FuzzParsePAPKASRep(f *testing.F) {
	f.Add(buildPAPKASRep([]byte{0x30, 0}, nil))
	f.Add(buildPAPKASRep([]byte{0x30, 0}, []byte{1, 2, 3}))
	f.Add([]byte{0x81, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		sd, nonce, err := parsePAPKASRep(b)
		if err == nil && (len(nonce) > maxDHNonce || len(sd) > len(b)) {
			t.Fatalf("accepted a %d-byte nonce", len(nonce))
		}
	})
}

func FuzzParseKDCDHKeyInfo(f *testing.F) {
	f.Add(buildKDCDHKeyInfo(big.NewInt(12345), 7))
	f.Add(buildKDCDHKeyInfo(new(big.Int).Sub(group14P, one), -1))
	f.Fuzz(func(t *testing.T, b []byte) {
		y, _, err := parseKDCDHKeyInfo(b)
		if err == nil && (y.Sign() <= 0 || y.BitLen() > 2048) {
			t.Fatalf("accepted public value %v", y)
		}
	})
}

func FuzzSANPrincipals(f *testing.F) {
	on, _ := PrincipalOtherName(Principal{NameType: 1, Components: []string{"alice"}, Realm: "EXAMPLE.COM"})
	tgs, _ := PrincipalOtherName(TGS("EXAMPLE.COM"))
	f.Add(sanOf(f, on, []byte{0x82, 1, 'a'}, tgs))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range sanPrincipals(b) {
			if len(p.Components) == 0 || len(p.Components) > maxComponents {
				t.Fatalf("accepted %d components", len(p.Components))
			}
		}
	})
}

func FuzzReadReply(f *testing.F) {
	key := testKeys(f)["ecdsa"]
	cert := selfSigned(f, key, nil)
	r, err := NewRequest(Params{Realm: "EXAMPLE.COM", Username: "alice", Certificate: cert, Key: key})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x7e, 0x03, 0x30, 0x01, 0x00})
	f.Add([]byte{0x6b, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if tgt, err := r.ReadReply(b); err == nil {
			t.Fatalf("accepted a reply not signed by a trusted KDC: %+v", tgt)
		}
	})
}

// The writers, fed anything: what they write reads back the same.

func FuzzPrincipalOtherName(f *testing.F) {
	f.Add("alice", "", "EXAMPLE.COM", int32(1))
	f.Add("krbtgt", "EXAMPLE.COM", "EXAMPLE.COM", int32(2))
	f.Fuzz(func(t *testing.T, c1, c2, realm string, nt int32) {
		p := Principal{NameType: nt, Components: []string{c1}, Realm: realm}
		if c2 != "" {
			p.Components = append(p.Components, c2)
		}
		on, err := PrincipalOtherName(p)
		if err != nil {
			return // too long for DER lengths cryptobyte writes
		}
		got := sanPrincipals(sanOf(t, on))
		if len(got) != 1 || !got[0].Equal(p) || got[0].NameType != nt {
			t.Fatalf("wrote %+v, read %+v", p, got)
		}
	})
}

func FuzzMarshalCCache(f *testing.F) {
	f.Add("alice", "EXAMPLE.COM", []byte("key-bytes-0123456789abcdef012345"), []byte("cipher"), int64(1700000000))
	f.Fuzz(func(t *testing.T, user, realm string, key, cipher []byte, end int64) {
		if user == "" || len(user) > 256 || len(realm) > 256 || len(key) > 64 || len(cipher) > 4096 || end < 0 || end > 1<<31-1 { // gokrb5 reads times as signed 32-bit
			return
		}
		var rep messages.ASRep
		rep.CRealm, rep.CName = realm, types.PrincipalName{NameType: 1, NameString: []string{user}}
		rep.Ticket = messages.Ticket{TktVNO: 5, Realm: realm, SName: types.PrincipalName{NameType: 2, NameString: []string{"krbtgt", realm}},
			EncPart: types.EncryptedData{EType: 18, Cipher: cipher}}
		e := &rep.DecryptedEncPart
		e.Key = types.EncryptionKey{KeyType: 18, KeyValue: key}
		e.SRealm, e.SName = realm, rep.Ticket.SName
		e.EndTime = time.Unix(end, 0)
		e.Flags = types.NewKrbFlags()
		cc, err := (&TGT{Reply: rep}).CCache()
		if err != nil {
			t.Fatal(err)
		}
		cred, ok := cc.GetEntry(rep.Ticket.SName)
		if !ok || cc.GetClientRealm() != realm || cc.GetClientPrincipalName().NameString[0] != user ||
			!bytes.Equal(cred.Key.KeyValue, key) || cred.EndTime.Unix() != end {
			t.Fatalf("read back %+v", cred)
		}
	})
}
