package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/protocol/pusher/pushersign"
)

func testTarget(t *testing.T, srv *httptest.Server) Target {
	t.Helper()
	host, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return Target{Host: host, Port: p, AppID: "app-id", Key: "app-key", Secret: "app-secret"}
}

func TestPublisherSignsLikeTheSpec(t *testing.T) {
	var got struct {
		Name     string   `json:"name"`
		Channels []string `json:"channels"`
		Data     string   `json:"data"`
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		q := r.URL.Query()
		if r.Method != http.MethodPost || r.URL.Path != "/apps/app-id/events" {
			http.Error(w, "bad route", http.StatusNotFound)
			return
		}
		if q.Get("auth_key") != "app-key" || q.Get("auth_version") != "1.0" || q.Get("body_md5") != pushersign.BodyMD5(body) {
			http.Error(w, "bad auth params", http.StatusUnauthorized)
			return
		}
		ts, _ := strconv.ParseInt(q.Get("auth_timestamp"), 10, 64)
		if d := time.Since(time.Unix(ts, 0)); d > time.Minute || d < -time.Minute {
			http.Error(w, "stale", http.StatusUnauthorized)
			return
		}
		if !pushersign.Equal(q.Get("auth_signature"), pushersign.RESTSignature("app-secret", r.Method, r.URL.Path, q)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "content type", http.StatusBadRequest)
			return
		}
		if err := json.Unmarshal(body, &got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("{}")) // the client checks what it received
	}))
	defer srv.Close()
	p := NewPublisher(testTarget(t, srv), 2, 5*time.Second)
	defer p.Close()
	data := appendStamp(nil, 0, 1, 2, 0)
	if err := p.Trigger(context.Background(), benchEvent, []string{"a", "b"}, data); err != nil {
		t.Fatal(err)
	}
	if got.Name != benchEvent || len(got.Channels) != 2 || got.Data != string(data) {
		t.Fatalf("server got %+v", got)
	}
}

func TestPublisherReportsHTTPErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "over quota", http.StatusForbidden)
	}))
	defer srv.Close()
	p := NewPublisher(testTarget(t, srv), 1, 5*time.Second)
	defer p.Close()
	err := p.Trigger(context.Background(), "e", []string{"c"}, []byte("x"))
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 403 || he.Body != "over quota" {
		t.Fatalf("err = %v", err)
	}
}
