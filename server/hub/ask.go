package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/pamd/pamd/protocol/tunnel"
	"github.com/pamd/pamd/server/streams"
)

// Probe asks a gateway to reach a target as d describes.
func (h *Hub) Probe(ctx context.Context, gateway string, d tunnel.Descriptor) (*tunnel.ProbeResult, error) {
	var res tunnel.ProbeResult
	if err := h.Ask(ctx, gateway, tunnel.KindProbe, d, 30*time.Second, &res); err != nil {
		return nil, err
	}
	if res.Error != "" {
		return &res, errors.New(res.Error)
	}
	return &res, nil
}

// Ask opens a stream of the given kind to a gateway and decodes the one
// message it answers with into answer. It waits at most timeout, and stops
// waiting when ctx ends.
func (h *Hub) Ask(ctx context.Context, gateway string, kind tunnel.Kind, body any, timeout time.Duration, answer any) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("gateway %s: %s not sent: %w", gateway, kind, context.Cause(ctx))
	}
	st, err := h.Open(gateway)
	if err != nil {
		return err
	}
	defer st.Close()
	hdr, err := tunnel.NewHeader(kind, body)
	if err != nil {
		return err
	}
	st.SetDeadline(time.Now().Add(timeout))
	defer streams.CutOnDone(ctx, st)()
	if _, err := hdr.WriteTo(st); err != nil {
		return err
	}
	reply, err := tunnel.ReadReply(st)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("gateway %s did not answer the %s: %w", gateway, kind, err)
	}
	if err := reply.Err(); err != nil {
		return err
	}
	msg, err := tunnel.ReadMessage(st)
	if err != nil {
		if ctx.Err() != nil {
			err = context.Cause(ctx)
		}
		return fmt.Errorf("gateway %s: %s answer: %w", gateway, kind, err)
	}
	if err := json.Unmarshal(msg.Detail, answer); err != nil {
		return fmt.Errorf("gateway %s: %s answer: %w", gateway, kind, err)
	}
	return nil
}
