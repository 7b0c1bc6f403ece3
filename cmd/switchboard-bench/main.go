// Command switchboard-bench is a load generator for Pusher-protocol servers
// (Switchboard, soketi, …) and for Switchboard's Damon and Decentraland
// ws-room front-ends. See internal/loadgen for how it measures; bench/run.sh
// and bench/compare.sh (make bench) run the suite.
//
//	switchboard-bench fanout --conns 2000 --channels 1 --rates 10,20,40 --server-pid $PID
//	switchboard-bench idle --conns 10000 --json
//	switchboard-bench damon --token T --intent GLOBAL --conns 2000 --rates 10,20,40
//	switchboard-bench dcl --conns 2000 --rooms 20 --rates 100,500,1000
//	switchboard-bench compare --results bench/results --out docs/benchmarks.md
//	go test -run '^$' -bench LoopbackWriteFloor ./internal/transport/ | switchboard-bench gobench --run write-floor
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-rt/switchboard/internal/loadgen"
)

const usage = `usage: switchboard-bench <scenario> [flags]

scenarios:
  fanout         N subscribers on C channels, HTTP publishes at fixed rates (a ramp when several)
  idle           hold N connections, report server memory per connection
  churn          connect/subscribe/disconnect at a fixed rate
  client-events  peer-to-peer client events on private channels
  presence       members joining and leaving presence channels
  damon          Damon master-socket GLOBAL/GROUP fan-out (Switchboard only)
  dcl            Decentraland ws-room fan-out (Switchboard only)
  compare        render docs/benchmarks.md from --json results of two servers
  gobench        turn "go test -bench" output (stdin) into a JSON report

Run "switchboard-bench <scenario> -h" for its flags.
`

func main() {
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprint(os.Stderr, usage+clusterUsage)
		os.Exit(2)
	}
	quietCollector()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	if err := run(ctx, os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "switchboard-bench:", err)
		os.Exit(1)
	}
}

// commonFlags registers the flags every load scenario shares.
type commonFlags struct {
	c           loadgen.Common
	sourceAddrs string
	jsonOut     bool
	label       string
	verbose     bool
	noProgress  bool
	progressDur time.Duration
	run         string
	command     string
	cpuProfile  string
}

func (cf *commonFlags) register(fs *flag.FlagSet, defConns int) {
	cf.c = loadgen.DefaultCommon()
	c := &cf.c
	fs.StringVar(&c.Target.Host, "host", c.Target.Host, "server host (loopback unless --allow-remote)")
	fs.IntVar(&c.Target.Port, "port", c.Target.Port, "server port")
	fs.StringVar(&c.Target.AppID, "app-id", c.Target.AppID, "app id")
	fs.StringVar(&c.Target.Key, "key", c.Target.Key, "app key")
	fs.StringVar(&c.Target.Secret, "secret", c.Target.Secret, "app secret")
	fs.BoolVar(&c.Target.AllowRemote, "allow-remote", false, "allow a --host that is not loopback")
	fs.IntVar(&c.Conns, "conns", defConns, "connections to hold")
	fs.IntVar(&c.ConnectConcurrency, "connect-concurrency", c.ConnectConcurrency, "dials in flight")
	fs.Float64Var(&c.ConnectRate, "connect-rate", 0, "max new connections per second (0 = no cap)")
	fs.DurationVar(&c.ConnectTimeout, "connect-timeout", c.ConnectTimeout, "dial + handshake + subscribe timeout")
	fs.StringVar(&cf.sourceAddrs, "source-addrs", "8", "source addresses: a count of 127.0.0.x addresses, or a comma list of IPs")
	fs.IntVar(&c.ServerPID, "server-pid", 0, "server pid, to report its CPU and RSS from /proc")
	fs.DurationVar(&c.MaxRunTime, "max-time", c.MaxRunTime, "hard bound on the whole run")
	fs.DurationVar(&c.Settle, "settle", c.Settle, "wait after connecting before measuring")
	fs.DurationVar(&c.Drain, "drain", c.Drain, "max wait for outstanding deliveries after a step")
	fs.IntVar(&c.PayloadBytes, "payload", 0, "pad event data to about this many bytes")
	fs.BoolVar(&cf.jsonOut, "json", false, "print the report as JSON on stdout")
	fs.StringVar(&cf.label, "label", "", "name of the server under test, for the report")
	fs.BoolVar(&cf.verbose, "v", false, "debug logging")
	fs.BoolVar(&cf.noProgress, "no-progress", false, "no progress lines at all")
	fs.DurationVar(&cf.progressDur, "progress-every", 0, "progress interval (default 1s overwritten on a terminal, else one line every 10s)")
	fs.StringVar(&cf.run, "run", "", "the result's name in a suite (e.g. fanout-2k-1ch), for the report")
	fs.StringVar(&cf.command, "command", "", "the command that reproduces this result, for the report (default: this command line)")
	fs.StringVar(&cf.cpuProfile, "cpuprofile", "", "write the generator's own CPU profile here (to check it is not the bottleneck)")
}

