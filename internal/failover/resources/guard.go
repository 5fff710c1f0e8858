package resources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	sd "github.com/coreos/go-systemd/v22/dbus"
	"golang.org/x/sys/unix"
)

// GuardArg is the hidden first argument that makes the clusterkeep binary
// the guard of one systemd unit (see GuardMain).
const GuardArg = "__unit-guard"

// GuardMain is a systemd unit's guard: `clusterkeep __unit-guard BUS UNIT`,
// started by the systemd runner with a lifeline on descriptor 3, as the
// exec shim is. A unit is no child of the agent and would outlive it; its
// guard, a process of its own, stops it (SIGKILL to all its processes,
// then a stop job) when the lifeline reaches end of file (the agent died)
// or when the lease deadline the agent last wrote passes (the agent is
// frozen or stuck). Told "disarm", it leaves the unit alone.
func GuardMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: clusterkeep %s BUS UNIT (the agent starts the guard; it is not for use by hand)\n", GuardArg)
		return exitShimFailed
	}
	bus, unit := args[0], args[1]
	var st unix.Stat_t
	if err := unix.Fstat(lifelineFD, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		fmt.Fprintln(os.Stderr, "clusterkeep unit guard: descriptor 3 is not the agent's lifeline pipe")
		return exitShimFailed
	}
	switch <-watchLifeline(os.NewFile(lifelineFD, "lifeline")) {
	case disarmed:
		return 0
	case leaseEnded:
		fmt.Fprintf(os.Stderr, "clusterkeep unit guard: the node's lease ended without the agent stopping %s: stopping it\n", unit)
	case agentGone:
		fmt.Fprintf(os.Stderr, "clusterkeep unit guard: the agent is gone: stopping %s\n", unit)
	}
	if err := stopUnitNow(bus, unit); err != nil {
		fmt.Fprintf(os.Stderr, "clusterkeep unit guard: %v\n", err)
		return 1
	}
	return 0
}

// stopUnitNow kills every process of unit and has systemd stop it.
func stopUnitNow(bus, unit string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := (&Systemd{BusAddress: bus}).connect(ctx)
	if err != nil {
		return fmt.Errorf("stop unit %s: connect to systemd: %w", unit, err)
	}
	defer c.Close()
	kerr := c.KillUnitWithTarget(ctx, unit, sd.All, int32(unix.SIGKILL))
	serr := runJob(ctx, "stop", unit, func(ch chan<- string) (int, error) { return c.StopUnitContext(ctx, unit, "replace", ch) })
	if serr != nil {
		return errors.Join(kerr, serr)
	}
	return nil
}

// guard is the agent's end of a unit's guard.
type guard struct {
	cmd      *exec.Cmd
	lifeline *os.File
	fence    *fence
}

// startGuard starts the guard of unit; it is told every lease deadline.
func (s *Systemd) startGuard(unit string) (*guard, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{}, s.guardArgv(exe)...), s.address(), unit)
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.ExtraFiles = []*os.File{rd} // descriptor 3: lifelineFD
	// A session of its own: signals to the agent's group do not reach it,
	// and it outlives the agent (that is what it is for).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = spawn(cmd)
	rd.Close()
	if err != nil {
		wr.Close()
		return nil, fmt.Errorf("start the guard of unit %s: %w", unit, err)
	}
	go cmd.Wait()
	s.fence.add(wr)
	return &guard{cmd: cmd, lifeline: wr, fence: &s.fence}, nil
}

func (s *Systemd) guardArgv(exe string) []string {
	if len(s.Guard) > 0 {
		return s.Guard
	}
	return []string{exe, GuardArg}
}

// release tells the guard the unit was stopped, and lets it go.
func (g *guard) release() {
	if g == nil {
		return
	}
	g.fence.remove(g.lifeline)
	writeDeadline(g.lifeline, disarm)
	g.lifeline.Close()
}
