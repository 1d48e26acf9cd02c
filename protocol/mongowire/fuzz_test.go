package mongowire

import (
	"bytes"
	"errors"
	"testing"

	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

func helloMsg() *Message {
	body := bsoncore.NewDocumentBuilder().AppendInt32("hello", 1).AppendString("$db", "admin").Build()
	insert := bsoncore.NewDocumentBuilder().AppendString("insert", "c").AppendString("$db", "test").Build()
	_ = insert
	m := &Msg{Body: body, Sequences: []Sequence{{Identifier: "documents", Documents: [][]byte{
		bsoncore.NewDocumentBuilder().AppendInt32("x", 1).Build(),
		bsoncore.NewDocumentBuilder().AppendString("y", "two").Build(),
	}}}}
	return &Message{Header: Header{RequestID: 7, OpCode: OpMsg}, Body: m.AppendBody(nil)}
}

func legacyQuery() *Message {
	q := []byte{0, 0, 0, 0}
	q = append(q, "admin.$cmd\x00"...)
	q = append(q, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff)
	q = append(q, bsoncore.NewDocumentBuilder().AppendInt32("isMaster", 1).Build()...)
	return &Message{Header: Header{RequestID: 1, OpCode: OpQuery}, Body: q}
}

func TestRoundTrip(t *testing.T) {
	m := helloMsg()
	enc := m.Append(nil)
	got, err := ReadMessage(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	if got.Header.RequestID != 7 || got.Header.OpCode != OpMsg || int(got.Header.Length) != len(enc) {
		t.Fatalf("header %+v", got.Header)
	}
	msg, err := ParseMsg(got.Body)
	if err != nil {
		t.Fatal(err)
	}
	if bsoncore.Document(msg.Body).Lookup("hello").Int32() != 1 || len(msg.Sequences) != 1 || len(msg.Sequences[0].Documents) != 2 {
		t.Fatalf("msg %+v", msg)
	}
	if !bytes.Equal(msg.AppendBody(nil), got.Body) {
		t.Fatal("OP_MSG re-encoding differs")
	}
	q, err := ParseQuery(legacyQuery().Body)
	if err != nil || q.Collection != "admin.$cmd" || q.Return != -1 {
		t.Fatalf("query %+v %v", q, err)
	}
	if !bytes.Equal(q.AppendBody(nil), legacyQuery().Body) {
		t.Fatal("OP_QUERY re-encoding differs")
	}
	r := &Reply{CursorID: 0, Documents: [][]byte{bsoncore.NewDocumentBuilder().AppendDouble("ok", 1).Build()}}
	back, err := ParseReply(r.AppendBody(nil))
	if err != nil || len(back.Documents) != 1 {
		t.Fatalf("reply %+v %v", back, err)
	}
}

func TestRejects(t *testing.T) {
	big := (&Message{Header: Header{OpCode: OpMsg}}).Append(nil)
	big[3] = 0x7f // length far past the maximum
	if _, err := ReadMessage(bytes.NewReader(big)); !errors.Is(err, ErrLength) {
		t.Fatalf("huge length: %v", err)
	}
	for _, body := range [][]byte{
		{0, 0, 0, 0},                         // no sections
		{0, 0, 0, 0, 0, 5, 0, 0, 0},          // truncated document
		{0, 0, 0, 0, 9},                      // unknown section kind
		{0, 0, 0, 0, 1, 0xff, 0xff, 0, 0, 0}, // sequence larger than the message
	} {
		if _, err := ParseMsg(body); err == nil {
			t.Errorf("OP_MSG %x accepted", body)
		}
	}
	if _, err := ParseReply([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0}); err == nil {
		t.Error("OP_REPLY claiming 5 documents with none accepted")
	}
}

func FuzzReadMessage(f *testing.F) {
	f.Add(helloMsg().Append(nil))
	f.Add(legacyQuery().Append(nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		switch m.Header.OpCode {
		case OpMsg:
			if msg, err := ParseMsg(m.Body); err == nil {
				if _, err := ParseMsg(msg.AppendBody(nil)); err != nil {
					t.Fatalf("re-encoded OP_MSG does not parse: %v", err)
				}
			}
		case OpQuery:
			ParseQuery(m.Body)
		case OpReply:
			if r, err := ParseReply(m.Body); err == nil {
				if _, err := ParseReply(r.AppendBody(nil)); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
