package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

// Publisher triggers events through the server's signed REST API
// (POST /apps/{id}/events), the way a backend using a Pusher SDK would.
type Publisher struct {
	target Target
	client *http.Client
	path   string
	now    func() time.Time
}

// NewPublisher builds a publisher with a keep-alive pool sized for workers
// concurrent requests.
func NewPublisher(t Target, workers int, timeout time.Duration) *Publisher {
	tr := &http.Transport{
		MaxIdleConns:        workers,
		MaxIdleConnsPerHost: workers,
		MaxConnsPerHost:     workers,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	return &Publisher{
		target: t,
		client: &http.Client{Transport: tr, Timeout: timeout},
		path:   "/apps/" + t.AppID + "/events",
		now:    time.Now,
	}
}

// Close releases idle keep-alive connections.
func (p *Publisher) Close() { p.client.CloseIdleConnections() }

// eventBody builds {"name":…,"channels":[…],"data":"…"}. Names and data are
// generated ASCII, for which Go quoting and JSON quoting agree.
func eventBody(dst []byte, name string, channels []string, data []byte, socketID string) []byte {
	dst = append(dst, `{"name":`...)
	dst = strconv.AppendQuote(dst, name)
	dst = append(dst, `,"channels":[`...)
	for i, ch := range channels {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = strconv.AppendQuote(dst, ch)
	}
	dst = append(dst, `],"data":`...)
	dst = strconv.AppendQuote(dst, string(data))
	if socketID != "" {
		dst = append(dst, `,"socket_id":`...)
		dst = strconv.AppendQuote(dst, socketID)
	}
	return append(dst, '}')
}

// signedURL returns the request URL for body, signed at the current time.
func (p *Publisher) signedURL(body []byte) string {
	q := url.Values{}
	pushersign.SignRESTQuery(p.target.Key, p.target.Secret, http.MethodPost, p.path, q, body, p.now())
	return p.target.HTTPBase() + p.path + "?" + q.Encode()
}

// Trigger publishes one event to channels. data is the event's data string.
func (p *Publisher) Trigger(ctx context.Context, name string, channels []string, data []byte) error {
	body := eventBody(make([]byte, 0, 96+len(data)), name, channels, data, "")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.signedURL(body), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	// The body is read below; closing it cannot change the outcome.
	defer func() { _ = resp.Body.Close() }()
	// Drain so the keep-alive connection is reused.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return &HTTPError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(msg))}
	}
	return nil
}

// HTTPError is a non-2xx reply from the REST API.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }
