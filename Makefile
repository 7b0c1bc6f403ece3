# Switchboard's two commands for a newcomer:
#   make run    start the server on the embedded default (port 6001, app-id/app-key/app-secret)
#   make test   install what the tests need, then run the whole suite (Go with -race, real clients)
GO ?= go

.PHONY: bench-go run test test-go test-pusher test-pusher-cluster test-cluster-suites test-python test-damon test-dcl test-talo bench fuzz fuzz-long vet lint

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
# `make bench`: the load generator's scenarios against Switchboard (bench/run.sh);
# bench/compare.sh runs the same against soketi and writes docs/benchmarks.md.
bench:
	bench/run.sh

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
