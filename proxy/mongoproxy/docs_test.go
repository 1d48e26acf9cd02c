package mongoproxy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/pamd/pamd/protocol/mongowire"
	pamdproxy "github.com/pamd/pamd/proxy"
)

func TestSanitizeHello(t *testing.T) {
	in := bsoncore.NewDocumentBuilder().
		AppendBoolean("isWritablePrimary", true).
		AppendArray("saslSupportedMechs", bsoncore.NewArrayBuilder().AppendString("SCRAM-SHA-256").Build()).
		AppendDocument("speculativeAuthenticate", bsoncore.NewDocumentBuilder().Build()).
		AppendArray("hosts", bsoncore.NewArrayBuilder().AppendString("10.0.0.5:27017").Build()).
		AppendString("setName", "rs0").
		AppendDocument("topologyVersion", bsoncore.NewDocumentBuilder().Build()).
		AppendArray("compression", bsoncore.NewArrayBuilder().AppendString("zstd").Build()).
		AppendInt32("maxWireVersion", 21).
		Build()
	out := sanitizeHello(in)
	for _, gone := range []string{"saslSupportedMechs", "speculativeAuthenticate", "hosts", "setName", "topologyVersion", "compression"} {
		if _, err := out.LookupErr(gone); err == nil {
			t.Errorf("%s kept", gone)
		}
	}
	if out.Lookup("maxWireVersion").Int32() != 21 || !out.Lookup("isWritablePrimary").Boolean() {
		t.Fatal("the rest of hello was lost")
	}
}

func TestSummarizeCutsLongValues(t *testing.T) {
	big := strings.Repeat("z", 100<<10)
	body := bsoncore.NewDocumentBuilder().AppendString("insert", "c").
		AppendDocument("nested", bsoncore.NewDocumentBuilder().AppendString("s", big+"; evil").Build()).
		AppendBinary("bin", 0, make([]byte, 40<<10)).
		AppendString("$db", "d").Build()
	seq := []mongowire.Sequence{{Identifier: "documents", Documents: [][]byte{bsoncore.NewDocumentBuilder().AppendString("blob", "q"+big).Build()}}}
	s, cut := summarize(body, seq)
	if strings.Contains(s, strings.Repeat("z", 70<<10)) || !strings.Contains(s, fmt.Sprintf(" of %d bytes; sha256 %s", len(big)+6, sum(big+"; evil"))) ||
		!strings.Contains(s, "z; evil") || !strings.Contains(s, "(binary, 40960 bytes, sha256 ") || !strings.Contains(s, `+documents: 1 documents, first {"blob":"qzzz`) || !strings.Contains(s, fmt.Sprintf(" of %d bytes; sha256 %s", len(big)+1, sum("q"+big))) {
		t.Fatalf("summary: %.300s", s)
	}
	if cut == nil || cut.Values != 3 || cut.Field != "" {
		t.Fatalf("cut: %+v", cut)
	}
}

// TestSummarizePaddedCommand: a command padded past the log's bound with
// many values, each under the value bound, keeps its end (the operator
// that matters) and the whole summary's length and hash.
func TestSummarizePaddedCommand(t *testing.T) {
	arr := bsoncore.NewArrayBuilder()
	for i := 0; i < 64; i++ {
		arr.AppendString(strings.Repeat("p", 60<<10))
	}
	body := bsoncore.NewDocumentBuilder().AppendString("update", "users").
		AppendArray("pad", arr.Build()).
		AppendDocument("u", bsoncore.NewDocumentBuilder().AppendDocument("$set", bsoncore.NewDocumentBuilder().AppendString("role", "root").Build()).Build()).
		Build()
	s, cut := summarize(body, nil)
	if !strings.HasPrefix(s, `{"update":"users","pad":["ppp`) || !strings.HasSuffix(s, `"u":{"$set":{"role":"root"}}}`) {
		t.Fatalf("summary: %.80q … %q", s, s[len(s)-80:])
	}
	whole, _ := bson.MarshalExtJSON(bson.Raw(body), false, false)
	if cut == nil || cut.Field != "data" || cut.Length != int64(len(whole)) || cut.SHA256 != sum(string(whole)) {
		t.Fatalf("cut: %+v (want length %d)", cut, len(whole))
	}
	if js, _ := json.Marshal(s); len(js) > pamdproxy.LogTextMax {
		t.Fatalf("%d JSON bytes", len(js))
	}
}

func sum(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }

func TestOutcome(t *testing.T) {
	cursor := bsoncore.NewDocumentBuilder().AppendDocument("cursor", bsoncore.NewDocumentBuilder().
		AppendArray("firstBatch", bsoncore.NewArrayBuilder().AppendInt32(1).AppendInt32(2).Build()).Build()).
		AppendDouble("ok", 1).Build()
	if ok, msg, _, docs := outcome(cursor); !ok || msg != "" || docs != 2 {
		t.Fatalf("cursor reply: %v %q %d", ok, msg, docs)
	}
	we := bsoncore.NewDocumentBuilder().AppendInt32("n", 0).AppendArray("writeErrors", bsoncore.NewArrayBuilder().
		AppendDocument(bsoncore.NewDocumentBuilder().AppendInt32("code", 11000).AppendString("errmsg", "duplicate key").Build()).Build()).
		AppendDouble("ok", 1).Build()
	if _, msg, code, _ := outcome(we); msg != "duplicate key" || code != 11000 {
		t.Fatalf("write error: %q %d", msg, code)
	}
	if ok, msg, code, _ := outcome(errorDoc(18, "AuthenticationFailed", "no")); ok || msg != "no" || code != 18 {
		t.Fatal("error reply")
	}
}
