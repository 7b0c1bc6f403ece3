package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/authchain/authchaintest"
	"github.com/switchboard-rt/switchboard/internal/protocol/dcl/dclpb"
)

// DCLConfig: Conns Decentraland ws-room peers (docs/decentraland.md) join
// Rooms rooms (round robin) through the full handshake, each with its own
// wallet and ephemeral key signing the server's challenge; then peers send
// peer_update_message at each of Rates in turn (round robin over the
// rooms, a different member of the room each time), which the server
// relays to every other peer of the room.
type DCLConfig struct {
	Common
	// PathPrefix is the server's room route (dcl.path_prefixes).
	PathPrefix   string
	Rooms        int
	SendWorkers  int
	Rates        []float64
	StepDuration time.Duration
	Pause        time.Duration
	Limits       StepLimits
	KeepGoing    bool
}

func (c DCLConfig) validate() error {
	if c.Rooms <= 0 || c.Conns < 2*c.Rooms {
		return errors.New("dcl: need rooms > 0 and at least two peers per room")
	}
	if c.PathPrefix == "" || c.PathPrefix[0] != '/' || strings.HasSuffix(c.PathPrefix, "/") {
		return fmt.Errorf("dcl: path prefix %q: want /something", c.PathPrefix)
	}
	if len(c.Rates) == 0 || c.StepDuration <= 0 || c.SendWorkers <= 0 {
		return errors.New("dcl: at least one rate, a step duration and send workers > 0")
	}
	for _, r := range c.Rates {
		if r <= 0 {
			return errors.New("dcl: rates must be > 0")
		}
	}
	return nil
}

func dclRoom(k int) string { return "sb-room-" + strconv.Itoa(k) }

// dclPeerUpdateTag is the first byte of a WsPacket holding a
// peer_update_message (field 3, length-delimited): receivers check it
// before looking for a stamp, so welcome/join/leave packets never count.
var dclPeerUpdateTag = byte(protowire.EncodeTag(3, protowire.BytesType))

// dclUpdate appends a WsPacket{peer_update_message{body}} (reliable; the
// server overwrites from_alias, so the client leaves it out).
func dclUpdate(dst, body []byte) []byte {
	var inner []byte
	inner = protowire.AppendTag(inner, 2, protowire.BytesType)
	inner = protowire.AppendBytes(inner, body)
	dst = protowire.AppendTag(dst, 3, protowire.BytesType)
	return protowire.AppendBytes(dst, inner)
}

// dclJoin opens one connection to room and runs the client's handshake:
// identification with a fresh wallet, the challenge signed through a fresh
// ephemeral key (a three-link auth chain, as the explorers send), welcome.
func dclJoin(ctx context.Context, cfg DCLConfig, d *sourceDialer, clock *Clock, id int, room string) (*msgConn, error) {
	wallet, err := authchaintest.NewIdentity()
	if err != nil {
		return nil, err
	}
	eph, err := authchaintest.NewIdentity()
	if err != nil {
		return nil, err
	}
	nc, br, err := dialWS(ctx, "ws://"+cfg.Target.Addr()+cfg.PathPrefix+"/"+room, d, []string{"rfc5"})
	if err != nil {
		return nil, err
	}
	c := newWSMsgConn(id, nc, br, clock, ws.OpBinary)
	fail := func(format string, args ...any) (*msgConn, error) {
		c.Close()
		return nil, setupErrorf(format, args...)
	}
	send := func(p *dclpb.WsPacket) error {
		b, err := proto.Marshal(p)
		if err != nil {
			return err
		}
		return c.Send(b)
	}
	dl, _ := ctx.Deadline()
	if err := send(&dclpb.WsPacket{Message: &dclpb.WsPacket_PeerIdentification{
		PeerIdentification: &dclpb.WsIdentification{Address: wallet.Address}}}); err != nil {
		return fail("identification: %w", err)
	}
	msg, err := c.next(dl)
	if err != nil {
		return fail("waiting for the challenge: %w", err)
	}
	pkt, err := dclpb.Decode(msg, 0)
	if err != nil {
		return fail("challenge: %w", err)
	}
	ch := pkt.GetChallengeMessage()
	if ch == nil {
		if k := pkt.GetPeerKicked(); k != nil {
			return fail("kicked: %s", k.Reason)
		}
		return fail("first packet is not a challenge: %v", pkt)
	}
	login := wallet.Delegate(eph, time.Now().Add(24*time.Hour))
	if err := send(&dclpb.WsPacket{Message: &dclpb.WsPacket_SignedChallengeForServer{
		SignedChallengeForServer: &dclpb.WsSignedChallenge{
			AuthChainJson: string(authchaintest.JSON(login.Sign(ch.ChallengeToSign)))}}}); err != nil {
		return fail("signed challenge: %w", err)
	}
	for {
		msg, err := c.next(dl)
		if err != nil {
			return fail("waiting for the welcome (auth chain refused?): %w", err)
		}
		pkt, err := dclpb.Decode(msg, 0)
		if err != nil {
			return fail("after the challenge: %w", err)
		}
		if pkt.GetWelcomeMessage() != nil {
			return c, nil
		}
		if k := pkt.GetPeerKicked(); k != nil {
			return fail("kicked: %s", k.Reason)
		}
	}
}

