package pkinit

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/patype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Params are what one PKINIT AS exchange needs.
type Params struct {
	Realm    string
	Username string // the client principal's name within Realm; "/" separates components

	Certificate *x509.Certificate   // the client's certificate
	Chain       []*x509.Certificate // its intermediates, if any
	Key         crypto.Signer       // its key: RSA or ECDSA

	KDCRoots    *x509.CertPool // the CAs that sign KDC certificates
	KDCHostname string         // a KDC certificate's DNS name accepted with the KDC EKU; empty: only krbtgt/REALM

	Lifetime time.Duration // the ticket lifetime asked for; 0: 10 hours
	EncTypes []int32       // 0: aes256-cts-hmac-sha1-96, aes128-cts-hmac-sha1-96, aes256-sha384, aes128-sha256
	Now      time.Time     // zero: time.Now
	Rand     io.Reader     // nil: crypto/rand
}

// Request is one AS-REQ with PA-PK-AS-REQ and what reading its reply needs.
type Request struct {
	p     Params
	nonce int32
	dh    *dhKey
	msg   []byte
}

// NewRequest builds the AS-REQ for a TGT of p.Username@p.Realm.
func NewRequest(p Params) (*Request, error) {
	switch {
	case p.Realm == "" || p.Username == "":
		return nil, errors.New("pkinit: a request needs a realm and a user name")
	case p.Certificate == nil || p.Key == nil:
		return nil, errors.New("pkinit: a request needs the client's certificate and key")
	}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	if p.Rand == nil {
		p.Rand = rand.Reader
	}
	if p.Lifetime == 0 {
		p.Lifetime = 10 * time.Hour
	}
	if len(p.EncTypes) == 0 {
		p.EncTypes = []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96,
			etypeID.AES256_CTS_HMAC_SHA384_192, etypeID.AES128_CTS_HMAC_SHA256_128}
	}
	// MIT decodes the PKAuthenticator's nonce as a signed 32-bit integer.
	n, err := randInt(p.Rand, big.NewInt(1<<31-1))
	if err != nil {
		return nil, fmt.Errorf("pkinit: nonce: %w", err)
	}
	r := &Request{p: p, nonce: int32(n.Int64())}
	if r.dh, err = newDHKey(p.Rand); err != nil {
		return nil, err
	}
	req := messages.ASReq{KDCReqFields: messages.KDCReqFields{
		PVNO: 5, MsgType: msgtype.KRB_AS_REQ,
		ReqBody: messages.KDCReqBody{
			KDCOptions: types.NewKrbFlags(),
			Realm:      p.Realm,
			CName:      types.PrincipalName{NameType: NameTypePrincipal, NameString: strings.Split(p.Username, "/")},
			SName:      types.PrincipalName{NameType: NameTypeSrvInst, NameString: []string{"krbtgt", p.Realm}},
			Till:       p.Now.Add(p.Lifetime).UTC().Truncate(time.Second),
			Nonce:      int(r.nonce),
			EType:      p.EncTypes,
		},
	}}
	body, err := req.ReqBody.Marshal()
	if err != nil {
		return nil, fmt.Errorf("pkinit: KDC-REQ-BODY: %w", err)
	}
	pack, err := authPack(p.Now, r.nonce, body, r.dh)
	if err != nil {
		return nil, fmt.Errorf("pkinit: AuthPack: %w", err)
	}
	signed, err := signData(oidPKINITAuthData, pack, p.Certificate, p.Chain, p.Key, p.Rand)
	if err != nil {
		return nil, err
	}
	pa, err := paPKASReq(signed)
	if err != nil {
		return nil, fmt.Errorf("pkinit: PA-PK-AS-REQ: %w", err)
	}
	req.PAData = types.PADataSequence{{PADataType: patype.PA_PK_AS_REQ, PADataValue: pa}}
	if r.msg, err = req.Marshal(); err != nil {
		return nil, fmt.Errorf("pkinit: AS-REQ: %w", err)
	}
	return r, nil
}

