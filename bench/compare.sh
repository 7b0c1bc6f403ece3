#!/usr/bin/env bash
# Side-by-side benchmark (what `make bench` runs): the same scenarios
# against Switchboard and soketi 1.6.1 on this machine, then
# docs/benchmarks.md with both servers' figures, the ratio
# Switchboard/soketi, the p99-against-offered-rate charts (docs/bench/*.svg,
# drawn by switchboard-bench itself) and the Switchboard-only Damon and
# ws-room fan-outs against the bare-write floor of the same run.
#
#   bench/compare.sh              # full run (about 30 minutes; holds up to 19,000 connections)
#   BENCH_QUICK=1 bench/compare.sh   # small version, a few minutes
#   bench/compare.sh --no-switchboard  # soketi only (e.g. while the server does not build)
#   bench/compare.sh --render-only     # rewrite the document from the last results
#
# soketi is installed from npm into bench/soketi (its own package.json; the
# node_modules there is git-ignored). Its uWebSockets.js dependency points at
# GitHub, which does not install here, so package.json overrides it with the
# npm package @trufflesuite/uws-js-unofficial, which works on Node 20.
# bench/soketi/soketi.json keeps every soketi listener on 127.0.0.1: the
# WebSocket/HTTP server (host), the /usage+metrics server (metrics.host) and
# the UDP cluster discovery (cluster.address/unicast, which would otherwise
# broadcast to 255.255.255.255), and enables client events for the default
# app (app-id / app-key / app-secret on port 6001).
#
# Not a test: never run from the test command or CI.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RESULTS="$ROOT/bench/results"
DOC="$ROOT/docs/benchmarks.md"
WITH_SWITCHBOARD=1
RENDER_ONLY=0
while [ $# -gt 0 ]; do
	case "$1" in
	--no-switchboard) WITH_SWITCHBOARD=0; shift ;;
	--render-only) RENDER_ONLY=1; shift ;;
	--results) RESULTS="$2"; shift 2 ;;
	--out) DOC="$2"; shift 2 ;;
	-h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done

log() { printf '%s [compare] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v node >/dev/null || { log "node is required for soketi (apt-get install nodejs npm)"; exit 1; }
command -v npm >/dev/null || { log "npm is required for soketi"; exit 1; }

SOKETI_DIR="$ROOT/bench/soketi"
if [ ! -f "$SOKETI_DIR/node_modules/@soketi/soketi/bin/server.js" ]; then
	log "installing soketi into bench/soketi"
	if [ -f "$SOKETI_DIR/package-lock.json" ]; then
		(cd "$SOKETI_DIR" && npm ci --no-audit --no-fund --loglevel=error)
	else
		(cd "$SOKETI_DIR" && npm install --no-audit --no-fund --loglevel=error)
	fi
fi
SOKETI_VERSION="$(node -p "require('$SOKETI_DIR/node_modules/@soketi/soketi/package.json').version")"
UWS_VERSION="$(node -p "require('$SOKETI_DIR/node_modules/uWebSockets.js/package.json').version" 2>/dev/null || echo unknown)"

status=0
if [ "$RENDER_ONLY" = 0 ]; then
	# Fresh results: stale JSON from an earlier run must not mix into the document.
	rm -rf "$RESULTS"
	mkdir -p "$RESULTS"
	printf '*\n' >"$RESULTS/.gitignore"

	servers=()
	if [ "$WITH_SWITCHBOARD" = 1 ]; then
		if (cd "$ROOT" && go build -o /dev/null ./cmd/switchboard) 2>/dev/null; then
			servers+=(switchboard)
		else
			log "warning: cmd/switchboard does not build; only soketi will be measured"
		fi
	fi
	servers+=(soketi)

	for s in "${servers[@]}"; do
		log "=== $s ==="
		"$ROOT/bench/run.sh" --server "$s" --results "$RESULTS" || status=1
	done
else
	[ -d "$RESULTS" ] || { log "no results in $RESULTS"; exit 1; }
	(cd "$ROOT" && go build -o "$ROOT/bench/.bin/switchboard-bench" ./cmd/switchboard-bench)
fi

COMMIT="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo "(no commit)")"
if [ -n "$(cd "$ROOT" && git status --porcelain 2>/dev/null | head -1)" ]; then COMMIT="$COMMIT + local changes"; fi
QUICKNOTE="full suite"
QUICKFLAG=()
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	QUICKNOTE="quick suite (BENCH_QUICK=1: reduced counts, not for publication)"
	QUICKFLAG=(--quick)
fi

mkdir -p "$(dirname "$DOC")"
"$ROOT/bench/.bin/switchboard-bench" compare \
	--results "$RESULTS" --out "$DOC" \
	--candidate switchboard --baseline soketi "${QUICKFLAG[@]}" \
	--order fanout-2k-1ch,fanout-10k-1000ch,idle-10k,idle-19k,churn,client-events,presence,damon-global-2k,damon-group-2k-20g,dcl-2k-20rooms \
	--meta "Switchboard=commit $COMMIT when rendered, built with $(go env GOVERSION); a section re-run alone (bench/run.sh --scenario X) replaces only its own results, so older sections come from older commits (docs/performance.md names them)" \
	--meta "soketi=@soketi/soketi $SOKETI_VERSION on Node $(node --version), uWebSockets.js → @trufflesuite/uws-js-unofficial $UWS_VERSION" \
	--meta "open-file limit=$(ulimit -Hn) per process (hard)" \
	--meta "suite=$QUICKNOTE" \
	--title "fanout-2k-1ch=2,000 subscribers on one channel, publish rate ramped until p99 > 100 ms" \
	--title "fanout-10k-1000ch=10,000 subscribers over 1,000 channels (10 each), publish rate ramped" \
	--title "idle-10k=10,000 idle connections, 100 channels" \
	--title "idle-19k=19,000 idle connections (the limit is 20,000 open files per process)" \
	--title "churn=connect, subscribe, hold 1 s, disconnect at a fixed rate" \
	--title "client-events=client events on private channels, peer to peer" \
	--title "presence=members joining and leaving presence channels" \
	--title "damon-global-2k=Damon master socket over raw TCP, 2,000 identified connections, EVENT with intent GLOBAL (every connection receives each), rate ramped" \
	--title "damon-group-2k-20g=Damon master socket over raw TCP, 2,000 connections in 20 groups, EVENT with intent GROUP (100 deliveries each), rate ramped" \
	--title "dcl-2k-20rooms=Decentraland ws-room, 2,000 signed-in peers in 20 rooms of 100, peer_update relayed to the other 99, rate ramped"
log "wrote $DOC"
exit "$status"
