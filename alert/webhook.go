package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Format is a webhook's body format.
type Format string

// Formats.
const (
	FormatJSON      Format = "json"      // the Alert as JSON (see [Webhook])
	FormatSlack     Format = "slack"     // a Slack incoming-webhook message: {"text": ...}
	FormatPagerDuty Format = "pagerduty" // a PagerDuty Events API v2 event, dedup_key = the alert's key
)

// Webhook posts alerts to one configured URL. Create it with [NewWebhook].
type Webhook struct {
	url        string
	format     Format
	routingKey string
	source     string
	client     *http.Client
}

// WebhookOption configures [NewWebhook].
type WebhookOption func(*Webhook) error

// WithRoutingKey sets the PagerDuty integration (routing) key; required for
// FormatPagerDuty.
func WithRoutingKey(k string) WebhookOption {
	return func(w *Webhook) error { w.routingKey = k; return nil }
}

// WithSource sets PagerDuty's payload.source (default "handoff").
func WithSource(s string) WebhookOption { return func(w *Webhook) error { w.source = s; return nil } }

// WithTimeout sets the timeout of one post (default 5s).
func WithTimeout(d time.Duration) WebhookOption {
	return func(w *Webhook) error {
		if d <= 0 {
			return fmt.Errorf("alert: webhook timeout %v: must be positive", d)
		}
		w.client.Timeout = d
		return nil
	}
}

// NewWebhook returns a notifier posting to rawURL (http or https) in
// format. It follows no redirect: alerts go to the configured URL only.
func NewWebhook(rawURL string, format Format, opts ...WebhookOption) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("alert: webhook url %q: must be an absolute http or https URL", rawURL)
	}
	switch format {
	case FormatJSON, FormatSlack, FormatPagerDuty:
	default:
		return nil, fmt.Errorf("alert: webhook format %q: must be json, slack or pagerduty", format)
	}
	w := &Webhook{url: rawURL, format: format, source: "handoff", client: &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
	for _, o := range opts {
		if err := o(w); err != nil {
			return nil, err
		}
	}
	if format == FormatPagerDuty && w.routingKey == "" {
		return nil, errors.New("alert: webhook format pagerduty: routing key: must be set")
	}
	return w, nil
}

type jsonAlert struct {
	Version   string            `json:"version"`
	Status    Status            `json:"status"`
	Key       string            `json:"key"`
	Condition string            `json:"condition"`
	Subject   string            `json:"subject"`
	Severity  string            `json:"severity"`
	Summary   string            `json:"summary"`
	Details   map[string]string `json:"details"`
	StartsAt  time.Time         `json:"startsAt"`
	EndsAt    *time.Time        `json:"endsAt,omitempty"`
}

// Body returns the request body for a in w's format.
func (w *Webhook) Body(a Alert) ([]byte, error) {
	switch w.format {
	case FormatSlack:
		mark := ":rotating_light: *FIRING*"
		if a.Status == Resolved {
			mark = ":white_check_mark: *RESOLVED*"
		}
		return json.Marshal(map[string]string{"text": fmt.Sprintf("%s [%s] %s (%s)", mark, a.Severity, a.Summary, a.Key)})
	case FormatPagerDuty:
		ev := map[string]any{"routing_key": w.routingKey, "dedup_key": a.Key, "event_action": "trigger"}
		if a.Status == Resolved {
			ev["event_action"] = "resolve"
		} else {
			ev["payload"] = map[string]any{"summary": truncate(a.Summary, 1024), "source": w.source, "severity": a.Severity,
				"timestamp": a.StartsAt.UTC().Format(time.RFC3339Nano), "component": a.Subject, "class": a.Condition,
				"custom_details": a.Details}
		}
		return json.Marshal(ev)
	}
	j := jsonAlert{Version: "1", Status: a.Status, Key: a.Key, Condition: a.Condition, Subject: a.Subject, Severity: a.Severity,
		Summary: a.Summary, Details: a.Details, StartsAt: a.StartsAt.UTC()}
	if j.Details == nil {
		j.Details = map[string]string{}
	}
	if !a.EndsAt.IsZero() {
		e := a.EndsAt.UTC()
		j.EndsAt = &e
	}
	return json.Marshal(j)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// Notify posts a. A 2xx answer delivers it; 429, 5xx and transport errors
// are retried by the Manager; other answers (a redirect, a 4xx) are
// [Permanent].
func (w *Webhook) Notify(ctx context.Context, a Alert) error {
	body, err := w.Body(a)
	if err != nil {
		return Permanent(fmt.Errorf("alert: encode %s: %w", a.Key, err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("alert: webhook: %w", err))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL may hold a secret (Slack's do): never log it
		}
		return fmt.Errorf("alert: post %s to %s webhook: %w", a.Key, w.format, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("alert: post %s to %s webhook: %s: %s", a.Key, w.format, resp.Status, bytes.TrimSpace(msg))
	default:
		return Permanent(fmt.Errorf("alert: post %s to %s webhook: %s (not retried): %s", a.Key, w.format, resp.Status, bytes.TrimSpace(msg)))
	}
}
