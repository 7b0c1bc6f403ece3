package loadgen

import (
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	// comm with spaces and a ')' inside, as a process may name itself.
	stat := []byte("4242 (we ird) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 2000 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0")
	d, err := parseStatCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if d != 3*time.Second { // (250+50) ticks at 100 Hz
		t.Fatalf("cpu = %v", d)
	}
	if _, err := parseStatCPU([]byte("1 (x) S 1 2")); err == nil {
		t.Fatal("short stat accepted")
	}
}

func TestParseStatusRSS(t *testing.T) {
	n, err := parseStatusRSS([]byte("Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t  1234 kB\nThreads:\t3\n"))
	if err != nil || n != 1234*1024 {
		t.Fatalf("rss = %d %v", n, err)
	}
	if _, err := parseStatusRSS([]byte("Name:\tkthreadd\n")); err == nil {
		t.Fatal("missing VmRSS accepted")
	}
}

func TestReadProcSelf(t *testing.T) {
	c := NewClock()
	a, err := ReadProc(0, c)
	if err != nil {
		t.Fatal(err)
	}
	if a.RSSBytes <= 0 {
		t.Fatalf("rss %d", a.RSSBytes)
	}
	w := newProcWatcher(999999999, c) // above any pid_max
	if _, ok := w.sample(); ok || w.err == nil {
		t.Fatal("bad pid sampled")
	}
	d := Delta(ProcSample{At: 0, CPU: 0}, ProcSample{At: int64(2 * time.Second), CPU: time.Second})
	if d.Cores() != 0.5 {
		t.Fatalf("cores %v", d.Cores())
	}
}

func TestParseMachineBusy(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	d, ok := parseMachineBusy([]byte("cpu  100 5 50 1000 7 1 9 2 30 0\ncpu0 1 2 3 4 5 6 7\n"))
	if !ok || d != 167*10*time.Millisecond {
		t.Fatalf("busy = %v %v", d, ok)
	}
	if _, ok := parseMachineBusy([]byte("intr 1 2 3")); ok {
		t.Fatal("bad stat accepted")
	}
	if _, ok := machineBusy(); !ok {
		t.Fatal("cannot read /proc/stat")
	}
}
