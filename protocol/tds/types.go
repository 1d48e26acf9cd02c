package tds

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// errShort means the bytes at hand end inside a token: a stream reader
// waits for more, a whole-message reader reports ErrMalformed.
var errShort = errors.New("tds: message ends inside a token")

// cursor reads little-endian fields from a byte slice.
type cursor struct {
	b []byte
	i int
}

func (c *cursor) take(n int) ([]byte, error) {
	if n < 0 || len(c.b)-c.i < n {
		return nil, errShort
	}
	c.i += n
	return c.b[c.i-n : c.i], nil
}

func (c *cursor) u8() (byte, error) {
	b, err := c.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

func (c *cursor) u16() (uint16, error) {
	b, err := c.take(2)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint16(b), nil
}

func (c *cursor) u32() (uint32, error) {
	b, err := c.take(4)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint32(b), nil
}

func (c *cursor) u64() (uint64, error) {
	b, err := c.take(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// bVarchar reads a character-count byte and that many UTF-16 code units.
func (c *cursor) bVarchar() (string, error) {
	n, err := c.u8()
	if err != nil {
		return "", err
	}
	b, err := c.take(2 * int(n))
	return decodeUTF16(b), err
}

// usVarchar reads a 16-bit character count and that many code units.
func (c *cursor) usVarchar() (string, error) {
	n, err := c.u16()
	if err != nil {
		return "", err
	}
	b, err := c.take(2 * int(n))
	return decodeUTF16(b), err
}

// Data types (MS-TDS 2.2.5.4) by how their values are framed.
const (
	typeNull       = 0x1F
	typeInt1       = 0x30
	typeBit        = 0x32
	typeInt2       = 0x34
	typeInt4       = 0x38
	typeDateTim4   = 0x3A
	typeFlt4       = 0x3B
	typeMoney      = 0x3C
	typeDateTime   = 0x3D
	typeFlt8       = 0x3E
	typeMoney4     = 0x7A
	typeInt8       = 0x7F
	typeGUID       = 0x24
	typeDecimal    = 0x37
	typeNumeric    = 0x3F
	typeBitN       = 0x68
	typeDecimalN   = 0x6A
	typeNumericN   = 0x6C
	typeFltN       = 0x6D
	typeMoneyN     = 0x6E
	typeDateTimeN  = 0x6F
	typeDateN      = 0x28
	typeTimeN      = 0x29
	typeDateTime2N = 0x2A
	typeDTOffsetN  = 0x2B
	typeChar       = 0x2F
	typeVarChar    = 0x27
	typeBinary     = 0x2D
	typeVarBinary  = 0x25
	typeBigVarBin  = 0xA5
	typeBigVarChr  = 0xA7
	typeBigBinary  = 0xAD
	typeBigChar    = 0xAF
	typeNChar      = 0xEF
	typeText       = 0x23
	typeImage      = 0x22
	typeNText      = 0x63
	typeVariant    = 0x62
	typeXML        = 0xF1
	typeUDT        = 0xF0
)

// value framings
const (
	frameFixed  = iota // Size bytes, never NULL
	frameByte          // a length byte; 0 is NULL (DATE/TIME types: 0 is NULL too)
	frameUShort        // a 16-bit length; 0xFFFF is NULL
	frameText          // a text pointer (length byte, 0 is NULL), timestamp, 32-bit length
	frameLong          // a 32-bit length (sql_variant); 0 is NULL
	framePLP           // partially length-prefixed: 64-bit total, then chunks
)

// TypeInfo is a column's or parameter's TYPE_INFO, reduced to what reading
// and showing its values needs.
type TypeInfo struct {
	Type  byte
	frame int
	Size  int  // fixed size, or the declared maximum length
	Scale byte // decimal, time types
}

var fixedSizes = map[byte]int{
	typeNull: 0, typeInt1: 1, typeBit: 1, typeInt2: 2, typeInt4: 4, typeDateTim4: 4, typeFlt4: 4,
	typeMoney: 8, typeDateTime: 8, typeFlt8: 8, typeMoney4: 4, typeInt8: 8,
}

// readTypeInfo reads a TYPE_INFO. In COLMETADATA, text, ntext and image
// columns are followed by their table name, which colMetadata reads.
func readTypeInfo(c *cursor) (TypeInfo, error) {
	t, err := c.u8()
	if err != nil {
		return TypeInfo{}, err
	}
	ti := TypeInfo{Type: t}
	if n, ok := fixedSizes[t]; ok {
		ti.frame, ti.Size = frameFixed, n
		return ti, nil
	}
	switch t {
	case typeGUID, TypeIntN, typeBitN, typeFltN, typeMoneyN, typeDateTimeN,
		typeChar, typeVarChar, typeBinary, typeVarBinary:
		ti.frame = frameByte
		n, err := c.u8()
		ti.Size = int(n)
		return ti, err
	case typeDecimal, typeNumeric, typeDecimalN, typeNumericN:
		ti.frame = frameByte
		b, err := c.take(3) // length, precision, scale
		if err != nil {
			return ti, err
		}
		ti.Size, ti.Scale = int(b[0]), b[2]
		return ti, nil
	case typeDateN:
		ti.frame, ti.Size = frameByte, 3
		return ti, nil
	case typeTimeN, typeDateTime2N, typeDTOffsetN:
		ti.frame = frameByte
		ti.Scale, err = c.u8()
		return ti, err
	case typeBigVarBin, typeBigVarChr, typeBigBinary, typeBigChar, TypeNVarChar, typeNChar:
		n, err := c.u16()
		if err != nil {
			return ti, err
		}
		ti.Size, ti.frame = int(n), frameUShort
		if n == 0xFFFF {
			ti.frame = framePLP // varchar(max), nvarchar(max), varbinary(max)
		}
		if t == typeBigVarChr || t == typeBigChar || t == TypeNVarChar || t == typeNChar {
			_, err = c.take(5) // collation
		}
		return ti, err
	case typeText, typeNText, typeImage:
		n, err := c.u32()
		if err != nil {
			return ti, err
		}
		ti.Size, ti.frame = int(n), frameText
		if t != typeImage {
			_, err = c.take(5)
		}
		return ti, err
	case typeVariant:
		n, err := c.u32()
		ti.Size, ti.frame = int(n), frameLong
		return ti, err
	case typeXML:
		ti.frame = framePLP
		schema, err := c.u8()
		if err != nil || schema == 0 {
			return ti, err
		}
		if _, err := c.bVarchar(); err != nil { // database
			return ti, err
		}
		if _, err := c.bVarchar(); err != nil { // owning schema
			return ti, err
		}
		_, err = c.usVarchar() // schema collection
		return ti, err
	case typeUDT:
		ti.frame = framePLP
		if _, err := c.u16(); err != nil { // max length
			return ti, err
		}
		for i := 0; i < 3; i++ { // database, schema, type name
			if _, err := c.bVarchar(); err != nil {
				return ti, err
			}
		}
		_, err = c.usVarchar() // assembly-qualified name
		return ti, err
	}
	return ti, fmt.Errorf("%w: data type %#x", ErrMalformed, t)
}

// readValue reads one value of type ti and returns up to keep bytes of it
// (for showing), and whether it is NULL. The rest is skipped, not copied.
func readValue(c *cursor, ti TypeInfo, keep int) (val []byte, null bool, err error) {
	clip := func(b []byte) []byte {
		if len(b) > keep {
			b = b[:keep]
		}
		return b
	}
	switch ti.frame {
	case frameFixed:
		b, err := c.take(ti.Size)
		return clip(b), ti.Type == typeNull, err
	case frameByte:
		n, err := c.u8()
		if err != nil {
			return nil, false, err
		}
		b, err := c.take(int(n))
		return clip(b), n == 0, err
	case frameUShort:
		n, err := c.u16()
		if err != nil || n == 0xFFFF {
			return nil, n == 0xFFFF, err
		}
		b, err := c.take(int(n))
		return clip(b), false, err
	case frameText:
		p, err := c.u8()
		if err != nil || p == 0 {
			return nil, p == 0, err
		}
		if _, err := c.take(int(p) + 8); err != nil { // pointer, timestamp
			return nil, false, err
		}
		n, err := c.u32()
		if err != nil {
			return nil, false, err
		}
		b, err := c.take(int(n))
		return clip(b), false, err
	case frameLong:
		n, err := c.u32()
		if err != nil {
			return nil, false, err
		}
		b, err := c.take(int(n))
		return clip(b), n == 0, err
	case framePLP:
		total, err := c.u64()
		if err != nil || total == math.MaxUint64 {
			return nil, total == math.MaxUint64, err
		}
		for {
			n, err := c.u32()
			if err != nil || n == 0 {
				return val, false, err
			}
			b, err := c.take(int(n))
			if err != nil {
				return nil, false, err
			}
			if room := keep - len(val); room > 0 {
				val = append(val, clip(b)[:min(room, len(b))]...)
			}
		}
	}
	return nil, false, fmt.Errorf("%w: unknown framing", ErrMalformed)
}

// showValue renders a value for a log, as SQL would write it.
func showValue(ti TypeInfo, v []byte, null bool) string {
	if null {
		return "NULL"
	}
	le := binary.LittleEndian
	switch ti.Type {
	case typeInt1:
		if len(v) == 1 {
			return strconv.Itoa(int(v[0]))
		}
	case typeBit, typeBitN:
		if len(v) == 1 {
			return strconv.Itoa(int(v[0] & 1))
		}
	case typeInt2, typeInt4, typeInt8, TypeIntN:
		switch len(v) {
		case 1:
			return strconv.Itoa(int(v[0]))
		case 2:
			return strconv.Itoa(int(int16(le.Uint16(v))))
		case 4:
			return strconv.Itoa(int(int32(le.Uint32(v))))
		case 8:
			return strconv.FormatInt(int64(le.Uint64(v)), 10)
		}
	case typeFlt4, typeFlt8, typeFltN:
		switch len(v) {
		case 4:
			return strconv.FormatFloat(float64(math.Float32frombits(le.Uint32(v))), 'g', -1, 32)
		case 8:
			return strconv.FormatFloat(math.Float64frombits(le.Uint64(v)), 'g', -1, 64)
		}
	case TypeNVarChar, typeNChar, typeNText, typeXML:
		return "N'" + escapeQuote(decodeUTF16(v[:len(v)&^1])) + "'"
	case typeBigVarChr, typeBigChar, typeVarChar, typeChar, typeText:
		return "'" + escapeQuote(string(v)) + "'"
	}
	return "0x" + hex.EncodeToString(v)
}

func escapeQuote(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(out)
}