// Marshal is the AS-REQ to send to the KDC.
func (r *Request) Marshal() []byte { return r.msg }

// TGT is a verified AS-REP: the ticket and, decrypted, its session key and times.
type TGT struct {
	Reply messages.ASRep
}

// EndTime is when the ticket expires.
func (t *TGT) EndTime() time.Time { return t.Reply.DecryptedEncPart.EndTime }

// ReadReply reads the KDC's answer: a KRB-ERROR becomes a *KDCError, an
// AS-REP is verified (signature, KDC certificate, nonces) and decrypted.
func (r *Request) ReadReply(b []byte) (*TGT, error) {
	if len(b) == 0 {
		return nil, malformed("empty reply")
	}
	if b[0] == 0x7e { // [APPLICATION 30] KRB-ERROR
		var ke messages.KRBError
		if err := ke.Unmarshal(b); err != nil {
			return nil, malformed("KRB-ERROR")
		}
		return nil, &KDCError{Code: ke.ErrorCode, Text: ke.EText, Realm: r.p.Realm}
	}
	var rep messages.ASRep
	if err := rep.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("%w: AS-REP: %v", errMalformed, err)
	}
	var paRep []byte
	for _, pa := range rep.PAData {
		if pa.PADataType == patype.PA_PK_AS_REP {
			paRep = pa.PADataValue
		}
	}
	if paRep == nil {
		return nil, errors.New("pkinit: the KDC's AS-REP has no PA-PK-AS-REP: it did not use the certificate")
	}
	signed, serverNonce, err := parsePAPKASRep(paRep)
	if err != nil {
		return nil, err
	}
	sd, err := parseSignedData(signed)
	if err != nil {
		return nil, err
	}
	if !sd.contentType.Equal(oidPKINITDHKeyData) {
		return nil, fmt.Errorf("pkinit: the KDC signed content of type %v, not id-pkinit-DHKeyData", sd.contentType)
	}
	signer, certs, err := sd.verify()
	if err != nil {
		return nil, err
	}
	if err := checkKDCCertificate(signer, certs, r.p.KDCRoots, r.p.Realm, r.p.KDCHostname, r.p.Now); err != nil {
		return nil, err
	}
	kdcY, nonce, err := parseKDCDHKeyInfo(sd.content)
	if err != nil {
		return nil, err
	}
	if nonce != int64(r.nonce) {
		return nil, ErrNonce
	}
	z, err := r.dh.sharedSecret(kdcY)
	if err != nil {
		return nil, err
	}
	et, err := krbcrypto.GetEtype(rep.EncPart.EType)
	if err != nil {
		return nil, fmt.Errorf("pkinit: the KDC's reply is encrypted with enctype %d, which pamd does not know", rep.EncPart.EType)
	}
	seed := octetString2Key(append(z, serverNonce...), et.GetKeySeedBitLength()/8)
	key := types.EncryptionKey{KeyType: rep.EncPart.EType, KeyValue: et.RandomToKey(seed)}
	plain, err := krbcrypto.DecryptEncPart(rep.EncPart, key, keyusage.AS_REP_ENCPART)
	if err != nil {
		return nil, fmt.Errorf("pkinit: the KDC's reply does not decrypt with the Diffie-Hellman key: %v", err)
	}
	if err := rep.DecryptedEncPart.Unmarshal(plain); err != nil {
		return nil, fmt.Errorf("%w: EncASRepPart: %v", errMalformed, err)
	}
	if rep.DecryptedEncPart.Nonce != int(r.nonce) {
		return nil, ErrNonce
	}
	if rep.CRealm != r.p.Realm || strings.Join(rep.CName.NameString, "/") != r.p.Username {
		return nil, fmt.Errorf("pkinit: the KDC issued a ticket for %s@%s, not %s@%s",
			strings.Join(rep.CName.NameString, "/"), rep.CRealm, r.p.Username, r.p.Realm)
	}
	return &TGT{Reply: rep}, nil
}
