package tds

import (
	"encoding/binary"
	"fmt"
	"unicode/utf16"
)

// LOGIN7 flag bits pamd looks at.
const (
	Flags2IntegratedSecurity = 0x80 // OptionFlags2 fIntSecurity: SSPI login
	Flags3Extension          = 0x10 // OptionFlags3 fExtension: FeatureExt present
)

const (
	login7Fixed   = 94 // TDS 7.2 and later
	login7Fixed70 = 86 // TDS 7.0/7.1: no ChangePassword, no cbSSPILong
	maxLogin7     = 128<<10 - 1
)

// Login7 is a LOGIN7 message.
type Login7 struct {
	TDSVersion     uint32
	PacketSize     uint32
	ClientProgVer  uint32
	ClientPID      uint32
	ConnectionID   uint32
	OptionFlags1   byte
	OptionFlags2   byte
	TypeFlags      byte
	OptionFlags3   byte
	ClientTimeZone int32
	ClientLCID     uint32
	ClientID       [6]byte

	HostName, UserName, Password, AppName, ServerName string
	CltIntName, Language, Database, AtchDBFile        string
	ChangePassword                                    string
	SSPI                                              []byte
	// FeatureExt is the feature extension block, up to and including its
	// 0xFF terminator, when OptionFlags3 has Flags3Extension.
	FeatureExt []byte
}

// the order of the offset/length pairs in the fixed part.
type strField int

const (
	fHost strField = iota
	fUser
	fPassword
	fApp
	fServer
	fExtension
	fCltInt
	fLanguage
	fDatabase
)

// ParseLogin7 decodes a LOGIN7 payload.
func ParseLogin7(b []byte) (*Login7, error) {
	if len(b) < login7Fixed70 || len(b) > maxLogin7 {
		return nil, fmt.Errorf("%w: LOGIN7 of %d bytes", ErrLength, len(b))
	}
	le := binary.LittleEndian
	if n := int(le.Uint32(b)); n > len(b) || n < login7Fixed70 {
		return nil, fmt.Errorf("%w: LOGIN7 says %d bytes, has %d", ErrLength, n, len(b))
	} else {
		b = b[:n]
	}
	l := &Login7{
		TDSVersion: le.Uint32(b[4:]), PacketSize: le.Uint32(b[8:]), ClientProgVer: le.Uint32(b[12:]),
		ClientPID: le.Uint32(b[16:]), ConnectionID: le.Uint32(b[20:]),
		OptionFlags1: b[24], OptionFlags2: b[25], TypeFlags: b[26], OptionFlags3: b[27],
		ClientTimeZone: int32(le.Uint32(b[28:])), ClientLCID: le.Uint32(b[32:]),
	}
	fixed := int(le.Uint16(b[36:])) // ibHostName: where the variable part starts
	if fixed < login7Fixed70 || fixed > len(b) {
		return nil, fmt.Errorf("%w: LOGIN7 variable part at %d", ErrMalformed, fixed)
	}
	pair := func(i int) (int, int) { return int(le.Uint16(b[36+4*i:])), int(le.Uint16(b[38+4*i:])) }
	str := func(i int) (string, error) {
		off, cch := pair(i)
		if cch == 0 {
			return "", nil
		}
		if off < fixed || off+2*cch > len(b) {
			return "", fmt.Errorf("%w: LOGIN7 string %d outside the message", ErrMalformed, i)
		}
		return decodeUTF16(b[off : off+2*cch]), nil
	}
	var err error
	fields := []*string{fHost: &l.HostName, fUser: &l.UserName, fPassword: &l.Password, fApp: &l.AppName, fServer: &l.ServerName,
		fCltInt: &l.CltIntName, fLanguage: &l.Language, fDatabase: &l.Database}
	for i, dst := range fields {
		if dst == nil {
			continue
		}
		if *dst, err = str(i); err != nil {
			return nil, err
		}
	}
	if l.Password != "" { // undo the obfuscation, byte by byte
		off, cch := pair(int(fPassword))
		l.Password = decodeUTF16(deobfuscate(b[off : off+2*cch]))
	}
	copy(l.ClientID[:], b[72:78])
	sspiOff, sspiLen := int(le.Uint16(b[78:])), int(le.Uint16(b[80:]))
	l.AtchDBFile, err = strAt(b, fixed, int(le.Uint16(b[82:])), int(le.Uint16(b[84:])))
	if err != nil {
		return nil, err
	}
	if fixed >= login7Fixed {
		off, cch := int(le.Uint16(b[86:])), int(le.Uint16(b[88:]))
		if _, err = strAt(b, fixed, off, cch); err != nil {
			return nil, err
		}
		if cch > 0 { // obfuscated like the password
			l.ChangePassword = decodeUTF16(deobfuscate(b[off : off+2*cch]))
		}
		if sspiLen == 0xFFFF {
			sspiLen = int(le.Uint32(b[90:]))
		}
	}
	if sspiLen > 0 {
		if sspiOff < fixed || sspiOff+sspiLen > len(b) {
			return nil, fmt.Errorf("%w: LOGIN7 SSPI outside the message", ErrMalformed)
		}
		l.SSPI = append([]byte(nil), b[sspiOff:sspiOff+sspiLen]...)
	}
	if l.OptionFlags3&Flags3Extension != 0 {
		off, n := pair(int(fExtension))
		if n < 4 || off < fixed || off+4 > len(b) {
			return nil, fmt.Errorf("%w: LOGIN7 extension pointer", ErrMalformed)
		}
		feat := int(le.Uint32(b[off:]))
		if feat < fixed || feat >= len(b) {
			return nil, fmt.Errorf("%w: LOGIN7 FeatureExt at %d", ErrMalformed, feat)
		}
		end, err := featureExtEnd(b[feat:])
		if err != nil {
			return nil, err
		}
		l.FeatureExt = append([]byte(nil), b[feat:feat+end]...)
	}
	return l, nil
}

