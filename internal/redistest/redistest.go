// Package redistest runs real redis-server processes for tests (Debian's
// redis-server, on 127.0.0.1 and a free port, without persistence, so a
// restart loses every key as a crashed cache node would). Imported by test
// files only.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	Port int
	bin  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Binary returns the redis-server binary, or ends the test: a failure
// under CI (the tool must be there), a skip elsewhere.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not found on PATH (CI is set): apt-get install redis-server")
		}
		t.Skip("redis-server not found on PATH; install it (apt-get install redis-server) to run the Redis tests")
	}
	return path
}

// Start starts a server on a free port and kills it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := start(Binary(t))
	if err != nil {
		t.Fatalf("redis-server did not start: %v", err)
	}
	t.Cleanup(s.Kill)
	return s
}

// start tries a few ports, since a port picked free may be taken before
// redis binds it.
func start(bin string) (*Server, error) {
	var lastErr error
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Port: port, bin: bin}
		if lastErr = s.run(); lastErr == nil {
			return s, nil
		}
	}
	return nil, lastErr
}

// Shared is one server for a package's tests, started on first use; each
// test keeps its keys apart (a prefix of its own). Call Stop from TestMain.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Get returns the shared server, starting it on first use.
func (sh *Shared) Get(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	sh.once.Do(func() { sh.srv, sh.err = start(bin) })
	if sh.srv == nil {
		t.Fatalf("redis-server did not start: %v", sh.err)
	}
	return sh.srv
}

// Stop kills the shared server if it was started.
func (sh *Shared) Stop() {
	if sh.srv != nil {
		sh.srv.Kill()
	}
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL.
func (s *Server) URL() string { return "redis://" + s.Addr() }

// Restart kills the server and starts an empty one on the same port.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Kill()
	if err := s.run(); err != nil {
		t.Fatalf("restart: %v", err)
	}
}

func (s *Server) run() error {
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--loglevel", "warning")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan struct{})
	var tail strings.Builder
	var mu sync.Mutex
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			mu.Lock()
			tail.WriteString(sc.Text() + "\n")
			mu.Unlock()
		}
		_ = cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("redis-server exited: %s", tail.String())
		default:
		}
		if Ping(s.Addr()) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // a process starting up: nothing to wait on but its port
	}
	s.Kill()
	return fmt.Errorf("redis-server on port %d did not answer PING", s.Port)
}

// Ping sends PING to addr and expects +PONG.
func Ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }() // a probe: its close error says nothing
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// Kill ends the server at once (SIGKILL: no save, no goodbye).
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}
