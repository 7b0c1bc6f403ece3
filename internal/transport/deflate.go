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
}

// deflateTail is the empty stored block that RFC 7692 strips from every
// message and the receiver appends again before inflating.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

// inflate returns the decompressed message; the result is valid until the
// next call. More than max bytes of output is a 1009 violation, which is
// what bounds a decompression bomb.
func (f *inflater) inflate(p []byte, max int) ([]byte, error) {
	src := io.MultiReader(bytes.NewReader(p), bytes.NewReader(deflateTail))
	var r io.ReadCloser
	if f.contextTakeover && len(f.window) > 0 {
		r = flate.NewReaderDict(src, f.window)
	} else {
		r = flate.NewReader(src)
	}
	defer r.Close()
	f.out.Reset()
	n, err := f.out.ReadFrom(io.LimitReader(r, int64(max)+1))
	if err != nil && err != io.ErrUnexpectedEOF {
		return nil, &violation{code: CloseInvalidPayload, reason: fmt.Sprintf("bad deflate data: %v", err)}
	}
	if n > int64(max) {
		return nil, &violation{code: CloseTooBig, reason: fmt.Sprintf("message over %d bytes after decompression", max)}
	}
	out := f.out.Bytes()
	if f.contextTakeover {
		f.window = append(f.window, out...)
		if len(f.window) > 32<<10 {
			f.window = append(f.window[:0], f.window[len(f.window)-32<<10:]...)
		}
	}
	return out, nil
}
