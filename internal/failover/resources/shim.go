package resources

import (
	"errors"
	"fmt"
	"github.com/clusterkeep/clusterkeep/internal/fsutil"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ShimArg is the hidden first argument that makes the clusterkeep binary
// the shim of one exec resource (see ShimMain).
const ShimArg = "__resource-shim"

// shimDeathSignal is the shim's parent-death signal, a second way to learn
// that the agent died should the lifeline fail (a copy of its write end
// leaked into another process). It is not SIGKILL: killed at once, the
// shim could not kill its process group, and the children the command
// forked (who have no parent-death signal: fork clears it) would run on
// with nothing to end them. Caught, it makes the shim kill the group.
const shimDeathSignal = unix.SIGUSR2

// Exit statuses of the shim itself, as env(1) has them.
const (
	exitShimFailed = 125
	exitCannotRun  = 126
	exitNotFound   = 127
)

// ShimMain is the shim: `clusterkeep __resource-shim -- COMMAND [ARG...]`,
// started by the exec runner as the leader of a new process group with the
// lifeline on descriptor 3. It runs the command in its own group and
// returns the command's exit status (128+N when signal N ended it).
//
// It is what makes a resource not outlive its agent. When the lifeline
// reaches end of file, it kills the command, every process the command
// forked (in its group or not: as a child subreaper, orphaned descendants
// become its children) and itself. SIGTERM, SIGINT, SIGHUP and SIGQUIT sent
// to it are relayed to the whole group. When the command exits on its own,
// what it left running is killed; when it exits after a relayed stop
// signal, the shim waits for the rest of the group to end (the agent
// forces it when its grace has passed).
func ShimMain(args []string) int {
	// The command's parent-death signal is tied to this thread.
	runtime.LockOSThread()
	// The agent creates its files private; the command, the operator's,
	// creates its own with the umask the agent was started with.
	fsutil.RestoreOperatorUmask()
	s, err := newShim(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clusterkeep shim: %v\n", err)
		return exitShimFailed
	}
	return s.run()
}

type shim struct {
	argv     []string
	pgid     int
	ppid     int
	lifeline *os.File

	// mu is held while children are signalled by pid and while they are
	// reaped, so that none is reaped (and its pid reused) in between.
	mu     sync.Mutex
	cmdPid int
	// status is the command's, set before cmdExited closes.
	status     unix.WaitStatus
	cmdExited  chan struct{}
	noChildren chan struct{}
}

func newShim(args []string) (*shim, error) {
	if len(args) < 2 || args[0] != "--" {
		return nil, fmt.Errorf("usage: clusterkeep %s -- COMMAND [ARG...] (the agent starts the shim; it is not for use by hand)", ShimArg)
	}
	var st unix.Stat_t
	if err := unix.Fstat(lifelineFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return nil, errors.New("descriptor 3 is not the agent's lifeline pipe (the agent starts the shim; it is not for use by hand)")
	}
	// The command must not hold the lifeline.
	unix.CloseOnExec(lifelineFD)
	if unix.Getpgrp() != os.Getpid() {
		return nil, errors.New("not the leader of its process group (the agent starts the shim in a group of its own)")
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("become a child subreaper: %w", err)
	}
	return &shim{
		argv:       args[1:],
		pgid:       os.Getpid(),
		ppid:       os.Getppid(),
		lifeline:   os.NewFile(lifelineFD, "lifeline"),
		cmdExited:  make(chan struct{}),
		noChildren: make(chan struct{}),
	}, nil
}

func (s *shim) run() int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, shimDeathSignal)
	// The agent writes its lease deadlines down the lifeline (see Fence);
	// end of file is its death.
	lifeline := watchLifeline(s.lifeline)

	path, err := exec.LookPath(s.argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "clusterkeep shim: %v\n", err)
		return exitNotFound
	}
	pid, err := syscall.ForkExec(path, s.argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "clusterkeep shim: start %s: %v\n", path, err)
		return exitCannotRun
	}
	s.cmdPid = pid
	go s.reap()

	// echoes counts, per signal, the copies of a relayed signal still to
	// come back to the shim, a member of the group it relays to.
	echoes := map[os.Signal]int{}
	stopping := false
	cmdExited := s.cmdExited
	for {
		select {
		case ev := <-lifeline:
			if ev == leaseEnded {
				// The agent did not extend its lease in time (it is
				// frozen, or cannot reach the cluster and did not stop
				// this in time): the resource must not outlive the lease.
				fmt.Fprintln(os.Stderr, "clusterkeep shim: the node's lease ended without the agent stopping the resource: killing it")
			}
			s.killAll()
		case sig := <-sigs:
			switch {
			case sig == shimDeathSignal:
				// Anyone may send it; only a changed parent means the
				// agent died.
				if os.Getppid() != s.ppid {
					s.killAll()
				}
			case echoes[sig] > 0:
				echoes[sig]--
			default:
				echoes[sig]++
				if sig != unix.SIGHUP {
					stopping = true
				}
				unix.Kill(-s.pgid, sig.(syscall.Signal))
			}
		case <-cmdExited:
			cmdExited = nil
			if !stopping {
				// The resource has ended: what it left behind must not
				// run beside the resource started again.
				s.killChildren()
			}
		case <-s.noChildren:
			return exitCode(s.status)
		}
	}
}

// reap reaps every child, the command and the orphans that came to the
// shim, until none is left.
func (s *shim) reap() {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			close(s.noChildren)
			return
		}
		s.mu.Lock()
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err != nil || pid <= 0 {
				break
			}
			if pid == s.cmdPid {
				s.status = ws
				close(s.cmdExited)
			}
		}
		s.mu.Unlock()
	}
}

// killChildren kills every child of the shim until none is left alive: as
// a child subreaper, the shim inherits the children of each one killed, so
// this reaches every descendant, in the group or not.
func (s *shim) killChildren() {
	self := os.Getpid()
	for {
		s.mu.Lock()
		kids, err := procs(func(p proc) bool { return p.ppid == self && p.live() })
		for _, k := range kids {
			unix.Kill(k.pid, unix.SIGKILL)
		}
		s.mu.Unlock()
		if err != nil || len(kids) == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// killAll kills every descendant, then the whole group, the shim with it.
func (s *shim) killAll() {
	s.killChildren()
	unix.Kill(-s.pgid, unix.SIGKILL)
	os.Exit(128 + int(unix.SIGKILL))
}

func exitCode(ws unix.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return exitShimFailed
}
