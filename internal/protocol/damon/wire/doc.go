// Package wire is the transport-independent wire layer of the Damon
// "master socket" protocol (Damon-Org/Socket; see docs/damon.md): framing of the raw TCP stream, envelope
// classification, and byte-exact encoding of everything the server sends.
// It knows nothing about connections, routing or the hub.
//
// # Using it from a server
//
// TCP read loop, one Decoder and one UUIDGenerator per connection:
//
//	dec := wire.NewDecoder(limits)
//	err := dec.Feed(buf[:n], func(f wire.Frame) error {
//		if f.Bad != wire.ReasonNone { // malformed: count, log f.Doc, keep going
//			drops.Inc(f.Bad.Label())
//			return nil
//		}
//		return handle(f.Doc) // f.Doc is only valid during the callback
//	})
//	if errors.Is(err, wire.ReasonTooBig) { write(wire.MsgMessageTooBig); close() }
//
// A WebSocket front-end calls handle on each text message instead; there
// limits.ParseEnvelope itself reports ReasonTooBig.
//
// handle(doc) classifies with limits.ParseEnvelope. Any error is a Reason: a
// silent drop to count under Reason.Label (ReasonIdentifyNoData included:
// the reference sends no reply). On success, by env.Op:
//
//	OpEvent     tmpl, _ := env.IDTemplate(); per recipient:
//	            send(tmpl.WithID(buf, gen.New()))   // fresh id each, key in place or appended
//	OpReply     msg, _ := env.AppendCanonical(nil); send msg to every recipient (id kept)
//	OpIdentify  if !env.Identify.Accept(token) { write(MsgIdentifyFailed); close() }
//	            else { key, ok := env.Identify.Group.MapKey() // ok: addressable group
//	                   write(AppendIdentifyReply(nil, connID, pingMS)) }
//	OpPing      write(MsgPong)
//	OpPong      mark alive
//	OpDisconnect ignore
//
// Recipients of EVENT/REPLY: env.Target with env.Identifier; DIRECT looks up
// string(env.Identifier.Text()) when env.Identifier.Kind() == KindString,
// GROUP looks up env.Identifier.MapKey(). Cross-node, publish the canonical
// bytes (AppendCanonical) and let the receiving node build the template from
// them: canonical output is a fixed point, so classification and bytes are
// the same there, as with the reference's Redis round trip.
//
// # What recipients receive
//
// The reference forwards JSON.stringify(JSON.parse(doc)), not the received
// bytes; canonical.go reproduces that byte for byte (whitespace, number
// printing, string escapes, duplicate keys, integer-key order) and
// node_test.go checks it against Node. Deliberate differences from the
// reference, all documented where they are implemented:
//   - framing: a streaming decoder instead of JSON.parse per TCP chunk, a
//     per-document size limit instead of a per-chunk one, resynchronisation
//     after malformed input (decoder.go);
//   - a nesting limit (Limits.MaxDepth, ReasonTooDeep) the reference lacks;
//   - constant-time token comparison (Identify.Accept);
//   - uuids from a crypto/rand-keyed ChaCha8 stream (uuid.go).
package wire
