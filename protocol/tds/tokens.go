package tds

import (
	"encoding/binary"
	"fmt"
)

// Token types of the tabular result stream (MS-TDS 2.2.7).
const (
	TokenColMetadata = 0x81
	TokenError       = 0xAA
	TokenInfo        = 0xAB
	TokenLoginAck    = 0xAD
	TokenRow         = 0xD1
	TokenEnvChange   = 0xE3
	TokenSSPI        = 0xED
	TokenDone        = 0xFD
	TokenDoneProc    = 0xFE
	TokenDoneInProc  = 0xFF
)

// DONE status bits (2.2.7.6).
const (
	DoneFinal = 0x00
	DoneMore  = 0x01
	DoneError = 0x02
	DoneCount = 0x10
	DoneAttn  = 0x20
)

// ENVCHANGE types (2.2.7.9).
const (
	EnvDatabase   = 1
	EnvLanguage   = 2
	EnvPacketSize = 4
	EnvCollation  = 7
)

// Collation is SQL_Latin1_General_CP1_CI_AS as five bytes (2.2.5.1.2).
var Collation = []byte{0x09, 0x04, 0xD0, 0x00, 0x34}

// errTooLong is what a writer returns for a value its field cannot hold.
func errTooLong(what string, n, max int) error {
	return fmt.Errorf("%w: %s of %d, at most %d", ErrLength, what, n, max)
}

// bVarchar appends a B_VARCHAR: a character count byte and UTF-16LE.
func bVarchar(b []byte, what, s string) ([]byte, error) {
	e := encodeUTF16(s)
	if len(e)/2 > 255 {
		return b, errTooLong(what+" characters", len(e)/2, 255)
	}
	return append(append(b, byte(len(e)/2)), e...), nil
}

// usVarchar appends a US_VARCHAR: a two-byte character count and UTF-16LE.
func usVarchar(b []byte, what, s string) ([]byte, error) {
	e := encodeUTF16(s)
	if len(e)/2 > 0xFFFF {
		return b, errTooLong(what+" characters", len(e)/2, 0xFFFF)
	}
	b = binary.LittleEndian.AppendUint16(b, uint16(len(e)/2))
	return append(b, e...), nil
}

// withLength appends token, a two-byte length and body.
func withLength(b []byte, token byte, body []byte) ([]byte, error) {
	if len(body) > 0xFFFF {
		return b, errTooLong(fmt.Sprintf("token %#x body bytes", token), len(body), 0xFFFF)
	}
	b = append(b, token)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...), nil
}

// AppendSSPI appends an SSPI token: the server's step of an integrated
// (NTLM or Kerberos) login.
func AppendSSPI(b []byte, data []byte) ([]byte, error) { return withLength(b, TokenSSPI, data) }

// AppendLoginAck appends a LOGINACK token saying the login was accepted at
// TDS version v.
func AppendLoginAck(b []byte, v Version, progName string, major, minor byte, build uint16) ([]byte, error) {
	body := []byte{1} // interface: SQL
	body = binary.BigEndian.AppendUint32(body, uint32(v))
	body, err := bVarchar(body, "LOGINACK program name", progName)
	if err != nil {
		return b, err
	}
	body = append(body, major, minor, byte(build>>8), byte(build))
	return withLength(b, TokenLoginAck, body)
}

// AppendEnvChange appends an ENVCHANGE token with string values.
func AppendEnvChange(b []byte, typ byte, newValue, oldValue string) ([]byte, error) {
	body, err := bVarchar([]byte{typ}, "ENVCHANGE value", newValue)
	if err != nil {
		return b, err
	}
	if body, err = bVarchar(body, "ENVCHANGE value", oldValue); err != nil {
		return b, err
	}
	return withLength(b, TokenEnvChange, body)
}

