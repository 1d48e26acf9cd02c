package tds

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// PRELOGIN option tokens (MS-TDS 2.2.6.5).
const (
	PreloginVersion    = 0x00
	PreloginEncryption = 0x01
	PreloginInstOpt    = 0x02
	PreloginThreadID   = 0x03
	PreloginMARS       = 0x04
	PreloginTraceID    = 0x05
	PreloginFedAuth    = 0x06
	PreloginNonce      = 0x07
	preloginTerminator = 0xFF
)

// Encryption values of the ENCRYPTION option.
const (
	EncryptOff    = 0x00 // encrypt the login only
	EncryptOn     = 0x01
	EncryptNotSup = 0x02
	EncryptReq    = 0x03
)

// Prelogin is the option set of a PRELOGIN message, keyed by token.
type Prelogin map[byte][]byte

// ParsePrelogin decodes a PRELOGIN payload.
func ParsePrelogin(b []byte) (Prelogin, error) {
	out := Prelogin{}
	for i := 0; ; i += 5 {
		if i >= len(b) {
			return nil, fmt.Errorf("%w: PRELOGIN without a terminator", ErrMalformed)
		}
		token := b[i]
		if token == preloginTerminator {
			return out, nil
		}
		if i+5 > len(b) {
			return nil, fmt.Errorf("%w: PRELOGIN option header cut off", ErrMalformed)
		}
		off, n := int(binary.BigEndian.Uint16(b[i+1:])), int(binary.BigEndian.Uint16(b[i+3:]))
		if off+n > len(b) {
			return nil, fmt.Errorf("%w: PRELOGIN option %#x outside the message", ErrMalformed, token)
		}
		if _, dup := out[token]; dup {
			return nil, fmt.Errorf("%w: PRELOGIN option %#x twice", ErrMalformed, token)
		}
		out[token] = b[off : off+n]
	}
}

// Append encodes the options (in token order) onto b.
func (p Prelogin) Append(b []byte) []byte {
	tokens := make([]int, 0, len(p))
	for t := range p {
		tokens = append(tokens, int(t))
	}
	sort.Ints(tokens)
	off := len(tokens)*5 + 1
	for _, t := range tokens {
		b = append(b, byte(t))
		b = binary.BigEndian.AppendUint16(b, uint16(off))
		b = binary.BigEndian.AppendUint16(b, uint16(len(p[byte(t)])))
		off += len(p[byte(t)])
	}
	b = append(b, preloginTerminator)
	for _, t := range tokens {
		b = append(b, p[byte(t)]...)
	}
	return b
}

// Encryption returns the ENCRYPTION option, or EncryptNotSup when absent.
func (p Prelogin) Encryption() byte {
	if v := p[PreloginEncryption]; len(v) == 1 {
		return v[0]
	}
	return EncryptNotSup
}
