package resources

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

func TestExecStartMonitorStop(t *testing.T) {
	cfg := testConfig(t)
	name := uniqueName("web")
	r := execResource(name, map[string]string{
		"start": cmdParam("sh", "-c", `echo "env: $CLUSTERKEEP_RESOURCE $EXTRA"; exec sleep 1000`),
	})
	inst, err := NewExec(cfg).Start(context.Background(), r, []string{"EXTRA=given"})
	if err != nil {
		t.Fatal(err)
	}
	i := inst.(*execInstance)

	if err := inst.Monitor(context.Background()); err != nil {
		t.Fatalf("monitor of a running resource: %v", err)
	}
	eventually(t, "the resource writes its environment to its log", func() bool {
		return strings.Contains(readLog(t, cfg, name), "env: "+name+" given")
	})
	for path, want := range map[string]os.FileMode{cfg.LogDir: 0o700 | os.ModeDir, filepath.Join(cfg.LogDir, name+".log"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", path, fi.Mode(), err, want)
		}
	}
	if got := records(t, cfg.StateDir); len(got) != 1 || got[0] != name+"."+strconv.Itoa(i.pgid)+".json" {
		t.Errorf("records while it runs: %v", got)
	}
	if m, _ := groupMembers(i.pgid); len(m) != 2 {
		t.Errorf("process group %d: %d processes, want the shim and sleep", i.pgid, len(m))
	}

	if err := inst.Stop(context.Background(), 10*time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if groupAlive(i.pgid) {
		t.Errorf("process group %d still has processes after Stop", i.pgid)
	}
	if got := records(t, cfg.StateDir); len(got) != 0 {
		t.Errorf("records after Stop: %v", got)
	}
	if err := inst.Monitor(context.Background()); !errors.Is(err, ErrExited) {
		t.Errorf("monitor after Stop: %v, want ErrExited", err)
	}
	select {
	case <-inst.Exited():
		t.Error("Exited closed for an end that Stop caused")
	default:
	}
	if err := inst.Stop(context.Background(), time.Second); err != nil {
		t.Errorf("second stop: %v", err)
	}
}

func TestExecChecks(t *testing.T) {
	open, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	go func() {
		for {
			c, err := open.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()

	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
		case "/moved":
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer web.Close()

	pidFile := filepath.Join(t.TempDir(), "check.pid")
	cases := []struct {
		name    string
		param   string
		value   string
		timeout time.Duration
		want    string // "" healthy, else in the error
	}{
		{"tcp open", "tcp", open.Addr().String(), 0, ""},
		{"tcp refused", "tcp", closed, 0, "tcp " + closed + ": connection refused"},
		{"http 200", "http", web.URL + "/ok", 0, ""},
		{"http 302", "http", web.URL + "/moved", 0, ""},
		{"http 503", "http", web.URL + "/down", 0, "answered 503 Service Unavailable"},
		{"http refused", "http", "http://" + closed + "/", 0, "connection refused"},
		{"command exits 0", "check", cmdParam("sh", "-c", `test "$CLUSTERKEEP_RESOURCE" != ""`), 0, ""},
		{"command exits 1", "check", cmdParam("sh", "-c", "echo first >&2; echo 'disk full' >&2; exit 1"), 0, "check command exited 1: disk full"},
		{"command hangs", "check", cmdParam("sh", "-c", "echo $$ > "+pidFile+"; sleep 1000 & sleep 1000"), 200 * time.Millisecond, "did not finish within the monitor timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := uniqueName("chk")
			i := startExec(t, testConfig(t), execResource(name, map[string]string{
				"start": cmdParam("sleep", "1000"),
				c.param: c.value,
			}))
			ctx := context.Background()
			if c.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.timeout)
				defer cancel()
			}
			err := i.Monitor(ctx)
			if c.want == "" {
				if err != nil {
					t.Fatalf("monitor: %v, want healthy", err)
				}
				return
			}
			wantErr(t, err, c.want)
			if errors.Is(err, ErrExited) {
				t.Errorf("a failed check is not an exit: %v", err)
			}
		})
	}

	t.Run("hung check leaves nothing", func(t *testing.T) {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		pgid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		eventually(t, "the hung check's process group is gone", func() bool { return !groupAlive(pgid) })
	})
}

