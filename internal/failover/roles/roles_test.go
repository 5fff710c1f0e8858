package roles

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestResourceValidate(t *testing.T) {
	ok := func(r Resource) Resource { r.Normalize(); return r }
	exec := func(p map[string]string) Resource { return ok(Resource{Name: "web", Type: "exec", Params: p}) }
	cases := []struct {
		name string
		r    Resource
		want string // "" for valid, else a part of the error
	}{
		{"exec with argv", exec(map[string]string{"start": `["/bin/web", "-p", "80"]`}), ""},
		{"exec with words and a tcp check", exec(map[string]string{"start": "/bin/web -p 80", "tcp": "127.0.0.1:80"}), ""},
		{"exec with an http check", exec(map[string]string{"start": "/bin/web", "http": "https://localhost/health"}), ""},
		{"exec with a check command", exec(map[string]string{"start": "/bin/web", "check": "/bin/web --ping"}), ""},
		{"exec without start", exec(map[string]string{"check": "/bin/true"}), `"start" parameter`},
		{"exec with two checks", exec(map[string]string{"start": "/bin/web", "check": "/bin/true", "tcp": "h:1"}), "at most one"},
		{"exec with a bad tcp", exec(map[string]string{"start": "/bin/web", "tcp": "nohost"}), "host:port"},
		{"exec with a bad url", exec(map[string]string{"start": "/bin/web", "http": "ftp://x"}), "http:// or https://"},
		{"exec with a pipe", exec(map[string]string{"start": "/bin/web | tee log"}), "shell"},
		{"exec with an unknown parameter", exec(map[string]string{"start": "/bin/web", "user": "www"}), `unknown parameter "user"`},
		{"exec with an empty argv", exec(map[string]string{"start": `[]`}), "program is missing"},
		{"exec with an unterminated quote", exec(map[string]string{"start": `/bin/web "x`}), "unterminated"},
		{"systemd", ok(Resource{Name: "web", Type: "systemd", Params: map[string]string{"unit": "nginx.service"}}), ""},
		{"systemd without a unit", ok(Resource{Name: "web", Type: "systemd"}), `"unit" parameter`},
		{"systemd with a bad unit", ok(Resource{Name: "web", Type: "systemd", Params: map[string]string{"unit": "nginx"}}), "unit name"},
		{"unknown type", ok(Resource{Name: "web", Type: "docker"}), `unknown resource type "docker"`},
		{"name with a slash", ok(Resource{Name: "a/b", Type: "exec", Params: map[string]string{"start": "x"}}), "resource name"},
		{"negative restart limit", func() Resource { r := exec(map[string]string{"start": "x"}); r.RestartLimit = -1; return r }(), "restart limit -1"},
		{"negative interval", func() Resource { r := exec(map[string]string{"start": "x"}); r.MonitorInterval = -1; return r }(), "interval"},
		{"timeout longer than the interval", func() Resource {
			r := exec(map[string]string{"start": "x"})
			r.MonitorTimeout = Duration(time.Minute)
			return r
		}(), "longer than the interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.r.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestGroupValidateAndCheck(t *testing.T) {
	base := func(mut func(g *Group)) Group {
		g := Group{Name: "shop", Resources: []string{"db", "web"}, PossibleOwners: []string{"n1", "n2"}, PreferredOwners: []string{"n2"}, FailoverThreshold: 1}
		if mut != nil {
			mut(&g)
		}
		g.Normalize()
		return g
	}
	resources := map[string]string{"db": "", "web": "", "cache": "other"}
	members := []string{"n1", "N2", "n3"}
	cases := []struct {
		name string
		g    Group
		want string
	}{
		{"valid", base(nil), ""},
		{"no resources, all owners", base(func(g *Group) { g.Resources, g.PossibleOwners, g.PreferredOwners = nil, nil, nil }), ""},
		{"owners in another case", base(func(g *Group) { g.PossibleOwners = []string{"N1", "n2"} }), ""},
		{"window across midnight", base(func(g *Group) {
			g.Failback = Failback{Policy: FailbackWindow, WindowStart: "22:00", WindowEnd: "06:00"}
		}), ""},
		{"a resource twice", base(func(g *Group) { g.Resources = []string{"db", "DB"} }), "resource DB is listed twice"},
		{"an unknown resource", base(func(g *Group) { g.Resources = []string{"db", "nosuch"} }), "no resource named nosuch"},
		{"a resource of another group", base(func(g *Group) { g.Resources = []string{"cache"} }), "already in group other"},
		{"an owner not a member", base(func(g *Group) { g.PossibleOwners = []string{"n1", "n9"}; g.PreferredOwners = nil }), "owner n9 is not a member"},
		{"a preferred owner not possible", base(func(g *Group) { g.PreferredOwners = []string{"n3"} }), "not among its possible owners"},
		{"a preferred owner twice", base(func(g *Group) { g.PreferredOwners = []string{"n2", "n2"} }), "listed twice"},
		{"negative threshold", base(func(g *Group) { g.FailoverThreshold = -1 }), "threshold -1"},
		{"negative period", base(func(g *Group) { g.FailoverPeriod = Duration(-time.Hour) }), "period"},
		{"unknown failback", base(func(g *Group) { g.Failback.Policy = "sometimes" }), `failback policy "sometimes"`},
		{"window without times", base(func(g *Group) { g.Failback.Policy = FailbackWindow }), "window start"},
		{"window with a bad time", base(func(g *Group) {
			g.Failback = Failback{Policy: FailbackWindow, WindowStart: "25:00", WindowEnd: "06:00"}
		}), "window start"},
		{"empty window", base(func(g *Group) {
			g.Failback = Failback{Policy: FailbackWindow, WindowStart: "06:00", WindowEnd: "06:00"}
		}), "starts and ends"},
		{"times without the window policy", base(func(g *Group) { g.Failback = Failback{Policy: FailbackNever, WindowStart: "06:00"} }), "only for"},
		{"unknown wanted state", base(func(g *Group) { g.Wanted = "up" }), `wanted state "up"`},
		{"bad name", base(func(g *Group) { g.Name = "-x" }), "group name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.g.Validate()
			if err == nil {
				err = c.g.Check(resources, members)
			}
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want an ErrInvalid containing %q", err, c.want)
			}
		})
	}
}

