package ntlm

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf16"

	"golang.org/x/crypto/md4"
)

var signature = []byte("NTLMSSP\x00")

// Message types.
const (
	TypeNegotiate    = 1
	TypeChallenge    = 2
	TypeAuthenticate = 3
)

// Negotiate flags the challenge sets (2.2.2.5).
const (
	FlagUnicode          = 0x00000001
	FlagRequestTarget    = 0x00000004
	FlagNTLM             = 0x00000200
	FlagAlwaysSign       = 0x00008000
	FlagTargetTypeDomain = 0x00010000
	FlagExtendedSession  = 0x00080000
	FlagTargetInfo       = 0x00800000
	FlagVersion          = 0x02000000
	Flag128              = 0x20000000
	Flag56               = 0x80000000
)

// AV pair ids (2.2.2.1).
const (
	avEOL          = 0
	avNbComputer   = 1
	avNbDomain     = 2
	avDNSComputer  = 3
	avDNSDomain    = 4
	avTimestamp    = 7
	maxMessage     = 64 << 10
	authHeaderSize = 64
)

// ErrMalformed means a message does not parse.
var ErrMalformed = errors.New("ntlm: malformed message")

// MessageType returns the type of an NTLM message, or 0 if b is not one.
func MessageType(b []byte) int {
	if len(b) < 12 || !bytes.Equal(b[:8], signature) {
		return 0
	}
	return int(binary.LittleEndian.Uint32(b[8:]))
}

// Challenge builds a CHALLENGE_MESSAGE for the server challenge, naming
// the domain and computer.
func Challenge(serverChallenge [8]byte, domain, computer string, now time.Time) []byte {
	flags := uint32(FlagUnicode | FlagRequestTarget | FlagNTLM | FlagAlwaysSign | FlagTargetTypeDomain |
		FlagExtendedSession | FlagTargetInfo | FlagVersion | Flag128 | Flag56)
	target := utf16le(domain)
	var info []byte
	pair := func(id uint16, v []byte) {
		info = binary.LittleEndian.AppendUint16(info, id)
		info = binary.LittleEndian.AppendUint16(info, uint16(len(v)))
		info = append(info, v...)
	}
	pair(avNbDomain, utf16le(domain))
	pair(avNbComputer, utf16le(computer))
	pair(avDNSDomain, utf16le(strings.ToLower(domain)))
	pair(avDNSComputer, utf16le(strings.ToLower(computer)))
	pair(avTimestamp, binary.LittleEndian.AppendUint64(nil, uint64(now.UnixNano()/100+116444736000000000)))
	pair(avEOL, nil)

	const header = 56
	b := append([]byte{}, signature...)
	b = binary.LittleEndian.AppendUint32(b, TypeChallenge)
	b = appendField(b, len(target), header)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = append(b, serverChallenge[:]...)
	b = append(b, make([]byte, 8)...) // reserved
	b = appendField(b, len(info), header+len(target))
	b = append(b, 10, 0, 0x61, 0x4A, 0, 0, 0, 15) // version 10.0.19041, NTLM revision 15
	b = append(b, target...)
	return append(b, info...)
}

func appendField(b []byte, n, offset int) []byte {
	b = binary.LittleEndian.AppendUint16(b, uint16(n))
	b = binary.LittleEndian.AppendUint16(b, uint16(n))
	return binary.LittleEndian.AppendUint32(b, uint32(offset))
}

// Authenticate is what an AUTHENTICATE_MESSAGE carries.
type Authenticate struct {
	Flags       uint32
	Domain      string
	User        string
	Workstation string
	LMResponse  []byte
	NTResponse  []byte
}

// ParseAuthenticate reads an AUTHENTICATE_MESSAGE.
func ParseAuthenticate(b []byte) (*Authenticate, error) {
	if len(b) > maxMessage || len(b) < authHeaderSize || MessageType(b) != TypeAuthenticate {
		return nil, fmt.Errorf("%w: not an AUTHENTICATE message", ErrMalformed)
	}
	field := func(at int) ([]byte, error) {
		n := int(binary.LittleEndian.Uint16(b[at:]))
		off := int(binary.LittleEndian.Uint32(b[at+4:]))
		if n == 0 {
			return nil, nil
		}
		if off < authHeaderSize || off > len(b) || n > len(b)-off {
			return nil, fmt.Errorf("%w: field at %d outside the message", ErrMalformed, at)
		}
		return b[off : off+n], nil
	}
	a := &Authenticate{Flags: binary.LittleEndian.Uint32(b[60:])}
	var err error
	var dom, user, ws []byte
	if a.LMResponse, err = field(12); err != nil {
		return nil, err
	}
	if a.NTResponse, err = field(20); err != nil {
		return nil, err
	}
	if dom, err = field(28); err != nil {
		return nil, err
	}
	if user, err = field(36); err != nil {
		return nil, err
	}
	if ws, err = field(44); err != nil {
		return nil, err
	}
	text := func(v []byte) string {
		if a.Flags&FlagUnicode != 0 {
			return fromUTF16le(v)
		}
		return string(v)
	}
	a.Domain, a.User, a.Workstation = text(dom), text(user), text(ws)
	a.LMResponse = append([]byte(nil), a.LMResponse...)
	a.NTResponse = append([]byte(nil), a.NTResponse...)
	return a, nil
}

// VerifyNTLMv2 reports whether the message's NTLMv2 response proves the
// password, for the server challenge sent.
func (a *Authenticate) VerifyNTLMv2(password string, serverChallenge [8]byte) bool {
	if len(a.NTResponse) < 16+28 { // NTProofStr and the smallest client blob
		return false
	}
	h := md4.New()
	h.Write(utf16le(password))
	key := hmacMD5(h.Sum(nil), utf16le(strings.ToUpper(a.User)+a.Domain))
	proof := hmacMD5(key, append(serverChallenge[:], a.NTResponse[16:]...))
	return hmac.Equal(proof, a.NTResponse[:16])
}

func hmacMD5(key, data []byte) []byte {
	m := hmac.New(md5.New, key)
	m.Write(data)
	return m.Sum(nil)
}

func utf16le(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func fromUTF16le(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}
