package resources

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// proc is what /proc/<pid>/stat says of a process.
type proc struct {
	pid, ppid, pgrp int
	state           byte
	// start is when it started, in clock ticks after boot: with the
	// boot's id, it tells a process from a later one given the same pid.
	start uint64
}

// live: not a zombie. Zombies are left out wherever processes are counted:
// on a node whose init does not reap orphans they stay for good, and they
// run nothing.
func (p proc) live() bool { return p.state != 'Z' && p.state != 'X' }

// readProc reads /proc/<pid>/stat.
func readProc(pid int) (proc, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, err
	}
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return proc{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state) of proc(5): field n is f[n-3].
	if len(f) < 20 {
		return proc{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	p := proc{pid: pid, state: f[0][0]}
	var errs [3]error
	p.ppid, errs[0] = strconv.Atoi(f[1])
	p.pgrp, errs[1] = strconv.Atoi(f[2])
	p.start, errs[2] = strconv.ParseUint(f[19], 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return proc{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return p, nil
}

// procs lists the processes of this node that match keep; those that end
// while they are read are left out.
func procs(keep func(proc) bool) ([]proc, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list /proc: %w", err)
	}
	var out []proc
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		if p, err := readProc(pid); err == nil && keep(p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// groupMembers lists the live processes of process group pgid.
func groupMembers(pgid int) ([]proc, error) {
	return procs(func(p proc) bool { return p.pgrp == pgid && p.live() })
}

// groupAlive reports whether a live process of group pgid remains.
func groupAlive(pgid int) bool {
	if err := unix.Kill(-pgid, 0); errors.Is(err, unix.ESRCH) {
		return false
	}
	m, err := groupMembers(pgid)
	return err != nil || len(m) > 0
}

// waitGroupGone polls until group pgid has no live process; false if it
// still has one when timeout has passed (0: no limit).
func waitGroupGone(pgid int, timeout time.Duration) bool {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	wait := 5 * time.Millisecond
	for groupAlive(pgid) {
		if !deadline.IsZero() && time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
		wait = min(2*wait, 200*time.Millisecond)
	}
	return true
}

// bootID names this boot of the node: processes recorded under another
// boot all ended with it.
func bootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", fmt.Errorf("read the boot id: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// hasEnv reports whether process pid's initial environment holds kv.
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range bytes.Split(b, []byte{0}) {
		if string(e) == kv {
			return true
		}
	}
	return false
}

// waitExit blocks until process pid (a child) has exited, without reaping
// it: while it is a zombie its pid, and so its process group's id, cannot
// be given to another process, so the group may still be signalled.
func waitExit(pid int) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
