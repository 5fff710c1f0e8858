package resmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/resources"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// fakeRunner runs in-memory resources: each instance fails its monitor
// once failAfter starts of its resource have happened (0: never).
type fakeRunner struct {
	mu      sync.Mutex
	running map[string]int // resource -> live instances
	starts  map[string]int
	events  []string
	fail    map[string]bool // resources whose monitor fails
}

func newFakeRunner() *fakeRunner {
	return &fakeRunner{running: map[string]int{}, starts: map[string]int{}, fail: map[string]bool{}}
}

func (f *fakeRunner) Type() string     { return "exec" }
func (f *fakeRunner) Available() error { return nil }
func (f *fakeRunner) Start(_ context.Context, r roles.Resource, _ []string) (resources.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running[r.Name]++
	f.starts[r.Name]++
	f.events = append(f.events, "start "+r.Name)
	return &fakeInst{f: f, name: r.Name, exited: make(chan struct{})}, nil
}

func (f *fakeRunner) live(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running[name]
}

type fakeInst struct {
	f       *fakeRunner
	name    string
	stopped bool
	exited  chan struct{}
}

func (i *fakeInst) Monitor(context.Context) error {
	i.f.mu.Lock()
	defer i.f.mu.Unlock()
	if i.f.fail[i.name] {
		return errors.New("unhealthy")
	}
	return nil
}
func (i *fakeInst) Exited() <-chan struct{} { return i.exited }
func (i *fakeInst) Stop(context.Context, time.Duration) error {
	i.f.mu.Lock()
	defer i.f.mu.Unlock()
	if !i.stopped {
		i.stopped = true
		i.f.running[i.name]--
		i.f.events = append(i.f.events, "stop "+i.name)
	}
	return nil
}

// fakeCluster is the node's hive and the leader, in memory.
type fakeCluster struct {
	mu      sync.Mutex
	groups  []roles.Group
	res     map[string]roles.Resource
	recs    map[string]string
	applied uint64
	index   uint64 // what a grant asks the node to have applied
	refuse  bool   // renewals fail
	last    placement.NodeReport
}

func (c *fakeCluster) Groups() ([]roles.Group, map[string]roles.Resource, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.groups, c.res, nil
}
func (c *fakeCluster) Placements() (map[string]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]string{}
	for k, v := range c.recs {
		out[k] = v
	}
	return out, nil
}
func (c *fakeCluster) Applied() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.applied
}
func (c *fakeCluster) Renew(_ context.Context, rep placement.NodeReport) (placement.Grant, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.last = rep
	if c.refuse {
		return placement.Grant{}, errors.New("no leader")
	}
	return placement.Grant{Index: c.index, Lease: 600 * time.Millisecond, Margin: 200 * time.Millisecond, Renew: 50 * time.Millisecond}, nil
}
func (c *fakeCluster) set(f func(c *fakeCluster)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f(c)
}
func (c *fakeCluster) report(group string) (placement.GroupReport, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.last.Groups {
		if strings.EqualFold(g.Group, group) {
			return g, true
		}
	}
	return placement.GroupReport{}, false
}

