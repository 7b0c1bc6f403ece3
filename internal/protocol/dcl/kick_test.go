package dcl

import (
	"bytes"
	"testing"
	"time"

	"github.com/switchboard-rt/switchboard/internal/transport"
)

// kickRaceConn is a recConn on which the peer_kicked frame's Send starts
// a room delivery to the same session, racing the close that follows.
type kickRaceConn struct {
	recConn
	kicked []byte
	race   func()
}

func (c *kickRaceConn) Send(m *transport.Message) error {
	err := c.recConn.Send(m)
	if c.race != nil && bytes.Equal(m.Payload, c.kicked) {
		race := c.race
		c.race = nil
		race()
	}
	return err
}

// TestNothingOfTheRoomFollowsPeerKicked: a room delivery that comes while
// a session is being kicked is dropped, not sent between peer_kicked and
// the close (the reference's single thread sends nothing there either).
// Without the session's outMu the delivery lands in that gap.
func TestNothingOfTheRoomFollowsPeerKicked(t *testing.T) {
	s := NewServer(validOptions())
	c := &kickRaceConn{kicked: encodeKicked(ReasonRoomFull)}
	ss := s.newSession(c, "r", "")
	delivered := make(chan struct{})
	c.race = func() {
		go func() {
			ss.Deliver(transport.Binary([]byte("room traffic")))
			close(delivered)
		}()
		// Give the delivery time to get in before the close, which it
		// does unless the kick holds it off.
		select {
		case <-delivered:
		case <-time.After(50 * time.Millisecond):
		}
	}
	ss.kick(ReasonRoomFull, "room_full")
	<-delivered
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sent) != 1 || !bytes.Equal(c.sent[0], c.kicked) || !c.closed {
		t.Fatalf("sent %q, closed %v; want peer_kicked alone, then the close", c.sent, c.closed)
	}
}
