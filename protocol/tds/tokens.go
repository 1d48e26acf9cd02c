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

// bVarchar appends a B_VARCHAR: a character count byte and UTF-16LE.
func bVarchar(b []byte, s string) []byte {
	e := encodeUTF16(s)
	if len(e)/2 > 255 {
		e = e[:510]
	}
	return append(append(b, byte(len(e)/2)), e...)
}

// usVarchar appends a US_VARCHAR: a two-byte character count and UTF-16LE.
func usVarchar(b []byte, s string) []byte {
	e := encodeUTF16(s)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(e)/2))
	return append(b, e...)
}

// withLength appends token, a two-byte length and body.
func withLength(b []byte, token byte, body []byte) []byte {
	b = append(b, token)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// AppendSSPI appends an SSPI token: the server's step of an integrated
// (NTLM or Kerberos) login.
func AppendSSPI(b []byte, data []byte) []byte { return withLength(b, TokenSSPI, data) }

// AppendLoginAck appends a LOGINACK token.
func AppendLoginAck(b []byte, tdsVersion uint32, progName string, major, minor byte, build uint16) []byte {
	body := []byte{1} // interface: SQL
	body = binary.BigEndian.AppendUint32(body, tdsVersion)
	body = bVarchar(body, progName)
	body = append(body, major, minor, byte(build>>8), byte(build))
	return withLength(b, TokenLoginAck, body)
}

// AppendEnvChange appends an ENVCHANGE token with string values.
func AppendEnvChange(b []byte, typ byte, newValue, oldValue string) []byte {
	body := bVarchar([]byte{typ}, newValue)
	body = bVarchar(body, oldValue)
	return withLength(b, TokenEnvChange, body)
}

// AppendCollationChange appends the ENVCHANGE that sets the collation.
func AppendCollationChange(b []byte) []byte {
	body := append([]byte{EnvCollation, byte(len(Collation))}, Collation...)
	return withLength(b, TokenEnvChange, append(body, 0))
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

// AppendMessage appends an ERROR (token TokenError) or INFO token.
func AppendMessage(b []byte, token byte, m ServerMessage) []byte {
	body := binary.LittleEndian.AppendUint32(nil, uint32(m.Number))
	body = append(body, m.State, m.Class)
	body = usVarchar(body, m.Text)
	body = bVarchar(body, m.ServerName)
	body = bVarchar(body, m.ProcName)
	body = binary.LittleEndian.AppendUint32(body, uint32(m.Line))
	return withLength(b, token, body)
}

// AppendDone appends a DONE (or DONEPROC/DONEINPROC) token.
func AppendDone(b []byte, token byte, status, curCmd uint16, rows uint64) []byte {
	b = append(b, token)
	b = binary.LittleEndian.AppendUint16(b, status)
	b = binary.LittleEndian.AppendUint16(b, curCmd)
	return binary.LittleEndian.AppendUint64(b, rows)
}

// Column types pamd's stand-in server answers with.
const (
	TypeIntN     = 0x26
	TypeNVarChar = 0xE7
)

// Column describes one column of a result set.
type Column struct {
	Name string
	Type byte // TypeIntN (4-byte int) or TypeNVarChar
}

// AppendColMetadata appends COLMETADATA for cols.
func AppendColMetadata(b []byte, cols []Column) []byte {
	b = append(b, TokenColMetadata)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(cols)))
	for _, c := range cols {
		b = binary.LittleEndian.AppendUint32(b, 0)      // user type
		b = binary.LittleEndian.AppendUint16(b, 0x0009) // flags: nullable, updateable unknown
		switch c.Type {
		case TypeIntN:
			b = append(b, TypeIntN, 4)
		default:
			b = append(b, TypeNVarChar)
			b = binary.LittleEndian.AppendUint16(b, 8000)
			b = append(b, Collation...)
		}
		b = bVarchar(b, c.Name)
	}
	return b
}

// AppendRow appends a ROW whose values follow cols: int32 for TypeIntN
// columns, string for TypeNVarChar; nil is NULL.
func AppendRow(b []byte, cols []Column, values []any) ([]byte, error) {
	if len(values) != len(cols) {
		return b, fmt.Errorf("tds: row of %d values for %d columns", len(values), len(cols))
	}
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
			b = append(b, 4)
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		case string:
			e := encodeUTF16(v)
			b = binary.LittleEndian.AppendUint16(b, uint16(len(e)))
			b = append(b, e...)
		default:
			return b, fmt.Errorf("tds: value %T for column %s", v, c.Name)
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

// AppendReturnValueInt appends a RETURNVALUE for an int output parameter.
func AppendReturnValueInt(b []byte, ordinal uint16, name string, v int32) []byte {
	b = binary.LittleEndian.AppendUint16(append(b, TokenReturnValue), ordinal)
	b = bVarchar(b, name)
	b = append(b, 0x01)                           // status: output parameter
	b = binary.LittleEndian.AppendUint32(b, 0)    // user type
	b = binary.LittleEndian.AppendUint16(b, 0x09) // flags: nullable
	b = append(b, TypeIntN, 4, 4)
	return binary.LittleEndian.AppendUint32(b, uint32(v))
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
