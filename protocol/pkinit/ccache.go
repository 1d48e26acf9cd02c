package pkinit

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jcmturner/gokrb5/v8/credentials"
)

// CCache is the TGT as a gokrb5 credentials cache, for client.NewFromCCache.
func (t *TGT) CCache() (*credentials.CCache, error) {
	b, err := t.MarshalCCache()
	if err != nil {
		return nil, err
	}
	c := new(credentials.CCache)
	if err := c.Unmarshal(b); err != nil {
		return nil, fmt.Errorf("pkinit: credentials cache: %w", err)
	}
	return c, nil
}

// MarshalCCache writes the TGT in the MIT credentials cache format,
// version 4 with an empty header
// (https://web.mit.edu/kerberos/krb5-latest/doc/formats/ccache_file_format.html).
func (t *TGT) MarshalCCache() ([]byte, error) {
	tkt, err := t.Reply.Ticket.Marshal()
	if err != nil {
		return nil, fmt.Errorf("pkinit: the TGT: %w", err)
	}
	enc := t.Reply.DecryptedEncPart
	client := Principal{NameType: t.Reply.CName.NameType, Components: t.Reply.CName.NameString, Realm: t.Reply.CRealm}
	server := Principal{NameType: enc.SName.NameType, Components: enc.SName.NameString, Realm: enc.SRealm}
	b := []byte{5, 4, 0, 0} // file format 0x0504, header length 0
	b = appendPrincipal(b, client)
	b = appendPrincipal(b, client)
	b = appendPrincipal(b, server)
	b = binary.BigEndian.AppendUint16(b, uint16(enc.Key.KeyType))
	b = appendData(b, enc.Key.KeyValue)
	for _, tm := range []time.Time{enc.AuthTime, enc.StartTime, enc.EndTime, enc.RenewTill} {
		b = binary.BigEndian.AppendUint32(b, uint32(max(tm.Unix(), 0)))
	}
	b = append(b, 0) // is_skey
	var flags [4]byte
	copy(flags[:], enc.Flags.Bytes)
	b = append(b, flags[:]...)
	b = binary.BigEndian.AppendUint32(b, 0) // addresses
	b = binary.BigEndian.AppendUint32(b, 0) // authdata
	b = appendData(b, tkt)
	b = appendData(b, nil) // second ticket
	return b, nil
}

func appendPrincipal(b []byte, p Principal) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(p.NameType))
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.Components)))
	b = appendData(b, []byte(p.Realm))
	for _, c := range p.Components {
		b = appendData(b, []byte(c))
	}
	return b
}

func appendData(b, d []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(d)))
	return append(b, d...)
}
