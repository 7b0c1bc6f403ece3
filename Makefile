# Switchboard's two commands for a newcomer:
#   make run    start the server on the embedded default (port 6001, app-id/app-key/app-secret)
#   make test   install what the tests need, then run the whole suite (Go with -race, real clients)
GO ?= go

.PHONY: bench-go bench-switchboard run test test-go test-pusher test-pusher-cluster test-cluster-failure test-cluster-failure-long test-cluster-suites test-python test-damon test-dcl test-talo bench bench-cluster fuzz fuzz-long vet lint

run:
	$(GO) run ./cmd/switchboard

test:
	./scripts/test.sh

test-go:
	./scripts/test.sh go

test-pusher:
	./scripts/test.sh pusher

# The whole Pusher suite on 3-node Redis and NATS clusters (docs/cluster.md).
test-pusher-cluster:
	./scripts/test.sh pusher-redis pusher-nats

# 3-node clusters under failure: partition, stream leader kill, broker
# restarts, rolling restart under a reconnect storm (tests/cluster/run.sh;
# part of `make test`). The long target's storm is 5,000 connections.
test-cluster-failure:
	./scripts/test.sh cluster-failure

test-cluster-failure-long:
	CLUSTER_FULL=1 ./scripts/test.sh cluster-failure

# The Talo, Decentraland, Damon and Python suites on 3-node Redis and NATS
# clusters (Talo's nodes share a PostgreSQL store; docs/cluster.md).
test-cluster-suites:
	./scripts/test.sh talo-redis talo-nats dcl-redis dcl-nats damon-redis damon-nats python-redis python-nats

test-damon:
	./scripts/test.sh damon

test-python:
	./scripts/test.sh python

test-dcl:
	./scripts/test.sh dcl

test-talo:
	./scripts/test.sh talo

vet:
	$(GO) vet ./...

# golangci-lint v2.15.0 with .golangci.yml, on both modules (installed with
# `go install` into $(go env GOPATH)/bin when missing); part of `make test`.
lint:
	./scripts/test.sh lint

# Benchmarks never run in `make test` or CI.
# `make bench`: the whole comparison, end to end (bench/compare.sh): installs
# soketi from npm into bench/soketi, runs every load-generator scenario
# against Switchboard and soketi (plus the Damon, ws-room and write-floor
# runs, Switchboard only), and writes docs/benchmarks.md with its charts in
# docs/bench/. About 30 minutes; `BENCH_QUICK=1 make bench` runs the reduced
# suite in a few. `make bench-switchboard`: Switchboard's results only
# (bench/run.sh; BENCH_SCENARIO=fanout-2k-1ch for one), no document.
bench:
	bench/compare.sh

BENCH_SCENARIO ?=
bench-switchboard:
	bench/run.sh $(if $(BENCH_SCENARIO),--scenario $(BENCH_SCENARIO))

# 3 Switchboard nodes (Redis, embedded NATS) against 3 soketi nodes on its
# Redis adapter (docs/benchmarks.md, "Cluster"); BENCH_QUICK=1 for a short run.
bench-cluster:
	bench/cluster.sh

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./internal/hub/ ./internal/transport/ ./internal/protocol/damon/

# Every fuzz target in turn, for FUZZTIME each. Never part of `make test`
# or CI (the seed corpora already run there as ordinary tests).
#   make fuzz        20s each (FUZZTIME=1m make fuzz for longer)
#   make fuzz-long   10m each; results and crashes: docs/reliability.md
FUZZTIME ?=
fuzz:
	FUZZTIME=$(or $(FUZZTIME),20s) ./scripts/fuzz.sh

fuzz-long:
	FUZZTIME=$(or $(FUZZTIME),10m) ./scripts/fuzz.sh
