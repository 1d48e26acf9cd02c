package hub

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/store"
)

// recordsFixture is a hub with one session on resource box, whose
// connection c1 gateway gwa served; box has since moved to gateway gwb.
// stream is a record stream from gwa, served by serveRecords.
type recordsFixture struct {
	h       *Hub
	st      *store.Store
	session string
	stream  *yamux.Stream
}

func newRecordsFixture(t *testing.T) *recordsFixture {
	t.Helper()
	h, st, _ := testHub(t, nil)
	res := &store.Resource{ID: store.NewID(), Name: "box-" + store.NewID(), Type: "ssh", Gateway: "gwa", Host: "10.0.0.5", Port: 22}
	sess := &store.Session{ID: store.NewID(), ResourceID: res.ID, ResourceName: res.Name, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	err := st.Update(func(tx *store.Tx) error {
		if err := tx.CreateResource(res); err != nil {
			return err
		}
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		return tx.PutConnection(&store.Connection{ID: "c1", SessionID: sess.ID, Gateway: "gwa", StartedAt: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	// The resource moves to another gateway while gwa still holds records.
	err = st.Update(func(tx *store.Tx) error {
		res.Gateway = "gwb"
		return tx.PutResource(res)
	})
	if err != nil {
		t.Fatal(err)
	}

	rs := openRecordStream(t, h, "gwa", "")
	return &recordsFixture{h: h, st: st, session: sess.ID, stream: rs}
}

// openRecordStream connects gateway name (of group) to h and opens a
// record stream from it, served by serveRecords.
func openRecordStream(t *testing.T, h *Hub, name, group string) *yamux.Stream {
	t.Helper()
	srv, cli := connectGateway(t, h, name, group)
	go func() {
		st, err := srv.AcceptStream()
		if err == nil {
			h.serveRecords(name, st)
		}
	}()
	rs, err := cli.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	rs.SetDeadline(time.Now().Add(20 * time.Second))
	if r, err := tunnel.ReadReply(rs); err != nil || r.Err() != nil {
		t.Fatalf("record stream: %v %v", r, err)
	}
	return rs
}

// connectGateway registers a connection of gateway name (of group) with h:
// the hub's end of its yamux session, and the gateway's.
func connectGateway(t *testing.T, h *Hub, name, group string) (srv, cli *yamux.Session) {
	t.Helper()
	a, b := net.Pipe()
	srv, err := proxy.YamuxServer(a)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = proxy.YamuxClient(b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close(); srv.Close() })
	h.mu.Lock()
	h.gw[name] = &gatewayConn{name: name, group: group, sess: srv}
	h.mu.Unlock()
	return srv, cli
}

func (f *recordsFixture) send(t *testing.T, typ string, detail any) *tunnel.Message {
	t.Helper()
	raw, _ := json.Marshal(detail)
	if _, err := (&tunnel.Message{Type: typ, Detail: raw}).WriteTo(f.stream); err != nil {
		t.Fatal(err)
	}
	if typ != tunnel.MsgRecords {
		return nil
	}
	m, err := tunnel.ReadMessage(f.stream)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (f *recordsFixture) stored(t *testing.T) map[uint64]tunnel.Record {
	t.Helper()
	out := map[uint64]tunnel.Record{}
	f.st.View(func(tx *store.Tx) error {
		raws, err := tx.Recordings(f.session)
		for _, raw := range raws {
			var r tunnel.Record
			json.Unmarshal(raw, &r)
			out[r.Seq] = r
		}
		return err
	})
	return out
}

func (f *recordsFixture) audited(t *testing.T, action string) []string {
	t.Helper()
	var out []string
	f.st.View(func(tx *store.Tx) error {
		return tx.AuditEvents(func(ev *store.AuditEvent) bool {
			if ev.Action == action {
				out = append(out, ev.Actor+" "+ev.Target+" "+ev.Detail)
			}
			return true
		})
	})
	return out
}

// TestRecordsOfAMovedResourceAreKept: records come from the gateway that
// served their connection, whatever gateway the resource names now; those
// of a connection it did not serve are still dropped.
func TestRecordsOfAMovedResourceAreKept(t *testing.T) {
	f := newRecordsFixture(t)
	m := f.send(t, tunnel.MsgRecords, []tunnel.Record{
		{Seq: 1, SessionID: f.session, ConnectionID: "c1", Type: "o", Data: "served by gwa"},
		{Seq: 2, SessionID: f.session, ConnectionID: "c1", Type: "exit", Status: new(int)},
		{Seq: 3, SessionID: f.session, ConnectionID: "not-gwas", Type: "o", Data: "not served by gwa"},
	})
	if m.Type != tunnel.MsgAck || !strings.Contains(string(m.Detail), `"seq":3`) {
		t.Fatalf("answer %s %s", m.Type, m.Detail)
	}
	got := f.stored(t)
	if got[1].Data != "served by gwa" || got[2].Type != "exit" {
		t.Fatalf("records of the moved resource's connection were not kept: %+v", got)
	}
	if _, ok := got[3]; ok {
		t.Fatal("a record of a connection the gateway did not serve was kept")
	}
}

// TestRecordBatchRefusalsAndDropsAreAudited: a batch the server cannot
// read is refused with a reason and audited; a record the gateway could not
// upload ("dropped") is stored and audited; the reported backlog is kept.
func TestRecordBatchRefusalsAndDropsAreAudited(t *testing.T) {
	f := newRecordsFixture(t)
	f.send(t, tunnel.MsgBacklog, tunnel.Backlog{Records: 7, Bytes: 12345})
	m := f.send(t, tunnel.MsgRecords, []tunnel.Record{{Seq: 4, SessionID: f.session, ConnectionID: "c1", Type: "dropped", Op: "exec", Size: 6 << 20,
		Data: "a exec record of 6291456 bytes encoded was too large to upload; the gateway keeps it in records.dead"}})
	if m.Type != tunnel.MsgAck {
		t.Fatalf("answer %s %s", m.Type, m.Detail)
	}
	if got := f.stored(t); got[4].Type != "dropped" {
		t.Fatalf("the dropped record was not stored: %+v", got)
	}
	if a := f.audited(t, "session.record_dropped"); len(a) != 1 || !strings.Contains(a[0], "gateway:gwa "+f.session) || !strings.Contains(a[0], "too large") {
		t.Fatalf("session.record_dropped audit: %q", a)
	}
	if b := f.h.Backlog("gwa"); b == nil || b.Records != 7 || b.Bytes != 12345 {
		t.Fatalf("backlog %+v", b)
	}

	m = f.send(t, tunnel.MsgRecords, map[string]int{"not": 1})
	if m.Type != tunnel.MsgRefused || !strings.Contains(m.Reason, "malformed") {
		t.Fatalf("answer to a malformed batch: %s %q", m.Type, m.Reason)
	}
	if a := f.audited(t, "gateway.records_rejected"); len(a) != 1 || !strings.Contains(a[0], "gateway:gwa gwa malformed record batch") {
		t.Fatalf("gateway.records_rejected audit: %q", a)
	}
}
