package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/switchboard-rt/switchboard/internal/config"
)

// healthcheck asks the server on this machine whether it is alive
// (GET /healthz, or /readyz with -ready) and exits 0 when it answers 200,
// 1 otherwise. Container images without a shell or curl (distroless,
// scratch) use it as their HEALTHCHECK. It reads the same configuration
// and environment as serve, so it finds the port the server listens on.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", os.Getenv("SWITCHBOARD_CONFIG"), "configuration file (default: the embedded default)")
	ready := fs.Bool("ready", false, "check /readyz (serving clients, cluster joined) instead of /healthz (process alive)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		_, _ = fmt.Fprintln(stderr, "usage: switchboard healthcheck [-config FILE] [-ready] [-timeout 3s]")
		return 2
	}
	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 1
	}
	endpoint := "/healthz"
	if *ready {
		endpoint = "/readyz"
	}
	url, err := healthURL(cfg, endpoint)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	client := &http.Client{Transport: &http.Transport{
		// The server's certificate names its public host, not the
		// loopback address asked here; this request carries no secret
		// and only asks whether the process answers.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
		Proxy:           nil,
	}}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	resp, err := client.Do(req)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "healthcheck:", err)
		return 1
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		_, _ = fmt.Fprintf(stderr, "healthcheck: %s answered %s\n", url, resp.Status)
		return 1
	}
	_, _ = fmt.Fprintf(stdout, "%s: ok\n", url)
	return 0
}

// healthURL is the configured listener as reached from this machine: a
// wildcard host (":6001", "0.0.0.0:6001", "[::]:6001") is 127.0.0.1.
func healthURL(cfg *config.Config, endpoint string) (string, error) {
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", fmt.Errorf("listen %q: %w", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.TLS.Cert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + endpoint, nil
}
