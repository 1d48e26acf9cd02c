package tds

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// More token types (MS-TDS 2.2.7) the reply reader walks over.
const (
	TokenNBCRow        = 0xD2
	TokenReturnStatus  = 0x79
	TokenReturnValue   = 0xAC
	TokenOrder         = 0xA9
	TokenTabName       = 0xA4
	TokenColInfo       = 0xA5
	TokenFeatureExtAck = 0xAE
	TokenSessionState  = 0xE4
	TokenFedAuthInfo   = 0xEE
)

// Outcome is what one reply message said about the request before it.
type Outcome struct {
	RowsReturned uint64 // ROW and NBCROW tokens
	RowsAffected uint64 // DONE counts of statements that returned no rows
	Errors       []ServerMessage
	Database     string // the database the reply switched to, if any
	LoginAck     bool
	// Version is the TDS version LOGINACK accepted the login at.
	Version   Version
	Attention bool // the reply acknowledges a cancel
	// Incomplete is set when the stream held something the reader cannot
	// follow (a data type it does not know, a value over its bound); what
	// came before is still counted.
	Incomplete bool
}

// tokenState is what reading a token stream has to remember: the layout
// (the TDS version, which a LOGINACK may change) and the columns of the
// current result set.
type tokenState struct {
	v       Version
	cols    []TypeInfo
	hadMeta bool // a result set began since the last DONE
	out     Outcome
	sspi    []byte
}

// maxPending bounds how much of a single token a ReplyScanner holds while
// waiting for the rest (one row, or one large value).
const maxPending = 32 << 20

// ReplyScanner follows the server's replies packet by packet without
// holding a whole reply: it keeps only an unfinished token.
type ReplyScanner struct {
	st      tokenState
	pending []byte
}

// NewReplyScanner follows replies in the token layout of TDS version v
// (the one the login was accepted at).
func NewReplyScanner(v Version) *ReplyScanner { return &ReplyScanner{st: tokenState{v: v}} }

// Feed reads the payload of one reply packet.
func (s *ReplyScanner) Feed(p []byte) {
	if s.st.out.Incomplete {
		return
	}
	data := p
	if len(s.pending) > 0 {
		s.pending = append(s.pending, p...)
		data = s.pending
	}
	c := &cursor{b: data}
	for c.i < len(data) {
		start := c.i
		if _, err := s.st.next(c); err != nil {
			if errors.Is(err, errShort) && len(data)-start <= maxPending {
				s.pending = append(s.pending[:0], data[start:]...)
				return
			}
			s.st.out.Incomplete = true
			s.pending = s.pending[:0]
			return
		}
	}
	s.pending = s.pending[:0]
}

// Finish ends a reply message and returns its outcome.
func (s *ReplyScanner) Finish() Outcome {
	out := s.st.out
	if len(s.pending) > 0 {
		out.Incomplete = true
	}
	s.st.out, s.pending = Outcome{}, s.pending[:0]
	// Column metadata stays: a reply to a cursor fetch may reuse it.
	return out
}

// ReadReply reads a whole reply message in the token layout of TDS
// version v (the client's LOGIN7 version for a login reply; a LOGINACK
// switches to the version it names) and returns its outcome, and the
// payload with SSPI tokens removed when dropSSPI is set, and any SSPI
// token's data. It is for login replies, which are small.
func ReadReply(payload []byte, v Version, dropSSPI bool) (Outcome, []byte, []byte, error) {
	st := tokenState{v: v}
	c := &cursor{b: payload}
	kept := payload
	if dropSSPI {
		kept = make([]byte, 0, len(payload))
	}
	for c.i < len(payload) {
		start := c.i
		tok, err := st.next(c)
		if errors.Is(err, errShort) {
			err = fmt.Errorf("%w: reply ends inside a token", ErrMalformed)
		}
		if err != nil {
			return st.out, nil, nil, err
		}
		if dropSSPI && tok != TokenSSPI {
			kept = append(kept, payload[start:c.i]...)
		}
	}
	return st.out, kept, st.sspi, nil
}