func strAt(b []byte, fixed, off, cch int) (string, error) {
	if cch == 0 {
		return "", nil
	}
	if off < fixed || off+2*cch > len(b) {
		return "", fmt.Errorf("%w: LOGIN7 string outside the message", ErrMalformed)
	}
	return decodeUTF16(b[off : off+2*cch]), nil
}

// featureExtEnd returns the length of a FeatureExt block, terminator
// included: features are (id byte, length uint32 LE, data) until 0xFF.
func featureExtEnd(b []byte) (int, error) {
	i := 0
	for i < len(b) {
		if b[i] == 0xFF {
			return i + 1, nil
		}
		if i+5 > len(b) {
			break
		}
		n := int(binary.LittleEndian.Uint32(b[i+1:]))
		if n < 0 || n > len(b)-i-5 {
			break
		}
		i += 5 + n
	}
	return 0, fmt.Errorf("%w: LOGIN7 FeatureExt not terminated", ErrMalformed)
}

// Append encodes the LOGIN7 onto b (always in the TDS 7.2+ layout).
func (l *Login7) Append(b []byte) []byte {
	le := binary.LittleEndian
	fixed := make([]byte, login7Fixed)
	var data []byte
	// put appends bytes to the variable part and records offset and count
	// (characters for strings, bytes otherwise) at the fixed part's at.
	put := func(at int, v []byte, count int) {
		le.PutUint16(fixed[at:], uint16(login7Fixed+len(data)))
		le.PutUint16(fixed[at+2:], uint16(count))
		data = append(data, v...)
	}
	str := func(at int, s string) { e := encodeUTF16(s); put(at, e, len(e)/2) }
	secret := func(at int, s string) { e := encodeUTF16(s); put(at, obfuscate(e), len(e)/2) }

	le.PutUint32(fixed[4:], l.TDSVersion)
	le.PutUint32(fixed[8:], l.PacketSize)
	le.PutUint32(fixed[12:], l.ClientProgVer)
	le.PutUint32(fixed[16:], l.ClientPID)
	le.PutUint32(fixed[20:], l.ConnectionID)
	fixed[24], fixed[25], fixed[26] = l.OptionFlags1, l.OptionFlags2, l.TypeFlags
	fixed[27] = l.OptionFlags3 &^ Flags3Extension
	le.PutUint32(fixed[28:], uint32(l.ClientTimeZone))
	le.PutUint32(fixed[32:], l.ClientLCID)
	str(36, l.HostName)
	str(40, l.UserName)
	secret(44, l.Password)
	str(48, l.AppName)
	str(52, l.ServerName)
	extPtr := -1
	if l.FeatureExt != nil {
		fixed[27] |= Flags3Extension
		extPtr = len(data)
		put(56, make([]byte, 4), 4) // a DWORD: where FeatureExt starts, filled in below
	} else {
		put(56, nil, 0)
	}
	str(60, l.CltIntName)
	str(64, l.Language)
	str(68, l.Database)
	copy(fixed[72:78], l.ClientID[:])
	str(82, l.AtchDBFile)
	secret(86, l.ChangePassword)
	// Offsets are 16 bits: a long SSPI blob goes after everything they reach.
	if len(l.SSPI) >= 0xFFFF {
		put(78, l.SSPI, 0xFFFF)
		le.PutUint32(fixed[90:], uint32(len(l.SSPI)))
	} else {
		put(78, l.SSPI, len(l.SSPI))
	}
	if extPtr >= 0 {
		le.PutUint32(data[extPtr:], uint32(login7Fixed+len(data)))
		data = append(data, l.FeatureExt...)
	}
	le.PutUint32(fixed[0:], uint32(login7Fixed+len(data)))
	return append(append(b, fixed...), data...)
}

// obfuscate applies LOGIN7's password scrambling: swap nibbles, XOR 0xA5.
func obfuscate(p []byte) []byte {
	out := make([]byte, len(p))
	for i, c := range p {
		out[i] = (c<<4 | c>>4) ^ 0xA5
	}
	return out
}

func deobfuscate(p []byte) []byte {
	out := make([]byte, len(p))
	for i, c := range p {
		c ^= 0xA5
		out[i] = c<<4 | c>>4
	}
	return out
}

func encodeUTF16(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

func decodeUTF16(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.LittleEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

// LOGIN7 feature extensions (2.2.6.4 FeatureExt) pamd treats specially.
const (
	FeatureFedAuth            = 0x02
	FeatureColumnEncryption   = 0x04
	FeatureDataClassification = 0x09
)

// WithoutFeatures returns a FeatureExt block without the given features, or
// nil when none is left.
func WithoutFeatures(ext []byte, drop ...byte) ([]byte, error) {
	var out []byte
	for i := 0; ; {
		if i >= len(ext) {
			return nil, fmt.Errorf("%w: FeatureExt without a terminator", ErrMalformed)
		}
		id := ext[i]
		if id == 0xFF {
			if out == nil {
				return nil, nil
			}
			return append(out, 0xFF), nil
		}
		if i+5 > len(ext) {
			return nil, fmt.Errorf("%w: FeatureExt entry header", ErrMalformed)
		}
		n := int(binary.LittleEndian.Uint32(ext[i+1:]))
		if n > len(ext)-i-5 {
			return nil, fmt.Errorf("%w: FeatureExt entry length %d", ErrMalformed, n)
		}
		keep := true
		for _, d := range drop {
			keep = keep && d != id
		}
		if keep {
			out = append(out, ext[i:i+5+n]...)
		}
		i += 5 + n
	}
}
