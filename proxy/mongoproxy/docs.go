package mongoproxy

import (
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/pamd/pamd/protocol/mongowire"
)

// helloDropped are the hello/isMaster reply fields a pamd client must not
// see: the ones that start authentication, compression or streaming, and
// the replica set's members, which the client could not reach.
var helloDropped = map[string]bool{
	"saslSupportedMechs": true, "speculativeAuthenticate": true, "compression": true, "topologyVersion": true,
	"hosts": true, "passives": true, "arbiters": true, "setName": true, "setVersion": true, "primary": true,
	"me": true, "electionId": true, "tags": true, "isreplicaset": true, "secondary": true, "arbiterOnly": true, "hidden": true,
}

func isHello(name string) bool {
	switch strings.ToLower(name) {
	case "hello", "ismaster":
		return true
	}
	return false
}

// authCommands are answered by pamd, which has logged in already.
var authCommands = map[string]bool{
	"saslstart": true, "saslcontinue": true, "authenticate": true, "logout": true, "getnonce": true,
	"copydbsaslstart": true, "copydbgetnonce": true,
}

// helloRequestDropped are the fields of a client's hello the server must
// not see on a connection pamd already opened and authenticated: client
// metadata (only allowed in a connection's first hello), authentication and
// compression negotiation.
var helloRequestDropped = map[string]bool{
	"client": true, "speculativeAuthenticate": true, "saslSupportedMechs": true, "compression": true,
}

// sanitizeHello returns doc without the fields in helloDropped.
func sanitizeHello(doc bsoncore.Document) bsoncore.Document { return without(doc, helloDropped) }

// without returns doc without the named top-level fields.
func without(doc bsoncore.Document, drop map[string]bool) bsoncore.Document {
	elems, err := doc.Elements()
	if err != nil {
		return doc
	}
	idx, out := bsoncore.AppendDocumentStart(nil)
	for _, e := range elems {
		if !drop[e.Key()] {
			out = append(out, e...)
		}
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}

// errorDoc is a command reply that fails with a pamd message.
func errorDoc(code int32, codeName, msg string) bsoncore.Document {
	return bsoncore.NewDocumentBuilder().
		AppendDouble("ok", 0).
		AppendString("errmsg", msg).
		AppendInt32("code", code).
		AppendString("codeName", codeName).
		Build()
}

// replyTo wraps a reply document in the shape the request expects: an
// OP_MSG for OP_MSG, an OP_REPLY for a legacy OP_QUERY.
func replyTo(req *mongowire.Message, doc bsoncore.Document) []byte {
	m := &mongowire.Message{Header: mongowire.Header{RequestID: req.Header.RequestID + 1<<20, ResponseTo: req.Header.RequestID}}
	if req.Header.OpCode == mongowire.OpQuery {
		m.Header.OpCode = mongowire.OpReply
		m.Body = (&mongowire.Reply{Documents: [][]byte{doc}}).AppendBody(nil)
	} else {
		m.Header.OpCode = mongowire.OpMsg
		m.Body = (&mongowire.Msg{Body: doc}).AppendBody(nil)
	}
	return m.Append(nil)
}

// maxValue is the longest value kept whole in a logged command document.
const maxValue = 1024

// summarize renders a command for the log: JSON with long values cut, and
// document sequences counted rather than copied.
func summarize(body bsoncore.Document, seqs []mongowire.Sequence) string {
	cut := cutLong(body)
	var sb strings.Builder
	js, err := bson.MarshalExtJSON(bson.Raw(cut), false, false)
	if err != nil {
		sb.WriteString("{}")
	} else {
		sb.Write(js)
	}
	for _, s := range seqs {
		fmt.Fprintf(&sb, " +%s: %d documents", s.Identifier, len(s.Documents))
		if len(s.Documents) > 0 {
			if first, err := bson.MarshalExtJSON(bson.Raw(cutLong(s.Documents[0])), false, false); err == nil && len(first) <= 4*maxValue {
				fmt.Fprintf(&sb, ", first %s", first)
			}
		}
	}
	out := sb.String()
	if len(out) > 16*maxValue {
		out = out[:16*maxValue] + "…(cut)"
	}
	return out
}

// cutLong copies doc with strings and binaries over maxValue replaced by a
// note of their size, recursing into documents and arrays.
func cutLong(doc bsoncore.Document) bsoncore.Document {
	elems, err := doc.Elements()
	if err != nil {
		return bsoncore.NewDocumentBuilder().AppendString("$pamd", "unreadable document").Build()
	}
	idx, out := bsoncore.AppendDocumentStart(nil)
	for _, e := range elems {
		v := e.Value()
		key := e.Key()
		switch v.Type {
		case bsoncore.TypeString:
			if s := v.StringValue(); len(s) > maxValue {
				out = bsoncore.AppendStringElement(out, key, fmt.Sprintf("%s…(%d bytes)", s[:maxValue], len(s)))
				continue
			}
		case bsoncore.TypeBinary:
			if _, data := v.Binary(); len(data) > maxValue {
				out = bsoncore.AppendStringElement(out, key, fmt.Sprintf("(binary, %d bytes)", len(data)))
				continue
			}
		case bsoncore.TypeEmbeddedDocument:
			out = bsoncore.AppendDocumentElement(out, key, cutLong(v.Document()))
			continue
		case bsoncore.TypeArray:
			out = bsoncore.AppendArrayElement(out, key, bsoncore.Array(cutLong(bsoncore.Document(v.Array()))))
			continue
		}
		out = append(out, e...)
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}

// outcome reads a reply document: ok, the error, and how many documents it
// returned or affected.
func outcome(doc bsoncore.Document) (ok bool, errmsg string, code int, docs int64) {
	if v, err := doc.LookupErr("ok"); err == nil {
		switch v.Type {
		case bsoncore.TypeDouble:
			ok = v.Double() == 1
		case bsoncore.TypeInt32:
			ok = v.Int32() == 1
		case bsoncore.TypeInt64:
			ok = v.Int64() == 1
		case bsoncore.TypeBoolean:
			ok = v.Boolean()
		}
	}
	if s, found := doc.Lookup("errmsg").StringValueOK(); found {
		errmsg = s
	}
	if c, found := doc.Lookup("code").AsInt64OK(); found {
		code = int(c)
	}
	if we, err := doc.LookupErr("writeErrors"); err == nil {
		if arr, found := we.ArrayOK(); found {
			if vals, err := arr.Values(); err == nil && len(vals) > 0 {
				if d, found := vals[0].DocumentOK(); found {
					errmsg, _ = d.Lookup("errmsg").StringValueOK()
					if c, found := d.Lookup("code").AsInt64OK(); found {
						code = int(c)
					}
				}
			}
		}
	}
	if n, found := doc.Lookup("n").AsInt64OK(); found {
		docs = n
	}
	if n, found := doc.Lookup("nModified").AsInt64OK(); found {
		docs = n
	}
	for _, batch := range []string{"firstBatch", "nextBatch"} {
		if arr, found := doc.Lookup("cursor", batch).ArrayOK(); found {
			if vals, err := arr.Values(); err == nil {
				docs = int64(len(vals))
			}
		}
	}
	return ok, errmsg, code, docs
}