// RunDCL runs the ws-room fan-out scenario: memory per idle joined peer,
// then a peer_update rate ramp.
func RunDCL(ctx context.Context, cfg DCLConfig, env Env) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	params := map[string]any{
		"conns": cfg.Conns, "rooms": cfg.Rooms, "path_prefix": cfg.PathPrefix, "rates": cfg.Rates,
		"step_s": cfg.StepDuration.Seconds(), "max_p99_ms": float64(cfg.Limits.MaxP99) / 1e6,
		"max_missing_ratio": cfg.Limits.MaxMissingRatio, "payload_bytes": cfg.PayloadBytes,
		"send_workers": cfg.SendWorkers, "settle_s": cfg.Settle.Seconds(),
	}
	r, err := newProtoRunner("dcl", "dcl", cfg.Common, cfg.Conns, env, params)
	if err != nil {
		return nil, err
	}
	n := r.capConns(cfg.Conns)
	steps := newStepTable(len(cfg.Rates))
	onMsg := func(c *msgConn, msg []byte) {
		if len(msg) > 0 && msg[0] == dclPeerUpdateTag {
			steps.recordStampedID(c.ID, msg, r.clock.Now())
		}
	}
	dialer := newSourceDialer(cfg.SourceAddrs, cfg.ConnectTimeout)
	f := protoFanout{
		r: r, pool: newMsgPool(cfg.Common, r.clock, r.log), n: n, steps: steps,
		ramp: ramp{Rates: cfg.Rates, StepDuration: cfg.StepDuration, Pause: cfg.Pause, Workers: cfg.SendWorkers,
			Limits: cfg.Limits, KeepGoing: cfg.KeepGoing, Drain: cfg.Drain},
	}
	f.dial = func(ctx context.Context, id int) (*msgConn, error) {
		c, err := dclJoin(ctx, cfg, dialer, r.clock, id, dclRoom(id%cfg.Rooms))
		if err == nil {
			c.start(onMsg)
		}
		return c, err
	}
	f.prepare = func(conns []*msgConn) (rampSend, error) {
		members := make([][]*msgConn, cfg.Rooms)
		for _, c := range conns {
			members[c.ID%cfg.Rooms] = append(members[c.ID%cfg.Rooms], c)
		}
		for k, m := range members {
			if len(m) < 2 {
				return nil, fmt.Errorf("dcl: room %s has %d peers; a relay needs two", dclRoom(k), len(m))
			}
		}
		return func(_ context.Context, step int, seq, due int64) (int64, error) {
			k := int(seq % int64(cfg.Rooms))
			m := members[k]
			c := m[(seq/int64(cfg.Rooms))%int64(len(m))]
			body := appendStamp(make([]byte, 0, 64+cfg.PayloadBytes), step, seq, due, cfg.PayloadBytes)
			return int64(len(m) - 1), c.Send(dclUpdate(make([]byte, 0, len(body)+8), body))
		}, nil
	}
	return f.run(ctx)
}
