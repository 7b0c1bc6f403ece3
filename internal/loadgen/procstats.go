package loadgen

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of utime/stime in /proc/<pid>/stat. The kernel exports
// USER_HZ = 100 on every mainstream Linux architecture; reading the real
// value needs sysconf (cgo), which this tool avoids.
const userHZ = 100

// ProcSample is one reading of a process's CPU time and resident memory.
type ProcSample struct {
	At       int64         // clock ns when read
	CPU      time.Duration // user + system, all threads
	RSSBytes int64
}

// ReadProc samples /proc/<pid>. pid 0 means this process.
func ReadProc(pid int, clock *Clock) (ProcSample, error) {
	base := "/proc/self"
	if pid > 0 {
		base = "/proc/" + strconv.Itoa(pid)
	}
	stat, err := os.ReadFile(base + "/stat")
	if err != nil {
		return ProcSample{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return ProcSample{}, err
	}
	status, err := os.ReadFile(base + "/status")
	if err != nil {
		return ProcSample{}, err
	}
	rss, err := parseStatusRSS(status)
	if err != nil {
		return ProcSample{}, err
	}
	s := ProcSample{CPU: cpu, RSSBytes: rss}
	if clock != nil {
		s.At = clock.Now()
	}
	return s, nil
}

// parseStatCPU returns utime+stime from a /proc/<pid>/stat line. The
// command name (field 2) may contain spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("procstat: malformed stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("procstat: short stat (%d fields)", len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("procstat: bad utime/stime %q %q", f[11], f[12])
	}
	return time.Duration(ut+st) * (time.Second / userHZ), nil
}

// parseStatusRSS returns VmRSS in bytes from /proc/<pid>/status.
func parseStatusRSS(status []byte) (int64, error) {
	for line := range strings.Lines(string(status)) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 1 {
			break
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("procstat: bad VmRSS %q", rest)
		}
		return kb * 1024, nil
	}
	return 0, fmt.Errorf("procstat: no VmRSS (kernel thread or zombie?)")
}

// ProcDelta is the difference between two samples.
type ProcDelta struct {
	Wall time.Duration
	CPU  time.Duration
}

// Delta is b - a.
func Delta(a, b ProcSample) ProcDelta {
	return ProcDelta{Wall: time.Duration(b.At - a.At), CPU: b.CPU - a.CPU}
}

// Cores is the average number of cores busy over the interval.
func (d ProcDelta) Cores() float64 {
	if d.Wall <= 0 {
		return 0
	}
	return d.CPU.Seconds() / d.Wall.Seconds()
}

// procWatcher samples one process (the server, or ourselves) at the start
// and end of a measurement window. It remembers whether it works at all, so
// a missing pid is reported once instead of per step.
type procWatcher struct {
	pid   int
	clock *Clock
	err   error
}

func newProcWatcher(pid int, clock *Clock) *procWatcher {
	w := &procWatcher{pid: pid, clock: clock}
	if _, err := ReadProc(pid, clock); err != nil {
		w.err = err
	}
	return w
}

func (w *procWatcher) sample() (ProcSample, bool) {
	if w == nil || w.err != nil {
		return ProcSample{}, false
	}
	s, err := ReadProc(w.pid, w.clock)
	if err != nil {
		w.err = err
		return ProcSample{}, false
	}
	return s, true
}

// machineBusy returns the CPU time all cores spent not idle (user, nice,
// system, irq, softirq, steal) from /proc/stat. Comparing it with the
// server's and the generator's own time shows when something else on the
// machine competed with the benchmark, and how much kernel time (loopback
// TCP runs partly in softirq, which per-process figures do not include)
// the run caused.
func machineBusy() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, false
	}
	return parseMachineBusy(b)
}

func parseMachineBusy(stat []byte) (time.Duration, bool) {
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 8 || f[0] != "cpu" {
		return 0, false
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		busy += n
	}
	return time.Duration(busy) * (time.Second / userHZ), true
}

// loadAvg1 is the 1-minute load average, recorded so a reader can see
// whether the machine was quiet when the figures were taken.
func loadAvg1() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}
