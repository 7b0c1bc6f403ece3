package wire_test

import (
	"errors"
	"fmt"

	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
)

// A server's read loop: documents split across reads, coalesced, malformed,
// and finally one that is too big.
func ExampleDecoder() {
	limits := wire.Limits{MaxDocumentSize: 64}
	dec := wire.NewDecoder(limits)
	reads := []string{
		`{"op":3}{"op":1,"data":{"group":"g1",`, // one whole document, one partial
		`"token":"secret"}} {op:4} {"op":0,"intent":{"target":"GLOBAL"},"data":"`,
		`xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`,
	}
	for _, r := range reads {
		err := dec.Feed([]byte(r), func(f wire.Frame) error {
			if f.Bad != wire.ReasonNone {
				fmt.Printf("dropped (%s): %s\n", f.Bad.Label(), f.Doc)
				return nil
			}
			env, err := limits.ParseEnvelope(f.Doc)
			if err != nil {
				fmt.Println("dropped:", err)
				return nil
			}
			fmt.Println(env.Op, "accepted:", env.Identify.Accept("secret"))
			return nil
		})
		if errors.Is(err, wire.ReasonTooBig) {
			fmt.Println("send", wire.MsgMessageTooBig, "and close")
			break
		}
	}
	// Output:
	// PING accepted: false
	// IDENTIFY accepted: true
	// dropped (parse): {o
	// send {"op":2,"data":"MESSAGE_TOO_BIG"} and close
}

// Forwarding one EVENT to several recipients: encode once, patch a fresh id
// into each copy. The reference re-serialises, so whitespace and number
// formatting come out as JSON.stringify writes them.
func ExampleIDTemplate() {
	doc := []byte(`{"op": 0, "event": "HELLO", "data": {"n": 1e3}, "intent": {"target": "GLOBAL"}}`)
	tmpl, err := wire.NewIDTemplate(doc)
	if err != nil {
		panic(err)
	}
	ids := []wire.UUID{
		wire.UUID([]byte("ceb8cfd6-0000-4000-8000-000000000001")),
		wire.UUID([]byte("ceb8cfd6-0000-4000-8000-000000000002")),
	}
	for _, id := range ids { // in a server: gen.New() per recipient
		fmt.Printf("%s\n", tmpl.WithID(nil, id))
	}
	// Output:
	// {"op":0,"event":"HELLO","data":{"n":1000},"intent":{"target":"GLOBAL"},"id":"ceb8cfd6-0000-4000-8000-000000000001"}
	// {"op":0,"event":"HELLO","data":{"n":1000},"intent":{"target":"GLOBAL"},"id":"ceb8cfd6-0000-4000-8000-000000000002"}
}
