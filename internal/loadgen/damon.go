package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/gobwas/ws"
)

// DamonConfig: Conns connections to a Damon master socket (docs/damon.md)
// identify with Token, spread over Groups groups; Senders more connections
// send EVENTs with intent GLOBAL (every connection receives each, the
// senders included) or GROUP (the members of one group, round robin over
// the groups), at each of Rates in turn.
type DamonConfig struct {
	Common
	// TCPAddr is the raw TCP listener (host:port); empty uses the
	// WebSocket endpoint WSPath on Target instead.
	TCPAddr string
	WSPath  string
	Token   string
	// Intent is "GLOBAL" or "GROUP".
	Intent       string
	Groups       int
	Senders      int
	Rates        []float64
	StepDuration time.Duration
	Pause        time.Duration
	Limits       StepLimits
	KeepGoing    bool
}

func (c DamonConfig) validate() error {
	if c.Conns <= 0 || c.Senders <= 0 || c.Groups <= 0 || c.Groups > c.Conns {
		return errors.New("damon: need conns >= groups > 0 and senders > 0")
	}
	if c.Intent != "GLOBAL" && c.Intent != "GROUP" {
		return fmt.Errorf("damon: intent %q: want GLOBAL or GROUP", c.Intent)
	}
	if c.Token == "" {
		return errors.New("damon: a token is required (the server's damon.token)")
	}
	if len(c.Rates) == 0 || c.StepDuration <= 0 {
		return errors.New("damon: at least one rate and a step duration > 0")
	}
	for _, r := range c.Rates {
		if r <= 0 {
			return errors.New("damon: rates must be > 0")
		}
	}
	if c.TCPAddr != "" {
		host, _, err := net.SplitHostPort(c.TCPAddr)
		if err != nil {
			return fmt.Errorf("damon: TCP address: %w", err)
		}
		if !c.Target.AllowRemote && !IsLoopbackHost(host) {
			return fmt.Errorf("damon: TCP address %q is not loopback; pass --allow-remote to name it explicitly", c.TCPAddr)
		}
	} else if c.WSPath == "" || c.WSPath[0] != '/' {
		return errors.New("damon: a TCP address or a WebSocket path starting with /")
	}
	return nil
}

// Damon documents the generator sends or recognises, byte for byte as the
// server prints them (docs/damon.md).
var (
	damonPing = []byte(`{"op":3}`)
	damonPong = []byte(`{"op":4}`)
)

func damonGroup(i int) string { return "sb-g-" + strconv.Itoa(i) }

// damonSenderGroup holds the senders, so that a GROUP EVENT reaches only
// the receivers of the group it names.
const damonSenderGroup = "sb-senders"

// damonIdentify is an IDENTIFY document.
func damonIdentify(group, token string) []byte {
	b := []byte(`{"op":1,"data":{"group":`)
	b = strconv.AppendQuote(b, group)
	b = append(b, `,"token":`...)
	b = strconv.AppendQuote(b, token)
	return append(b, "}}"...)
}

// damonEvent is an EVENT carrying stamp as its data, for GLOBAL (group "")
// or the GROUP group.
func damonEvent(dst []byte, stamp []byte, group string) []byte {
	dst = append(dst, `{"op":0,"event":"sb-bench","data":`...)
	dst = append(dst, stamp...)
	if group == "" {
		return append(dst, `,"intent":{"target":"GLOBAL"}}`...)
	}
	dst = append(dst, `,"intent":{"target":"GROUP","identifier":`...)
	dst = strconv.AppendQuote(dst, group)
	return append(dst, "}}"...)
}

// damonOp returns the op of a document as the server prints it
// ({"op":N,…} or, for EVENTs, {"id":…,"op":0,…}); -1 when there is none.
func damonOp(doc []byte) int {
	i := bytes.Index(doc, []byte(`"op":`))
	if i < 0 || i+5 >= len(doc) || doc[i+5] < '0' || doc[i+5] > '9' {
		return -1
	}
	return int(doc[i+5] - '0')
}

// jsonDocReader splits the raw TCP stream into JSON documents: the
// protocol sends objects back to back with no delimiter (whitespace
// between them is skipped). It tracks strings and nesting only; the server
// is trusted to send well-formed JSON. It scans whatever the reader has
// buffered in one pass (a GLOBAL fan-out delivers hundreds of thousands of
// documents a second to the generator).
type jsonDocReader struct {
	br  *bufio.Reader
	buf []byte
	// scanner state, kept across buffer refills within one document
	depth      int
	inStr, esc bool
}

func (d *jsonDocReader) next() ([]byte, error) {
	d.buf = d.buf[:0]
	d.depth, d.inStr, d.esc = 0, false, false
	for {
		if d.br.Buffered() == 0 {
			if _, err := d.br.Peek(1); err != nil {
				return nil, err
			}
		}
		chunk, _ := d.br.Peek(d.br.Buffered())
		start := 0
		for i, b := range chunk {
			if d.depth == 0 && len(d.buf) == 0 && start == i && b != '{' {
				start = i + 1 // between documents
				continue
			}
			if !d.step(b) {
				continue
			}
			d.buf = append(d.buf, chunk[start:i+1]...)
			_, _ = d.br.Discard(i + 1) // within what is buffered
			return d.buf, nil
		}
		d.buf = append(d.buf, chunk[start:]...)
		_, _ = d.br.Discard(len(chunk))
		if len(d.buf) > maxFrame {
			return nil, fmt.Errorf("document exceeds %d bytes", maxFrame)
		}
	}
}

