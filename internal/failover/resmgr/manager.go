// Package resmgr is the node's half of the resource manager: it holds the
// node's lease, runs the groups the placements give this node (starting
// their resources in order, monitoring them, restarting them up to their
// limit, stopping them in reverse), and reports what it runs to the leader
// with every renewal. It never decides placement (internal/placement does,
// on the leader), and it never runs a group without a valid lease: when it
// cannot renew its lease it stops everything before the lease expires, so
// the leader may start the groups elsewhere once it has.
package resmgr

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/resources"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
	"golang.org/x/sys/unix"
)

// Source is this node's own view of the cluster: its hive, read as is.
type Source interface {
	Groups() ([]roles.Group, map[string]roles.Resource, error)
	Placements() (map[string]string, error)
	// Applied is the index of the last entry this node's hive applied.
	Applied() uint64
}

// Leases renews this node's lease with the leader.
type Leases interface {
	Renew(ctx context.Context, rep placement.NodeReport) (placement.Grant, error)
}

// Config configures a Manager.
type Config struct {
	NodeID, NodeName string
	Runners          map[string]resources.Runner
	Log              *slog.Logger
	// Renew is how often the lease is renewed before the leader said
	// (its grant carries the interval).
	Renew time.Duration
}

// Manager runs this node's groups.
type Manager struct {
	cfg    Config
	src    Source
	leases Leases
	log    *slog.Logger

	mu sync.Mutex
	// The lease: valid until fence (the node's boot clock, which counts
	// a suspend, from when it asked), for placements at or after index.
	fence   time.Duration
	index   uint64
	grant   placement.Grant
	groups  map[string]*groupRun // by lower-case name
	unavail map[string]string
	typesAt time.Time
	// kickRenew and kickSync make the manager renew (and so report) and
	// reconcile at once.
	kickRenew, kickSync chan struct{}
	// lastRenewErr is logged once per change.
	lastRenewErr string
}

// New returns a manager; Run runs it.
func New(cfg Config, src Source, leases Leases) *Manager {
	if cfg.Renew <= 0 {
		cfg.Renew = placement.DefaultConfig.Renew
	}
	m := &Manager{cfg: cfg, src: src, leases: leases, log: cfg.Log, groups: map[string]*groupRun{},
		kickRenew: make(chan struct{}, 1), kickSync: make(chan struct{}, 1)}
	m.refreshTypes()
	return m
}

// typesEvery is how often the node checks again which types it can run
// (systemd's bus may come up, or go away, while the agent runs).
const typesEvery = 30 * time.Second

// refreshTypes finds the types this node cannot run, at most once every
// typesEvery.
func (m *Manager) refreshTypes() {
	m.mu.Lock()
	due := m.typesAt.IsZero() || time.Since(m.typesAt) >= typesEvery
	m.mu.Unlock()
	if !due {
		return
	}
	unavail := map[string]string{}
	for _, t := range roles.TypeNames() {
		r, ok := m.cfg.Runners[t]
		if !ok {
			unavail[t] = "this node has no runner for it"
		} else if err := r.Available(); err != nil {
			unavail[t] = err.Error()
		}
	}
	m.mu.Lock()
	m.unavail, m.typesAt = unavail, time.Now()
	m.mu.Unlock()
}

// bootNow is the time since boot, suspends included (CLOCK_BOOTTIME): a
// node that slept through its lease knows it at once on waking.
func bootNow() time.Duration {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return time.Duration(ts.Nano())
}