func TestParseCommand(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{`/bin/web -p 80`, []string{"/bin/web", "-p", "80"}},
		{`  /bin/web   'a b'  "c d" e\ f ''`, []string{"/bin/web", "a b", "c d", "e f", ""}},
		{`["/bin/sh", "-c", "echo $HOME | tee x"]`, []string{"/bin/sh", "-c", "echo $HOME | tee x"}},
		{`/bin/echo "say \"hi\""`, []string{"/bin/echo", `say "hi"`}},
	}
	for _, c := range cases {
		got, err := ParseCommand(c.in)
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseCommand(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "   ", "a; b", "a && b", "a > f", "echo $X", "echo \"$X\"", "a `b`", "ls *", `["a", 1]`, `"open`} {
		if got, err := ParseCommand(bad); err == nil {
			t.Errorf("ParseCommand(%q) = %q, want an error", bad, got)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	var r Resource
	if err := json.Unmarshal([]byte(`{"name":"a","monitor_interval":"1m30s"}`), &r); err != nil || time.Duration(r.MonitorInterval) != 90*time.Second {
		t.Fatalf("%+v %v", r, err)
	}
	b, _ := json.Marshal(r)
	if !strings.Contains(string(b), `"monitor_interval":"1m30s"`) {
		t.Fatalf("%s", b)
	}
	err := json.Unmarshal([]byte(`{"monitor_interval":"soon"}`), &r)
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad duration: %v", err)
	}
}

func TestSystemdAvailable(t *testing.T) {
	dir := t.TempDir()
	if err := (Systemd{Root: dir}).Available(); err != nil {
		t.Fatalf("with %s: %v", dir, err)
	}
	err := Systemd{Root: filepath.Join(dir, "none")}.Available()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "systemd does not run") {
		t.Fatalf("without: %v", err)
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Log("systemd runs here")
	}
	if err := (Exec{}).Available(); err != nil {
		t.Fatal(err)
	}
}
