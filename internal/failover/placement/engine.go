package placement

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// Config is the lease's timing. The leader grants leases with it, and
// the nodes fence themselves by what the leader granted, so one leader's
// settings hold cluster-wide.
type Config struct {
	// Lease is how long a grant holds from when the node asked for it.
	Lease time.Duration
	// Margin is how long before its lease expires a node that could not
	// renew it stops its groups: time to stop (half of it, then a kill)
	// and slack for clocks that run at slightly different rates.
	Margin time.Duration
	// Renew is how often a node renews its lease.
	Renew time.Duration
}

// Defaults: a node is given up 7 s after its last renewal (Windows'
// default heartbeats give a node up after 5 to 10 s); one that cannot renew
// stops its groups 4.5 s after its last renewal, which leaves the consensus
// 3.5 s or more to elect a new leader before a leader change stops groups.
var DefaultConfig = Config{Lease: 7 * time.Second, Margin: 2500 * time.Millisecond, Renew: time.Second}

// Validate checks the timing.
func (c Config) Validate() error {
	switch {
	case c.Lease <= 0 || c.Margin <= 0 || c.Renew <= 0:
		return errors.New("group lease: the lease, its margin and the renewal interval must be positive")
	case c.Margin >= c.Lease:
		return fmt.Errorf("group lease: the margin %s must be shorter than the lease %s", c.Margin, c.Lease)
	case 3*c.Renew > c.Lease-c.Margin:
		return fmt.Errorf("group lease: renew every %s is too seldom for a lease of %s less its margin %s: renew at least three times within it", c.Renew, c.Lease, c.Margin)
	}
	return nil
}

// Errors of a renewal.
var (
	ErrNotLeader = errors.New("this node is not the leader")
	ErrNotMember = errors.New("the node is not a member of the cluster")
)

// Store is what the engine needs of the cluster service.
type Store interface {
	// ReadyTerm is the term in which this node leads and serves
	// consistent reads (0 when it does not).
	ReadyTerm() uint64
	// ReadIndex confirms this node still leads and returns an index a
	// node must have applied to see everything committed before.
	ReadIndex(ctx context.Context) (uint64, error)
	Groups() ([]roles.Group, map[string]roles.Resource, error)
	Nodes() ([]Member, error)
	IsMember(id string) bool
	// Placements are the stored records by lower-case group name.
	Placements() (map[string]string, error)
	// SwapPlacement replaces group's record old by next ("" removes it)
	// only if it is still old.
	SwapPlacement(ctx context.Context, group, old, next string) error
	// LeaseMax is the longest lease a leader of this cluster recorded
	// before granting any; RaiseLeaseMax records a longer one.
	LeaseMax() (time.Duration, error)
	RaiseLeaseMax(ctx context.Context, d time.Duration) error
}

// Member is a recorded member, as the engine needs it.
type Member struct {
	ID, Name      string
	Paused, Drain bool
}

type grant struct {
	at       time.Time // when this leader granted it (0: released)
	report   NodeReport
	received time.Time
}

// Engine is the leader's placement loop and lease table. On a follower it
// holds nothing and refuses renewals.
type Engine struct {
	cfg   Config
	store Store
	log   *slog.Logger
	now   func() time.Time

	mu   sync.Mutex
	term uint64
	// since is when this node began leading in term; wait how long from
	// then a lease granted by an earlier leader may still hold.
	since    time.Time
	wait     time.Duration
	recorded bool // LeaseMax covers this leader's lease
	grants   map[string]grant
	kick     chan struct{}
	// deciding is held by Once from reading the lease table until its
	// decisions are committed.
	deciding sync.Mutex
}

// NewEngine returns an engine for store.
func NewEngine(cfg Config, store Store, log *slog.Logger) *Engine {
	return &Engine{cfg: cfg, store: store, log: log, now: time.Now, grants: map[string]grant{}, kick: make(chan struct{}, 1)}
}

// Config is the engine's timing.
func (e *Engine) Config() Config { return e.cfg }

