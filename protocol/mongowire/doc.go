// Package mongowire reads and writes MongoDB wire protocol messages
// (mongodb.com/docs/manual/reference/mongodb-wire-protocol): the 16-byte
// header (messageLength, requestID, responseTo, opCode, little endian) and
// the bodies pamd needs to look into:
//
//	OP_MSG (2013)        flagBits, sections (kind 0: one document; kind 1:
//	                     size, identifier, documents), optional CRC-32C
//	OP_QUERY (2004)      legacy: only hello/isMaster from old clients
//	OP_REPLY (1)         legacy reply to OP_QUERY
//	OP_COMPRESSED (2012) recognised, never negotiated by pamd
//
// Documents stay raw BSON (bsoncore); this package only frames them and
// checks each length against the bytes that hold it.
//
// Files: wire.go (Header, Message, ReadMessage), msg.go (OP_MSG), legacy.go
// (OP_QUERY, OP_REPLY), fuzz_test.go.
package mongowire
