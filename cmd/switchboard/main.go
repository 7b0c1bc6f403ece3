// Command switchboard runs the Switchboard realtime server.
//
//	switchboard [serve] [-config FILE]   run the server (the default)
//	switchboard check-config FILE        validate a configuration file
//	switchboard default-config           print the commented default configuration
//	switchboard version                  print the version
//	switchboard healthcheck [-ready]     exit 0 when the local server answers /healthz (healthcheck.go)
//	switchboard talo VERB ...            provision Talo games and keys (talo.go)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	// Writes of messages to stdout/stderr are not checked: a terminal or
	// pipe that fails has nowhere better to report to; the exit code stands.
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "check-config":
		if len(args) != 1 {
			_, _ = fmt.Fprintln(stderr, "usage: switchboard check-config FILE")
			return 2
		}
		cfg, err := config.Load(args[0], os.Getenv)
		if err != nil {
			_, _ = fmt.Fprintln(stderr, err)
			return 1
		}
		_, _ = fmt.Fprintf(stdout, "%s: ok\n", args[0])
		// Valid but worth knowing before the server runs with it.
		var warnings []string
		if cfg.UsesDefaultSecret() {
			warnings = append(warnings, "an app uses the published default secret: set a real one (pusher.apps[].secret or SWITCHBOARD_APP_SECRET)")
		}
		if config.On(cfg.Damon.Enabled, true) {
			warnings = append(warnings, cfg.Damon.Warnings()...)
		}
		for _, w := range warnings {
			_, _ = fmt.Fprintf(stdout, "%s: warning: %s\n", args[0], w)
		}
		return 0
	case "default-config":
		_, _ = stdout.Write(config.DefaultYAML())
		return 0
	case "version":
		_, _ = fmt.Fprintln(stdout, "switchboard", version())
		return 0
	case "talo":
		return taloCmd(args, stdout, stderr)
	case "healthcheck":
		return healthcheck(args, stdout, stderr)
	case "help", "-h", "--help":
		_, _ = fmt.Fprintln(stdout, "usage: switchboard [serve [-config FILE] | check-config FILE | default-config | version | healthcheck [-config FILE] [-ready] | talo VERB (talo help)]")
		return 0
	}
	_, _ = fmt.Fprintf(stderr, "switchboard: unknown command %q (serve, check-config, default-config, version, healthcheck, talo)\n", cmd)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("SWITCHBOARD_CONFIG"), "configuration file (default: the embedded default)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 1
	}
	log := newLogger(cfg.Log, stderr)
	srv, err := server.New(cfg, log)
	if err != nil {
		log.Error("startup failed", "err", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if showWelcome(*path, cfg) {
		go func() {
			select {
			case <-srv.Started():
				base, tls := srv.ClientBase()
				writeWelcome(stderr, base, tls, srv.Protocols())
			case <-ctx.Done():
			}
		}()
	}
	if err := srv.Run(ctx); err != nil {
		log.Error("server failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}
