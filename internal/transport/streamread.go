package transport

import (
	"io"

	"golang.org/x/sys/unix"
)

// readPooled is the stream reader for a socket with a RawConn: it takes a
// read buffer from the server's pool only once the kernel has bytes for it,
// and gives it back after the handler has seen them. The goroutine still
// waits in the runtime's poller, but an idle connection no longer holds a
// 4 KiB buffer (a raw-TCP Damon connection: 12.3 KB of RSS each before,
// docs/benchmarks.md). It returns io.EOF when the peer closed, or why the
// socket could not be read (a deadline, a reset).
func (c *streamConn) readPooled() error {
	var (
		bp   *[]byte
		n    int
		rerr error
	)
	// read is called by RawConn.Read: first at once, then each time the
	// poller reports the socket readable, until it returns true.
	read := func(fd uintptr) bool {
		bp = c.srv.bufs.Get().(*[]byte)
		for {
			n, rerr = unix.Read(int(fd), *bp)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			c.srv.bufs.Put(bp)
			bp = nil
			return false // wait for bytes without a buffer
		}
		return true
	}
	for {
		if err := c.rc.Read(read); err != nil {
			return err
		}
		switch {
		case rerr != nil:
			c.srv.bufs.Put(bp)
			return rerr
		case n <= 0:
			c.srv.bufs.Put(bp)
			return io.EOF
		}
		c.received((*bp)[:n])
		c.srv.bufs.Put(bp)
		bp = nil
	}
}
