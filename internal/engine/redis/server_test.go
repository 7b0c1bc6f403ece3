package redisengine

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

// redisServer is a real redis-server on 127.0.0.1 and an ephemeral port,
// without persistence, so a restart loses every key (as a crashed cache
// node would).
type redisServer struct {
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

// needRedisServer returns the redis-server binary, or ends the test: a
// failure under CI (the tool must be there), a skip elsewhere.
func needRedisServer(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server not found on PATH (CI is set): apt-get install redis-server")
		}
		t.Skip("redis-server not found on PATH; install it (apt-get install redis-server) to run the Redis engine tests")
	}
	return path
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().(*net.TCPAddr).Port
}

// startRedis starts a server on a free port (trying a few, since a port
// picked this way may be taken before redis binds it) and kills it when t
// ends.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin := needRedisServer(t)
	var lastErr error
	for range 5 {
		s := &redisServer{port: freePort(t)}
		if lastErr = s.start(bin); lastErr == nil {
			t.Cleanup(s.kill)
			return s
		}
	}
	t.Fatalf("redis-server did not start: %v", lastErr)
	return nil
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }
func (s *redisServer) url() string  { return "redis://" + s.addr() }

func (s *redisServer) start(bin string) error {
	cmd := exec.Command(bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
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
	// Ready when it answers PING.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			mu.Lock()
			defer mu.Unlock()
			return fmt.Errorf("redis-server exited: %s", tail.String())
		default:
		}
		if s.ping() == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond) // a process starting up: nothing to wait on but its port
	}
	s.kill()
	return fmt.Errorf("redis-server on port %d did not answer PING", s.port)
}

func (s *redisServer) ping() error {
	c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(s.port), time.Second)
	if err != nil {
		return err
	}
	defer func() { _ = c.Close() }()
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

// kill ends the server at once (SIGKILL: no save, no goodbye).
func (s *redisServer) kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// restart kills the server and starts a fresh one on the same port.
func (s *redisServer) restart(t *testing.T) {
	t.Helper()
	s.kill()
	if err := s.start(needRedisServer(t)); err != nil {
		t.Fatalf("restart: %v", err)
	}
}

// shared is one server for the package's tests; each cluster uses its own
// key prefix on it.
var shared struct {
	once sync.Once
	srv  *redisServer
	err  error
}

func sharedRedis(t *testing.T) *redisServer {
	t.Helper()
	return sharedRedisTB(t)
}

// benchRedis is sharedRedis for benchmarks.
func benchRedis(b *testing.B) *redisServer { return sharedRedisTB(b) }

func sharedRedisTB(t testing.TB) *redisServer {
	t.Helper()
	bin := needRedisServer(t)
	shared.once.Do(func() {
		for range 5 {
			s := &redisServer{port: freePortNoT()}
			if shared.err = s.start(bin); shared.err == nil {
				shared.srv = s
				return
			}
		}
	})
	if shared.srv == nil {
		t.Fatalf("redis-server did not start: %v", shared.err)
	}
	return shared.srv
}

func freePortNoT() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0
	}
	defer func() { _ = l.Close() }() // only its port was wanted
	return l.Addr().(*net.TCPAddr).Port
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.kill()
	}
	os.Exit(code)
}