func TestExecExitsOnItsOwn(t *testing.T) {
	cases := []struct {
		name, script, want string
	}{
		{"exit status", "exit 3", "exited with status 3"},
		{"leaves a child behind", "sleep 1000 & exit 4", "exited with status 4"},
		{"killed by a signal", "kill -KILL $$", "exited with status 137 (killed by signal killed)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			name := uniqueName("own")
			i := startExec(t, cfg, execResource(name, map[string]string{"start": cmdParam("sh", "-c", c.script)}))
			waitClosed(t, "Exited closes", i.Exited())
			err := i.Monitor(context.Background())
			if !errors.Is(err, ErrExited) {
				t.Fatalf("monitor: %v, want ErrExited", err)
			}
			if err.Error() != c.want {
				t.Errorf("monitor: %q, want %q", err, c.want)
			}
			if ps := resourceProcs(t, name); len(ps) > 0 {
				t.Errorf("processes left after the resource ended: %v", ps)
			}
			if got := records(t, cfg.StateDir); len(got) != 0 {
				t.Errorf("records after it ended: %v", got)
			}
			if err := i.Stop(context.Background(), time.Second); err != nil {
				t.Errorf("stop after Exited: %v", err)
			}
		})
	}
}

func TestExecStop(t *testing.T) {
	dir := t.TempDir()
	stopFile := filepath.Join(dir, "stop")
	cases := []struct {
		name   string
		params map[string]string
		grace  time.Duration
		// ctxAfter, set, ends Stop's context this long after it began.
		ctxAfter time.Duration
		// inLog is what the resource's log must say after Stop.
		inLog string
		// notInLog is what it must not say.
		notInLog string
		// procs is how many processes it has when running (default 3:
		// the shim, sh and sleep).
		procs int
	}{
		{
			name: "by its stop command",
			params: map[string]string{
				// Deaf to SIGTERM: only the stop command ends it.
				"start": cmdParam("sh", "-c", "trap '' TERM; while [ ! -e "+stopFile+" ]; do sleep 0.05; done; echo ended-by-stop-command"),
				"stop":  cmdParam("touch", stopFile),
			},
			grace: time.Minute,
			inLog: "ended-by-stop-command",
		},
		{
			name:   "by SIGTERM",
			params: map[string]string{"start": cmdParam("sh", "-c", "trap 'echo got-term; exit 0' TERM; while :; do sleep 0.05; done")},
			grace:  time.Minute,
			inLog:  "got-term",
		},
		{
			name: "SIGTERM comes once",
			params: map[string]string{"start": cmdParam("sh", "-c",
				`n=0; trap 'n=$((n+1)); echo "term-$n"' TERM; while :; do sleep 0.05; done`)},
			grace:    500 * time.Millisecond,
			inLog:    "term-1",
			notInLog: "term-2",
		},
		{
			name:   "deaf to SIGTERM: SIGKILL when grace passes",
			params: map[string]string{"start": cmdParam("sh", "-c", "trap '' TERM; while :; do sleep 0.05; done")},
			grace:  300 * time.Millisecond,
			inLog:  "killing process group",
		},
		{
			name:     "deaf to SIGTERM: SIGKILL when ctx ends",
			params:   map[string]string{"start": cmdParam("sh", "-c", "trap '' TERM; while :; do sleep 0.05; done")},
			grace:    time.Hour,
			ctxAfter: 300 * time.Millisecond,
			inLog:    "killing process group",
		},
		{
			name:   "forks a grandchild",
			params: map[string]string{"start": cmdParam("sh", "-c", "sleep 1000 & sleep 1000")},
			grace:  time.Minute,
			procs:  4,
		},
		{
			name: "a child leaves the group",
			// setsid: out of the group and the session; the shim, its
			// subreaper, kills it when the stop is forced.
			params: map[string]string{"start": cmdParam("sh", "-c", "setsid sleep 1000 & sleep 1000")},
			grace:  300 * time.Millisecond,
			procs:  4,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(stopFile)
			cfg := testConfig(t)
			name := uniqueName("stop")
			i := startExec(t, cfg, execResource(name, c.params))
			want := max(c.procs, 3)
			eventually(t, "the resource's processes run", func() bool { return len(resourceProcs(t, name)) >= want })
			ctx := context.Background()
			if c.ctxAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.ctxAfter)
				defer cancel()
			}
			if err := i.Stop(ctx, c.grace); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if ps := resourceProcs(t, name); len(ps) > 0 {
				t.Errorf("processes left after Stop: %v", ps)
			}
			if groupAlive(i.pgid) {
				t.Errorf("process group %d still has processes", i.pgid)
			}
			log := readLog(t, cfg, name)
			if !strings.Contains(log, c.inLog) {
				t.Errorf("log lacks %q:\n%s", c.inLog, log)
			}
			if c.notInLog != "" && strings.Contains(log, c.notInLog) {
				t.Errorf("log says %q:\n%s", c.notInLog, log)
			}
		})
	}
}

