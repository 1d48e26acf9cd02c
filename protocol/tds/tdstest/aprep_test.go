package tdstest_test

import (
	"bytes"
	"crypto/rand"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/pamd/pamd/protocol/tds/tdstest"
)

// FuzzAPRepEncoding: what the stand-in's encoder writes, gokrb5's readers
// read back field for field (RFC 4120 5.5.2 tags), and the whole mutual
// reply unwraps as a NegTokenResp with a krb5 AP-REP that decrypts.
func FuzzAPRepEncoding(f *testing.F) {
	f.Add(int64(1_800_000_000), 123456, uint32(42), []byte(nil), []byte{1, 2, 3})
	f.Add(int64(0), 0, uint32(0), bytes.Repeat([]byte{7}, 32), []byte{})
	f.Add(int64(253402300799), 999999, uint32(0xFFFFFFFF), []byte{1}, bytes.Repeat([]byte{9}, 300))
	f.Fuzz(func(t *testing.T, sec int64, cusec int, seq uint32, subkey, cipher []byte) {
		if sec < 0 || sec > 253402300799 { // KerberosTime is four-digit years
			return
		}
		ctime := time.Unix(sec, 0).UTC()
		part, err := tdstest.MarshalEncAPRepPart(ctime, cusec, types.EncryptionKey{KeyType: 18, KeyValue: subkey}, seq)
		if cusec < 0 || cusec > 999999 {
			if err == nil {
				t.Fatalf("cusec %d accepted", cusec)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		var p messages.EncAPRepPart
		if err := p.Unmarshal(part); err != nil {
			t.Fatalf("gokrb5 does not read the EncAPRepPart: %v", err)
		}
		if !p.CTime.Equal(ctime) || p.Cusec != cusec || p.SequenceNumber != int64(seq) ||
			!bytes.Equal(p.Subkey.KeyValue, subkey) || (len(subkey) > 0 && p.Subkey.KeyType != 18) {
			t.Fatalf("EncAPRepPart read back as %+v", p)
		}
		rep, err := tdstest.MarshalAPRep(types.EncryptedData{EType: 18, KVNO: 3, Cipher: cipher})
		if err != nil {
			t.Fatal(err)
		}
		var r messages.APRep
		if err := r.Unmarshal(rep); err != nil {
			t.Fatalf("gokrb5 does not read the AP-REP: %v", err)
		}
		if r.PVNO != 5 || r.EncPart.EType != 18 || r.EncPart.KVNO != 3 || !bytes.Equal(r.EncPart.Cipher, cipher) {
			t.Fatalf("AP-REP read back as %+v", r)
		}
	})
}

// TestMutualReply: the stand-in's SSPI answer is a NegTokenResp,
// accept-completed, krb5, whose responseToken is the krb5 GSS AP-REP
// token; its enc-part decrypts with the session key at key usage 12 to the
// authenticator's time; the test modes bend exactly that.
func TestMutualReply(t *testing.T) {
	key := types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: make([]byte, 32)}
	rand.Read(key.KeyValue)
	ctime := time.Now().UTC().Truncate(time.Second)
	read := func(mode tdstest.APRepMode) (messages.EncAPRepPart, error) {
		b, err := tdstest.MutualReply(key, ctime, 4242, true, mode)
		if err != nil {
			t.Fatal(err)
		}
		var resp spnego.NegTokenResp
		if err := resp.Unmarshal(b); err != nil {
			return messages.EncAPRepPart{}, err
		}
		if resp.State() != spnego.NegStateAcceptCompleted || resp.SupportedMech.String() != "1.2.840.113554.1.2.2" {
			t.Fatalf("NegTokenResp %+v", resp)
		}
		if !bytes.HasPrefix(resp.ResponseToken[2:], []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x02, 0x00}) {
			t.Fatalf("responseToken %x is not a krb5 GSS AP-REP token", resp.ResponseToken)
		}
		var krb spnego.KRB5Token
		if err := krb.Unmarshal(resp.ResponseToken); err != nil || !krb.IsAPRep() {
			t.Fatalf("responseToken: %v", err)
		}
		plain, err := crypto.DecryptEncPart(krb.APRep.EncPart, key, keyusage.AP_REP_ENCPART)
		if err != nil {
			return messages.EncAPRepPart{}, err
		}
		var p messages.EncAPRepPart
		return p, p.Unmarshal(plain)
	}
	p, err := read(tdstest.APRepValid)
	if err != nil || !p.CTime.Equal(ctime) || p.Cusec != 4242 || p.SequenceNumber == 0 {
		t.Fatalf("valid AP-REP: %+v %v", p, err)
	}
	if p, err := read(tdstest.APRepWrongTime); err != nil || p.CTime.Equal(ctime) || p.Cusec != 4242 {
		t.Fatalf("wrong-time AP-REP: %+v %v", p, err)
	}
	if _, err := read(tdstest.APRepWrongKey); err == nil {
		t.Fatal("the wrong-key AP-REP decrypts with the session key")
	}
	if b, _ := tdstest.MutualReply(key, ctime, 1, true, tdstest.APRepGarbled); (&spnego.NegTokenResp{}).Unmarshal(b) == nil {
		t.Fatal("the garbled reply reads as a NegTokenResp")
	}
	raw, _ := tdstest.MutualReply(key, ctime, 1, false, tdstest.APRepValid)
	var krb spnego.KRB5Token
	if err := krb.Unmarshal(raw); err != nil || !krb.IsAPRep() {
		t.Fatalf("the raw krb5 answer: %v", err)
	}
}
