// Package refconfig reads the Damon reference server's own configuration
// files, data/config.json and data/auth.json (Damon-Org/Socket, spec §2), so
// that an existing deployment's data directory can be pointed at Switchboard
// unchanged.
//
// The reference loads them with JSON.parse and no validation; whatever is
// missing or mistyped shows up later as odd behaviour (a missing ping makes
// setInterval fire every millisecond, a missing max_bytes_message disables the
// size check, a string port still listens). Here the shapes are checked
// strictly instead, and every rule below says what the reference would do:
//
//   - Keys are matched exactly and case-sensitively, as JavaScript property
//     reads are (encoding/json's case-insensitive struct matching is not
//     used). A duplicated key takes its last value, as in JSON.parse.
//   - Unknown keys are ignored, because the reference ignores them too (it
//     only reads the properties it needs).
//   - Numbers are read as JavaScript doubles, so "ping": 3e4 is 30000;
//     fractional or out-of-range values are rejected rather than passed to
//     Node's coercions.
//   - Strings must be strings; null is not accepted for any key.
package refconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
)

// Config is data/config.json:
//
//	{ "ping": 3e4, "socket": { "host": "0.0.0.0", "port": 42069 }, "max_bytes_message": 32768 }
type Config struct {
	// PingMS is "ping": the heartbeat interval in milliseconds, also sent
	// in the IDENTIFY reply. Required; 1 ≤ PingMS ≤ 2147483647 (Node's
	// timer maximum: larger values make the reference ping every 1 ms).
	PingMS int64
	// Host is "socket.host". Optional: empty means all interfaces, as when
	// Node's listen() gets no host.
	Host string
	// Port is "socket.port", 0..65535 (0: any free port). Required: the
	// reference throws ERR_INVALID_ARG_VALUE without it. A numeric string,
	// which Node would accept, is rejected.
	Port int
	// MaxBytesMessage is "max_bytes_message", at least 1. When the key is
	// absent it is DefaultMaxBytesMessage: the reference hard-coded that
	// value until commit 00b7a72 moved it into config.json, so older data
	// directories lack the key (the current reference would then apply no
	// limit at all).
	MaxBytesMessage int
}

// DefaultMaxBytesMessage is the committed max_bytes_message and the
// reference's earlier hard-coded limit (1024 * 32).
const DefaultMaxBytesMessage = 32768

// pingClientLimitMS is SocketClient's own hard-coded 60 s timer (spec §7).
const pingClientLimitMS = 60000

// maxTimerMS is Node's TIMEOUT_MAX, 2^31-1.
const maxTimerMS = math.MaxInt32

// maxMessageBytes bounds max_bytes_message to something a server can buffer.
const maxMessageBytes = 1 << 30

// Warnings lists settings that are valid but known to misbehave.
func (c Config) Warnings() []string {
	var w []string
	if c.PingMS >= pingClientLimitMS {
		w = append(w, fmt.Sprintf("ping %d ms: SocketClient disconnects itself with PING_TIMEOUT when the server pings less often than every 60000 ms", c.PingMS))
	}
	return w
}

// Auth is data/auth.json:
//
//	{ "redis": { "host": "redis", "port": 6379, "password": "…" }, "token": "" }
type Auth struct {
	// Token is the shared IDENTIFY secret. Optional: absent or "" means
	// nobody can identify, exactly as in the reference.
	Token string
	// Redis is the "redis" section, nil when absent (the reference needs
	// it; Switchboard only when its Redis engine is used).
	Redis *Redis
}

// Redis is the connection the reference hands to ioredis.
type Redis struct {
	Host     string // default "localhost", as ioredis
	Port     int    // default 6379, as ioredis
	Password string // empty: no AUTH
}

// ParseConfig decodes the contents of config.json.
func ParseConfig(data []byte) (Config, error) {
	c, err := parseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("config.json: %w", err)
	}
	return c, nil
}

