package damon

import (
	"errors"

	"github.com/switchboard-rt/switchboard/internal/protocol/damon/wire"
)

// ErrNotForwardable is Inject's answer to a document that is neither an
// EVENT nor a REPLY.
var ErrNotForwardable = errors.New("damon: only EVENT (op 0) and REPLY (op 5) documents can be published")

// Inject routes doc, one EVENT or REPLY document, as if an identified
// client had sent it: by its intent, with a fresh id per recipient for an
// EVENT. Operator tools (the console's test publish) use it. A document a
// client's would be dropped for is refused with the wire.Reason; one that
// reaches nobody is still published, as a client's is.
func (s *Server) Inject(doc []byte) error {
	env, err := s.limits.ParseEnvelope(doc)
	if err != nil {
		return err
	}
	if env.Op != wire.OpEvent && env.Op != wire.OpReply {
		return ErrNotForwardable
	}
	ss := &session{srv: s, identified: true}
	ss.forward(&env, doc)
	return nil
}
