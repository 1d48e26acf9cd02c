// Package webterm is the console's terminal: a shell on an SSH resource
// in the browser, over a WebSocket to the server. The server is the SSH
// client pamd ssh is on a laptop: it dials the session's connection to
// the resource's gateway through the relay (relay.Dial: the same
// descriptor, the same connection record), pins pamd's host key for the
// resource from the session's grant, asks for a terminal of the browser's
// size and a shell. So the gateway injects the credential and records
// the shell as it does for pamd ssh, and the session's policy, expiry and
// end apply unchanged. The session's credential stays on the server: the
// WebSocket carries none.
//
// On the WebSocket (wire.go), binary messages are terminal bytes both
// ways and text messages small JSON controls: the browser sends
// {"resize":{"cols":C,"rows":R}}; the server sends {"ended":REASON} when
// the session ends (expired or terminated) and {"closed":WHY} when the
// shell or its connection ends without the session ending. Messages are
// bounded in size; a malformed control closes the WebSocket.
//
// Who may attach is the API's to decide (only the session's own user);
// Serve checks that the request comes from the console's own origin.
//
// Watch is the read-only live view for admins and auditors: a WebSocket
// that follows a live session's terminal from the records the gateway
// uploads (output as binary messages, {"resize":...} and {"ended":...}
// from the server), reading nothing from the browser.
//
// Files: terminal.go (Terminal, Serve: origin, upgrade, the session's
// connection, the relay between browser and shell), shell.go (the SSH
// client: pinned host key, pty, shell), watch.go (Watch: the live view),
// wire.go (the WebSocket messages and their bounds).
package webterm
