package roles

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Type is a kind of resource. Validate checks a resource's parameters
// wherever it is recorded; Available reports whether this node can run
// resources of the type. (Start, Stop and Monitor come with the resource
// manager.)
type Type interface {
	Name() string
	Validate(params map[string]string) error
	Available() error
}

// ErrUnavailable: this node cannot run resources of a type.
var ErrUnavailable = errors.New("resource type unavailable on this node")

var (
	typesMu sync.RWMutex
	types   = map[string]Type{}
)

// Register adds a type; a second type of the same name replaces the first.
func Register(t Type) {
	typesMu.Lock()
	defer typesMu.Unlock()
	types[t.Name()] = t
}

// Lookup finds a registered type.
func Lookup(name string) (Type, error) {
	typesMu.RLock()
	defer typesMu.RUnlock()
	if t, ok := types[name]; ok {
		return t, nil
	}
	return nil, invalid("unknown resource type %q (known: %s)", name, strings.Join(typeNames(), ", "))
}

// TypeNames lists the registered types, sorted.
func TypeNames() []string {
	typesMu.RLock()
	defer typesMu.RUnlock()
	return typeNames()
}

func typeNames() []string {
	var out []string
	for n := range types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func init() {
	Register(Exec{})
	Register(Systemd{Root: "/run/systemd/system"})
}

func checkParams(typ string, params map[string]string, known ...string) error {
	for k := range params {
		if !slices.Contains(known, k) {
			return invalid("%s: unknown parameter %q (known: %s)", typ, k, strings.Join(known, ", "))
		}
	}
	return nil
}

// Exec is a command the agent starts and supervises as a child process.
// Parameters: "start" (required), the command; "stop" (optional), a
// command run to stop it before it is signalled; at most one check: "check"
// (a command that exits 0 when healthy), "tcp" (host:port accepting
// connections) or "http" (a URL answering 2xx or 3xx). A command is a JSON
// array of strings, or text split into words as a shell would, with
// quotes and backslashes but no expansion, pipes or redirections.
type Exec struct{}

// Name is "exec".
func (Exec) Name() string { return "exec" }

// Available: every node can run commands.
func (Exec) Available() error { return nil }

// Validate checks the parameters.
func (Exec) Validate(p map[string]string) error {
	if err := checkParams("exec", p, "start", "stop", "check", "tcp", "http"); err != nil {
		return err
	}
	if _, ok := p["start"]; !ok {
		return invalid("exec: the %q parameter (the command to run) is required", "start")
	}
	for _, k := range []string{"start", "stop", "check"} {
		if v, ok := p[k]; ok {
			if _, err := ParseCommand(v); err != nil {
				return fmt.Errorf("exec: %s: %w", k, err)
			}
		}
	}
	n := 0
	for _, k := range []string{"check", "tcp", "http"} {
		if _, ok := p[k]; ok {
			n++
		}
	}
	if n > 1 {
		return invalid("exec: give at most one of check, tcp and http")
	}
	if v, ok := p["tcp"]; ok {
		host, port, err := net.SplitHostPort(v)
		if err != nil || port == "" || host == "" {
			return invalid("exec: tcp %q: want host:port", v)
		}
	}
	if v, ok := p["http"]; ok {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return invalid("exec: http %q: want an http:// or https:// URL", v)
		}
	}
	return nil
}

// ParseCommand turns a command parameter into its argv: a JSON array of
// strings, or words split as a shell would (spaces separate, single and
// double quotes group, a backslash escapes), refusing what only a shell
// could do ($, `, |, &, ;, <, >, globbing is not done either).
func ParseCommand(s string) ([]string, error) {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") {
		var argv []string
		if err := json.Unmarshal([]byte(t), &argv); err != nil {
			return nil, invalid("command %s: not a JSON array of strings: %v", s, err)
		}
		if len(argv) == 0 || argv[0] == "" {
			return nil, invalid("command %s: the program is missing", s)
		}
		return argv, nil
	}
	var argv []string
	var cur strings.Builder
	inWord := false
	var quote rune
	esc := false
	for _, r := range t {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case quote == '"':
			switch r {
			case '"':
				quote = 0
			case '\\':
				esc = true
			case '$', '`':
				return nil, invalid("command %q: %q would need a shell; run [\"sh\", \"-c\", ...] explicitly", s, r)
			default:
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == '\\':
			esc, inWord = true, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				argv = append(argv, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("$`|&;<>(){}*?[]~#", r):
			return nil, invalid("command %q: %q would need a shell; run [\"sh\", \"-c\", ...] explicitly", s, r)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || esc {
		return nil, invalid("command %q: unterminated quote or escape", s)
	}
	if inWord {
		argv = append(argv, cur.String())
	}
	if len(argv) == 0 {
		return nil, invalid("command is empty")
	}
	return argv, nil
}

// Systemd is a systemd unit the agent starts, stops and watches.
// Parameters: "unit" (required), the unit's full name (web.service).
type Systemd struct {
	// Root is the directory whose presence says systemd runs this node
	// (/run/systemd/system, as sd_booted checks).
	Root string
}

// Name is "systemd".
func (Systemd) Name() string { return "systemd" }

var unitRE = regexp.MustCompile(`^[A-Za-z0-9:_.\\@-]+\.(service|socket|target|mount|timer|path)$`)

// Validate checks the parameters.
func (Systemd) Validate(p map[string]string) error {
	if err := checkParams("systemd", p, "unit"); err != nil {
		return err
	}
	u, ok := p["unit"]
	if !ok {
		return invalid("systemd: the %q parameter (the unit's name, such as web.service) is required", "unit")
	}
	if len(u) > 255 || !unitRE.MatchString(u) {
		return invalid("systemd: unit %q: want a unit name ending in .service, .socket, .target, .mount, .timer or .path", u)
	}
	return nil
}

// Available reports whether systemd runs this node.
func (s Systemd) Available() error {
	fi, err := os.Stat(s.Root)
	if err != nil || !fi.IsDir() {
		host, _ := os.Hostname()
		return fmt.Errorf("%w: systemd does not run on %s (no %s)", ErrUnavailable, host, s.Root)
	}
	return nil
}
