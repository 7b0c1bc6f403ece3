# Switchboard container image (docs/deploy.md).
#   docker build -t switchboard .
#   docker run --rm -p 6001:6001 switchboard
# Two stages: the Go toolchain builds one static binary (CGO off: the SQLite
# driver, modernc.org/sqlite, is pure Go), and the final image is distroless
# "static" with that binary only, running as the unprivileged user 65532.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY internal/ internal/
RUN go build -ldflags="-s -w" -o /out/switchboard ./cmd/switchboard \
    && mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchboard /usr/local/bin/switchboard
# The working directory holds the default file stores (Talo's SQLite file,
# the embedded NATS JetStream directory); mount a volume here to keep them.
COPY --from=build --chown=65532:65532 /out/state /var/lib/switchboard
WORKDIR /var/lib/switchboard
USER 65532:65532
# 6001: WebSocket, HTTP API, /healthz, /readyz, /metrics.
# 6222: embedded NATS cluster routes (cluster.engine: nats).
# 42069: Damon raw TCP, only once damon.listen is 0.0.0.0:42069.
EXPOSE 6001 6222 42069
VOLUME ["/var/lib/switchboard"]
# SIGTERM drains: clients are told to reconnect (Pusher 4200), webhooks are
# flushed, all within shutdown.timeout (10s): give `docker stop` more than
# that (docker stop -t 20, compose stop_grace_period: 20s).
STOPSIGNAL SIGTERM
# No shell or curl in the image: the binary checks itself (GET /healthz on
# the listener its configuration and environment name).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/switchboard", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/switchboard"]
CMD ["serve"]
