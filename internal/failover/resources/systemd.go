package resources

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	sd "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

const (
	// DefaultSystemdRoot is the directory whose presence says systemd runs
	// the node, as sd_booted(3) checks.
	DefaultSystemdRoot = "/run/systemd/system"
	// DefaultSystemBus is the system bus's address unless
	// $DBUS_SYSTEM_BUS_ADDRESS says otherwise.
	DefaultSystemBus = "unix:path=/run/dbus/system_bus_socket"
)

// Systemd runs systemd units: Start starts the unit (param "unit") and
// waits for its job; Monitor checks that it is active; Stop stops it and
// kills what is left when the grace period is over.
type Systemd struct {
	// Root: see DefaultSystemdRoot (the default).
	Root string
	// BusAddress is the bus systemd answers on (default: the system bus).
	BusAddress string
	// Poll is how often a started unit is looked at for Exited (default
	// one second).
	Poll time.Duration
	// KillWait bounds the wait for a unit to be gone after SIGKILL
	// (default DefaultKillWait).
	KillWait time.Duration
	// StateDir, when set, is where the units started and not yet stopped
	// are recorded (StateDir/units/UNIT), for Reap after a crash.
	StateDir string
	// Guard is the argv prefix that runs GuardMain (default: this
	// executable and GuardArg); NoGuard starts units without a guard.
	Guard   []string
	NoGuard bool

	// fence tells every unit's guard the lease deadline: past it, the
	// guard stops its unit unless told a later one.
	fence
}

// busTimeout bounds a call to the bus that has no context of its own.
const busTimeout = 5 * time.Second

func (s *Systemd) Type() string { return "systemd" }

func (s *Systemd) root() string {
	if s.Root != "" {
		return s.Root
	}
	return DefaultSystemdRoot
}

func (s *Systemd) address() string {
	if s.BusAddress != "" {
		return s.BusAddress
	}
	if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
		return a
	}
	return DefaultSystemBus
}

func (s *Systemd) poll() time.Duration {
	if s.Poll > 0 {
		return s.Poll
	}
	return time.Second
}

func (s *Systemd) killWait() time.Duration {
	if s.KillWait > 0 {
		return s.KillWait
	}
	return DefaultKillWait
}

// Available: systemd runs this node and answers on the bus.
func (s *Systemd) Available() error {
	host, _ := os.Hostname()
	if fi, err := os.Stat(s.root()); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: systemd does not run %s (no directory %s)", roles.ErrUnavailable, host, s.root())
	}
	ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
	defer cancel()
	c, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("%w: systemd runs %s, but its system bus does not answer: %v", roles.ErrUnavailable, host, err)
	}
	defer c.Close()
	if _, err := c.SystemStateContext(ctx); err != nil {
		return fmt.Errorf("%w: systemd does not answer on the system bus of %s (%s): %v", roles.ErrUnavailable, host, s.address(), err)
	}
	return nil
}

