package sshproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"net"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/pamd/pamd/protocol/asciicast"
	"github.com/pamd/pamd/protocol/sftp"
	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/proxy"
)

// conn is one client connection and its target.
type conn struct {
	desc   *tunnel.Descriptor
	target *ssh.Client
	rec    func(tunnel.Record)

	mu   sync.Mutex
	open map[ssh.Channel]*channel // client-side session channels
	gone bool
}

func (c *conn) record(r tunnel.Record) {
	r.SessionID, r.ConnectionID = c.desc.SessionID, c.desc.ConnectionID
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	c.rec(r)
}

// cut tells every open session channel why, then closes it.
func (c *conn) cut(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gone = true
	for ch := range c.open {
		ch.Stderr().Write([]byte("\r\npamd: " + msg + "\r\n"))
		ch.Close()
	}
}

// notice shows msg on the client's terminals (session channels with a
// pty), not on channels without one, whose output a program may read. The
// writes wait for the client's window, so they are not made on the
// caller's goroutine.
func (c *conn) notice(msg string) {
	c.mu.Lock()
	var terms []ssh.Channel
	for cch, ch := range c.open {
		ch.mu.Lock()
		if ch.terminal {
			terms = append(terms, cch)
		}
		ch.mu.Unlock()
	}
	c.mu.Unlock()
	for _, cch := range terms {
		go cch.Stderr().Write([]byte("\r\npamd: " + msg + "\r\n"))
	}
}

func (c *conn) relay(nc ssh.NewChannel, id int) {
	kind := nc.ChannelType()
	if kind != "session" && kind != "direct-tcpip" {
		nc.Reject(ssh.UnknownChannelType, "pamd relays session and direct-tcpip channels only")
		return
	}
	tch, treqs, err := c.target.OpenChannel(kind, nc.ExtraData())
	if err != nil {
		var oce *ssh.OpenChannelError
		if errors.As(err, &oce) {
			nc.Reject(oce.Reason, oce.Message)
		} else {
			nc.Reject(ssh.ConnectionFailed, "pamd: "+err.Error())
		}
		return
	}
	cch, creqs, err := nc.Accept()
	if err != nil {
		tch.Close()
		return
	}
	ch := &channel{conn: c, id: id, client: cch, target: tch, session: kind == "session"}
	if kind == "direct-tcpip" {
		var fwd struct {
			Host       string
			Port       uint32
			OriginHost string
			OriginPort uint32
		}
		if ssh.Unmarshal(nc.ExtraData(), &fwd) == nil {
			c.record(tunnel.Record{Channel: id, Type: "forward", Path: net.JoinHostPort(fwd.Host, strconv.Itoa(int(fwd.Port)))})
		}
	} else {
		c.mu.Lock()
		if c.gone {
			c.mu.Unlock()
			cch.Close()
			tch.Close()
			return
		}
		c.open[cch] = ch
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			delete(c.open, cch)
			c.mu.Unlock()
		}()
	}
	ch.run(creqs, treqs)
}

// channel relays one channel and observes its requests.
//
// Every byte of a session channel's stdin, stdout and stderr is recorded
// (records "i", "o", "e"), with or without a terminal. The one exception is
// a trusted file transfer: the sftp subsystem, or an exec of nothing but
// scp -t/-f, sftp-server or rsync --server (see transferCommand), whose
// data is file contents: it is recorded as file operations, and whatever
// the tracker cannot parse is recorded as bytes from there on.
type channel struct {
	conn    *conn
	id      int
	client  ssh.Channel
	target  ssh.Channel
	session bool // a session channel; else a port forward, not recorded byte by byte

	mu       sync.Mutex
	terminal bool        // a pty was requested
	transfer bool        // a trusted file transfer: stdin and stdout are not recorded as bytes
	files    fileTracker // SFTP or SCP is running
	sniffed  bool        // the first input was checked for an SFTP INIT
	held     []byte      // first input, held until it is known whether it starts SFTP
	streams  map[string]*streamCut
}

// Without a terminal a channel is often a bulk transfer (a backup piped
// through ssh, cat of a large file): each of its streams is recorded in
// full up to streamBudget bytes, and past that as its length, a SHA-256 of
// the whole and its last streamTail bytes, as long command logs are (see
// proxy.Clip). Recording every byte would hold the session's whole
// transfer, escaped, in the gateway's spool. A terminal session keeps
// every byte: that is what its replay shows.
const (
	streamBudget = 1 << 20
	streamTail   = 4 << 10
)

