package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/switchboard-rt/switchboard/internal/config"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo"
	"github.com/switchboard-rt/switchboard/internal/protocol/talo/store"
)

const taloUsage = `usage:
  switchboard talo create-game [-config FILE] NAME
      adds a game; prints its id
  switchboard talo create-key [-config FILE] --game NAME [--scopes S1,S2,...]
      prints a new access key (a JWT) for the game; default scope: * (every scope)
  switchboard talo revoke-key [-config FILE] KEY
      revokes a key, given as the JWT or its id
  switchboard talo verification-key [-config FILE] --game NAME
      turns request signing on for the game; prints <version>:<secret>
The store is the one talo.store_path / talo.postgres_dsn of the configuration
names (without -config: the default configuration, ./switchboard-talo.db).`

// taloCmd runs "switchboard talo VERB ...": provisioning of games and keys
// on the Talo store, with or without a running server (docs/talo.md).
func taloCmd(args []string, stdout, stderr io.Writer) (code int) {
	if len(args) == 0 {
		_, _ = fmt.Fprintln(stderr, taloUsage)
		return 2
	}
	verb, args := args[0], args[1:]
	if verb == "help" || verb == "-h" || verb == "--help" {
		_, _ = fmt.Fprintln(stdout, taloUsage)
		return 0
	}
	fs := flag.NewFlagSet("talo "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { _, _ = fmt.Fprintln(stderr, taloUsage) }
	path := fs.String("config", os.Getenv("SWITCHBOARD_CONFIG"), "configuration file (default: the embedded default)")
	var game, scopes *string
	wantArg := ""
	switch verb {
	case "create-game":
		wantArg = "NAME"
	case "create-key":
		game = fs.String("game", "", "the game's name (or id)")
		scopes = fs.String("scopes", talo.ScopeFullAccess, "comma-separated scopes")
	case "revoke-key":
		wantArg = "KEY"
	case "verification-key":
		game = fs.String("game", "", "the game's name (or id)")
	default:
		_, _ = fmt.Fprintf(stderr, "switchboard talo: unknown command %q (create-game, create-key, revoke-key, verification-key)\n", verb)
		return 2
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return 2
	}
	usage := func(format string, a ...any) int {
		_, _ = fmt.Fprintf(stderr, "switchboard talo %s: %s\n%s\n", verb, fmt.Sprintf(format, a...), taloUsage)
		return 2
	}
	switch {
	case wantArg != "" && len(pos) != 1:
		return usage("want exactly one %s, got %d arguments", wantArg, len(pos))
	case wantArg == "" && len(pos) != 0:
		return usage("unexpected argument %q", pos[0])
	case game != nil && strings.TrimSpace(*game) == "":
		return usage("--game NAME is required")
	}
	var scopeList []string
	if scopes != nil {
		known := talo.Scopes()
		for _, s := range strings.Split(*scopes, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			if !slices.Contains(known, s) {
				return usage("unknown scope %q; known: %s", s, strings.Join(known, ","))
			}
			scopeList = append(scopeList, s)
		}
		if len(scopeList) == 0 {
			return usage("--scopes lists no scope")
		}
	}

	cfg, err := config.Load(*path, os.Getenv)
	if err != nil {
		_, _ = fmt.Fprintln(stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	st, err := store.Open(ctx, store.Options{Path: cfg.Talo.StorePath, PostgresDSN: cfg.Talo.PostgresDSN})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "switchboard talo %s: %v\n", verb, err)
		return 1
	}
	// The verbs write to the store: a failed Close may mean a lost write.
	defer func() {
		if err := st.Close(); err != nil {
			_, _ = fmt.Fprintf(stderr, "switchboard talo %s: closing the store: %v\n", verb, err)
			code = 1
		}
	}()
	admin := talo.NewAdmin(st)

	var out string
	switch verb {
	case "create-game":
		var id int64
		if id, err = admin.CreateGameNamed(ctx, pos[0]); err == nil {
			out = fmt.Sprint(id)
		}
	case "create-key":
		var id int64
		if id, err = admin.FindGame(ctx, *game); err == nil {
			out, err = admin.CreateKey(ctx, id, scopeList)
		}
	case "revoke-key":
		err = admin.RevokeKey(ctx, strings.TrimSpace(pos[0]))
		if errors.Is(err, store.ErrNotFound) {
			err = errors.New("no such key")
		}
	case "verification-key":
		var id int64
		if id, err = admin.FindGame(ctx, *game); err == nil {
			out, err = admin.VerificationKey(ctx, id)
		}
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "switchboard talo %s: %v\n", verb, err)
		return 1
	}
	if out != "" {
		// The output is the new id or key: not getting it is a failure.
		if _, err := fmt.Fprintln(stdout, out); err != nil {
			_, _ = fmt.Fprintf(stderr, "switchboard talo %s: %v\n", verb, err)
			return 1
		}
	}
	return 0
}

// parseInterspersed parses flags wherever they are among the arguments
// ("create-game NAME -config FILE" as well as "-config FILE NAME") and
// returns the others. "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}
