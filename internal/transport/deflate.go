package transport

import (
	"bytes"
	"compress/flate"
	"fmt"
	"io"
)

// inflater decompresses one connection's permessage-deflate messages. Unless
// the client agreed to client_no_context_takeover, each message may refer
// back into the previous 32 KiB of output, so that window is kept.
type inflater struct {
	contextTakeover bool
	window          []byte
	out             bytes.Buffer
	src             inflateSource
}

// deflateTail is the empty stored block that RFC 7692 strips from every
// message (its LEN and NLEN; the block header bits stay in the payload).
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflateTail is what the receiver appends to a message before inflating.
// RFC 7692 appends deflateTail; that cannot tell a whole message from one
// cut short, because a cut block simply decodes on into the appended bytes
// and ends in an unexpected EOF either way (issue 14: the prefix reached
// the handler). So instead of the empty stored block, the header bits the
// sender left are completed into a stored block holding two sentinel bytes,
// followed by an empty final block. A whole message inflates to its text,
// then the sentinel, then a clean end of stream; a cut one runs its last
// block into these bytes and either fails or does not end on the sentinel.
var inflateTail = []byte{
	0x02, 0x00, 0xfd, 0xff, sentinel0, sentinel1, // stored block: LEN 2, NLEN ^2, data
	0x01, 0x00, 0x00, 0xff, 0xff, // final empty stored block
}

const sentinel0, sentinel1 = 0xa5, 0x5a

// inflate returns the decompressed message; the result is valid until the
// next call. More than max bytes of output is a 1009 violation, which is
// what bounds a decompression bomb; a truncated or corrupt body is 1007.
func (f *inflater) inflate(p []byte, max int) ([]byte, error) {
	if len(p) == 0 {
		// Not a DEFLATE stream, but some senders mark an empty message
		// compressed; it can only mean the empty message.
		return nil, nil
	}
	f.src = inflateSource{p: p}
	var r io.ReadCloser
	if f.contextTakeover && len(f.window) > 0 {
		r = flate.NewReaderDict(&f.src, f.window)
	} else {
		r = flate.NewReader(&f.src)
	}
	defer func() { _ = r.Close() }() // a stream error already came out of ReadFrom
	f.out.Reset()
	// Room for the sentinel on top of max.
	n, err := f.out.ReadFrom(io.LimitReader(r, int64(max)+3))
	out := f.out.Bytes()
	switch {
	case err != nil:
		// ReadFrom stops without error only at io.EOF, after a final block.
	case f.src.off <= len(p):
		// The sender ended with a final block of its own (RFC 7692 section
		// 7.2.3.4); the decoder never reached the appended bytes.
	case f.src.off == len(p)+len(inflateTail) && n >= 2 && out[n-2] == sentinel0 && out[n-1] == sentinel1:
		out = out[:n-2] // the sender's sync flush, completed by inflateTail
	default:
		err = io.ErrUnexpectedEOF // the last block ran into inflateTail
	}
	if len(out) > max {
		return nil, &violation{code: CloseTooBig, reason: fmt.Sprintf("message over %d bytes after decompression", max)}
	}
	if err != nil {
		return nil, &violation{code: CloseInvalidPayload, reason: fmt.Sprintf("bad deflate data: %v", err)}
	}
	if f.contextTakeover {
		f.window = append(f.window, out...)
		if len(f.window) > 32<<10 {
			f.window = append(f.window[:0], f.window[len(f.window)-32<<10:]...)
		}
	}
	return out, nil
}

// inflateSource reads a message followed by inflateTail. It is a
// flate.Reader (it has ReadByte), so the decoder reads exactly the bytes it
// needs and off says how far it got.
type inflateSource struct {
	p   []byte
	off int
}

func (s *inflateSource) ReadByte() (byte, error) {
	switch {
	case s.off < len(s.p):
		s.off++
		return s.p[s.off-1], nil
	case s.off < len(s.p)+len(inflateTail):
		s.off++
		return inflateTail[s.off-1-len(s.p)], nil
	}
	return 0, io.EOF
}

func (s *inflateSource) Read(b []byte) (int, error) {
	n := 0
	if s.off < len(s.p) {
		n = copy(b, s.p[s.off:])
	}
	if t := s.off + n - len(s.p); n < len(b) && t >= 0 && t < len(inflateTail) {
		n += copy(b[n:], inflateTail[t:])
	}
	s.off += n
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
}
