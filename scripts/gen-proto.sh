#!/bin/sh
# Regenerates the Go code for our .proto files.
# Needs protoc (Debian: apt-get install protobuf-compiler) and protoc-gen-go:
#   go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
# Keep the generator version equal to google.golang.org/protobuf in go.mod so
# the generated header and the runtime agree.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# protoc finds its plugin on PATH; `go install` puts it in GOBIN or GOPATH/bin.
gobin=$(go env GOBIN)
[ -n "$gobin" ] || gobin="$(go env GOPATH)/bin"
PATH="$gobin:$PATH"
export PATH

command -v protoc >/dev/null || { echo "gen-proto: protoc not found (apt-get install protobuf-compiler)" >&2; exit 1; }
command -v protoc-gen-go >/dev/null || { echo "gen-proto: protoc-gen-go not found (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12)" >&2; exit 1; }

module=github.com/switchboard-rt/switchboard

# --go_opt=module strips the module prefix from go_package, so the output lands
# at internal/protocol/dcl/dclpb/ relative to the repository root.
protoc \
	--proto_path=proto \
	--go_out=. \
	--go_opt=module="$module" \
	decentraland/ws_comms.proto
