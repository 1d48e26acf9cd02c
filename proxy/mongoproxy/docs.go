package mongoproxy

import (
	"crypto/sha256"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/pamd/pamd/protocol/mongowire"
	"github.com/pamd/pamd/protocol/tunnel"
	pamdproxy "github.com/pamd/pamd/proxy"
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

// summarize renders a command for the log: JSON with long values cut in
// place and document sequences counted rather than copied (the first one
// shown), the whole within proxy.LogTextMax. Cut values keep their head
// and tail with their length and SHA-256 (proxy.Clip); the Cut says what
// was cut, or is nil.
func summarize(body bsoncore.Document, seqs []mongowire.Sequence) (string, *tunnel.Cut) {
	values := 0
	cut := cutLong(body, pamdproxy.LogValueMax, &values)
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
			// Its values get a quarter of the bound, so that their own
			// markers (length, hash) survive the document's.
			if first, err := bson.MarshalExtJSON(bson.Raw(cutLong(s.Documents[0], pamdproxy.LogValueMax/4, &values)), false, false); err == nil {
				text, c := pamdproxy.Clip(string(first), pamdproxy.LogValueMax)
				if c != nil {
					values++
				}
				fmt.Fprintf(&sb, ", first %s", text)
			}
		}
	}
	out, whole := pamdproxy.Clip(sb.String(), pamdproxy.LogTextMax)
	switch {
	case whole != nil:
		whole.Field, whole.Values = "data", values
	case values > 0:
		whole = &tunnel.Cut{Values: values}
	}
	return out, whole
}

// cutLong copies doc with strings over max JSON bytes cut (head, tail,
// length and hash) and binaries over half of it (base64 makes them longer)
// replaced by their size and hash, recursing into documents and arrays;
// values counts what it cut.
func cutLong(doc bsoncore.Document, max int, values *int) bsoncore.Document {
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
			if s, cut := pamdproxy.Clip(v.StringValue(), max); cut != nil {
				*values++
				out = bsoncore.AppendStringElement(out, key, s)
				continue
			}
		case bsoncore.TypeBinary:
			if _, data := v.Binary(); len(data) > max/2 {
				*values++
				out = bsoncore.AppendStringElement(out, key, fmt.Sprintf("(binary, %d bytes, sha256 %x)", len(data), sha256.Sum256(data)))
				continue
			}
		case bsoncore.TypeEmbeddedDocument:
			out = bsoncore.AppendDocumentElement(out, key, cutLong(v.Document(), max, values))
			continue
		case bsoncore.TypeArray:
			out = bsoncore.AppendArrayElement(out, key, bsoncore.Array(cutLong(bsoncore.Document(v.Array()), max, values)))
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
