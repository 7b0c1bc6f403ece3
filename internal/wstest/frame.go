// Package wstest holds what the tests' hand-written WebSocket clients
// share. It is imported by test files only.
package wstest

import (
	"fmt"
	"io"

	"github.com/gobwas/ws"
)

// MaxFrame bounds a frame a test client reads: far above what any test
// sends, so only a broken length stops it.
const MaxFrame = 16 << 20

// ReadFrame reads one frame as ws.ReadFrame did (payload not unmasked),
// refusing a declared length over max instead of allocating whatever the
// peer announces.
func ReadFrame(r io.Reader, max int64) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > max {
		return ws.Frame{}, fmt.Errorf("frame payload of %d bytes, over %d", h.Length, max)
	}
	f := ws.Frame{Header: h}
	if h.Length > 0 {
		f.Payload = make([]byte, h.Length)
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			return ws.Frame{}, err
		}
	}
	return f, nil
}
