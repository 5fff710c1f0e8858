package resources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"golang.org/x/sys/unix"
)

// DefaultKillWait is how long Stop and Reap wait for a process group to be
// gone after SIGKILL before they give up and say it still runs.
const DefaultKillWait = 10 * time.Second

// ExecConfig configures the exec runner.
type ExecConfig struct {
	// LogDir receives each resource's stdout and stderr, appended to
	// LogDir/<name>.log (0600; the directory 0700). Empty: discarded.
	LogDir string
	// StateDir is where the runner records the process groups it started,
	// for Reap (required).
	StateDir string
	// Shim is the argv prefix that runs ShimMain (default: this
	// executable and ShimArg).
	Shim []string
	// KillWait bounds the wait for a group to be gone after SIGKILL
	// (default DefaultKillWait).
	KillWait time.Duration
}

func (c ExecConfig) killWait() time.Duration {
	if c.KillWait > 0 {
		return c.KillWait
	}
	return DefaultKillWait
}

func (c ExecConfig) shim() ([]string, error) {
	if len(c.Shim) > 0 {
		return c.Shim, nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this executable, to run the shim: %w", err)
	}
	return []string{exe, ShimArg}, nil
}

// NewExec returns the exec runner: each resource a command run under a
// shim (see ShimMain), so that it ends with the agent.
func NewExec(cfg ExecConfig) Runner { return &execRunner{cfg: cfg} }

type execRunner struct {
	cfg ExecConfig
	// fence tells every shim the lease deadline: past it, a shim kills
	// its resource unless told a later one.
	fence
}

func (*execRunner) Type() string { return "exec" }

// Available: every node can run commands.
func (*execRunner) Available() error { return nil }

// EnvResource names the environment variable that holds, in a resource's
// processes, the resource's name.
const EnvResource = "CLUSTERKEEP_RESOURCE"

func (x *execRunner) Start(ctx context.Context, r roles.Resource, env []string) (Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.Name, err)
	}
	// The name names files: check it even if the caller did.
	if err := roles.ValidName("resource", r.Name); err != nil {
		return nil, fmt.Errorf("start: %w", err)
	}
	if err := (roles.Exec{}).Validate(r.Params); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.Name, err)
	}
	if x.cfg.StateDir == "" {
		return nil, fmt.Errorf("start %s: no state directory to record its processes in", r.Name)
	}
	argv, _ := roles.ParseCommand(r.Params["start"])
	env = environ(r.Name, env)
	// Found here, a missing program fails the start rather than its first
	// monitor.
	if _, err := lookPath(argv[0], env); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.Name, err)
	}
	i := &execInstance{
		name:     r.Name,
		env:      env,
		killWait: x.cfg.killWait(),
		exited:   make(chan struct{}),
		done:     make(chan struct{}),
		own:      make(chan struct{}),
	}
	if s, ok := r.Params["stop"]; ok {
		i.stopArgv, _ = roles.ParseCommand(s)
	}
	i.check = newCheck(r.Params, i)
	shim, err := x.cfg.shim()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", r.Name, err)
	}
	if err := os.MkdirAll(x.cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("start %s: state directory: %w", r.Name, err)
	}
	if i.log, err = openLog(x.cfg.LogDir, r.Name); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.Name, err)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		i.log.Close()
		return nil, fmt.Errorf("start %s: lifeline pipe: %w", r.Name, err)
	}
	i.lifeline = wr

	cmd := exec.Command(shim[0], append(append(append([]string{}, shim[1:]...), "--"), argv...)...)
	cmd.Env = i.env
	cmd.Stdout, cmd.Stderr = i.log, i.log
	cmd.ExtraFiles = []*os.File{rd} // descriptor 3: lifelineFD
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: shimDeathSignal}
	i.logf("start %s", strings.Join(argv, " "))
	err = spawn(cmd)
	rd.Close()
	if err != nil {
		wr.Close()
		i.log.Close()
		return nil, fmt.Errorf("start %s: run the shim %s: %w", r.Name, shim[0], err)
	}
	i.cmd, i.pgid, i.fence = cmd, cmd.Process.Pid, &x.fence
	x.fence.add(wr)
	// A process group this agent does not record must not run: a later
	// agent could not reap it. (The shim is not reaped before wait runs,
	// so the record is of this group however soon it ends.)
	rec, err := newRecord(r.Name, i.pgid)
	if err == nil {
		i.record, err = writeRecord(x.cfg.StateDir, rec)
	}
	go i.wait()
	if err != nil {
		i.forceStop()
		return nil, fmt.Errorf("start %s: record its process group: %w", r.Name, err)
	}
	return i, nil
}

