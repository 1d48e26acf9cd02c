package requests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pamd/pamd/store"
)

// webhook tells approvers of new requests: a JSON POST whose text field
// Slack (and tools that take its incoming-webhook format) shows as it is.
// Each delivery runs on its own, retried with backoff; a request never
// waits for it.
type webhook struct {
	url    string
	log    *slog.Logger
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// mu guards stopped: once stop began, no delivery starts.
	mu      sync.Mutex
	stopped bool
	// backoff is the wait before each retry.
	backoff []time.Duration
}

// webhookBody is what the hook receives.
type webhookBody struct {
	Text    string         `json:"text"`
	Request webhookRequest `json:"request"`
}

type webhookRequest struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Resource  string    `json:"resource"`
	Account   string    `json:"account"`
	Reason    string    `json:"reason,omitempty"`
	Duration  string    `json:"duration"`
	Approvers []string  `json:"approvers"`
	Approvals int       `json:"approvals"`
	ExpiresAt time.Time `json:"expires_at"`
}

func newWebhook(u string, log *slog.Logger) *webhook {
	ctx, cancel := context.WithCancel(context.Background())
	return &webhook{url: u, log: log, client: &http.Client{Timeout: 10 * time.Second}, ctx: ctx, cancel: cancel,
		backoff: []time.Duration{time.Second, 4 * time.Second, 15 * time.Second}}
}

func (h *webhook) notify(r *store.Request) {
	if h.url == "" {
		return
	}
	text := fmt.Sprintf("pamd: %s asks for %s for %s (request %s, needs %d approval(s) from %s)", r.UserName, Target(r), r.Duration,
		r.ID, r.Approvals, strings.Join(r.Approvers, " or "))
	if r.Reason != "" {
		text += ": " + r.Reason
	}
	text += ". Approve with: pamd requests approve " + r.ID
	body, _ := json.Marshal(webhookBody{Text: text, Request: webhookRequest{ID: r.ID, User: r.UserName, Resource: r.ResourceName,
		Account: r.AccountName, Reason: r.Reason, Duration: r.Duration.String(), Approvers: r.Approvers, Approvals: r.Approvals, ExpiresAt: r.ExpiresAt}})
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		h.deliver(r.ID, body)
	}()
}

// deliver posts body until a 2xx answer, the retries run out or the server
// stops. The URL is never logged: it may hold the hook's secret.
func (h *webhook) deliver(id string, body []byte) {
	for attempt := 0; ; attempt++ {
		err := h.post(body)
		if err == nil {
			return
		}
		if attempt == len(h.backoff) {
			h.log.Warn("access request webhook failed; giving up", "request", id, "attempts", attempt+1, "err", err)
			return
		}
		h.log.Info("access request webhook failed; retrying", "request", id, "attempt", attempt+1, "err", err)
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(h.backoff[attempt]):
		}
	}
}

func (h *webhook) post(body []byte) error {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return errors.New("bad webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// stop cancels deliveries that wait and waits for all of them.
func (h *webhook) stop() {
	h.mu.Lock()
	h.stopped = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}