type streamCut struct {
	recorded, total int64
	sum             hash.Hash
	tail            []byte // the last streamTail bytes past the budget
}

// budget returns the part of p to record as it is; the rest is counted,
// hashed and kept as the tail.
func (ch *channel) budget(stream string, p []byte) []byte {
	if ch.terminal {
		return p
	}
	if ch.streams == nil {
		ch.streams = map[string]*streamCut{}
	}
	b := ch.streams[stream]
	if b == nil {
		b = &streamCut{sum: sha256.New()}
		ch.streams[stream] = b
	}
	b.total += int64(len(p))
	b.sum.Write(p)
	keep := p[:min(int64(len(p)), max(0, streamBudget-b.recorded))]
	b.recorded += int64(len(keep))
	if rest := p[len(keep):]; len(rest) > 0 {
		b.tail = append(b.tail, rest[max(0, len(rest)-streamTail):]...)
		if n := len(b.tail) - streamTail; n > 0 {
			b.tail = append(b.tail[:0], b.tail[n:]...)
		}
	}
	return keep
}

// finishStreams records, for each stream cut by its budget, its tail with
// the length and hash of the whole.
func (ch *channel) finishStreams() {
	for _, stream := range []string{"i", "o", "e"} {
		b := ch.streams[stream]
		if b == nil || b.total == b.recorded {
			continue
		}
		ch.record(tunnel.Record{Type: stream, Data: string(b.tail), Truncated: &tunnel.Cut{
			Field: "data", Length: b.total, SHA256: hex.EncodeToString(b.sum.Sum(nil))}})
	}
}

func (ch *channel) record(r tunnel.Record) {
	r.Channel = ch.id
	ch.conn.record(r)
}

func (ch *channel) run(creqs, treqs <-chan *ssh.Request) {
	started := make(chan struct{}) // closed when a shell, command or subsystem starts
	var startOnce sync.Once
	if !ch.session {
		startOnce.Do(func() { close(started) }) // a forward starts at once
	}
	// Replies owed to the client: the channel is not closed before they are
	// sent. A fast command's output, EOF and close can overtake the reply to
	// its own exec request, and the client then sees EOF instead of success.
	var owed sync.WaitGroup
	go func() { // client → target requests
		for r := range creqs {
			owed.Add(1) // before the target can answer, so before it can close
			ok, err := ch.target.SendRequest(r.Type, r.WantReply, r.Payload)
			if err != nil {
				ok = false
			}
			if ok || (err == nil && !r.WantReply) { // no reply asked: sent is all we know
				ch.observe(r)
			}
			if r.WantReply {
				r.Reply(ok, nil)
			}
			owed.Done()
			switch r.Type {
			case "shell", "exec", "subsystem":
				startOnce.Do(func() { close(started) })
			}
		}
		startOnce.Do(func() { close(started) }) // never started: let the copies end
		ch.target.Close()                       // the client closed its channel
	}()
	reqsDone := make(chan struct{})
	go func() { // target → client requests (exit-status, exit-signal, eow@openssh.com)
		defer close(reqsDone)
		for r := range treqs {
			if r.Type == "exit-status" {
				var st struct{ Status uint32 }
				if ssh.Unmarshal(r.Payload, &st) == nil {
					status := int(st.Status)
					ch.record(tunnel.Record{Type: "exit", Status: &status})
				}
			}
			ok, err := ch.client.SendRequest(r.Type, r.WantReply, r.Payload)
			if r.WantReply {
				r.Reply(ok && err == nil, nil)
			}
		}
	}()

	// The data waits until the request that starts the channel has been
	// observed, so that what records it (bytes, or a file tracker) is known
	// before the first byte.
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // stdin
		<-started
		proxy.Copy(writerFunc(func(p []byte) (int, error) {
			ch.tap(p, "i")
			return ch.target.Write(p)
		}), ch.client)
		ch.target.CloseWrite()
	}()
	go func() { // stdout
		defer wg.Done()
		<-started
		proxy.Copy(writerFunc(func(p []byte) (int, error) {
			ch.tap(p, "o")
			return ch.client.Write(p)
		}), ch.target)
	}()
	go func() { // stderr
		defer wg.Done()
		<-started
		proxy.Copy(writerFunc(func(p []byte) (int, error) {
			ch.tap(p, "e")
			return ch.client.Stderr().Write(p)
		}), ch.target.Stderr())
	}()
	wg.Wait()
	<-reqsDone // the target closed the channel; its exit status has been passed on
	owed.Wait()
	ch.client.CloseWrite()
	ch.client.Close()
	ch.mu.Lock()
	if len(ch.held) > 0 { // input too short to tell
		ch.record(tunnel.Record{Type: "i", Data: string(ch.held)})
		ch.held = nil
	}
	if ch.files != nil {
		ch.files.finish()
	}
	ch.finishStreams()
	ch.mu.Unlock()
}

