package mssqlproxy

import (
	"errors"
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Mutual authentication (RFC 4120 3.2.5, 3.2.6; RFC 4121 4.1): the
// gateway's AP-REQ sets the mutual-required AP option and the GSS
// checksum's GSS_C_MUTUAL_FLAG, as Windows SSPI clients do, and SQL
// Server answers with an SSPI token before LOGINACK: a SPNEGO NegTokenResp
// (accept-completed, krb5) whose responseToken is the krb5 GSS token
// (TOK_ID 02 00) holding an AP-REP. Its enc-part, under the service
// ticket's session key (key usage 12), repeats the authenticator's ctime
// and cusec; only a server holding the service's key could have read
// them. A LOGINACK without that proof is refused.

// gssFlags are the context flags the authenticator's checksum (type
// 0x8003) asks for.
var gssFlags = []int{gssapi.ContextFlagMutual, gssapi.ContextFlagInteg, gssapi.ContextFlagConf}

// apExchange is an AP-REQ the gateway sent, and what the AP-REP must show.
// It holds the session key: it lives for one login and is never printed.
type apExchange struct {
	key    types.EncryptionKey // the service ticket's session key
	ctime  time.Time           // the authenticator's, as sent (whole seconds)
	cusec  int
	server string // for messages: the target and its SPN
	spn    string
	done   bool // the AP-REP was read and verified
}

// negTokenInitMutual is gokrb5's spnego.NewNegTokenInitKRB5 with the
// mutual-required AP option and GSS flag, and the authenticator's time
// kept for the AP-REP (read back from the AP-REQ as it was encrypted).
func negTokenInitMutual(cl *client.Client, tkt messages.Ticket, key types.EncryptionKey) (spnego.NegTokenInit, *apExchange, error) {
	mt, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, gssFlags, []int{flags.APOptionMutualRequired})
	if err != nil {
		return spnego.NegTokenInit{}, nil, err
	}
	if err := mt.APReq.DecryptAuthenticator(key); err != nil {
		return spnego.NegTokenInit{}, nil, err
	}
	b, err := mt.Marshal()
	if err != nil {
		return spnego.NegTokenInit{}, nil, err
	}
	ap := &apExchange{key: key, ctime: mt.APReq.Authenticator.CTime, cusec: mt.APReq.Authenticator.Cusec}
	init := spnego.NegTokenInit{MechTokenBytes: b}
	init.MechTypes = append(init.MechTypes, gssapi.OIDKRB5.OID()) // as NewNegTokenInitKRB5 lists it
	return init, ap, nil
}

// readAPRep reads the server's SSPI token as SQL Server sends it after a
// Kerberos AP-REQ: a NegTokenResp, accept-completed, with the krb5 GSS
// token holding the AP-REP. A KRB-ERROR in its place is reported as one.
func readAPRep(b []byte) (*messages.APRep, error) {
	var resp spnego.NegTokenResp
	if err := resp.Unmarshal(b); err != nil {
		return nil, errors.New("it is not a SPNEGO NegTokenResp")
	}
	if st := resp.State(); st != spnego.NegStateAcceptCompleted {
		if st == spnego.NegStateReject {
			return nil, errors.New("its SPNEGO state is reject")
		}
		return nil, fmt.Errorf("its SPNEGO state is %d, not accept-completed (pamd offers one round of Kerberos)", st)
	}
	if len(resp.SupportedMech) > 0 && !resp.SupportedMech.Equal(gssapi.OIDKRB5.OID()) && !resp.SupportedMech.Equal(gssapi.OIDMSLegacyKRB5.OID()) {
		return nil, fmt.Errorf("it chose mechanism %s, not Kerberos 5", resp.SupportedMech)
	}
	if len(resp.ResponseToken) == 0 {
		return nil, errors.New("it holds no AP-REP (no SPNEGO responseToken)")
	}
	var krb spnego.KRB5Token
	if err := krb.Unmarshal(resp.ResponseToken); err != nil {
		return nil, errors.New("its responseToken is not a Kerberos 5 GSS token with an AP-REP")
	}
	switch {
	case krb.IsKRBError():
		return nil, fmt.Errorf("it holds a KRB-ERROR, not an AP-REP: %s", errorcode.Lookup(krb.KRBError.ErrorCode))
	case !krb.IsAPRep():
		return nil, errors.New("its Kerberos 5 GSS token is not an AP-REP (TOK_ID 02 00)")
	}
	return &krb.APRep, nil
}

// verify checks the server's SSPI token against the AP-REQ sent.
func (ap *apExchange) verify(token []byte) error {
	rep, err := readAPRep(token)
	if err != nil {
		return fmt.Errorf("Kerberos: the server's SSPI reply does not prove mutual authentication: %v; %s", err, ap.refusing())
	}
	if rep.EncPart.EType != ap.key.KeyType {
		return fmt.Errorf("Kerberos: the server's AP-REP is encrypted with etype %d, not that of the ticket's session key (%d): it is not from the holder of %s's key; %s",
			rep.EncPart.EType, ap.key.KeyType, ap.spn, ap.refusing())
	}
	plain, err := decryptAPRep(rep.EncPart, ap.key)
	if err != nil {
		return fmt.Errorf("Kerberos: the server's AP-REP does not decrypt with the ticket's session key: it is not from the holder of %s's key; %s", ap.spn, ap.refusing())
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		return fmt.Errorf("Kerberos: the server's AP-REP decrypts to no EncAPRepPart; %s", ap.refusing())
	}
	if !part.CTime.Equal(ap.ctime) || part.Cusec != ap.cusec {
		return fmt.Errorf("Kerberos: the server's AP-REP answers another authenticator (time %s, pamd sent %s): replayed or forged, not an answer to this login; %s",
			krbTime(part.CTime, part.Cusec), krbTime(ap.ctime, ap.cusec), ap.refusing())
	}
	ap.done = true
	return nil
}

// krbTime writes a KerberosTime and its microseconds.
func krbTime(t time.Time, usec int) string {
	return fmt.Sprintf("%s.%06dZ", t.UTC().Format("2006-01-02T15:04:05"), usec)
}

// decryptAPRep decrypts an AP-REP's enc-part (key usage 12). gokrb5's
// decryption slices the ciphertext without checking its length, so a
// short one is refused first; a panic in it is an error, not the end of
// the gateway.
func decryptAPRep(enc types.EncryptedData, key types.EncryptionKey) (plain []byte, err error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	if len(enc.Cipher) < et.GetConfounderByteSize()+et.GetHMACBitLength()/8 {
		return nil, errors.New("ciphertext too short")
	}
	defer func() {
		if recover() != nil {
			plain, err = nil, errors.New("ciphertext does not decrypt")
		}
	}()
	return crypto.DecryptEncPart(enc, key, keyusage.AP_REP_ENCPART)
}

// missing is the refusal of a LOGINACK that came without an AP-REP.
func (ap *apExchange) missing() error {
	return fmt.Errorf("Kerberos: %s accepted the login without an AP-REP (no SSPI token before LOGINACK), so it did not prove it is %s; %s",
		ap.server, ap.spn, ap.refusing())
}

func (ap *apExchange) refusing() string {
	return "pamd requires mutual authentication and refuses the login"
}
