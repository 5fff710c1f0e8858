package resources

import (
	"context"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Every child of this package is started by one goroutine locked to its OS
// thread for the life of the process. Linux sends a child its parent-death
// signal when the thread that forked it exits, not the process
// (golang/go#27505): started from an ordinary goroutine, a child would be
// signalled whenever the Go runtime retired that thread.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd *exec.Cmd
	err chan<- error
}

// spawn starts cmd from the spawner's thread.
func spawn(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread()
			// Never unlocked, never returns: the thread lives as long as
			// the process.
			for r := range spawner.reqs {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, errc}
	return <-errc
}

// groupRun runs cmd (a check or stop command) in a process group of its
// own until it exits or ctx ends; then it kills what is left of the group,
// so a command that timed out or left children behind leaves nothing
// running. timedOut says ctx ended first.
func groupRun(ctx context.Context, cmd *exec.Cmd) (timedOut bool, err error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// Output held open by a killed command's stray children must not keep
	// Wait waiting.
	cmd.WaitDelay = time.Second
	if err := spawn(cmd); err != nil {
		return false, err
	}
	pgid := cmd.Process.Pid
	exited := make(chan struct{})
	go func() {
		waitExit(pgid)
		close(exited)
	}()
	select {
	case <-exited:
	case <-ctx.Done():
		timedOut = true
		unix.Kill(-pgid, unix.SIGKILL)
		<-exited
	}
	// Not reaped yet, so the group's id is still this command's.
	unix.Kill(-pgid, unix.SIGKILL)
	return timedOut, cmd.Wait()
}
