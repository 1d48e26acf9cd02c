package hub

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/store"
)

func newTestHub(t *testing.T) *Hub {
	t.Helper()
	h, _, _ := testHub(t, nil)
	return h
}

// openStreams opens n streams on the hub's end of a gateway's session.
func openStreams(t *testing.T, sess *yamux.Session, n int) {
	t.Helper()
	for range n {
		st, err := sess.OpenStream()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
	}
}

// TestPickGoesToTheLeastBusyGatewayOfTheGroup: a group's resource goes to
// its connected gateway with the fewest streams (ties by name), never to a
// gateway of another group or none; with none connected, Pick says so. A
// resource on one gateway goes to that gateway.
func TestPickGoesToTheLeastBusyGatewayOfTheGroup(t *testing.T) {
	h := newTestHub(t)
	ga, _ := connectGateway(t, h, "ga", "dc2")
	gb, _ := connectGateway(t, h, "gb", "dc2")
	connectGateway(t, h, "gc", "dc3")
	connectGateway(t, h, "gd", "")
	res := &store.Resource{Name: "box", GatewayGroup: "dc2"}
	pick := func(want string) {
		t.Helper()
		if got, err := h.Pick(res); err != nil || got != want {
			t.Fatalf("Pick = %q, %v; want %q", got, err, want)
		}
	}
	pick("ga") // a tie: the first name
	openStreams(t, ga, 2)
	openStreams(t, gb, 1)
	pick("gb")
	openStreams(t, gb, 2)
	pick("ga")
	if got := h.Serving(res); !slices.Equal(got, []string{"ga", "gb"}) {
		t.Fatalf("Serving = %v", got)
	}
	ga.Close()
	pick("gb")
	gb.Close()
	if got, err := h.Pick(res); err == nil || h.Reachable(res) {
		t.Fatalf("with the group's gateways gone: Pick = %q, %v; Reachable %v", got, err, h.Reachable(res))
	}
	single := &store.Resource{Name: "one", Gateway: "gd"}
	if got, err := h.Pick(single); err != nil || got != "gd" || !h.Reachable(single) {
		t.Fatalf("Pick of a gateway's resource = %q, %v", got, err)
	}
}

// sendRecords sends a batch on a record stream and waits for the answer.
func sendRecords(t *testing.T, rs *yamux.Stream, recs []tunnel.Record) {
	t.Helper()
	raw, _ := json.Marshal(recs)
	if _, err := (&tunnel.Message{Type: tunnel.MsgRecords, Detail: raw}).WriteTo(rs); err != nil {
		t.Fatal(err)
	}
	if m, err := tunnel.ReadMessage(rs); err != nil || m.Type != tunnel.MsgAck {
		t.Fatalf("answer to a batch: %v %v", m, err)
	}
}

