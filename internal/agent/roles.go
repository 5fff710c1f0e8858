package agent

// The resource manager's wiring: the placement engine (acting while this
// node leads) and the node's own manager, which renews its lease with the
// leader (in process when this node leads) and runs the groups it owns.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/clusterkeep/clusterkeep/internal/client"
	"github.com/clusterkeep/clusterkeep/internal/cluster"
	"github.com/clusterkeep/clusterkeep/internal/failover/placement"
	"github.com/clusterkeep/clusterkeep/internal/failover/resmgr"
	"github.com/clusterkeep/clusterkeep/internal/failover/resources"
	"github.com/clusterkeep/clusterkeep/internal/failover/roles"
)

// leaseConfig is the group lease's timing from the configuration.
func (c Config) leaseConfig() (placement.Config, error) {
	lc := placement.DefaultConfig
	var err error
	if c.GroupLease != "" {
		if lc.Lease, err = duration("group_lease", c.GroupLease); err != nil {
			return lc, err
		}
	}
	if c.GroupLeaseMargin != "" {
		if lc.Margin, err = duration("group_lease_margin", c.GroupLeaseMargin); err != nil {
			return lc, err
		}
	}
	if c.GroupLeaseRenew != "" {
		if lc.Renew, err = duration("group_lease_renew", c.GroupLeaseRenew); err != nil {
			return lc, err
		}
	}
	if err := lc.Validate(); err != nil {
		return lc, fmt.Errorf("agent config: %w", err)
	}
	return lc, nil
}

// rolesStore adapts the cluster service to the placement engine and to
// the node's resource manager. Both read the roles and the placements ten
// times a second; they are decoded again only when the hive changed.
type rolesStore struct {
	*cluster.Service

	mu        sync.Mutex
	seq       uint64 // the hive's sequence number when they were read
	read      bool
	groups    []roles.Group
	resources map[string]roles.Resource
	texts     map[string]string
}

func newRolesStore(svc *cluster.Service) *rolesStore { return &rolesStore{Service: svc} }

// load reads the roles and placements unless the hive is unchanged since.
// What it returns is shared: callers do not change it.
func (s *rolesStore) load() error {
	seq := s.Hive().Seq()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.read && seq == s.seq {
		return nil
	}
	rr, err := s.Roles()
	if err != nil {
		return err
	}
	texts, err := s.Service.Placements()
	if err != nil {
		return err
	}
	res := map[string]roles.Resource{}
	for _, r := range rr.Resources {
		r.Normalize()
		res[strings.ToLower(r.Name)] = r
	}
	for i := range rr.Groups {
		rr.Groups[i].Normalize()
	}
	// Read after seq: at worst newer than seq says, and read again.
	s.seq, s.read, s.groups, s.resources, s.texts = seq, true, rr.Groups, res, texts
	return nil
}

func (s *rolesStore) Groups() ([]roles.Group, map[string]roles.Resource, error) {
	if err := s.load(); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groups, s.resources, nil
}

func (s *rolesStore) Placements() (map[string]string, error) {
	if err := s.load(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.texts, nil
}

func (s *rolesStore) Nodes() ([]placement.Member, error) {
	ms, err := s.Members()
	if err != nil {
		return nil, err
	}
	out := make([]placement.Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, placement.Member{ID: m.ID, Name: m.Name, Paused: m.Paused, Drain: m.Drain})
	}
	return out, nil
}

// leases renews this node's lease: with its own engine while it leads,
// else with the leader over the API (one handle, and so one connection,
// per leader).
type leases struct {
	a      *Agent
	mu     sync.Mutex
	addr   string
	leader *client.Cluster
}

func (l *leases) Renew(ctx context.Context, rep placement.NodeReport) (placement.Grant, error) {
	a := l.a
	if a.svc.ReadyTerm() != 0 {
		g, err := a.engine.Renew(ctx, rep)
		if !errors.Is(err, placement.ErrNotLeader) {
			return g, err
		}
	}
	addr, err := a.svc.LeaderAPI()
	if err != nil {
		return placement.Grant{}, fmt.Errorf("find the leader: %w", err)
	}
	l.mu.Lock()
	if l.addr != addr || l.leader == nil {
		l.addr, l.leader = addr, client.Node(addr, a.nodeCreds())
	}
	c := l.leader
	l.mu.Unlock()
	return c.RenewLease(ctx, rep)
}

// roleRunner holds the manager's goroutines.
type roleRunner struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// startRoles starts the placement engine and the node's resource manager.
// Resources an earlier run of the agent left behind (it was killed) are
// killed first.
func (a *Agent) startRoles(lc placement.Config) error {
	dir := filepath.Join(a.cfg.DataDir, "resources")
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return fmt.Errorf("resources: %w", err)
	}
	ec := resources.ExecConfig{LogDir: filepath.Join(dir, "logs"), StateDir: dir}
	if killed, err := resources.Reap(ec); err != nil {
		return fmt.Errorf("resources: kill what an earlier run left: %w", err)
	} else if len(killed) > 0 {
		a.log.Warn("killed resources an earlier run of the agent left running", "resources", killed)
	}
	runners := resources.Runners(ec)
	if sd, ok := runners["systemd"].(*resources.Systemd); ok {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		stopped, err := sd.Reap(ctx)
		cancel()
		if err != nil {
			// Not fatal: the unit is named, and the operator can stop it.
			a.log.Error("could not stop systemd units an earlier run of the agent left running", "err", err)
		} else if len(stopped) > 0 {
			a.log.Warn("stopped systemd units an earlier run of the agent left running", "units", stopped)
		}
	}
	id := a.svc.Identity()
	mgr := resmgr.New(resmgr.Config{NodeID: id.NodeID, NodeName: id.NodeName, Runners: runners,
		Log: a.log.With("part", "resources"), Renew: lc.Renew}, a.roleData, &leases{a: a})
	ctx, cancel := context.WithCancel(context.Background())
	a.roles = &roleRunner{cancel: cancel}
	a.roles.wg.Add(2)
	go func() {
		defer a.roles.wg.Done()
		a.engine.Run(ctx)
	}()
	go func() {
		defer a.roles.wg.Done()
		mgr.Run(ctx)
	}()
	return nil
}

// stopRoles stops every group this node runs, releases its lease, and
// stops the engine.
func (a *Agent) stopRoles() {
	if a.roles == nil {
		return
	}
	a.roles.cancel()
	a.roles.wg.Wait()
}
