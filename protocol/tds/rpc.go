package tds

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// RPC is one remote procedure call of an RPC request (MS-TDS 2.2.6.6).
type RPC struct {
	// Proc is the procedure's name, or for a well-known procedure sent by
	// number (ProcID), its name (sp_executesql, sp_prepare, ...).
	Proc   string
	ProcID uint16
	Params []RPCParam
	// Incomplete is set when a parameter could not be read (a table-valued
	// parameter, say); Params holds those before it.
	Incomplete bool
}

// RPCParam is one parameter; Value is shown as SQL would write it, cut to
// the bound ParseRPC was given.
type RPCParam struct {
	Name   string
	Output bool
	Value  string
}

// procNames are the procedures clients call by number (2.2.6.6).
var procNames = map[uint16]string{
	1: "sp_cursor", 2: "sp_cursoropen", 3: "sp_cursorprepare", 4: "sp_cursorexecute",
	5: "sp_cursorprepexec", 6: "sp_cursorunprepare", 7: "sp_cursorfetch", 8: "sp_cursoroption",
	9: "sp_cursorclose", 10: "sp_executesql", 11: "sp_prepare", 12: "sp_execute",
	13: "sp_prepexec", 14: "sp_prepexecrpc", 15: "sp_unprepare",
}

const (
	rpcBatchFlag  = 0x80 // separates calls in TDS 7.2+
	rpcNoExecFlag = 0xFF // TDS 7.1's separator
	typeTVP       = 0xF3
)

// ParseRPC decodes an RPC request payload. Parameter values longer than
// keep bytes are cut.
func ParseRPC(payload []byte, keep int) ([]RPC, error) {
	c := &cursor{b: payload}
	if len(payload) >= 4 {
		total := int(binary.LittleEndian.Uint32(payload))
		if total >= 4 && total <= len(payload) && total < 1<<16 && looksLikeHeaders(payload[:total]) {
			c.i = total
		}
	}
	var calls []RPC
	for c.i < len(c.b) {
		call, err := readCall(c, keep)
		if errors.Is(err, errShort) && call.Proc != "" {
			// A payload cut short (the caller kept only its start): what
			// was read stands.
			call.Incomplete = true
			return append(calls, call), nil
		}
		if errors.Is(err, errShort) {
			err = fmt.Errorf("%w: RPC ends inside a call", ErrMalformed)
		}
		if err != nil {
			return calls, err
		}
		calls = append(calls, call)
		if call.Incomplete {
			break
		}
	}
	if len(calls) == 0 {
		return nil, fmt.Errorf("%w: empty RPC", ErrMalformed)
	}
	return calls, nil
}

func readCall(c *cursor, keep int) (RPC, error) {
	var call RPC
	n, err := c.u16()
	if err != nil {
		return call, err
	}
	if n == 0xFFFF {
		if call.ProcID, err = c.u16(); err != nil {
			return call, err
		}
		call.Proc = procNames[call.ProcID]
		if call.Proc == "" {
			call.Proc = "procedure #" + strconv.Itoa(int(call.ProcID))
		}
	} else {
		b, err := c.take(2 * int(n))
		if err != nil {
			return call, err
		}
		call.Proc = decodeUTF16(b)
	}
	if _, err := c.take(2); err != nil { // option flags
		return call, err
	}
	for c.i < len(c.b) {
		if b := c.b[c.i]; b == rpcBatchFlag || b == rpcNoExecFlag {
			c.i++
			return call, nil
		}
		var p RPCParam
		if p.Name, err = c.bVarchar(); err != nil {
			return call, err
		}
		status, err := c.u8()
		if err != nil {
			return call, err
		}
		p.Output = status&0x01 != 0
		if c.i < len(c.b) && c.b[c.i] == typeTVP {
			call.Params = append(call.Params, p)
			call.Incomplete = true // table-valued parameters are not followed
			return call, nil
		}
		ti, err := readTypeInfo(c)
		if err != nil {
			return call, err
		}
		v, null, err := readValue(c, ti, keep+1)
		if err != nil {
			return call, err
		}
		cut := len(v) > keep
		if cut {
			v = v[:keep]
		}
		p.Value = showValue(ti, v, null)
		if cut {
			p.Value += "…"
		}
		call.Params = append(call.Params, p)
	}
	return call, nil
}