// next reads one token and notes what it says.
func (st *tokenState) next(c *cursor) (byte, error) {
	tok, err := c.u8()
	if err != nil {
		return 0, err
	}
	switch tok {
	case TokenColMetadata:
		return tok, st.colMetadata(c)
	case TokenRow, TokenNBCRow:
		if st.cols == nil {
			return tok, fmt.Errorf("%w: row without column metadata", ErrMalformed)
		}
		var nulls []byte
		if tok == TokenNBCRow {
			if nulls, err = c.take((len(st.cols) + 7) / 8); err != nil {
				return tok, err
			}
		}
		for i, ti := range st.cols {
			if nulls != nil && nulls[i/8]&(1<<(i%8)) != 0 {
				continue
			}
			if _, _, err := readValue(c, ti, 0); err != nil {
				return tok, err
			}
		}
		st.out.RowsReturned++
		return tok, nil
	case TokenDone, TokenDoneProc, TokenDoneInProc:
		b, err := c.take(4 + st.v.rowCountSize())
		if err != nil {
			return tok, err
		}
		status := uint16(b[0]) | uint16(b[1])<<8
		if status&DoneCount != 0 && !st.hadMeta && tok != TokenDoneProc {
			var rows uint64
			for i := len(b) - 1; i >= 4; i-- {
				rows = rows<<8 | uint64(b[i])
			}
			st.out.RowsAffected += rows
		}
		if status&DoneAttn != 0 {
			st.out.Attention = true
		}
		st.hadMeta = false
		return tok, nil
	case TokenError, TokenInfo, TokenEnvChange, TokenLoginAck, TokenSSPI, TokenOrder, TokenTabName, TokenColInfo:
		n, err := c.u16()
		if err != nil {
			return tok, err
		}
		body, err := c.take(int(n))
		if err != nil {
			return tok, err
		}
		return tok, st.lengthed(tok, body)
	case TokenSessionState, TokenFedAuthInfo:
		n, err := c.u32()
		if err != nil {
			return tok, err
		}
		_, err = c.take(int(n))
		return tok, err
	case TokenReturnStatus:
		_, err := c.take(4)
		return tok, err
	case TokenReturnValue:
		if _, err := c.take(2); err != nil { // ordinal
			return tok, err
		}
		if _, err := c.bVarchar(); err != nil {
			return tok, err
		}
		if _, err := c.take(1 + st.v.userTypeSize() + 2); err != nil { // status, user type, flags
			return tok, err
		}
		ti, err := readTypeInfo(c)
		if err != nil {
			return tok, err
		}
		_, _, err = readValue(c, ti, 0)
		return tok, err
	case TokenFeatureExtAck:
		for {
			id, err := c.u8()
			if err != nil || id == 0xFF {
				return tok, err
			}
			n, err := c.u32()
			if err != nil {
				return tok, err
			}
			if _, err := c.take(int(n)); err != nil {
				return tok, err
			}
		}
	}
	return tok, fmt.Errorf("%w: token %#x", ErrMalformed, tok)
}

func (st *tokenState) colMetadata(c *cursor) error {
	n, err := c.u16()
	if err != nil {
		return err
	}
	st.hadMeta = true
	if n == 0xFFFF { // no metadata: the result set reuses earlier columns
		return nil
	}
	cols := make([]TypeInfo, 0, n)
	for i := 0; i < int(n); i++ {
		if _, err := c.take(st.v.userTypeSize()); err != nil {
			return err
		}
		flags, err := c.u16()
		if err != nil {
			return err
		}
		if flags&0x0800 != 0 {
			return fmt.Errorf("%w: encrypted columns (Always Encrypted) are not followed", ErrMalformed)
		}
		ti, err := readTypeInfo(c)
		if err != nil {
			return err
		}
		if ti.frame == frameText && st.v.Before72() { // the table name
			if _, err := c.usVarchar(); err != nil {
				return err
			}
		} else if ti.frame == frameText {
			parts, err := c.u8()
			if err != nil {
				return err
			}
			for j := 0; j < int(parts); j++ {
				if _, err := c.usVarchar(); err != nil {
					return err
				}
			}
		}
		if _, err := c.bVarchar(); err != nil {
			return err
		}
		cols = append(cols, ti)
	}
	st.cols = cols
	return nil
}

// lengthed notes what a token with a 16-bit length says.
func (st *tokenState) lengthed(tok byte, body []byte) error {
	switch tok {
	case TokenError:
		m, err := parseMessage(body)
		if err != nil {
			return err
		}
		st.out.Errors = append(st.out.Errors, m)
	case TokenEnvChange:
		if len(body) > 0 && body[0] == EnvDatabase {
			c := &cursor{b: body, i: 1}
			db, err := c.bVarchar()
			if err != nil {
				return fmt.Errorf("%w: ENVCHANGE", ErrMalformed)
			}
			st.out.Database = db
		}
	case TokenLoginAck:
		if len(body) < 5 {
			return fmt.Errorf("%w: LOGINACK of %d bytes", ErrMalformed, len(body))
		}
		// The rest of the reply is in the layout of the accepted version.
		st.v = Version(binary.BigEndian.Uint32(body[1:]))
		st.out.LoginAck, st.out.Version = true, st.v
	case TokenSSPI:
		st.sspi = append([]byte(nil), body...)
	}
	return nil
}

// parseMessage decodes an ERROR or INFO token's body.
func parseMessage(body []byte) (ServerMessage, error) {
	c := &cursor{b: body}
	var m ServerMessage
	var err error
	fail := func() (ServerMessage, error) { return m, fmt.Errorf("%w: ERROR/INFO token", ErrMalformed) }
	n, err := c.u32()
	if err != nil {
		return fail()
	}
	m.Number = int32(n)
	b, err := c.take(2)
	if err != nil {
		return fail()
	}
	m.State, m.Class = b[0], b[1]
	if m.Text, err = c.usVarchar(); err != nil {
		return fail()
	}
	if m.ServerName, err = c.bVarchar(); err != nil {
		return fail()
	}
	if m.ProcName, err = c.bVarchar(); err != nil {
		return fail()
	}
	// The body's length says which: 2 bytes before TDS 7.2, 4 from 7.2 on.
	switch len(body) - c.i {
	case 2:
		m.Line = int32(uint16(body[c.i]) | uint16(body[c.i+1])<<8)
	case 4:
		m.Line = int32(binary.LittleEndian.Uint32(body[c.i:]))
	default:
		return fail()
	}
	return m, nil
}
