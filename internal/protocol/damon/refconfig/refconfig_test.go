package refconfig

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The reference's committed files (Damon-Org/Socket 00b7a72), the sample
// password replaced.
const (
	referenceConfig = `{
    "ping": 3e4,
    "socket": {
        "host": "0.0.0.0",
        "port": 42069
    },
    "max_bytes_message": 32768
}
`
	referenceAuth = `{
    "redis": {
        "host": "redis",
        "port": 6379,
        "password": "<redis password>"
    },
    "token": ""
}
`
)

func TestParseReferenceFiles(t *testing.T) {
	c, err := ParseConfig([]byte(referenceConfig))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Config{PingMS: 30000, Host: "0.0.0.0", Port: 42069, MaxBytesMessage: 32768}); c != want {
		t.Fatalf("config = %+v, want %+v", c, want)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("warnings %q", w)
	}
	a, err := ParseAuth([]byte(referenceAuth))
	if err != nil {
		t.Fatal(err)
	}
	if a.Token != "" || a.Redis == nil || *a.Redis != (Redis{Host: "redis", Port: 6379, Password: "<redis password>"}) {
		t.Fatalf("auth = %+v %+v", a, a.Redis)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		json string
		want Config
		err  string
	}{
		{"minimal", `{"ping":1000,"socket":{"port":1}}`, Config{PingMS: 1000, Port: 1, MaxBytesMessage: 32768}, ""},
		{"pre-00b7a72 file without max_bytes_message", `{"ping":3e4,"socket":{"host":"0.0.0.0","port":42069}}`,
			Config{PingMS: 30000, Host: "0.0.0.0", Port: 42069, MaxBytesMessage: 32768}, ""},
		{"number forms", `{"ping":30000.0,"socket":{"port":4.2069e4},"max_bytes_message":1024E0}`,
			Config{PingMS: 30000, Port: 42069, MaxBytesMessage: 1024}, ""},
		{"unknown keys ignored", `{"ping":1,"socket":{"port":0,"backlog":5},"extra":{"x":[1]}}`, Config{PingMS: 1, MaxBytesMessage: 32768}, ""},
		{"case-sensitive keys: PING is unknown", `{"PING":5,"ping":7,"socket":{"port":1}}`, Config{PingMS: 7, Port: 1, MaxBytesMessage: 32768}, ""},
		{"duplicate key: last wins", `{"ping":5,"ping":7,"socket":{"port":1}}`, Config{PingMS: 7, Port: 1, MaxBytesMessage: 32768}, ""},
		{"escaped key", `{"p\u0069ng":9,"socket":{"port":1}}`, Config{PingMS: 9, Port: 1, MaxBytesMessage: 32768}, ""},

		{"missing ping", `{"socket":{"port":1}}`, Config{}, `"ping" is required`},
		{"string ping", `{"ping":"3e4","socket":{"port":1}}`, Config{}, `"ping" must be a number`},
		{"null ping", `{"ping":null,"socket":{"port":1}}`, Config{}, `"ping" must be a number`},
		{"fractional ping", `{"ping":1.5,"socket":{"port":1}}`, Config{}, "integer"},
		{"zero ping", `{"ping":0,"socket":{"port":1}}`, Config{}, "integer from 1"},
		{"ping past Node's timer range", `{"ping":3e9,"socket":{"port":1}}`, Config{}, "2147483647"},
		{"missing socket", `{"ping":1}`, Config{}, `"socket" is required`},
		{"socket not an object", `{"ping":1,"socket":42069}`, Config{}, "must be a JSON object"},
		{"missing port", `{"ping":1,"socket":{"host":"h"}}`, Config{}, `"socket.port" is required`},
		{"string port", `{"ping":1,"socket":{"port":"42069"}}`, Config{}, `"socket.port" must be a number`},
		{"port out of range", `{"ping":1,"socket":{"port":65536}}`, Config{}, "65535"},
		{"numeric host", `{"ping":1,"socket":{"host":1,"port":1}}`, Config{}, `"socket.host" must be a string`},
		{"string max", `{"ping":1,"socket":{"port":1},"max_bytes_message":"32768"}`, Config{}, "must be a number"},
		{"zero max", `{"ping":1,"socket":{"port":1},"max_bytes_message":0}`, Config{}, "integer from 1"},
		{"not an object", `[1]`, Config{}, "must be a JSON object"},
		{"null", `null`, Config{}, "must be a JSON object"},
		{"BOM (JSON.parse rejects it too)", "\ufeff{\"ping\":1,\"socket\":{\"port\":1}}", Config{}, "must be a JSON object"},
		{"bad JSON", `{"ping":1,}`, Config{}, "invalid character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConfig([]byte(tt.json))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "config.json: ") {
					t.Fatalf("err = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestConfigWarnings(t *testing.T) {
	c, err := ParseConfig([]byte(`{"ping":6e4,"socket":{"port":1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "SocketClient") {
		t.Fatalf("warnings %q", w)
	}
	c.PingMS = 59999
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("warnings %q", w)
	}
}

func TestParseAuth(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		token string
		redis *Redis
		err   string
	}{
		{"token only", `{"token":"secret"}`, "secret", nil, ""},
		{"missing token disables identify", `{}`, "", nil, ""},
		{"redis defaults as ioredis", `{"token":"t","redis":{}}`, "t", &Redis{Host: "localhost", Port: 6379}, ""},
		{"unknown keys ignored", `{"token":"t","mongo":{},"redis":{"db":2,"host":"h"}}`, "t", &Redis{Host: "h", Port: 6379}, ""},
		{"numeric token", `{"token":12345}`, "", nil, `"token" must be a string`},
		{"null token", `{"token":null}`, "", nil, `"token" must be a string`},
		{"redis not an object", `{"redis":"redis://h"}`, "", nil, "must be a JSON object"},
		{"string redis port", `{"redis":{"port":"6379"}}`, "", nil, `"redis.port" must be a number`},
		{"numeric password", `{"redis":{"password":1}}`, "", nil, `"redis.password" must be a string`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAuth([]byte(tt.json))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "auth.json: ") {
					t.Fatalf("err = %v, want it to mention %q", err, tt.err)
				}
				return
			}
			if err != nil || a.Token != tt.token || (a.Redis == nil) != (tt.redis == nil) || a.Redis != nil && *a.Redis != *tt.redis {
				t.Fatalf("got %+v %+v, %v", a, a.Redis, err)
			}
		})
	}
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := LoadDir(dir); err == nil {
		t.Fatal("empty dir accepted")
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(referenceConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadDir(dir); err == nil {
		t.Fatal("missing auth.json accepted (the reference crashes on it)")
	}
	if err := os.WriteFile(filepath.Join(dir, "auth.json"), []byte(`{"token":"s3cret"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, a, err := LoadDir(dir)
	if err != nil || c.PingMS != 30000 || a.Token != "s3cret" {
		t.Fatalf("%+v %+v %v", c, a, err)
	}
}
