package loadgen

import (
	"fmt"
	"syscall"
)

// fdReserve is the number of descriptors kept back for everything that is
// not a WebSocket: stdio, the HTTP publisher's keep-alive connections, /proc
// files, the Go runtime's epoll and timers.
const fdReserve = 100

// FileLimit describes the open-file limit after RaiseFileLimit.
type FileLimit struct {
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
	// Wanted is what the run asked for (connections + reserve).
	Wanted uint64 `json:"wanted"`
	// Capped is true when the limit is below Wanted, i.e. the run had to
	// use fewer connections than asked.
	Capped bool `json:"capped"`
}

// MaxConns is how many WebSocket connections fit under the soft limit.
func (l FileLimit) MaxConns() int {
	if l.Soft <= fdReserve {
		return 0
	}
	return int(l.Soft - fdReserve)
}

func (l FileLimit) String() string {
	s := fmt.Sprintf("open-file limit soft=%d hard=%d (wanted %d)", l.Soft, l.Hard, l.Wanted)
	if l.Capped {
		s += fmt.Sprintf(": capped, at most %d connections", l.MaxConns())
	}
	return s
}

// RaiseFileLimit raises RLIMIT_NOFILE as far as allowed to fit conns
// connections. It first tries to lift the hard limit too (works as root up to
// fs.nr_open), then settles for the current hard limit. The Go runtime
// already raises the soft limit at start-up on Linux; doing it here as well
// makes the outcome explicit and reportable.
func RaiseFileLimit(conns int) (FileLimit, error) {
	want := uint64(conns) + fdReserve
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &cur); err != nil {
		return FileLimit{}, fmt.Errorf("getrlimit: %w", err)
	}
	if cur.Cur < want {
		if cur.Max < want {
			// Only succeeds with CAP_SYS_RESOURCE; failure is expected and fine.
			try := syscall.Rlimit{Cur: want, Max: want}
			if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try) == nil {
				cur = try
			}
		}
		if cur.Cur < want {
			n := min(want, cur.Max)
			try := syscall.Rlimit{Cur: n, Max: cur.Max}
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &try); err == nil {
				cur = try
			}
		}
	}
	return FileLimit{Soft: cur.Cur, Hard: cur.Max, Wanted: want, Capped: cur.Cur < want}, nil
}
