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

// Field limits of MS-TDS 2.2.6.4, in characters (UTF-16 code units): every
// string is at most 128 characters but AtchDBFile, at most 260.
const (
	MaxLogin7Chars      = 128
	MaxLogin7AtchDBFile = 260
)

// span is the part of a LOGIN7 a field takes; fields must not overlap.
type span struct{ off, n int }

// ParseLogin7 decodes a LOGIN7 payload. It refuses strings longer than
// MS-TDS allows and fields that overlap: a field read through another's
// bytes could carry one field's content (the password) into another.
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
	var used []span
	// claim checks that n bytes at off lie in the variable part and overlap
	// no field claimed before.
	claim := func(what string, off, n int) error {
		if n == 0 {
			return nil
		}
		if off < fixed || off+n > len(b) {
			return fmt.Errorf("%w: LOGIN7 %s outside the message", ErrMalformed, what)
		}
		for _, u := range used {
			if off < u.off+u.n && u.off < off+n {
				return fmt.Errorf("%w: LOGIN7 %s overlaps another field", ErrMalformed, what)
			}
		}
		used = append(used, span{off, n})
		return nil
	}
	// str reads the string whose offset and length are at the fixed part's at.
	str := func(what string, at, max int) ([]byte, error) {
		off, cch := int(le.Uint16(b[at:])), int(le.Uint16(b[at+2:]))
		if cch > max {
			return nil, fmt.Errorf("%w: LOGIN7 %s of %d characters (at most %d)", ErrLength, what, cch, max)
		}
		if cch == 0 {
			return nil, nil // an empty field's offset may point anywhere
		}
		if err := claim(what, off, 2*cch); err != nil {
			return nil, err
		}
		return b[off : off+2*cch], nil
	}
	strs := []struct {
		what    string
		at, max int
		secret  bool
		dst     *string
		version int // the fixed part's size that has it
	}{
		{"HostName", 36, MaxLogin7Chars, false, &l.HostName, login7Fixed70},
		{"UserName", 40, MaxLogin7Chars, false, &l.UserName, login7Fixed70},
		{"Password", 44, MaxLogin7Chars, true, &l.Password, login7Fixed70},
		{"AppName", 48, MaxLogin7Chars, false, &l.AppName, login7Fixed70},
		{"ServerName", 52, MaxLogin7Chars, false, &l.ServerName, login7Fixed70},
		{"CltIntName", 60, MaxLogin7Chars, false, &l.CltIntName, login7Fixed70},
		{"Language", 64, MaxLogin7Chars, false, &l.Language, login7Fixed70},
		{"Database", 68, MaxLogin7Chars, false, &l.Database, login7Fixed70},
		{"AtchDBFile", 82, MaxLogin7AtchDBFile, false, &l.AtchDBFile, login7Fixed70},
		{"ChangePassword", 86, MaxLogin7Chars, true, &l.ChangePassword, login7Fixed},
	}
	// Before 7.2 there is no ChangePassword or cbSSPILong, whatever the
	// client's fixed part holds past them.
	has := fixed
	if Version(l.TDSVersion).Before72() {
		has = login7Fixed70
	}
	for _, f := range strs {
		if has < f.version {
			continue
		}
		v, err := str(f.what, f.at, f.max)
		if err != nil {
			return nil, err
		}
		if f.secret { // undo the obfuscation, byte by byte
			v = deobfuscate(v)
		}
		*f.dst = decodeUTF16(v)
	}
	copy(l.ClientID[:], b[72:78])
	sspiOff, sspiLen := int(le.Uint16(b[78:])), int(le.Uint16(b[80:]))
	if has >= login7Fixed && sspiLen == 0xFFFF {
		sspiLen = int(le.Uint32(b[90:]))
	}
	if err := claim("SSPI", sspiOff, sspiLen); err != nil {
		return nil, err
	}
	if sspiLen > 0 {
		l.SSPI = append([]byte(nil), b[sspiOff:sspiOff+sspiLen]...)
	}
	// fExtension exists from TDS 7.4 on; before, the bit is reserved and
	// ibExtension unused (tedious sets the bit at every version).
	if l.OptionFlags3&Flags3Extension != 0 && !Version(l.TDSVersion).Before74() {
		off, n := int(le.Uint16(b[56:])), int(le.Uint16(b[58:]))
		if n < 4 {
			return nil, fmt.Errorf("%w: LOGIN7 extension pointer", ErrMalformed)
		}
		if err := claim("extension pointer", off, 4); err != nil {
			return nil, err
		}
		feat := int(le.Uint32(b[off:]))
		if feat < fixed || feat >= len(b) {
			return nil, fmt.Errorf("%w: LOGIN7 FeatureExt at %d", ErrMalformed, feat)
		}
		end, err := featureExtEnd(b[feat:])
		if err != nil {
			return nil, err
		}
		if err := claim("FeatureExt", feat, end); err != nil {
			return nil, err
		}
		l.FeatureExt = append([]byte(nil), b[feat:feat+end]...)
	}
	return l, nil
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

