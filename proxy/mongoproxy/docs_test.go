package mongoproxy

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/pamd/pamd/protocol/mongowire"
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
	big := strings.Repeat("z", 5000)
	body := bsoncore.NewDocumentBuilder().AppendString("insert", "c").
		AppendDocument("nested", bsoncore.NewDocumentBuilder().AppendString("s", big).Build()).
		AppendString("$db", "d").Build()
	seq := []mongowire.Sequence{{Identifier: "documents", Documents: [][]byte{bsoncore.NewDocumentBuilder().AppendString("blob", big).Build()}}}
	s := summarize(body, seq)
	if strings.Contains(s, strings.Repeat("z", 1100)) || !strings.Contains(s, "…(5000 bytes)") || !strings.Contains(s, "+documents: 1 documents") {
		t.Fatalf("summary: %.300s", s)
	}
}

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