func parseConfig(data []byte) (Config, error) {
	obj, err := object(data, "the file")
	if err != nil {
		return Config{}, err
	}
	var c Config
	if c.PingMS, err = integer(obj, "ping", "ping", 1, maxTimerMS, true); err != nil {
		return Config{}, err
	}
	mb, err := integer(obj, "max_bytes_message", "max_bytes_message", 1, maxMessageBytes, false)
	if err != nil {
		return Config{}, err
	}
	c.MaxBytesMessage = DefaultMaxBytesMessage
	if _, ok := obj["max_bytes_message"]; ok {
		c.MaxBytesMessage = int(mb)
	}
	raw, ok := obj["socket"]
	if !ok {
		return Config{}, errors.New(`"socket" is required`)
	}
	sock, err := object(raw, `"socket"`)
	if err != nil {
		return Config{}, err
	}
	if c.Host, err = str(sock, "host", "socket.host"); err != nil {
		return Config{}, err
	}
	port, err := integer(sock, "port", "socket.port", 0, 65535, true)
	if err != nil {
		return Config{}, err
	}
	c.Port = int(port)
	return c, nil
}

// ParseAuth decodes the contents of auth.json.
func ParseAuth(data []byte) (Auth, error) {
	a, err := parseAuth(data)
	if err != nil {
		return Auth{}, fmt.Errorf("auth.json: %w", err)
	}
	return a, nil
}

func parseAuth(data []byte) (Auth, error) {
	obj, err := object(data, "the file")
	if err != nil {
		return Auth{}, err
	}
	var a Auth
	if a.Token, err = str(obj, "token", "token"); err != nil {
		return Auth{}, err
	}
	raw, ok := obj["redis"]
	if !ok {
		return a, nil
	}
	r, err := object(raw, `"redis"`)
	if err != nil {
		return Auth{}, err
	}
	a.Redis = &Redis{Host: "localhost", Port: 6379}
	if h, err := str(r, "host", "redis.host"); err != nil {
		return Auth{}, err
	} else if _, ok := r["host"]; ok {
		a.Redis.Host = h
	}
	if _, ok := r["port"]; ok {
		p, err := integer(r, "port", "redis.port", 1, 65535, true)
		if err != nil {
			return Auth{}, err
		}
		a.Redis.Port = int(p)
	}
	if a.Redis.Password, err = str(r, "password", "redis.password"); err != nil {
		return Auth{}, err
	}
	return a, nil
}

// LoadDir reads config.json and auth.json from the reference's data
// directory (the reference uses <cwd>/data).
func LoadDir(dir string) (Config, Auth, error) {
	cb, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return Config{}, Auth{}, err
	}
	ab, err := os.ReadFile(filepath.Join(dir, "auth.json"))
	if err != nil {
		return Config{}, Auth{}, err
	}
	c, err := ParseConfig(cb)
	if err != nil {
		return Config{}, Auth{}, err
	}
	a, err := ParseAuth(ab)
	if err != nil {
		return Config{}, Auth{}, err
	}
	return c, a, nil
}

// object decodes a JSON object into its members, keys matched exactly.
func object(data []byte, what string) (map[string]json.RawMessage, error) {
	if t := bytes.TrimLeft(data, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, fmt.Errorf("%s: must be a JSON object", what)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return m, nil
}

// integer reads obj[key] as a JSON number holding an integer in [lo, hi].
// The literal is read as a double first, as JSON.parse does (3e4 is 30000,
// 30000.0 too).
func integer(obj map[string]json.RawMessage, key, name string, lo, hi int64, required bool) (int64, error) {
	raw, ok := obj[key]
	if !ok {
		if required {
			return 0, fmt.Errorf("%q is required", name)
		}
		return 0, nil
	}
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, fmt.Errorf("%q must be a number, not %s", name, raw)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
		return 0, fmt.Errorf("%q must be an integer from %d to %d, not %s", name, lo, hi, raw)
	}
	return int64(f), nil
}

// str reads obj[key] as a JSON string; absent is "".
func str(obj map[string]json.RawMessage, key, name string) (string, error) {
	raw, ok := obj[key]
	if !ok {
		return "", nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", fmt.Errorf("%q must be a string, not %s", name, raw)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("%q: %w", name, err)
	}
	return s, nil
}