// Append encodes the LOGIN7 onto b in the layout of its TDS version (a
// fixed part of 86 bytes before 7.2, of 94 from 7.2 on). It
// refuses strings longer than MS-TDS allows and anything whose offset or
// length does not fit the fixed part's 16 bits: a wrapped offset would point
// a field at another's bytes (Database at the password, say).
func (l *Login7) Append(b []byte) ([]byte, error) {
	le := binary.LittleEndian
	// TDS 7.0 and 7.1 end the fixed part before ibChangePassword and
	// cbSSPILong, which they do not have.
	fixedLen, old := login7Fixed, Version(l.TDSVersion).Before72()
	if old {
		fixedLen = login7Fixed70
	}
	fixed := make([]byte, fixedLen)
	var data []byte
	var err error
	// put appends bytes to the variable part and records offset and count
	// (characters for strings, bytes otherwise) at the fixed part's at.
	put := func(what string, at int, v []byte, count int) {
		off := fixedLen + len(data)
		if err == nil && (off > 0xFFFF || count > 0xFFFF) {
			err = fmt.Errorf("%w: LOGIN7 %s at offset %d, count %d, past 16 bits", ErrLength, what, off, count)
		}
		le.PutUint16(fixed[at:], uint16(off))
		le.PutUint16(fixed[at+2:], uint16(count))
		data = append(data, v...)
	}
	str := func(what string, at int, s string, max int, secret bool) {
		e := encodeUTF16(s)
		if err == nil && len(e)/2 > max {
			err = fmt.Errorf("%w: LOGIN7 %s of %d characters (at most %d)", ErrLength, what, len(e)/2, max)
		}
		if secret {
			e = obfuscate(e)
		}
		put(what, at, e, len(e)/2)
	}

	le.PutUint32(fixed[4:], l.TDSVersion)
	le.PutUint32(fixed[8:], l.PacketSize)
	le.PutUint32(fixed[12:], l.ClientProgVer)
	le.PutUint32(fixed[16:], l.ClientPID)
	le.PutUint32(fixed[20:], l.ConnectionID)
	fixed[24], fixed[25], fixed[26] = l.OptionFlags1, l.OptionFlags2, l.TypeFlags
	fixed[27] = l.OptionFlags3 &^ Flags3Extension
	le.PutUint32(fixed[28:], uint32(l.ClientTimeZone))
	le.PutUint32(fixed[32:], l.ClientLCID)
	str("HostName", 36, l.HostName, MaxLogin7Chars, false)
	str("UserName", 40, l.UserName, MaxLogin7Chars, false)
	str("Password", 44, l.Password, MaxLogin7Chars, true)
	str("AppName", 48, l.AppName, MaxLogin7Chars, false)
	str("ServerName", 52, l.ServerName, MaxLogin7Chars, false)
	extPtr := -1
	if l.FeatureExt != nil && Version(l.TDSVersion).Before74() && err == nil {
		err = fmt.Errorf("%w: LOGIN7 FeatureExt at TDS %v (it begins with 7.4)", ErrMalformed, Version(l.TDSVersion))
	}
	if l.FeatureExt != nil {
		fixed[27] |= Flags3Extension
		extPtr = len(data)
		put("extension", 56, make([]byte, 4), 4) // a DWORD: where FeatureExt starts, filled in below
	} else {
		put("extension", 56, nil, 0)
	}
	str("CltIntName", 60, l.CltIntName, MaxLogin7Chars, false)
	str("Language", 64, l.Language, MaxLogin7Chars, false)
	str("Database", 68, l.Database, MaxLogin7Chars, false)
	copy(fixed[72:78], l.ClientID[:])
	str("AtchDBFile", 82, l.AtchDBFile, MaxLogin7AtchDBFile, false)
	switch {
	case !old:
		str("ChangePassword", 86, l.ChangePassword, MaxLogin7Chars, true)
	case err == nil && l.ChangePassword != "":
		err = fmt.Errorf("%w: LOGIN7 ChangePassword at TDS %v (it begins with 7.2)", ErrMalformed, Version(l.TDSVersion))
	case err == nil && len(l.SSPI) >= 0xFFFF:
		err = fmt.Errorf("%w: LOGIN7 SSPI of %d bytes at TDS %v (at most 65534 before 7.2)", ErrLength, len(l.SSPI), Version(l.TDSVersion))
	}
	// Offsets are 16 bits: a long SSPI blob goes after everything they reach.
	if len(l.SSPI) >= 0xFFFF && !old {
		put("SSPI", 78, l.SSPI, 0xFFFF)
		le.PutUint32(fixed[90:], uint32(len(l.SSPI)))
	} else {
		put("SSPI", 78, l.SSPI, len(l.SSPI))
	}
	if extPtr >= 0 {
		if end, ferr := featureExtEnd(l.FeatureExt); err == nil && (ferr != nil || end != len(l.FeatureExt)) {
			err = fmt.Errorf("%w: LOGIN7 FeatureExt is not one terminated block", ErrMalformed)
		}
		le.PutUint32(data[extPtr:], uint32(fixedLen+len(data)))
		data = append(data, l.FeatureExt...)
	}
	if err == nil && fixedLen+len(data) > maxLogin7 {
		err = fmt.Errorf("%w: LOGIN7 of %d bytes (at most %d)", ErrLength, fixedLen+len(data), maxLogin7)
	}
	if err != nil {
		return b, fmt.Errorf("encode LOGIN7: %w", err)
	}
	le.PutUint32(fixed[0:], uint32(fixedLen+len(data)))
	return append(append(b, fixed...), data...), nil
}

// SecretForms returns the forms in which a server could repeat a secret
// that a LOGIN7 carried: as text, plain and as the obfuscated password
// would read if a field pointed at it; as bytes, those two in UTF-8 and in
// UTF-16LE. Callers scrub texts and refuse replies holding any of them.
func SecretForms(secret string) (texts []string, raw [][]byte) {
	if secret == "" {
		return nil, nil
	}
	u := encodeUTF16(secret)
	o := obfuscate(u)
	scrambled := decodeUTF16(o)
	return []string{secret, scrambled}, [][]byte{[]byte(secret), u, o, []byte(scrambled)}
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
