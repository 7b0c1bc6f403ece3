// Package loadgen is Switchboard's load generator: it drives any
// Pusher-protocol server (Switchboard, soketi, …) over WebSockets and the
// signed HTTP API, and reports delivery rate, latency percentiles, missing
// deliveries, connect errors and, given the server's pid, the server's CPU
// cost per delivery and memory per connection.
//
// Design points, each of which exists to keep the numbers honest:
//
//   - Publishes follow a wall-clock schedule. A publish carries its
//     scheduled time, not the time it was actually sent, so a generator or
//     server that falls behind shows up as latency instead of silently
//     lowering the offered load (no coordinated omission).
//   - Latency is measured in one process against one monotonic clock: the
//     publisher and the receivers share the run's epoch.
//   - Connections are spread over several 127.0.0.x source addresses so that
//     ephemeral ports do not cap connection counts or churn rates.
//   - Every loop is bounded by a count and by time, and the generator only
//     ever targets loopback or an address the user names explicitly.
package loadgen
