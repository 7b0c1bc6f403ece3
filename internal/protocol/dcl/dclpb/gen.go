// Package dclpb holds the Go types of the Decentraland ws-room protocol
// (package decentraland.kernel.comms.rfc5), generated from
// proto/decentraland/ws_comms.proto, plus Decode, the bounded and lenient
// decoder the room server uses for inbound frames.
package dclpb

//go:generate sh ../../../../scripts/gen-proto.sh
