package metrics

import "testing"

func TestValueFindsSeriesByLabels(t *testing.T) {
	m := New()
	c := m.ForConn("pusher", "a")
	c.Error("bad_json")
	c.Error("bad_json")
	m.ForConn("pusher", "b").Error("bad_json")
	c.Open.Inc()
	if v := m.Value("switchboard_protocol_errors_total", "app", "a", "reason", "bad_json"); v != 2 {
		t.Fatalf("counter %v, want 2", v)
	}
	if v := m.Value("switchboard_connections", "protocol", "pusher", "app", "a"); v != 1 {
		t.Fatalf("gauge %v, want 1", v)
	}
	if v := m.Value("switchboard_protocol_errors_total", "app", "nope"); v != 0 {
		t.Fatalf("missing series %v, want 0", v)
	}
}
