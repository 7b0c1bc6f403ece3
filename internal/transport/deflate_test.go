package transport

import (
	"bytes"
	"compress/flate"
	"errors"
	"testing"
)

// TestInflateMessageEnds covers the ways a permessage-deflate message may
// end (RFC 7692 section 7.2.3) and the ways a cut one must not pass.
func TestInflateMessageEnds(t *testing.T) {
	text := bytes.Repeat([]byte("switchboard inflate "), 20)
	var final bytes.Buffer // ended by a BFINAL block instead of a sync flush
	zw, _ := flate.NewWriter(&final, flate.BestSpeed)
	_, _ = zw.Write(text)
	_ = zw.Close()
	synced := compressMessage(t, text)

	for _, tc := range []struct {
		name string
		in   []byte
		want []byte
		code uint16
	}{
		{"empty payload", nil, nil, 0},
		{"lone 0x00 (section 7.2.3.6)", []byte{0x00}, nil, 0},
		{"sync flush, tail removed", synced, text, 0},
		{"final block (section 7.2.3.4)", final.Bytes(), text, 0},
		{"final block, then an empty stored block", append(bytes.Clone(final.Bytes()), 0x00), text, 0},
		{"cut by one byte", synced[:len(synced)-1], nil, CloseInvalidPayload},
		{"cut in half", synced[:len(synced)/2], nil, CloseInvalidPayload},
		{"final block cut", final.Bytes()[:final.Len()-2], nil, CloseInvalidPayload},
		{"garbage", []byte{0xff, 0xff, 0xff}, nil, CloseInvalidPayload},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &inflater{contextTakeover: true}
			out, err := f.inflate(tc.in, 1<<20)
			var v *violation
			switch {
			case tc.code != 0 && (!errors.As(err, &v) || v.code != tc.code):
				t.Fatalf("got %q, %v; want close %d", out, err, tc.code)
			case tc.code == 0 && (err != nil || !bytes.Equal(out, tc.want)):
				t.Fatalf("got %q, %v; want %q", out, err, tc.want)
			}
		})
	}
}
