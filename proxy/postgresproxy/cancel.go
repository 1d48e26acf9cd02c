package postgresproxy

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pamd/pamd/protocol/tunnel"
)

// keys maps the key data pamd gave clients to the server backends they
// stand for. The client never sees the server's key, so it can cancel
// only through pamd, and pamd passes a cancel on only for a connection of
// the same access session and resource.
type keys struct {
	mu sync.Mutex
	m  map[string]*backend
}

type backend struct {
	session, resource string
	server            pgproto3.BackendKeyData
}

func newKeys() *keys { return &keys{m: map[string]*backend{}} }

func keyID(pid uint32, secret []byte) string {
	return string(binary.BigEndian.AppendUint32(nil, pid)) + string(secret)
}

// add makes the key data for a client of the server backend key s.
func (k *keys) add(d *tunnel.Descriptor, s pgproto3.BackendKeyData) *pgproto3.BackendKeyData {
	k.mu.Lock()
	defer k.mu.Unlock()
	for {
		var b [8]byte
		rand.Read(b[:])
		pid := binary.BigEndian.Uint32(b[:4]) & 0x7fffffff // a positive int4, as a process ID
		key := &pgproto3.BackendKeyData{ProcessID: pid, SecretKey: b[4:]}
		id := keyID(pid, key.SecretKey)
		if _, taken := k.m[id]; pid != 0 && !taken {
			k.m[id] = &backend{session: d.SessionID, resource: d.Resource, server: s}
			return key
		}
	}
}

func (k *keys) remove(key *pgproto3.BackendKeyData) {
	k.mu.Lock()
	delete(k.m, keyID(key.ProcessID, key.SecretKey))
	k.mu.Unlock()
}

// cancel passes a client's CancelRequest on to the backend its key stands
// for over raw (a new connection to the server, in TLS when the resource
// has it). Like the server, it answers nothing either way.
func (k *keys) cancel(ctx context.Context, raw net.Conn, d *tunnel.Descriptor, req *pgproto3.CancelRequest) error {
	k.mu.Lock()
	b := k.m[keyID(req.ProcessID, req.SecretKey)]
	k.mu.Unlock()
	if b == nil || b.session != d.SessionID || b.resource != d.Resource {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	conn, err := serverTLS(raw, d)
	if err != nil {
		return err
	}
	out, err := (&pgproto3.CancelRequest{ProcessID: b.server.ProcessID, SecretKey: b.server.SecretKey}).Encode(nil)
	if err != nil {
		return err
	}
	conn.SetDeadline(time.Now().Add(DialTimeout))
	if _, err := conn.Write(out); err != nil {
		return err
	}
	// The server closes the connection once it has read the request.
	conn.Read(make([]byte, 1))
	return nil
}
