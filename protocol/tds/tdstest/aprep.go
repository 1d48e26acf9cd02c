package tdstest

import (
	"crypto/rand"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// APRepMode is how the stand-in answers a Kerberos AP-REQ that requires
// mutual authentication (the AP option mutual-required). SQL Server
// answers with an AP-REP in an SSPI token before LOGINACK; the other
// modes are for tests of clients that check it. An AP-REQ without the
// option gets no AP-REP (as go-mssqldb's, which cannot read one).
type APRepMode int

const (
	// APRepValid is RFC 4120's AP-REP: the authenticator's ctime and
	// cusec, a sequence number, under the session key (key usage 12).
	APRepValid APRepMode = iota
	// APRepNone sends LOGINACK without an SSPI token.
	APRepNone
	// APRepWrongTime answers another authenticator: ctime a second off.
	APRepWrongTime
	// APRepWrongKey encrypts the EncAPRepPart with a key other than the
	// session key (of the same type), so it does not decrypt.
	APRepWrongKey
	// APRepGarbled sends an SSPI token that is not a NegTokenResp.
	APRepGarbled
)

// RFC 4120 5.5.2, 5.2.9 and 5.2.7, in encoding/asn1's terms (gokrb5 reads
// these but cannot write them):
//
//	AP-REP ::= [APPLICATION 15] SEQUENCE {
//	        pvno            [0] INTEGER (5),
//	        msg-type        [1] INTEGER (15),
//	        enc-part        [2] EncryptedData -- EncAPRepPart
//	}
//	EncAPRepPart ::= [APPLICATION 27] SEQUENCE {
//	        ctime           [0] KerberosTime,
//	        cusec           [1] Microseconds,
//	        subkey          [2] EncryptionKey OPTIONAL,
//	        seq-number      [3] UInt32 OPTIONAL
//	}
//	EncryptedData ::= SEQUENCE {
//	        etype   [0] Int32,
//	        kvno    [1] UInt32 OPTIONAL,
//	        cipher  [2] OCTET STRING
//	}
type (
	apRep struct {
		PVNO    int           `asn1:"explicit,tag:0"`
		MsgType int           `asn1:"explicit,tag:1"`
		EncPart encryptedData `asn1:"explicit,tag:2"`
	}
	encAPRepPart struct {
		CTime     time.Time     `asn1:"generalized,explicit,tag:0"`
		Cusec     int           `asn1:"explicit,tag:1"`
		Subkey    encryptionKey `asn1:"optional,explicit,tag:2"`
		SeqNumber int64         `asn1:"optional,explicit,tag:3"`
	}
	encryptedData struct {
		EType  int32  `asn1:"explicit,tag:0"`
		KVNO   int    `asn1:"optional,explicit,tag:1"`
		Cipher []byte `asn1:"explicit,tag:2"`
	}
	encryptionKey struct {
		KeyType  int32  `asn1:"explicit,tag:0"`
		KeyValue []byte `asn1:"explicit,tag:1"`
	}
)

// Application tags of RFC 4120.
const (
	tagAPRep        = 15
	tagEncAPRepPart = 27
)

// MarshalEncAPRepPart encodes an EncAPRepPart: ctime (whole seconds,
// UTC, as KerberosTime has it), cusec, the subkey when its value is set,
// and seq-number when not zero.
func MarshalEncAPRepPart(ctime time.Time, cusec int, subkey types.EncryptionKey, seq uint32) ([]byte, error) {
	if cusec < 0 || cusec > 999999 {
		return nil, errors.New("tdstest: cusec out of range")
	}
	p := encAPRepPart{CTime: ctime.UTC().Truncate(time.Second), Cusec: cusec, SeqNumber: int64(seq)}
	if len(subkey.KeyValue) > 0 {
		p.Subkey = encryptionKey{KeyType: subkey.KeyType, KeyValue: subkey.KeyValue}
	}
	return application(tagEncAPRepPart, p)
}

// MarshalAPRep encodes an AP-REP around an encrypted EncAPRepPart.
func MarshalAPRep(enc types.EncryptedData) ([]byte, error) {
	return application(tagAPRep, apRep{PVNO: 5, MsgType: 15,
		EncPart: encryptedData{EType: enc.EType, KVNO: enc.KVNO, Cipher: enc.Cipher}})
}

func application(tag int, v any) ([]byte, error) {
	seq, err := asn1.Marshal(v)
	if err != nil {
		return nil, err
	}
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassApplication, Tag: tag, IsCompound: true, Bytes: seq})
}

// krb5OID is 1.2.840.113554.1.2.2, the Kerberos 5 GSS mechanism.
var krb5OID = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}

// GSSToken wraps a Kerberos message in the krb5 GSS token of RFC 4121
// 4.1 (RFC 2743 3.1 framing): [APPLICATION 0] { OID, TOK_ID, message }.
func GSSToken(tokID [2]byte, msg []byte) ([]byte, error) {
	oid, err := asn1.Marshal(krb5OID)
	if err != nil {
		return nil, err
	}
	inner := append(append(oid, tokID[:]...), msg...)
	return asn1.Marshal(asn1.RawValue{Class: asn1.ClassApplication, Tag: 0, IsCompound: true, Bytes: inner})
}

// TokIDAPRep is the krb5 GSS token ID of an AP-REP.
var TokIDAPRep = [2]byte{0x02, 0x00}

// MutualReply is what SQL Server sends in its SSPI token after an AP-REQ
// requiring mutual authentication: the AP-REP for the authenticator's
// ctime and cusec under the session key, in the krb5 GSS token, in a
// SPNEGO NegTokenResp (accept-completed, krb5) when spnego is set, alone
// otherwise (the answer to a raw krb5 token). mode bends it for tests.
func MutualReply(key types.EncryptionKey, ctime time.Time, cusec int, spnegoWrap bool, mode APRepMode) ([]byte, error) {
	if mode == APRepGarbled {
		return []byte{0xa1, 0x03, 0x30, 0x01, 0x00}, nil
	}
	if mode == APRepWrongTime {
		ctime = ctime.Add(-time.Second)
	}
	var seq [4]byte
	rand.Read(seq[:])
	part, err := MarshalEncAPRepPart(ctime, cusec, types.EncryptionKey{}, binary.BigEndian.Uint32(seq[:])&0x3fffffff|1)
	if err != nil {
		return nil, err
	}
	if mode == APRepWrongKey {
		other := make([]byte, len(key.KeyValue))
		rand.Read(other)
		key = types.EncryptionKey{KeyType: key.KeyType, KeyValue: other}
	}
	enc, err := crypto.GetEncryptedData(part, key, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, err
	}
	rep, err := MarshalAPRep(enc)
	if err != nil {
		return nil, err
	}
	tok, err := GSSToken(TokIDAPRep, rep)
	if err != nil || !spnegoWrap {
		return tok, err
	}
	resp := spnego.NegTokenResp{SupportedMech: gssapi.OIDKRB5.OID(), ResponseToken: tok} // NegState 0: accept-completed
	return resp.Marshal()
}
