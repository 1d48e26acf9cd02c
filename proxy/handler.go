package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
)

// Recorder receives what a connection does (terminal I/O, commands,
// queries); it must not block for long. A nil Recorder records nothing.
type Recorder func(tunnel.Record)

// Record passes r to rec unless rec is nil.
func (rec Recorder) Record(r tunnel.Record) {
	if rec != nil {
		rec(r)
	}
}

// Handler serves the dial streams of one protocol at the gateway: it
// reaches the target d describes (reading only d's part for its
// protocol), answers the server with Answer, then serves the client until
// either side ends or ctx (bounded by the session's expiry; its cause is
// the session's end reason) is done.
type Handler interface {
	Handle(ctx context.Context, stream net.Conn, d *tunnel.Descriptor, rec Recorder) error
}

// Prober is a Handler that can check a target for the server: reach it
// (and with a credential in d, log in) and say what it found.
type Prober interface {
	Probe(ctx context.Context, d *tunnel.Descriptor) (*tunnel.ProbeResult, error)
}

// Rotator is a Handler that can change credentials on its targets.
type Rotator interface {
	// Rotation returns how to rotate r's account, or an error saying why
	// this protocol cannot (a refusal for the server).
	Rotation(r *tunnel.Rotation) (*TargetOps, error)
}

// SessionEnder is a Handler that keeps state per access session (a
// MongoDB topology): EndSession drops it.
type SessionEnder interface {
	EndSession(sessionID string)
}

// Sweeper is a Handler whose per-session state also ends by itself: Sweep
// drops what expired by now.
type Sweeper interface {
	Sweep(now time.Time)
}

// Closer is a Handler that holds state across connections (MongoDB
// topologies): Close drops all of it and returns once it is gone. The
// gateway calls it after its last stream ended.
type Closer interface {
	Close()
}

// TargetOps are what rotating needs from a protocol: log in with a
// credential, make the change, and (SSH keys) retire the old credential.
type TargetOps struct {
	// Login proves a descriptor's credential logs in.
	Login func(context.Context, *tunnel.Descriptor) error
	// Change makes the change on the target.
	Change func(context.Context, *tunnel.Rotation) error
	// Retire, when set, retires the old credential after the new one is verified.
	Retire func(context.Context, *tunnel.Rotation) error
	// Next is the rotated account's descriptor holding the new credential.
	Next *tunnel.Descriptor
}

// TargetError is a failure to reach or log in to a target: the stream is
// served (the handler tells the client in its own protocol) and the server
// gets the reason.
type TargetError struct {
	Reason tunnel.Reason
	Err    error
}

func (e *TargetError) Error() string { return e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// TargetFailed wraps err as a target failure for the given reason; a nil
// err stays nil.
func TargetFailed(reason tunnel.Reason, err error) error {
	if err == nil {
		return nil
	}
	return &TargetError{Reason: reason, Err: err}
}

// Refusal is a dial the gateway declines: its text is for the user.
type Refusal struct{ Message string }

func (e *Refusal) Error() string { return e.Message }

// Refuse makes a Refusal.
func Refuse(format string, args ...any) error {
	return &Refusal{Message: fmt.Sprintf(format, args...)}
}

// Answer writes the reply to a dial (or probe, or rotate) stream: ok when
// err is nil, target failed with its reason for a *TargetError, and refused
// otherwise, with the error's text as the message. Every handler and the
// gateway's dispatch answer through it.
func Answer(w io.Writer, err error) error {
	var reply *tunnel.Reply
	var te *TargetError
	switch {
	case err == nil:
		reply = tunnel.OK()
	case errors.As(err, &te):
		reply = tunnel.TargetFailed(te.Reason, te.Error())
	default:
		reply = &tunnel.Reply{Status: tunnel.StatusRefused, Message: err.Error()}
	}
	_, werr := reply.WriteTo(w)
	return werr
}
