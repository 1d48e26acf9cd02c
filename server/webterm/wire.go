package webterm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/coder/websocket"
)

// The bounds of the WebSocket's messages.
const (
	// maxMessage bounds a message from the browser: typed or pasted input
	// (the page sends a paste in pieces of at most 16 KiB) or a control.
	maxMessage = 64 << 10
	// maxControl bounds a control message: a resize is some 40 bytes.
	maxControl = 512
	// outputChunk bounds a message to the browser: the shell's output is
	// read in pieces of this size, each sent as one message.
	outputChunk = 32 << 10
	// maxSide bounds a terminal's columns and rows, as the replay does.
	maxSide = 1000
	// finishWithin bounds the last control message and the closing
	// handshake, for a browser that no longer reads.
	finishWithin = 5 * time.Second
)

// Size is a terminal's size in characters.
type Size struct {
	Cols int `json:"cols"`
	Rows int `json:"rows"`
}

func (s Size) valid() bool {
	return s.Cols >= 1 && s.Cols <= maxSide && s.Rows >= 1 && s.Rows <= maxSide
}

// control is a JSON text message; exactly one field is set. The browser
// sends Resize; the server Ended (the session ended: its end reason) or
// Closed (the shell or its connection ended, or never opened: why), and
// to a watcher (watch.go) Resize: the watched terminal's size.
type control struct {
	Resize *Size  `json:"resize,omitempty"`
	Ended  string `json:"ended,omitempty"`
	Closed string `json:"closed,omitempty"`
}

// errMalformed is the browser sending a text message that is no control.
var errMalformed = errors.New("malformed control message")

// peer is the browser's end of the WebSocket. Its methods may be called
// concurrently, but next from one goroutine only.
type peer struct{ ws *websocket.Conn }

func newPeer(ws *websocket.Conn) *peer {
	ws.SetReadLimit(maxMessage)
	return &peer{ws: ws}
}

// output sends terminal bytes; it blocks while the browser does not read
// (the shell's output waits, as it would on a slow terminal).
func (p *peer) output(ctx context.Context, b []byte) error {
	return p.ws.Write(ctx, websocket.MessageBinary, b)
}

// control sends a control message and keeps the WebSocket open.
func (p *peer) control(ctx context.Context, c control) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return p.ws.Write(ctx, websocket.MessageText, b)
}

// next is the browser's next message: terminal input, or a size.
func (p *peer) next(ctx context.Context) (input []byte, resize *Size, err error) {
	typ, b, err := p.ws.Read(ctx)
	if err != nil {
		return nil, nil, err
	}
	if typ == websocket.MessageBinary {
		return b, nil, nil
	}
	if len(b) > maxControl {
		return nil, nil, errMalformed
	}
	var c control
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(&c) != nil || dec.More() || c.Resize == nil || !c.Resize.valid() {
		return nil, nil, errMalformed
	}
	return nil, c.Resize, nil
}

// finish tells the browser why the terminal ends (unless c is empty: the
// browser is gone, or broke the protocol) and closes the WebSocket.
func (p *peer) finish(c control, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), finishWithin)
	defer cancel()
	if c == (control{}) {
		if errors.Is(err, errMalformed) {
			p.ws.Close(websocket.StatusPolicyViolation, errMalformed.Error())
			return
		}
		p.ws.CloseNow()
		return
	}
	if b, err := json.Marshal(c); err == nil {
		p.ws.Write(ctx, websocket.MessageText, b)
	}
	p.ws.Close(websocket.StatusNormalClosure, "")
}