// AppendCollationChange appends the ENVCHANGE that sets the collation.
func AppendCollationChange(b []byte) []byte {
	body := append([]byte{EnvCollation, byte(len(Collation))}, Collation...)
	b, _ = withLength(b, TokenEnvChange, append(body, 0)) // 8 bytes always fit
	return b
}

// ServerMessage is the body of an ERROR or INFO token.
type ServerMessage struct {
	Number     int32
	State      byte
	Class      byte
	Text       string
	ServerName string
	ProcName   string
	Line       int32
}

// MaxMessageText is the longest message text an ERROR or INFO token holds
// with the names beside it: its body's length is 16 bits.
const MaxMessageText = (0xFFFF - 4 - 2 - 2 - 1 - 1 - 4 - 2*255*2) / 2

// AppendMessage appends an ERROR (token TokenError) or INFO token. The
// line number is 4 bytes in every version from 7.2 on and 2 bytes before;
// v selects which.
func AppendMessage(b []byte, v Version, token byte, m ServerMessage) ([]byte, error) {
	body := binary.LittleEndian.AppendUint32(nil, uint32(m.Number))
	body = append(body, m.State, m.Class)
	var err error
	if body, err = usVarchar(body, "message text", m.Text); err != nil {
		return b, err
	}
	if body, err = bVarchar(body, "server name", m.ServerName); err != nil {
		return b, err
	}
	if body, err = bVarchar(body, "procedure name", m.ProcName); err != nil {
		return b, err
	}
	if v.Before72() {
		if m.Line < 0 || m.Line > 0xFFFF {
			return b, errTooLong("line number", int(m.Line), 0xFFFF)
		}
		body = binary.LittleEndian.AppendUint16(body, uint16(m.Line))
	} else {
		body = binary.LittleEndian.AppendUint32(body, uint32(m.Line))
	}
	return withLength(b, token, body)
}

// AppendDone appends a DONE (or DONEPROC/DONEINPROC) token in the layout
// of v; before 7.2 the row count has 32 bits and a larger one is refused.
func AppendDone(b []byte, v Version, token byte, status, curCmd uint16, rows uint64) ([]byte, error) {
	if v.Before72() && rows > 0xFFFFFFFF {
		return b, errTooLong("DONE row count before TDS 7.2", int(min(rows, 1<<62)), 0xFFFFFFFF)
	}
	b = append(b, token)
	b = binary.LittleEndian.AppendUint16(b, status)
	b = binary.LittleEndian.AppendUint16(b, curCmd)
	if v.Before72() {
		return binary.LittleEndian.AppendUint32(b, uint32(rows)), nil
	}
	return binary.LittleEndian.AppendUint64(b, rows), nil
}

// Column types pamd's stand-in server answers with.
const (
	TypeIntN     = 0x26
	TypeNVarChar = 0xE7
)

// maxNVarChar is the byte length NVARCHAR columns are declared with
// (nvarchar(4000)), so the longest value a ROW holds for them.
const maxNVarChar = 8000

// Column describes one column of a result set.
type Column struct {
	Name string
	Type byte // TypeIntN (4-byte int) or TypeNVarChar
}

// AppendColMetadata appends COLMETADATA for cols in the layout of v.
func AppendColMetadata(b []byte, v Version, cols []Column) ([]byte, error) {
	if len(cols) == 0 || len(cols) > 4096 {
		return b, errTooLong("COLMETADATA columns", len(cols), 4096)
	}
	start := len(b)
	b = append(b, TokenColMetadata)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		b = appendUserType(b, v, 0)
		b = binary.LittleEndian.AppendUint16(b, 0x0009) // flags: nullable, updateable unknown
		switch c.Type {
		case TypeIntN:
			b = append(b, TypeIntN, 4)
		case TypeNVarChar:
			b = append(b, TypeNVarChar)
			b = binary.LittleEndian.AppendUint16(b, maxNVarChar)
			b = append(b, Collation...)
		default:
			return b[:start], fmt.Errorf("tds: column %s of type %#x", c.Name, c.Type)
		}
		var err error
		if b, err = bVarchar(b, "column name", c.Name); err != nil {
			return b[:start], err
		}
	}
	return b, nil
}

