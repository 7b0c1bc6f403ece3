package refconfig

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"time"
)

// Settings are the damon.* configuration keys the reference's files can
// supply. A zero field is unset.
type Settings struct {
	Listen           string        // damon.listen
	PingInterval     time.Duration // damon.ping_interval
	MaxDocumentBytes int           // damon.max_document_bytes
	Token            string        // damon.token
}

// Merge reads the reference's data/config.json (configPath) and
// data/auth.json (authPath), each only when named, and fills the unset
// fields of s from them. A field set in both places to different values is
// a problem named by its damon.* key, and so is a file that cannot be read
// or parsed; problems are returned in full rather than the first one. The
// token never appears in a problem.
func Merge(s Settings, configPath, authPath string) (Settings, []string) {
	var problems []string
	conflict := func(key, yamlVal, refVal, file string) {
		problems = append(problems, fmt.Sprintf("damon.%s is %s but %s says %s: set it in one place", key, yamlVal, file, refVal))
	}
	if configPath != "" {
		b, err := os.ReadFile(configPath)
		var rc Config
		if err == nil {
			rc, err = ParseConfig(b)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("damon.reference_config: %v", err))
		} else {
			// An empty host is every interface, as for Node's listen().
			listen := net.JoinHostPort(rc.Host, strconv.Itoa(rc.Port))
			switch {
			case s.Listen == "":
				s.Listen = listen
			case s.Listen != listen:
				conflict("listen", strconv.Quote(s.Listen), strconv.Quote(listen), configPath)
			}
			ping := time.Duration(rc.PingMS) * time.Millisecond
			switch {
			case s.PingInterval == 0:
				s.PingInterval = ping
			case s.PingInterval != ping:
				conflict("ping_interval", s.PingInterval.String(), ping.String(), configPath)
			}
			switch {
			case s.MaxDocumentBytes == 0:
				s.MaxDocumentBytes = rc.MaxBytesMessage
			case s.MaxDocumentBytes != rc.MaxBytesMessage:
				conflict("max_document_bytes", strconv.Itoa(s.MaxDocumentBytes), strconv.Itoa(rc.MaxBytesMessage), configPath)
			}
		}
	}
	if authPath != "" {
		b, err := os.ReadFile(authPath)
		var ra Auth
		if err == nil {
			ra, err = ParseAuth(b)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("damon.reference_auth: %v", err))
		} else {
			switch {
			case s.Token == "":
				s.Token = ra.Token
			case ra.Token != "" && s.Token != ra.Token:
				problems = append(problems, fmt.Sprintf("damon.token differs from the token in %s: set it in one place", authPath))
			}
		}
	}
	return s, problems
}