// connect opens a connection to systemd on the bus, bounded by ctx.
func (s *Systemd) connect(ctx context.Context) (*sd.Conn, error) {
	addr := s.address()
	type result struct {
		c   *sd.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// Not dbus.WithContext(ctx): that ctx would bound the
		// connection's whole life, not only its opening.
		c, err := sd.NewConnection(func() (*dbus.Conn, error) { return dialBus(addr) })
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("connect to %s: %w", addr, r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, fmt.Errorf("connect to %s: %w", addr, ctx.Err())
	}
}

// dialBus opens one authenticated connection to the bus at addr, as
// go-systemd does for the system bus.
func dialBus(addr string) (*dbus.Conn, error) {
	c, err := dbus.Dial(addr)
	if err != nil {
		return nil, err
	}
	if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		c.Close()
		return nil, err
	}
	if err := c.Hello(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Start starts the unit and waits for its start job; env is not used
// (a unit's environment is the unit file's).
func (s *Systemd) Start(ctx context.Context, r roles.Resource, env []string) (Instance, error) {
	if err := (roles.Systemd{}).Validate(r.Params); err != nil {
		return nil, fmt.Errorf("start %s: %w", r.Name, err)
	}
	i := &unitInstance{s: s, name: r.Name, unit: r.Params["unit"], own: make(chan struct{}), quit: make(chan struct{})}
	c, err := i.bus(ctx)
	if err == nil {
		err = runJob(ctx, "start", i.unit, func(ch chan<- string) (int, error) {
			return c.StartUnitContext(ctx, i.unit, "replace", ch)
		})
	}
	if err != nil {
		i.closeBus()
		return nil, fmt.Errorf("start %s: %w", r.Name, err)
	}
	if err := s.record(i.unit, r.Name); err != nil {
		i.Stop(context.Background(), time.Duration(r.StopTimeout))
		return nil, fmt.Errorf("start %s: record unit %s: %w", r.Name, i.unit, err)
	}
	if !s.NoGuard {
		g, err := s.startGuard(i.unit)
		i.mu.Lock()
		i.guard = g
		i.mu.Unlock()
		if err != nil {
			i.Stop(context.Background(), time.Duration(r.StopTimeout))
			return nil, fmt.Errorf("start %s: %w", r.Name, err)
		}
	}
	go i.watch()
	return i, nil
}

func (s *Systemd) unitsDir() string { return filepath.Join(s.StateDir, "units") }

// record notes that unit runs for resource name (nothing without a
// StateDir).
func (s *Systemd) record(unit, name string) error {
	if s.StateDir == "" {
		return nil
	}
	if err := os.MkdirAll(s.unitsDir(), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(s.unitsDir(), unit), []byte(name+"\n"), 0o600)
}

func (s *Systemd) forget(unit string) {
	if s.StateDir != "" {
		os.Remove(filepath.Join(s.unitsDir(), unit))
	}
}

// Reap stops every unit an earlier run of the agent started and did not
// stop (it was killed): a unit is no child of the agent and does not end
// with it. Called at the agent's start, before anything is started; it
// returns the units it stopped.
func (s *Systemd) Reap(ctx context.Context) ([]string, error) {
	if s.StateDir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(s.unitsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reap units: %w", err)
	}
	var stopped []string
	var errs []error
	for _, e := range entries {
		unit := e.Name()
		if (roles.Systemd{}).Validate(map[string]string{"unit": unit}) != nil {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(s.unitsDir(), unit))
		i := &unitInstance{s: s, name: strings.TrimSpace(string(b)), unit: unit, own: make(chan struct{}), quit: make(chan struct{})}
		if err := i.Stop(ctx, DefaultKillWait); err != nil {
			errs = append(errs, err)
			continue
		}
		stopped = append(stopped, unit)
	}
	return stopped, errors.Join(errs...)
}

// runJob enqueues a job and waits for its result: "done", or an error
// naming the result.
func runJob(ctx context.Context, verb, unit string, enqueue func(chan<- string) (int, error)) error {
	// Buffered: go-systemd delivers the result holding a lock of its own.
	ch := make(chan string, 1)
	if _, err := enqueue(ch); err != nil {
		return fmt.Errorf("%s unit %s: %w", verb, unit, err)
	}
	select {
	case res := <-ch:
		if res != "done" {
			return fmt.Errorf("%s unit %s: the job ended %q", verb, unit, res)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s unit %s: no job result: %w", verb, unit, ctx.Err())
	}
}

type unitInstance struct {
	s          *Systemd
	name, unit string
	// guard stops the unit should the agent die or freeze (under mu).
	guard *guard

	mu       sync.Mutex
	conn     *sd.Conn
	stopping bool

	own      chan struct{}
	quit     chan struct{}
	quitOnce sync.Once
	stopMu   sync.Mutex
}

// bus returns the instance's connection, opening it again when it broke
// (the bus restarted).
func (i *unitInstance) bus(ctx context.Context) (*sd.Conn, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.conn != nil && i.conn.Connected() {
		return i.conn, nil
	}
	if i.conn != nil {
		i.conn.Close()
		i.conn = nil
	}
	c, err := i.s.connect(ctx)
	if err != nil {
		return nil, err
	}
	i.conn = c
	return c, nil
}

func (i *unitInstance) closeBus() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.conn != nil {
		i.conn.Close()
		i.conn = nil
	}
}

func (i *unitInstance) property(ctx context.Context, c *sd.Conn, name string) (string, error) {
	p, err := c.GetUnitPropertyContext(ctx, i.unit, name)
	if err != nil {
		return "", fmt.Errorf("unit %s: read %s: %w", i.unit, name, err)
	}
	v, _ := p.Value.Value().(string)
	return v, nil
}

func (i *unitInstance) activeState(ctx context.Context) (string, error) {
	c, err := i.bus(ctx)
	if err != nil {
		return "", fmt.Errorf("unit %s: %w", i.unit, err)
	}
	return i.property(ctx, c, "ActiveState")
}

// running: the unit's processes run (reloading ones too).
func running(state string) bool { return state == "active" || state == "reloading" }

// gone: nothing of the unit runs.
func gone(state string) bool { return state == "inactive" || state == "failed" }

// Monitor: healthy while the unit is active.
func (i *unitInstance) Monitor(ctx context.Context) error {
	state, err := i.activeState(ctx)
	if err != nil {
		return err
	}
	if running(state) {
		return nil
	}
	c, err := i.bus(ctx)
	if err != nil {
		return fmt.Errorf("unit %s is %s", i.unit, state)
	}
	sub, _ := i.property(ctx, c, "SubState")
	msg := fmt.Sprintf("unit %s is %s (%s)", i.unit, state, sub)
	if strings.HasSuffix(i.unit, ".service") {
		if p, err := c.GetServicePropertyContext(ctx, i.unit, "Result"); err == nil {
			if res, _ := p.Value.Value().(string); res != "" {
				msg += ", result " + res
			}
		}
	}
	if gone(state) {
		return exitError{msg}
	}
	return errors.New(msg)
}

// Exited closes once the unit is inactive or failed on its own, as seen
// every Poll.
func (i *unitInstance) Exited() <-chan struct{} { return i.own }

func (i *unitInstance) watch() {
	t := time.NewTicker(i.s.poll())
	defer t.Stop()
	for {
		select {
		case <-i.quit:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), busTimeout)
		state, err := i.activeState(ctx)
		cancel()
		// A bus that does not answer says nothing of the unit: Monitor
		// reports it.
		if err != nil || !gone(state) {
			continue
		}
		i.mu.Lock()
		stopping := i.stopping
		i.mu.Unlock()
		if !stopping {
			close(i.own)
		}
		return
	}
}

// Stop stops the unit and waits for the job, for grace at most; then, if
// the unit still runs, kills all of its processes with SIGKILL.
func (i *unitInstance) Stop(ctx context.Context, grace time.Duration) error {
	err := i.stop(ctx, grace)
	if err == nil {
		i.s.forget(i.unit)
		i.mu.Lock()
		g := i.guard
		i.guard = nil
		i.mu.Unlock()
		g.release()
	}
	return err
}

func (i *unitInstance) stop(ctx context.Context, grace time.Duration) error {
	i.stopMu.Lock()
	defer i.stopMu.Unlock()
	i.mu.Lock()
	i.stopping = true
	i.mu.Unlock()
	i.quitOnce.Do(func() { close(i.quit) })
	defer i.closeBus()

	graceCtx, cancel := context.WithTimeout(ctx, grace)
	defer cancel()
	c, err := i.bus(graceCtx)
	if err == nil {
		err = runJob(graceCtx, "stop", i.unit, func(ch chan<- string) (int, error) {
			return c.StopUnitContext(graceCtx, i.unit, "replace", ch)
		})
	}
	stopped := ""
	if err != nil {
		stopped = fmt.Sprintf(" (the stop: %v)", err)
	}

	// ctx may have ended: the forced part has its own bound.
	fctx, fcancel := context.WithTimeout(context.Background(), i.s.killWait())
	defer fcancel()
	if state, err := i.activeState(fctx); err == nil && gone(state) {
		return nil
	}
	if c, err = i.bus(fctx); err == nil {
		err = c.KillUnitWithTarget(fctx, i.unit, sd.All, int32(unix.SIGKILL))
	}
	if err != nil {
		return fmt.Errorf("stop %s: kill unit %s: %w%s", i.name, i.unit, err, stopped)
	}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	state := "unknown"
	for {
		if s, err := i.activeState(fctx); err == nil {
			state = s
			if gone(s) {
				return nil
			}
		}
		select {
		case <-fctx.Done():
			return fmt.Errorf("stop %s: unit %s still %s %v after SIGKILL%s", i.name, i.unit, state, i.s.killWait(), stopped)
		case <-t.C:
		}
	}
}