func setup(t *testing.T) (*fakeCluster, *fakeRunner, func()) {
	res := map[string]roles.Resource{}
	for _, n := range []string{"a", "b"} {
		r := roles.Resource{Name: n, Type: "exec", RestartLimit: 1, MonitorInterval: roles.Duration(20 * time.Millisecond),
			MonitorTimeout: roles.Duration(10 * time.Millisecond), StartTimeout: roles.Duration(100 * time.Millisecond)}
		r.Normalize()
		res[n] = r
	}
	c := &fakeCluster{groups: []roles.Group{{Name: "g", Resources: []string{"a", "b"}}}, res: res,
		recs: map[string]string{"g": placement.Record{Epoch: 1, Owner: "me", Run: true}.Encode()}, applied: 10, index: 10}
	fr := newFakeRunner()
	m := New(Config{NodeID: "me", NodeName: "me", Runners: map[string]resources.Runner{"exec": fr},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, c, c)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	return c, fr, func() { cancel(); <-done }
}

func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func reported(c *fakeCluster, state string, epoch uint64) func() error {
	return func() error {
		r, ok := c.report("g")
		if !ok || r.State != state || r.Epoch != epoch {
			return fmt.Errorf("report %+v, want %s at epoch %d", r, state, epoch)
		}
		return nil
	}
}

func TestStartsInOrderStopsInReverseAndReportsStopped(t *testing.T) {
	c, fr, stop := setup(t)
	defer stop()
	eventually(t, "online", reported(c, placement.RunOnline, 1))
	c.set(func(c *fakeCluster) { c.recs["g"] = placement.Record{Epoch: 2, Owner: "me", Run: false}.Encode() })
	eventually(t, "stopped", reported(c, placement.RunStopped, 2))
	fr.mu.Lock()
	got := strings.Join(fr.events, ",")
	fr.mu.Unlock()
	if got != "start a,start b,stop b,stop a" {
		t.Fatalf("events %s", got)
	}
}

// Without renewals the node stops its groups by its fence, before its
// lease would expire at the leader, and does not start them again until
// it holds a lease again.
func TestFencesItselfWhenItCannotRenew(t *testing.T) {
	c, fr, stop := setup(t)
	defer stop()
	eventually(t, "online", reported(c, placement.RunOnline, 1))
	refused := time.Now()
	c.set(func(c *fakeCluster) { c.refuse = true })
	eventually(t, "fenced", func() error {
		if fr.live("a")+fr.live("b") != 0 {
			return errors.New("still running")
		}
		return nil
	})
	// Lease 600ms less margin 200ms: stopped no later than 600ms after the
	// last grant, which came before the refusals began.
	if d := time.Since(refused); d > 600*time.Millisecond {
		t.Logf("fenced %v after the renewals stopped (the lease allows 600ms; a loaded machine may be late)", d)
	}
	time.Sleep(100 * time.Millisecond)
	if fr.live("a") != 0 {
		t.Fatal("started again without a lease")
	}
	c.set(func(c *fakeCluster) { c.refuse = false })
	eventually(t, "online again", reported(c, placement.RunOnline, 1))
}

// A grant names an index the node's hive must have applied before it acts
// on the placements: a node whose hive is behind starts nothing.
func TestStaleHiveStartsNothing(t *testing.T) {
	c, fr, stop := setup(t)
	defer stop()
	eventually(t, "online", reported(c, placement.RunOnline, 1))
	c.set(func(c *fakeCluster) {
		c.recs["g"] = placement.Record{Epoch: 2, Owner: "me", Run: false}.Encode()
	})
	eventually(t, "stopped", reported(c, placement.RunStopped, 2))
	// The leader committed more (index 20) than the hive has (10): an old
	// placement telling this node to run the group is not acted on.
	c.set(func(c *fakeCluster) {
		c.index = 20
		c.recs["g"] = placement.Record{Epoch: 3, Owner: "me", Run: true}.Encode()
	})
	time.Sleep(300 * time.Millisecond)
	if fr.live("a") != 0 {
		t.Fatal("started on a hive older than the grant")
	}
	c.set(func(c *fakeCluster) { c.applied = 20 })
	eventually(t, "online", reported(c, placement.RunOnline, 3))
}

// A resource that keeps failing is restarted up to its limit, then the
// group stops and reports Failed, and is not started again at that epoch.
func TestRestartLimitThenFailed(t *testing.T) {
	c, fr, stop := setup(t)
	defer stop()
	eventually(t, "online", reported(c, placement.RunOnline, 1))
	fr.mu.Lock()
	fr.fail["b"] = true
	fr.mu.Unlock()
	eventually(t, "failed", reported(c, placement.RunFailed, 1))
	if n := fr.live("a") + fr.live("b"); n != 0 {
		t.Fatalf("%d instances run after the failure", n)
	}
	fr.mu.Lock()
	starts := fr.starts["b"]
	fr.mu.Unlock()
	if starts != 2 { // the first start and one restart (limit 1)
		t.Fatalf("b started %d times, want 2", starts)
	}
	r, _ := c.report("g")
	if !strings.Contains(r.Error, "restart limit 1") {
		t.Fatalf("report error %q", r.Error)
	}
	time.Sleep(200 * time.Millisecond)
	if fr.live("b") != 0 {
		t.Fatal("a failed group was started again at the same epoch")
	}
}

// The placement moving the group to another node stops it here.
func TestGroupGivenToAnotherNodeStops(t *testing.T) {
	c, fr, stop := setup(t)
	defer stop()
	eventually(t, "online", reported(c, placement.RunOnline, 1))
	c.set(func(c *fakeCluster) { c.recs["g"] = placement.Record{Epoch: 2, Owner: "other", Run: true}.Encode() })
	eventually(t, "stopped", func() error {
		if fr.live("a")+fr.live("b") != 0 {
			return errors.New("still running")
		}
		return nil
	})
}
