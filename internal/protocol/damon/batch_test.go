package damon

import (
	"encoding/json"
	"testing"

	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
	"github.com/switchboard-rt/switchboard/internal/transport"
)

// TestDeliverBatchIsDeliverInOrder: a busy group's waiting messages, taken
// together, reach the recipient as one Deliver each would: every EVENT
// with an id of its own (not the sender's, not another's), a REPLY as
// sent, a payload not of ours dropped, in order.
func TestDeliverBatchIsDeliverInOrder(t *testing.T) {
	env, _ := wire.ParseEnvelope([]byte(benchReply))
	reply, _ := env.AppendCanonical(nil)
	c := &fakeConn{}
	ss := &session{conn: c}
	ss.DeliverBatch([]*transport.Message{eventPayload(t), transport.Text(reply), transport.Text([]byte{markEvent, 0}), eventPayload(t)})

	got := c.messages()
	if len(got) != 3 {
		t.Fatalf("got %d messages, want 3 (event, reply, event): %q", len(got), got)
	}
	if got[1] != string(reply) {
		t.Fatalf("the reply came out as %q", got[1])
	}
	ids := map[string]bool{"70653cb0-5f6d-41fe-acbf-ea8f37a73034": true}
	for _, i := range []int{0, 2} {
		var doc struct {
			ID    string `json:"id"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal([]byte(got[i]), &doc); err != nil {
			t.Fatalf("message %d: %v: %q", i, err, got[i])
		}
		if doc.Event != "INFO" || ids[doc.ID] {
			t.Fatalf("message %d: event %q with id %q, want INFO with a fresh id", i, doc.Event, doc.ID)
		}
		ids[doc.ID] = true
	}
}