// sftpInitPrefix is how an SFTP INIT packet starts: a length of 5 (no
// extensions) and type 1; the version follows.
var sftpInitPrefix = []byte{0, 0, 0, 5, sftp.TypeInit}

// tap records a channel's bytes and feeds file transfers to their tracker.
// It holds ch.mu throughout, so the records of one channel keep the order
// the streams were seen in.
func (ch *channel) tap(p []byte, stream string) {
	if !ch.session {
		return
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if stream == "e" {
		if keep := ch.budget("e", p); len(keep) > 0 {
			ch.record(tunnel.Record{Type: "e", Data: string(keep)})
		}
		return
	}
	if stream == "i" && !ch.sniffed && ch.files == nil && !ch.transfer {
		// An exec that is not a trusted transfer may still speak SFTP
		// (sudo sftp-server, say): its file operations are parsed too,
		// and its bytes recorded as for any command.
		ch.held = append(ch.held, p...)
		if len(ch.held) < len(sftpInitPrefix) && bytes.HasPrefix(sftpInitPrefix, ch.held) {
			return // too short to tell yet
		}
		ch.sniffed = true
		p, ch.held = ch.held, nil
		if bytes.HasPrefix(p, sftpInitPrefix) {
			ch.files = newSFTPTracker(ch.record, nil)
		}
	}
	if !ch.transfer {
		if keep := ch.budget(stream, p); len(keep) > 0 {
			ch.record(tunnel.Record{Type: stream, Data: string(keep)})
		}
	}
	if ch.files != nil {
		ch.files.feed(stream == "i", p)
	}
}

// observe records the requests that say what a channel does.
func (ch *channel) observe(r *ssh.Request) {
	switch r.Type {
	case "pty-req":
		var pty struct {
			Term                   string
			Columns, Rows, Wpx, Hp uint32
			Modes                  string
		}
		if ssh.Unmarshal(r.Payload, &pty) == nil {
			ch.mu.Lock()
			ch.terminal = true
			ch.mu.Unlock()
			ch.record(tunnel.Record{Type: "pty", Term: pty.Term, Width: asciicast.ClampSize(int(pty.Columns)), Height: asciicast.ClampSize(int(pty.Rows))})
		}
	case "window-change":
		var wc struct{ Columns, Rows, Wpx, Hpx uint32 }
		if ssh.Unmarshal(r.Payload, &wc) == nil {
			ch.record(tunnel.Record{Type: "r", Width: asciicast.ClampSize(int(wc.Columns)), Height: asciicast.ClampSize(int(wc.Rows))})
		}
	case "shell":
		ch.record(tunnel.Record{Type: "shell"})
	case "exec":
		var ex struct{ Command string }
		if ssh.Unmarshal(r.Payload, &ex) == nil {
			ch.record(tunnel.Record{Type: "exec", Command: ex.Command})
			ch.mu.Lock()
			defer ch.mu.Unlock()
			// On a terminal a transfer program is typed at: record it all.
			trusted := transferCommand(ex.Command)
			if ch.terminal {
				trusted = ""
			}
			var fallback func(tunnel.Record)
			if trusted != "" {
				ch.transfer, fallback = true, ch.record
			}
			switch trusted {
			case "sftp":
				ch.files = newSFTPTracker(ch.record, fallback)
			case "", "scp":
				if t := newSCPTracker(ex.Command, ch.record, fallback); t != nil {
					ch.files = t
				} else if trusted == "scp" {
					ch.transfer = false // neither -t nor -f: not a transfer after all
				}
			}
		}
	case "subsystem":
		var sub struct{ Name string }
		if ssh.Unmarshal(r.Payload, &sub) == nil {
			ch.record(tunnel.Record{Type: "subsystem", Command: sub.Name})
			ch.mu.Lock()
			if sub.Name == "sftp" {
				// The server's configured sftp-server runs, not a program
				// of the user's choosing.
				ch.transfer = true
				ch.files = newSFTPTracker(ch.record, ch.record)
			}
			ch.mu.Unlock()
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
