package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchboard-rt/switchboard/internal/config"
)

const root = ".." // the repository, from this package's directory

// dockerfile is the Dockerfile's instructions, continuation lines joined.
func dockerfile(t *testing.T) [][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	var cur string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") || (line == "" && cur == "") {
			continue
		}
		if rest, ok := strings.CutSuffix(line, "\\"); ok {
			cur += rest + " "
			continue
		}
		cur += line
		if f := strings.Fields(cur); len(f) > 0 {
			out = append(out, f)
		}
		cur = ""
	}
	return out
}

// The image builds from the module's own files: every COPY source exists,
// .dockerignore lets it through, and those sources hold every package
// the binary is built from (go list), embedded files included.
func TestDockerfileCopiesWhatTheBuildNeeds(t *testing.T) {
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, l := range strings.Split(string(ignore), "\n") {
		if p, ok := strings.CutPrefix(strings.TrimSpace(l), "!"); ok {
			allowed[strings.TrimSuffix(p, "/")] = true
		}
	}
	var copied []string
	var froms, stages int
	var user, healthcheck, entrypoint string
	env := map[string]bool{}
	for _, ins := range dockerfile(t) {
		switch strings.ToUpper(ins[0]) {
		case "FROM":
			froms++
			if len(ins) == 4 && strings.EqualFold(ins[2], "AS") {
				stages++
			}
		case "COPY":
			if strings.HasPrefix(ins[1], "--from=") || strings.HasPrefix(ins[2], "--from=") {
				continue
			}
			for _, src := range ins[1 : len(ins)-1] {
				src = strings.TrimSuffix(src, "/")
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("COPY %s: %v", src, err)
				}
				if !allowed[src] {
					t.Errorf("COPY %s: .dockerignore leaves it out", src)
				}
				copied = append(copied, src)
			}
		case "ENV":
			for _, kv := range ins[1:] {
				env[kv] = true
			}
		case "USER":
			user = ins[1]
		case "HEALTHCHECK":
			healthcheck = strings.Join(ins, " ")
		case "ENTRYPOINT":
			entrypoint = strings.Join(ins[1:], " ")
		}
	}
	if froms < 2 || stages < 1 {
		t.Errorf("want a multi-stage build, got %d FROM lines", froms)
	}
	if !env["CGO_ENABLED=0"] {
		t.Error("the build stage must set CGO_ENABLED=0 (a static binary)")
	}
	if user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("USER %q: the image must not run as root", user)
	}
	if !strings.Contains(healthcheck, `"/usr/local/bin/switchboard", "healthcheck"]`) {
		t.Errorf("HEALTHCHECK must use the binary's own check: %s", healthcheck)
	}
	if entrypoint != `["/usr/local/bin/switchboard"]` {
		t.Errorf("ENTRYPOINT %s", entrypoint)
	}

	// Every package of the module the binary needs lives under a COPY.
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", "../cmd/switchboard").Output()
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(root)
	for _, dir := range strings.Fields(string(out)) {
		rel, _ := filepath.Rel(abs, dir)
		ok := false
		for _, c := range copied {
			if rel == c || strings.HasPrefix(rel, c+string(filepath.Separator)) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("package directory %s is needed by the build but not copied into the image", rel)
		}
	}
}

var composeVar = regexp.MustCompile(`\$\{([A-Z_]+)(:?[?-][^}]*)?\}`)