// step feeds one byte of a document and reports whether it closed it.
func (d *jsonDocReader) step(b byte) bool {
	switch {
	case d.inStr:
		switch {
		case d.esc:
			d.esc = false
		case b == '\\':
			d.esc = true
		case b == '"':
			d.inStr = false
		}
	case b == '"':
		d.inStr = true
	case b == '{' || b == '[':
		d.depth++
	case b == '}' || b == ']':
		d.depth--
		return d.depth == 0
	}
	return false
}

// damonControl answers the server's heartbeat: a connection that does not
// answer {"op":3} with {"op":4} by the next tick is dropped.
func damonControl(c *msgConn, msg []byte) bool {
	if bytes.Equal(msg, damonPing) {
		_ = c.Send(damonPong)
		return true
	}
	return bytes.Equal(msg, damonPong)
}

// dialDamon opens one connection (raw TCP or WebSocket) and identifies
// into group.
func dialDamon(ctx context.Context, cfg DamonConfig, d *sourceDialer, clock *Clock, id int, group string) (*msgConn, error) {
	var c *msgConn
	if cfg.TCPAddr != "" {
		nc, err := d.DialContext(ctx, "tcp", cfg.TCPAddr)
		if err != nil {
			return nil, fmt.Errorf("dial: %w", err)
		}
		dr := &jsonDocReader{br: bufio.NewReaderSize(nc, readBufSize)}
		c = &msgConn{ID: id, nc: nc, clock: clock, done: make(chan struct{}), read: dr.next,
			frame: func(msg []byte) ([]byte, error) { return msg, nil }}
	} else {
		nc, br, err := dialWS(ctx, "ws://"+cfg.Target.Addr()+cfg.WSPath, d, nil)
		if err != nil {
			return nil, err
		}
		c = newWSMsgConn(id, nc, br, clock, ws.OpText)
	}
	c.control = damonControl
	if err := c.Send(damonIdentify(group, cfg.Token)); err != nil {
		c.Close()
		return nil, fmt.Errorf("identify: %w", err)
	}
	dl, _ := ctx.Deadline()
	for {
		doc, err := c.next(dl)
		if err != nil {
			c.Close()
			return nil, setupErrorf("waiting for the IDENTIFY answer: %w", err)
		}
		if damonControl(c, doc) {
			continue
		}
		switch damonOp(doc) {
		case 1:
			return c, nil
		case 2:
			c.Close()
			return nil, setupErrorf("identify refused: %s", doc)
		}
	}
}

// RunDamon runs the Damon fan-out scenario: memory per idle identified
// connection, then a GLOBAL or GROUP EVENT rate ramp.
func RunDamon(ctx context.Context, cfg DamonConfig, env Env) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	transport := "tcp " + cfg.TCPAddr
	if cfg.TCPAddr == "" {
		transport = "websocket " + cfg.WSPath
	}
	params := map[string]any{
		"conns": cfg.Conns, "senders": cfg.Senders, "groups": cfg.Groups, "intent": cfg.Intent,
		"transport": transport, "rates": cfg.Rates, "step_s": cfg.StepDuration.Seconds(),
		"max_p99_ms": float64(cfg.Limits.MaxP99) / 1e6, "max_missing_ratio": cfg.Limits.MaxMissingRatio,
		"payload_bytes": cfg.PayloadBytes, "settle_s": cfg.Settle.Seconds(),
	}
	total := cfg.Conns + cfg.Senders
	r, err := newProtoRunner("damon", "damon", cfg.Common, total, env, params)
	if err != nil {
		return nil, err
	}
	if cfg.TCPAddr != "" {
		r.rep.Target = cfg.TCPAddr
	}
	n := r.capConns(total)
	steps := newStepTable(len(cfg.Rates))
	onMsg := func(c *msgConn, msg []byte) { steps.recordStampedID(c.ID, msg, r.clock.Now()) }
	dialer := newSourceDialer(cfg.SourceAddrs, cfg.ConnectTimeout)
	f := protoFanout{
		r: r, pool: newMsgPool(cfg.Common, r.clock, r.log), n: n, steps: steps,
		ramp: ramp{Rates: cfg.Rates, StepDuration: cfg.StepDuration, Pause: cfg.Pause, Workers: cfg.Senders,
			Limits: cfg.Limits, KeepGoing: cfg.KeepGoing, Drain: cfg.Drain},
	}
	// Ids below Senders send; the rest receive, group id % Groups.
	f.dial = func(ctx context.Context, id int) (*msgConn, error) {
		group := damonSenderGroup
		if id >= cfg.Senders {
			group = damonGroup(id % cfg.Groups)
		}
		c, err := dialDamon(ctx, cfg, dialer, r.clock, id, group)
		if err == nil {
			c.start(onMsg)
		}
		return c, err
	}
	f.prepare = func(conns []*msgConn) (rampSend, error) {
		var senders []*msgConn
		members := make([]int64, cfg.Groups)
		for _, c := range conns {
			if c.ID < cfg.Senders {
				senders = append(senders, c)
			} else {
				members[c.ID%cfg.Groups]++
			}
		}
		if len(senders) == 0 {
			return nil, errors.New("damon: no sender connected")
		}
		all := int64(len(conns))
		return func(_ context.Context, step int, seq, due int64) (int64, error) {
			stamp := appendStamp(make([]byte, 0, 64+cfg.PayloadBytes), step, seq, due, cfg.PayloadBytes)
			c := senders[seq%int64(len(senders))]
			if cfg.Intent == "GLOBAL" {
				return all, c.Send(damonEvent(make([]byte, 0, 128+len(stamp)), stamp, ""))
			}
			k := int(seq % int64(cfg.Groups))
			return members[k], c.Send(damonEvent(make([]byte, 0, 128+len(stamp)), stamp, damonGroup(k)))
		}, nil
	}
	return f.run(ctx)
}