// TestRecordsOfAGroupResource: each gateway of the group has the records
// of the connections it served kept, numbered as it likes (both start at
// 1); a record of a connection another gateway served is dropped, as is
// one from a gateway outside the group. A connection neither recorded nor
// opened by the hub, or none, is refused from any of the group; one whose
// dial stream the hub opened is kept from that gateway only, before its
// record is committed. A gateway enrolled again numbers from 1 again: its records
// are new.
func TestRecordsOfAGroupResource(t *testing.T) {
	h := newTestHub(t)
	st := h.st
	res := &store.Resource{ID: store.NewID(), Name: "box", Type: "ssh", GatewayGroup: "dc2", Host: "10.0.0.5", Port: 22}
	sess := &store.Session{ID: store.NewID(), ResourceID: res.ID, ResourceName: res.Name, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	err := st.Update(func(tx *store.Tx) error {
		for name, group := range map[string]string{"ga": "dc2", "gb": "dc2", "gx": "dc3"} {
			if err := tx.CreateGateway(&store.Gateway{ID: store.NewID(), Name: name, Group: group}); err != nil {
				return err
			}
		}
		if err := tx.CreateResource(res); err != nil {
			return err
		}
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		for conn, gw := range map[string]string{"c1": "ga", "c2": "gb"} {
			if err := tx.PutConnection(&store.Connection{ID: conn, SessionID: sess.ID, Gateway: gw, StartedAt: time.Now()}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(seq uint64, conn, data string) tunnel.Record {
		return tunnel.Record{Seq: seq, SessionID: sess.ID, ConnectionID: conn, Type: "o", Data: data}
	}
	// c4's dial stream went to gb, its record not committed yet: the hub
	// remembered it when it opened the stream (OpenFor).
	h.opened.put("c4", "gb")
	sendRecords(t, openRecordStream(t, h, "ga", "dc2"), []tunnel.Record{rec(1, "c1", "ga c1"), rec(2, "c3", "ga c3 unknown"), rec(3, "c2", "ga not c2"),
		rec(4, "c4", "ga not c4"), rec(5, "", "ga no connection")})
	gb := openRecordStream(t, h, "gb", "dc2")
	sendRecords(t, gb, []tunnel.Record{rec(1, "c2", "gb c2"), rec(2, "c2", "gb c2 again"), rec(3, "c4", "gb c4")})
	sendRecords(t, gb, []tunnel.Record{rec(2, "c2", "gb c2 again")}) // its ack was lost
	sendRecords(t, openRecordStream(t, h, "gx", "dc3"), []tunnel.Record{rec(1, "c3", "gx c3")})
	err = st.Update(func(tx *store.Tx) error {
		g, err := tx.GatewayByName("gb")
		if err != nil {
			return err
		}
		g.EnrolledAt = time.Now()
		return tx.PutGateway(g)
	})
	if err != nil {
		t.Fatal(err)
	}
	sendRecords(t, gb, []tunnel.Record{rec(1, "c2", "gb c2 after enrolling again")})

	var got []string
	st.View(func(tx *store.Tx) error {
		raws, err := tx.Recordings(sess.ID)
		for _, raw := range raws {
			var r tunnel.Record
			json.Unmarshal(raw, &r)
			got = append(got, r.Data)
		}
		return err
	})
	if want := []string{"ga c1", "gb c2", "gb c2 again", "gb c4", "gb c2 after enrolling again"}; !slices.Equal(got, want) {
		t.Fatalf("stored %q, want %q", got, want)
	}
}

// TestOpenForTriesTheGroupsOthers: when the least busy gateway of the
// group cannot take a stream (it is going away: it sent GoAway), OpenFor
// opens one on the next instead of failing.
func TestOpenForTriesTheGroupsOthers(t *testing.T) {
	h := newTestHub(t)
	_, gaCli := connectGateway(t, h, "ga", "dc2")
	gb, _ := connectGateway(t, h, "gb", "dc2")
	openStreams(t, gb, 50) // busier than ga even with the streams the wait below opens
	res := &store.Resource{Name: "box", GatewayGroup: "dc2"}
	if got, _ := h.Pick(res); got != "ga" {
		t.Fatalf("Pick = %s, want ga", got)
	}
	gaCli.GoAway()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := h.Open("ga")
		if err != nil {
			break
		}
		st.Close()
		if time.Now().After(deadline) {
			t.Fatal("ga still takes streams after its GoAway")
		}
	}
	if got, _ := h.Pick(res); got != "ga" {
		t.Fatalf("Pick = %s, want ga (connected, the least busy)", got)
	}
	st, name, err := h.OpenFor(res, "c1")
	if err != nil || name != "gb" {
		t.Fatalf("OpenFor = %s, %v; want a stream to gb", name, err)
	}
	st.Close()
}

// answerNotices answers every notice stream on a gateway's end of its
// session, ok or refused, and counts them on told.
func answerNotices(t *testing.T, cli *yamux.Session, ok bool, told chan<- string, name string) {
	t.Helper()
	go func() {
		for {
			st, err := cli.AcceptStream()
			if err != nil {
				return
			}
			if _, err := tunnel.ReadHeader(st); err == nil {
				told <- name
				if ok {
					tunnel.OK().WriteTo(st)
				} else {
					tunnel.Refuse("not now").WriteTo(st)
				}
			}
			st.Close()
		}
	}()
}

// TestNoticesReachTheSessionsGateways: a session's end reaches the gateway
// that served its connections though its resource has moved to a group
// since, and the group's; the watch notice's error counts only the
// gateways of the session's live connections, not a member of the group
// serving none of them.
func TestNoticesReachTheSessionsGateways(t *testing.T) {
	h := newTestHub(t)
	res := &store.Resource{ID: store.NewID(), Name: "box", Type: "ssh", GatewayGroup: "dc2"}
	sess := &store.Session{ID: store.NewID(), ResourceID: res.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}
	err := h.st.Update(func(tx *store.Tx) error {
		if err := tx.PutSession(sess); err != nil {
			return err
		}
		for conn, gw := range map[string]string{"c1": "old", "c2": "ga"} {
			if err := tx.PutConnection(&store.Connection{ID: conn, SessionID: sess.ID, Gateway: gw, StartedAt: time.Now()}); err != nil {
				return err
			}
		}
		return tx.PutConnection(&store.Connection{ID: "c3", SessionID: sess.ID, Gateway: "gb", StartedAt: time.Now(), EndedAt: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	told := make(chan string, 16)
	for name, c := range map[string]struct {
		group string
		ok    bool
	}{"old": {"", true}, "ga": {"dc2", true}, "gb": {"dc2", false}, "other": {"dc3", true}} {
		_, cli := connectGateway(t, h, name, c.group)
		answerNotices(t, cli, c.ok, told, name)
	}
	collect := func(n int) []string {
		t.Helper()
		var got []string
		for range n {
			select {
			case name := <-told:
				got = append(got, name)
			case <-time.After(10 * time.Second):
				t.Fatalf("told only %v", got)
			}
		}
		slices.Sort(got)
		return got
	}
	if err := h.Watched(t.Context(), res, sess.ID, "alice", 5*time.Second); err != nil {
		t.Fatalf("Watched: %v (gb failed, but serves none of the session's live connections)", err)
	}
	if got := collect(3); !slices.Equal(got, []string{"ga", "gb", "old"}) {
		t.Fatalf("watch notice to %v", got)
	}
	h.Notice(t.Context(), res, sess.ID, "terminated", 5*time.Second)
	if got := collect(3); !slices.Equal(got, []string{"ga", "gb", "old"}) {
		t.Fatalf("session end told %v, want the old gateway and the group's", got)
	}
	// gb serving a live connection: its failure counts.
	if err := h.st.Update(func(tx *store.Tx) error {
		return tx.PutConnection(&store.Connection{ID: "c4", SessionID: sess.ID, Gateway: "gb", StartedAt: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if err := h.Watched(t.Context(), res, sess.ID, "alice", 5*time.Second); err == nil || !strings.Contains(err.Error(), "not now") {
		t.Fatalf("Watched with gb's live connection refused: %v", err)
	}
	collect(3)
}