// appendUserType appends a UserType: 16 bits before 7.2, 32 from 7.2 on.
func appendUserType(b []byte, v Version, t uint16) []byte {
	if v.Before72() {
		return binary.LittleEndian.AppendUint16(b, t)
	}
	return binary.LittleEndian.AppendUint32(b, uint32(t))
}

// AppendRow appends a ROW whose values follow cols: int32 for TypeIntN
// columns, string for TypeNVarChar (at most 4000 UTF-16 code units, what
// the columns are declared with); nil is NULL. Rows are the same in every
// version pamd writes.
func AppendRow(b []byte, cols []Column, values []any) ([]byte, error) {
	if len(values) != len(cols) {
		return b, fmt.Errorf("tds: row of %d values for %d columns", len(values), len(cols))
	}
	start := len(b)
	b = append(b, TokenRow)
	for i, c := range cols {
		switch v := values[i].(type) {
		case nil:
			if c.Type == TypeIntN {
				b = append(b, 0)
			} else {
				b = append(b, 0xFF, 0xFF)
			}
		case int32:
			if c.Type != TypeIntN {
				return b[:start], fmt.Errorf("tds: int value for column %s", c.Name)
			}
			b = append(b, 4)
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		case string:
			if c.Type != TypeNVarChar {
				return b[:start], fmt.Errorf("tds: string value for column %s", c.Name)
			}
			e := encodeUTF16(v)
			if len(e) > maxNVarChar {
				return b[:start], errTooLong("NVARCHAR value bytes", len(e), maxNVarChar)
			}
			b = binary.LittleEndian.AppendUint16(b, uint16(len(e)))
			b = append(b, e...)
		default:
			return b[:start], fmt.Errorf("tds: value %T for column %s", v, c.Name)
		}
	}
	return b, nil
}

// BatchText decodes a SQL batch payload: ALL_HEADERS (TDS 7.2+) when the
// payload starts with their total length, then UTF-16LE text.
func BatchText(payload []byte) (string, error) {
	payload = payload[BatchTextStart(payload):]
	if len(payload)%2 != 0 {
		return "", fmt.Errorf("%w: SQL batch text of odd length", ErrMalformed)
	}
	return decodeUTF16(payload), nil
}

// MaxAllHeaders bounds the ALL_HEADERS a batch or RPC request starts with.
const MaxAllHeaders = 1<<16 - 1

// BatchTextStart is where a SQL batch's text starts in its payload: after
// ALL_HEADERS (2.2.5.3) when it begins with them. Given a payload's first
// MaxAllHeaders bytes or more, it answers for the whole payload.
func BatchTextStart(payload []byte) int {
	if len(payload) >= 4 {
		total := int(binary.LittleEndian.Uint32(payload))
		if total >= 4 && total <= len(payload) && total <= MaxAllHeaders && looksLikeHeaders(payload[:total]) {
			return total
		}
	}
	return 0
}

// looksLikeHeaders checks ALL_HEADERS: each header's length fits.
func looksLikeHeaders(h []byte) bool {
	for i := 4; i < len(h); {
		if i+4 > len(h) {
			return false
		}
		n := int(binary.LittleEndian.Uint32(h[i:]))
		if n < 6 || i+n > len(h) {
			return false
		}
		i += n
	}
	return true
}

// AppendReturnStatus appends a stored procedure's RETURNSTATUS.
func AppendReturnStatus(b []byte, status int32) []byte {
	return binary.LittleEndian.AppendUint32(append(b, TokenReturnStatus), uint32(status))
}