// TestAgentKilled is the exec runner's guarantee: a resource does not
// outlive its agent, even one killed with SIGKILL, even when the resource
// forked children.
func TestAgentKilled(t *testing.T) {
	cases := []struct{ name, script string }{
		{"children in the group", "sleep 1000 & sleep 1000 & wait"},
		{"a child left the group", "setsid sleep 1000 & sleep 1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			name := uniqueName("orphan")
			spec, err := jsonString(testAgentSpec{Config: cfg, Resource: execResource(name, map[string]string{"start": cmdParam("sh", "-c", c.script)})})
			if err != nil {
				t.Fatal(err)
			}
			agent, pgid := startTestAgent(t, spec)
			eventually(t, "the resource's processes run", func() bool { return len(resourceProcs(t, name)) >= 4 })

			if err := agent.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			agent.Wait()
			eventually(t, "no process of the resource is left", func() bool { return len(resourceProcs(t, name)) == 0 })
			// The group's last process (the shim) may still be exiting
			// when the resource's are gone (CI saw it once).
			eventually(t, fmt.Sprintf("process group %d has no process left", pgid), func() bool { return !groupAlive(pgid) })
		})
	}
}

func TestExecStartFails(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(*ExecConfig)
		r    roles.Resource
		want string
	}{
		{"missing program", nil, execResource("nope", map[string]string{"start": cmdParam("/nonexistent/prog")}), "start nope: program /nonexistent/prog: "},
		{"program not on PATH", nil, execResource("nope", map[string]string{"start": "no-such-program-here"}), "not found on PATH"},
		{"no start command", nil, execResource("nope", map[string]string{"check": "true"}), `the "start" parameter`},
		{"a name that is not one", nil, execResource("../up", map[string]string{"start": "true"}), `resource name "../up"`},
		{"no state directory", func(c *ExecConfig) { c.StateDir = "" }, execResource("nope", map[string]string{"start": "true"}), "no state directory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig(t)
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			_, err := NewExec(cfg).Start(context.Background(), c.r, nil)
			wantErr(t, err, c.want)
		})
	}
}

// TestShimByHand: the shim refuses to run without the agent's lifeline.
func TestShimByHand(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(exe, ShimArg, "--", "true").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitShimFailed {
		t.Fatalf("shim by hand: %v, want exit status %d", err, exitShimFailed)
	}
	if !strings.Contains(string(out), "not the agent's lifeline") {
		t.Errorf("shim by hand said %q", out)
	}
}

// A resource ends by itself at the lease deadline its agent set, unless
// the agent extends it: it cannot outlive the node's lease even when its
// agent is frozen and cannot stop it.
func TestExecEndsAtItsLeaseDeadline(t *testing.T) {
	cfg := testConfig(t)
	x := NewExec(cfg).(*execRunner)
	x.Fence(time.Now().Add(time.Hour))
	name := uniqueName("fenced")
	inst, err := x.Start(context.Background(), execResource(name, map[string]string{
		"start": cmdParam("sh", "-c", "sleep 1000 & sleep 1000"),
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	i := inst.(*execInstance)
	// Extended again and again, it runs on.
	for range 5 {
		x.Fence(time.Now().Add(300 * time.Millisecond))
		time.Sleep(100 * time.Millisecond)
	}
	if !groupAlive(i.pgid) {
		t.Fatal("a resource whose deadline kept being extended ended")
	}
	// Not extended: every process of it ends soon after the deadline.
	deadline := time.Now().Add(300 * time.Millisecond)
	x.Fence(deadline)
	eventually(t, "the resource's processes are gone after its deadline", func() bool {
		return len(resourceProcs(t, name)) == 0
	})
	if time.Now().Before(deadline) {
		t.Fatal("ended before its deadline")
	}
	waitClosed(t, "Exited", inst.Exited())
	if err := inst.Monitor(context.Background()); !errors.Is(err, ErrExited) {
		t.Fatalf("monitor after the deadline: %v", err)
	}
}