// environ is the agent's environment, then env, then the resource's name;
// a later value of a name wins.
func environ(name string, env []string) []string {
	out := append(os.Environ(), env...)
	return append(out, EnvResource+"="+name)
}

// lookPath finds program file as the shim will, on the PATH of env.
func lookPath(file string, env []string) (string, error) {
	executable := func(p string) error {
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			return err
		case fi.IsDir() || fi.Mode()&0o111 == 0:
			return fmt.Errorf("%s is not an executable file", p)
		}
		return nil
	}
	if strings.Contains(file, "/") {
		if err := executable(file); err != nil {
			return "", fmt.Errorf("program %s: %w", file, err)
		}
		return file, nil
	}
	path := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		if p := filepath.Join(dir, file); executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("program %s: not found on PATH %s", file, path)
}

func openLog(dir, name string) (*os.File, error) {
	if dir == "" {
		return os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("log directory: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("log: %w", err)
	}
	return f, nil
}

type execInstance struct {
	name     string
	stopArgv []string
	env      []string
	check    func(context.Context) error
	killWait time.Duration
	record   string

	logMu sync.Mutex
	log   *os.File

	cmd      *exec.Cmd
	pgid     int
	lifeline *os.File
	cutOnce  sync.Once
	// fence tells the shim each new lease deadline.
	fence *fence

	// exited closes when the shim has exited (not yet reaped); done when
	// it is reaped and its group has no process left; own with done when
	// that end was not Stop's.
	exited, done, own chan struct{}

	mu       sync.Mutex
	reaped   bool
	stopping bool
	status   string

	stopMu  sync.Mutex
	stopRan bool
}

// logf writes a line of the agent's own to the resource's log.
func (i *execInstance) logf(format string, args ...any) {
	fmt.Fprintf(i.logw(), "%s clusterkeep: %s: %s\n", time.Now().Format(time.RFC3339), i.name, fmt.Sprintf(format, args...))
}

// logw writes to the resource's log until it is closed, then nowhere.
func (i *execInstance) logw() io.Writer { return logWriter{i} }

type logWriter struct{ i *execInstance }

func (w logWriter) Write(p []byte) (int, error) {
	w.i.logMu.Lock()
	defer w.i.logMu.Unlock()
	if w.i.log == nil {
		return len(p), nil
	}
	return w.i.log.Write(p)
}

func (i *execInstance) closeLog() {
	i.logMu.Lock()
	defer i.logMu.Unlock()
	if i.log != nil {
		i.log.Close()
		i.log = nil
	}
}

// wait follows the shim to its end and cleans up after it.
func (i *execInstance) wait() {
	waitExit(i.pgid)
	close(i.exited)
	// The shim leaves nothing behind unless it was killed; then what is
	// left of the group has lost its guard.
	i.signalGroup(unix.SIGKILL)
	waitGroupGone(i.pgid, 0)

	i.mu.Lock()
	err := i.cmd.Wait()
	i.reaped = true
	i.status = describeExit(i.cmd.ProcessState, err)
	stopping := i.stopping
	i.mu.Unlock()

	if i.record != "" {
		os.Remove(i.record)
	}
	i.cut()
	i.logf("%s", i.status)
	i.closeLog()
	close(i.done)
	if !stopping {
		close(i.own)
	}
}

// signalGroup signals the whole group, unless the shim has been reaped:
// from then on the group's id may name another group.
func (i *execInstance) signalGroup(sig unix.Signal) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if !i.reaped {
		unix.Kill(-i.pgid, sig)
	}
}

// cut closes the lifeline: the shim kills all of the resource.
func (i *execInstance) cut() {
	i.cutOnce.Do(func() {
		if i.fence != nil {
			i.fence.remove(i.lifeline)
		}
		i.lifeline.Close()
	})
}

