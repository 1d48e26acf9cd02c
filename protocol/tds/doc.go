// Package tds reads and writes the Tabular Data Stream messages that open a
// SQL Server connection, as specified by [MS-TDS]
// (learn.microsoft.com/openspecs/windows_protocols/ms-tds):
//
//   - 2.2.3.1 packet header: Type, Status (bit 0x01 ends a message), Length
//     (big endian, header included), SPID, PacketID, Window; a message is the
//     payloads of its packets up to the one with end-of-message set.
//   - 2.2.6.5 PRELOGIN: option tokens (token, offset, length; big endian)
//     ended by 0xFF, then the option data.
//   - 2.2.6.4 LOGIN7: a fixed 94-byte part (little endian) of versions,
//     flags and offset/length pairs into the variable part, where strings
//     are UTF-16LE and the password is obfuscated (nibbles swapped, then
//     XOR 0xA5). The SSPI blob may be longer than 64 KiB (cbSSPILong).
//     Strings are at most 128 characters (AtchDBFile 260); ParseLogin7
//     refuses longer ones and fields that overlap, Append refuses them and
//     any offset or length past 16 bits, so no field can wrap onto another.
//
// Readers check every length against the bytes that hold it before using
// it, and never allocate more than a message's bound.
//
//   - 2.2.7 token stream: types.go reads every TYPE_INFO framing
//     (2.2.5.4) so scan.go can step over rows; ReplyScanner follows a
//     reply packet by packet, ReadReply reads a whole (login) reply.
//
//   - 2.2.6.6 RPC requests: rpc.go (ParseRPC).
//
//   - Versions (version.go): tokens are laid out by the TDS version the
//     login was accepted at. 7.0 and 7.1 have a 4-byte row count in DONE,
//     DONEPROC and DONEINPROC, a 2-byte UserType in COLMETADATA and
//     RETURNVALUE, a 2-byte line number in ERROR and INFO and a text
//     column's table name as one US_VARCHAR; 7.2 and later (8.0 too) have
//     8, 4 and 4 bytes and NumParts. Readers take the version (a LOGINACK
//     switches to the one it names); writers take it and refuse a value
//     the version's field cannot hold. LOGIN7's fExtension exists from 7.4.
//
// Files: packet.go (Header, ReadPacket, ReadMessage, WriteMessage),
// prelogin.go (Prelogin), login7.go (Login7, WithoutFeatures,
// SecretForms), version.go (Version), tlsconn.go
// (TLS inside PRELOGIN), tokens.go (token writers, Tokens, BatchText), types.go,
// scan.go, rpc.go, fuzz_test.go.
package tds