// poke makes the manager renew (and so report) and reconcile soon.
func (m *Manager) poke() {
	for _, c := range []chan struct{}{m.kickRenew, m.kickSync} {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Run renews the lease and runs the groups until ctx ends; it then stops
// every group and tells the leader it holds nothing any more.
func (m *Manager) Run(ctx context.Context) {
	// The lease is renewed while the groups stop, so that a long graceful
	// stop is not cut short by the lease's end.
	renewCtx, stopRenewing := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.renewLoop(renewCtx)
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for ctx.Err() == nil {
		m.reconcile()
		select {
		case <-ctx.Done():
		case <-tick.C:
		case <-m.kickSync:
		}
	}
	m.stopAll(0)
	stopRenewing()
	wg.Wait()
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rep := m.Report()
	rep.Release = true
	if _, err := m.leases.Renew(rctx, rep); err != nil {
		m.log.Info("could not release the lease (the leader counts it out when it expires)", "err", err)
	}
}

func (m *Manager) renewLoop(ctx context.Context) {
	next := time.Now()
	for {
		wait := time.Until(next)
		if wait < 0 {
			wait = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-m.kickRenew:
		}
		m.renewOnce(ctx)
		m.mu.Lock()
		every := m.grant.Renew
		m.mu.Unlock()
		if every <= 0 {
			every = m.cfg.Renew
		}
		next = time.Now().Add(every)
	}
}

// renewOnce asks for the lease once. The lease counts from before the
// request was sent: the leader counts it from when it granted it, later.
func (m *Manager) renewOnce(ctx context.Context) {
	m.mu.Lock()
	timeout := m.grant.Renew
	m.mu.Unlock()
	if timeout <= 0 {
		timeout = m.cfg.Renew
	}
	rctx, cancel := context.WithTimeout(ctx, 2*timeout)
	defer cancel()
	m.refreshTypes()
	sent := bootNow()
	g, err := m.leases.Renew(rctx, m.Report())
	m.mu.Lock()
	if err != nil {
		if msg := err.Error(); msg != m.lastRenewErr && ctx.Err() == nil {
			m.lastRenewErr = msg
			m.log.Warn("cannot renew the group lease", "err", err, "fence_in", (m.fence - bootNow()).Round(time.Millisecond))
		}
		m.mu.Unlock()
		return
	}
	if m.lastRenewErr != "" {
		m.log.Info("group lease renewed again")
		m.lastRenewErr = ""
	}
	m.grant = g
	m.fence = sent + g.Lease - g.Margin
	// The index of this grant, of this leader's log: after an
	// authoritative restore a new log starts lower than the old one.
	m.index = g.Index
	// The resources themselves end at the hard deadline (the fence and
	// half the margin, when the manager would have killed them), should
	// the agent be frozen or stuck then.
	hard := time.Now().Add(m.fence + g.Margin/2 - bootNow())
	m.mu.Unlock()
	// Told without the manager's lock: it writes to every shim's pipe.
	for _, r := range m.cfg.Runners {
		if f, ok := r.(resources.Fencer); ok {
			f.Fence(hard)
		}
	}
}

// leased reports whether the lease holds and the hive is fresh enough to
// act on (it has applied what the leader had committed at the grant).
func (m *Manager) leased() (bool, time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bootNow() < m.fence && m.src.Applied() >= m.index, m.grant.Margin
}

// reconcile brings the group runners to what the placements say.
func (m *Manager) reconcile() {
	ok, margin := m.leased()
	groups, resources, err := m.src.Groups()
	if err != nil {
		m.log.Warn("read the groups", "err", err)
		return
	}
	texts, err := m.src.Placements()
	if err != nil {
		m.log.Warn("read the placements", "err", err)
		return
	}
	cfgs := map[string]roles.Group{}
	for _, g := range groups {
		cfgs[strings.ToLower(g.Name)] = g
	}
	m.mu.Lock()
	var closing []*groupRun
	fenced := !ok && bootNow() >= m.fence
	for name, text := range texts {
		rec, err := placement.ParseRecord(text)
		if err != nil || rec.Owner != m.cfg.NodeID {
			continue
		}
		gr := m.groups[name]
		if gr == nil {
			if !ok {
				continue // nothing runs here; nothing to start without a lease
			}
			gr = newGroupRun(name, m)
			m.groups[name] = gr
		}
		g, exists := cfgs[name]
		spec, specErr := makeSpec(g, resources)
		switch {
		case !ok:
			// No lease, or a hive too old to act on: run nothing. Past
			// the fence, stop at once, killing by half the margin.
			if fenced {
				gr.set(rec.Epoch, false, nil, margin/2, "no lease")
			}
		case !exists:
			gr.set(rec.Epoch, false, nil, 0, "")
		case specErr != nil:
			gr.set(rec.Epoch, false, nil, 0, specErr.Error())
		default:
			gr.set(rec.Epoch, rec.Run, &spec, 0, "")
		}
	}
	// Groups whose placement no longer names this node stop, whatever the
	// lease: stopping is always safe.
	for name, gr := range m.groups {
		rec, err := placement.ParseRecord(texts[name])
		if _, named := texts[name]; named && err == nil && rec.Owner == m.cfg.NodeID {
			continue
		}
		grace := time.Duration(0)
		if fenced {
			grace = margin / 2
		}
		gr.set(gr.epochSeen(), false, nil, grace, "")
		if gr.idle() {
			delete(m.groups, name)
			closing = append(closing, gr)
		}
	}
	// Closed without the manager's lock: renewals and reports go on.
	m.mu.Unlock()
	for _, gr := range closing {
		gr.close()
	}
}

// stopAllWait bounds how long stopping the agent waits for a group whose
// stop keeps failing.
const stopAllWait = 5 * time.Minute

// stopAll stops every group (grace 0: each resource's own stop timeout)
// and waits until they are stopped.
func (m *Manager) stopAll(grace time.Duration) {
	m.mu.Lock()
	var runs []*groupRun
	for _, gr := range m.groups {
		gr.set(gr.epochSeen(), false, nil, grace, "the agent is stopping")
		runs = append(runs, gr)
	}
	m.mu.Unlock()
	for _, gr := range runs {
		if !gr.waitIdle(stopAllWait) {
			m.log.Error("a group did not stop: leaving it to its shim and lease", "group", gr.name)
		}
		gr.close()
	}
}

// Report is what this node tells the leader.
func (m *Manager) Report() placement.NodeReport {
	m.mu.Lock()
	defer m.mu.Unlock()
	rep := placement.NodeReport{Node: m.cfg.NodeID, Unavailable: m.unavail}
	for _, gr := range m.groups {
		rep.Groups = append(rep.Groups, gr.report())
	}
	sort.Slice(rep.Groups, func(i, j int) bool { return rep.Groups[i].Group < rep.Groups[j].Group })
	return rep
}

// spec is what a group runs: its resources in start order. Two specs
// differ when the group must be restarted to run the new one.
type spec struct {
	group     string
	resources []roles.Resource
	key       string
}

func makeSpec(g roles.Group, all map[string]roles.Resource) (spec, error) {
	s := spec{group: g.Name}
	for _, name := range g.Resources {
		r, ok := all[strings.ToLower(name)]
		if !ok {
			return spec{}, errors.New("resource " + name + " is not recorded")
		}
		r.Normalize()
		s.resources = append(s.resources, r)
	}
	b, _ := json.Marshal(s.resources)
	s.key = string(b)
	return s, nil
}