// sync starts a new lease table when this node began leading in another
// term. e.mu is held.
func (e *Engine) sync(term uint64) {
	if term == e.term {
		return
	}
	e.term, e.since, e.recorded, e.grants = term, e.now(), false, map[string]grant{}
	e.wait = e.cfg.Lease
	if m, err := e.store.LeaseMax(); err == nil && m > e.wait {
		e.wait = m
	}
}

func (e *Engine) reset() {
	e.mu.Lock()
	e.term, e.grants = 0, map[string]grant{}
	e.mu.Unlock()
}

// ensureRecorded makes sure the cluster records this leader's lease
// before it grants one: a later leader then waits at least that long
// before it takes a node's lease for expired.
func (e *Engine) ensureRecorded(ctx context.Context, term uint64) error {
	e.mu.Lock()
	done := e.recorded && e.term == term
	e.mu.Unlock()
	if done {
		return nil
	}
	if err := e.store.RaiseLeaseMax(ctx, e.cfg.Lease); err != nil {
		return fmt.Errorf("record the lease: %w", err)
	}
	e.mu.Lock()
	if e.term == term {
		e.recorded = true
	}
	e.mu.Unlock()
	return nil
}

// Renew grants node rep.Node its lease, and takes its report. Leader only.
func (e *Engine) Renew(ctx context.Context, rep NodeReport) (Grant, error) {
	term := e.store.ReadyTerm()
	if term == 0 {
		return Grant{}, ErrNotLeader
	}
	if !e.store.IsMember(rep.Node) {
		return Grant{}, fmt.Errorf("renew the lease of node %s: %w", rep.Node, ErrNotMember)
	}
	if err := e.ensureRecorded(ctx, term); err != nil {
		return Grant{}, err
	}
	// The grant is recorded first: a decision taken from now on sees the
	// node live. A node this leader held for expired (it may be moving
	// its groups away this very moment) then waits for the decision in
	// progress to be committed, so that the index it is given covers it:
	// the node never acts on a placement older than a move of its groups.
	e.mu.Lock()
	if e.store.ReadyTerm() != term {
		e.mu.Unlock()
		return Grant{}, ErrNotLeader
	}
	e.sync(term)
	now := e.now()
	prev, known := e.grants[rep.Node]
	returning := !known || prev.at.IsZero() || !now.Before(prev.at.Add(e.cfg.Lease))
	g := grant{at: now, report: rep, received: now}
	if rep.Release {
		g.at = time.Time{}
	}
	e.grants[rep.Node] = g
	e.mu.Unlock()
	if returning {
		// A barrier: wait for the decision in progress.
		e.deciding.Lock()
		//lint:ignore SA2001 the empty critical section is the barrier
		e.deciding.Unlock()
	}
	idx, err := e.store.ReadIndex(ctx)
	if err != nil {
		return Grant{}, err
	}
	select {
	case e.kick <- struct{}{}:
	default:
	}
	return Grant{Index: idx, Lease: e.cfg.Lease, Margin: e.cfg.Margin, Renew: e.cfg.Renew}, nil
}

// Reports returns the latest report of every node heard from in this
// term, by node id (empty on a follower).
func (e *Engine) Reports() map[string]NodeReport {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]NodeReport{}
	if e.store.ReadyTerm() == 0 || e.store.ReadyTerm() != e.term {
		return out
	}
	for id, g := range e.grants {
		out[id] = g.report
	}
	return out
}

// Run decides placements while this node leads, until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-e.kick:
		}
		if err := e.Once(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("placement", "err", err)
		}
	}
}

// settleRenewals is how many renewal intervals a new leader waits before
// it decides: every live node renews within one, plus the timeout of a
// renewal that went to the old leader (two).
const settleRenewals = 4

