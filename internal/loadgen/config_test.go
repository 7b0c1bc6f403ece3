package loadgen

import (
	"testing"
	"time"
)

func TestTargetLoopbackRule(t *testing.T) {
	for _, h := range []string{"127.0.0.1", "127.3.4.5", "localhost", "::1", "[::1]"} {
		tg := DefaultTarget()
		tg.Host = h
		if err := tg.Validate(); err != nil {
			t.Errorf("%s rejected: %v", h, err)
		}
	}
	for _, h := range []string{"10.0.0.1", "192.168.1.1", "example.com", "0.0.0.0"} {
		tg := DefaultTarget()
		tg.Host = h
		if err := tg.Validate(); err == nil {
			t.Errorf("%s accepted without --allow-remote", h)
		}
		tg.AllowRemote = true
		if err := tg.Validate(); err != nil {
			t.Errorf("%s rejected with --allow-remote: %v", h, err)
		}
	}
	tg := DefaultTarget()
	tg.Secret = ""
	if tg.Validate() == nil {
		t.Error("empty secret accepted")
	}
	if got := DefaultTarget().WSURL(); got != "ws://127.0.0.1:6001/app/app-key?protocol=7&client=switchboard-bench&version=1.0" {
		t.Errorf("WSURL = %s", got)
	}
}

func TestSourceAddrs(t *testing.T) {
	a := DefaultSourceAddrs(DefaultTarget(), 3)
	if len(a) != 3 || a[0].String() != "127.0.0.2" || a[2].String() != "127.0.0.4" {
		t.Fatalf("addrs = %v", a)
	}
	tg := DefaultTarget()
	tg.Host = "::1"
	if DefaultSourceAddrs(tg, 3) != nil {
		t.Fatal("IPv6 target got IPv4 sources")
	}
	d := newSourceDialer(a, time.Second)
	seen := map[string]int{}
	for range 6 {
		seen[d.localAddr().IP.String()]++
	}
	if len(seen) != 3 || seen["127.0.0.3"] != 2 {
		t.Fatalf("rotation = %v", seen)
	}
	if newSourceDialer(nil, time.Second).localAddr() != nil {
		t.Fatal("empty dialer picked an address")
	}
	if _, err := ParseSourceAddrs("127.0.0.9, 127.0.0.10"); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseSourceAddrs("127.0.0.300"); err == nil {
		t.Fatal("bad address accepted")
	}
}

func TestRaiseFileLimit(t *testing.T) {
	l, err := RaiseFileLimit(10)
	if err != nil {
		t.Fatal(err)
	}
	if l.Capped || l.MaxConns() < 10 {
		t.Fatalf("limit %+v", l)
	}
	huge, err := RaiseFileLimit(1 << 40)
	if err != nil {
		t.Fatal(err)
	}
	if !huge.Capped || huge.MaxConns() >= 1<<40 {
		t.Fatalf("huge request not capped: %+v", huge)
	}
}

func TestJudge(t *testing.T) {
	lim := StepLimits{MaxP99: 100 * time.Millisecond}
	ok := Step{Sent: 10, Expected: 100, Received: 100, Latency: Latency{P99Ms: 99}}
	if p, why := judge(ok, lim); !p {
		t.Fatalf("ok step failed: %s", why)
	}
	slow := ok
	slow.Latency.P99Ms = 101
	if p, _ := judge(slow, lim); p {
		t.Fatal("slow step passed")
	}
	lossy := ok
	lossy.Missing = 1
	if p, _ := judge(lossy, lim); p {
		t.Fatal("lossy step passed with zero tolerance")
	}
	if p, _ := judge(lossy, StepLimits{MaxP99: lim.MaxP99, MaxMissingRatio: 0.05}); !p {
		t.Fatal("lossy step failed within tolerance")
	}
	if p, _ := judge(Step{}, lim); p {
		t.Fatal("empty step passed")
	}
}
