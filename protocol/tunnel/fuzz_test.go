package tunnel

import (
	"bytes"
	"testing"
)

func FuzzReadHeader(f *testing.F) {
	for _, k := range []Kind{KindAccess, KindDial, KindControl, KindHello, KindProbe, KindNotice, KindRecord, KindRotate, KindRenew, KindWatch, KindDBCert, KindRenewNow} {
		h, _ := NewHeader(k, Descriptor{SessionID: "s", Target: "127.0.0.1:22", Protocol: "tcp"})
		f.Add(h.Append(nil))
	}
	// Descriptors with each protocol's part.
	for _, d := range []Descriptor{
		{SessionID: "s", Protocol: ProtocolTCP, Target: "127.0.0.1:7", TCP: &TCPTarget{}},
		{SessionID: "s", Protocol: ProtocolSSH, Target: "127.0.0.1:22", SSH: &SSHTarget{Login: Login{Username: "root", Password: "pw"}, Auth: "password", HostKey: "ssh-ed25519 AAAA"}},
		{SessionID: "s", Protocol: ProtocolMongo, Target: "db:27017", Mongo: &MongoTarget{Login: Login{Username: "app"}, URI: "mongodb://db:27017", AuthDatabase: "admin", TargetTLS: TargetTLS{TLS: true}}},
		{SessionID: "s", Protocol: ProtocolMSSQL, Target: "sql:1433", MSSQL: &MSSQLTarget{Login: Login{Username: "sa"}, Auth: "kerberos", Realm: "EXAMPLE.COM", SPN: "MSSQLSvc/sql:1433"}},
		{SessionID: "s", Protocol: ProtocolPostgres, Target: "pg:5432", Postgres: &PostgresTarget{Login: Login{Username: "app"}, Database: "orders", TargetTLS: TargetTLS{TLS: true, TLSRejectUnauthorized: true}}},
	} {
		h, _ := NewHeader(KindDial, d)
		f.Add(h.Append(nil))
	}
	f.Add([]byte("PAMD\x01\x01\x00\x00\x00\x02{}"))
	f.Add([]byte("PAMD\x01\x01\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := ReadHeader(bytes.NewReader(in))
		if err != nil {
			return
		}
		// Whatever was accepted must encode back to the bytes it came from.
		if got := h.Append(nil); !bytes.Equal(got, in[:len(got)]) {
			t.Fatalf("re-encoding differs: %q vs %q", got, in)
		}
		var d Descriptor
		if h.Decode(&d) == nil {
			_ = d.Secrets()
			_ = d.String()
		}
	})
}

func FuzzReadReply(f *testing.F) {
	f.Add(OK().Append(nil))
	f.Add(Refuse("session expired").Append(nil))
	f.Add([]byte{1, 1, 0xff, 0xff})
	f.Add(TargetFailed(ReasonHostKeyMismatch, "host key mismatch for resource box").Append(nil))
	f.Add([]byte{1, 2, 0, 0, 9})
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := ReadReply(bytes.NewReader(in))
		if err != nil {
			return
		}
		if got := r.Append(nil); !bytes.Equal(got, in[:len(got)]) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzReadMessage(f *testing.F) {
	b, _ := (&Message{Type: MsgEnded, Reason: "expired"}).Append(nil)
	f.Add(b)
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := ReadMessage(bytes.NewReader(in))
		if err != nil {
			return
		}
		if _, err := m.Append(nil); err != nil {
			t.Fatalf("accepted message does not encode: %v", err)
		}
	})
}

// Unbatch takes any record: it never panics, never returns a batch, and
// what it returns belongs to the batch's session and connection.
func FuzzUnbatch(f *testing.F) {
	f.Add(`[{"time":"2026-12-02T08:00:00Z","type":"query","command":"SELECT 1"},{"type":"execute"}]`)
	f.Add(`[{"type":"batch","data":"[]"}]`)
	f.Add(`[]`)
	f.Add(`{`)
	f.Fuzz(func(t *testing.T, data string) {
		got, err := Unbatch(Record{Type: RecordBatch, SessionID: "s", ConnectionID: "c", Data: data})
		if err != nil {
			return
		}
		for _, r := range got {
			if r.Type == RecordBatch || r.SessionID != "s" || r.ConnectionID != "c" {
				t.Fatalf("unbatched %+v", r)
			}
		}
	})
}