// Once decides once, and records what changed. On a follower it forgets
// its lease table.
func (e *Engine) Once(ctx context.Context) error {
	term := e.store.ReadyTerm()
	if term == 0 {
		e.reset()
		return nil
	}
	if err := e.ensureRecorded(ctx, term); err != nil {
		return err
	}
	e.mu.Lock()
	e.sync(term)
	now := e.now()
	settled := now.Sub(e.since) >= settleRenewals*e.cfg.Renew
	e.mu.Unlock()
	if !settled {
		// Until every live node has renewed once, this leader cannot
		// tell a lost node from one it has not heard from yet.
		return nil
	}
	e.deciding.Lock()
	defer e.deciding.Unlock()
	in, texts, err := e.input(now)
	if err != nil {
		return err
	}
	for name, next := range Decide(in) {
		nt := ""
		if next != nil {
			nt = next.Encode()
			e.log.Info("placement", "group", name, "owner", next.OwnerName, "run", next.Run, "next", next.NextName, "state", next.State, "reason", next.Reason, "epoch", next.Epoch)
		} else {
			e.log.Info("placement removed", "group", name)
		}
		if err := e.store.SwapPlacement(ctx, name, texts[name], nt); err != nil {
			return fmt.Errorf("record the placement of group %s: %w", name, err)
		}
	}
	return nil
}

// input gathers what Decide looks at, and the stored texts of the records.
func (e *Engine) input(now time.Time) (Input, map[string]string, error) {
	groups, resources, err := e.store.Groups()
	if err != nil {
		return Input{}, nil, err
	}
	members, err := e.store.Nodes()
	if err != nil {
		return Input{}, nil, err
	}
	texts, err := e.store.Placements()
	if err != nil {
		return Input{}, nil, err
	}
	in := Input{Now: now.UTC(), Groups: groups, Resources: resources, Records: map[string]Record{}}
	for name, t := range texts {
		r, err := ParseRecord(t)
		if err != nil {
			return Input{}, nil, fmt.Errorf("group %s: %w", name, err)
		}
		in.Records[name] = r
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	earlier := now.Before(e.since.Add(e.wait)) // an earlier leader's grant may hold
	known := map[string]bool{}
	add := func(n Node) {
		g, ok := e.grants[n.ID]
		live := ok && !g.at.IsZero() && now.Before(g.at.Add(e.cfg.Lease))
		n.Live = live
		n.Released = ok && g.at.IsZero()
		n.MayRun = live || (earlier && !n.Released)
		if ok {
			n.Unavailable = g.report.Unavailable
			n.Reports = map[string]GroupReport{}
			for _, gr := range g.report.Groups {
				n.Reports[strings.ToLower(gr.Group)] = gr
			}
		}
		known[n.ID] = true
		in.Nodes = append(in.Nodes, n)
	}
	for _, m := range members {
		add(Node{ID: m.ID, Name: m.Name, Member: true, Paused: m.Paused, Drain: m.Drain})
	}
	// Owners that are no longer members (evicted) may still run what
	// they own until their lease expires.
	for _, r := range in.Records {
		if r.Owner != "" && !known[r.Owner] {
			add(Node{ID: r.Owner, Name: r.OwnerName})
		}
	}
	return in, texts, nil
}

// Lease is what the leader knows of a node's lease, for status pages.
type Lease struct {
	// LastHeard is when the node last renewed in this leader's term
	// (zero: not since this node leads).
	LastHeard time.Time `json:"last_heard,omitzero"`
	// Ends is when the lease ends: the node has stopped its groups by
	// then, and the leader may place them elsewhere.
	Ends time.Time `json:"ends"`
	// Unreachable: the node has missed two renewals.
	Unreachable bool `json:"unreachable"`
	// Released: the node said it stopped every group.
	Released bool `json:"released,omitempty"`
}

// LeaseOf is node's lease as this leader counts it; false on a follower.
func (e *Engine) LeaseOf(node string) (Lease, bool) {
	term := e.store.ReadyTerm()
	if term == 0 {
		return Lease{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	since, wait := e.since, e.wait
	if term != e.term {
		// No renewal reached this leader yet: its count starts now.
		since, wait = now, e.cfg.Lease
	}
	late := 2 * e.cfg.Renew
	g, ok := e.grants[node]
	switch {
	case ok && g.at.IsZero():
		return Lease{LastHeard: g.received, Ends: g.received, Released: true}, true
	case ok:
		return Lease{LastHeard: g.received, Ends: g.at.Add(e.cfg.Lease), Unreachable: now.Sub(g.received) > late}, true
	}
	// Not heard from since this node leads: a grant of the earlier
	// leader may hold until the recorded lease has passed.
	return Lease{Ends: since.Add(wait), Unreachable: now.Sub(since) > late}, true
}
