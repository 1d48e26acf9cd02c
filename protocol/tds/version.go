package tds

import "fmt"

// Version is a TDS protocol version as LOGIN7 (little endian) and
// LOGINACK (big endian) carry it (MS-TDS 2.2.6.4, 2.2.7.14).
type Version uint32

// The versions clients send and servers answer.
const (
	Version70     Version = 0x70000000
	Version71     Version = 0x71000000
	Version71Rev1 Version = 0x71000001
	Version72     Version = 0x72090002
	Version73A    Version = 0x730A0003
	Version73B    Version = 0x730B0003
	Version74     Version = 0x74000004
	// Version80 is what a client sends in LOGIN7 under TDS 8.0 (strict
	// encryption: TLS before PRELOGIN); the tokens are those of 7.4.
	Version80 Version = 0x08000000
)

// Before72 reports whether v lays tokens out as TDS 7.0 and 7.1 do: a
// 4-byte row count in DONE, DONEPROC and DONEINPROC (8 bytes from 7.2 on),
// a 2-byte UserType in COLMETADATA and RETURNVALUE (4 bytes from 7.2 on),
// and a text column's table name as one US_VARCHAR (NumParts and parts
// from 7.2 on). Every other version, the zero Version included, uses the
// 7.2+ layout.
func (v Version) Before72() bool {
	major := byte(v >> 24)
	return major == 0x70 || major == 0x71
}

// Before74 reports whether v predates TDS 7.4, where LOGIN7's fExtension
// (FeatureExt) begins. TDS 8.0 has it.
func (v Version) Before74() bool { return v != Version80 && v < 0x74000000 }

// rowCountSize is the size of a DONE token's row count.
func (v Version) rowCountSize() int {
	if v.Before72() {
		return 4
	}
	return 8
}

// userTypeSize is the size of a UserType in COLMETADATA and RETURNVALUE.
func (v Version) userTypeSize() int {
	if v.Before72() {
		return 2
	}
	return 4
}

// Answer is the version a server that speaks at most TDS 7.4 answers in
// LOGINACK to a client's LOGIN7 version: the client's own when the server
// knows it, else the highest it knows below it; TDS 8.0 is answered as 7.4,
// whose tokens it uses.
func (v Version) Answer() Version {
	switch {
	case v == Version80 || v >= Version74:
		return Version74
	case v >= Version73B:
		return Version73B
	case v >= Version73A:
		return Version73A
	case v >= Version72:
		return Version72
	case v >= Version71Rev1:
		return Version71Rev1
	case v >= Version71:
		return Version71
	}
	return Version70
}

func (v Version) String() string {
	switch v {
	case Version70:
		return "7.0"
	case Version71, Version71Rev1:
		return "7.1"
	case Version72:
		return "7.2"
	case Version73A:
		return "7.3A"
	case Version73B:
		return "7.3B"
	case Version74:
		return "7.4"
	case Version80:
		return "8.0"
	}
	return fmt.Sprintf("%#08x", uint32(v))
}