type composeFile struct {
	Services map[string]struct {
		Hostname    string            `yaml:"hostname"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Ports       []string          `yaml:"ports"`
		StopGrace   string            `yaml:"stop_grace_period"`
		Image       string            `yaml:"image"`
	} `yaml:"services"`
}

// Each compose file parses; every Switchboard node mounts a configuration
// that passes the server's own validation with the node's environment, is
// stopped no sooner than its drain ends, and the NATS route list names
// exactly the nodes.
func TestComposeFilesAndTheirConfigs(t *testing.T) {
	for _, name := range []string{"compose.yaml", "compose.redis.yaml"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			data = composeVar.ReplaceAll(data, []byte("set-by-the-test")) // ${SECRET:?...}
			var cf composeFile
			if err := yaml.Unmarshal(data, &cf); err != nil {
				t.Fatal(err)
			}
			var hosts []string
			for svc, s := range cf.Services {
				if s.Image != "switchboard:local" {
					continue
				}
				hosts = append(hosts, s.Hostname+":6222")
				if s.Hostname == "" {
					t.Errorf("%s: no hostname (the node's name and its own route come from it)", svc)
				}
				cfgPath := ""
				for _, v := range s.Volumes {
					if src, dst, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(dst, "/etc/switchboard/switchboard.yaml") {
						cfgPath = src
					}
				}
				if cfgPath == "" || s.Environment["SWITCHBOARD_CONFIG"] != "/etc/switchboard/switchboard.yaml" ||
					strings.Join(s.Command, " ") != "serve -config /etc/switchboard/switchboard.yaml" {
					t.Fatalf("%s: the configuration must be mounted at /etc/switchboard/switchboard.yaml and named by -config and SWITCHBOARD_CONFIG", svc)
				}
				cfg, err := config.Load(cfgPath, func(k string) string { return s.Environment[k] })
				if err != nil {
					t.Fatalf("%s: %v", svc, err)
				}
				if cfg.UsesDefaultSecret() {
					t.Errorf("%s: uses the public default secret", svc)
				}
				grace, err := time.ParseDuration(s.StopGrace)
				if err != nil || grace <= cfg.Shutdown.Timeout.D() {
					t.Errorf("%s: stop_grace_period %q must be above shutdown.timeout %v", svc, s.StopGrace, cfg.Shutdown.Timeout.D())
				}
				if cfg.Cluster.Engine == "nats" {
					var routes []string
					for _, r := range cfg.Cluster.NATS.Routes {
						routes = append(routes, strings.TrimPrefix(r, "nats-route://"))
					}
					t.Cleanup(func() {
						if strings.Join(routes, " ") != strings.Join(sorted(hosts), " ") {
							t.Errorf("routes %v, nodes %v", routes, sorted(hosts))
						}
					})
				}
			}
			if len(hosts) != 3 {
				t.Errorf("%d Switchboard nodes, want 3", len(hosts))
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

// unit is the systemd unit's settings, key -> values (keys may repeat).
func unit(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open("switchboard.service")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	m := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			m[k] = append(m[k], v)
		}
	}
	return m
}

// The unit has the settings docs/deploy.md relies on, no reload the
// server cannot do, and a stop timeout above the drain's; systemd's own
// verifier finds nothing to say about it where it is installed.
func TestSystemdUnit(t *testing.T) {
	u := unit(t)
	for key, want := range map[string]string{
		"Type": "exec", "DynamicUser": "yes", "StateDirectory": "switchboard", "WorkingDirectory": "/var/lib/switchboard",
		"ProtectSystem": "strict", "Restart": "on-failure", "LimitNOFILE": "1048576", "NoNewPrivileges": "yes",
		"KillSignal": "SIGTERM", "ExecStart": "/usr/local/bin/switchboard serve -config /etc/switchboard/switchboard.yaml",
		"ExecStartPre": "/usr/local/bin/switchboard check-config /etc/switchboard/switchboard.yaml",
	} {
		if got := u[key]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%v, want %s", key, got, want)
		}
	}
	if _, ok := u["ExecReload"]; ok {
		t.Error("ExecReload: the server does not reload on SIGHUP (SIGHUP would end it)")
	}
	stop, err := time.ParseDuration(strings.Join(u["TimeoutStopSec"], ""))
	if d := config.Default().Shutdown.Timeout.D(); err != nil || stop <= d {
		t.Errorf("TimeoutStopSec %v must be above shutdown.timeout %v", u["TimeoutStopSec"], d)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze not installed: unit not verified by systemd")
		return
	}
	// The verifier wants the programs to exist: point them at an
	// executable that does (this test binary).
	data, err := os.ReadFile("switchboard.service")
	if err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	p := filepath.Join(t.TempDir(), "switchboard.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(data), "/usr/local/bin/switchboard", self)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
