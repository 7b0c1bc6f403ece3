package natsengine

import (
	"encoding/binary"
	"errors"
)

// The envelope is what travels on core NATS: a publication, or a control
// message (terminate a user, kick a claimed connection). It is a compact
// binary frame, not JSON, because every cross-node publication is encoded
// once and decoded on every node with interest:
//
//	version(1) kind(1) flags(1) then four uvarint-length-prefixed strings
//	(origin node, namespace, channel, conn) and the payload (the rest).
//
// For a publication conn is the excluded connection; for a terminate the
// channel field is the user id; for a kick channel is the claim key and
// conn the connection to end. Measured with
// go test -run '^$' -bench Envelope ./internal/engine/nats/
type envelope struct {
	Kind      byte
	Binary    bool
	Origin    string
	Namespace string
	Channel   string
	Conn      string
	Payload   []byte
}

const (
	envVersion byte = 1

	kindPublish   byte = 1
	kindTerminate byte = 2
	kindKick      byte = 3

	flagBinary byte = 1
)

var errEnvelope = errors.New("natsengine: malformed envelope")

// appendEnvelope appends e's encoding to b.
func appendEnvelope(b []byte, e *envelope) []byte {
	var flags byte
	if e.Binary {
		flags |= flagBinary
	}
	b = append(b, envVersion, e.Kind, flags)
	for _, s := range [...]string{e.Origin, e.Namespace, e.Channel, e.Conn} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return append(b, e.Payload...)
}

func envelopeSize(e *envelope) int {
	return 3 + 4*binary.MaxVarintLen32 + len(e.Origin) + len(e.Namespace) + len(e.Channel) + len(e.Conn) + len(e.Payload)
}

// decodeEnvelope parses b; the payload aliases b. Input comes from the
// broker, which anyone with access to it may write to: every length is
// checked, unknown versions and kinds are refused.
func decodeEnvelope(b []byte, e *envelope) error {
	if len(b) < 3 || b[0] != envVersion {
		return errEnvelope
	}
	e.Kind = b[1]
	if e.Kind < kindPublish || e.Kind > kindKick || b[2]&^flagBinary != 0 {
		return errEnvelope
	}
	e.Binary = b[2]&flagBinary != 0
	b = b[3:]
	for _, dst := range [...]*string{&e.Origin, &e.Namespace, &e.Channel, &e.Conn} {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return errEnvelope
		}
		*dst = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	e.Payload = b
	return nil
}