func (cf *commonFlags) finish() (loadgen.Common, loadgen.Env, error) {
	c := cf.c
	if n, err := strconv.Atoi(cf.sourceAddrs); err == nil {
		c.SourceAddrs = loadgen.DefaultSourceAddrs(c.Target, n)
	} else if c.SourceAddrs, err = loadgen.ParseSourceAddrs(cf.sourceAddrs); err != nil {
		return c, loadgen.Env{}, err
	}
	level := slog.LevelInfo
	if cf.verbose {
		level = slog.LevelDebug
	}
	var logw io.Writer = os.Stderr
	env := loadgen.Env{Label: cf.label, Run: cf.run, Command: cf.command, GeneratorArgs: os.Args[1:]}
	if env.Command == "" {
		env.Command = "switchboard-bench " + strings.Join(os.Args[1:], " ")
	}
	if !cf.noProgress {
		c.Progress = true
		env.Progress = os.Stderr
		env.ProgressEvery = cf.progressDur
		if loadgen.IsTerminal(os.Stderr) {
			logw = clearLine{os.Stderr}
		} else {
			// A log file or a pipe: whole lines, less often.
			env.ProgressLines = true
			if env.ProgressEvery == 0 {
				env.ProgressEvery = loadgen.DefaultProgressEvery
			}
		}
	}
	env.Log = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: level}))
	return c, env, nil
}

// clearLine erases the progress line before a log line is written over it;
// the next progress tick redraws it below.
type clearLine struct{ w io.Writer }

func (c clearLine) Write(p []byte) (int, error) {
	if _, err := io.WriteString(c.w, "\r\033[K"); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// rampOpts are the rate-ramp flags of the damon and dcl scenarios (the
// same meaning as fanout's).
type rampOpts struct {
	rates      *string
	step       *time.Duration
	pause      *time.Duration
	maxP99     *time.Duration
	maxMissing *float64
	keepGoing  *bool
}

func registerRamp(fs *flag.FlagSet) rampOpts {
	return rampOpts{
		rates:      fs.String("rates", "10", "messages sent per second, one step each (comma list; a ramp stops at the first failing step)"),
		step:       fs.Duration("step", 10*time.Second, "duration of each rate step"),
		pause:      fs.Duration("pause", 2*time.Second, "pause between steps"),
		maxP99:     fs.Duration("max-p99", 100*time.Millisecond, "a step fails when p99 latency exceeds this"),
		maxMissing: fs.Float64("max-missing", 0, "a step fails when more than this fraction of deliveries is missing"),
		keepGoing:  fs.Bool("keep-going", false, "run every rate even after a failed step"),
	}
}

func parseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("bad rate %q", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, errors.New("no rates")
	}
	return out, nil
}