func describeExit(ps *os.ProcessState, err error) string {
	if ps == nil {
		return fmt.Sprintf("exited: %v", err)
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %v", ws.Signal())
	case ws.ExitStatus() > 128 && ws.ExitStatus() <= 128+64:
		// The shim's report of the command's death by a signal.
		return fmt.Sprintf("exited with status %d (killed by signal %v)", ws.ExitStatus(), syscall.Signal(ws.ExitStatus()-128))
	}
	return fmt.Sprintf("exited with status %d", ws.ExitStatus())
}

func (i *execInstance) Exited() <-chan struct{} { return i.own }

func (i *execInstance) Monitor(ctx context.Context) error {
	select {
	case <-i.exited:
		select {
		case <-i.done:
			i.mu.Lock()
			defer i.mu.Unlock()
			return exitError{i.status}
		case <-ctx.Done():
			return exitError{fmt.Sprintf("exited, but its process group %d still has processes", i.pgid)}
		}
	default:
	}
	if i.check == nil {
		return nil
	}
	return i.check(ctx)
}

func (i *execInstance) Stop(ctx context.Context, grace time.Duration) error {
	i.stopMu.Lock()
	defer i.stopMu.Unlock()
	i.mu.Lock()
	i.stopping = true
	i.mu.Unlock()
	select {
	case <-i.done:
		return nil
	default:
	}

	graceCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	if len(i.stopArgv) > 0 && !i.stopRan {
		i.stopRan = true
		if err := i.runStop(graceCtx); err != nil {
			i.logf("%v", err)
		} else if dl, ok := graceCtx.Deadline(); ok {
			// A stop command often only asks ("nginx -s quit"): give the
			// resource half of the grace left to end before SIGTERM.
			t := time.NewTimer(time.Until(dl) / 2)
			select {
			case <-i.done:
				t.Stop()
				return nil
			case <-t.C:
			case <-graceCtx.Done():
				t.Stop()
			}
		}
	}
	if graceCtx.Err() == nil {
		// To the shim alone, which relays it to the group once: sent to
		// the group as well, each process would have it twice, and many
		// programs take a second SIGTERM as "stop now, not cleanly".
		if err := i.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			i.logf("stop: SIGTERM: %v", err)
		}
		select {
		case <-i.done:
			return nil
		case <-graceCtx.Done():
		}
	}
	return i.forceStop()
}

// forceStop kills the whole resource and waits until it is gone.
func (i *execInstance) forceStop() error {
	i.logf("stop: killing process group %d", i.pgid)
	// The shim kills every descendant, those that left the group too;
	// SIGKILL to the group, once the shim has had a moment for that,
	// reaches the rest whatever state the shim is in.
	i.cut()
	moment := time.NewTimer(time.Second)
	select {
	case <-i.exited:
	case <-moment.C:
	}
	moment.Stop()
	i.signalGroup(unix.SIGKILL)
	t := time.NewTimer(i.killWait)
	defer t.Stop()
	select {
	case <-i.done:
		return nil
	case <-t.C:
		return fmt.Errorf("stop %s: process group %d still has processes %v after SIGKILL", i.name, i.pgid, i.killWait)
	}
}

// runStop runs the stop command, bounded by ctx.
func (i *execInstance) runStop(ctx context.Context) error {
	cmd := exec.Command(i.stopArgv[0], i.stopArgv[1:]...)
	cmd.Env = i.env
	cmd.Stdout, cmd.Stderr = i.logw(), i.logw()
	timedOut, err := groupRun(ctx, cmd)
	switch {
	case timedOut:
		return fmt.Errorf("stop command %s: still running when the grace period ended (killed)", i.stopArgv[0])
	case err != nil:
		return fmt.Errorf("stop command %s: %w", i.stopArgv[0], err)
	}
	return nil
}

// tailWriter keeps the last bytes written to it.
type tailWriter struct {
	max int
	b   []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = w.b[len(w.b)-w.max:]
	}
	return len(p), nil
}

// lastLine is the last non-empty line written.
func (w *tailWriter) lastLine() string {
	lines := strings.Split(strings.TrimSpace(string(w.b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
