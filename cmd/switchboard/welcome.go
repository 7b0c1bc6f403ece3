package main

import (
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/frontend"
	"github.com/switchboard-rt/switchboard/internal/server"
)

// showWelcome decides whether serve prints the welcome block: only when no
// configuration file was given (the first run, `make run`) and the logs
// are text. Anyone who wrote a file, or whose log collector reads JSON,
// gets the log lines alone.
func showWelcome(configPath string, cfg *config.Config) bool {
	return configPath == "" && cfg.Log.Format == "text"
}

// writeWelcome prints, in one short block, what a newcomer needs to
// connect a first client: a pusher-js snippet, Talo's two URLs, Damon's
// and ws-room's URLs, and the health endpoints. It knows the built-in
// protocols by name; any other front-end (a console, the next protocol)
// is listed with its endpoints as they are. It prints no secret: the app
// key is public by design, and the default secret is named by the
// startup warning already.
func writeWelcome(w io.Writer, base string, tls bool, protocols []server.Protocol) {
	var b strings.Builder
	b.WriteString("\nSwitchboard is running on the built-in defaults (no configuration file).\n")
	url := func(e frontend.Endpoint) string { return e.URL(base, tls) }
	for _, p := range protocols {
		switch p.Name {
		case "pusher":
			writePusher(&b, base, tls, p.Endpoints)
		case "talo":
			b.WriteString("\nTalo (Godot plugin, Unity package) settings:\n")
			for _, e := range p.Endpoints {
				switch e.Note {
				case "api_url":
					fmt.Fprintf(&b, "  api_url:    %s\n", url(e))
				case "socket_url":
					fmt.Fprintf(&b, "  socket_url: %s\n", url(e))
				}
			}
			b.WriteString("  access key: switchboard talo create-game \"My Game\" && switchboard talo create-key --game \"My Game\"\n")
		case "damon":
			b.WriteString("\nDamon master socket:\n")
			for _, e := range p.Endpoints {
				if e.Kind == frontend.KindTCP {
					fmt.Fprintf(&b, "  TCP:       %s\n", e.Addr)
				} else {
					fmt.Fprintf(&b, "  WebSocket: %s\n", url(e))
				}
			}
		case "dcl":
			b.WriteString("\nDecentraland ws-room:\n")
			for _, e := range p.Endpoints {
				fmt.Fprintf(&b, "  %s\n", strings.Replace(url(e), "{roomId}", "my-room", 1))
			}
		default:
			fmt.Fprintf(&b, "\n%s:\n", p.Name)
			for _, e := range p.Endpoints {
				line := url(e)
				if e.Note != "" {
					line += " (" + e.Note + ")"
				}
				fmt.Fprintf(&b, "  %s\n", line)
			}
		}
	}
	scheme := "http"
	if tls {
		scheme = "https"
	}
	fmt.Fprintf(&b, "\nHealth: %[1]s://%[2]s/healthz  %[1]s://%[2]s/readyz  metrics: %[1]s://%[2]s/metrics\n", scheme, base)
	b.WriteString("Your own settings: switchboard default-config > switchboard.yaml, edit, then switchboard -config switchboard.yaml\n\n")
	_, _ = io.WriteString(w, b.String())
}

// writePusher prints a pusher-js snippet for the first app (the app key
// is public; clients need it) and the HTTP API's address for server SDKs.
func writePusher(b *strings.Builder, base string, tls bool, eps []frontend.Endpoint) {
	host, port, err := net.SplitHostPort(base)
	if err != nil {
		host, port = base, "6001"
	}
	apps := 0
	for _, e := range eps {
		if e.Kind != frontend.KindWebSocket {
			continue
		}
		apps++
		if apps > 1 {
			continue
		}
		prefix, key, ok := strings.Cut(e.Path, "/app/")
		if !ok {
			continue
		}
		id := strings.TrimPrefix(e.Note, "app ")
		fmt.Fprintf(b, "\nPusher Channels, app %s (key %s):\n", id, key)
		opts := fmt.Sprintf("wsHost: '%s', wsPort: %s, wssPort: %s, forceTLS: %t, enabledTransports: ['ws', 'wss'], cluster: ''", host, port, port, tls)
		if prefix != "" {
			opts += ", wsPath: '" + prefix + "'"
		}
		fmt.Fprintf(b, "  pusher-js:   new Pusher('%s', {%s})\n", key, opts)
		fmt.Fprintf(b, "  server SDKs: appId '%s', key '%s', host '%s', port %s, useTLS %t, and the app's secret\n", id, key, host, port, tls)
	}
	if apps > 1 {
		fmt.Fprintf(b, "  (%d more apps in the configuration)\n", apps-1)
	}
}