// AppendReturnValueInt appends a RETURNVALUE for an int output parameter
// in the layout of v.
func AppendReturnValueInt(b []byte, v Version, ordinal uint16, name string, value int32) ([]byte, error) {
	start := len(b)
	b = binary.LittleEndian.AppendUint16(append(b, TokenReturnValue), ordinal)
	b, err := bVarchar(b, "parameter name", name)
	if err != nil {
		return b[:start], err
	}
	b = append(b, 0x01) // status: output parameter
	b = appendUserType(b, v, 0)
	b = binary.LittleEndian.AppendUint16(b, 0x09) // flags: nullable
	b = append(b, TypeIntN, 4, 4)
	return binary.LittleEndian.AppendUint32(b, uint32(value)), nil
}

// AppendSQLBatch appends a SQL batch payload (MS-TDS 2.2.6.7): ALL_HEADERS
// with a transaction descriptor of 0 (autocommit) and one outstanding
// request, then the text in UTF-16LE.
func AppendSQLBatch(b []byte, text string) []byte {
	b = binary.LittleEndian.AppendUint32(b, 22) // ALL_HEADERS total length
	b = binary.LittleEndian.AppendUint32(b, 18) // this header's length
	b = binary.LittleEndian.AppendUint16(b, 2)  // transaction descriptor
	b = binary.LittleEndian.AppendUint64(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 1)
	return append(b, encodeUTF16(text)...)
}

// Tokens builds a token stream in the layout of TDS version V. The first
// token that does not fit is kept in Err, and nothing is added after it.
type Tokens struct {
	V   Version
	B   []byte
	Err error
}

func (t *Tokens) add(f func([]byte) ([]byte, error)) *Tokens {
	if t.Err == nil {
		t.B, t.Err = f(t.B)
	}
	return t
}

// Bytes returns the stream, or the first error.
func (t *Tokens) Bytes() ([]byte, error) { return t.B, t.Err }

// Done adds a DONE, DONEPROC or DONEINPROC token.
func (t *Tokens) Done(token byte, status, curCmd uint16, rows uint64) *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return AppendDone(b, t.V, token, status, curCmd, rows) })
}

// Message adds an ERROR or INFO token.
func (t *Tokens) Message(token byte, m ServerMessage) *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return AppendMessage(b, t.V, token, m) })
}

// EnvChange adds an ENVCHANGE token with string values.
func (t *Tokens) EnvChange(typ byte, newValue, oldValue string) *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return AppendEnvChange(b, typ, newValue, oldValue) })
}

// CollationChange adds the ENVCHANGE that sets the collation.
func (t *Tokens) CollationChange() *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return AppendCollationChange(b), nil })
}

// LoginAck adds a LOGINACK at version T.V.
func (t *Tokens) LoginAck(progName string, major, minor byte, build uint16) *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return AppendLoginAck(b, t.V, progName, major, minor, build) })
}

// SSPI adds an SSPI token.
func (t *Tokens) SSPI(data []byte) *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return AppendSSPI(b, data) })
}

// Result adds COLMETADATA for cols and a ROW for each of rows.
func (t *Tokens) Result(cols []Column, rows ...[]any) *Tokens {
	t.add(func(b []byte) ([]byte, error) { return AppendColMetadata(b, t.V, cols) })
	for _, r := range rows {
		t.add(func(b []byte) ([]byte, error) { return AppendRow(b, cols, r) })
	}
	return t
}

// ReturnStatus adds a stored procedure's RETURNSTATUS.
func (t *Tokens) ReturnStatus(status int32) *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return AppendReturnStatus(b, status), nil })
}

// ReturnValueInt adds a RETURNVALUE for an int output parameter.
func (t *Tokens) ReturnValueInt(ordinal uint16, name string, v int32) *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return AppendReturnValueInt(b, t.V, ordinal, name, v) })
}

// Append adds tokens built elsewhere in the same layout.
func (t *Tokens) Append(stream []byte) *Tokens {
	return t.add(func(b []byte) ([]byte, error) { return append(b, stream...), nil })
}
