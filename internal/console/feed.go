package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/switchboard-rt/switchboard/internal/engine"
)

// The live feed: one Server-Sent Events stream per viewer.
//
//	event: history   the per-second samples kept so far (once, first)
//	event: state     a State, once a second
//	event: ev        one Event that passes the viewer's filter
//	event: dropped   {"dropped": N}: events this viewer lost so far, after each state
//
// The hub's tap (Published) hands each publication to one bounded intake
// without blocking; one goroutine (fanOut) describes it once and offers it
// to every viewer's bounded queue, dropping and counting where a queue is
// full. A viewer's handler writes its queue to the socket under a write
// deadline, so a browser that stops reading is cut off.

// maxViewers bounds the feeds open at once.
const maxViewers = 32

// feedWriteTimeout bounds one write to a viewer.
const feedWriteTimeout = 10 * time.Second

type dropCounter struct{ n atomic.Uint64 }

func (d *dropCounter) add()         { d.n.Add(1) }
func (d *dropCounter) load() uint64 { return d.n.Load() }

type viewer struct {
	filter  Filter
	events  chan []byte // encoded Events
	state   chan []byte // the latest encoded State; capacity 1
	dropped dropCounter
}

// Published implements hub.Tap. It runs on the publisher's goroutine: a
// non-blocking send, nothing more.
func (c *Console) Published(p engine.Publication) {
	select {
	case c.intake <- p:
	default:
		c.lost.add()
	}
}

// fanOut describes each tapped publication once and offers it to every
// viewer whose filter it passes.
func (c *Console) fanOut(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-c.ctx.Done():
			return
		case p := <-c.intake:
			ev := describe(c.opts.Protocol(p.Namespace), p)
			ev.T = now().UnixMilli()
			b, err := json.Marshal(&ev)
			if err != nil {
				continue
			}
			c.mu.Lock()
			for v := range c.viewers {
				if !v.filter.Match(&ev) {
					continue
				}
				select {
				case v.events <- b:
				default:
					v.dropped.add()
				}
			}
			c.mu.Unlock()
		}
	}
}

// addViewer registers v and installs the tap for the first viewer.
func (c *Console) addViewer(v *viewer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || len(c.viewers) >= maxViewers {
		return false
	}
	if len(c.viewers) == 0 {
		c.opts.Hub.SetTap(c)
	}
	c.viewers[v] = struct{}{}
	return true
}

// removeViewer forgets v and removes the tap after the last viewer.
func (c *Console) removeViewer(v *viewer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.viewers, v)
	if len(c.viewers) == 0 {
		c.opts.Hub.SetTap(nil)
	}
}

// broadcastState sends one snapshot to every viewer, replacing one that
// a viewer has not written yet.
func (c *Console) broadcastState() {
	c.mu.Lock()
	n := len(c.viewers)
	c.mu.Unlock()
	if n == 0 {
		return
	}
	st := c.snapshot(c.ctx)
	b, err := json.Marshal(&st)
	if err != nil {
		return
	}
	c.mu.Lock()
	for v := range c.viewers {
		select {
		case <-v.state: // stale, not yet written
		default:
		}
		select {
		case v.state <- b:
		default:
		}
	}
	c.mu.Unlock()
}

// feed serves one viewer's event stream.
func (c *Console) feed(w http.ResponseWriter, r *http.Request) {
	f, err := ParseFilter(r.URL.Query())
	if err != nil {
		writeJSONError(w, http.StatusBadRequest, err.Error())
		return
	}
	v := &viewer{filter: f, events: make(chan []byte, c.opts.ViewerBuffer), state: make(chan []byte, 1)}
	if !c.addViewer(v) {
		writeJSONError(w, http.StatusServiceUnavailable, "too many console viewers, or shutting down")
		return
	}
	defer c.removeViewer(v)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	buf.WriteString("retry: 2000\n\n")
	frame(&buf, "history", c.history())
	if st, err := json.Marshal(c.snapshot(r.Context())); err == nil {
		frame(&buf, "state", st)
	}
	var lastDropped uint64
	for {
		if buf.Len() > 0 {
			_ = rc.SetWriteDeadline(now().Add(feedWriteTimeout))
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			buf.Reset()
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.ctx.Done():
			return
		case b := <-v.state:
			frame(&buf, "state", b)
			if d := v.dropped.load(); d != lastDropped || d == 0 {
				lastDropped = d
				frame(&buf, "dropped", []byte(`{"dropped":`+strconv.FormatUint(d, 10)+`}`))
			}
		case b := <-v.events:
			frame(&buf, "ev", b)
			// Write what else is queued in the same flush.
			for more := len(v.events); more > 0 && buf.Len() < 64<<10; more-- {
				frame(&buf, "ev", <-v.events)
			}
		}
	}
}

// frame appends one SSE message; data is one line of JSON.
func frame(buf *bytes.Buffer, event string, data []byte) {
	buf.WriteString("event: ")
	buf.WriteString(event)
	buf.WriteString("\ndata: ")
	buf.Write(data)
	buf.WriteString("\n\n")
}