func run(ctx context.Context, scenario string, args []string) (retErr error) {
	switch scenario {
	case "compare":
		return runCompare(args)
	case "gobench":
		return runGoBench(args)
	}
	if isClusterScenario(scenario) {
		return runCluster(ctx, scenario, args)
	}
	fs := flag.NewFlagSet(scenario, flag.ContinueOnError)
	var cf commonFlags
	var report func(loadgen.Common, loadgen.Env) (*loadgen.Report, error)
	switch scenario {
	case "fanout":
		cf.register(fs, 2000)
		channels := fs.Int("channels", 1, "channels the subscribers are spread over")
		rates := fs.String("rates", "10", "publishes per second, one step each (comma list; a ramp stops at the first failing step)")
		step := fs.Duration("step", 10*time.Second, "duration of each rate step")
		workers := fs.Int("publish-workers", 32, "concurrent HTTP publishers")
		maxP99 := fs.Duration("max-p99", 100*time.Millisecond, "a step fails when p99 latency exceeds this")
		maxMissing := fs.Float64("max-missing", 0, "a step fails when more than this fraction of deliveries is missing")
		keepGoing := fs.Bool("keep-going", false, "run every rate even after a failed step")
		pause := fs.Duration("pause", 2*time.Second, "pause between steps")
		report = func(c loadgen.Common, env loadgen.Env) (*loadgen.Report, error) {
			r, err := parseRates(*rates)
			if err != nil {
				return nil, err
			}
			return loadgen.RunFanout(ctx, loadgen.FanoutConfig{Common: c, Channels: *channels, Rates: r,
				StepDuration: *step, PublishWorkers: *workers, KeepGoing: *keepGoing, Pause: *pause,
				Limits: loadgen.StepLimits{MaxP99: *maxP99, MaxMissingRatio: *maxMissing}}, env)
		}
	case "idle":
		cf.register(fs, 10000)
		channels := fs.Int("channels", 100, "public channels to subscribe to (0 = connect only)")
		hold := fs.Duration("hold", 10*time.Second, "how long to hold the connections after settling")
		report = func(c loadgen.Common, env loadgen.Env) (*loadgen.Report, error) {
			return loadgen.RunIdle(ctx, loadgen.IdleConfig{Common: c, Channels: *channels, Hold: *hold}, env)
		}
	case "churn":
		cf.register(fs, 0)
		rate := fs.Float64("rate", 100, "connect+subscribe+disconnect cycles per second")
		dur := fs.Duration("duration", 20*time.Second, "how long to churn")
		hold := fs.Duration("hold", 0, "how long each connection stays subscribed")
		inflight := fs.Int("max-in-flight", 2000, "max cycles in flight")
		channels := fs.Int("channels", 10, "public channels to subscribe to")
		report = func(c loadgen.Common, env loadgen.Env) (*loadgen.Report, error) {
			return loadgen.RunChurn(ctx, loadgen.ChurnConfig{Common: c, Rate: *rate, Duration: *dur, Hold: *hold,
				MaxInFlight: *inflight, Channels: *channels}, env)
		}
	case "client-events":
		cf.register(fs, 1000)
		channels := fs.Int("channels", 100, "private channels the connections are spread over")
		rate := fs.Float64("rate", 500, "client events per second (all senders together)")
		dur := fs.Duration("duration", 20*time.Second, "how long to send")
		maxP99 := fs.Duration("max-p99", 100*time.Millisecond, "p99 bound for pass/fail")
		report = func(c loadgen.Common, env loadgen.Env) (*loadgen.Report, error) {
			return loadgen.RunClientEvents(ctx, loadgen.ClientEventsConfig{Common: c, Channels: *channels,
				Rate: *rate, Duration: *dur, Limits: loadgen.StepLimits{MaxP99: *maxP99}}, env)
		}
	case "presence":
		cf.register(fs, 500)
		channels := fs.Int("channels", 10, "presence channels")
		rate := fs.Float64("rate", 50, "joins per second (each followed by a leave after --hold)")
		dur := fs.Duration("duration", 20*time.Second, "how long to join")
		hold := fs.Duration("hold", 2*time.Second, "how long each joined member stays")
		maxP99 := fs.Duration("max-p99", 100*time.Millisecond, "p99 bound for pass/fail")
		report = func(c loadgen.Common, env loadgen.Env) (*loadgen.Report, error) {
			return loadgen.RunPresence(ctx, loadgen.PresenceConfig{Common: c, Channels: *channels,
				Rate: *rate, Duration: *dur, Hold: *hold, Limits: loadgen.StepLimits{MaxP99: *maxP99}}, env)
		}
	case "damon":
		cf.register(fs, 2000)
		tcp := fs.String("tcp", "127.0.0.1:42069", "the Damon raw TCP listener (empty: use --ws-path on --host/--port)")
		wsPath := fs.String("ws-path", "/damon", "the Damon WebSocket path (with --tcp '')")
		token := fs.String("token", "", "the server's damon.token")
		intent := fs.String("intent", "GLOBAL", "GLOBAL (every connection receives each EVENT) or GROUP (one group's members)")
		groups := fs.Int("groups", 1, "groups the receivers are spread over")
		senders := fs.Int("senders", 4, "sending connections (besides --conns receivers)")
		rp := registerRamp(fs)
		report = func(c loadgen.Common, env loadgen.Env) (*loadgen.Report, error) {
			r, err := parseRates(*rp.rates)
			if err != nil {
				return nil, err
			}
			return loadgen.RunDamon(ctx, loadgen.DamonConfig{Common: c, TCPAddr: *tcp, WSPath: *wsPath, Token: *token,
				Intent: *intent, Groups: *groups, Senders: *senders, Rates: r, StepDuration: *rp.step, Pause: *rp.pause,
				KeepGoing: *rp.keepGoing, Limits: loadgen.StepLimits{MaxP99: *rp.maxP99, MaxMissingRatio: *rp.maxMissing}}, env)
		}
	case "dcl":
		cf.register(fs, 2000)
		prefix := fs.String("path-prefix", "/rooms", "the ws-room route prefix (dcl.path_prefixes)")
		rooms := fs.Int("rooms", 20, "rooms the peers are spread over (the server's room_capacity bounds peers per room)")
		workers := fs.Int("send-workers", 8, "concurrent senders")
		rp := registerRamp(fs)
		report = func(c loadgen.Common, env loadgen.Env) (*loadgen.Report, error) {
			r, err := parseRates(*rp.rates)
			if err != nil {
				return nil, err
			}
			return loadgen.RunDCL(ctx, loadgen.DCLConfig{Common: c, PathPrefix: *prefix, Rooms: *rooms, SendWorkers: *workers,
				Rates: r, StepDuration: *rp.step, Pause: *rp.pause, KeepGoing: *rp.keepGoing,
				Limits: loadgen.StepLimits{MaxP99: *rp.maxP99, MaxMissingRatio: *rp.maxMissing}}, env)
		}
	default:
		fmt.Fprint(os.Stderr, usage+clusterUsage)
		return fmt.Errorf("unknown scenario %q", scenario)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	c, env, err := cf.finish()
	if err != nil {
		return err
	}
	if cf.cpuProfile != "" {
		f, err := os.Create(cf.cpuProfile)
		if err != nil {
			return err
		}
		// Runs after StopCPUProfile (defers run last first), which writes
		// the profile's tail: a failed Close means a truncated profile.
		defer func() {
			if err := f.Close(); err != nil && retErr == nil {
				retErr = fmt.Errorf("cpu profile: %w", err)
			}
		}()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	rep, err := report(c, env)
	if rep != nil {
		var out io.Writer = os.Stdout
		if cf.jsonOut {
			_ = rep.WriteJSON(out)
		} else {
			_ = rep.WriteText(out)
		}
	}
	return err
}

// runGoBench reads `go test -bench` output on stdin and prints it as a
// JSON report (the same schema as every scenario's --json).
func runGoBench(args []string) error {
	fs := flag.NewFlagSet("gobench", flag.ContinueOnError)
	label := fs.String("label", "", "server label, for the report")
	run := fs.String("run", "", "the result's name in the suite")
	command := fs.String("command", "", "the command that produced the benchmark output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	res, err := loadgen.ParseGoBench(os.Stdin)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return errors.New("gobench: no benchmark result lines on stdin")
	}
	env := loadgen.Env{Label: *label, Run: *run, Command: *command, GeneratorArgs: os.Args[1:]}
	return loadgen.GoBenchReport(res, env, nil).WriteJSON(os.Stdout)
}
