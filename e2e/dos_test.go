package e2e

import (
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/pamd/pamd/protocol/pki"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
	"github.com/pamd/pamd/server/api"
)

// grant opens an access session for RESOURCE/ACCOUNT through the API, as
// the logged-in CLI user, and returns its id and credential.
func (e *env) grant(resource, account string) (id, credential string) {
	e.t.Helper()
	b, _ := os.ReadFile(filepath.Join(e.configDir, "login.json"))
	var l struct{ Token string }
	json.Unmarshal(b, &l)
	body, _ := json.Marshal(api.CreateSessionRequest{Resource: resource, Account: account, Duration: "10m", Reason: "dos test"})
	req, _ := http.NewRequest("POST", e.url+"/api/v1/sessions", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer "+l.Token)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.PinnedClientConfig(e.fp, pki.ALPNHTTP)}}
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var g api.SessionGrant
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil || resp.StatusCode/100 != 2 {
		e.t.Fatalf("create session: %d %v", resp.StatusCode, err)
	}
	return g.Session.ID, g.Credential
}

// rawTunnel is a yamux session on the tunnel ALPN with nothing sent yet.
func (e *env) rawTunnel() (*yamux.Session, error) {
	raw, err := tls.Dial("tcp", e.addr, pki.PinnedClientConfig(e.fp, pki.ALPNTunnel))
	if err != nil {
		return nil, err
	}
	sess, err := proxy.YamuxClient(raw)
	if err != nil {
		raw.Close()
	}
	return sess, err
}

// The flood of issue 12: unauthenticated tunnel connections, each opening
// stream after stream with a header that claims a 64 KiB body. The server
// must hang up on each at its second stream, keep its memory, and serve
// pamd connect as before.
func TestUnauthenticatedTunnelFloodIsCut(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): the server's memory during the flood is what it measures.
	e := newEnv(t)
	e.addEcho("echo", "any", "pw-dos-1")
	pid := e.server.cmd.Process.Pid
	before := rssKiB(t, pid)
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if v := rssKiB(t, pid); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	claim := append([]byte("PAMD"), tunnel.Version, byte(tunnel.KindAccess))
	claim = binary.BigEndian.AppendUint32(claim, tunnel.MaxBody)
	claim = append(claim, make([]byte, 60<<10)...)
	const conns, streams = 8, 100
	var wg sync.WaitGroup
	var open atomic.Int32
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sess, err := e.rawTunnel()
			if err != nil {
				t.Error(err)
				return
			}
			defer sess.Close()
			for range streams {
				st, err := sess.OpenStream()
				if err != nil {
					break
				}
				st.SetWriteDeadline(time.Now().Add(2 * time.Second))
				if _, err := st.Write(claim); err != nil {
					break
				}
			}
			select {
			case <-sess.CloseChan():
			case <-time.After(10 * time.Second):
				open.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-sampled
	if n := open.Load(); n > 0 {
		t.Errorf("%d of %d flooding connections still open after 10 s", n, conns)
	}
	grew := peak.Load() - before
	t.Logf("server RSS %d KiB before, at most %d KiB during the flood (+%d KiB)", before, peak.Load(), grew)
	if grew > 48<<10 {
		t.Errorf("the server grew by %d MiB for %d unauthenticated connections", grew>>10, conns)
	}

	// Past the flood, the tunnel serves as before.
	c := e.connect("echo/any")
	transfer(t, c.addr(), 1<<20)
}

// Connections that never finish their handshake hold at most 32 slots per
// source; once they are gone, clients get in again.
func TestUnauthenticatedConnectionsPerSourceAreCapped(t *testing.T) {
	// Not parallel (runs before the parallel tests, alone): a refused connection is told from a held one by a 1 s read deadline.
	e := newEnv(t)
	e.addEcho("echo", "any", "pw-dos-2")
	const tries = 40
	held := make([]net.Conn, 0, tries)
	for range tries {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	// All at once: the held ones end at the 10 s handshake deadline.
	var refused atomic.Int32
	var wg sync.WaitGroup
	for _, c := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := c.Read(make([]byte, 1)); err != nil {
				if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
					refused.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := refused.Load(); n != tries-32 {
		t.Fatalf("%d of %d handshake-less connections from one source refused, want %d", n, tries, tries-32)
	}
	for _, c := range held {
		c.Close()
	}
	// The server gives a slot back when it reads the close: clients get in
	// again once it has. A TLS handshake gives its own slot back as it ends.
	e.waitFor("a handshake accepted again", 5*time.Second, func() bool {
		c, err := tls.Dial("tcp", e.addr, pki.PinnedClientConfig(e.fp, pki.ALPNHTTP))
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	// An authenticated tunnel holds no slot: connect works, and a session's
	// tunnel still serves once it has authenticated.
	id, cred := e.grant("echo", "any")
	sess, err := e.rawTunnel()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	st, _ := sess.OpenStream()
	h, _ := tunnel.NewHeader(tunnel.KindControl, tunnel.Access{SessionID: id, Credential: cred})
	h.WriteTo(st)
	st.SetReadDeadline(time.Now().Add(5 * time.Second))
	if r, err := tunnel.ReadReply(st); err != nil || r.Err() != nil {
		t.Fatalf("control stream: %v %v", r, err)
	}
	c := e.connect("echo/any")
	transfer(t, c.addr(), 1<<20)
}
