package loadgen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Env is what a scenario needs from its caller besides its config.
type Env struct {
	Log *slog.Logger
	// Progress receives the live status line; nil disables it.
	Progress io.Writer
	// ProgressLines prints each status as its own line (logs, pipes)
	// instead of overwriting one terminal line.
	ProgressLines bool
	// ProgressEvery is the interval between status lines (0: one second).
	ProgressEvery time.Duration
	// Label names the server under test in the report (e.g. "soketi").
	Label string
	// Run names the result in a suite (bench/run.sh's scenario name, e.g.
	// "fanout-2k-1ch"); Command is the command that reproduces it and
	// GeneratorArgs this generator's own arguments. All three go into the
	// report as they are.
	Run           string
	Command       string
	GeneratorArgs []string
}

// runner holds what every scenario shares: config, clock, /proc watchers
// and the report being filled in.
type runner struct {
	cfg    Common
	clock  *Clock
	log    *slog.Logger
	env    Env
	server *procWatcher
	self   *procWatcher
	rep    *Report
	start  time.Time
	live   stepProgress
	// stepsPlanned is how many rate steps the scenario will run (for the
	// progress line's "step i/n").
	stepsPlanned int
}

// newRunner validates cfg, raises the open-file limit for want connections
// (capping cfg.Conns when the limit is lower, and saying so), and starts
// the report.
func newRunner(scenario string, cfg Common, want int, env Env, params map[string]any) (*runner, error) {
	return newProtoRunner(scenario, "pusher", cfg, want, env, params)
}

// newProtoRunner is newRunner for a scenario of another protocol.
func newProtoRunner(scenario, protocol string, cfg Common, want int, env Env, params map[string]any) (*runner, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if env.Log == nil {
		env.Log = slog.New(slog.DiscardHandler)
	}
	clock := NewClock()
	r := &runner{cfg: cfg, clock: clock, log: env.Log.With("scenario", scenario), env: env, start: time.Now()}
	lim, err := RaiseFileLimit(want)
	if err != nil {
		return nil, err
	}
	r.rep = &Report{
		SchemaVersion: ReportSchemaVersion,
		Run:           env.Run,
		Command:       env.Command,
		GeneratorArgs: env.GeneratorArgs,
		Protocol:      protocol,
		Scenario:      scenario,
		Label:         env.Label,
		Target:        cfg.Target.Addr(),
		LoadAvg1:      loadAvg1(),
		StartedAt:     r.start.UTC().Truncate(time.Second),
		Params:        params,
		FileLimit:     lim,
	}
	if lim.Capped {
		msg := fmt.Sprintf("open-file limit %d caps this run: at most %d connections instead of %d", lim.Soft, lim.MaxConns(), want)
		r.note(msg)
		r.log.Warn("open-file limit caps the run", "soft", lim.Soft, "hard", lim.Hard, "wanted", lim.Wanted, "max_conns", lim.MaxConns())
	} else {
		r.log.Info("open-file limit", "soft", lim.Soft, "hard", lim.Hard, "wanted", lim.Wanted)
	}
	if cfg.ServerPID > 0 {
		r.server = newProcWatcher(cfg.ServerPID, clock)
		if r.server.err != nil {
			r.note(fmt.Sprintf("cannot sample server pid %d: %v", cfg.ServerPID, r.server.err))
		}
	}
	r.self = newProcWatcher(0, clock)
	if cfg.BackgroundSample > 0 {
		r.rep.BackgroundCores = backgroundCores(cfg.BackgroundSample)
	}
	if r.rep.BackgroundCores > 0.2 {
		r.log.Warn("the machine is busy before the run starts", "cores", r.rep.BackgroundCores)
	}
	return r, nil
}

// capConns returns n reduced to what the file limit allows.
func (r *runner) capConns(n int) int {
	return min(n, r.rep.FileLimit.MaxConns())
}

func (r *runner) note(s string) { r.rep.Notes = append(r.rep.Notes, s) }

// withDeadline bounds the whole scenario by MaxRunTime.
func (r *runner) withDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.cfg.MaxRunTime)
}

// startProgress runs the status line while the scenario runs.
func (r *runner) startProgress(ctx context.Context, status func() string) (stop func()) {
	if r.env.Progress == nil || !r.cfg.Progress {
		return func() {}
	}
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		progress(pctx, r.env.Progress, r.clock, r.env.ProgressEvery, r.env.ProgressLines, status)
	}()
	return func() { cancel(); <-done }
}

// stepStatus is the progress text of the current rate step, or orElse()
// before the first step.
func (r *runner) stepStatus(orElse func() string) string {
	if s := r.live.status(r.clock.Now()); s != "" {
		return s
	}
	return orElse()
}

// poolStats is what finish needs from a pool of either kind.
type poolStats struct {
	attempted              int64
	connect, setup, server *errTally
	latency                *Recorder
}

func (p *Pool) stats() poolStats {
	return poolStats{attempted: p.Attempted(), connect: &p.ConnectErrors, setup: &p.SetupErrors, server: &p.ServerErrors, latency: p.ConnectLatency}
}

// finish fills the connection summary and timing from the pool(s).
func (r *runner) finish(requested int, pools ...*Pool) *Report {
	var st []poolStats
	for _, p := range pools {
		if p != nil {
			st = append(st, p.stats())
		}
	}
	return r.finishStats(requested, st...)
}

// finishStats is finish for any pools' statistics; the first one's connect
// latency is reported.
func (r *runner) finishStats(requested int, pools ...poolStats) *Report {
	cs := &r.rep.Conns
	cs.Requested = requested
	for _, p := range pools {
		cs.Attempted += p.attempted
		for _, t := range []*errTally{p.connect, p.setup, p.server} {
			if t == nil {
				continue
			}
			cs.Errors = append(cs.Errors, t.Top(5)...)
		}
		cs.ConnectErrors += p.connect.Total()
		cs.SetupErrors += p.setup.Total()
		if p.server != nil {
			cs.ServerErrors += p.server.Total()
		}
	}
	if len(pools) > 0 {
		cs.ConnectLatency = pools[0].latency.Summary()
	}
	if s, ok := r.self.sample(); ok {
		r.rep.GeneratorRSSBytes = s.RSSBytes
	}
	r.rep.DurationS = roundTo(time.Since(r.start).Seconds(), 2)
	return r.rep
}

func roundTo(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	return float64(int64(v*p+0.5)) / p
}

// backgroundCores measures, before any load is applied, how many cores the
// rest of the machine keeps busy: with one core for the server and one for
// the generator, any other work skews both, and the report should say so.
func backgroundCores(d time.Duration) float64 {
	a, ok := machineBusy()
	if !ok {
		return 0
	}
	t0 := time.Now()
	time.Sleep(d)
	b, ok := machineBusy()
	if !ok {
		return 0
	}
	return roundTo((b-a).Seconds()/time.Since(t0).Seconds(), 2)
}
