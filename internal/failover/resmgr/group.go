package resmgr

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/resources"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// groupRun runs one group on this node: one goroutine that starts,
// monitors, restarts and stops its resources as it is told.
type groupRun struct {
	m    *Manager
	name string

	mu sync.Mutex
	// What it is told: the placement's epoch, whether to run, what, and
	// how long a stop may take (0: each resource's stop timeout).
	epoch uint64
	want  bool
	spec  *spec
	grace time.Duration
	note  string
	// What it does.
	runKey   string // the spec its resources run
	res      []*resRun
	starting bool // a Start call is in flight
	failed   bool // failed beyond its restart limit at failedAt
	failedAt uint64
	failure  string
	stopErr  string

	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

// resRun is one resource of a running group.
type resRun struct {
	cfg           roles.Resource
	inst          resources.Instance
	state         string // Starting, Online, Failed, Stopped
	since         time.Time
	restarts      int
	lastFailure   string
	lastFailureAt time.Time
	nextCheck     time.Time
	gone          chan struct{} // closed when the instance is stopped
}

func newGroupRun(name string, m *Manager) *groupRun {
	gr := &groupRun{m: m, name: name, wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	go gr.loop()
	return gr
}

func (gr *groupRun) poke() {
	select {
	case gr.wake <- struct{}{}:
	default:
	}
}

// set tells the group what to do. A group that failed at an epoch is not
// started again at that epoch.
func (gr *groupRun) set(epoch uint64, want bool, sp *spec, grace time.Duration, note string) {
	gr.mu.Lock()
	changed := epoch != gr.epoch || want != gr.want || grace != gr.grace || (sp != nil && (gr.spec == nil || gr.spec.key != sp.key))
	if epoch != gr.epoch {
		for _, r := range gr.res {
			r.restarts = 0
		}
	}
	gr.epoch, gr.want, gr.grace, gr.note = epoch, want && !(gr.failed && gr.failedAt == epoch), grace, note
	if sp != nil {
		gr.spec = sp
	}
	gr.mu.Unlock()
	if changed {
		gr.poke()
	}
}

func (gr *groupRun) epochSeen() uint64 {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	return gr.epoch
}

// running: something of the group may run here. gr.mu is held.
func (gr *groupRun) running() bool {
	if gr.starting {
		return true
	}
	for _, r := range gr.res {
		if r.inst != nil {
			return true
		}
	}
	return false
}

func (gr *groupRun) idle() bool {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	return !gr.want && !gr.running()
}

// waitIdle waits until the group runs nothing here, or until d passed
// (a stop that keeps failing); it reports whether it is idle.
func (gr *groupRun) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !gr.idle() {
		if time.Now().After(deadline) {
			return false
		}
		gr.poke()
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func (gr *groupRun) close() {
	select {
	case <-gr.quit:
	default:
		close(gr.quit)
	}
	<-gr.done
}

// report says what the group does here, at the epoch it was last told.
func (gr *groupRun) report() placement.GroupReport {
	gr.mu.Lock()
	defer gr.mu.Unlock()
	rep := placement.GroupReport{Group: gr.name, Epoch: gr.epoch}
	if gr.spec != nil {
		rep.Group = gr.spec.group
	}
	online := len(gr.res) > 0
	for _, r := range gr.res {
		rep.Resources = append(rep.Resources, placement.ResourceReport{Name: r.cfg.Name, State: r.state, Restarts: r.restarts,
			Since: r.since, LastFailure: r.lastFailure, LastFailureAt: r.lastFailureAt})
		if r.state != placement.RunOnline {
			online = false
		}
	}
	switch {
	case gr.stopErr != "":
		rep.State, rep.Error = placement.RunStopFailed, gr.stopErr
	case gr.failed && gr.failedAt == gr.epoch:
		rep.State, rep.Error = placement.RunFailed, gr.failure
	case !gr.want && gr.running():
		rep.State = placement.RunStopping
	case !gr.want:
		rep.State, rep.Error = placement.RunStopped, gr.note
	case online && gr.spec != nil && gr.runKey == gr.spec.key:
		rep.State = placement.RunOnline
	default:
		rep.State = placement.RunStarting
		for _, r := range gr.res {
			if r.lastFailure != "" && r.state != placement.RunOnline {
				rep.Error = r.cfg.Name + ": " + r.lastFailure
			}
		}
	}
	return rep
}

// loop is the group's goroutine.
func (gr *groupRun) loop() {
	defer close(gr.done)
	for {
		wait := gr.step()
		timer := time.NewTimer(wait)
		select {
		case <-gr.quit:
			timer.Stop()
			gr.mu.Lock()
			gr.want = false
			gr.mu.Unlock()
			gr.stopFrom(0, 0)
			return
		case <-gr.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// step does the next thing the group needs and says how long to wait
// before the next step (unless woken).
func (gr *groupRun) step() time.Duration {
	gr.mu.Lock()
	want, sp, grace, epoch := gr.want, gr.spec, gr.grace, gr.epoch
	running := gr.running()
	stale := running && sp != nil && gr.runKey != sp.key
	gr.mu.Unlock()

	switch {
	case !want || sp == nil:
		if running {
			if !gr.stopFrom(0, grace) {
				return time.Second // retry a stop that failed
			}
			gr.m.poke()
		}
		return time.Minute
	case stale:
		// The configuration changed: stop what runs, start it anew.
		gr.m.log.Info("group configuration changed: restarting it", "group", sp.group)
		if !gr.stopFrom(0, 0) {
			return time.Second // nothing still running is forgotten
		}
		gr.mu.Lock()
		gr.res = nil
		gr.mu.Unlock()
		return 0
	}

	gr.mu.Lock()
	if gr.res == nil || gr.runKey != sp.key {
		gr.res = make([]*resRun, len(sp.resources))
		for i, r := range sp.resources {
			gr.res[i] = &resRun{cfg: r, state: placement.RunStopped}
		}
		gr.runKey = sp.key
	}
	gr.mu.Unlock()

	// Start, in order, what is not running.
	for i := range gr.res {
		gr.mu.Lock()
		r := gr.res[i]
		started := r.inst != nil
		gr.mu.Unlock()
		if started {
			continue
		}
		if err := gr.start(i, sp, epoch); err != nil {
			gr.fail(i, err)
		}
		gr.m.poke()
		return 0
	}

	// Monitor what is due.
	now := time.Now()
	next := now.Add(time.Minute)
	for i := range gr.res {
		gr.mu.Lock()
		r := gr.res[i]
		inst, due := r.inst, r.nextCheck
		gr.mu.Unlock()
		if inst == nil {
			return 0
		}
		exited := false
		select {
		case <-inst.Exited():
			exited = true
		default:
		}
		if !exited && now.Before(due) {
			if due.Before(next) {
				next = due
			}
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.cfg.MonitorTimeout))
		err := inst.Monitor(ctx)
		cancel()
		if err == nil && exited {
			err = fmt.Errorf("it exited")
		}
		if err != nil {
			gr.fail(i, err)
			gr.m.poke()
			return 0
		}
		gr.mu.Lock()
		r.nextCheck = time.Now().Add(time.Duration(r.cfg.MonitorInterval))
		if r.nextCheck.Before(next) {
			next = r.nextCheck
		}
		gr.mu.Unlock()
	}
	return time.Until(next)
}

// start starts resource i and waits until its check passes (or its start
// timeout passes, or the group is told to stop).
func (gr *groupRun) start(i int, sp *spec, epoch uint64) error {
	gr.mu.Lock()
	if !gr.want || gr.epoch != epoch {
		// Told otherwise since the step began: a report may already
		// say the group is stopped at the new epoch.
		gr.mu.Unlock()
		return nil
	}
	r := gr.res[i]
	runner, ok := gr.m.cfg.Runners[r.cfg.Type]
	if !ok {
		gr.mu.Unlock()
		return fmt.Errorf("this node cannot run %s resources", r.cfg.Type)
	}
	gr.starting = true
	r.state = placement.RunStarting
	gr.mu.Unlock()
	env := []string{"CLUSTERKEEP_GROUP=" + sp.group, "CLUSTERKEEP_NODE=" + gr.m.cfg.NodeName}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.cfg.StartTimeout))
	defer cancel()
	inst, err := runner.Start(ctx, r.cfg, env)
	gr.mu.Lock()
	gr.starting = false
	if err != nil {
		gr.mu.Unlock()
		return fmt.Errorf("start: %w", err)
	}
	r.inst, r.gone = inst, make(chan struct{})
	gone := r.gone
	gr.mu.Unlock()
	go func() {
		select {
		case <-inst.Exited():
			gr.poke()
		case <-gone:
		}
	}()
	gr.m.log.Info("resource started", "group", sp.group, "resource", r.cfg.Name)
	var last error
	for {
		mctx, mcancel := context.WithTimeout(ctx, time.Duration(r.cfg.MonitorTimeout))
		last = inst.Monitor(mctx)
		mcancel()
		if last == nil {
			gr.mu.Lock()
			r.state, r.since = placement.RunOnline, time.Now()
			r.nextCheck = time.Now().Add(time.Duration(r.cfg.MonitorInterval))
			gr.mu.Unlock()
			gr.m.log.Info("resource online", "group", sp.group, "resource", r.cfg.Name)
			return nil
		}
		gr.mu.Lock()
		want := gr.want
		gr.mu.Unlock()
		if !want {
			return nil // the next step stops it
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not healthy within its start timeout %s: %w", time.Duration(r.cfg.StartTimeout), last)
		case <-inst.Exited():
			return fmt.Errorf("exited while starting: %w", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fail records resource i's failure: it and the resources started after
// it are stopped, to be started again; past its restart limit the whole
// group stops, failed, until the leader moves it.
func (gr *groupRun) fail(i int, err error) {
	gr.mu.Lock()
	epoch := gr.epoch // the epoch it failed at, whatever it is told meanwhile
	r := gr.res[i]
	r.restarts++
	r.lastFailure, r.lastFailureAt, r.state = err.Error(), time.Now(), "Failed"
	over := r.restarts > r.cfg.RestartLimit
	name, limit, restarts := r.cfg.Name, r.cfg.RestartLimit, r.restarts
	gr.mu.Unlock()
	gr.m.log.Warn("resource failed", "group", gr.name, "resource", name, "err", err, "failures", restarts, "restart_limit", limit)
	if !over {
		gr.stopFrom(i, 0)
		return
	}
	gr.stopFrom(0, 0)
	gr.mu.Lock()
	gr.failed, gr.failedAt = true, epoch
	if gr.epoch == epoch {
		gr.want = false
	}
	gr.failure = fmt.Sprintf("resource %s failed %d times (restart limit %d): %v", name, restarts, limit, err)
	gr.mu.Unlock()
}

// stopFrom stops resources i and after, in reverse order. With grace > 0
// the whole stop ends within grace (resources still running then are
// killed); otherwise each resource has its own stop timeout. It reports
// whether everything stopped.
func (gr *groupRun) stopFrom(i int, grace time.Duration) bool {
	ctx := context.Background()
	if grace > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, grace)
		defer cancel()
	}
	ok := true
	gr.mu.Lock()
	res := append([]*resRun(nil), gr.res...)
	gr.mu.Unlock()
	for j := len(res) - 1; j >= i; j-- {
		r := res[j]
		gr.mu.Lock()
		inst := r.inst
		gr.mu.Unlock()
		if inst == nil {
			continue
		}
		g := time.Duration(r.cfg.StopTimeout)
		if grace > 0 && grace < g {
			g = grace
		}
		err := inst.Stop(ctx, g)
		gr.mu.Lock()
		if err != nil {
			gr.stopErr = fmt.Sprintf("stop %s: %v", r.cfg.Name, err)
			ok = false
		} else {
			close(r.gone)
			r.inst, r.gone = nil, nil
			if r.state != "Failed" {
				r.state = placement.RunStopped
			}
		}
		gr.mu.Unlock()
		if err != nil {
			gr.m.log.Error("resource did not stop", "group", gr.name, "resource", r.cfg.Name, "err", err)
		} else {
			gr.m.log.Info("resource stopped", "group", gr.name, "resource", r.cfg.Name)
		}
	}
	if ok {
		gr.mu.Lock()
		gr.stopErr = ""
		gr.mu.Unlock()
	}
	return ok
}
